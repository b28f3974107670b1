package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.Objects;

/**
 * Peak GPU memory as PyTorch counts it (native source {@code cuda_memory.cc}): the most bytes the
 * CUDA caching allocator had allocated at once since the last {@link #resetPeak}, i.e.
 * {@code torch.cuda.max_memory_allocated()} and {@code torch.cuda.reset_peak_memory_stats()}, so
 * benchmark figures compare with a PyTorch peer's. Only engines that advertise {@link #CAPABILITY}
 * (the project's own libtorch JNI built with CUDA) have it; callers check {@link #isAvailable}.
 */
public final class CudaMemory {
    /** Capability advertised by the JNI when it was built with {@code cuda_memory.cc}. */
    public static final String CAPABILITY = "LORAPAR_CUDA_MEMORY";

    private CudaMemory() {}

    /** Whether {@code engine} reports CUDA memory statistics (a PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /**
     * The peak bytes allocated on {@code device} since the last {@link #resetPeak} (or since start).
     *
     * @throws IllegalArgumentException for a device that is not a GPU
     * @throws IllegalStateException when the engine has no {@link #CAPABILITY}
     */
    public static long peakAllocatedBytes(Device device) {
        return peakAllocatedNative(index(device));
    }

    /** Starts a new peak: the peak becomes the bytes allocated now. */
    public static void resetPeak(Device device) {
        resetPeakNative(index(device));
    }

    private static int index(Device device) {
        Objects.requireNonNull(device, "device");
        if (!device.isGpu()) {
            throw new IllegalArgumentException("CUDA memory statistics need a GPU device, got " + device);
        }
        if (!isAvailable(Engine.getInstance())) {
            throw new IllegalStateException("engine " + Engine.getInstance().getEngineName() + " does not advertise "
                    + CAPABILITY + " (the project's libtorch JNI built with CUDA has it)");
        }
        return Math.max(device.getDeviceId(), 0);
    }

    private static native long peakAllocatedNative(int device);

    private static native void resetPeakNative(int device);
}
