package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.io.SafetensorsCheckpoint;
import ai.lorapar.io.TensorInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds {@link DecoderModel}s: from a Hugging Face folder (config.json + safetensors, validated against
 * each other, every checkpoint tensor accounted for) or with random weights of a config's shape. q/k/v and
 * gate/up are stored as one fused weight each, of which the {@link Linear}s hold row views.
 */
final class ModelLoader {
    private static final Logger LOG = LoggerFactory.getLogger(ModelLoader.class);

    /** A fused weight with its bias (or null) and the Linears viewing its row blocks. */
    private record Fused(NDArray weight, NDArray bias, Linear[] parts) {}

    private ModelLoader() {}

    /** {@link DecoderModel#load(Path, NDManager, DataType)}. */
    static DecoderModel load(Path folder, NDManager parent, DataType dtype) throws IOException {
        ModelConfig config = ModelConfig.load(folder);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(folder)) {
            DataType target = dtype != null ? dtype : DecoderModel.defaultDtype(parent);
            if (target == DataType.BFLOAT16 && !parent.getEngine().hasCapability("BF16")) {
                throw new ModelConfigException("compute dtype bf16 requested, but engine "
                        + parent.getEngine().getEngineName() + " has no BF16 capability (use FLOAT32 or FLOAT16)");
            }
            if (!target.isFloating()) {
                throw new IllegalArgumentException("compute dtype must be floating point, got " + target);
            }
            checkEveryTensorIsUsed(config, ckpt);
            NDManager m = parent.newSubManager();
            try {
                DecoderModel model = build(config, checkpointWeights(ckpt), m, target);
                LOG.info("loaded {} from {} as {} on {}", config, folder, target, m.getDevice());
                return model;
            } catch (IOException | RuntimeException e) {
                m.close();
                throw e;
            }
        }
    }

    /** {@link DecoderModel#random}. */
    static DecoderModel random(ModelConfig config, NDManager parent, DataType dtype, long seed) {
        DataType target = dtype != null ? dtype : DecoderModel.defaultDtype(parent);
        if (target == DataType.BFLOAT16 && !parent.getEngine().hasCapability("BF16")) {
            throw new IllegalArgumentException("compute dtype bf16 requested, but engine "
                    + parent.getEngine().getEngineName() + " has no BF16 capability (use FLOAT32 or FLOAT16)");
        }
        parent.getEngine().setRandomSeed((int) (seed ^ (seed >>> 32)));
        Weights random = new Weights() {
            @Override
            public boolean contains(String name) {
                return !name.endsWith(".bias") || config.attentionBias() && name.contains("self_attn.")
                        && !name.contains("o_proj") || config.mlpBias() && name.contains("mlp.");
            }

            @Override
            public NDArray load(ModelConfig c, NDManager m, DataType dt, String name, long... expected) {
                Shape shape = new Shape(expected);
                NDArray a;
                if (name.endsWith("norm.weight")) {
                    a = m.ones(shape, DataType.FLOAT32);
                } else if (name.endsWith(".bias")) {
                    a = m.zeros(shape, DataType.FLOAT32);
                } else {
                    a = m.randomNormal(0f, 0.02f, shape, DataType.FLOAT32);
                }
                if (dt == DataType.FLOAT32) {
                    return a;
                }
                NDArray cast = a.toType(dt, false);
                a.close();
                return cast;
            }

            @Override
            public Path folder() {
                return Path.of("<random " + config.modelType() + ">");
            }
        };
        NDManager m = parent.newSubManager();
        try {
            return build(config, random, m, target);
        } catch (IOException | RuntimeException e) {
            m.close();
            throw e instanceof IOException io ? new java.io.UncheckedIOException(io) : (RuntimeException) e;
        }
    }


    /**
     * A checkpoint tensor the model would not use means config.json does not describe the checkpoint (fewer
     * {@code num_hidden_layers} than it has, another architecture): an error naming the tensors, rather
     * than a model silently computing something else. Rotary {@code inv_freq} buffers (older checkpoints)
     * are recomputed and ignored; an {@code lm_head.weight} next to tied embeddings is ignored with a warning,
     * as transformers ties it to the embeddings.
     */
    private static void checkEveryTensorIsUsed(ModelConfig c, SafetensorsCheckpoint ckpt) throws ModelConfigException {
        List<String> unused = new ArrayList<>();
        List<String> extraLayers = new ArrayList<>();
        java.util.Set<String> perLayer = java.util.Set.of("input_layernorm.weight", "post_attention_layernorm.weight",
                "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                "self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias",
                "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight", "mlp.gate_proj.bias",
                "mlp.up_proj.bias", "mlp.down_proj.bias");
        java.util.regex.Pattern layer = java.util.regex.Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");
        for (String name : new java.util.TreeSet<>(ckpt.names())) {
            java.util.regex.Matcher mt = layer.matcher(name);
            if (mt.matches()) {
                long index = Long.parseLong(mt.group(1).length() > 9 ? "999999999" : mt.group(1));
                if (index >= c.numLayers()) {
                    extraLayers.add(name);
                } else if (!perLayer.contains(mt.group(2)) && !mt.group(2).endsWith("rotary_emb.inv_freq")) {
                    unused.add(name);
                }
            } else if (name.equals("lm_head.weight") && c.tieWordEmbeddings()) {
                LOG.warn("{}: 'lm_head.weight' is not used: {} has tie_word_embeddings=true (the output layer is the "
                        + "embedding matrix)", ckpt.folder(), c.source());
            } else if (!name.equals("model.embed_tokens.weight") && !name.equals("model.norm.weight")
                    && !name.equals("lm_head.weight") && !name.endsWith("rotary_emb.inv_freq")) {
                unused.add(name);
            }
        }
        if (!extraLayers.isEmpty()) {
            throw new ModelConfigException(ckpt.folder() + ": the checkpoint has tensors of layers beyond "
                    + "num_hidden_layers " + c.numLayers() + " of " + c.source() + ", which would be ignored: "
                    + sample(extraLayers) + "; fix num_hidden_layers or the checkpoint");
        }
        if (!unused.isEmpty()) {
            throw new ModelConfigException(ckpt.folder() + ": " + unused.size() + " checkpoint tensor(s) would not be "
                    + "used by a " + c.modelType() + " model as " + c.source() + " describes it: " + sample(unused)
                    + " (another architecture, or a config.json that does not belong to these weights?)");
        }
    }

    private static String sample(List<String> names) {
        int shown = Math.min(names.size(), 5);
        return "'" + String.join("', '", names.subList(0, shown)) + "'"
                + (names.size() > shown ? " and " + (names.size() - shown) + " more" : "");
    }

    private static DecoderModel build(ModelConfig c, Weights ckpt, NDManager m, DataType dt)
            throws IOException {
        long h = c.hiddenSize();
        long qOut = (long) c.numHeads() * c.headDim();
        long kvOut = (long) c.numKeyValueHeads() * c.headDim();
        long ffn = c.intermediateSize();
        NDArray embed = tensor(ckpt, c, m, dt, "model.embed_tokens.weight", c.vocabSize(), h);
        List<DecoderModel.Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            NDArray inNorm = tensor(ckpt, c, m, dt, p + "input_layernorm.weight", h);
            Fused qkv = fused(ckpt, c, m, dt, new String[] {p + "self_attn.q_proj", p + "self_attn.k_proj",
                p + "self_attn.v_proj"}, new long[] {qOut, kvOut, kvOut}, h, c.attentionBias());
            Linear o = linear(ckpt, c, m, dt, p + "self_attn.o_proj", h, qOut, false);
            NDArray postNorm = tensor(ckpt, c, m, dt, p + "post_attention_layernorm.weight", h);
            Fused gu = fused(ckpt, c, m, dt, new String[] {p + "mlp.gate_proj", p + "mlp.up_proj"},
                    new long[] {ffn, ffn}, h, c.mlpBias());
            Linear down = linear(ckpt, c, m, dt, p + "mlp.down_proj", h, ffn, c.mlpBias());
            layers.add(new DecoderModel.Layer(inNorm, qkv.parts[0], qkv.parts[1], qkv.parts[2], o, postNorm, gu.parts[0],
                    gu.parts[1], down, qkv.weight, qkv.bias, gu.weight, gu.bias));
        }
        NDArray norm = tensor(ckpt, c, m, dt, "model.norm.weight", h);
        Linear head;
        if (c.tieWordEmbeddings()) {
            head = new Linear("lm_head", embed, null);
        } else {
            if (!ckpt.contains("lm_head.weight")) {
                throw new ModelConfigException(ckpt.folder() + ": missing tensor 'lm_head.weight' and config.json has "
                        + "tie_word_embeddings=false");
            }
            head = new Linear("lm_head", tensor(ckpt, c, m, dt, "lm_head.weight", c.vocabSize(), h), null);
        }
        return new DecoderModel(c, m, dt, embed, List.copyOf(layers), norm, head);
    }

    private static Linear linear(Weights ckpt, ModelConfig c, NDManager m, DataType dt, String name,
            long out, long in, boolean biasRequired) throws IOException {
        NDArray w = tensor(ckpt, c, m, dt, name + ".weight", out, in);
        NDArray b = null;
        if (biasRequired || ckpt.contains(name + ".bias")) {
            b = tensor(ckpt, c, m, dt, name + ".bias", out);
        }
        return new Linear(name, w, b);
    }

    /**
     * Loads the weights (and biases) of {@code names} as one fused matrix {@code [sum(outs), in]}: each
     * {@link Linear} gets a row view of it. A part without a bias has zeros in the fused bias (an exact
     * no-op) and a null {@link Linear#bias()}.
     */
    private static Fused fused(Weights ckpt, ModelConfig c, NDManager m, DataType dt, String[] names,
            long[] outs, long in, boolean biasRequired) throws IOException {
        int n = names.length;
        boolean[] hasBias = new boolean[n];
        boolean anyBias = false;
        for (int i = 0; i < n; i++) {
            hasBias[i] = biasRequired || ckpt.contains(names[i] + ".bias");
            anyBias |= hasBias[i];
        }
        NDArray weight;
        NDArray bias = null;
        try (NDManager tmp = m.newSubManager()) {
            NDList ws = new NDList(n);
            NDList bs = new NDList(n);
            for (int i = 0; i < n; i++) {
                ws.add(tensor(ckpt, c, tmp, dt, names[i] + ".weight", outs[i], in));
                if (anyBias) {
                    bs.add(hasBias[i] ? tensor(ckpt, c, tmp, dt, names[i] + ".bias", outs[i])
                            : tmp.zeros(new Shape(outs[i]), dt));
                }
            }
            weight = NDArrays.concat(ws, 0);
            weight.attach(m);
            if (anyBias) {
                bias = NDArrays.concat(bs, 0);
                bias.attach(m);
            }
        }
        Linear[] parts = new Linear[n];
        long off = 0;
        for (int i = 0; i < n; i++) {
            NDArray w = weight.get(new NDIndex("{}:{}", off, off + outs[i]));
            NDArray b = hasBias[i] ? bias.get(new NDIndex("{}:{}", off, off + outs[i])) : null;
            parts[i] = new Linear(names[i], w, b);
            off += outs[i];
        }
        return new Fused(weight, bias, parts);
    }

    private static NDArray tensor(Weights w, ModelConfig c, NDManager m, DataType dt, String name, long... expected)
            throws IOException {
        return w.load(c, m, dt, name, expected);
    }

    /** Where {@link #build} takes the weights from: a checkpoint, or random values ({@link #random}). */
    private interface Weights {
        boolean contains(String name);

        /** Tensor {@code name} of shape {@code expected} in dtype {@code dt} on {@code m}. */
        NDArray load(ModelConfig c, NDManager m, DataType dt, String name, long... expected) throws IOException;

        /** The folder named in errors. */
        Path folder();
    }

    private static Weights checkpointWeights(SafetensorsCheckpoint ckpt) {
        return new Weights() {
            @Override
            public boolean contains(String name) {
                return ckpt.contains(name);
            }

            @Override
            public NDArray load(ModelConfig c, NDManager m, DataType dt, String name, long... expected)
                    throws IOException {
                return checkpointTensor(ckpt, c, m, dt, name, expected);
            }

            @Override
            public Path folder() {
                return ckpt.folder();
            }
        };
    }

    private static NDArray checkpointTensor(SafetensorsCheckpoint ckpt, ModelConfig c, NDManager m, DataType dt,
            String name, long... expected) throws IOException {
        if (!ckpt.contains(name)) {
            throw new ModelConfigException(ckpt.folder() + ": missing tensor '" + name + "' required by "
                    + c.source() + " (" + c.modelType() + ")");
        }
        TensorInfo info = ckpt.info(name);
        Shape want = new Shape(expected);
        if (!info.shape().equals(want)) {
            throw new ModelConfigException(ckpt.fileOf(name).path() + ": tensor '" + name + "' has shape "
                    + info.shape() + " but " + c.source() + " implies " + want + " (" + c + ")");
        }
        return ckpt.loadAs(name, m, dt);
    }
}
