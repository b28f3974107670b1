package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;

import java.util.Objects;

/**
 * What the running DJL engine can do, read without touching unsupported data types.
 *
 * <p>Stock DJL PyTorch natives abort the JVM when asked for {@link DataType#BFLOAT16}, so bf16
 * support is never probed by creating an array: it is read from the engine's capability set
 * ({@link Engine#hasCapability(String)}). The project's own JNI (built by {@code .ci/gpu/run}
 * against a local libtorch) advertises {@link #CAPABILITY_BF16} when bf16 works on the engine's
 * devices; stock DJL never does.
 */
public final class EngineSupport {

    /** Capability name advertised by an engine on which bf16 tensors are safe to create. */
    public static final String CAPABILITY_BF16 = "BF16";

    /** Capability name advertised by the project's own libtorch JNI (not by stock DJL). */
    public static final String CAPABILITY_LORAPAR_JNI = "LORAPAR_JNI";

    private EngineSupport() {}

    /**
     * Returns whether bf16 arrays may be created on this engine.
     *
     * @param engine the engine, never {@code null}
     * @return {@code true} when the engine advertises {@link #CAPABILITY_BF16}
     */
    public static boolean supportsBf16(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return engine.hasCapability(CAPABILITY_BF16);
    }

    /**
     * Returns whether the engine runs on the project's own libtorch JNI.
     *
     * @param engine the engine, never {@code null}
     * @return {@code true} when the engine advertises {@link #CAPABILITY_LORAPAR_JNI}
     */
    public static boolean isLoraparJni(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return engine.hasCapability(CAPABILITY_LORAPAR_JNI);
    }

    /**
     * Chooses the dtype for base weights and activations on a device.
     *
     * <p>GPU: {@link DataType#BFLOAT16} when the engine supports it, else {@link
     * DataType#FLOAT16}. CPU: always {@link DataType#FLOAT32} (half precision on CPUs is slow or
     * unsupported, and stock DJL aborts on bf16). LoRA parameters and optimizer state stay fp32
     * regardless.
     *
     * @param engine the engine, never {@code null}
     * @param device the device the computation runs on, never {@code null}
     * @return the compute data type
     */
    public static DataType computeDtype(Engine engine, Device device) {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(device, "device");
        if (!device.isGpu()) {
            return DataType.FLOAT32;
        }
        return supportsBf16(engine) ? DataType.BFLOAT16 : DataType.FLOAT16;
    }

    /**
     * Widens one bf16 value (its 16 bits) to fp32; exact, since bf16 is the upper half of an fp32.
     *
     * @param bits the bf16 bits
     * @return the value as a float
     */
    public static float bf16BitsToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * Rounds an fp32 value to bf16 (round to nearest, ties to even, as PyTorch does); NaN stays NaN.
     *
     * @param value the value
     * @return the bf16 bits
     */
    public static short floatToBf16Bits(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int bias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + bias) >>> 16);
    }
}
