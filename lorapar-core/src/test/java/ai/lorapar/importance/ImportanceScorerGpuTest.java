package ai.lorapar.importance;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * The scorer tests again on CUDA, fp32 (fixture model loaded as fp32): the batched scorer against one
 * backward pass per example to the same 1e-5 relative tolerance (cuBLAS fp32 products, no TF32).
 */
@Tag("gpu")
class ImportanceScorerGpuTest extends ImportanceScorerTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
