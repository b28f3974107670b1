package ai.lorapar.engine;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

import java.nio.file.Path;
import java.util.Objects;

/**
 * torch's profiler (Kineto) through the project's JNI (native source {@code profile.cc}): records every
 * op the engine runs, and on CUDA every kernel, between {@link #start} and {@link #stop}, into a Chrome
 * trace ({@code chrome://tracing}, Perfetto). For benchmarks: where a training step's time goes.
 *
 * <p>Only engines that advertise {@link #CAPABILITY} have it; stock DJL's own profiler natives are a
 * different build, so callers check {@link #isAvailable(Engine)}.
 */
public final class Profiler {
    /** Capability advertised by the JNI when it was built with {@code profile.cc}. */
    public static final String CAPABILITY = "LORAPAR_PROFILER";

    private Profiler() {}

    /** Whether {@code engine} has the profiler natives (PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /** Starts recording ops, and with {@code cuda} CUDA kernels too. */
    public static void start(boolean cuda) {
        JniUtils.startProfile(cuda, false, false);
    }

    /** Stops recording and writes the Chrome trace to {@code trace}. */
    public static void stop(Path trace) {
        JniUtils.stopProfile(trace.toAbsolutePath().toString());
    }
}
