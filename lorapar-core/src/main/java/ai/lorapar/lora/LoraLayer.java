package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.TrainingOps;
import ai.lorapar.model.Linear;
import ai.lorapar.model.LinearAdapter;

import java.util.Locale;

/**
 * The LoRA adapter of one linear layer: {@code delta(x) = scaling · dropout(x)·Aᵀ·Bᵀ} with
 * A {@code [r, in]} and B {@code [out, r]} fp32 leaves. Computed in fp32 (an fp16/bf16 input is
 * widened, as PEFT casts the input to the LoRA weights' dtype); the layer casts the result back.
 *
 * <p>While the owning {@link LoraModel} is disabled, an adapter with a residual initialisation
 * (PiSSA, OLoRA) adds back its initial term {@code scaling·B₀·A₀}, so a disabled model is the
 * original base model, not the residual one. While merged it adds nothing (B·A is in the weight).
 *
 * <p>Two switches for this NDArray path, read when the adapter is made (the model's fused projection,
 * {@code DecoderModel.LORA_PATH_PROPERTY}, has its own; on a GPU with the project's JNI that one is used):
 * {@value #COMPUTE_PROPERTY} = {@code fp32} (default, PEFT's behaviour) or {@code compute} (the product
 * in the input's dtype with A and B cast to it: no fp32 copy of the input is made or kept for backward;
 * a no-op for fp32 inputs); {@value #DROPOUT_PROPERTY} = {@code auto} (default: {@code keyed} on a GPU
 * when the engine has {@link TrainingOps#LORA}, else {@code hash}), {@code hash} ({@link DropoutMasks},
 * ~20 int64 NDArray ops per mask) or {@code keyed} ({@link TrainingOps#keyedDropout}, one call; falls
 * back to {@code hash} where the engine lacks it). Both draw the mask from the same key, so either is
 * reproducible and independent of the engine's global generator.
 */
public final class LoraLayer implements LinearAdapter {
    /**
     * System property: {@code auto} (default: the compute dtype on a GPU, fp32 on a CPU), {@code fp32} or
     * {@code compute}, the dtype of this path's LoRA product (see {@code TrainingPath}).
     */
    public static final String COMPUTE_PROPERTY = "lorapar.loraCompute";
    /** System property: {@code auto} (default), {@code hash} or {@code keyed}, how this path draws dropout masks. */
    public static final String DROPOUT_PROPERTY = "lorapar.dropout";

    private final String module;
    private final Linear linear;
    private final int stream;
    private final NDArray a;
    private final NDArray b;
    private final NDArray a0;
    private final NDArray b0;
    private final float scaling;
    /**
     * {@link #scaling} as a 0-dim fp32 array on the adapter's device, made once: DJL's {@code mul(Number)}
     * creates the scalar from host memory at every call (on a GPU a synchronous copy, which also cannot
     * be captured in a CUDA graph). Same value and dtype, so products are unchanged.
     */
    private final NDArray scalingArr;
    private final double dropout;
    private volatile long dropoutSeed;
    private long dropoutCalls;
    private volatile boolean enabled = true;
    private volatile boolean merged;
    /**
     * Per-example leaf copies of (A, B), {@code [rows, r, in]} and {@code [rows, out, r]}, while a
     * {@link PerExampleGradients} is open: row b of the batch goes through its own copy, so the gradient
     * of a sum of per-row losses w.r.t. copy b is row b's own gradient. Null otherwise.
     */
    private volatile NDArray[] rowFactors;
    private volatile NDArray[] rowGradients;
    private final boolean computeInInputDtype;
    private final boolean keyedDropout;

    LoraLayer(String module, Linear linear, int stream, NDArray a, NDArray b, NDArray a0, NDArray b0, double scaling,
            double dropout, long dropoutSeed) {
        this.module = module;
        this.linear = linear;
        this.stream = stream;
        this.a = a;
        this.b = b;
        this.a0 = a0;
        this.b0 = b0;
        this.scaling = (float) scaling;
        this.scalingArr = a.getManager().create(this.scaling);
        this.dropout = dropout;
        this.dropoutSeed = dropoutSeed;
        this.computeInInputDtype = ai.lorapar.model.TrainingPath.computeInInputDtype(
                System.getProperty(COMPUTE_PROPERTY, "auto"), a.getDevice().isGpu());
        String drop = System.getProperty(DROPOUT_PROPERTY, "auto").toLowerCase(Locale.ROOT);
        boolean nativeOk = TrainingOps.has(a.getManager().getEngine(), TrainingOps.LORA);
        this.keyedDropout = nativeOk && ("keyed".equals(drop) || "auto".equals(drop) && a.getDevice().isGpu());
    }

    /** The Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public String module() {
        return module;
    }

    /** The wrapped layer. */
    public Linear linear() {
        return linear;
    }

    /** A, {@code [r, in]}, an fp32 leaf with a gradient. */
    public NDArray a() {
        return a;
    }

    /** B, {@code [out, r]}, an fp32 leaf with a gradient. */
    public NDArray b() {
        return b;
    }

    /** A₀ of a residual initialisation (PiSSA/OLoRA), or null. */
    public NDArray initialA() {
        return a0;
    }

    /** B₀ of a residual initialisation (PiSSA/OLoRA), or null. */
    public NDArray initialB() {
        return b0;
    }

    public float scaling() {
        return scaling;
    }

    public boolean isMerged() {
        return merged;
    }

    void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    /** Installs (or, with nulls, removes) per-example copies of A and B ({@link PerExampleGradients}). */
    void setRowFactors(NDArray aRows, NDArray bRows) {
        this.rowFactors = aRows == null ? null : new NDArray[] {aRows, bRows};
    }

    /**
     * Installs (or, with nulls, removes) the buffers that the fused projection adds per-example gradients
     * of A and B into ({@link PerExampleGradients} on an engine with {@code TrainingOps.LORA_ROWS}).
     */
    void setRowGradients(NDArray gradA, NDArray gradB) {
        this.rowGradients = gradA == null ? null : new NDArray[] {gradA, gradB};
    }

    synchronized void reseed(long seed) {
        this.dropoutSeed = seed;
        this.dropoutCalls = 0;
    }

    @Override
    public synchronized long nextDropoutKey() {
        return DropoutMasks.mixKey(dropoutSeed, stream, dropoutCalls++);
    }

    /** (A, B) while enabled, (A₀, B₀) without dropout while disabled with a residual init, none while merged or disabled. */
    @Override
    public TrainingFactors trainingFactors(Linear layer) {
        if (rowFactors != null) {
            return null; // per-example copies (PerExampleGradients) run through delta, never the fused node
        }
        NDArray[] rowGrads = rowGradients;
        if (rowGrads != null) {
            return new TrainingFactors(a, b, scaling, 0, rowGrads[0], rowGrads[1]); // scoring: no dropout
        }
        if (merged || (!enabled && a0 == null)) {
            return TrainingFactors.none();
        }
        return enabled ? new TrainingFactors(a, b, scaling, dropout) : new TrainingFactors(a0, b0, scaling, 0);
    }

    @Override
    public NDArray delta(Linear layer, NDArray input, boolean training) {
        if (rowGradients != null) {
            throw new IllegalStateException(module + ": per-example gradients are open for the fused projection"
                    + " (TrainingOps.LORA_ROWS), but this pass took the adapter path, which would not give them:"
                    + " keep the model's fused LoRA path on (DecoderModel.trainingPath()) while they are open");
        }
        if (merged) {
            return null;
        }
        if (!enabled && a0 == null) {
            return null;
        }
        NDManager out = input.getManager();
        try (NDManager s = out.newSubManager()) {
            NDArray x = input;
            // per-example gradients (importance) stay in fp32: a second-order score wants their precision
            DataType ct = computeInInputDtype && rowFactors == null ? x.getDataType() : DataType.FLOAT32;
            if (x.getDataType() != ct) {
                x = x.toType(ct, false);
                x.attach(s);
            }
            NDArray result;
            if (!enabled) {
                // the original base: W_res + scaling·B₀·A₀ (no dropout: a reference, not a trained term)
                result = lowRank(x, cast(a0, ct, s), cast(b0, ct, s), s);
            } else {
                if (training && dropout > 0) {
                    if (keyedDropout) {
                        x = TrainingOps.keyedDropout(x, dropout, nextDropoutKey());
                    } else {
                        NDArray keep = DropoutMasks.scaledKeepMask(s, x.getShape(), dropout, nextDropoutKey());
                        x = x.mul(keep);
                        if (x.getDataType() != ct) { // a bf16/fp16 input times the fp32 mask: one rounding back
                            x.attach(s);
                            x = x.toType(ct, false);
                        }
                    }
                    x.attach(s);
                }
                NDArray[] rows = rowFactors;
                result = rows == null ? lowRank(x, cast(a, ct, s), cast(b, ct, s), s)
                        : lowRankPerRow(x, cast(rows[0], ct, s), cast(rows[1], ct, s), s);
            }
            result.attach(out);
            return result;
        }
    }

    /** The factors {@link #delta} applies when not training: (A, B), (A₀, B₀) while disabled with a residual init, or none. */
    @Override
    public LowRankFactors inferenceFactors(Linear layer) {
        if (merged || (!enabled && a0 == null)) {
            return LowRankFactors.none();
        }
        return enabled ? new LowRankFactors(a, b, scaling) : new LowRankFactors(a0, b0, scaling);
    }

    /** {@code p} in dtype {@code ct} (differentiable: the gradient reaches the fp32 leaf), or p itself. */
    private static NDArray cast(NDArray p, DataType ct, NDManager s) {
        if (p.getDataType() == ct) {
            return p;
        }
        NDArray c = p.toType(ct, false);
        c.attach(s);
        return c;
    }

    private NDArray lowRank(NDArray x, NDArray aa, NDArray bb, NDManager s) {
        NDArray at = aa.transpose();
        at.attach(s);
        NDArray bt = bb.transpose();
        bt.attach(s);
        NDArray h = x.matMul(at);
        h.attach(s);
        NDArray y = h.matMul(bt);
        y.attach(s);
        NDArray scaled = y.mul(scalingArr);
        scaled.attach(s);
        return scaled;
    }

    /**
     * {@link #lowRank} with row b of {@code x} ({@code [rows, ..., in]}) through its own factors
     * {@code aRows[b]}, {@code bRows[b]}: two batched matrix products, the same FLOPs as the shared ones.
     */
    private NDArray lowRankPerRow(NDArray x, NDArray aRows, NDArray bRows, NDManager s) {
        Shape xs = x.getShape();
        long rows = aRows.getShape().get(0);
        if (xs.dimension() < 2 || xs.get(0) != rows) {
            throw new IllegalStateException(module + ": per-example gradients are open for " + rows
                    + " rows, but the input is " + xs + " (the batch must have exactly that many rows)");
        }
        NDArray x3 = x.reshape(rows, -1, xs.get(xs.dimension() - 1));
        x3.attach(s);
        NDArray at = aRows.transpose(0, 2, 1);
        at.attach(s);
        NDArray bt = bRows.transpose(0, 2, 1);
        bt.attach(s);
        NDArray h = x3.matMul(at); // [rows, L, r]
        h.attach(s);
        NDArray y = h.matMul(bt); // [rows, L, out]
        y.attach(s);
        NDArray scaled = y.mul(scalingArr);
        scaled.attach(s);
        NDArray shaped = scaled.reshape(xs.slice(0, xs.dimension() - 1).add(bRows.getShape().get(1)));
        shaped.attach(s);
        return shaped;
    }

    /** scaling·B·A in fp32, detached from autograd; attached to {@code m}. */
    NDArray product(NDManager m) {
        try (NDManager s = m.newSubManager()) {
            NDArray ad = a.stopGradient();
            ad.attach(s);
            NDArray bd = b.stopGradient();
            bd.attach(s);
            NDArray p = bd.matMul(ad);
            p.attach(s);
            NDArray r = p.mul(scalingArr);
            r.attach(m);
            return r;
        }
    }

    /** W += scaling·B·A (in place, computed in fp32 and rounded once to W's dtype). */
    synchronized void merge() {
        if (merged) {
            throw new IllegalStateException(module + ": adapter already merged");
        }
        try (NDManager s = linear.weight().getManager().newSubManager()) {
            linear.weight().addi(product(s));
        }
        merged = true;
    }

    /** W −= scaling·B·A. */
    synchronized void unmerge() {
        if (!merged) {
            throw new IllegalStateException(module + ": adapter is not merged");
        }
        try (NDManager s = linear.weight().getManager().newSubManager()) {
            linear.weight().subi(product(s));
        }
        merged = false;
    }

    /** Restores W from W_res: W += scaling·B₀·A₀ (residual initialisations). */
    void restoreBase() {
        if (a0 == null) {
            return;
        }
        try (NDManager s = linear.weight().getManager().newSubManager()) {
            NDArray p = b0.matMul(a0);
            p.attach(s);
            NDArray scaled = p.mul(scalingArr);
            scaled.attach(s);
            linear.weight().addi(scaled);
        }
    }

    @Override
    public String toString() {
        return "LoraLayer[" + module + ", r=" + a.getShape().get(0) + ", scaling=" + scaling
                + (a0 != null ? ", residual" : "") + (merged ? ", merged" : "") + (enabled ? "" : ", disabled") + "]";
    }
}
