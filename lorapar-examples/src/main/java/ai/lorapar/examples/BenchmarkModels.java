package ai.lorapar.examples;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.ModelConfigException;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.util.Locale;

/**
 * The model shapes the benchmarks share with {@code peer_anchor.py}, as random-weight models made in
 * place ({@link DecoderModel#random}): no checkpoint to write or read, even at 7B.
 */
public final class BenchmarkModels {
    /** Qwen2.5-0.5B, as the peer's {@code qwen05()}. */
    public static final String QWEN25_05B = "qwen2.5-0.5b";
    /** LLaMA-2-7B, as the peer's {@code llama7b()} (transformers' LlamaConfig defaults, 4096 positions). */
    public static final String LLAMA2_7B = "llama2-7b";

    private BenchmarkModels() {}

    /** config.json of a named shape. */
    public static ModelConfig config(String name) throws ModelConfigException {
        String json = switch (name.toLowerCase(Locale.ROOT)) {
            case QWEN25_05B -> "{\"model_type\": \"qwen2\", \"vocab_size\": 151936, \"hidden_size\": 896,"
                    + " \"intermediate_size\": 4864, \"num_hidden_layers\": 24, \"num_attention_heads\": 14,"
                    + " \"num_key_value_heads\": 2, \"rope_theta\": 1000000.0, \"rms_norm_eps\": 1e-6,"
                    + " \"tie_word_embeddings\": true, \"max_position_embeddings\": 4096}";
            case LLAMA2_7B -> "{\"model_type\": \"llama\", \"vocab_size\": 32000, \"hidden_size\": 4096,"
                    + " \"intermediate_size\": 11008, \"num_hidden_layers\": 32, \"num_attention_heads\": 32,"
                    + " \"num_key_value_heads\": 32, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-6,"
                    + " \"tie_word_embeddings\": false, \"max_position_embeddings\": 4096}";
            default -> throw new IllegalArgumentException("unknown model shape '" + name + "' (known: " + QWEN25_05B
                    + ", " + LLAMA2_7B + ")");
        };
        JsonObject j = JsonParser.parseString(json).getAsJsonObject();
        return ModelConfig.fromJson(j, name);
    }

    /** A random-weight model of a named shape in the default compute dtype of {@code manager}'s device. */
    public static DecoderModel random(String name, NDManager manager, long seed) throws ModelConfigException {
        return DecoderModel.random(config(name), manager, null, seed);
    }

    /** A random-weight model of a named shape in {@code dtype}. */
    public static DecoderModel random(String name, NDManager manager, DataType dtype, long seed)
            throws ModelConfigException {
        return DecoderModel.random(config(name), manager, dtype, seed);
    }
}
