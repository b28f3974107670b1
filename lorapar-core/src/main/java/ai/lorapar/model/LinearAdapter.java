package ai.lorapar.model;

import ai.djl.ndarray.NDArray;

/**
 * A pluggable addition to a frozen {@link Linear} layer: {@code y = W·x + b + adapter.delta(x)}.
 * LoRA implements it as {@code scale · B·A·dropout(x)} with its own fp32 parameters, kept apart from
 * the base weights. The adapter must not modify {@code input}.
 */
@FunctionalInterface
public interface LinearAdapter {
    /**
     * The term added to the base output.
     *
     * @param layer the wrapped layer (its name, sizes and frozen weight)
     * @param input the layer input, shape {@code [..., inFeatures]}, in the compute dtype
     * @param training whether the forward pass is a training one (dropout on) or not
     * @return shape {@code [..., outFeatures]}, any floating dtype (cast to the output's dtype by the
     *     layer); the layer closes it after adding it
     */
    NDArray delta(Linear layer, NDArray input, boolean training);

    /**
     * This adapter's inference term (no dropout) as low-rank factors, {@code delta(x) = scaling·(x·Aᵀ)·Bᵀ},
     * so that decoding can fuse the adapters of several projections into two matrix products; or null
     * when it has no such form (then {@link #delta} is called). The arrays are the adapter's own: they
     * are read, never modified or closed.
     */
    default LowRankFactors inferenceFactors(Linear layer) {
        return null;
    }

    /**
     * Low-rank factors of an inference term: A {@code [r, in]}, B {@code [out, r]} (fp32 or the compute
     * dtype) and the scaling; {@link #none()} for an adapter that currently adds nothing (e.g. merged).
     */
    record LowRankFactors(NDArray a, NDArray b, float scaling) {
        private static final LowRankFactors NONE = new LowRankFactors(null, null, 0f);

        /** The factors of a term that is zero. */
        public static LowRankFactors none() {
            return NONE;
        }

        /** Whether the term is zero. */
        public boolean isNone() {
            return a == null;
        }
    }
}
