package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes adapters saved by {@link LoraModel#save} together with lorapar's logits, for the PEFT load
 * check of make_lora_fixtures.py (run only with {@code -Dlorapar.peftExport=<folder>}). The adapters
 * are "trained" (A and B moved away from their initialisation) so that the residual ones need the
 * rank-2r conversion to match. Their results are kept in fixtures/lora/java_adapters and
 * fixtures/lora/peft_check (see {@link PeftCompatibilityTest}).
 */
@EnabledIfSystemProperty(named = "lorapar.peftExport", matches = ".+")
class PeftExportForDeviceTest {
    static final Map<String, LoraConfig> ADAPTERS = new LinkedHashMap<>();

    static {
        ADAPTERS.put("pissa_qkvgud_r4", LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8)
                .init(LoraInit.PISSA).seed(3).build());
        ADAPTERS.put("olora_qkvogud_r4", LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4).alpha(16)
                .init(LoraInit.OLORA).seed(4).build());
        ADAPTERS.put("gaussian_gud_r8", LoraConfig.builder().targets(LoraTargets.GUD).rank(8).alpha(64)
                .init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(5).baseModelNameOrPath("tiny-llama").build());
        ADAPTERS.put("standard_explicit_r2", LoraConfig.builder()
                .targets("model.layers.1.self_attn.v_proj", "o_proj").rank(2).alpha(3).init(LoraInit.STANDARD)
                .seed(6).build());
    }

    @Test
    void exportAdaptersWithLogits() throws Exception {
        Path root = Path.of(System.getProperty("lorapar.peftExport"));
        Files.createDirectories(root);
        for (Map.Entry<String, LoraConfig> e : ADAPTERS.entrySet()) {
            try (NDManager m = NDManager.newBaseManager(); DecoderModel model = LoraFixtures.loadLlama(m);
                    LoraModel lora = LoraModel.apply(model, e.getValue(), m)) {
                perturb(lora, m, 11);
                Path dir = root.resolve(e.getKey());
                lora.save(dir);
                Path modelRef = LoraFixtures.resource("/fixtures/models/llama/reference.safetensors");
                NDArray ids = LoraFixtures.load(modelRef, "loss.input_ids", m);
                NDArray mask = LoraFixtures.load(modelRef, "loss.attention_mask", m);
                NDArray logits = model.forward(ids, mask, false);
                Map<String, NDArray> t = new LinkedHashMap<>();
                t.put("input_ids", ids);
                t.put("attention_mask", mask);
                t.put("logits", logits);
                SafetensorsWriter.write(dir.resolve("java_logits.safetensors"), t, Map.of());
            }
        }
    }

    /** Moves every A and B by N(0, 0.05·max|p| + 0.02), as training would. */
    static void perturb(LoraModel lora, NDManager m, int seed) {
        m.getEngine().setRandomSeed(seed);
        for (NDArray p : lora.parameters().values()) {
            float scale = LoraFixtures.maxAbs(p) * 0.05f + 0.02f;
            try (NDArray noise = m.randomNormal(0f, scale, p.getShape(), DataType.FLOAT32, p.getDevice())) {
                p.addi(noise);
            }
        }
    }
}
