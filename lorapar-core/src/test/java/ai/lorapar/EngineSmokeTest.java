package ai.lorapar;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;
import static org.assertj.core.api.Assertions.assertThat;

class EngineSmokeTest {
    @Test
    void engineLoadsOffline() {
        assertThat(Engine.getInstance().getEngineName()).isEqualTo("PyTorch");
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray a = m.create(new float[] {1, 2, 3});
            assertThat(a.sum().getFloat()).isEqualTo(6f);
            System.err.println(Engine.getInstance().getVersion() + " " + Engine.getInstance().hasCapability("BF16"));
        }
    }
}
