package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelLoadErrorsTest {

    /** A copy of the llama fixture whose weights are edited by {@code edit}. */
    static Path variant(Path dir, java.util.function.BiConsumer<Map<String, NDArray>, NDManager> edit) throws Exception {
        Files.createDirectories(dir);
        Files.copy(Fixtures.model("llama").resolve("config.json"), dir.resolve("config.json"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                SafetensorsFile f = SafetensorsFile.open(Fixtures.model("llama").resolve("model.safetensors"))) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            for (String n : f.names()) {
                t.put(n, f.load(n, m));
            }
            edit.accept(t, m);
            SafetensorsWriter.write(dir.resolve("model.safetensors"), t, Map.of("format", "pt"));
        }
        return dir;
    }

    @Test
    void shapeThatDisagreesWithConfigNamesTensorAndShapes(@TempDir Path tmp) throws Exception {
        Path d = variant(tmp.resolve("a"), (t, m) -> t.put("model.layers.1.self_attn.k_proj.weight",
                m.zeros(new ai.djl.ndarray.types.Shape(64, 64))));
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThatThrownBy(() -> DecoderModel.load(d, m)).isInstanceOf(ModelConfigException.class)
                    .hasMessageContaining("model.layers.1.self_attn.k_proj.weight")
                    .hasMessageContaining("(64, 64)").hasMessageContaining("(32, 64)")
                    .hasMessageContaining("config.json");
        }
    }

    @Test
    void missingTensorIsNamed(@TempDir Path tmp) throws Exception {
        Path d = variant(tmp.resolve("b"), (t, m) -> t.remove("lm_head.weight"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThatThrownBy(() -> DecoderModel.load(d, m)).hasMessageContaining("lm_head.weight")
                    .hasMessageContaining("tie_word_embeddings=false");
        }
    }

    @Test
    void bf16ComputeIsRefusedOnAnEngineWithoutIt() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            if (ai.lorapar.engine.EngineSupport.supportsBf16(m.getEngine())) {
                // The project's JNI (GPU run): bf16 compute is allowed and the weights stay bf16.
                try (DecoderModel bf16 = DecoderModel.load(Fixtures.model("llama_bf16"), m, DataType.BFLOAT16)) {
                    assertThat(bf16.dtype()).isEqualTo(DataType.BFLOAT16);
                }
            } else {
                assertThatThrownBy(() -> DecoderModel.load(Fixtures.model("llama_bf16"), m, DataType.BFLOAT16))
                        .hasMessageContaining("BF16 capability");
            }
            try (DecoderModel half = DecoderModel.load(Fixtures.model("llama_bf16"), m, DataType.FLOAT16)) {
                assertThat(half.dtype()).isEqualTo(DataType.FLOAT16);
                assertThat(half.linear("model.layers.0.self_attn.q_proj").weight().getDataType()).isEqualTo(DataType.FLOAT16);
                // the half-precision path (norms, mask and softmax in fp32) stays close to the fp64 reference
                NDArray ids = Fixtures.ref("llama_bf16", "single.1.input_ids", m).expandDims(0);
                NDArray logits = half.forward(ids, null, false).squeeze(0);
                assertThat(logits.getDataType()).isEqualTo(DataType.FLOAT16);
                float diff = Fixtures.maxAbsDiff(logits, Fixtures.ref("llama_bf16", "single.1.logits", m));
                System.err.printf("llama_bf16 as fp16 on CPU: logits max |diff| %s%n", diff);
                assertThat(diff).isLessThan(5e-2f);
            }
        }
    }

    /** A config.json with fewer layers than the checkpoint used to load and ignore the extra layers. */
    @Test
    void tensorsTheModelWouldNotUseAreAnErrorNamingThem(@TempDir Path tmp) throws Exception {
        Path fewer = variant(tmp.resolve("fewer"), (t, m) -> { });
        Files.writeString(fewer.resolve("config.json"), Files.readString(fewer.resolve("config.json"))
                .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"));
        Path extra = variant(tmp.resolve("extra"), (t, m) -> t.put("model.vision_tower.proj.weight", m.zeros(
                new ai.djl.ndarray.types.Shape(2, 2))));
        Path buffers = variant(tmp.resolve("buffers"), (t, m) -> t.put("model.layers.0.self_attn.rotary_emb.inv_freq",
                m.zeros(new ai.djl.ndarray.types.Shape(8))));
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThatThrownBy(() -> DecoderModel.load(fewer, m)).isInstanceOf(ModelConfigException.class)
                    .hasMessageContaining("num_hidden_layers 1").hasMessageContaining("config.json")
                    .hasMessageContaining("'model.layers.1.input_layernorm.weight'");
            assertThatThrownBy(() -> DecoderModel.load(extra, m)).isInstanceOf(ModelConfigException.class)
                    .hasMessageContaining("1 checkpoint tensor(s) would not be used")
                    .hasMessageContaining("'model.vision_tower.proj.weight'");
            try (DecoderModel ok = DecoderModel.load(buffers, m)) { // rotary buffers of older checkpoints are fine
                assertThat(ok.config().numLayers()).isEqualTo(2);
            }
        }
    }
}
