package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link Collectives#fromEnvironment}: one process gets {@link Collective#single()}; on an engine without c10d
 * (stock DJL, as in CI) rank 0 of a larger job goes on alone and the other ranks are told why they stop.
 */
class CollectivesTest {
    private static Map<String, String> job(int rank) {
        return Map.of("WORLD_SIZE", "2", "RANK", String.valueOf(rank), "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "29999");
    }

    @Test
    void oneProcessIsSingle() {
        Engine engine = Engine.getInstance();
        assertThat(Collectives.fromEnvironment(engine, Device.cpu(), Map.of())).isSameAs(Collective.single());
        assertThat(Collectives.fromEnvironment(engine, Device.cpu(), Map.of("WORLD_SIZE", "1")))
                .isSameAs(Collective.single());
    }

    @Test
    void withoutC10dRankZeroGoesOnAloneAndTheOthersStop() {
        Engine engine = Engine.getInstance();
        Assumptions.assumeFalse(ProcessGroup.isAvailable(engine), "the engine has c10d: ProcessGroupGpuTest covers it");
        assertThat(Collectives.fromEnvironment(engine, Device.cpu(), job(0))).isSameAs(Collective.single());
        assertThatThrownBy(() -> Collectives.fromEnvironment(engine, Device.cpu(), job(1)))
                .isInstanceOf(DistributedUnavailableException.class)
                .hasMessageContaining("needs the project's libtorch JNI")
                .hasMessageContaining(ProcessGroup.CAPABILITY)
                .hasMessageContaining("rank 1 stops, rank 0 trains alone");
        assertThatThrownBy(() -> ProcessGroup.init(DistributedEnv.fromEnvironment(job(0)), Device.cpu()))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining(ProcessGroup.CAPABILITY);
    }

    @Test
    void theBackendFollowsTheDevice() {
        assertThat(ProcessGroup.Backend.of(Device.cpu())).isEqualTo(ProcessGroup.Backend.GLOO);
        assertThat(ProcessGroup.Backend.of(Device.gpu(1))).isEqualTo(ProcessGroup.Backend.NCCL);
        assertThat(ProcessGroup.capability(ProcessGroup.Backend.NCCL)).isEqualTo(ProcessGroup.CAPABILITY_NCCL);
    }

    @Test
    void theSingleCollectiveRefusesAnotherRoot() {
        assertThatThrownBy(() -> Collective.single().broadcast(new ai.djl.ndarray.NDList(), 1))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
