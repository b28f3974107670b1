package ai.lorapar.data;

import java.util.Objects;

/**
 * One training example: a question (or instruction prompt) and its reference answer.
 *
 * <p>{@code line} is the 1-based line of the JSONL file the example came from (0 when built in code) and
 * {@code sourceJson} the original JSON object of that line, kept verbatim so that a labelled copy of the
 * file keeps every field the source had (null when built in code).
 */
public record Example(String id, int line, ExampleFormat format, String question, String answer, String sourceJson) {

    /** Checks the fields. */
    public Example {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(question, "question");
        Objects.requireNonNull(answer, "answer");
        if (line < 0) {
            throw new IllegalArgumentException("line must be >= 0, was " + line);
        }
    }

    /** An example built in code rather than read from a file. */
    public static Example of(String id, String question, String answer) {
        return new Example(id, 0, ExampleFormat.QUESTION_ANSWER, question, answer, null);
    }
}
