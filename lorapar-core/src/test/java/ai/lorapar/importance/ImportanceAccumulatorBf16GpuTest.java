package ai.lorapar.importance;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.engine.EngineSupport;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The importance tests on CUDA with bf16 parameters and gradients. The accumulator widens to fp32
 * before multiplying, so against an fp64 reference on the same bf16-rounded inputs only fp32
 * accumulation error remains: the tolerance stays 1e-5 relative.
 */
@Tag("gpu")
class ImportanceAccumulatorBf16GpuTest extends ImportanceAccumulatorTest {
    @BeforeEach
    void requireBf16() {
        assertThat(EngineSupport.supportsBf16(Engine.getInstance())).as("engine advertises BF16").isTrue();
    }

    @Override
    protected Device device() {
        return Device.gpu();
    }

    @Override
    protected DataType inputType() {
        return DataType.BFLOAT16;
    }
}
