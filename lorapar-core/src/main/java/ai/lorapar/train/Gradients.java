package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.lorapar.engine.FusedAdamW;

import java.util.ArrayList;
import java.util.Collection;
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

    /**
     * Copies of the parameters' gradients (null for a parameter without one), for {@link #restore}. The copies
     * are attached to each parameter's manager; {@link #restore} closes them.
     */
    public static List<NDArray> snapshot(Collection<NDArray> params) {
        List<NDArray> out = new ArrayList<>(params.size());
        for (NDArray p : params) {
            if (!p.hasGradient()) {
                out.add(null);
                continue;
            }
            try (NDArray g = p.getGradient()) {
                NDArray copy = g.duplicate();
                copy.attach(p.getManager());
                out.add(copy);
            }
        }
        return out;
    }

    /**
     * Puts back the gradients of {@link #snapshot} (zero where the snapshot had none), in place: the
     * parameters keep their gradient arrays. Closes the snapshot's copies.
     */
    public static void restore(Collection<NDArray> params, List<NDArray> snapshot) {
        if (snapshot.size() != params.size()) {
            throw new IllegalArgumentException("a snapshot of " + snapshot.size() + " gradients for " + params.size()
                    + " parameters");
        }
        zero(params);
        int i = 0;
        for (NDArray p : params) {
            NDArray saved = snapshot.get(i++);
            if (saved == null) {
                continue;
            }
            try (saved; NDArray g = p.getGradient()) {
                g.addi(saved);
            }
        }
    }

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
