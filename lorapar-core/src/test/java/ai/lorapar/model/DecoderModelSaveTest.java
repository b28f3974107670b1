package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link DecoderModel#save}: Hugging Face names, q/k/v and gate/up unfused, tied embeddings written once,
 * biases only where the model has them; loading the folder gives identical logits.
 * {@link DecoderModel#weights()} / {@link DecoderModel#trainableWeights()}: every stored array once.
 */
class DecoderModelSaveTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "mistral"})
    void savedFolderLoadsBackWithIdenticalLogits(String name) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(name), m, DataType.FLOAT32)) {
            Path out = tmp.resolve(name);
            model.save(out);
            try (SafetensorsFile saved = SafetensorsFile.open(out.resolve("model.safetensors"));
                    ai.lorapar.io.SafetensorsCheckpoint original = ai.lorapar.io.SafetensorsCheckpoint.open(
                            Fixtures.model(name))) {
                // the same tensor names as transformers wrote, with the same values
                assertThat(saved.names()).containsExactlyInAnyOrderElementsOf(original.names());
                for (String t : original.names()) {
                    try (NDArray a = saved.load(t, m); NDArray b = original.loadAs(t, m, DataType.FLOAT32)) {
                        assertThat(a.contentEquals(b)).as(t).isTrue();
                    }
                }
            }
            try (DecoderModel back = DecoderModel.load(out, m, DataType.FLOAT32)) {
                assertThat(back.config().toString()).isEqualTo(model.config().toString());
                assertThat(back.config().eosTokenIds()).isEqualTo(model.config().eosTokenIds());
                assertThat(back.config().padTokenId()).isEqualTo(model.config().padTokenId());
                NDArray ids = Fixtures.ref(name, "loss.input_ids", m);
                NDArray mask = Fixtures.ref(name, "loss.attention_mask", m);
                try (NDArray a = model.forward(ids, mask, false); NDArray b = back.forward(ids, mask, false)) {
                    assertThat(a.contentEquals(b)).as("identical logits").isTrue();
                }
            }
            // saving again replaces the folder as a whole
            model.save(out);
            try (var files = Files.list(out)) {
                assertThat(files.map(p -> p.getFileName().toString()).sorted().toList())
                        .containsExactly("config.json", "model.safetensors");
            }
        }
    }

    @Test
    void weightsListEveryStoredArrayOnceWithFusedNames() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model("qwen2"), m, DataType.FLOAT32)) {
            Map<String, NDArray> w = model.weights();
            ModelConfig c = model.config();
            // embed, norm, and per layer: 2 norms, qkv weight + bias, o, gate_up, down (tied lm_head not repeated)
            assertThat(w).hasSize(2 + c.numLayers() * 7);
            assertThat(w).containsKeys("model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.self_attn.qkv_proj.bias",
                    "model.layers.1.mlp.gate_up_proj.weight").doesNotContainKey("lm_head.weight");
            long qkvRows = (long) (c.numHeads() + 2 * c.numKeyValueHeads()) * c.headDim();
            assertThat(w.get("model.layers.0.self_attn.qkv_proj.weight").getShape().get(0)).isEqualTo(qkvRows);
            long total = w.values().stream().mapToLong(NDArray::size).sum();
            long params = (long) c.vocabSize() * c.hiddenSize() + c.hiddenSize()
                    + c.numLayers() * (2L * c.hiddenSize() + qkvRows * c.hiddenSize() + qkvRows
                    + (long) c.numHeads() * c.headDim() * c.hiddenSize() + 3L * c.intermediateSize() * c.hiddenSize());
            assertThat(total).isEqualTo(params);
            assertThat(w.values()).noneMatch(NDArray::hasGradient);
            Map<String, NDArray> t = model.trainableWeights();
            assertThat(t.keySet()).isEqualTo(w.keySet());
            assertThat(t.values()).allMatch(NDArray::hasGradient);
        }
    }

    @Test
    void trainableWeightsNeedFp32() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model("llama"), m, DataType.FLOAT16)) {
            assertThatThrownBy(model::trainableWeights).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("fp32").hasMessageContaining("float16");
        }
    }
}
