package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.lorapar.engine.FusedAdamW;

import java.util.ArrayList;
import java.util.List;

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
        List<NDArray> all = new ArrayList<>();
        params.forEach(all::add);
        if (!all.isEmpty() && FusedAdamW.isAvailable(all.get(0).getManager().getEngine())) {
            FusedAdamW.zeroGradients(all); // one call; muli(0f) would copy a scalar from the host per tensor
            return;
        }
        for (NDArray p : all) {
            if (p.hasGradient()) {
                try (NDArray g = p.getGradient()) {
                    g.muli(0f);
                }
            }
        }
    }
}
