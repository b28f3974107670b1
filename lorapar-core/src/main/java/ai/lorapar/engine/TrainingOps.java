package ai.lorapar.engine;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;

import java.util.List;
import java.util.Objects;

/**
 * Training-path ops of the project's own libtorch JNI: each is one JNI call made of ordinary torch ops
 * or one custom autograd node, so it works under DJL's gradient collector and cuts both the per-op
 * cost of DJL (one JNI call per NDArray op) and what autograd keeps for backward. Four optional native
 * sources, each with its capability, so that one failing to compile loses only its ops:
 *
 * <ul>
 *   <li>{@link #ATTENTION} ({@code train_attention.cc}): RoPE + q/k/v split + torch's fused
 *       {@code scaled_dot_product_attention} ({@link #attention}, {@link #sdpa} with {@code enable_gqa});
 *   <li>{@link #LORA} ({@code train_lora.cc}): a frozen projection plus its LoRA deltas as one autograd
 *       node that keeps only its input and draws its dropout masks again in backward
 *       ({@link #loraLinear}); keyed inverted dropout in one call ({@link #keyedDropout});
 *   <li>{@link #LOSS} ({@code train_loss.cc}): LM head + cross-entropy at selected rows, chunked, keeping
 *       no logits for backward ({@link #tokenNll});
 *   <li>{@link #NORM} ({@code train_norm.cc}): RMSNorm and SiLU·up keeping their input only
 *       ({@link #rmsNorm}, {@link #siluMul}).
 * </ul>
 *
 * <p>Stock DJL has none of them: callers check the capability ({@link #has}) and otherwise use NDArray
 * ops. Results are attached to the manager of the first array argument; arrays must be PyTorch arrays on
 * one device.
 *
 * <p>Dropout masks here are a deterministic function of the key on one kind of device (CPU: mt19937
 * seeded with the key; CUDA: Philox with seed = key): reproducible run to run, independent of the
 * engine's global generator, but different from the NDArray path's hash masks.
 */
public final class TrainingOps {
    /** {@code train_attention.cc}: {@link #attention}, {@link #sdpa}. */
    public static final String ATTENTION = "LORAPAR_TRAIN_ATTENTION";
    /** {@code train_lora.cc}: {@link #loraLinear}, {@link #keyedDropout}, {@link #keepMask}. */
    public static final String LORA = "LORAPAR_TRAIN_LORA";
    /** {@code train_lora.cc} with per-example gradients: {@link #loraLinearRows}. */
    public static final String LORA_ROWS = "LORAPAR_TRAIN_LORA_ROWS";
    /** {@code train_loss.cc}: {@link #tokenNll}. */
    public static final String LOSS = "LORAPAR_TRAIN_LOSS";
    /** {@code train_norm.cc}: {@link #rmsNorm}, {@link #siluMul}. */
    public static final String NORM = "LORAPAR_TRAIN_NORM";

    private TrainingOps() {}

    /** Whether {@code engine} is the PyTorch engine advertising {@code capability} (one of this class's constants). */
    public static boolean has(Engine engine, String capability) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(capability);
    }

    /**
     * The attention block of a cache-free pass: RoPE of q and k ({@code x·cos + swap_halves(x)·sinSigned}),
     * then {@code softmax(q·kᵀ·scale + mask)·v} by torch's fused kernel.
     *
     * @param qkv {@code [B, T, heads + 2·kvHeads, D]}: q heads, then k heads, then v heads
     * @param cos {@code [B, T, 1, D]}
     * @param sinSigned {@code [B, T, 1, D]}, the sin with its first half negated
     * @param keep null, or a boolean mask broadcasting to {@code [B, heads, T, T]} (true = may attend)
     * @param causal whether torch adds its causal mask (exact for right-padded rows without a mask)
     * @param scale the score scale, or 0 for {@code 1/sqrt(D)}
     * @return {@code [B, T, heads·D]}
     */
    public static NDArray attention(NDArray qkv, NDArray cos, NDArray sinSigned, NDArray keep, int heads, int kvHeads,
            boolean causal, double scale) {
        return wrap(qkv, attentionNative(handle(qkv), handle(cos), handle(sinSigned), keep == null ? 0L : handle(keep),
                heads, kvHeads, causal, scale));
    }

    /** torch's {@code scaled_dot_product_attention(q, k, v, mask, 0, causal, scale, enable_gqa)}. */
    public static NDArray sdpa(NDArray q, NDArray k, NDArray v, NDArray keep, boolean causal, double scale,
            boolean enableGqa) {
        return wrap(q, sdpaNative(handle(q), handle(k), handle(v), keep == null ? 0L : handle(keep), causal, scale,
                enableGqa));
    }

    /** One adapter of {@link #loraLinear}: its part of the output and its factors. */
    public record LoraPart(NDArray a, NDArray b, long offset, long width, double scaling, double dropout,
            long dropoutKey) {}

    /**
     * {@code y = x·Wᵀ + bias}, then per adapter {@code y[..., offset:offset+width] += scaling·(drop(x)·Aᵀ)·Bᵀ},
     * as one autograd node: gradients reach x, A and B (W and bias are frozen).
     *
     * @param fp32 whether the LoRA products run in fp32 (as PEFT, which casts the input to the adapter's
     *     dtype) or in x's dtype with A and B cast to it
     */
    public static NDArray loraLinear(NDArray x, NDArray weight, NDArray bias, List<LoraPart> parts, boolean fp32) {
        PackedParts p = new PackedParts(parts);
        return wrap(x, loraLinearNative(handle(x), handle(weight), bias == null ? 0L : handle(bias), p.as, p.bs,
                p.offsets, p.widths, p.scalings, p.dropouts, p.keys, fp32));
    }

    /** The per-adapter arrays the LoRA natives take. */
    private static final class PackedParts {
        final long[] as;
        final long[] bs;
        final long[] offsets;
        final long[] widths;
        final double[] scalings;
        final double[] dropouts;
        final long[] keys;

        PackedParts(List<LoraPart> parts) {
            int n = parts.size();
            as = new long[n];
            bs = new long[n];
            offsets = new long[n];
            widths = new long[n];
            scalings = new double[n];
            dropouts = new double[n];
            keys = new long[n];
            for (int i = 0; i < n; i++) {
                LoraPart p = parts.get(i);
                as[i] = handle(p.a());
                bs[i] = handle(p.b());
                offsets[i] = p.offset();
                widths[i] = p.width();
                scalings[i] = p.scaling();
                dropouts[i] = p.dropout();
                keys[i] = p.dropoutKey();
            }
        }
    }

    /**
     * {@link #loraLinear} of a scoring pass (no dropout, LoRA products in fp32) whose backward also gives
     * per-example gradients: with the batch's rows split into {@code R} equal examples (R = the first
     * dimension of the buffers), backward adds example b's gradient of each adapter's A into
     * {@code rowGradA.get(i)[b]} ({@code [R, r, in]} fp32) and of B into {@code rowGradB.get(i)[b]}
     * ({@code [R, out_i, r]} fp32). The shared A and B get no gradient from such a pass; x gets its own.
     * Capability {@link #LORA_ROWS}.
     */
    public static NDArray loraLinearRows(NDArray x, NDArray weight, NDArray bias, List<LoraPart> parts,
            List<NDArray> rowGradA, List<NDArray> rowGradB) {
        int n = parts.size();
        if (rowGradA.size() != n || rowGradB.size() != n) {
            throw new IllegalArgumentException("loraLinearRows: " + n + " adapters but " + rowGradA.size() + " and "
                    + rowGradB.size() + " row-gradient buffers");
        }
        PackedParts p = new PackedParts(parts);
        long[] gas = new long[n];
        long[] gbs = new long[n];
        for (int i = 0; i < n; i++) {
            gas[i] = handle(rowGradA.get(i));
            gbs[i] = handle(rowGradB.get(i));
        }
        return wrap(x, loraLinearRowsNative(handle(x), handle(weight), bias == null ? 0L : handle(bias), p.as, p.bs,
                p.offsets, p.widths, p.scalings, gas, gbs));
    }

    /**
     * Inverted dropout {@code x·keep/(1 − rate)} in one call, differentiable, with the keep-mask of
     * {@code key} (the mask {@link #loraLinear} draws for that key over an input of x's shape).
     */
    public static NDArray keyedDropout(NDArray x, double rate, long key) {
        return wrap(x, keyedDropoutNative(handle(x), rate, key));
    }

    /** The boolean keep-mask {@code [rows, cols]} that {@link #keyedDropout} and {@link #loraLinear} draw for {@code key}. */
    public static NDArray keepMask(NDArray like, long rows, long cols, double rate, long key) {
        return wrap(like, keepMaskNative(handle(like), rows, cols, rate, key));
    }

    /**
     * Per-row negative log-likelihood {@code logsumexp(h·Wᵀ) − (h·Wᵀ)[target]} in fp32, computed
     * {@code chunk} rows at a time; differentiable in {@code hidden}.
     *
     * @param hidden {@code [N, H]}, final normed hidden states of the selected positions
     * @param weight {@code [V, H]}, the (frozen) LM head
     * @param targets {@code [N]} int64 in {@code [0, V)}
     */
    public static NDArray tokenNll(NDArray hidden, NDArray weight, NDArray targets, long chunk) {
        return wrap(hidden, tokenNllNative(handle(hidden), handle(weight), handle(targets), chunk));
    }

    /** RMSNorm (fp32 inside, cast back, times the frozen weight), keeping its input and one fp32 per row. */
    public static NDArray rmsNorm(NDArray x, NDArray weight, double eps) {
        return wrap(x, rmsNormNative(handle(x), handle(weight), eps));
    }

    /** {@code silu(gate)·up} of {@code gateUp = [..., 2F]}, keeping only its input for backward. */
    public static NDArray siluMul(NDArray gateUp) {
        return wrap(gateUp, siluMulNative(handle(gateUp)));
    }

    private static long handle(NDArray a) {
        return ((PtNDArray) a).getHandle();
    }

    private static NDArray wrap(NDArray like, long handle) {
        return new PtNDArray((PtNDManager) like.getManager(), handle);
    }

    private static native long attentionNative(long qkv, long cos, long sin, long keep, int heads, int kvHeads,
            boolean causal, double scale);

    private static native long sdpaNative(long q, long k, long v, long mask, boolean causal, double scale,
            boolean enableGqa);

    private static native long loraLinearNative(long x, long weight, long bias, long[] as, long[] bs, long[] offsets,
            long[] widths, double[] scalings, double[] dropouts, long[] keys, boolean fp32);

    private static native long loraLinearRowsNative(long x, long weight, long bias, long[] as, long[] bs,
            long[] offsets, long[] widths, double[] scalings, long[] rowGradA, long[] rowGradB);

    private static native long keyedDropoutNative(long x, double rate, long key);

    private static native long keepMaskNative(long like, long rows, long cols, double rate, long key);

    private static native long tokenNllNative(long hidden, long weight, long targets, long chunk);

    private static native long rmsNormNative(long x, long weight, double eps);

    private static native long siluMulNative(long gateUp);
}
