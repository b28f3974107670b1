package ai.lorapar.model;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import ai.lorapar.io.StrictJson;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The architecture of a LLaMA-family decoder, read from a Hugging Face {@code config.json}
 * (LLaMA-2/3, Qwen2/2.5, Mistral), with special token ids completed from {@code generation_config.json}.
 *
 * <p>Both spellings of rotary settings are read: transformers 4's {@code rope_theta} +
 * {@code rope_scaling} and transformers 5's {@code rope_parameters}. Supported rotary types:
 * {@code default}, {@code linear} and {@code llama3}.
 */
public final class ModelConfig {
    private static final Logger LOG = LoggerFactory.getLogger(ModelConfig.class);
    private static final Set<String> MODEL_TYPES = Set.of("llama", "qwen2", "mistral");
    /**
     * Plausibility limits, far above any released model (vocabularies reach ~260 k, widths ~53 k, layers
     * ~130, contexts ~10 M): a larger value is a corrupt or mistyped config, refused naming the key
     * before any weight is read.
     */
    static final int MAX_VOCAB = 1 << 24;
    static final int MAX_WIDTH = 1 << 20;
    static final int MAX_COUNT = 1 << 12;
    static final int MAX_POSITIONS = 1 << 28;

    /** Rotary scaling of type {@code llama3} or {@code linear}; null fields are unused by the type. */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
            int originalMaxPositions) {}

    private final String source;
    private final String modelType;
    private final int vocabSize;
    private final int hiddenSize;
    private final int intermediateSize;
    private final int numLayers;
    private final int numHeads;
    private final int numKeyValueHeads;
    private final int headDim;
    private final double rmsNormEps;
    private final double ropeTheta;
    private final RopeScaling ropeScaling;
    private final int maxPositions;
    private final boolean tieWordEmbeddings;
    private final boolean attentionBias;
    private final boolean mlpBias;
    private final Integer bosTokenId;
    private final List<Integer> eosTokenIds;
    private final Integer padTokenId;
    private final String torchDtype;

    private ModelConfig(Builder b) {
        this.source = b.source;
        this.modelType = b.modelType;
        this.vocabSize = b.vocabSize;
        this.hiddenSize = b.hiddenSize;
        this.intermediateSize = b.intermediateSize;
        this.numLayers = b.numLayers;
        this.numHeads = b.numHeads;
        this.numKeyValueHeads = b.numKeyValueHeads;
        this.headDim = b.headDim;
        this.rmsNormEps = b.rmsNormEps;
        this.ropeTheta = b.ropeTheta;
        this.ropeScaling = b.ropeScaling;
        this.maxPositions = b.maxPositions;
        this.tieWordEmbeddings = b.tieWordEmbeddings;
        this.attentionBias = b.attentionBias;
        this.mlpBias = b.mlpBias;
        this.bosTokenId = b.bosTokenId;
        this.eosTokenIds = List.copyOf(b.eosTokenIds);
        this.padTokenId = b.padTokenId;
        this.torchDtype = b.torchDtype;
    }

    /** Reads {@code folder/config.json} and, when present, {@code folder/generation_config.json}. */
    public static ModelConfig load(Path folder) throws IOException {
        Path cfg = folder.resolve("config.json");
        if (!Files.isRegularFile(cfg)) {
            throw new ModelConfigException(folder + ": no config.json (is this a Hugging Face model folder?)");
        }
        ModelConfig c = fromJson(readJson(cfg), cfg.toString());
        Path gen = folder.resolve("generation_config.json");
        if (Files.isRegularFile(gen)) {
            c = c.withGenerationConfig(readJson(gen), gen.toString());
        }
        return c;
    }

    static JsonObject readJson(Path p) throws IOException {
        try (Reader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
            JsonElement e = StrictJson.parse(r);
            if (!e.isJsonObject()) {
                throw new ModelConfigException(p + ": not a JSON object");
            }
            return e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new ModelConfigException(p + ": not valid JSON: " + e.getMessage(), e);
        } catch (CharacterCodingException e) {
            throw new ModelConfigException(p + ": not valid UTF-8 (" + e + ")", e);
        }
    }

    /** Parses a config.json object; {@code source} names it in errors. */
    public static ModelConfig fromJson(JsonObject j, String source) throws ModelConfigException {
        Builder b = new Builder();
        b.source = source;
        b.modelType = str(j, "model_type", source, null);
        if (b.modelType == null) {
            throw new ModelConfigException(source + ": missing \"model_type\" (expected one of " + MODEL_TYPES + ")");
        }
        if (!MODEL_TYPES.contains(b.modelType)) {
            throw new ModelConfigException(source + ": model_type \"" + b.modelType + "\" is not supported (supported: "
                    + MODEL_TYPES + ")");
        }
        String act = str(j, "hidden_act", source, "silu");
        if (!"silu".equals(act) && !"swish".equals(act)) {
            throw new ModelConfigException(source + ": hidden_act \"" + act + "\" is not supported (only silu)");
        }
        b.vocabSize = reqInt(j, "vocab_size", source);
        b.hiddenSize = reqInt(j, "hidden_size", source);
        b.intermediateSize = reqInt(j, "intermediate_size", source);
        b.numLayers = reqInt(j, "num_hidden_layers", source);
        b.numHeads = reqInt(j, "num_attention_heads", source);
        b.numKeyValueHeads = optInt(j, "num_key_value_heads", source, b.numHeads);
        Integer hd = optInteger(j, "head_dim", source);
        if (hd == null) {
            if (b.hiddenSize % b.numHeads != 0) {
                throw new ModelConfigException(source + ": hidden_size " + b.hiddenSize + " is not a multiple of "
                        + "num_attention_heads " + b.numHeads + " and there is no head_dim");
            }
            hd = b.hiddenSize / b.numHeads;
        }
        if (hd <= 0) {
            throw new ModelConfigException(source + ": \"head_dim\" must be positive, got " + hd);
        }
        b.headDim = hd;
        if (b.numKeyValueHeads <= 0 || b.numHeads % b.numKeyValueHeads != 0) {
            throw new ModelConfigException(source + ": num_attention_heads " + b.numHeads
                    + " is not a multiple of num_key_value_heads " + b.numKeyValueHeads);
        }
        if (b.headDim % 2 != 0) {
            throw new ModelConfigException(source + ": head_dim " + b.headDim + " must be even for rotary embeddings");
        }
        b.rmsNormEps = optDouble(j, "rms_norm_eps", source, 1e-6);
        positiveFinite(b.rmsNormEps, "rms_norm_eps", source);
        b.maxPositions = optInt(j, "max_position_embeddings", source, 4096);
        if (b.maxPositions <= 0) {
            throw new ModelConfigException(source + ": \"max_position_embeddings\" must be positive, got " + b.maxPositions);
        }
        atMost(b.vocabSize, MAX_VOCAB, "vocab_size", source);
        atMost(b.hiddenSize, MAX_WIDTH, "hidden_size", source);
        atMost(b.intermediateSize, MAX_WIDTH, "intermediate_size", source);
        atMost(b.numLayers, MAX_COUNT, "num_hidden_layers", source);
        atMost(b.numHeads, MAX_COUNT, "num_attention_heads", source);
        atMost(b.numKeyValueHeads, MAX_COUNT, "num_key_value_heads", source);
        atMost(b.headDim, MAX_COUNT, "head_dim", source);
        atMost(b.maxPositions, MAX_POSITIONS, "max_position_embeddings", source);
        b.tieWordEmbeddings = optBool(j, "tie_word_embeddings", source, false);
        // Qwen2 always has q/k/v bias (no config key); LLaMA/Mistral use attention_bias (default false)
        b.attentionBias = "qwen2".equals(b.modelType) || optBool(j, "attention_bias", source, false);
        b.mlpBias = optBool(j, "mlp_bias", source, false);
        b.bosTokenId = optInteger(j, "bos_token_id", source);
        b.eosTokenIds = intList(j, "eos_token_id", source);
        b.padTokenId = optInteger(j, "pad_token_id", source);
        b.torchDtype = str(j, "dtype", source, str(j, "torch_dtype", source, null));
        parseRope(j, b, source);
        if ("qwen2".equals(b.modelType) && optBool(j, "use_sliding_window", source, false)) {
            LOG.warn("{}: use_sliding_window is true; this implementation attends over the whole sequence, "
                    + "which equals sliding-window attention only for sequences up to sliding_window tokens", source);
        }
        if ("mistral".equals(b.modelType) && j.has("sliding_window") && !j.get("sliding_window").isJsonNull()) {
            LOG.warn("{}: sliding_window {} is not applied; results equal the reference only for sequences up to "
                    + "that length", source, j.get("sliding_window"));
        }
        return new ModelConfig(b);
    }

    private static void parseRope(JsonObject j, Builder b, String source) throws ModelConfigException {
        JsonObject scaling = null;
        String key;
        if (j.has("rope_parameters") && j.get("rope_parameters").isJsonObject()) {
            key = "rope_parameters";
            JsonObject p = j.getAsJsonObject("rope_parameters");
            b.ropeTheta = optDouble(p, "rope_theta", source + " " + key, optDouble(j, "rope_theta", source, 10000.0));
            positiveFinite(b.ropeTheta, p.has("rope_theta") ? "rope_parameters.rope_theta" : "rope_theta", source);
            scaling = p;
        } else {
            key = "rope_scaling";
            b.ropeTheta = optDouble(j, "rope_theta", source, 10000.0);
            positiveFinite(b.ropeTheta, "rope_theta", source);
            if (j.has("rope_scaling") && j.get("rope_scaling").isJsonObject()) {
                scaling = j.getAsJsonObject("rope_scaling");
            }
        }
        if (scaling == null) {
            return;
        }
        String where = source + " " + key;
        String type = str(scaling, "rope_type", where, str(scaling, "type", where, "default"));
        switch (type.toLowerCase(Locale.ROOT)) {
            case "default":
                return;
            case "linear":
                b.ropeScaling = new RopeScaling("linear", positiveFinite(reqDouble(scaling, "factor", where),
                        key + ".factor", source), 0, 0, 0);
                return;
            case "llama3": {
                double low = positiveFinite(reqDouble(scaling, "low_freq_factor", where), key + ".low_freq_factor", source);
                double high = positiveFinite(reqDouble(scaling, "high_freq_factor", where), key + ".high_freq_factor",
                        source);
                if (!(high > low)) {
                    throw new ModelConfigException(source + ": \"" + key + ".high_freq_factor\" (" + high
                            + ") must be greater than \"" + key + ".low_freq_factor\" (" + low + ")");
                }
                b.ropeScaling = new RopeScaling("llama3", positiveFinite(reqDouble(scaling, "factor", where),
                        key + ".factor", source), low, high, reqInt(scaling, "original_max_position_embeddings", where));
                return;
            }
            default:
                throw new ModelConfigException(where + ": rope type \"" + type
                        + "\" is not supported (supported: default, linear, llama3)");
        }
    }

    /** A copy whose special token ids are completed/overridden by a generation_config.json object. */
    public ModelConfig withGenerationConfig(JsonObject g, String source) throws ModelConfigException {
        Builder b = toBuilder();
        Integer bos = optInteger(g, "bos_token_id", source);
        if (bos != null) {
            b.bosTokenId = bos;
        }
        List<Integer> eos = intList(g, "eos_token_id", source);
        if (!eos.isEmpty()) {
            b.eosTokenIds = eos;
        }
        Integer pad = optInteger(g, "pad_token_id", source);
        if (pad != null) {
            b.padTokenId = pad;
        }
        return new ModelConfig(b);
    }

    /**
     * The rotary inverse frequencies ({@code headDim / 2} values), as transformers computes them in
     * fp32, including {@code linear} and {@code llama3} scaling.
     */
    public float[] ropeInverseFrequencies() {
        int half = headDim / 2;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = (float) (2 * i) / headDim;
            inv[i] = (float) (1.0 / Math.pow(ropeTheta, exponent));
        }
        if (ropeScaling == null) {
            return inv;
        }
        if ("linear".equals(ropeScaling.type())) {
            for (int i = 0; i < half; i++) {
                inv[i] = (float) (inv[i] / ropeScaling.factor());
            }
            return inv;
        }
        // llama3: keep high frequencies, divide low ones by factor, interpolate in between
        double factor = ropeScaling.factor();
        double old = ropeScaling.originalMaxPositions();
        double lowWavelen = old / ropeScaling.lowFreqFactor();
        double highWavelen = old / ropeScaling.highFreqFactor();
        for (int i = 0; i < half; i++) {
            float f = inv[i];
            float wavelen = (float) (2 * Math.PI) / f;
            float scaled = wavelen > lowWavelen ? (float) (f / factor) : f;
            float smooth = (float) ((old / wavelen - ropeScaling.lowFreqFactor())
                    / (ropeScaling.highFreqFactor() - ropeScaling.lowFreqFactor()));
            float smoothed = (float) ((1 - smooth) * scaled / factor + smooth * scaled);
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            inv[i] = medium ? smoothed : scaled;
        }
        return inv;
    }

    // ---- accessors

    /**
     * Where the config was read from (errors name it).
     *
     * @return the file or description
     */
    public String source() { return source; }
    /**
     * The architecture: llama, qwen2 or mistral.
     *
     * @return model_type
     */
    public String modelType() { return modelType; }
    /**
     * Vocabulary size.
     *
     * @return vocab_size
     */
    public int vocabSize() { return vocabSize; }
    /**
     * Width of the residual stream.
     *
     * @return hidden_size
     */
    public int hiddenSize() { return hiddenSize; }
    /**
     * Width of the MLP.
     *
     * @return intermediate_size
     */
    public int intermediateSize() { return intermediateSize; }
    /**
     * Decoder layers.
     *
     * @return num_hidden_layers
     */
    public int numLayers() { return numLayers; }
    /**
     * Query heads.
     *
     * @return num_attention_heads
     */
    public int numHeads() { return numHeads; }
    /**
     * Key/value heads (grouped-query attention).
     *
     * @return num_key_value_heads
     */
    public int numKeyValueHeads() { return numKeyValueHeads; }
    /**
     * Dimension of one attention head.
     *
     * @return head_dim
     */
    public int headDim() { return headDim; }
    /**
     * RMSNorm epsilon.
     *
     * @return rms_norm_eps
     */
    public double rmsNormEps() { return rmsNormEps; }
    /**
     * Rotary base.
     *
     * @return rope_theta
     */
    public double ropeTheta() { return ropeTheta; }
    /** Rotary scaling, or null for plain rotary embeddings. */
    public RopeScaling ropeScaling() { return ropeScaling; }
    /**
     * Longest sequence the model was trained for.
     *
     * @return max_position_embeddings
     */
    public int maxPositions() { return maxPositions; }
    /**
     * Whether the output layer is the embedding matrix.
     *
     * @return tie_word_embeddings
     */
    public boolean tieWordEmbeddings() { return tieWordEmbeddings; }
    /** Whether q/k/v projections have a bias (Qwen2: always). */
    public boolean attentionBias() { return attentionBias; }
    /**
     * Whether the MLP projections have biases.
     *
     * @return mlp_bias
     */
    public boolean mlpBias() { return mlpBias; }
    /** Begin-of-sequence id, or null. */
    public Integer bosTokenId() { return bosTokenId; }
    /** End-of-sequence ids (generation_config.json may list several); may be empty. */
    public List<Integer> eosTokenIds() { return eosTokenIds; }
    /** Padding id, or null when neither file sets it. */
    public Integer padTokenId() { return padTokenId; }
    /** The checkpoint's declared dtype ("float32", "bfloat16", ...), or null. */
    public String torchDtype() { return torchDtype; }

    @Override
    public String toString() {
        return modelType + "[layers=" + numLayers + ", hidden=" + hiddenSize + ", heads=" + numHeads + "/"
                + numKeyValueHeads + ", headDim=" + headDim + ", ffn=" + intermediateSize + ", vocab=" + vocabSize
                + ", ropeTheta=" + ropeTheta + (ropeScaling != null ? ", " + ropeScaling : "") + ", tied="
                + tieWordEmbeddings + ", qkvBias=" + attentionBias + "]";
    }

    // ---- JSON helpers: errors name the file and the key

    private static JsonElement get(JsonObject j, String key) {
        JsonElement e = j.get(key);
        return e == null || e.isJsonNull() ? null : e;
    }

    private static String str(JsonObject j, String key, String src, String dflt) throws ModelConfigException {
        JsonElement e = get(j, key);
        if (e == null) {
            return dflt;
        }
        if (!e.isJsonPrimitive()) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be a string, got " + e);
        }
        return e.getAsString();
    }

    private static Integer optInteger(JsonObject j, String key, String src) throws ModelConfigException {
        JsonElement e = get(j, key);
        if (e == null) {
            return null;
        }
        if (e.isJsonArray()) {
            // e.g. a list of eos ids where one was expected: take the first
            JsonArray a = e.getAsJsonArray();
            return a.isEmpty() ? null : asInt(a.get(0), key, src);
        }
        return asInt(e, key, src);
    }

    private static int asInt(JsonElement e, String key, String src) throws ModelConfigException {
        try {
            double d = e.getAsDouble();
            if (d != Math.rint(d)) {
                throw new NumberFormatException("not an integer");
            }
            if (d < Integer.MIN_VALUE || d > Integer.MAX_VALUE) {
                throw new ModelConfigException(src + ": \"" + key + "\" is " + e + ", which does not fit a 32-bit "
                        + "integer");
            }
            return (int) d;
        } catch (RuntimeException ex) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be an integer, got " + e, ex);
        }
    }

    private static int reqInt(JsonObject j, String key, String src) throws ModelConfigException {
        Integer v = optInteger(j, key, src);
        if (v == null) {
            throw new ModelConfigException(src + ": missing required key \"" + key + "\"");
        }
        if (v <= 0) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be positive, got " + v);
        }
        return v;
    }

    private static int optInt(JsonObject j, String key, String src, int dflt) throws ModelConfigException {
        Integer v = optInteger(j, key, src);
        return v == null ? dflt : v;
    }

    private static double optDouble(JsonObject j, String key, String src, double dflt) throws ModelConfigException {
        JsonElement e = get(j, key);
        if (e == null) {
            return dflt;
        }
        try {
            return e.getAsDouble();
        } catch (RuntimeException ex) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be a number, got " + e, ex);
        }
    }

    /** {@code value} when it is a positive finite number, else an error naming {@code key}. */
    private static double positiveFinite(double value, String key, String src) throws ModelConfigException {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be a positive finite number, got " + value
                    + (value == 0 || Double.isNaN(value) ? " (the model would compute NaN logits)" : ""));
        }
        return value;
    }

    private static void atMost(int value, int limit, String key, String src) throws ModelConfigException {
        if (value > limit) {
            throw new ModelConfigException(src + ": \"" + key + "\" is " + value + ", more than any model this "
                    + "library can load (at most " + limit + "); is config.json corrupt?");
        }
    }

    private static double reqDouble(JsonObject j, String key, String src) throws ModelConfigException {
        if (get(j, key) == null) {
            throw new ModelConfigException(src + ": missing required key \"" + key + "\"");
        }
        return optDouble(j, key, src, Double.NaN);
    }

    private static boolean optBool(JsonObject j, String key, String src, boolean dflt) throws ModelConfigException {
        JsonElement e = get(j, key);
        if (e == null) {
            return dflt;
        }
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isBoolean()) {
            throw new ModelConfigException(src + ": \"" + key + "\" must be true or false, got " + e);
        }
        return e.getAsBoolean();
    }

    private static List<Integer> intList(JsonObject j, String key, String src) throws ModelConfigException {
        JsonElement e = get(j, key);
        List<Integer> out = new ArrayList<>();
        if (e == null) {
            return out;
        }
        if (e.isJsonArray()) {
            for (JsonElement x : e.getAsJsonArray()) {
                out.add(asInt(x, key, src));
            }
        } else {
            out.add(asInt(e, key, src));
        }
        return out;
    }

    private Builder toBuilder() {
        Builder b = new Builder();
        b.source = source;
        b.modelType = modelType;
        b.vocabSize = vocabSize;
        b.hiddenSize = hiddenSize;
        b.intermediateSize = intermediateSize;
        b.numLayers = numLayers;
        b.numHeads = numHeads;
        b.numKeyValueHeads = numKeyValueHeads;
        b.headDim = headDim;
        b.rmsNormEps = rmsNormEps;
        b.ropeTheta = ropeTheta;
        b.ropeScaling = ropeScaling;
        b.maxPositions = maxPositions;
        b.tieWordEmbeddings = tieWordEmbeddings;
        b.attentionBias = attentionBias;
        b.mlpBias = mlpBias;
        b.bosTokenId = bosTokenId;
        b.eosTokenIds = eosTokenIds;
        b.padTokenId = padTokenId;
        b.torchDtype = torchDtype;
        return b;
    }

    private static final class Builder {
        String source;
        String modelType;
        int vocabSize;
        int hiddenSize;
        int intermediateSize;
        int numLayers;
        int numHeads;
        int numKeyValueHeads;
        int headDim;
        double rmsNormEps;
        double ropeTheta;
        RopeScaling ropeScaling;
        int maxPositions;
        boolean tieWordEmbeddings;
        boolean attentionBias;
        boolean mlpBias;
        Integer bosTokenId;
        List<Integer> eosTokenIds = List.of();
        Integer padTokenId;
        String torchDtype;
    }
}
