package ai.lorapar.lora;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** The scoped base-model switch again on CUDA (fp32). */
@Tag("gpu")
class LoraDisabledScopeGpuTest extends LoraDisabledScopeTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
