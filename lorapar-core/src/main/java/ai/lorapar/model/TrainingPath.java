package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.lorapar.engine.TrainingOps;

import java.util.Locale;

/**
 * How a {@link DecoderModel} runs passes without a KV cache (training, scoring, importance): which
 * attention, LoRA, norm and loss implementations. Each switch is a system property read when the model
 * is made ({@code auto}, the default, uses the project JNI's op on a GPU when the engine has it and
 * NDArray ops otherwise; the other values force a choice, the native one only where the engine has it);
 * tests and benchmarks can also set them on a model ({@link DecoderModel#trainingPath()}). Decoding with a
 * KV cache is not affected.
 *
 * <table>
 * <caption>switches</caption>
 * <tr><th>property</th><th>values</th><th>native op</th></tr>
 * <tr><td>{@value #ATTENTION}</td><td>auto, explicit, sdpa</td><td>{@link TrainingOps#attention}: torch's fused
 *     attention (flash for right-padded/unpadded rows); explicit = fp32 softmax over a [B,H,T,T] matrix</td></tr>
 * <tr><td>{@value #LORA}</td><td>auto, adapter, fused</td><td>{@link TrainingOps#loraLinear}: projection + its
 *     LoRA deltas as one node; adapter = each adapter's own {@code delta} (NDArray ops)</td></tr>
 * <tr><td>{@value #LORA_COMPUTE}</td><td>auto, fp32, compute</td><td>dtype of the LoRA products: auto = the
 *     compute dtype on a GPU (bf16 on tensor cores, as {@code torch.autocast}), fp32 on a CPU; fp32 = PEFT's</td></tr>
 * <tr><td>{@value #LEAN}</td><td>auto, on, off</td><td>{@link TrainingOps#rmsNorm}, {@link TrainingOps#siluMul}:
 *     keep only their input for backward</td></tr>
 * <tr><td>{@value #LOSS}</td><td>auto, chunked, fused</td><td>{@link TrainingOps#tokenNll}: head + cross-entropy
 *     at selected rows keeping no logits; chunked = NDArray ops, a chunk of rows at a time</td></tr>
 * </table>
 */
public final class TrainingPath {
    /** System property choosing the attention of cache-free passes. */
    public static final String ATTENTION = "lorapar.attention";
    /** System property choosing how adapted projections run in cache-free passes. */
    public static final String LORA = "lorapar.loraPath";
    /** System property: dtype of the fused LoRA product (shared with the adapters' own NDArray path). */
    public static final String LORA_COMPUTE = "lorapar.loraCompute";
    /** System property choosing lean RMSNorm and SiLU·up nodes in cache-free passes. */
    public static final String LEAN = "lorapar.leanOps";
    /** System property choosing how {@link DecoderModel#tokenNll} computes the loss. */
    public static final String LOSS = "lorapar.loss";

    /** Rows of logits the chunked loss computes at a time: as many as make about this many elements. */
    static final long LOSS_CHUNK_ELEMENTS = 1L << 26;

    private final Engine engine;
    private final boolean gpu;
    volatile boolean sdpa;
    volatile boolean fusedLora;
    volatile boolean loraFp32;
    volatile boolean lean;
    volatile boolean fusedLoss;

    TrainingPath(Engine engine, Device device) {
        this.engine = engine;
        this.gpu = device.isGpu();
        this.sdpa = choose(ATTENTION, "sdpa", "explicit", TrainingOps.ATTENTION);
        this.fusedLora = choose(LORA, "fused", "adapter", TrainingOps.LORA);
        this.loraFp32 = !computeInInputDtype(System.getProperty(LORA_COMPUTE, "auto"), gpu);
        this.lean = choose(LEAN, "on", "off", TrainingOps.NORM);
        this.fusedLoss = choose(LOSS, "fused", "chunked", TrainingOps.LOSS);
    }

    /**
     * Whether LoRA products run in the compute dtype for the {@value #LORA_COMPUTE} value {@code v}:
     * {@code compute}, or {@code auto} on a GPU (what {@code torch.autocast} does for a bf16 run: the
     * matrix products in bf16 on tensor cores, parameters, gradients and optimizer state in fp32);
     * {@code fp32} (PEFT's own dtype handling), or {@code auto} on a CPU, keeps them in fp32.
     */
    public static boolean computeInInputDtype(String v, boolean gpu) {
        String value = v.trim().toLowerCase(Locale.ROOT);
        return switch (value) {
            case "compute" -> true;
            case "fp32" -> false;
            case "auto" -> gpu;
            default -> throw new IllegalArgumentException("system property " + LORA_COMPUTE + "=" + v
                    + ": expected auto, fp32 or compute");
        };
    }

    private boolean choose(String property, String on, String off, String capability) {
        String v = System.getProperty(property, "auto").trim().toLowerCase(Locale.ROOT);
        boolean has = TrainingOps.has(engine, capability);
        if (v.equals(on)) {
            return has;
        }
        if (v.equals(off)) {
            return false;
        }
        if (!v.equals("auto")) {
            throw new IllegalArgumentException("system property " + property + "=" + v + ": expected auto, " + on
                    + " or " + off);
        }
        return has && gpu;
    }

    /** Attention through torch's fused kernel (when the engine has it) or the explicit softmax. Returns whether on. */
    public boolean setSdpa(boolean on) {
        this.sdpa = on && TrainingOps.has(engine, TrainingOps.ATTENTION);
        return sdpa;
    }

    /** Projections with LoRA as one fused node (when the engine has it) or through the adapters. Returns whether on. */
    public boolean setFusedLora(boolean on) {
        this.fusedLora = on && TrainingOps.has(engine, TrainingOps.LORA);
        return fusedLora;
    }

    /** The fused LoRA product in fp32 (PEFT) or in the compute dtype. */
    public void setLoraFp32(boolean fp32) {
        this.loraFp32 = fp32;
    }

    /** Lean RMSNorm and SiLU·up nodes (when the engine has them). Returns whether on. */
    public boolean setLean(boolean on) {
        this.lean = on && TrainingOps.has(engine, TrainingOps.NORM);
        return lean;
    }

    /** The fused head + cross-entropy (when the engine has it) or chunked NDArray ops. Returns whether on. */
    public boolean setFusedLoss(boolean on) {
        this.fusedLoss = on && TrainingOps.has(engine, TrainingOps.LOSS);
        return fusedLoss;
    }

    public boolean sdpa() {
        return sdpa;
    }

    public boolean fusedLora() {
        return fusedLora;
    }

    public boolean loraFp32() {
        return loraFp32;
    }

    public boolean lean() {
        return lean;
    }

    public boolean fusedLoss() {
        return fusedLoss;
    }

    @Override
    public String toString() {
        return "attention=" + (sdpa ? "sdpa" : "explicit") + " lora=" + (fusedLora ? "fused" : "adapter")
                + " loraCompute=" + (loraFp32 ? "fp32" : "compute") + " lean=" + (lean ? "on" : "off") + " loss="
                + (fusedLoss ? "fused" : "chunked");
    }
}
