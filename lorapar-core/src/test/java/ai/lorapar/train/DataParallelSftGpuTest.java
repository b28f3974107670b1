package ai.lorapar.train;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** Data-parallel SFT again on CUDA (fp32, ranks as threads): the all-reduce writes the devices' gradients in place. */
@Tag("gpu")
class DataParallelSftGpuTest extends DataParallelSftTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
