package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link CudaMemory}: refused on a CPU and on stock DJL; on a GPU with the project's JNI, a peak that follows allocations. */
class CudaMemoryTest {
    @Test
    void noStatisticsOnTheCpuOrWithoutTheCapability() {
        assertThatThrownBy(() -> CudaMemory.peakAllocatedBytes(Device.cpu()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("GPU");
        if (!Engine.getInstance().hasCapability(CudaMemory.CAPABILITY)) {
            assertThat(CudaMemory.isAvailable(Engine.getInstance())).isFalse();
            assertThatThrownBy(() -> CudaMemory.resetPeak(Device.gpu()))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining(CudaMemory.CAPABILITY);
        }
    }

    @Test
    @Tag("gpu")
    void thePeakCoversAnAllocationAndResets() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "no GPU");
        Assumptions.assumeTrue(CudaMemory.isAvailable(Engine.getInstance()), "engine lacks " + CudaMemory.CAPABILITY);
        Device gpu = Device.gpu();
        try (NDManager m = NDManager.newBaseManager(gpu)) {
            CudaMemory.resetPeak(gpu);
            long base = CudaMemory.peakAllocatedBytes(gpu);
            try (NDArray big = m.zeros(new Shape(64, 1024, 1024), DataType.FLOAT32)) { // 256 MiB
                assertThat(big.getFloat(0, 0, 0)).isZero();
            }
            long peak = CudaMemory.peakAllocatedBytes(gpu);
            assertThat(peak - base).isGreaterThanOrEqualTo(256L << 20);
            CudaMemory.resetPeak(gpu);
            assertThat(CudaMemory.peakAllocatedBytes(gpu)).isLessThan(peak);
        }
    }
}
