package ai.lorapar.train.grpo;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * Data-parallel GRPO again on CUDA (fp32, ranks as threads): the same updates on given completions, and sampled
 * training through the CUDA-graph generator with each rank's rows of the whole rollout's noise.
 */
@Tag("gpu")
class DataParallelGrpoGpuTest extends DataParallelGrpoTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
