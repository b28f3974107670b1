package ai.lorapar.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;

import java.util.List;
import java.util.Objects;

/**
 * One masked AdamW step over all parameters in one JNI call (native source {@code fused_adamw.cc}), for
 * optimizers such as {@code ai.lorapar.train.MaskedAdamW} on engines that advertise {@link #CAPABILITY}:
 * the update is a handful of torch multi-tensor kernels, the clipping factor stays on the device and the
 * gradient norm comes back as a device scalar (reading it is the caller's choice: it waits for the device).
 *
 * <p>The update is MaskedAdamW's ({@code torch.optim.AdamW} order): inactive gradients are ignored (NaN
 * included), global-norm clipping over active elements, decoupled weight decay on active elements, bias
 * corrections; a frozen element stays bit-identical and its moments stay 0. Values may differ from
 * MaskedAdamW's NDArray ops in the last bit (fused multiply-adds).
 */
public final class FusedAdamW {
    /** Capability advertised by the JNI when it was built with {@code fused_adamw.cc}. */
    public static final String CAPABILITY = "LORAPAR_FUSED_ADAMW";

    private FusedAdamW() {}

    /** Whether {@code engine} has these natives (PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /**
     * One step with the parameters' autograd gradients.
     *
     * @param params fp32 parameters, updated in place (each must have a gradient)
     * @param expAvg first moments, one per parameter, fp32, updated in place
     * @param expAvgSq second moments, likewise
     * @param masks null (all trainable) or one boolean mask per parameter (true = trainable)
     * @param step the 1-based step number (bias correction)
     * @param maxNorm global gradient-norm clipping threshold, 0 for none
     * @return the gradient norm over active elements before clipping, a 0-dim fp32 array on the device,
     *     attached to the first parameter's manager
     */
    public static NDArray step(List<NDArray> params, List<NDArray> expAvg, List<NDArray> expAvgSq, List<NDArray> masks,
            long step, double lr, double beta1, double beta2, double eps, double weightDecay, double maxNorm) {
        return step(params, expAvg, expAvgSq, masks, step, lr, beta1, beta2, eps, weightDecay, maxNorm, null);
    }

    /**
     * {@link #step(List, List, List, List, long, double, double, double, double, double, double)} with the
     * gradient norm already computed by {@link #gradNorm} (so a caller that checks it on the host first
     * does not compute it twice); {@code norm} null computes it.
     */
    public static NDArray step(List<NDArray> params, List<NDArray> expAvg, List<NDArray> expAvgSq, List<NDArray> masks,
            long step, double lr, double beta1, double beta2, double eps, double weightDecay, double maxNorm,
            NDArray norm) {
        if (params.isEmpty() || expAvg.size() != params.size() || expAvgSq.size() != params.size()
                || masks != null && masks.size() != params.size()) {
            throw new IllegalArgumentException("FusedAdamW: " + params.size() + " parameters, " + expAvg.size() + " and "
                    + expAvgSq.size() + " moments, " + (masks == null ? "no" : masks.size()) + " masks");
        }
        long h = stepNative(handles(params), handles(expAvg), handles(expAvgSq), masks == null ? null : handles(masks),
                step, lr, beta1, beta2, eps, weightDecay, maxNorm, norm == null ? 0L : ((PtNDArray) norm).getHandle());
        return new PtNDArray((PtNDManager) params.get(0).getManager(), h);
    }

    /**
     * The global gradient norm over active elements (masks null: all), a 0-dim fp32 array on the device,
     * attached to the first parameter's manager: NaN or infinite exactly when an active gradient element
     * is (or the norm overflows).
     */
    public static NDArray gradNorm(List<NDArray> params, List<NDArray> masks) {
        if (params.isEmpty() || masks != null && masks.size() != params.size()) {
            throw new IllegalArgumentException("FusedAdamW: " + params.size() + " parameters, "
                    + (masks == null ? "no" : masks.size()) + " masks");
        }
        long h = gradNormNative(handles(params), masks == null ? null : handles(masks));
        return new PtNDArray((PtNDManager) params.get(0).getManager(), h);
    }

    /** Zeroes the parameters' autograd gradients in place (those that have one), in one call. */
    public static void zeroGradients(List<NDArray> params) {
        zeroGradientsNative(handles(params));
    }

    private static long[] handles(List<NDArray> arrays) {
        long[] h = new long[arrays.size()];
        for (int i = 0; i < h.length; i++) {
            h[i] = ((PtNDArray) arrays.get(i)).getHandle();
        }
        return h;
    }

    private static native long stepNative(long[] params, long[] expAvg, long[] expAvgSq, long[] masks, long step,
            double lr, double beta1, double beta2, double eps, double weightDecay, double maxNorm, long norm);

    private static native long gradNormNative(long[] params, long[] masks);

    private static native void zeroGradientsNative(long[] params);
}
