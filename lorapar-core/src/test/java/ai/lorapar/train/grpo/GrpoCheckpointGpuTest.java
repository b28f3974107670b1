package ai.lorapar.train.grpo;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * The checkpoint tests again on CUDA (fp32, rollouts through the CUDA-graph sampler): a resumed run samples
 * the same completions and ends within 1e-5 of an uninterrupted one; refusals; the NaN guard.
 */
@Tag("gpu")
class GrpoCheckpointGpuTest extends GrpoCheckpointTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
