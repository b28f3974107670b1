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
     * This adapter's term in any pass without a KV cache (training or not) as low-rank factors with
     * inverted dropout on the input, {@code delta(x) = scaling·(dropout(x)·Aᵀ)·Bᵀ}, so that the model can
     * compute a whole projection and its adapters in one fused op; or null when it has no such form (then
     * {@link #delta} is called). Asking does not consume a dropout key; the model takes one per training
     * call from {@link #nextDropoutKey()} where the rate is positive. The fused op draws its dropout mask
     * from a generator seeded with that key (see {@code ai.lorapar.engine.TrainingOps}), not the mask
     * {@link #delta} would draw.
     */
    default TrainingFactors trainingFactors(Linear layer) {
        return null;
    }

    /** The dropout key of this adapter's next training call (advances its call counter); see {@link #trainingFactors}. */
    default long nextDropoutKey() {
        throw new UnsupportedOperationException("this adapter has no dropout keys");
    }

    /**
     * Low-rank factors of a term with dropout on its input: A {@code [r, in]}, B {@code [out, r]} (fp32
     * leaves, gradients flow to them), the scaling and the dropout rate of training passes;
     * {@link #none()} for an adapter that currently adds nothing. While per-example gradients are open
     * ({@code ai.lorapar.lora.PerExampleGradients} on an engine with {@code TrainingOps.LORA_ROWS}) also
     * the fp32 buffers {@code [rows, r, in]} and {@code [rows, out, r]} that take each example's gradient
     * of A and B (then A and B themselves get none).
     */
    record TrainingFactors(NDArray a, NDArray b, float scaling, double dropout, NDArray rowGradA, NDArray rowGradB) {
        private static final TrainingFactors NONE = new TrainingFactors(null, null, 0f, 0);

        /** Factors of an ordinary pass (gradients reach A and B). */
        public TrainingFactors(NDArray a, NDArray b, float scaling, double dropout) {
            this(a, b, scaling, dropout, null, null);
        }

        /** Whether this pass wants per-example gradients in {@link #rowGradA()} / {@link #rowGradB()} instead. */
        public boolean perExample() {
            return rowGradA != null;
        }

        /** The factors of a term that is zero. */
        public static TrainingFactors none() {
            return NONE;
        }

        /** Whether the term is zero. */
        public boolean isNone() {
            return a == null;
        }
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
