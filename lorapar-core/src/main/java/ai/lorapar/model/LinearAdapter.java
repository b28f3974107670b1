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
}
