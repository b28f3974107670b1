package ai.lorapar.importance;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** The importance tests again on CUDA, fp32 inputs, same tolerance. */
@Tag("gpu")
class ImportanceAccumulatorGpuTest extends ImportanceAccumulatorTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
