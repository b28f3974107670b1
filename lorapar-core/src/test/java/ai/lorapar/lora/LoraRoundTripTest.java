package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * An adapter saved by {@link LoraModel#save} and loaded with {@link LoraModel#load} on a fresh,
 * unmodified model gives the logits of the model that saved it, for every initialisation (the
 * residual ones through the rank-2r conversion).
 */
class LoraRoundTripTest {
    @TempDir
    Path tmp;

    @Test
    void savedAdaptersReloadOnTheOriginalModelWithTheSameLogits() throws Exception {
        Path modelRef = LoraFixtures.resource("/fixtures/models/llama/reference.safetensors");
        for (Map.Entry<String, LoraConfig> e : PeftExportForDeviceTest.ADAPTERS.entrySet()) {
            Path dir = tmp.resolve(e.getKey());
            try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
                NDArray ids = LoraFixtures.load(modelRef, "loss.input_ids", m);
                NDArray mask = LoraFixtures.load(modelRef, "loss.attention_mask", m);
                NDArray expected;
                NDArray baseLogits;
                try (DecoderModel model = LoraFixtures.loadLlama(m)) {
                    baseLogits = model.forward(ids, mask, false);
                    try (LoraModel lora = LoraModel.apply(model, e.getValue(), m)) {
                        PeftExportForDeviceTest.perturb(lora, m, 11);
                        lora.save(dir);
                        expected = model.forward(ids, mask, false);
                    }
                }
                try (DecoderModel fresh = LoraFixtures.loadLlama(m);
                        LoraModel loaded = LoraModel.load(dir, fresh, m)) {
                    LoraConfig c = e.getValue();
                    int wantRank = c.init().modifiesBase() ? 2 * c.rank() : c.rank();
                    assertThat(loaded.config().rank()).as(e.getKey()).isEqualTo(wantRank);
                    assertThat(loaded.config().scaling()).as(e.getKey()).isEqualTo(c.scaling());
                    NDArray got = fresh.forward(ids, mask, false);
                    float diff = LoraFixtures.maxAbsDiff(got, expected);
                    float moved = LoraFixtures.maxAbsDiff(baseLogits, expected);
                    System.err.printf("%s: reload diff %.3g, adapter moves logits by %.3g%n", e.getKey(), diff, moved);
                    assertThat(moved).as(e.getKey() + " adapter changes the logits").isGreaterThan(1e-2f);
                    assertThat(diff).as(e.getKey()).isLessThan(2e-4f);
                }
            }
        }
    }
}
