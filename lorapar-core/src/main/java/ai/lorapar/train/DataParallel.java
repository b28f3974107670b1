package ai.lorapar.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.engine.Collective;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The pieces every data-parallel stage shares: which rows of a global batch a rank takes, the check that
 * the world size divides a batch, and the one all-reduce of the trainable gradients per optimizer step.
 *
 * <p><b>Shares.</b> Rank r of W takes rows r, r + W, r + 2W, … of each global batch (strided rather than
 * contiguous: batches grouped or sorted by length then give every rank rows of similar lengths, so the
 * ranks finish their passes at about the same time).
 *
 * <p><b>Gradients.</b> After the backward passes of a step, the gradients of the trainable parameters, together
 * with the step's small metric sums (the loss), are summed across ranks by one {@link Collective#allReduceSum}
 * call, in place; the c10d collective flattens them into one bucket per dtype (one for an fp32 or a bf16 model)
 * for one NCCL all-reduce and writes the sums back. DJL's autograd offers no per-parameter hook, so the reduction
 * cannot overlap the backward pass as PyTorch's DDP does: it is one call after the last backward of the step. Each
 * rank divides its loss by the normaliser of the global step (known on the host to every rank), so the sum is the
 * single-process gradient of the global batch; the optimizer, its state, gradient clipping and the NaN guard then
 * see the same numbers on every rank and make the same decision.
 */
public final class DataParallel {
    private DataParallel() {}

    /** The indices of a global batch of {@code size} rows that rank {@code rank} of {@code world} takes. */
    public static int[] shareIndices(int size, int rank, int world) {
        if (world < 1 || rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " outside a world of size " + world);
        }
        int n = size > rank ? (size - rank + world - 1) / world : 0;
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = rank + i * world;
        }
        return out;
    }

    /** The rows of {@code batch} that this rank takes (all of them in a world of one). */
    public static <T> List<T> share(List<T> batch, Collective collective) {
        if (collective.worldSize() == 1) {
            return batch;
        }
        int[] idx = shareIndices(batch.size(), collective.rank(), collective.worldSize());
        List<T> out = new ArrayList<>(idx.length);
        for (int i : idx) {
            out.add(batch.get(i));
        }
        return out;
    }

    /**
     * Refuses a world size that does not divide a global batch.
     *
     * @param what the batch, as the user configured it (e.g. "the micro-batch size")
     * @throws IllegalArgumentException naming both numbers
     */
    public static void requireDivides(Collective collective, String what, long size) {
        int w = collective.worldSize();
        if (size % w != 0) {
            throw new IllegalArgumentException("the world size " + w + " does not divide " + what + " " + size
                    + ": each of the " + w + " ranks takes an equal share of every global batch, so " + what
                    + " must be a multiple of the number of ranks");
        }
    }

    /**
     * Sums the gradients of {@code params} across the ranks, in place, with {@code extras} (small arrays,
     * e.g. the step's loss and metric sums, summed in place too) in the same call: one
     * {@link Collective#allReduceSum} of the gradients' own arrays, which the collective sums in one flat
     * bucket per dtype (c10d's {@code ProcessGroup}: one NCCL all-reduce per bucket, written back in place).
     * Returns {@code extras}. Every parameter must have a gradient (after at least one backward pass, or
     * {@link #defineGradients}). In a world of one nothing happens.
     */
    public static NDList allReduce(Collective collective, Collection<NDArray> params, NDList extras,
            NDManager scope) {
        if (collective.worldSize() == 1) {
            return extras;
        }
        try (NDManager s = scope.newSubManager()) {
            NDList all = new NDList(params.size() + extras.size());
            for (NDArray p : params) {
                NDArray g = p.getGradient(); // a handle on the parameter's gradient (same storage)
                g.attach(s); // closing the handle leaves the gradient
                all.add(g);
            }
            all.addAll(extras);
            collective.allReduceSum(all);
            return extras;
        }
    }

    /**
     * Gives every parameter a (zero) gradient, for a rank whose share of a step was empty: the all-reduce
     * and the optimizer need a gradient on every rank. One backward pass of 0·Σp.
     */
    public static void defineGradients(Collection<NDArray> params, NDManager scope) {
        if (params.isEmpty()) {
            return;
        }
        Engine engine = params.iterator().next().getManager().getEngine();
        try (NDManager s = scope.newSubManager(); GradientCollector gc = engine.newGradientCollector()) {
            NDArray total = null;
            for (NDArray p : params) {
                NDArray z = p.sum().toType(DataType.FLOAT32, false).mul(0f);
                z.attach(s);
                total = total == null ? z : total.add(z);
                total.attach(s);
            }
            gc.backward(total.reshape(new Shape()));
        }
    }
}
