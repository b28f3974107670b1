package ai.lorapar.model;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelConfigTest {

    @Test
    void readsTransformers5FixtureConfigs() throws Exception {
        ModelConfig llama = ModelConfig.load(Fixtures.model("llama"));
        assertThat(llama.modelType()).isEqualTo("llama");
        assertThat(llama.numHeads()).isEqualTo(4);
        assertThat(llama.numKeyValueHeads()).isEqualTo(2);
        assertThat(llama.headDim()).isEqualTo(16);
        assertThat(llama.ropeTheta()).isEqualTo(10000.0);
        assertThat(llama.ropeScaling().type()).isEqualTo("llama3");
        assertThat(llama.ropeScaling().originalMaxPositions()).isEqualTo(32);
        assertThat(llama.tieWordEmbeddings()).isFalse();
        assertThat(llama.attentionBias()).isFalse();
        assertThat(llama.eosTokenIds()).containsExactly(257);
        assertThat(llama.padTokenId()).isEqualTo(258);

        ModelConfig qwen = ModelConfig.load(Fixtures.model("qwen2"));
        assertThat(qwen.attentionBias()).isTrue();
        assertThat(qwen.tieWordEmbeddings()).isTrue();
        assertThat(qwen.ropeTheta()).isEqualTo(1_000_000.0);
        assertThat(qwen.ropeScaling()).isNull();
        assertThat(qwen.rmsNormEps()).isEqualTo(1e-6);

        ModelConfig mistral = ModelConfig.load(Fixtures.model("mistral"));
        assertThat(mistral.headDim()).isEqualTo(32);
        assertThat(mistral.numKeyValueHeads()).isEqualTo(1);
        assertThat(ModelConfig.load(Fixtures.model("llama_bf16")).torchDtype()).isEqualTo("bfloat16");
    }

    @Test
    void readsTransformers4SpellingOfLlama3RopeScaling() throws Exception {
        JsonObject j = JsonParser.parseString(Files.readString(Fixtures.model("llama").resolve("config.json")))
                .getAsJsonObject();
        JsonObject params = j.remove("rope_parameters").getAsJsonObject();
        j.addProperty("rope_theta", params.get("rope_theta").getAsDouble());
        params.remove("rope_theta");
        params.remove("rope_type");
        params.addProperty("type", "llama3"); // the oldest spelling
        j.add("rope_scaling", params);
        ModelConfig legacy = ModelConfig.fromJson(j, "legacy config.json");
        ModelConfig v5 = ModelConfig.load(Fixtures.model("llama"));
        assertThat(legacy.ropeScaling()).isEqualTo(v5.ropeScaling());
        assertThat(legacy.ropeInverseFrequencies()).containsExactly(v5.ropeInverseFrequencies());
    }

    @Test
    void errorsNameTheFileAndTheKey() throws Exception {
        JsonObject base = JsonParser.parseString(Files.readString(Fixtures.model("qwen2").resolve("config.json")))
                .getAsJsonObject();

        JsonObject noHidden = base.deepCopy();
        noHidden.remove("hidden_size");
        assertThatThrownBy(() -> ModelConfig.fromJson(noHidden, "x/config.json"))
                .isInstanceOf(ModelConfigException.class)
                .hasMessageContaining("x/config.json").hasMessageContaining("\"hidden_size\"");

        JsonObject gqa = base.deepCopy();
        gqa.addProperty("num_key_value_heads", 3);
        assertThatThrownBy(() -> ModelConfig.fromJson(gqa, "c.json")).hasMessageContaining("num_key_value_heads 3");

        JsonObject yarn = base.deepCopy();
        JsonObject rp = new JsonObject();
        rp.addProperty("rope_type", "yarn");
        rp.addProperty("factor", 4.0);
        yarn.add("rope_parameters", rp);
        assertThatThrownBy(() -> ModelConfig.fromJson(yarn, "c.json")).hasMessageContaining("rope type \"yarn\"");

        JsonObject gemma = base.deepCopy();
        gemma.addProperty("model_type", "gemma");
        assertThatThrownBy(() -> ModelConfig.fromJson(gemma, "c.json")).hasMessageContaining("\"gemma\" is not supported");

        JsonObject badType = base.deepCopy();
        badType.addProperty("vocab_size", "many");
        assertThatThrownBy(() -> ModelConfig.fromJson(badType, "c.json")).hasMessageContaining("\"vocab_size\" must be an integer");

        assertThatThrownBy(() -> ModelConfig.load(Path.of("/nonexistent-model-folder")))
                .hasMessageContaining("no config.json");
    }

    /** Values that loaded before and gave NaN logits or a model of the wrong size are refused naming the key. */
    @Test
    void rangesAreValidatedNamingTheKey() throws Exception {
        JsonObject qwen = JsonParser.parseString(Files.readString(Fixtures.model("qwen2").resolve("config.json")))
                .getAsJsonObject();
        JsonObject llama = JsonParser.parseString(Files.readString(Fixtures.model("llama").resolve("config.json")))
                .getAsJsonObject();
        JsonObject qwen4 = qwen.deepCopy(); // transformers 4's spelling: rope_theta at the top level
        qwen4.remove("rope_parameters");
        record Case(JsonObject base, String key, Object value, String message) {}
        java.util.List<Case> cases = java.util.List.of(
                new Case(qwen, "rms_norm_eps", 0, "\"rms_norm_eps\" must be a positive finite number, got 0.0"),
                new Case(qwen, "rms_norm_eps", -1e-6, "\"rms_norm_eps\" must be a positive finite number"),
                new Case(qwen, "rms_norm_eps", Double.NaN, "\"rms_norm_eps\" must be a positive finite number, got NaN"),
                new Case(qwen4, "rope_theta", 0, "\"rope_theta\" must be a positive finite number"),
                new Case(qwen4, "rope_theta", -10000, "\"rope_theta\" must be a positive finite number"),
                new Case(qwen4, "rope_theta", Double.NaN, "\"rope_theta\" must be a positive finite number"),
                new Case(qwen, "vocab_size", 1_000_000_000, "\"vocab_size\" is 1000000000, more than any model"),
                new Case(qwen, "vocab_size", 1e12, "\"vocab_size\" is 1.0E12, which does not fit a 32-bit integer"),
                new Case(qwen, "hidden_size", 1 << 22, "\"hidden_size\" is 4194304, more than any model"),
                new Case(qwen, "num_hidden_layers", 100_000, "\"num_hidden_layers\" is 100000"),
                new Case(qwen, "max_position_embeddings", 0, "\"max_position_embeddings\" must be positive"),
                new Case(qwen, "head_dim", -16, "\"head_dim\" must be positive"));
        for (Case c : cases) {
            JsonObject j = c.base().deepCopy();
            j.add(c.key(), new com.google.gson.JsonPrimitive((Number) c.value()));
            assertThatThrownBy(() -> ModelConfig.fromJson(j, "x/config.json")).as(c.key() + " = " + c.value())
                    .isInstanceOf(ModelConfigException.class)
                    .hasMessageContaining("x/config.json").hasMessageContaining(c.message());
        }
        // transformers 5 keeps rope_theta inside rope_parameters; llama3 scaling factors are checked too
        JsonObject theta = llama.deepCopy();
        theta.getAsJsonObject("rope_parameters").addProperty("rope_theta", -1);
        assertThatThrownBy(() -> ModelConfig.fromJson(theta, "c.json"))
                .hasMessageContaining("\"rope_parameters.rope_theta\" must be a positive finite number");
        JsonObject factor = llama.deepCopy();
        factor.getAsJsonObject("rope_parameters").addProperty("factor", 0);
        assertThatThrownBy(() -> ModelConfig.fromJson(factor, "c.json"))
                .hasMessageContaining("\"rope_parameters.factor\" must be a positive finite number");
        JsonObject freq = llama.deepCopy();
        freq.getAsJsonObject("rope_parameters").addProperty("high_freq_factor", 1.0);
        assertThatThrownBy(() -> ModelConfig.fromJson(freq, "c.json"))
                .hasMessageContaining("\"rope_parameters.high_freq_factor\" (1.0) must be greater than");
    }

    @Test
    void aRepeatedKeyInConfigJsonIsAnErrorNotTheLastValue(@org.junit.jupiter.api.io.TempDir Path tmp) throws Exception {
        String json = Files.readString(Fixtures.model("llama").resolve("config.json"));
        Files.writeString(tmp.resolve("config.json"), json.replace("\"num_hidden_layers\": 2,",
                "\"num_hidden_layers\": 2,\n  \"num_hidden_layers\": 1,"));
        assertThatThrownBy(() -> ModelConfig.load(tmp)).isInstanceOf(ModelConfigException.class)
                .hasMessageContaining("config.json").hasMessageContaining("duplicate key \"num_hidden_layers\"");
    }
}
