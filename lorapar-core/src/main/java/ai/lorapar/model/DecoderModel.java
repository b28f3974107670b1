package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.lorapar.engine.EngineSupport;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.lorapar.engine.FusedOps;
import ai.lorapar.engine.TrainingOps;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A LLaMA-family causal decoder (LLaMA-2/3, Qwen2/2.5, Mistral) on DJL NDArrays: token embeddings,
 * per layer RMSNorm → grouped-query causal attention with rotary embeddings → residual → RMSNorm →
 * SwiGLU MLP → residual, then a final RMSNorm and the (tied or separate) {@code lm_head}.
 *
 * <p>Every projection is a {@link Linear} reachable by its Hugging Face name through
 * {@link #linear(String)} / {@link #linears()}, so adapters can be attached. Base weights are frozen
 * (no gradient is attached to them); temporaries of a forward pass are freed per layer.
 *
 * <p>Padding: rows may be left- or right-padded; positions are {@code cumsum(mask) - 1}, as in
 * transformers' {@code generate}, so a padded row yields the same logits at its real positions as
 * the unpadded sequence.
 *
 * <p>Passes without a KV cache (training, scoring) run through {@link #trainingPath()}: on a GPU with the
 * project's JNI, torch's fused attention (causal without a mask when the caller says the rows are
 * right-padded: {@link #forward(NDArray, NDArray, boolean, boolean)}), each projection and its LoRA deltas
 * as one autograd node, lean RMSNorm/SiLU nodes; NDArray ops elsewhere. For losses, {@link #forwardHidden}
 * gives the final hidden states and {@link #tokenNll} / {@link #logitsAt} the head at selected rows only
 * (see {@link CausalLmObjective}). Decoding with a KV cache is unaffected by these switches.
 */
public final class DecoderModel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DecoderModel.class);

    private final ModelConfig config;
    private final NDManager manager;
    private final DataType dtype;
    private final NDArray embedTokens;
    private final List<Layer> layers;
    private final NDArray finalNorm;
    private final Linear lmHead;
    private final NDArray invFreq;
    /** RoPE rows by position, {@code [rows, headDim]} in the compute dtype: cos, and sin with rotate-half's sign folded in. */
    private final NDArray ropeCos;
    private final NDArray ropeSin;
    private final int ropeRows;
    private final Map<String, Linear> linears;
    /**
     * Scalars as 0-dim arrays on the model's device, made once: DJL's {@code add(Number)} and friends
     * create the scalar from host memory at every call, which on a GPU is a synchronous host-to-device
     * copy (the host waits for all queued GPU work). Same dtypes as DJL's conversion (double, int), so
     * the results are unchanged.
     */
    private final NDArray epsArr;
    private final NDArray scaleArr;
    private final NDArray oneI;
    private final NDArray zeroI;
    /** fp32's lowest value, the explicit attention's additive mask (made once: no host copy per pass). */
    private final NDArray lowestF32;
    /** The implementations of cache-free passes (training, scoring). */
    private final TrainingPath trainingPath;
    /** Whether q/k/v and gate/up run as one matrix product each (package-private switch for tests). */
    private volatile boolean fusedProjections = true;
    /** Whether the JNI's fused ops ({@link FusedOps}) are used: on a GPU, when the engine has them. */
    private volatile boolean fusedOps;
    private final boolean fusedOpsAvailable;
    /** Whether a decode step runs each layer as one JNI call ({@link FusedOps#decodeLayer}) when it can. */
    private volatile boolean fusedLayer;
    private final boolean fusedLayerAvailable;
    private volatile boolean closed;

    /**
     * System property that turns the JNI's fused ops on ({@code -Dlorapar.fusedOps=true}). They are
     * opt-in: on an H100 they measured slower than plain NDArray ops (README, "Benchmarks"), although
     * numerically equal; decoding through CUDA graphs (the generator's default where available) makes
     * per-call savings moot.
     */
    public static final String FUSED_OPS_PROPERTY = "lorapar.fusedOps";

    /**
     * System property that turns the one-call decode layer on ({@code -Dlorapar.fusedLayer=true}, with
     * fused ops on). Opt-in for the same reason (README, "Benchmarks").
     */
    public static final String FUSED_LAYER_PROPERTY = "lorapar.fusedLayer";

    /** Rows of the precomputed RoPE tables at most (beyond, cos/sin are computed per forward pass). */
    static final int MAX_ROPE_TABLE_ROWS = 1 << 17;

    /**
     * A debugging probe of the op count (tests only): told, per layer per forward pass, how many arrays
     * the layer created (every NDArray op that returns an array makes one), and how many tokens the pass
     * had. Not part of the API.
     */
    interface LayerProbe {
        void layer(int index, int tokens, int arraysCreated);
    }

    static volatile LayerProbe probe;

    /**
     * One decoder layer. q/k/v (and gate/up) are stored as one fused weight each ({@code qkv}, {@code gu}:
     * {@code [sum of outs, in]}, bias {@code [sum of outs]} or null) of which the {@link Linear}s' weights
     * are row views, so the fused product and the separate ones read the same memory.
     */
    record Layer(NDArray inputNorm, Linear q, Linear k, Linear v, Linear o, NDArray postNorm, Linear gate,
            Linear up, Linear down, NDArray qkvW, NDArray qkvB, NDArray guW, NDArray guB) {}

    DecoderModel(ModelConfig config, NDManager manager, DataType dtype, NDArray embedTokens, List<Layer> layers,
            NDArray finalNorm, Linear lmHead) {
        this.config = config;
        this.manager = manager;
        this.dtype = dtype;
        this.embedTokens = embedTokens;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
        this.invFreq = manager.create(config.ropeInverseFrequencies());
        this.epsArr = manager.create(config.rmsNormEps());
        this.scaleArr = manager.create(1.0 / Math.sqrt(config.headDim()));
        this.oneI = manager.create(1);
        this.zeroI = manager.create(0);
        this.lowestF32 = manager.create(-Float.MAX_VALUE);
        this.trainingPath = new TrainingPath(manager.getEngine(), manager.getDevice());
        this.lossChunkRows = Math.max(1, TrainingPath.LOSS_CHUNK_ELEMENTS / config.vocabSize());
        this.fusedOpsAvailable = FusedOps.isAvailable(manager.getEngine());
        this.fusedOps = fusedOpsAvailable && manager.getDevice().isGpu()
                && "true".equalsIgnoreCase(System.getProperty(FUSED_OPS_PROPERTY));
        this.fusedLayerAvailable = FusedOps.isLayerAvailable(manager.getEngine());
        this.fusedLayer = fusedLayerAvailable && "true".equalsIgnoreCase(System.getProperty(FUSED_LAYER_PROPERTY));
        int rows = config.maxPositions();
        if (rows > 0 && rows <= MAX_ROPE_TABLE_ROWS) {
            try (NDManager tmp = manager.newSubManager()) {
                NDArray pos = tmp.arange(0, rows, 1, DataType.INT64);
                NDArray[] cs = ropeCosSin(pos, tmp);
                NDArray cos = cs[0].reshape(rows, config.headDim());
                NDArray sin = cs[1].reshape(rows, config.headDim());
                cos.attach(manager);
                sin.attach(manager);
                this.ropeCos = cos;
                this.ropeSin = sin;
                this.ropeRows = rows;
            }
        } else {
            this.ropeCos = null;
            this.ropeSin = null;
            this.ropeRows = 0;
        }
        Map<String, Linear> map = new LinkedHashMap<>();
        for (Layer l : layers) {
            for (Linear lin : List.of(l.q, l.k, l.v, l.o, l.gate, l.up, l.down)) {
                map.put(lin.name(), lin);
            }
        }
        map.put(lmHead.name(), lmHead);
        this.linears = Collections.unmodifiableMap(map);
    }

    /**
     * Loads a model folder with the default compute dtype (see {@link #defaultDtype}).
     *
     * @param folder a Hugging Face model folder
     * @param parent the parent manager of the weights
     * @return the model; close it
     * @throws IOException naming the file, key or tensor at fault
     */
    public static DecoderModel load(Path folder, NDManager parent) throws IOException {
        return load(folder, parent, null);
    }

    /**
     * Loads {@code folder} (config.json, generation_config.json, model.safetensors or a sharded index)
     * into a sub-manager of {@code parent}, on its device.
     *
     * @param folder a Hugging Face model folder
     * @param parent the parent manager of the weights
     * @param dtype the compute dtype of the base weights, or null for {@link #defaultDtype}; bf16 needs
     *     an engine with the {@code BF16} capability
     * @return the model; close it
     * @throws ModelConfigException when config.json is invalid, a tensor is missing, unused or its shape
     *     disagrees with config.json (naming the key or tensor)
     * @throws IOException when a file cannot be read
     */
    public static DecoderModel load(Path folder, NDManager parent, DataType dtype) throws IOException {
        return ModelLoader.load(folder, parent, dtype);
    }

    /**
     * The compute dtype chosen when none is given: {@link EngineSupport#computeDtype} (fp32 on a CPU; on
     * an accelerator bf16 when the engine has the {@code BF16} capability, else fp16). Checkpoint data
     * of another dtype is converted while loading (bf16 through fp32 on the host when the engine lacks
     * bf16).
     */
    public static DataType defaultDtype(NDManager manager) {
        return EngineSupport.computeDtype(manager.getEngine(), manager.getDevice());
    }

    /**
     * A model of {@code config}'s shape with random weights, made on {@code parent}'s device without any
     * file: for benchmarks and tests at real sizes (a 7B model needs no 13 GB checkpoint). Linear weights
     * and embeddings are N(0, 0.02) (transformers' {@code initializer_range}), biases 0, norms 1; drawn from
     * the engine's generator seeded with {@code seed}.
     */
    public static DecoderModel random(ModelConfig config, NDManager parent, DataType dtype, long seed) {
        return ModelLoader.random(config, parent, dtype, seed);
    }

    // ---------------------------------------------------------------- accessors

    /**
     * The architecture read from config.json.
     *
     * @return the config
     */
    public ModelConfig config() {
        return config;
    }

    /** The compute dtype of the base weights. */
    public DataType dtype() {
        return dtype;
    }

    /**
     * The device the weights live on.
     *
     * @return the device
     */
    public Device device() {
        return manager.getDevice();
    }

    /**
     * The implementations of passes without a KV cache (attention, LoRA, norms, loss), set from system
     * properties when the model was made ({@link TrainingPath}); mutable, for tests and benchmarks.
     */
    public TrainingPath trainingPath() {
        return trainingPath;
    }

    /** The manager holding the base weights. */
    public NDManager manager() {
        return manager;
    }

    /** All linear layers by Hugging Face module name, layer by layer (q, k, v, o, gate, up, down), then lm_head. */
    public Map<String, Linear> linears() {
        return linears;
    }

    /** The linear layer named {@code name} (e.g. {@code model.layers.3.mlp.down_proj}), or an error listing examples. */
    public Linear linear(String name) {
        Linear l = linears.get(name);
        if (l == null) {
            throw new IllegalArgumentException("no linear layer '" + name + "'; names look like "
                    + "model.layers.{0.." + (config.numLayers() - 1) + "}.self_attn.{q,k,v,o}_proj, "
                    + "model.layers.{i}.mlp.{gate,up,down}_proj, lm_head");
        }
        return l;
    }

    /**
     * Switches the adapter term of every {@link Linear} on or off. Off, each layer computes its current
     * weight only: for LoRA with a residual initialisation (PiSSA, OLoRA) that weight is
     * W − scaling·B₀·A₀, so this is <b>not</b> the base model. For the base model (GRPO's reference
     * policy) use {@code try (var base = loraModel.disabled()) { ... }}, which is right for every
     * initialisation and restores the adapters afterwards.
     *
     * @deprecated not the base model for residual LoRA initialisations; use {@code LoraModel.disabled()}
     */
    @Deprecated
    public void setAdaptersEnabled(boolean enabled) {
        for (Linear l : linears.values()) {
            l.setAdapterEnabled(enabled);
        }
    }

    /** The token embedding matrix {@code [vocab, hidden]}. Do not close it. */
    public NDArray embedTokens() {
        return embedTokens;
    }

    /**
     * A KV cache for {@code batch} rows and up to {@code capacity} positions, on the model's device. The
     * enabled adapters are frozen into it as they are now (fused per projection, see
     * {@code FrozenAdapters}): inference passes with this cache use them, so a cache decodes with the
     * adapters its keys and values were computed with, even if they are trained or switched meanwhile.
     */
    public KvCache newCache(NDManager parent, int batch, int capacity) {
        checkOpen();
        KvCache cache = new KvCache(parent, config.numLayers(), batch, config.numKeyValueHeads(), capacity,
                config.headDim(), dtype);
        try {
            List<Linear[]> parts = new ArrayList<>(layers.size());
            for (Layer l : layers) {
                parts.add(new Linear[] {l.q, l.k, l.v, l.o, l.gate, l.up, l.down});
            }
            cache.freezeAdapters(parts);
        } catch (RuntimeException e) {
            cache.close();
            throw e;
        }
        return cache;
    }

    // ---------------------------------------------------------------- weights: full-parameter training, saving

    /**
     * Every array the model stores, by name, in layer order: Hugging Face names
     * ({@code model.embed_tokens.weight}, {@code model.layers.0.input_layernorm.weight}, ...,
     * {@code model.norm.weight}, {@code lm_head.weight}), except that each layer's q/k/v and gate/up
     * projections are stored fused: {@code model.layers.i.self_attn.qkv_proj.weight} (rows q, k, v; with a
     * {@code .bias} when any of them has one, zeros for a part without) and
     * {@code model.layers.i.mlp.gate_up_proj.weight} (rows gate, up; {@code .bias} likewise). A tied
     * {@code lm_head} is the embedding and is not listed twice. The arrays are the model's own (the
     * {@link Linear}s view their rows): do not close them.
     */
    public Map<String, NDArray> weights() {
        Map<String, NDArray> w = new LinkedHashMap<>();
        w.put("model.embed_tokens.weight", embedTokens);
        for (int i = 0; i < layers.size(); i++) {
            Layer l = layers.get(i);
            String p = "model.layers." + i + ".";
            w.put(p + "input_layernorm.weight", l.inputNorm);
            w.put(p + "self_attn.qkv_proj.weight", l.qkvW);
            putIfPresent(w, p + "self_attn.qkv_proj.bias", l.qkvB);
            w.put(p + "self_attn.o_proj.weight", l.o.weight());
            putIfPresent(w, p + "self_attn.o_proj.bias", l.o.bias());
            w.put(p + "post_attention_layernorm.weight", l.postNorm);
            w.put(p + "mlp.gate_up_proj.weight", l.guW);
            putIfPresent(w, p + "mlp.gate_up_proj.bias", l.guB);
            w.put(p + "mlp.down_proj.weight", l.down.weight());
            putIfPresent(w, p + "mlp.down_proj.bias", l.down.bias());
        }
        w.put("model.norm.weight", finalNorm);
        if (!config.tieWordEmbeddings()) {
            w.put("lm_head.weight", lmHead.weight());
        }
        return Collections.unmodifiableMap(w);
    }

    private static void putIfPresent(Map<String, NDArray> w, String name, NDArray a) {
        if (a != null) {
            w.put(name, a);
        }
    }

    /**
     * {@link #weights()} made trainable, for full-parameter training: a gradient is attached to every
     * array in place, so forward passes inside a gradient collector compute the gradients of all weights
     * (through the fused q/k/v and gate/up products, the default), and an optimizer's in-place updates reach
     * the {@link Linear}s' row views. From then on the model stays trainable.
     *
     * @throws IllegalStateException when the weights are not fp32 (optimizer state and updates are fp32:
     *     load the model with {@code DataType.FLOAT32})
     */
    public Map<String, NDArray> trainableWeights() {
        if (dtype != DataType.FLOAT32) {
            throw new IllegalStateException("full-parameter training needs fp32 weights; this model computes in "
                    + dtype + " (load it with DataType.FLOAT32)");
        }
        Map<String, NDArray> w = weights();
        for (NDArray a : w.values()) {
            if (!a.hasGradient()) {
                a.setRequiresGradient(true);
            }
        }
        return w;
    }

    /**
     * Saves the model as a Hugging Face folder: {@code config.json} and {@code model.safetensors} with
     * transformers' tensor names, q/k/v and gate/up unfused, in the compute dtype, so that {@link #load}
     * and transformers read it back. A fresh folder appears complete or not at all (filled beside it, then
     * renamed); in an existing folder each file is replaced atomically. Run it outside a gradient collector.
     */
    public void save(Path folder) throws IOException {
        try (NDManager scope = manager.newSubManager()) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put("model.embed_tokens.weight", embedTokens);
            for (int i = 0; i < layers.size(); i++) {
                Layer l = layers.get(i);
                String p = "model.layers." + i + ".";
                t.put(p + "input_layernorm.weight", l.inputNorm);
                unfuse(t, l.qkvW, l.qkvB, scope, l.q, l.k, l.v);
                t.put(p + "self_attn.o_proj.weight", l.o.weight());
                putIfPresent(t, p + "self_attn.o_proj.bias", l.o.bias());
                t.put(p + "post_attention_layernorm.weight", l.postNorm);
                unfuse(t, l.guW, l.guB, scope, l.gate, l.up);
                t.put(p + "mlp.down_proj.weight", l.down.weight());
                putIfPresent(t, p + "mlp.down_proj.bias", l.down.bias());
            }
            t.put("model.norm.weight", finalNorm);
            if (!config.tieWordEmbeddings()) {
                t.put("lm_head.weight", lmHead.weight());
            }
            ModelWriter.write(folder, config, dtype, t, scope);
        }
    }

    /** The row blocks of a fused weight (and bias, for the parts that have one), as separate arrays of {@code scope}. */
    private static void unfuse(Map<String, NDArray> out, NDArray w, NDArray b, NDManager scope, Linear... parts) {
        long off = 0;
        for (Linear part : parts) {
            long rows = part.outFeatures();
            NDArray pw = w.get(new NDIndex().addSliceDim(off, off + rows));
            pw.attach(scope);
            out.put(part.name() + ".weight", pw);
            if (part.bias() != null) {
                NDArray pb = b.get(new NDIndex().addSliceDim(off, off + rows));
                pb.attach(scope);
                out.put(part.name() + ".bias", pb);
            }
            off += rows;
        }
    }

    // ---------------------------------------------------------------- forward

    /**
     * Logits for every position.
     *
     * @param inputIds {@code [batch, T]} token ids (int32 or int64)
     * @param attentionMask {@code [batch, T]} 1 for real tokens and 0 for padding, or null for none
     * @param training whether adapters run in training mode (dropout)
     * @return {@code [batch, T, vocab]} in the compute dtype, attached to {@code inputIds}' manager
     */
    public NDArray forward(NDArray inputIds, NDArray attentionMask, boolean training) {
        return run(inputIds, attentionMask, null, training, false, false, true, true);
    }

    /**
     * Logits for every position of rows that are right-padded (or not padded): each row's real tokens
     * come first, as {@code ai.lorapar.data.TokenBatch} makes them. The caller vouches for it (reading the
     * mask to check would wait for the device); it lets attention run causally without a mask (torch's
     * flash kernel, see {@link TrainingPath}), which is exact at every real position. Positions after a
     * row's last real token get other values than with {@code rightPadded = false}; they never count in a
     * loss. With {@code rightPadded = false} this is {@link #forward(NDArray, NDArray, boolean)}.
     *
     * <p>The caller also vouches for the ids: with {@code rightPadded} the device-side check of token ids
     * against the vocabulary (one host read per pass) is skipped, since batches made by
     * {@code TokenBatch} hold ids the encoder produced and the trainers check them on the host.
     */
    public NDArray forward(NDArray inputIds, NDArray attentionMask, boolean training, boolean rightPadded) {
        return run(inputIds, attentionMask, null, training, false, rightPadded, true, !rightPadded);
    }

    /**
     * The final normalised hidden states {@code [batch, T, hidden]} (compute dtype), the input of the LM
     * head: with {@link #logitsAt} or {@link #tokenNll} a loss needs logits only at the positions that
     * count. Padding as in {@link #forward(NDArray, NDArray, boolean, boolean)}.
     */
    public NDArray forwardHidden(NDArray inputIds, NDArray attentionMask, boolean training, boolean rightPadded) {
        return run(inputIds, attentionMask, null, training, false, rightPadded, false, !rightPadded);
    }

    /**
     * {@link #forwardHidden(NDArray, NDArray, boolean, boolean)} with the id check chosen by the caller:
     * with {@code checkIds} false the caller guarantees every id is in {@code [0, vocab_size)} (ids made by
     * the encoder, which checks them on the host, and ids the model sampled), and the check's host read
     * (a device synchronisation) is skipped.
     */
    public NDArray forwardHidden(NDArray inputIds, NDArray attentionMask, boolean training, boolean rightPadded,
            boolean checkIds) {
        return run(inputIds, attentionMask, null, training, false, rightPadded, false, checkIds);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("DecoderModel (" + config.source() + ") is closed; its weights are freed");
        }
    }

    /** Token ids must lie in [0, vocab): checked with one host read of their min and max, the culprit found only on error. */
    private void checkTokenIds(NDArray inputIds) {
        if (inputIds.size() == 0) {
            return;
        }
        long vocab = config.vocabSize();
        try (NDManager s = inputIds.getManager().newSubManager()) {
            NDArray flat = inputIds.reshape(-1);
            flat.attach(s);
            NDArray range = NDArrays.stack(new NDList(flat.min().toType(DataType.INT64, false),
                    flat.max().toType(DataType.INT64, false)));
            range.attach(s);
            long[] minMax = range.toLongArray();
            if (minMax[0] >= 0 && minMax[1] < vocab) {
                return;
            }
            NDArray all = flat.toType(DataType.INT64, false);
            all.attach(s);
            long[] ids = all.toLongArray();
            long width = inputIds.getShape().get(1);
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] < 0 || ids[i] >= vocab) {
                    throw new IllegalArgumentException("inputIds[" + (i / width) + ", " + (i % width) + "] = " + ids[i]
                            + " is not a token id of this model (vocab_size " + vocab + " in " + config.source()
                            + "); padded positions too must hold a valid id, e.g. the pad token's");
                }
            }
        }
    }

    /**
     * Logits with a KV cache: the cache's earlier positions are attended to, and this pass's keys and
     * values are appended to it.
     *
     * @param inputIds {@code [batch, T]} token ids
     * @param attentionMask {@code [batch, T]} 1 for real tokens and 0 for padding, or null
     * @param cache the KV cache to read and extend, or null
     * @param training whether adapters run in training mode (dropout)
     * @param lastOnly return only the last column's logits ({@code [batch, 1, vocab]}), as decoding needs;
     *     with padding this is each row's last token only when rows are left-padded
     * @return the logits, attached to {@code inputIds}' manager
     * @throws IllegalArgumentException for a token id outside [0, vocab_size) (naming row, position and id;
     *     not checked in decode steps of a cache, which feed the model's own samples), or, without a cache,
     *     more positions than max_position_embeddings
     */
    public NDArray forward(NDArray inputIds, NDArray attentionMask, KvCache cache, boolean training, boolean lastOnly) {
        return run(inputIds, attentionMask, cache, training, lastOnly, false, true, true);
    }

    /** What the attention of a pass uses: the explicit path's additive bias, or SDPA's causal flag and keep-mask. */
    private record Attn(NDArray bias, boolean sdpa, boolean causal, NDArray keep) {}

    private NDArray run(NDArray inputIds, NDArray attentionMask, KvCache cache, boolean training, boolean lastOnly,
            boolean rightPadded, boolean withLogits, boolean checkIds) {
        checkOpen();
        if (cache != null && cache.isClosed()) {
            throw new IllegalStateException("the KvCache passed to forward is closed; make a new one with newCache");
        }
        NDManager out = inputIds.getManager();
        Shape s = inputIds.getShape();
        if (s.dimension() != 2) {
            throw new IllegalArgumentException("inputIds must be [batch, T], got " + s);
        }
        int batch = (int) s.get(0);
        int t = (int) s.get(1);
        if (attentionMask != null && !attentionMask.getShape().equals(s)) {
            throw new IllegalArgumentException("attentionMask shape " + attentionMask.getShape() + " differs from inputIds "
                    + s);
        }
        if (cache != null && cache.batchSize() != batch) {
            throw new IllegalArgumentException("cache holds " + cache.batchSize() + " rows, inputIds has " + batch);
        }
        boolean staticStep = cache != null && cache.isStaticDecoding();
        if (staticStep && t != 1) {
            throw new IllegalArgumentException("a cache in static decoding takes one token per row, got " + t);
        }
        if (cache == null && t > config.maxPositions()) { // with a cache the generator warns instead
            throw new IllegalArgumentException("inputIds has " + t + " positions, more than max_position_embeddings "
                    + config.maxPositions() + " of " + config.source() + "; shorten or split the sequences");
        }
        if (checkIds && !(cache != null && (staticStep || (t == 1 && cache.length() > 0)))) {
            // one host read; decode steps feed the model's own samples, and right-padded training passes
            // (TokenBatch) come from the encoder, whose ids the trainers check on the host: both skip it
            checkTokenIds(inputIds);
        }
        try (NDManager scope = out.newSubManager()) {
            int past = cache == null ? 0 : cache.length();
            NDArray mask = attentionMask != null ? attentionMask.toType(DataType.INT64, true)
                    : scope.ones(new Shape(batch, t), DataType.INT64);
            mask.attach(scope);
            int d = config.headDim();
            int total;
            NDArray pos;
            NDArray bias = null;
            // a cache-free pass may use torch's fused attention: causal without a mask when rows are prefixes
            boolean sdpa = cache == null && trainingPath.sdpa;
            boolean causalSdpa = sdpa && (attentionMask == null || rightPadded);
            NDArray sdpaKeep = null;
            if (staticStep) {
                // positions, the slot written and the mask of unwritten slots live on the device (CUDA graphs)
                cache.extendMask(mask);
                total = cache.capacity();
                pos = cache.staticPositions();
                NDArray view = cache.keyBias(total);
                view.attach(scope);
                bias = view.reshape(batch, 1, 1, total);
            } else {
                NDArray fullMask = mask; // owned by the cache when there is one: results of ops on it are attached here
                if (cache != null) {
                    fullMask = cache.extendMask(mask);
                }
                total = past + t;
                // positions = cumsum(mask) - 1 over all positions, the last T of them; pads get 0
                NDArray cum = fullMask.cumSum(1);
                cum.attach(scope);
                pos = cum.sub(oneI).maximum(zeroI);
                if (past > 0) {
                    pos = pos.get(new NDIndex(":, {}:", past));
                }
                if (cache != null && t == 1) {
                    // one new position per row: it may attend to every cached real position
                    NDArray view = cache.keyBias(total);
                    view.attach(scope); // made in the cache's manager: freed with this pass
                    bias = view.reshape(batch, 1, 1, total);
                } else if (causalSdpa) {
                    bias = null;
                } else if (sdpa) {
                    sdpaKeep = sdpaKeepMask(scope, fullMask, t);
                } else {
                    bias = attentionBias(scope, fullMask, past, t, total);
                }
            }
            NDArray[] cs;
            if (total <= ropeRows) {
                NDArray flat = pos.reshape(-1);
                flat.attach(scope);
                NDArray c = ropeCos.get(flat);
                NDArray sn = ropeSin.get(flat);
                c.attach(scope);
                sn.attach(scope);
                cs = new NDArray[] {c, sn};
            } else {
                NDArray p = pos.reshape(batch, t);
                p.attach(scope); // a view of the cache's positions in static decoding
                cs = ropeCosSin(p, scope);
            }
            NDArray cos = cs[0].reshape(batch, t, 1, d); // [B,T,1,D], broadcast over heads
            NDArray sin = cs[1].reshape(batch, t, 1, d);

            boolean fuse = fusedOps;
            boolean lean = cache == null && trainingPath.lean;
            Attn attn = new Attn(bias, sdpa, causalSdpa, sdpaKeep);
            NDArray keep = null; // the keep-mask of the fused decode attention, [B,1,1,S] boolean
            if (fuse && cache != null && t == 1 && !staticStep) {
                keep = bias.eq(zeroI);
                keep.attach(scope);
            }

            // inference with a cache: the adapters frozen into it (fused per projection)
            FrozenAdapters frozen = cache != null && !training && fusedProjections ? cache.adapters() : null;

            NDArray ids = inputIds.reshape(-1);
            ids.attach(scope);
            ids = ids.toType(DataType.INT64, false);
            NDArray x = embedTokens.get(ids);
            x.attach(scope);
            NDArray hidden = x.reshape(batch, t, config.hiddenSize());
            for (int i = 0; i < layers.size(); i++) {
                try (NDManager ls = scope.newSubManager()) {
                    hidden.attach(ls);
                    NDArray next;
                    try {
                        next = layer(i, layers.get(i), hidden, batch, t, cos, sin, attn, keep, fuse, lean, cache,
                                past, total, training, frozen);
                    } catch (EngineException | UnsatisfiedLinkError e) {
                        if (!fuse) {
                            throw e;
                        }
                        // a layer is a function of its input (its KV-cache write goes to the same slot again):
                        // redo it, and everything after, with NDArray ops
                        LOG.warn("the JNI's fused ops failed ({}); this model continues with NDArray ops", e.toString());
                        fusedOps = false;
                        fusedLayer = false;
                        fuse = false;
                        keep = null;
                        next = layer(i, layers.get(i), hidden, batch, t, cos, sin, attn, null, false, lean, cache,
                                past, total, training, frozen);
                    }
                    LayerProbe pr = probe;
                    if (pr != null) {
                        pr.layer(i, t, ls.getManagedArrays().size() - 1); // less the attached input
                    }
                    next.attach(scope);
                    hidden = next;
                }
            }
            if (cache != null) {
                cache.advance(t);
            }
            if (lastOnly) {
                hidden = hidden.get(new NDIndex(":, -1:, :"));
            }
            NDArray normed = lean ? TrainingOps.rmsNorm(hidden, finalNorm, config.rmsNormEps())
                    : rmsNorm(hidden, finalNorm, fuse);
            if (!withLogits) {
                normed.attach(out);
                return normed;
            }
            NDArray logits = lmHead.forward(normed, training);
            logits.attach(out);
            return logits;
        }
    }

    /**
     * RoPE cos and sin ({@code [..., headDim]}, compute dtype) for integer positions {@code pos}: angles
     * {@code pos·invFreq} in fp32 like transformers, duplicated over the two halves; the sin's first half
     * is negated, so that {@code rotate_half(x)·sin == swap_halves(x)·sin'} exactly (a negation is exact).
     */
    private NDArray[] ropeCosSin(NDArray pos, NDManager scope) {
        NDArray posF = pos.toType(DataType.FLOAT32, false).expandDims(-1);
        NDArray freqs = posF.mul(invFreq); // [..., D/2]
        freqs.attach(scope);
        NDArray c = freqs.cos();
        NDArray sn = freqs.sin();
        NDArray cos = NDArrays.concat(new NDList(c, c), -1).toType(dtype, false);
        NDArray sin = NDArrays.concat(new NDList(sn.neg(), sn), -1).toType(dtype, false);
        return new NDArray[] {cos, sin};
    }

    /** Additive fp32 attention bias {@code [B,1,T,S]}: 0 where a query may attend to a key, fp32's minimum elsewhere. */
    private NDArray attentionBias(NDManager scope, NDArray fullMask, int past, int t, int total) {
        NDArray rows = scope.arange(past, past + t, 1, DataType.INT64).reshape(t, 1);
        NDArray cols = scope.arange(0, total, 1, DataType.INT64).reshape(1, total);
        NDArray causal = cols.lte(rows).expandDims(0); // [1,T,S]
        NDArray keys = fullMask.eq(oneI).expandDims(1); // [B,1,S] (fullMask may be the cache's: no scalar made there)
        keys.attach(scope);
        NDArray allowed = causal.logicalAnd(keys).expandDims(1); // [B,1,T,S]
        NDArray blocked = allowed.logicalNot().toType(DataType.FLOAT32, false);
        return blocked.mul(lowestF32);
    }

    /**
     * Boolean keep-mask {@code [B,1,T,T]} of a cache-free pass with arbitrary padding for torch's fused
     * attention: a query may attend to earlier real keys; a query without any (a left-padded position)
     * attends to itself, so that no row is fully masked (that would give NaN; a padded query's output never
     * reaches a real position).
     */
    private NDArray sdpaKeepMask(NDManager scope, NDArray fullMask, int t) {
        NDArray rows = scope.arange(0, t, 1, DataType.INT64).reshape(t, 1);
        NDArray cols = scope.arange(0, t, 1, DataType.INT64).reshape(1, t);
        NDArray causal = cols.lte(rows).expandDims(0); // [1,T,T]
        NDArray self = cols.eq(rows).expandDims(0);
        NDArray keys = fullMask.eq(oneI).expandDims(1); // [B,1,T]
        keys.attach(scope);
        NDArray allowed = causal.logicalAnd(keys); // [B,T,T], as the explicit path's bias
        allowed.attach(scope);
        // only a query with no key at all (a left-padded position) attends to itself, so that its row is
        // not fully masked; every other row keeps exactly the explicit path's keys (padded queries of
        // right-padded rows too, so their outputs equal the explicit path's and transformers')
        NDArray empty = allowed.toType(DataType.INT32, false).sum(new int[] {-1}, true).eq(0); // [B,T,1]
        empty.attach(scope);
        NDArray keep = allowed.logicalOr(self.logicalAnd(empty)).expandDims(1); // [B,1,T,T]
        keep.attach(scope);
        return keep;
    }

    /**
     * Uses the JNI's fused ops (RMSNorm, RoPE, SiLU·up, attention of a decode step, KV-cache writes)
     * when {@code on} and the engine has them (capability {@link FusedOps#CAPABILITY}); otherwise
     * NDArray ops. Off by default (opt-in with {@code -Dlorapar.fusedOps=true} on a GPU; see
     * {@link #FUSED_OPS_PROPERTY} for why). Returns whether they are used.
     */
    boolean setFusedOps(boolean on) {
        this.fusedOps = on && fusedOpsAvailable;
        return fusedOps;
    }

    /**
     * Runs a decode step's layers as one JNI call each ({@link FusedOps#decodeLayer}) when {@code on},
     * the fused ops are used ({@link #setFusedOps}), the engine has the call (capability
     * {@link FusedOps#CAPABILITY_LAYER}) and no adapter of the layer is enabled. Returns whether it is on.
     */
    boolean setFusedLayer(boolean on) {
        this.fusedLayer = on && fusedLayerAvailable;
        return fusedLayer;
    }

    /** Whether the JNI's fused ops are used (see {@link #setFusedOps}). */
    boolean usesFusedOps() {
        return fusedOps;
    }

    /** Switches between fused q/k/v and gate/up products (the default) and one product per {@link Linear}. */
    void setFusedProjections(boolean fused) {
        this.fusedProjections = fused;
    }

    /**
     * The concatenated outputs of {@code parts} for input {@code x}: one fused product (weight
     * {@code w}, bias {@code b}) plus, where an enabled adapter is installed, its delta (zeros elsewhere,
     * an exact no-op); or, with fusion off, one {@link Linear#forward} per part.
     */
    private NDArray project(NDArray x, NDArray w, NDArray b, boolean training, FrozenAdapters.Product frozen,
            Linear... parts) {
        if (frozen == FrozenAdapters.NO_TERM) {
            return Linear.linear(x, w, b);
        }
        if (frozen != null && frozen != FrozenAdapters.DYNAMIC) {
            NDArray y = Linear.linear(x, w, b);
            NDArray out = frozen.addTo(y, x);
            y.close();
            return out;
        }
        if (frozen == null && trainingPath.fusedLora && (fusedProjections || parts.length == 1)) {
            NDArray y = fusedLora(x, w, b, training, parts);
            if (y != null) {
                return y;
            }
        }
        if (parts.length == 1) {
            return parts[0].forward(x, training);
        }
        if (!fusedProjections) {
            NDList outs = new NDList(parts.length);
            for (Linear p : parts) {
                outs.add(p.forward(x, training));
            }
            return NDArrays.concat(outs, -1);
        }
        NDArray y = Linear.linear(x, w, b);
        boolean any = false;
        for (Linear p : parts) {
            any |= p.hasActiveAdapter();
        }
        if (!any) {
            return y;
        }
        NDArray[] deltas = null;
        for (int i = 0; i < parts.length; i++) {
            NDArray delta = parts[i].delta(x, training, y.getDataType());
            if (delta != null) {
                if (deltas == null) {
                    deltas = new NDArray[parts.length];
                }
                deltas[i] = delta;
            }
        }
        if (deltas == null) {
            return y;
        }
        Shape ys = y.getShape();
        NDList all = new NDList(parts.length);
        for (int i = 0; i < parts.length; i++) {
            Shape target = ys.slice(0, ys.dimension() - 1).add(parts[i].outFeatures());
            if (deltas[i] == null) {
                all.add(x.getManager().zeros(target, y.getDataType()));
            } else {
                // an adapter may return a term that broadcasts against its output
                all.add(deltas[i].getShape().equals(target) ? deltas[i] : deltas[i].broadcast(target));
            }
        }
        NDArray joined = NDArrays.concat(all, -1);
        NDArray out = y.add(joined);
        for (NDArray delta : deltas) {
            if (delta != null) {
                delta.close();
            }
        }
        return out;
    }

    /**
     * The projection of {@code parts} (fused weight {@code w}, bias {@code b}) with their adapters' terms as
     * one {@link TrainingOps#loraLinear} node, or null when an enabled adapter has no low-rank training
     * form (then the adapters' own {@code delta} run). Takes one dropout key per adapter with a positive
     * rate in a training pass, as the adapters' own path does.
     */
    private NDArray fusedLora(NDArray x, NDArray w, NDArray b, boolean training, Linear[] parts) {
        LinearAdapter.TrainingFactors[] f = new LinearAdapter.TrainingFactors[parts.length];
        boolean any = false;
        for (int i = 0; i < parts.length; i++) {
            if (!parts[i].hasActiveAdapter()) {
                continue;
            }
            f[i] = parts[i].adapter().trainingFactors(parts[i]);
            if (f[i] == null) {
                return null;
            }
            any |= !f[i].isNone();
        }
        if (!any) {
            return Linear.linear(x, w, b);
        }
        List<TrainingOps.LoraPart> lora = new ArrayList<>(parts.length);
        List<NDArray> rowGradA = new ArrayList<>(parts.length);
        List<NDArray> rowGradB = new ArrayList<>(parts.length);
        long offset = 0;
        for (int i = 0; i < parts.length; i++) {
            long width = parts[i].outFeatures();
            if (f[i] != null && !f[i].isNone()) {
                double rate = training && !f[i].perExample() ? f[i].dropout() : 0;
                long key = rate > 0 ? parts[i].adapter().nextDropoutKey() : 0L;
                lora.add(new TrainingOps.LoraPart(f[i].a(), f[i].b(), offset, width, f[i].scaling(), rate, key));
                if (f[i].perExample()) {
                    rowGradA.add(f[i].rowGradA());
                    rowGradB.add(f[i].rowGradB());
                }
            }
            offset += width;
        }
        if (!rowGradA.isEmpty()) {
            if (rowGradA.size() != lora.size()) {
                throw new IllegalStateException("per-example gradients are open for some adapters of a projection only");
            }
            long rows = rowGradA.get(0).getShape().get(0);
            if (x.getShape().dimension() < 2 || x.getShape().get(0) != rows) {
                throw new IllegalStateException("per-example gradients are open for " + rows + " rows, but the input is "
                        + x.getShape() + " (the batch must have exactly that many rows)");
            }
            return TrainingOps.loraLinearRows(x, w, b, lora, rowGradA, rowGradB);
        }
        return TrainingOps.loraLinear(x, w, b, lora, trainingPath.loraFp32);
    }

    /**
     * One decoder layer; {@code total} is the number of key positions attended to ({@code past + t},
     * or the cache's capacity in static decoding).
     */
    private NDArray layer(int index, Layer l, NDArray x, long b, long t, NDArray cos, NDArray sin, Attn attn,
            NDArray keep, boolean fuse, boolean lean, KvCache cache, int past, int total, boolean training,
            FrozenAdapters frozen) {
        FrozenAdapters.LayerGroups fg = frozen == null ? null : frozen.layer(index);
        if (keep != null && fusedLayer && !hasActiveAdapter(l) && fg == null) {
            // a decode step (one token, KV cache, fused ops on) of a layer without adapters: one JNI call
            NDArray[] arrays = {l.inputNorm, l.qkvW, l.qkvB, l.o.weight(), l.o.bias(), l.postNorm, l.guW, l.guB,
                l.down.weight(), l.down.bias(), cache.keyBuffer(index), cache.valueBuffer(index), cos, sin, keep};
            return FusedOps.decodeLayer(x, arrays, past, config.numHeads(), config.numKeyValueHeads(),
                    config.rmsNormEps(), 1.0 / Math.sqrt(config.headDim()));
        }
        int heads = config.numHeads();
        int kvHeads = config.numKeyValueHeads();
        int d = config.headDim();

        NDArray hn = lean ? TrainingOps.rmsNorm(x, l.inputNorm, config.rmsNormEps()) : rmsNorm(x, l.inputNorm, fuse);
        // [B,T,heads+2·kvHeads,D]: q heads, then k heads, then v heads
        NDArray qkv = project(hn, l.qkvW, l.qkvB, training, group(fg, frozen, 0), l.q, l.k, l.v)
                .reshape(b, t, heads + 2L * kvHeads, d);
        NDArray ctx = attn.sdpa
                ? TrainingOps.attention(qkv, cos, sin, attn.keep, heads, kvHeads, attn.causal, 1.0 / Math.sqrt(d))
                : explicitAttention(index, qkv, b, t, cos, sin, attn.bias, keep, fuse, cache, past, total);
        NDArray h = x.add(project(ctx, l.o.weight(), l.o.bias(), training, group(fg, frozen, 1), l.o));

        NDArray hn2 = lean ? TrainingOps.rmsNorm(h, l.postNorm, config.rmsNormEps()) : rmsNorm(h, l.postNorm, fuse);
        long ffn = l.gate.outFeatures();
        NDArray gu = project(hn2, l.guW, l.guB, training, group(fg, frozen, 2), l.gate, l.up);
        NDArray act = lean ? TrainingOps.siluMul(gu) : fuse ? FusedOps.siluMul(gu) : siluMul(gu, ffn);
        NDArray mlp = project(act, l.down.weight(), l.down.bias(), training, group(fg, frozen, 3), l.down);
        return h.add(mlp);
    }

    /**
     * RoPE and attention of the NDArray path (every pass with a KV cache, and cache-free passes without
     * torch's fused attention): {@code [B,T,H·D]}.
     */
    private NDArray explicitAttention(int index, NDArray qkv, long b, long t, NDArray cos, NDArray sin, NDArray bias,
            NDArray keep, boolean fuse, KvCache cache, int past, int total) {
        int heads = config.numHeads();
        int kvHeads = config.numKeyValueHeads();
        int d = config.headDim();
        int rep = heads / kvHeads;
        // rotary embedding of q and k in one go (the sin's sign is folded into the table)
        // slices by NDIndex builders, not strings: a string index is parsed at every call
        NDArray qk = qkv.get(slice3(0, heads + kvHeads));
        NDArray roped = fuse ? FusedOps.rope(qk, cos, sin)
                : rope(qk, new Shape(b, t, heads + kvHeads, d), cos, sin);
        NDArray q = roped.get(slice3(0, heads));
        // grouped-query attention without materialising repeated keys: the query heads of a group are rows
        // [B,KV,rep·T,D] (with one token [B,1,H,D] is that already in memory; else via [B,H,T,D])
        NDArray qg = t == 1 ? q.reshape(b, kvHeads, rep, d)
                : q.transpose(0, 2, 1, 3).reshape(b, kvHeads, rep * t, d);
        NDArray k = roped.get(slice3(heads, heads + kvHeads)).transpose(0, 2, 1, 3); // [B,KV,T,D]
        NDArray v = qkv.get(slice3(heads + kvHeads, heads + 2L * kvHeads)).transpose(0, 2, 1, 3);
        NDArray keys = k;
        NDArray values = v;
        if (cache != null) {
            NDList kv = cache.append(index, past, k, v, fuse);
            keys = kv.get(0);
            values = kv.get(1);
            keys.attach(qkv.getManager());
            values.attach(qkv.getManager());
        }
        NDArray ctx;
        if (keep != null) {
            // one new query per row: the query heads of a group are the rows of one attention over its keys
            ctx = FusedOps.scaledDotProductAttention(qg, keys, values, keep, false, 1.0 / Math.sqrt(d));
            ctx = ctx.reshape(b, 1, (long) heads * d);
        } else {
            ctx = attention(qg, keys, values, bias, b, t, total);
        }
        return ctx;
    }

    /**
     * The frozen adapter term of group {@code g} (0 q/k/v, 1 o, 2 gate/up, 3 down) of a layer: null when
     * the pass uses the live adapters (no frozen set), {@link FrozenAdapters#DYNAMIC} when the group's
     * adapters must be called, or {@link FrozenAdapters#NO_TERM} when the group had no adapter term.
     */
    private static FrozenAdapters.Product group(FrozenAdapters.LayerGroups fg, FrozenAdapters frozen, int g) {
        if (frozen == null) {
            return null; // live adapters
        }
        FrozenAdapters.Product p = fg == null ? null
                : switch (g) {
                    case 0 -> fg.qkv();
                    case 1 -> fg.o();
                    case 2 -> fg.gateUp();
                    default -> fg.down();
                };
        return p == null ? FrozenAdapters.NO_TERM : p;
    }

    private static boolean hasActiveAdapter(Layer l) {
        return l.q.hasActiveAdapter() || l.k.hasActiveAdapter() || l.v.hasActiveAdapter() || l.o.hasActiveAdapter()
                || l.gate.hasActiveAdapter() || l.up.hasActiveAdapter() || l.down.hasActiveAdapter();
    }

    /** {@code [:, :, from:to]}. */
    private static NDIndex slice3(long from, long to) {
        return new NDIndex().addAllDim(2).addSliceDim(from, to);
    }

    /** The NDArray rotary embedding: {@code x·cos + swap_halves(x)·sin'} (sin' with rotate-half's sign folded in). */
    static NDArray rope(NDArray x, Shape s, NDArray cos, NDArray sinSigned) {
        int last = s.dimension() - 1;
        long d = s.get(last);
        Shape split = s.slice(0, last).addAll(new Shape(2, d / 2));
        NDArray swapped = x.reshape(split).flip(last).reshape(s);
        return x.mul(cos).add(swapped.mul(sinSigned));
    }

    /** The NDArray {@code silu(gate)·up} of {@code gateUp = [..., 2F]} (gate first). */
    static NDArray siluMul(NDArray gateUp, long ffn) {
        NDArray gate = gateUp.get(new NDIndex().addEllipseDim().addSliceDim(0, ffn));
        NDArray up = gateUp.get(new NDIndex().addEllipseDim().addSliceDim(ffn, 2 * ffn));
        return gate.mul(Activation.sigmoid(gate)).mul(up);
    }

    /**
     * Grouped-query attention of the query rows {@code qg = [B,KV,rep·T,D]} over keys/values
     * {@code [B,KV,S,D]} with an additive fp32 bias {@code [B,1,T,S]}; returns {@code [B,T,H·D]}.
     */
    private NDArray attention(NDArray qg, NDArray keys, NDArray values, NDArray bias, long b, long t, long total) {
        int heads = config.numHeads();
        int kvHeads = config.numKeyValueHeads();
        int d = config.headDim();
        int rep = heads / kvHeads;
        NDArray scores = qg.matMul(keys.transpose(0, 1, 3, 2)).mul(scaleArr); // 1/sqrt(d)
        // the mask is added and the softmax taken in fp32, so fp16/bf16 scores cannot overflow to -inf
        scores = scores.reshape(b, heads, t, total).toType(DataType.FLOAT32, false).add(bias);
        NDArray probs = scores.softmax(-1).toType(dtype, false);
        NDArray ctx = probs.reshape(b, kvHeads, rep * t, total).matMul(values); // [B,KV,rep*T,D]
        if (t == 1) {
            return ctx.reshape(b, 1, (long) heads * d); // [B,H,1,D] is already [B,1,H·D] in memory
        }
        return ctx.reshape(b, heads, t, d).transpose(0, 2, 1, 3).reshape(b, t, (long) heads * d);
    }

    private NDArray rmsNorm(NDArray x, NDArray weight, boolean fuse) {
        return fuse ? FusedOps.rmsNorm(x, weight, config.rmsNormEps()) : rmsNorm(x, weight, epsArr, dtype);
    }

    /** {@link #rmsNorm(NDArray, NDArray, NDArray, DataType)} with {@code eps} as a number. */
    static NDArray rmsNorm(NDArray x, NDArray weight, double eps, DataType dtype) {
        try (NDArray e = x.getManager().create(eps)) {
            NDArray out = rmsNorm(x, weight, e, dtype);
            out.attach(x.getManager());
            return out;
        }
    }

    /** RMSNorm computed in fp32 and cast back, then scaled by {@code weight} (as transformers does). */
    static NDArray rmsNorm(NDArray x, NDArray weight, NDArray eps, DataType dtype) {
        NDArray xf = dtype == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false); // x is in the compute dtype
        NDArray variance = xf.square().mean(new int[] {-1}, true);
        NDArray normed = xf.div(variance.add(eps).sqrt());
        NDArray back = dtype == DataType.FLOAT32 ? normed : normed.toType(dtype, false);
        return back.mul(weight);
    }

    /** The final hidden states' logits for given hidden states {@code [..., hidden]} (already normalised). */
    NDArray lmHead(NDArray normedHidden, boolean training) {
        return lmHead.forward(normedHidden, training);
    }

    /**
     * Logits {@code [..., vocab]} (compute dtype) of final normalised hidden states {@code [..., hidden]}
     * from {@link #forwardHidden}, e.g. the rows of selected positions only.
     */
    public NDArray logitsAt(NDArray hiddenRows) {
        return lmHead.forward(hiddenRows, false);
    }

    /**
     * Negative log-likelihood of {@code targets} under the logits of {@code hiddenRows}, per row:
     * {@code logsumexp(logits) − logits[target]} in fp32, never over more than a chunk of rows' logits at a
     * time. With the fused loss ({@link TrainingPath#fusedLoss()}) backward keeps no logits at all; the
     * NDArray path keeps each chunk's fp32 log-softmax.
     *
     * @param hiddenRows {@code [N, hidden]} final normalised hidden states (rows of {@link #forwardHidden})
     * @param targets {@code [N]} token ids in {@code [0, vocab)}
     * @return {@code [N]} fp32, attached to {@code hiddenRows}' manager
     */
    public NDArray tokenNll(NDArray hiddenRows, NDArray targets) {
        Shape hs = hiddenRows.getShape();
        if (hs.dimension() != 2 || hs.get(1) != config.hiddenSize() || targets.getShape().dimension() != 1
                || targets.getShape().get(0) != hs.get(0)) {
            throw new IllegalArgumentException("hiddenRows " + hs + " and targets " + targets.getShape() + " must be [N, "
                    + config.hiddenSize() + "] and [N]");
        }
        long n = hs.get(0);
        long chunk = lossChunkRows;
        NDManager out = hiddenRows.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray tg = targets.toType(DataType.INT64, false);
            if (tg != targets) {
                tg.attach(scope);
            }
            if (trainingPath.fusedLoss && !lmHead.hasActiveAdapter()) {
                NDArray nll = TrainingOps.tokenNll(hiddenRows, lmHead.weight(), tg, chunk);
                nll.attach(out);
                return nll;
            }
            NDList parts = new NDList();
            for (long s = 0; s < n; s += chunk) {
                long e = Math.min(n, s + chunk);
                NDArray rows = hiddenRows;
                NDArray t = tg;
                if (n > chunk) {
                    rows = hiddenRows.get(new NDIndex().addSliceDim(s, e));
                    rows.attach(scope);
                    t = tg.get(new NDIndex().addSliceDim(s, e));
                    t.attach(scope);
                }
                NDArray logits = lmHead.forward(rows, false);
                logits.attach(scope);
                NDArray logp = logits.toType(DataType.FLOAT32, false).logSoftmax(-1);
                logp.attach(scope);
                NDArray idx = t.expandDims(-1);
                idx.attach(scope);
                NDArray picked = logp.gather(idx, -1).squeeze(-1);
                picked.attach(scope);
                parts.add(picked.neg());
            }
            NDArray nll = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0);
            nll.attach(out);
            return nll;
        }
    }

    /** Rows of logits {@link #tokenNll} computes at a time (about {@value TrainingPath#LOSS_CHUNK_ELEMENTS} logits). */
    private volatile long lossChunkRows;

    /** Sets the rows per chunk of {@link #tokenNll} (tests). */
    void setLossChunkRows(long rows) {
        if (rows <= 0) {
            throw new IllegalArgumentException("chunk rows must be positive, got " + rows);
        }
        this.lossChunkRows = rows;
    }

    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
