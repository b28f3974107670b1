package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.AtomicFolder;
import ai.lorapar.io.SafetensorsCheckpoint;
import ai.lorapar.io.SafetensorsWriter;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes a {@link DecoderModel} as a Hugging Face folder (config.json + model.safetensors). */
final class ModelWriter {
    private ModelWriter() {}

    /** {@code tensors}: transformers' names → arrays (any device); copied to the host one at a time. */
    static void write(Path folder, ModelConfig config, DataType dtype, Map<String, NDArray> tensors, NDManager scope)
            throws IOException {
        Map<String, NDArray> host = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : tensors.entrySet()) {
            NDArray a = e.getValue().getDevice().equals(Device.cpu()) ? e.getValue()
                    : attach(e.getValue().toDevice(Device.cpu(), false), scope);
            host.put(e.getKey(), a);
        }
        String json = new GsonBuilder().setPrettyPrinting().create().toJson(configJson(config, dtype)) + "\n";
        AtomicFolder.write(folder, tmp -> {
            SafetensorsWriter.write(tmp.resolve(SafetensorsCheckpoint.SINGLE_FILE), host, Map.of("format", "pt"));
            Files.writeString(tmp.resolve("config.json"), json, StandardCharsets.UTF_8);
        });
    }

    private static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }

    /** A transformers config.json for {@code c} (read back by {@link ModelConfig#load}). */
    static JsonObject configJson(ModelConfig c, DataType dtype) {
        JsonObject o = new JsonObject();
        String arch = switch (c.modelType()) {
            case "qwen2" -> "Qwen2ForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            default -> "LlamaForCausalLM";
        };
        JsonArray archs = new JsonArray();
        archs.add(arch);
        o.add("architectures", archs);
        o.addProperty("model_type", c.modelType());
        o.addProperty("vocab_size", c.vocabSize());
        o.addProperty("hidden_size", c.hiddenSize());
        o.addProperty("intermediate_size", c.intermediateSize());
        o.addProperty("num_hidden_layers", c.numLayers());
        o.addProperty("num_attention_heads", c.numHeads());
        o.addProperty("num_key_value_heads", c.numKeyValueHeads());
        o.addProperty("head_dim", c.headDim());
        o.addProperty("hidden_act", "silu");
        o.addProperty("rms_norm_eps", c.rmsNormEps());
        o.addProperty("max_position_embeddings", c.maxPositions());
        o.addProperty("tie_word_embeddings", c.tieWordEmbeddings());
        if (!"qwen2".equals(c.modelType())) {
            o.addProperty("attention_bias", c.attentionBias());
            o.addProperty("mlp_bias", c.mlpBias());
        }
        o.addProperty("rope_theta", c.ropeTheta());
        ModelConfig.RopeScaling rs = c.ropeScaling();
        if (rs != null) {
            JsonObject r = new JsonObject();
            r.addProperty("rope_type", rs.type());
            r.addProperty("factor", rs.factor());
            if ("llama3".equals(rs.type())) {
                r.addProperty("low_freq_factor", rs.lowFreqFactor());
                r.addProperty("high_freq_factor", rs.highFreqFactor());
                r.addProperty("original_max_position_embeddings", rs.originalMaxPositions());
            }
            o.add("rope_scaling", r);
        }
        if (c.bosTokenId() != null) {
            o.addProperty("bos_token_id", c.bosTokenId());
        }
        if (c.eosTokenIds().size() == 1) {
            o.addProperty("eos_token_id", c.eosTokenIds().get(0));
        } else if (!c.eosTokenIds().isEmpty()) {
            JsonArray eos = new JsonArray();
            c.eosTokenIds().forEach(eos::add);
            o.add("eos_token_id", eos);
        }
        if (c.padTokenId() != null) {
            o.addProperty("pad_token_id", c.padTokenId());
        }
        o.addProperty("torch_dtype", dtype == DataType.BFLOAT16 ? "bfloat16" : dtype == DataType.FLOAT16 ? "float16"
                : "float32");
        return o;
    }
}
