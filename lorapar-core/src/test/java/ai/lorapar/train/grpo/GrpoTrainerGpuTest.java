package ai.lorapar.train.grpo;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * The trainer tests again on CUDA (fp32): a step equals the naive step, frozen elements stay bit-identical,
 * sampling goes through the CUDA-graph generator where the engine has it.
 */
@Tag("gpu")
class GrpoTrainerGpuTest extends GrpoTrainerTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
