package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.engine.EngineException;

import java.util.Objects;

/**
 * A CUDA graph of NDArray ops (native source {@code cuda_graph.cc}): a step of ordinary NDArray ops
 * is run once on a side stream as a warm-up, captured once, and then replayed with a single launch,
 * so its kernels cost no host time per op. Only engines that advertise {@link #CAPABILITY} (the
 * project's own libtorch JNI built with CUDA) have it; callers check {@link #isAvailable} and
 * otherwise run the step op by op.
 *
 * <p>What a captured step may do is what {@code torch.cuda.graphs} allows: every array it reads must
 * outlive the graph and stay at the same address (update inputs in place before a replay); it must
 * not copy to or from the host, create arrays from Java values, or branch on array contents. Arrays
 * it creates come from the graph's private memory pool and are valid only until the next replay
 * (close them in the step; keep results by writing into arrays made before the capture). Draws of
 * torch's default CUDA generator differ from replay to replay and follow its seed.
 *
 * <p>A failing op during capture (for example, one that must synchronise) ends the capture: {@link
 * #capture} then throws a {@link CaptureException}, the device is usable as before, and the caller
 * runs its step eagerly instead.
 */
public final class CudaGraph implements AutoCloseable {
    /** Capability advertised by the JNI when it was built with {@code cuda_graph.cc}. */
    public static final String CAPABILITY = "LORAPAR_CUDA_GRAPH";

    private long handle;

    private CudaGraph(long handle) {
        this.handle = handle;
    }

    /** Whether {@code engine} can capture graphs on {@code device} (a GPU, PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine, Device device) {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(device, "device");
        return device.isGpu() && "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /**
     * Runs {@code step} {@code warmups} times eagerly on a side stream, then captures it once (the
     * capture does not execute it) and returns the graph; replays run on the thread's current stream.
     *
     * @throws CaptureException when an op of the step cannot be captured; the warm-up runs have happened
     */
    public static CudaGraph capture(Device device, int warmups, Runnable step) {
        return capture(device, warmups, step, null);
    }

    /**
     * {@link #capture(Device, int, Runnable)} into the memory pool of {@code sharePoolOf} (null: a pool of its
     * own). Graphs that are replayed one after another, never concurrently, and keep no result in the pool
     * (their results go to arrays made before the capture) may share one pool: it then holds the largest
     * step's temporaries once instead of every graph's.
     */
    public static CudaGraph capture(Device device, int warmups, Runnable step, CudaGraph sharePoolOf) {
        Objects.requireNonNull(step, "step");
        if (sharePoolOf != null && sharePoolOf.handle == 0) {
            throw new IllegalStateException("the CUDA graph whose pool should be shared is closed");
        }
        if (!device.isGpu()) {
            throw new IllegalArgumentException("CUDA graphs need a GPU device, got " + device);
        }
        long h = enterNative(device.getDeviceId() < 0 ? 0 : device.getDeviceId());
        boolean captured = false;
        try {
            for (int i = 0; i < warmups; i++) {
                step.run();
            }
            try {
                beginNative(h, sharePoolOf == null ? 0L : sharePoolOf.handle);
                step.run();
                endNative(h);
            } catch (EngineException | UnsatisfiedLinkError e) {
                throw new CaptureException("the step cannot be captured as a CUDA graph: " + e.getMessage(), e);
            }
            captured = true;
        } finally {
            exitNative(h); // ends an interrupted capture; the current stream waits for the side stream
            if (!captured) {
                deleteNative(h);
            }
        }
        return new CudaGraph(h);
    }

    /**
     * Seeds torch's default CUDA generator of {@code device} (its offset starts again at 0). A captured
     * step's random draws (dropout) come from it, so seeding before a replay fixes the replay's draws.
     */
    public static void seed(Device device, long seed) {
        if (!device.isGpu()) {
            throw new IllegalArgumentException("a CUDA generator needs a GPU device, got " + device);
        }
        seedNative(Math.max(0, device.getDeviceId()), seed);
    }

    /** Replays the captured step on the current stream (asynchronously, like any op). */
    public void replay() {
        if (handle == 0) {
            throw new IllegalStateException("CUDA graph is closed");
        }
        replayNative(handle);
    }

    /** Frees the graph and its memory pool, after waiting for its last replay. */
    @Override
    public void close() {
        if (handle != 0) {
            long h = handle;
            handle = 0;
            deleteNative(h);
        }
    }

    /** The step could not be captured; it can still run eagerly. */
    public static final class CaptureException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CaptureException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private static native long enterNative(int device);

    private static native void beginNative(long handle, long poolOf);

    private static native void endNative(long handle);

    private static native void exitNative(long handle);

    private static native void replayNative(long handle);

    private static native void deleteNative(long handle);

    private static native void seedNative(int device, long seed);
}
