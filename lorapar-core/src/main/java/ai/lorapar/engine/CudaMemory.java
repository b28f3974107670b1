package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.util.Objects;

/**
 * Peak GPU memory of torch's CUDA caching allocator (native source {@code cuda_memory.cc}): the bytes
 * held by tensors, as {@code torch.cuda.max_memory_allocated()} reports them, so that our benchmarks
 * compare with PyTorch's figure. Only engines that advertise {@link #CAPABILITY} (the project's own
 * libtorch JNI built with CUDA) have it; check {@link #isAvailable} first.
 */
public final class CudaMemory {
    /** Capability advertised by the JNI when it was built with {@code cuda_memory.cc}. */
    public static final String CAPABILITY = "LORAPAR_CUDA_MEMORY";

    private CudaMemory() {}

    /** Whether {@code engine} has these natives (PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /** Peak bytes allocated by tensors on GPU {@code device} since start-up or the last {@link #resetPeak}. */
    public static long peakAllocatedBytes(Device device) {
        return peakAllocatedBytes(index(device));
    }

    /** Sets the peak of GPU {@code device} to the bytes allocated now. */
    public static void resetPeak(Device device) {
        resetPeak(index(device));
    }

    private static int index(Device device) {
        Objects.requireNonNull(device, "device");
        if (!device.isGpu()) {
            throw new IllegalArgumentException("CUDA memory statistics need a GPU device, got " + device);
        }
        return Math.max(device.getDeviceId(), 0);
    }

    private static native long peakAllocatedBytes(int deviceIndex);

    private static native void resetPeak(int deviceIndex);
}
