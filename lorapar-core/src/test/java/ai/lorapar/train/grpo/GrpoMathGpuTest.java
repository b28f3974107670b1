package ai.lorapar.train.grpo;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** The GRPO math tests again on CUDA (fp32, same tolerances). */
@Tag("gpu")
class GrpoMathGpuTest extends GrpoMathTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
