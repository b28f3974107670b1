package ai.lorapar.examples.embedded;

import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.eval.AnswerExtraction;
import ai.lorapar.examples.embedded.WordProblem.Kind;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Greedy exact-match accuracy of the tiny model on word problems, per kind, in one {@link AnswerFormat},
 * with the well-formed share beside it. Answers are extracted and compared as the library's evaluation
 * does ({@link AnswerExtraction}: the number in {@code <answer>...</answer>}, else after {@code ####},
 * else the last number), so these figures are comparable with {@code Gsm8kEvaluator}'s; this class adds
 * the split by kind and format that the generated items allow.
 */
public final class GreedyAccuracy {

    /**
     * Counts of one kind of item.
     *
     * @param total items asked
     * @param correct items whose extracted answer equals the reference
     * @param wellFormed items whose completion has the format's shape ({@link AnswerFormat#isWellFormed})
     */
    public record Tally(int total, int correct, int wellFormed) {
        public double accuracy() {
            return total == 0 ? Double.NaN : (double) correct / total;
        }

        public double wellFormedShare() {
            return total == 0 ? Double.NaN : (double) wellFormed / total;
        }
    }

    /** One item's outcome. */
    public record Outcome(WordProblem problem, String completion, String extracted, boolean correct, boolean wellFormed) {
    }

    /** Tallies per kind and every item's outcome, in the order asked. */
    public record Result(AnswerFormat format, Map<Kind, Tally> byKind, List<Outcome> outcomes) {
        public Tally all() {
            int t = 0;
            int c = 0;
            int w = 0;
            for (Tally x : byKind.values()) {
                t += x.total();
                c += x.correct();
                w += x.wellFormed();
            }
            return new Tally(t, c, w);
        }
    }

    private GreedyAccuracy() {
    }

    /**
     * Decodes every problem greedily (up to {@code maxNewTokens}, stopping at end of sequence) in batches of
     * {@code batchSize} of one kind each (one-step answers are short: mixing kinds would make every batch
     * as long as its longest answer) and scores the answers.
     *
     * @param encoder the encoder of {@link EmbeddedDefault#encoder} with the format's system prompt
     */
    public static Result evaluate(Generator generator, ExampleEncoder encoder, List<WordProblem> problems,
            AnswerFormat format, int maxNewTokens, int batchSize) {
        SamplingConfig greedy = SamplingConfig.greedy(maxNewTokens);
        Map<Kind, int[]> counts = new EnumMap<>(Kind.class);
        Outcome[] outcomes = new Outcome[problems.size()];
        for (Kind kind : Kind.values()) {
            List<Integer> indices = new ArrayList<>();
            for (int i = 0; i < problems.size(); i++) {
                if (problems.get(i).kind() == kind) {
                    indices.add(i);
                }
            }
            if (indices.isEmpty()) {
                continue;
            }
            int[] c = counts.computeIfAbsent(kind, k -> new int[3]);
            for (int from = 0; from < indices.size(); from += batchSize) {
                List<Integer> batch = indices.subList(from, Math.min(indices.size(), from + batchSize));
                List<long[]> prompts = new ArrayList<>(batch.size());
                for (int i : batch) {
                    WordProblem p = problems.get(i);
                    prompts.add(encoder.encodePrompt(ai.lorapar.data.Example.of("test-" + i, p.question(), p.answer())));
                }
                GenerationResult r = generator.generate(prompts, greedy);
                for (int j = 0; j < batch.size(); j++) {
                    int i = batch.get(j);
                    WordProblem p = problems.get(i);
                    GenerationResult.Sequence s = r.sequences().get(j);
                    String text = s.text() != null ? s.text() : encoder.tokenizer().decode(s.tokens(), true);
                    String got = AnswerExtraction.extract(text).answer();
                    boolean correct = AnswerExtraction.matches(got, String.valueOf(p.result()));
                    boolean formed = format.isWellFormed(text);
                    outcomes[i] = new Outcome(p, text, got, correct, formed);
                    c[0]++;
                    c[1] += correct ? 1 : 0;
                    c[2] += formed ? 1 : 0;
                }
            }
        }
        Map<Kind, Tally> byKind = new EnumMap<>(Kind.class);
        counts.forEach((k, c) -> byKind.put(k, new Tally(c[0], c[1], c[2])));
        return new Result(format, byKind, List.of(outcomes));
    }
}
