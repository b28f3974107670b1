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

    @Test
    void bf16ConversionsRoundToNearestEven() {
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(1.5f))).isEqualTo(1.5f);
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(-2f))).isEqualTo(-2f);
        // 1 + 2^-8 is half an ulp above 1: ties to even -> 1; 1 + 3*2^-8 -> 1 + 2^-6
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(1f + 1f / 256))).isEqualTo(1f);
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(1f + 3f / 256))).isEqualTo(1f + 1f / 64);
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(1f + 1f / 512))).isEqualTo(1f);
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(Float.NaN))).isNaN();
        assertThat(EngineSupport.bf16BitsToFloat(EngineSupport.floatToBf16Bits(Float.NEGATIVE_INFINITY)))
                .isEqualTo(Float.NEGATIVE_INFINITY);
        assertThat(EngineSupport.bf16BitsToFloat((short) 0x3F80)).isEqualTo(1f);
    }
}
