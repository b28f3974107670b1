package ai.lorapar.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;

import org.junit.jupiter.api.Test;

/** CPU tests: they run in CI on stock DJL natives, and on the GPU machine through the project JNI. */
class EngineSupportTest {

    @Test
    void stockCpuEngineDoesNotAdvertiseBf16() {
        Engine engine = Engine.getInstance();
        assumeFalse(EngineSupport.isLoraparJni(engine), "runs on stock DJL natives only");
        // Never probe by creating a bf16 array: stock DJL aborts the JVM on bf16.
        assertThat(engine.hasCapability(EngineSupport.CAPABILITY_BF16)).isFalse();
        assertThat(EngineSupport.supportsBf16(engine)).isFalse();
        assertThat(EngineSupport.computeDtype(engine, Device.gpu())).isEqualTo(DataType.FLOAT16);
    }

    @Test
    void cpuComputeDtypeIsAlwaysFp32() {
        assertThat(EngineSupport.computeDtype(Engine.getInstance(), Device.cpu())).isEqualTo(DataType.FLOAT32);
    }

    @Test
    void gpuComputeDtypeFollowsTheCapability() {
        Engine engine = Engine.getInstance();
        DataType expected = engine.hasCapability("BF16") ? DataType.BFLOAT16 : DataType.FLOAT16;
        assertThat(EngineSupport.computeDtype(engine, Device.gpu())).isEqualTo(expected);
    }

    @Test
    void capabilityNames() {
        assertThat(EngineSupport.CAPABILITY_BF16).isEqualTo("BF16");
        assertThat(EngineSupport.CAPABILITY_LORAPAR_JNI).isEqualTo("LORAPAR_JNI");
        assertThatThrownBy(() -> EngineSupport.supportsBf16(null)).isInstanceOf(NullPointerException.class);
    }
}
