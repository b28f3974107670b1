package ai.lorapar.examples.embedded;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The shape of the embedded tiny model, a LLaMA-shaped decoder ({@code model_type: llama}), and its
 * {@code config.json} / {@code generation_config.json}.
 *
 * @param hiddenSize width of the residual stream
 * @param numLayers decoder layers
 * @param numHeads attention heads (head dim = hidden / heads)
 * @param numKeyValueHeads key/value heads (grouped-query attention)
 * @param intermediateSize width of the SwiGLU MLP
 * @param maxPositions max_position_embeddings
 * @param tieWordEmbeddings whether lm_head shares the embedding matrix
 */
public record TinyModelConfig(int hiddenSize, int numLayers, int numHeads, int numKeyValueHeads, int intermediateSize,
        int maxPositions, boolean tieWordEmbeddings) {

    /**
     * The embedded default: hidden 128, 4 layers, 4 heads of 32, 2 KV heads, MLP 512 (4×), 512 positions,
     * tied embeddings. About 0.9 M parameters with the default vocabulary (3.6 MB of fp32 safetensors).
     */
    public static final TinyModelConfig DEFAULT = new TinyModelConfig(128, 4, 4, 2, 512, 512, true);

    public TinyModelConfig {
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || numKeyValueHeads <= 0 || intermediateSize <= 0
                || maxPositions <= 0) {
            throw new IllegalArgumentException("every size must be positive: " + this);
        }
        if (hiddenSize % numHeads != 0 || (hiddenSize / numHeads) % 2 != 0) {
            throw new IllegalArgumentException("hidden size " + hiddenSize + " must split into " + numHeads
                    + " heads of an even dimension (rotary embeddings)");
        }
        if (numHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException(numHeads + " heads are not a multiple of " + numKeyValueHeads + " KV heads");
        }
    }

    public int headDim() {
        return hiddenSize / numHeads;
    }

    /** Parameters for a vocabulary of {@code vocabSize} (embeddings, attention, MLP, norms, lm_head unless tied). */
    public long parameters(int vocabSize) {
        long h = hiddenSize;
        long kv = (long) numKeyValueHeads * headDim();
        long attention = h * h * 2 + h * kv * 2;
        long mlp = 3 * h * intermediateSize;
        long perLayer = attention + mlp + 2 * h;
        long embed = (long) vocabSize * h;
        return embed + numLayers * perLayer + h + (tieWordEmbeddings ? 0 : embed);
    }

    /** {@code config.json} in transformers' LLaMA spelling; bos 1, eos 2, pad 3 as {@link EmbeddedTokenizer}. */
    public JsonObject configJson(int vocabSize) {
        JsonObject c = new JsonObject();
        JsonArray arch = new JsonArray();
        arch.add("LlamaForCausalLM");
        c.add("architectures", arch);
        c.addProperty("model_type", "llama");
        c.addProperty("vocab_size", vocabSize);
        c.addProperty("hidden_size", hiddenSize);
        c.addProperty("intermediate_size", intermediateSize);
        c.addProperty("num_hidden_layers", numLayers);
        c.addProperty("num_attention_heads", numHeads);
        c.addProperty("num_key_value_heads", numKeyValueHeads);
        c.addProperty("head_dim", headDim());
        c.addProperty("hidden_act", "silu");
        c.addProperty("max_position_embeddings", maxPositions);
        c.addProperty("rms_norm_eps", 1e-5);
        c.addProperty("rope_theta", 10000.0);
        c.addProperty("attention_bias", false);
        c.addProperty("attention_dropout", 0.0);
        c.addProperty("mlp_bias", false);
        c.addProperty("initializer_range", 0.02);
        c.addProperty("tie_word_embeddings", tieWordEmbeddings);
        c.addProperty("bos_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.BOS));
        c.addProperty("eos_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.EOS));
        c.addProperty("pad_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.PAD));
        c.addProperty("torch_dtype", "float32");
        c.addProperty("use_cache", true);
        return c;
    }

    /** {@code generation_config.json}: the special ids, greedy decoding by default. */
    public static JsonObject generationConfigJson() {
        JsonObject g = new JsonObject();
        g.addProperty("bos_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.BOS));
        g.addProperty("eos_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.EOS));
        g.addProperty("pad_token_id", EmbeddedTokenizer.SPECIALS.indexOf(EmbeddedTokenizer.PAD));
        g.addProperty("do_sample", false);
        return g;
    }

    /** Writes {@code config.json} and {@code generation_config.json} into {@code folder}. */
    public void write(Path folder, int vocabSize) throws IOException {
        EmbeddedTokenizer.writeJson(folder.resolve("config.json"), configJson(vocabSize));
        EmbeddedTokenizer.writeJson(folder.resolve("generation_config.json"), generationConfigJson());
    }
}
