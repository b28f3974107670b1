package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.train.Gradients;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Against PEFT 0.21 / transformers 5.17 (fixtures/lora, made by make_lora_fixtures.py on the device):
 * a PEFT adapter loads here with PEFT's logits, loss and gradients of A and B; and the adapters this
 * library saved (fixtures/lora/java_adapters) gave PEFT the logits this library computed.
 */
class PeftCompatibilityTest {
    /** Device of the model (CPU; PeftCompatibilityGpuTest re-runs on CUDA in fp32 with the same bounds). */
    protected Device device() {
        return Device.cpu();
    }
    @Test
    void peftAdapterGivesPeftLogitsLossAndGradients() throws Exception {
        try (NDManager m = NDManager.newBaseManager(device()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.load(LoraFixtures.lora().resolve("peft_adapter"), model, m)) {
            assertThat(lora.config().rank()).isEqualTo(4);
            assertThat(lora.config().scaling()).isEqualTo(2.0);
            assertThat(lora.modules()).hasSize(12);
            NDArray ids = LoraFixtures.ref("input_ids", m);
            NDArray mask = LoraFixtures.ref("attention_mask", m);
            NDArray labels = LoraFixtures.ref("labels", m);

            Gradients.zero(lora.parameters().values());
            float loss;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray logits = model.forward(ids, mask, true);
                float logitsDiff = LoraFixtures.maxAbsDiff(logits, LoraFixtures.ref("logits", m));
                System.err.printf("PEFT adapter: logits max abs diff %.3g%n", logitsDiff);
                assertThat(logitsDiff).isLessThan(1e-4f);
                NDArray l = CausalLmLoss.mean(logits, labels);
                loss = l.getFloat();
                gc.backward(l);
            }
            assertThat(loss).isCloseTo(LoraFixtures.ref("loss", m).getFloat(0), org.assertj.core.data.Offset.offset(1e-5f));
            assertThat(lora.parameters()).hasSize(24);
            float worst = 0;
            for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                NDArray want = LoraFixtures.ref("grad." + e.getKey(), m);
                NDArray got = e.getValue().getGradient();
                float scale = Math.max(1f, LoraFixtures.maxAbs(want));
                float d = LoraFixtures.maxAbsDiff(got, want);
                worst = Math.max(worst, d / scale);
                assertThat(d).as(e.getKey()).isLessThan(1e-4f * scale);
            }
            System.err.printf("PEFT adapter: loss %.7f, worst gradient max abs diff (scaled) %.3g%n", loss, worst);
            for (ai.lorapar.model.Linear lin : model.linears().values()) {
                assertThat(lin.weight().hasGradient()).as(lin.name()).isFalse();
            }

            lora.setEnabled(false);
            assertThat(LoraFixtures.maxAbsDiff(model.forward(ids, mask, false), LoraFixtures.ref("logits_disabled", m)))
                    .isLessThan(1e-4f);
        }
    }

    @Test
    void adaptersSavedHereGavePeftTheSameLogits() throws Exception {
        Path check = LoraFixtures.lora().resolve("peft_check.json");
        JsonObject results = JsonParser.parseString(Files.readString(check)).getAsJsonObject();
        assertThat(results.keySet()).containsExactlyInAnyOrderElementsOf(PeftExportForDeviceTest.ADAPTERS.keySet());
        for (String name : results.keySet()) {
            JsonObject r = results.getAsJsonObject(name);
            assertThat(r.has("error")).as(name + ": " + r).isFalse();
            assertThat(r.get("max_abs_diff_peft_vs_lorapar").getAsDouble()).as(name).isLessThan(1e-4);
            assertThat(r.get("max_abs_diff_peft_merged_vs_lorapar").getAsDouble()).as(name).isLessThan(1e-4);
            assertThat(r.get("max_abs_diff_base_vs_lorapar").getAsDouble()).as(name).isGreaterThan(0.1);
        }
        // the same files, read back here, give PEFT's logits too
        for (String name : results.keySet()) {
            Path dir = LoraFixtures.lora().resolve("java_adapters").resolve(name);
            Path peft = LoraFixtures.lora().resolve("peft_check").resolve(name + ".safetensors");
            try (NDManager m = NDManager.newBaseManager(device()); DecoderModel model = LoraFixtures.loadLlama(m);
                    LoraModel lora = LoraModel.load(dir, model, m)) {
                NDArray logits = model.forward(LoraFixtures.load(peft, "input_ids", m),
                        LoraFixtures.load(peft, "attention_mask", m), false);
                assertThat(LoraFixtures.maxAbsDiff(logits, LoraFixtures.load(peft, "logits", m))).as(name)
                        .isLessThan(1e-4f);
            }
        }
    }
}
