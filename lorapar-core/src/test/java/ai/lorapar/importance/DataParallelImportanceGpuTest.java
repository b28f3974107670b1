package ai.lorapar.importance;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** Data-parallel importance again on CUDA (fp32, ranks as threads). */
@Tag("gpu")
class DataParallelImportanceGpuTest extends DataParallelImportanceTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
