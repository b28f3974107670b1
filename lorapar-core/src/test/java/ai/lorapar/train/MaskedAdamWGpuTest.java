package ai.lorapar.train;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/** The masked AdamW tests again on CUDA (fp32 state, same 1e-6 tolerance, bit-identical frozen elements). */
@Tag("gpu")
class MaskedAdamWGpuTest extends MaskedAdamWTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }
}
