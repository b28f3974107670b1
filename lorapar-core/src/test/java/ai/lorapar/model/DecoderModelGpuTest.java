package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Tag;

/** Every {@link DecoderModelTest} again on CUDA in fp32, same bounds as on the CPU. */
@Tag("gpu")
class DecoderModelGpuTest extends DecoderModelTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }

    @Override
    protected DataType dtype() {
        return DataType.FLOAT32;
    }
}
