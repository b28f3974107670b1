package ai.lorapar.lora;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** The PEFT parity tests again on CUDA, fp32, same bounds. */
@Tag("gpu")
class PeftCompatibilityGpuTest extends PeftCompatibilityTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
