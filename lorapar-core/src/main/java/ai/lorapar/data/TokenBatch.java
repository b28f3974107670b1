package ai.lorapar.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.AnswerPositions;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Encoded examples as one padded batch on a device: {@code inputIds}, {@code attentionMask} and
 * {@code labels}, each {@code [B, T]} int64 with T the longest row. Rows are right-padded with the pad
 * id; the mask is 0 and the label {@value ExampleEncoder#IGNORE_INDEX} on padding (and the label also on
 * the prompt), so a loss over the labels counts answer tokens only.
 *
 * <p>Right padding lets a model attend causally without a mask: pass {@code rightPadded = true} to
 * {@code DecoderModel.forward}/{@code forwardHidden} and {@code CausalLmObjective} (with
 * {@link #answerPositions}, the loss is computed at answer positions only).
 *
 * <p>The batch owns its arrays (a sub-manager of the one given); close it.
 */
public final class TokenBatch implements AutoCloseable {
    private final NDManager manager;
    private final List<EncodedExample> rows;
    private final NDArray inputIds;
    private final NDArray attentionMask;
    private final NDArray labels;
    private final long answerTokens;
    private final int length;
    private final long[] hostLabels;

    private TokenBatch(NDManager manager, List<EncodedExample> rows, NDArray inputIds, NDArray attentionMask,
            NDArray labels, long answerTokens, int length, long[] hostLabels) {
        this.manager = manager;
        this.rows = rows;
        this.inputIds = inputIds;
        this.attentionMask = attentionMask;
        this.labels = labels;
        this.answerTokens = answerTokens;
        this.length = length;
        this.hostLabels = hostLabels;
    }

    /**
     * Pads {@code rows} to the longest and copies them to {@code parent}'s device (one host-to-device
     * copy per array).
     *
     * @throws IllegalArgumentException for an empty list
     */
    public static TokenBatch of(List<EncodedExample> rows, long padId, NDManager parent) {
        return of(rows, padId, parent, 0);
    }

    /**
     * {@link #of(List, long, NDManager)} padded to at least {@code minLength} positions (more padding on the
     * right: a causal pass gives every real position the same result), so that batches of different
     * lengths can share one shape (a CUDA graph per shape).
     *
     * @throws IllegalArgumentException for an empty list
     */
    public static TokenBatch of(List<EncodedExample> rows, long padId, NDManager parent, int minLength) {
        Objects.requireNonNull(parent, "manager");
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("a batch needs at least one example");
        }
        int b = rows.size();
        int t = Math.max(0, minLength);
        long answers = 0;
        for (EncodedExample r : rows) {
            t = Math.max(t, r.length());
            answers += r.answerLength();
        }
        long[] ids = new long[b * t];
        long[] mask = new long[b * t];
        long[] labels = new long[b * t];
        Arrays.fill(ids, padId);
        Arrays.fill(labels, ExampleEncoder.IGNORE_INDEX);
        for (int i = 0; i < b; i++) {
            EncodedExample r = rows.get(i);
            int off = i * t;
            System.arraycopy(r.ids(), 0, ids, off, r.length());
            Arrays.fill(mask, off, off + r.length(), 1L);
            System.arraycopy(r.ids(), r.promptLength(), labels, off + r.promptLength(), r.answerLength());
        }
        NDManager m = parent.newSubManager();
        try {
            Shape shape = new Shape(b, t);
            return new TokenBatch(m, List.copyOf(rows), m.create(ids, shape), m.create(mask, shape),
                    m.create(labels, shape), answers, t, labels);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** {@code [B, T]} int64 token ids, right-padded. */
    public NDArray inputIds() {
        return inputIds;
    }

    /** {@code [B, T]} int64: 1 on real tokens, 0 on padding. */
    public NDArray attentionMask() {
        return attentionMask;
    }

    /** {@code [B, T]} int64: the answer ids, {@value ExampleEncoder#IGNORE_INDEX} on prompt and padding. */
    public NDArray labels() {
        return labels;
    }

    /**
     * The positions whose next token counts, for {@code CausalLmObjective}: read from the host copy of the
     * labels (no read-back from the device), copied to {@code manager}'s device; the caller closes it.
     */
    public AnswerPositions answerPositions(NDManager manager) {
        return AnswerPositions.fromLabels(hostLabels, rows.size(), length, manager);
    }

    /** {@link #answerPositions(NDManager)} padded to at least {@code minSize} entries ({@link AnswerPositions#size()}). */
    public AnswerPositions answerPositions(NDManager manager, int minSize) {
        return AnswerPositions.fromLabels(hostLabels, rows.size(), length, manager, minSize);
    }

    /** The encoded examples, one per row. */
    public List<EncodedExample> rows() {
        return rows;
    }

    /** B. */
    public int size() {
        return rows.size();
    }

    /** T, the longest row (or the length the batch was padded to). */
    public int length() {
        return length;
    }

    /** The number of answer tokens (labels that count) in the batch. */
    public long answerTokens() {
        return answerTokens;
    }

    /** The number of real (unpadded) tokens in the batch. */
    public long tokens() {
        long n = 0;
        for (EncodedExample r : rows) {
            n += r.length();
        }
        return n;
    }

    @Override
    public void close() {
        manager.close();
    }
}
