package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link DistributedEnv#fromEnvironment(Map)}: the launcher's variables, their defaults, and errors naming them. */
class DistributedEnvTest {
    private static Map<String, String> job(String... kv) {
        Map<String, String> m = new HashMap<>(Map.of("WORLD_SIZE", "4", "RANK", "3", "LOCAL_RANK", "1",
                "MASTER_ADDR", "node0", "MASTER_PORT", "29501"));
        for (int i = 0; i < kv.length; i += 2) {
            if (kv[i + 1] == null) {
                m.remove(kv[i]);
            } else {
                m.put(kv[i], kv[i + 1]);
            }
        }
        return m;
    }

    @Test
    void noWorldSizeOrOneIsASingleProcess() {
        assertThat(DistributedEnv.fromEnvironment(Map.of())).isEqualTo(DistributedEnv.single());
        assertThat(DistributedEnv.fromEnvironment(Map.of("WORLD_SIZE", "1", "RANK", "0"))).isEqualTo(DistributedEnv.single());
        assertThat(DistributedEnv.single().isDistributed()).isFalse();
        assertThat(DistributedEnv.single().device(Engine.getInstance())).isEqualTo(
                Engine.getInstance().getGpuCount() > 0 ? Device.gpu(0) : Device.cpu());
    }

    @Test
    void readsAllVariables() {
        DistributedEnv env = DistributedEnv.fromEnvironment(job(DistributedEnv.TIMEOUT_VARIABLE, "2.5"));
        assertThat(env).isEqualTo(new DistributedEnv(3, 4, 1, "node0", 29501, Duration.ofMillis(2500)));
        assertThat(env.isDistributed()).isTrue();
        assertThat(DistributedEnv.fromEnvironment(job()).timeout()).isEqualTo(DistributedEnv.DEFAULT_TIMEOUT);
        assertThat(DistributedEnv.fromEnvironment(job("LOCAL_RANK", null)).localRank()).isEqualTo(3);
    }

    @Test
    void errorsNameTheVariableAndValue() {
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("WORLD_SIZE", "two")))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("WORLD_SIZE=two is not an integer");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("WORLD_SIZE", "0")))
                .hasMessageContaining("WORLD_SIZE=0 outside 1..");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("RANK", null))).hasMessage("RANK is not set");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("RANK", "4"))).hasMessage("RANK=4 outside 0..3");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("LOCAL_RANK", "-1")))
                .hasMessageContaining("LOCAL_RANK=-1 outside 0..");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("MASTER_ADDR", " ")))
                .hasMessageContaining("MASTER_ADDR is not set");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("MASTER_PORT", null))).hasMessage("MASTER_PORT is not set");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job("MASTER_PORT", "70000")))
                .hasMessage("MASTER_PORT=70000 outside 1..65535");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job(DistributedEnv.TIMEOUT_VARIABLE, "soon")))
                .hasMessage("LORAPAR_DIST_TIMEOUT_S=soon is not a number of seconds");
        assertThatThrownBy(() -> DistributedEnv.fromEnvironment(job(DistributedEnv.TIMEOUT_VARIABLE, "-3")))
                .hasMessage("LORAPAR_DIST_TIMEOUT_S=-3 is not a positive number of seconds");
    }

    @Test
    void theRecordChecksItsFields() {
        assertThatThrownBy(() -> new DistributedEnv(2, 2, 0, "h", 1, Duration.ofSeconds(1)))
                .hasMessage("rank 2 outside a world of size 2");
        assertThatThrownBy(() -> new DistributedEnv(0, 1, 0, "h", 1, Duration.ZERO)).hasMessageContaining("timeout");
    }

    @Test
    void aLocalRankBeyondTheGpusIsRefused() {
        DistributedEnv env = new DistributedEnv(0, 2, 64, "h", 1, Duration.ofSeconds(1));
        if (Engine.getInstance().getGpuCount() == 0) {
            assertThat(env.device(Engine.getInstance())).isEqualTo(Device.cpu());
        } else {
            assertThatThrownBy(() -> env.device(Engine.getInstance())).hasMessageContaining("LOCAL_RANK=64");
        }
    }
}
