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

    /** The question and answer as a library {@link Example} (the kind is not part of it). */
    public Example toExample(String id) {
        return Example.of(id, question, answer);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "[%s, %d ops] %s -> %d", kind.text(), operations, question, result);
    }
}
