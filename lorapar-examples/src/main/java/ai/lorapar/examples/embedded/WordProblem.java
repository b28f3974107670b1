package ai.lorapar.examples.embedded;

import ai.lorapar.data.Example;
import com.google.gson.JsonObject;
import java.util.Locale;
import java.util.Objects;

/**
 * One generated arithmetic word problem in GSM8K's format: a question and a worked answer whose last line
 * is {@code #### N}.
 *
 * @param question the question text
 * @param answer the worked solution, one line per operation, ending with {@code #### result}
 * @param kind one-step or multi-step (for reports only: labelling sees question and answer alone)
 * @param operations the number of arithmetic operations of the solution (0 for an answer read off the question)
 * @param result the final answer N
 */
public record WordProblem(String question, String answer, Kind kind, int operations, int result) {

    /** The two kinds of items; LoRA-PAR's labelling should tell them apart without seeing this. */
    public enum Kind {
        /** A single operation, or a fact read off the question. */
        ONE_STEP("one-step"),
        /** Two to four chained operations. */
        MULTI_STEP("multi-step");

        private final String text;

        Kind(String text) {
            this.text = text;
        }

        /** The spelling in JSONL records: {@code one-step} or {@code multi-step}. */
        public String text() {
            return text;
        }

        /** The kind spelled {@code text} ({@code one-step} / {@code multi-step}). */
        public static Kind parse(String text) {
            for (Kind k : values()) {
                if (k.text.equals(text)) {
                    return k;
                }
            }
            throw new IllegalArgumentException("unknown kind \"" + text + "\" (one-step or multi-step)");
        }
    }

    public WordProblem {
        Objects.requireNonNull(question, "question");
        Objects.requireNonNull(answer, "answer");
        Objects.requireNonNull(kind, "kind");
        if (!answer.endsWith("\n#### " + result)) {
            throw new IllegalArgumentException("answer must end with \"\\n#### " + result + "\": " + answer);
        }
    }

    /** The JSONL record: {@code {"question", "answer", "kind", "operations"}}. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("question", question);
        o.addProperty("answer", answer);
        o.addProperty("kind", kind.text());
        o.addProperty("operations", operations);
        return o;
    }

    /**
     * The record {@link #toJson()} writes, read back ({@code operations} defaults to 0 when absent; the
     * result is the number after {@code ####}).
     *
     * @throws IllegalArgumentException naming the field that is missing or malformed
     */
    public static WordProblem fromJson(JsonObject o) {
        for (String field : new String[] {"question", "answer", "kind"}) {
            if (!o.has(field) || !o.get(field).isJsonPrimitive()) {
                throw new IllegalArgumentException("word problem record has no string field \"" + field + "\": " + o);
            }
        }
        String answer = o.get("answer").getAsString();
        int at = answer.lastIndexOf("\n#### ");
        if (at < 0) {
            throw new IllegalArgumentException("word problem answer has no final \"#### N\" line: " + answer);
        }
        int result;
        try {
            result = Integer.parseInt(answer.substring(at + 6));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("word problem answer does not end with an integer: " + answer, e);
        }
        int ops = o.has("operations") ? o.get("operations").getAsInt() : 0;
        return new WordProblem(o.get("question").getAsString(), answer, Kind.parse(o.get("kind").getAsString()), ops,
                result);
    }

    /**
     * The answer in the format of GRPO's system prompt ({@link EmbeddedTokenizer#GRPO_SYSTEM_PROMPT}):
     * {@code <reasoning>\n...\n</reasoning>\n<answer>\nN\n</answer>\n}, the worked lines joined by spaces
     * into one reasoning line. One line because the reference's strict-format reward matches
     * {@code ^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$} without DOTALL: a reasoning
     * over several lines never earns it.
     */
    public String tagAnswer() {
        int at = answer.lastIndexOf("\n#### ");
        String reasoning = String.join(" ", answer.substring(0, at).split("\n"));
        return "<reasoning>\n" + reasoning + "\n</reasoning>\n<answer>\n" + result + "\n</answer>\n";
    }

    /** The question and answer as a library {@link Example} (the kind is not part of it). */
    public Example toExample(String id) {
        return Example.of(id, question, answer);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "[%s, %d ops] %s -> %d", kind.text(), operations, question, result);
    }
}
