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
}
