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
 *
 * <p>{@link #requireEngine()} starts the engine once and turns a missing native library into an error
 * that names the Maven artifact to add; a host application calls it (or {@link #newBaseManager}) before
 * creating its first {@code NDManager}.
 */
public final class EngineSupport {

    /** Capability name advertised by an engine on which bf16 tensors are safe to create. */
    public static final String CAPABILITY_BF16 = "BF16";

    /** Capability name advertised by the project's own libtorch JNI (not by stock DJL). */
    public static final String CAPABILITY_LORAPAR_JNI = "LORAPAR_JNI";

    /** The engine this library runs on. */
    public static final String ENGINE_NAME = "PyTorch";

    /** The outcome of the first {@link #requireEngine()}: the engine or the error, kept so it is not retried. */
    private static volatile Object required;

    private EngineSupport() {}

    /**
     * The PyTorch engine, started on the first call; call it (or {@link #newBaseManager}) before creating
     * managers, so that a missing native library is reported with what to add instead of DJL's
     * "Failed to save pytorch index file" or "Offline mode is enabled". The outcome is detected once and
     * remembered.
     *
     * @return the engine
     * @throws IllegalStateException when the engine cannot start, naming the Maven artifact of the native
     *     library for this platform (and quoting DJL's own message)
     */
    public static Engine requireEngine() {
        Object r = required;
        if (r == null) {
            synchronized (EngineSupport.class) {
                r = required;
                if (r == null) {
                    r = start(() -> Engine.getEngine(ENGINE_NAME));
                    required = r;
                }
            }
        }
        if (r instanceof Engine engine) {
            return engine;
        }
        IllegalStateException failure = (IllegalStateException) r;
        throw new IllegalStateException(failure.getMessage(), failure.getCause());
    }

    /**
     * A new base manager on {@code device}, after {@link #requireEngine()}.
     *
     * @param device the device, e.g. {@code Device.cpu()} or {@code Device.gpu()}
     * @return a new manager; close it
     * @throws IllegalStateException when the engine cannot start, naming the artifact to add
     */
    public static ai.djl.ndarray.NDManager newBaseManager(Device device) {
        return requireEngine().newBaseManager(device);
    }

    /**
     * A new base manager on the engine's default device (a GPU when there is one), after
     * {@link #requireEngine()}.
     *
     * @return a new manager; close it
     * @throws IllegalStateException when the engine cannot start, naming the artifact to add
     */
    public static ai.djl.ndarray.NDManager newBaseManager() {
        return requireEngine().newBaseManager();
    }

    /** Starts the engine; a failure becomes the exception to report (not thrown here). */
    static Object start(java.util.function.Supplier<Engine> starter) {
        try {
            Engine engine = starter.get();
            if (engine == null) {
                throw new IllegalStateException("DJL has no " + ENGINE_NAME + " engine");
            }
            return engine;
        } catch (RuntimeException | UnsatisfiedLinkError | ExceptionInInitializerError | NoClassDefFoundError e) {
            return new IllegalStateException(missingEngineMessage(e, nativeJarOnClasspath()), e);
        }
    }

    /** Whether a {@code pytorch-native-*} jar is on the classpath (it holds {@code native/lib/pytorch.properties}). */
    static boolean nativeJarOnClasspath() {
        ClassLoader cl = Thread.currentThread().getContextClassLoader();
        if (cl == null) {
            cl = EngineSupport.class.getClassLoader();
        }
        return cl.getResource("native/lib/pytorch.properties") != null;
    }

    /** What to tell a user whose engine did not start. */
    static String missingEngineMessage(Throwable cause, boolean nativeJarPresent) {
        String djl = rootMessage(cause);
        String classifier = platformClassifier();
        String version = pytorchVersion();
        if (nativeJarPresent) {
            return "the " + ENGINE_NAME + " engine did not start although a pytorch-native jar is on the classpath; "
                    + "check that it is ai.djl.pytorch:pytorch-native-cpu:" + version + ":" + classifier
                    + " (the version DJL's pytorch-engine expects) and that the platform matches. DJL said: " + djl;
        }
        return "the " + ENGINE_NAME + " engine did not start: no PyTorch native library is on the classpath. Add "
                + "ai.djl.pytorch:pytorch-native-cpu:" + version + " with classifier " + classifier
                + " as a runtime dependency:\n"
                + "  <dependency><groupId>ai.djl.pytorch</groupId><artifactId>pytorch-native-cpu</artifactId>"
                + "<version>" + version + "</version><classifier>" + classifier + "</classifier>"
                + "<scope>runtime</scope></dependency>\n"
                + "For CUDA, allow DJL to download the CUDA build on first use (network access, without "
                + "-Dai.djl.offline=true) or set PYTORCH_LIBRARY_PATH to a libtorch " + version
                + " (see the README, \"Use it as a dependency\"). DJL said: " + djl;
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        StringBuilder out = new StringBuilder(String.valueOf(t));
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
            out.append(" <- ").append(t);
        }
        return out.toString();
    }

    /** DJL's classifier of this machine: linux-x86_64, linux-aarch64, osx-aarch64, win-x86_64. */
    static String platformClassifier() {
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(java.util.Locale.ROOT);
        String o = os.startsWith("mac") || os.startsWith("darwin") ? "osx" : os.startsWith("win") ? "win" : "linux";
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch.equals("aarch64") || arch.equals("arm64")
                ? "aarch64" : arch;
        return o + "-" + a;
    }

    /** The PyTorch version DJL's pytorch-engine expects (its {@code pytorch-engine.properties}), else 2.7.1. */
    static String pytorchVersion() {
        try (java.io.InputStream in = EngineSupport.class.getClassLoader()
                .getResourceAsStream("pytorch-engine.properties")) {
            if (in != null) {
                java.util.Properties p = new java.util.Properties();
                p.load(in);
                return p.getProperty("pytorch_version", "2.7.1");
            }
        } catch (java.io.IOException e) {
            // fall through
        }
        return "2.7.1";
    }

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
