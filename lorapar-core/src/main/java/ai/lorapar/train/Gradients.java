package ai.lorapar.train;

import ai.djl.ndarray.NDArray;

/**
 * Gradient housekeeping for parameters trained through DJL's autograd.
 *
 * <p>PyTorch accumulates gradients across backward passes, and DJL's {@code GradientCollector} neither
 * zeroes them when it opens nor (for arrays outside DJL's system manager) when asked to, so a loop
 * that needs per-step or per-example gradients must zero them itself, as {@code optimizer.zero_grad()}
 * does in PyTorch.
 */
public final class Gradients {
    private Gradients() {}

    /** Sets the gradient of every parameter that has one to zero, in place. */
    public static void zero(Iterable<NDArray> params) {
        for (NDArray p : params) {
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient()) {
                    g.muli(0f);
                }
            }
        }
    }
}
