package ai.lorapar.data;

import java.util.List;

/**
 * The result of {@link ExampleEncoder#encodeAll}: the encoded examples in input order, and those the
 * truncation policy skipped.
 *
 * @param examples the encoded examples
 * @param skipped the examples left out because they did not fit the maximum length
 * @param truncatedCount how many of {@code examples} lost the end of their answer
 */
public record EncodedDataset(List<EncodedExample> examples, List<Example> skipped, int truncatedCount) {

    public EncodedDataset {
        examples = List.copyOf(examples);
        skipped = List.copyOf(skipped);
    }

    /** The number of encoded (kept) examples. */
    public int size() {
        return examples.size();
    }

    /** The total number of answer tokens over the kept examples. */
    public long answerTokens() {
        long n = 0;
        for (EncodedExample e : examples) {
            n += e.answerLength();
        }
        return n;
    }
}
