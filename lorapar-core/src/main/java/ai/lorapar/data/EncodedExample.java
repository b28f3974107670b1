package ai.lorapar.data;

import java.util.Arrays;
import java.util.Objects;

/**
 * An example as token ids: the prompt's ids followed by the answer's ({@link ExampleEncoder}).
 *
 * @param example the source example
 * @param ids prompt then answer ids (not padded)
 * @param promptLength how many of {@code ids} are the prompt; the rest is the answer (at least one id)
 * @param truncated whether the end of the answer was cut to fit the maximum length
 */
public record EncodedExample(Example example, long[] ids, int promptLength, boolean truncated) {

    public EncodedExample {
        Objects.requireNonNull(example, "example");
        Objects.requireNonNull(ids, "ids");
        if (promptLength < 0 || promptLength >= ids.length) {
            throw new IllegalArgumentException("prompt length " + promptLength + " leaves no answer token in "
                    + ids.length + " ids");
        }
    }

    /** The number of ids. */
    public int length() {
        return ids.length;
    }

    /** The number of answer ids (the tokens a loss counts). */
    public int answerLength() {
        return ids.length - promptLength;
    }

    /** The labels: the ids, with {@value ExampleEncoder#IGNORE_INDEX} on the prompt. */
    public long[] labels() {
        long[] labels = ids.clone();
        Arrays.fill(labels, 0, promptLength, ExampleEncoder.IGNORE_INDEX);
        return labels;
    }

    /** The prompt's ids. */
    public long[] promptIds() {
        return Arrays.copyOf(ids, promptLength);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof EncodedExample e && example.equals(e.example) && Arrays.equals(ids, e.ids)
                && promptLength == e.promptLength && truncated == e.truncated;
    }

    @Override
    public int hashCode() {
        return Objects.hash(example, Arrays.hashCode(ids), promptLength, truncated);
    }

    @Override
    public String toString() {
        return "EncodedExample[" + ExampleEncoder.describe(example) + ", " + promptLength + " prompt + "
                + answerLength() + " answer ids" + (truncated ? ", truncated" : "") + "]";
    }
}
