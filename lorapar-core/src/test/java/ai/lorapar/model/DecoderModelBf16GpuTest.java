package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Tag;

/** Every {@link DecoderModelTest} again on CUDA in bf16 (bounds documented in the base class). */
@Tag("gpu")
class DecoderModelBf16GpuTest extends DecoderModelTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }

    @Override
    protected DataType dtype() {
        return DataType.BFLOAT16;
    }
}
