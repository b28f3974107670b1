package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.Example;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A rule-based stand-in for an LLM teacher, for offline runs and tests: it scores surface features of the
 * question and reference answer and replies {@code System2} when the weighted sum reaches a threshold.
 *
 * <p>This is a fallback, not the paper's method: it does not role-play anything and ignores the prompt text.
 * Its {@link #id()} is always {@code heuristic:<name>} and its {@link #model()} is {@code heuristic}, so its
 * votes can never be mistaken for a model's. Its reply, e.g. {@code System2 (heuristic:steps score 4.00 >=
 * 3.00; reasoning_steps=4)}, goes through the same {@link ReplyParser} as an LLM's.
 */
public final class HeuristicTeacher implements Teacher {

    /** Surface features; each is a count. */
    public enum Feature {
        /** Lines of the reference answer other than a final {@code #### N} line. */
        REASONING_STEPS,
        /** GSM8K calculator annotations such as {@code <<48/2=24>>} in the answer. */
        CALCULATOR_ANNOTATIONS,
        /** Arithmetic operators inside calculator annotations, or between numbers in the answer when it has none. */
        ARITHMETIC_OPERATIONS,
        /** Quantities in the question: numerals and words such as "twice", "half", "three". */
        QUESTION_QUANTITIES,
        /** Sentences in the question. */
        QUESTION_SENTENCES,
        /** Words in the question. */
        QUESTION_WORDS
    }

    private static final Pattern ANNOTATION = Pattern.compile("<<([^<>]*)>>");
    private static final Pattern OPERATOR = Pattern.compile("(?<=[\\d)\\s])[-+*/\u00d7\u00f7x](?=[\\s\\d(.])");
    private static final Pattern INLINE_OPERATION = Pattern.compile("\\d\\s*[-+*/\u00d7\u00f7x]\\s*\\d");
    private static final Pattern QUANTITY = Pattern.compile(
            "(?i)(?<![\\w.])(?:\\$?\\d[\\d,]*(?:\\.\\d+)?%?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
                    + "|twenty|thirty|forty|fifty|hundred|thousand|half|twice|double|triple|thrice|quarter|third|dozen)(?![\\w])");
    private static final Pattern SENTENCE_END = Pattern.compile("[.!?]+(?=\\s|$)");
    private static final Pattern FINAL_ANSWER_LINE = Pattern.compile("^\\s*####.*$");

    private final String name;
    private final Map<Feature, Double> weights;
    private final double threshold;

    private HeuristicTeacher(Builder b) {
        this.name = b.name;
        this.weights = new EnumMap<>(b.weights);
        this.threshold = b.threshold;
    }

    /**
     * A builder for a custom heuristic teacher, identified as {@code heuristic:<name>}.
     *
     * @param name the name
     * @return the builder
     */
    public static Builder builder(String name) {
        return new Builder(name);
    }

    /** {@code heuristic:steps}: System 2 when the reference answer has at least 3 reasoning lines. */
    public static HeuristicTeacher steps() {
        return builder("steps").weight(Feature.REASONING_STEPS, 1).threshold(3).build();
    }

    /** {@code heuristic:arithmetic}: System 2 when the reference answer performs at least 3 arithmetic operations. */
    public static HeuristicTeacher arithmetic() {
        return builder("arithmetic").weight(Feature.ARITHMETIC_OPERATIONS, 1).threshold(3).build();
    }

    /**
     * {@code heuristic:question}: looks at the question only: quantities + 0.5·sentences + 0.02·words ≥ 5
     * (roughly: four or more quantities spread over several sentences).
     */
    public static HeuristicTeacher question() {
        return builder("question")
                .weight(Feature.QUESTION_QUANTITIES, 1)
                .weight(Feature.QUESTION_SENTENCES, 0.5)
                .weight(Feature.QUESTION_WORDS, 0.02)
                .threshold(5)
                .build();
    }

    @Override
    public String id() {
        return "heuristic:" + name;
    }

    @Override
    public String model() {
        return "heuristic";
    }

    @Override
    public int maxConcurrency() {
        return 4;
    }

    @Override
    public boolean cacheable() {
        return false;
    }

    @Override
    public String ask(TeacherPrompt prompt) {
        Example example = prompt.example();
        double score = 0;
        StringBuilder detail = new StringBuilder();
        for (Map.Entry<Feature, Double> w : weights.entrySet()) {
            int value = measure(w.getKey(), example);
            score += w.getValue() * value;
            detail.append(detail.length() == 0 ? "" : ", ").append(w.getKey().name().toLowerCase(Locale.ROOT))
                    .append('=').append(value);
        }
        SystemLabel label = score >= threshold ? SystemLabel.SYSTEM_2 : SystemLabel.SYSTEM_1;
        return String.format(Locale.ROOT, "%s (%s score %.2f %s %.2f; %s)",
                label.text(), id(), score, label == SystemLabel.SYSTEM_2 ? ">=" : "<", threshold, detail);
    }

    /** The value of one feature on one example. */
    public static int measure(Feature feature, Example example) {
        return switch (feature) {
            case REASONING_STEPS -> (int) example.answer().lines()
                    .filter(l -> !l.isBlank() && !FINAL_ANSWER_LINE.matcher(l).matches()).count();
            case CALCULATOR_ANNOTATIONS -> count(ANNOTATION, example.answer());
            case ARITHMETIC_OPERATIONS -> arithmeticOperations(example.answer());
            case QUESTION_QUANTITIES -> count(QUANTITY, example.question());
            case QUESTION_SENTENCES -> Math.max(1, count(SENTENCE_END, example.question().strip()));
            case QUESTION_WORDS -> example.question().isBlank() ? 0 : example.question().strip().split("\\s+").length;
        };
    }

    private static int arithmeticOperations(String answer) {
        Matcher m = ANNOTATION.matcher(answer);
        int operations = 0;
        boolean annotated = false;
        while (m.find()) {
            annotated = true;
            String expression = m.group(1);
            int eq = expression.indexOf('=');
            operations += count(OPERATOR, eq >= 0 ? expression.substring(0, eq) : expression);
        }
        return annotated ? operations : count(INLINE_OPERATION, answer);
    }

    private static int count(Pattern p, String text) {
        Matcher m = p.matcher(text);
        int n = 0;
        while (m.find()) {
            n++;
        }
        return n;
    }

    @Override
    public String toString() {
        return id() + weights + " >= " + threshold;
    }

    /** Builder of {@link HeuristicTeacher}: score = Σ weight·feature; System 2 when score ≥ threshold. */
    public static final class Builder {
        private final String name;
        private final Map<Feature, Double> weights = new EnumMap<>(Feature.class);
        private double threshold = 1;

        private Builder(String name) {
            if (name == null || !name.matches("[A-Za-z0-9_.-]+")) {
                throw new IllegalArgumentException("heuristic teacher name must match [A-Za-z0-9_.-]+, was " + name);
            }
            this.name = name;
        }

        /**
         * The weight of one feature in the score.
         *
         * @param feature the feature
         * @param weight its weight
         * @return this builder
         */
        public Builder weight(Feature feature, double weight) {
            if (!Double.isFinite(weight)) {
                throw new IllegalArgumentException("weight of " + feature + " must be finite, was " + weight);
            }
            weights.put(feature, weight);
            return this;
        }

        /**
         * The score at or above which the vote is System 2.
         *
         * @param threshold the threshold
         * @return this builder
         */
        public Builder threshold(double threshold) {
            if (!Double.isFinite(threshold)) {
                throw new IllegalArgumentException("threshold must be finite, was " + threshold);
            }
            this.threshold = threshold;
            return this;
        }

        /**
         * Builds the teacher.
         *
         * @return the teacher
         */
        public HeuristicTeacher build() {
            if (weights.isEmpty()) {
                throw new IllegalStateException("heuristic teacher " + name + " needs at least one feature weight");
            }
            return new HeuristicTeacher(this);
        }
    }
}
