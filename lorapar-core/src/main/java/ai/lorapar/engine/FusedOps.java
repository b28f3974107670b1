package ai.lorapar.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;

import java.util.List;
import java.util.Objects;

/**
 * Fused tensor ops of the project's own libtorch JNI (native source {@code fused.cc}): each is one
 * JNI call where the NDArray composite would be several, which is what decoding at small batch is
 * bound by. Only engines that advertise {@link #CAPABILITY} have these natives; stock DJL does not,
 * and calling them there fails with an {@link UnsatisfiedLinkError}, so callers check
 * {@link #isAvailable(Engine)} first and otherwise use NDArray ops.
 *
 * <p>The decoder uses them only when asked ({@code -Dlorapar.fusedOps=true}, {@code -Dlorapar.fusedLayer=true}):
 * they are numerically equal to the NDArray path but measured slower on an H100 when sampling op by op
 * (figures in the README, "Benchmarks"; why was not investigated). Decoding's fast path is a CUDA graph
 * of the NDArray step instead ({@link CudaGraph}), where per-call overhead no longer counts.
 *
 * <p>Results are attached to the manager of the first argument. Arrays must be PyTorch arrays on
 * one device.
 */
public final class FusedOps {
    /** Capability advertised by the JNI when it was built with {@code fused.cc}. */
    public static final String CAPABILITY = "LORAPAR_FUSED";

    /** Capability advertised by the JNI when it was built with {@code fused_layer.cc} ({@link #decodeLayer}). */
    public static final String CAPABILITY_LAYER = "LORAPAR_FUSED_LAYER";

    /** Capability advertised by the JNI when it was built with {@code fused.cc}'s {@link #accumulateImportance}. */
    public static final String CAPABILITY_IMPORTANCE = "LORAPAR_FUSED_IMPORTANCE";

    private FusedOps() {}

    /** Whether {@code engine} has {@link #accumulateImportance} (PyTorch engine advertising {@link #CAPABILITY_IMPORTANCE}). */
    public static boolean isImportanceAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY_IMPORTANCE);
    }

    /**
     * One batch of importance sums in one call: for each i, {@code s1[i] += Σ_b grads[i][b]·params[i]} and
     * {@code s2[i] += Σ_b (grads[i][b]·params[i])²} in fp32, with {@code grads[i]} {@code [B, ...params[i] shape]}
     * and the sums fp32 in the parameters' shapes (updated in place). All on one device.
     */
    public static void accumulateImportance(List<NDArray> params, List<NDArray> grads, List<NDArray> s1,
            List<NDArray> s2) {
        accumulateImportanceNative(handles(params), handles(grads), handles(s1), handles(s2));
    }

    private static long[] handles(List<NDArray> arrays) {
        long[] h = new long[arrays.size()];
        for (int i = 0; i < h.length; i++) {
            h[i] = handle(arrays.get(i));
        }
        return h;
    }

    /** Whether {@code engine} has {@link #decodeLayer} (PyTorch engine advertising {@link #CAPABILITY_LAYER}). */
    public static boolean isLayerAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY_LAYER);
    }

    /**
     * One LLaMA-family decoder layer for one new token per row, in one call: RMSNorm, fused q/k/v
     * product, RoPE, KV-cache write at {@code past}, grouped-query attention over the cache, o_proj and
     * residual, RMSNorm, fused gate/up product, SiLU·up, down_proj and residual.
     *
     * @param x {@code [B, 1, hidden]}
     * @param arrays in this order (null for an absent bias or mask): inputNorm, qkvWeight, qkvBias,
     *     oWeight, oBias, postNorm, gateUpWeight, gateUpBias, downWeight, downBias, keyCache
     *     {@code [B, KV, capacity, D]}, valueCache, cos {@code [B, 1, 1, D]}, sinSigned, keepMask
     * @return {@code [B, 1, hidden]}, attached to {@code x}'s manager
     */
    public static NDArray decodeLayer(NDArray x, NDArray[] arrays, long past, int heads, int kvHeads, double eps,
            double scale) {
        if (arrays.length != 15) {
            throw new IllegalArgumentException("decodeLayer takes 15 arrays, got " + arrays.length);
        }
        long[] handles = new long[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            handles[i] = arrays[i] == null ? 0L : handle(arrays[i]);
        }
        return wrap(x, decodeLayerNative(handle(x), handles, past, heads, kvHeads, eps, scale));
    }

    /** Whether {@code engine} has these natives (PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /** RMSNorm: {@code x / sqrt(mean(x², -1) + eps)} in fp32, cast back to x's dtype, times {@code weight}. */
    public static NDArray rmsNorm(NDArray x, NDArray weight, double eps) {
        return wrap(x, rmsNormNative(handle(x), handle(weight), eps));
    }

    /** {@code silu(gate) · up} for {@code gateUp = [..., 2F]} holding gate then up on its last axis. */
    public static NDArray siluMul(NDArray gateUp) {
        return wrap(gateUp, siluMulNative(handle(gateUp)));
    }

    /**
     * Rotary embedding {@code x·cos + swap_halves(x)·sinSigned}, where {@code sinSigned} is the sin with
     * its first half negated (so this equals transformers' {@code x·cos + rotate_half(x)·sin}).
     */
    public static NDArray rope(NDArray x, NDArray cos, NDArray sinSigned) {
        return wrap(x, ropeNative(handle(x), handle(cos), handle(sinSigned)));
    }

    /**
     * {@code softmax(q·kᵀ·scale + mask)·v} by torch's {@code scaled_dot_product_attention}.
     *
     * @param q {@code [B, N, Tq, D]}
     * @param k {@code [B, N, S, D]}
     * @param v {@code [B, N, S, D]}
     * @param keepMask null, or a mask broadcasting to {@code [B, N, Tq, S]}: boolean, or numbers where
     *     nonzero means "may attend"
     * @param causal whether to add a causal mask (top-left aligned, as torch defines it)
     * @param scale the score scale, or 0 for {@code 1/sqrt(D)}
     */
    public static NDArray scaledDotProductAttention(NDArray q, NDArray k, NDArray v, NDArray keepMask, boolean causal,
            double scale) {
        return wrap(q, sdpaNative(handle(q), handle(k), handle(v), keepMask == null ? 0L : handle(keepMask), causal,
                scale));
    }

    /** Writes {@code src} into {@code dst} in place, at {@code [start, start + src.size(dim))} along {@code dim}. */
    public static void writeSlice(NDArray dst, NDArray src, int dim, long start) {
        writeSliceNative(handle(dst), handle(src), dim, start);
    }

    private static long handle(NDArray a) {
        return ((PtNDArray) a).getHandle();
    }

    private static NDArray wrap(NDArray like, long handle) {
        return new PtNDArray((PtNDManager) like.getManager(), handle);
    }

    private static native long rmsNormNative(long x, long weight, double eps);

    private static native long siluMulNative(long gateUp);

    private static native long ropeNative(long x, long cos, long sinSigned);

    private static native long sdpaNative(long q, long k, long v, long mask, boolean causal, double scale);

    private static native long decodeLayerNative(long x, long[] handles, long past, int heads, int kvHeads, double eps,
            double scale);

    private static native void accumulateImportanceNative(long[] params, long[] grads, long[] s1, long[] s2);

    private static native void writeSliceNative(long dst, long src, long dim, long start);
}
