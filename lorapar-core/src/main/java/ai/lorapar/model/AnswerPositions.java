package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;
import java.util.Objects;

/**
 * The positions of a {@code [batch, T]} batch whose next token counts in a causal-LM loss, read on the
 * host from the labels (which the host has before it copies the batch to the device): flat position
 * {@code b·T + t} counts when {@code labels[b][t+1] != -100}, and its target is that label. The device
 * arrays are made once per batch (one host-to-device copy each, with the batch's own), so the loss
 * needs no read-back from the device to find them.
 *
 * <p>Owns its arrays (a sub-manager of the one given); close it.
 */
public final class AnswerPositions implements AutoCloseable {
    private final NDManager manager;
    private final NDArray positions;
    private final NDArray targets;
    private final NDArray exampleMeanWeights;
    private final int[] perRow;
    private final int count;
    private final int size;

    private AnswerPositions(NDManager manager, NDArray positions, NDArray targets, NDArray exampleMeanWeights,
            int[] perRow, int count, int size) {
        this.manager = manager;
        this.positions = positions;
        this.targets = targets;
        this.exampleMeanWeights = exampleMeanWeights;
        this.perRow = perRow;
        this.count = count;
        this.size = size;
    }

    /**
     * Reads the counted positions of row-major {@code labels} ({@code batch·length} values,
     * {@value CausalLmLoss#IGNORE_INDEX} where not counted) and copies them to {@code parent}'s device.
     *
     * @throws IllegalArgumentException when the sizes disagree or a label is negative other than -100
     */
    public static AnswerPositions fromLabels(long[] labels, int batch, int length, NDManager parent) {
        return fromLabels(labels, batch, length, parent, 0);
    }

    /**
     * {@link #fromLabels(long[], int, int, NDManager)} with the arrays padded to at least {@code minSize}
     * entries: the padding entries point at position 0 with target 0 and weight 0 ({@link #exampleMeanWeights};
     * a weighted loss gives them weight 0 too), so that batches with different answer counts can share one
     * shape. {@link #count()} stays the number of counted positions; {@link #size()} is the arrays' length.
     */
    public static AnswerPositions fromLabels(long[] labels, int batch, int length, NDManager parent, int minSize) {
        Objects.requireNonNull(labels, "labels");
        if (batch <= 0 || length <= 0 || (long) batch * length != labels.length) {
            throw new IllegalArgumentException("labels hold " + labels.length + " values, not batch " + batch
                    + " x length " + length);
        }
        int[] perRow = new int[batch];
        int n = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 1; t < length; t++) {
                long l = labels[b * length + t];
                if (l != CausalLmLoss.IGNORE_INDEX) {
                    if (l < 0) {
                        throw new IllegalArgumentException("label " + l + " at row " + b + ", position " + t
                                + " (only " + CausalLmLoss.IGNORE_INDEX + " may be negative)");
                    }
                    perRow[b]++;
                    n++;
                }
            }
        }
        int size = Math.max(n, minSize);
        long[] pos = new long[size]; // padding entries: position 0, target 0, weight 0
        long[] tg = new long[size];
        float[] w = new float[size];
        int k = 0;
        for (int b = 0; b < batch; b++) {
            for (int t = 1; t < length; t++) {
                long l = labels[b * length + t];
                if (l != CausalLmLoss.IGNORE_INDEX) {
                    pos[k] = (long) b * length + t - 1;
                    tg[k] = l;
                    // CausalLmLoss.mean: the mean over rows of each row's mean
                    w[k] = (float) (1.0 / perRow[b] / batch);
                    k++;
                }
            }
        }
        NDManager m = parent.newSubManager();
        try {
            return new AnswerPositions(m, m.create(pos), m.create(tg), m.create(w), perRow, n, size);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** {@code [N]} int64 flat positions {@code b·T + t} whose next token counts, row by row (then any padding). */
    public NDArray positions() {
        return positions;
    }

    /** {@code [N]} int64: the token each position predicts. */
    public NDArray targets() {
        return targets;
    }

    /**
     * {@code [N]} fp32 weights {@code 1/(count of the row · batch)}: {@code Σ weights·nll} is the mean over
     * examples of each example's mean token loss ({@link CausalLmLoss#mean}).
     */
    public NDArray exampleMeanWeights() {
        return exampleMeanWeights;
    }

    /** N, the number of counted positions. */
    public int count() {
        return count;
    }

    /** The length of the arrays: {@link #count()}, or more when padded (the entries after the counted ones). */
    public int size() {
        return size;
    }

    /** Counted positions per row. */
    public int[] perRow() {
        return Arrays.copyOf(perRow, perRow.length);
    }

    /** The shape of {@link #positions()}. */
    Shape shape() {
        return new Shape(size);
    }

    @Override
    public void close() {
        manager.close();
    }
}
