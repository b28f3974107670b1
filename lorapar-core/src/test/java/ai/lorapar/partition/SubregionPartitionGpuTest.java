package ai.lorapar.partition;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * Every partition test again on CUDA. The test values lie on a 1/64 grid, so sums are exact in any
 * summation order and the masks must match the naive reference exactly, as on the CPU.
 */
@Tag("gpu")
class SubregionPartitionGpuTest extends SubregionPartitionTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
