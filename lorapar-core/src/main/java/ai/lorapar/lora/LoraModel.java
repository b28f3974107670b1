package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.data.AtomicFileSet;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;

/**
 * LoRA adapters installed on a {@link DecoderModel}: for every targeted linear layer
 * {@code y = W·x + b + (alpha / r)·B·A·dropout(x)}, the base weights frozen, A and B fp32 leaves with
 * gradients.
 *
 * <pre>{@code
 * LoraConfig config = LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(8).alpha(64).dropout(0.05)
 *         .init(LoraInit.GAUSSIAN).build();
 * try (LoraModel lora = LoraModel.apply(model, config, manager)) {
 *     Map<String, NDArray> params = lora.parameters();   // model.layers.0.self_attn.q_proj.lora_A, ...
 *     ... train with MaskedAdamW(params, stageMasks.stage1()) ...
 *     lora.save(Path.of("adapter"));                      // PEFT: adapter_config.json + adapter_model.safetensors
 * }
 * }</pre>
 *
 * <p>Parameter names are {@code <module>.lora_A} and {@code <module>.lora_B}, the keys of the
 * partition's {@code StageMasks} and of {@code MaskedAdamW}'s masks.
 *
 * <p><b>The base model</b> (GRPO's reference policy) is computed inside a {@link #disabled()} scope, for
 * every initialisation, residual ones included:
 * <pre>{@code
 * try (LoraModel.Scope base = lora.disabled()) {
 *     NDArray refLogits = model.forward(ids, mask, false);   // the original model, PiSSA/OLoRA too
 * }                                                          // adapters back as they were, also on an exception
 * }</pre>
 * This is the one switch to use. {@code DecoderModel.setAdaptersEnabled(false)} (deprecated) only skips
 * the layers' adapter terms, which for PiSSA/OLoRA leaves the residual W − scaling·B₀·A₀ (what PEFT's
 * {@code disable_adapter} computes), not the base model. {@link #merge()} folds the adapters into the base
 * weights (faster inference), {@link #unmerge()} takes them out again; merging rounds to the base
 * weights' dtype, so with fp16/bf16 weights an unmerge does not restore them bit for bit.
 *
 * <p>Residual initialisations (PiSSA, OLoRA) replace each targeted W by W − scaling·B₀·A₀ while the
 * adapters are installed; {@link #close()} puts W back (or, when merged, leaves the merged model).
 * Run {@link #merge()}, {@link #unmerge()} and {@link #save} outside a gradient collector.
 */
public final class LoraModel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LoraModel.class);

    private final DecoderModel model;
    private final LoraConfig config;
    private final NDManager manager;
    private final Map<String, LoraLayer> layers;
    private final Map<String, NDArray> parameters;
    private boolean enabled = true;
    private boolean closed;
    private PerExampleGradients perExample;

    private LoraModel(DecoderModel model, LoraConfig config, NDManager manager, Map<String, LoraLayer> layers) {
        this.model = model;
        this.config = config;
        this.manager = manager;
        this.layers = Collections.unmodifiableMap(layers);
        Map<String, NDArray> p = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        for (LoraLayer l : layers.values()) {
            p.put(l.module() + ".lora_A", l.a());
            p.put(l.module() + ".lora_B", l.b());
        }
        this.parameters = Collections.unmodifiableMap(new LinkedHashMap<>(p));
    }

    /**
     * Creates and installs adapters on {@code config}'s target layers of {@code model}. The arrays
     * live in a sub-manager of {@code parent} on the model's device, closed by {@link #close()}.
     * Random initialisations seed the engine's generator with {@link LoraConfig#seed()}.
     *
     * @param model the model to adapt
     * @param config rank, alpha, targets, init
     * @param parent the parent manager of the adapters' arrays
     * @return the installed adapters; close them to remove them
     * @throws IllegalArgumentException when a target matches nothing or a layer already has an adapter
     * @throws ArithmeticException when PiSSA/OLoRA meet a rank-deficient weight
     */
    public static LoraModel apply(DecoderModel model, LoraConfig config, NDManager parent) {
        List<String> modules = config.targets().resolve(model);
        for (String m : modules) {
            if (model.linear(m).adapter() != null) {
                throw new IllegalArgumentException("layer '" + m + "' already has an adapter; close the other "
                        + "LoraModel first");
            }
        }
        NDManager manager = parent.newSubManager(model.device());
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        try {
            manager.getEngine().setRandomSeed((int) (config.seed() ^ (config.seed() >>> 32)));
            int index = 0;
            for (String m : modules) {
                layers.put(m, initLayer(model.linear(m), index++, config, manager));
            }
        } catch (RuntimeException e) {
            for (LoraLayer l : layers.values()) {
                l.restoreBase();
            }
            manager.close();
            throw e;
        }
        LoraModel lora = new LoraModel(model, config, manager, layers);
        lora.install();
        LOG.info("LoRA {} on {} layers, {} parameters", config, layers.size(), lora.parameterCount());
        return lora;
    }

    private static LoraLayer initLayer(Linear linear, int index, LoraConfig c, NDManager manager) {
        int r = c.rank();
        long in = linear.inFeatures();
        long out = linear.outFeatures();
        if (c.init().modifiesBase() && r > Math.min(in, out)) {
            throw new IllegalArgumentException("LoRA rank " + r + " exceeds min(out, in) of '" + linear.name() + "' "
                    + linear.weight().getShape() + " (" + c.init() + " needs r <= " + Math.min(in, out) + ")");
        }
        NDArray a;
        NDArray b;
        NDArray a0 = null;
        NDArray b0 = null;
        switch (c.init()) {
            case STANDARD -> {
                float bound = (float) (1.0 / Math.sqrt(in)); // kaiming_uniform_(a=√5): gain·√(3/fan_in) = 1/√fan_in
                a = manager.randomUniform(-bound, bound, new Shape(r, in), DataType.FLOAT32);
                b = manager.zeros(new Shape(out, r), DataType.FLOAT32);
            }
            case GAUSSIAN -> {
                float std = (float) c.gaussianStd();
                a = manager.randomNormal(0f, std, new Shape(r, in), DataType.FLOAT32, manager.getDevice());
                b = manager.randomNormal(0f, std, new Shape(out, r), DataType.FLOAT32, manager.getDevice());
            }
            case PISSA, OLORA -> {
                NDArray[] ab = c.init() == LoraInit.PISSA ? pissa(linear.weight(), c, index, manager)
                        : olora(linear.weight(), r, manager);
                a = ab[0];
                b = ab[1];
                a0 = a.duplicate();
                b0 = b.duplicate();
                try (NDManager s = manager.newSubManager()) {
                    NDArray p = b.matMul(a);
                    p.attach(s);
                    NDArray scaled = p.mul((float) c.scaling());
                    scaled.attach(s);
                    linear.weight().subi(scaled); // W_res = W − scaling·B·A, in place (the layer's views follow)
                }
            }
            default -> throw new IllegalStateException("unknown init " + c.init());
        }
        a.setName(linear.name() + ".lora_A");
        b.setName(linear.name() + ".lora_B");
        a.setRequiresGradient(true);
        b.setRequiresGradient(true);
        return new LoraLayer(linear.name(), linear, index, a, b, a0, b0, c.scaling(), c.dropout(), c.seed());
    }

    /** PEFT's PiSSA: S_r /= scaling; A = diag(√S_r)·Vᵀ_r; B = U_r·diag(√S_r). */
    static NDArray[] pissa(NDArray w, LoraConfig c, int index, NDManager manager) {
        try (NDManager s = manager.newSubManager()) {
            LowRankDecomposition.Svd svd = LowRankDecomposition.topSingular(w, c.rank(), c.svdOversample(),
                    c.svdIterations(), c.seed() * 1_000_003L + index, s);
            NDArray root = svd.s().div((float) c.scaling()).sqrt();
            root.attach(s);
            NDArray a = root.expandDims(1).mul(svd.vt());
            NDArray b = svd.u().mul(root.expandDims(0));
            a.attach(manager);
            b.attach(manager);
            return new NDArray[] {a, b};
        }
    }

    /** PEFT's OLoRA: A = R_r, B = Q_r. */
    static NDArray[] olora(NDArray w, int rank, NDManager manager) {
        LowRankDecomposition.ThinQr qr = LowRankDecomposition.thinQr(w, rank, manager);
        return new NDArray[] {qr.r(), qr.q()};
    }

    /**
     * Reads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) and installs
     * it on {@code model}, whose base weights it leaves unchanged. The config's target modules are
     * resolved against the model; every expected tensor must be present with the model's shapes and
     * no other tensor may be.
     *
     * @param folder the adapter folder
     * @param model the base model
     * @param parent the parent manager of the adapters' arrays
     * @return the installed adapters; close them to remove them
     * @throws AdapterFormatException naming the file, the config key or the tensor that is wrong
     */
    public static LoraModel load(Path folder, DecoderModel model, NDManager parent) throws IOException {
        PeftAdapterFiles.Loaded loaded = PeftAdapterFiles.read(folder, model, parent);
        NDManager manager = loaded.manager();
        LoraConfig c = loaded.config();
        Map<String, LoraLayer> layers = new LinkedHashMap<>();
        int index = 0;
        for (String m : loaded.modules()) {
            NDArray a = loaded.a().get(m);
            NDArray b = loaded.b().get(m);
            a.setRequiresGradient(true);
            b.setRequiresGradient(true);
            layers.put(m, new LoraLayer(m, model.linear(m), index++, a, b, null, null, c.scaling(), c.dropout(),
                    c.seed()));
        }
        for (String m : layers.keySet()) {
            if (model.linear(m).adapter() != null) {
                manager.close();
                throw new IllegalArgumentException("layer '" + m + "' already has an adapter; close the other "
                        + "LoraModel first");
            }
        }
        LoraModel lora = new LoraModel(model, c, manager, layers);
        lora.install();
        LOG.info("loaded LoRA adapter {} ({}) on {} layers", folder, c, layers.size());
        return lora;
    }

    private void install() {
        for (LoraLayer l : layers.values()) {
            l.linear().setAdapter(l);
            l.linear().setAdapterEnabled(true);
        }
    }

    // ---------------------------------------------------------------- accessors

    /**
     * The configuration.
     *
     * @return the config
     */
    public LoraConfig config() {
        return config;
    }

    /**
     * The model the adapters are installed on.
     *
     * @return the model
     */
    public DecoderModel model() {
        return model;
    }

    /**
     * The trainable fp32 leaves by name ({@code <module>.lora_A}, {@code <module>.lora_B}), in natural order.
     *
     * @return the parameters (owned by this object)
     */
    public Map<String, NDArray> parameters() {
        checkOpen();
        return parameters;
    }

    /** The adapters by module name, in the model's layer order. */
    public Map<String, LoraLayer> layers() {
        checkOpen();
        return layers;
    }

    /** The adapted module names, in the model's layer order. */
    public List<String> modules() {
        return new ArrayList<>(layers.keySet());
    }

    /** The number of trainable elements. */
    public long parameterCount() {
        long n = 0;
        for (NDArray p : parameters.values()) {
            n += p.size();
        }
        return n;
    }

    // ---------------------------------------------------------------- state

    /**
     * A scope in which the model is the original base model: every adapter is disabled (residual
     * initialisations add back scaling·B₀·A₀, so W_res + scaling·B₀·A₀ = W) until {@link Scope#close()},
     * which restores the state before the call, also when the block throws. Scopes nest. Generation
     * inside the scope decodes with the base model too (a KV cache freezes the adapters as they are
     * when it is made). This is GRPO's reference policy and the one way to reach the base model.
     *
     * @throws IllegalStateException when the adapters are merged (unmerge first) or the LoraModel is closed
     */
    public Scope disabled() {
        checkOpen();
        boolean before = enabled;
        setEnabled(false);
        return new Scope(before);
    }

    /** The scope of {@link #disabled()}: closing it restores the adapters' previous state. */
    public final class Scope implements AutoCloseable {
        private final boolean previous;
        private boolean closed;

        private Scope(boolean previous) {
            this.previous = previous;
        }

        /** Restores the state from before {@link #disabled()} (idempotent). */
        @Override
        public void close() {
            if (!closed) {
                closed = true;
                if (!LoraModel.this.closed) {
                    setEnabled(previous);
                }
            }
        }
    }

    /**
     * Enables or disables every adapter. Disabled, the model computes the original base model (for
     * PiSSA/OLoRA: W_res + scaling·B₀·A₀ = W), as GRPO's reference policy needs. Prefer
     * {@link #disabled()}, which cannot leave the adapters off by mistake.
     *
     * @param enabled whether the adapters apply
     * @throws IllegalStateException when disabling merged adapters (unmerge first)
     */
    public void setEnabled(boolean enabled) {
        checkOpen();
        if (!enabled && isMerged()) {
            throw new IllegalStateException("cannot disable merged LoRA adapters: unmerge() first");
        }
        for (LoraLayer l : layers.values()) {
            l.setEnabled(enabled);
            l.linear().setAdapterEnabled(true); // the layer's own switch stays on; LoraLayer decides
        }
        this.enabled = enabled;
    }

    /**
     * Whether the adapters are enabled.
     *
     * @return true when enabled
     */
    public boolean isEnabled() {
        return enabled;
    }

    /** Whether the adapters are merged into the base weights. */
    public boolean isMerged() {
        return !layers.isEmpty() && layers.values().iterator().next().isMerged();
    }

    /** W ← W + scaling·B·A for every adapter; forward passes then skip the adapter term. */
    public void merge() {
        checkOpen();
        if (perExample != null) {
            throw new IllegalStateException("cannot merge LoRA adapters while per-example gradients are open");
        }
        if (!enabled) {
            throw new IllegalStateException("cannot merge disabled LoRA adapters: setEnabled(true) first");
        }
        for (LoraLayer l : layers.values()) {
            l.merge();
        }
    }

    /** W ← W − scaling·B·A for every adapter, undoing {@link #merge()}. */
    public void unmerge() {
        checkOpen();
        for (LoraLayer l : layers.values()) {
            l.unmerge();
        }
    }

    /**
     * Restarts the dropout masks from {@code seed}: the k-th training pass through a layer after this
     * call draws the same mask every time.
     */
    public void reseedDropout(long seed) {
        for (LoraLayer l : layers.values()) {
            l.reseed(seed);
        }
    }

    /**
     * Opens per-example gradients for batches of {@code rows} examples: until the result is closed,
     * every adapter computes each row of a batch through its own leaf copy of A and B, so one backward
     * pass of the sum of per-row losses gives every row's own gradient (see {@link PerExampleGradients}).
     *
     * @throws IllegalStateException when the adapters are merged or disabled, or per-example gradients
     *     are already open
     */
    public PerExampleGradients perExampleGradients(int rows) {
        checkOpen();
        if (rows < 1) {
            throw new IllegalArgumentException("per-example gradients need at least one row, got " + rows);
        }
        if (isMerged()) {
            throw new IllegalStateException("per-example gradients of merged LoRA adapters: unmerge() first");
        }
        if (!enabled) {
            throw new IllegalStateException("per-example gradients of disabled LoRA adapters: setEnabled(true) first");
        }
        if (perExample != null) {
            throw new IllegalStateException("per-example gradients are already open for " + perExample.rows()
                    + " rows; close them first");
        }
        perExample = new PerExampleGradients(this, manager, rows);
        return perExample;
    }

    void perExampleGradientsClosed(PerExampleGradients pe) {
        if (perExample == pe) {
            perExample = null;
        }
    }

    // ---------------------------------------------------------------- files

    /**
     * Saves the adapters in PEFT's format: {@code adapter_config.json} and
     * {@code adapter_model.safetensors} (keys {@code base_model.model.<module>.lora_A.weight}, fp32).
     * Residual initialisations (PiSSA, OLoRA) are exported as the equivalent plain LoRA against the
     * original base weights: rank 2r, A' = [A; A₀], B' = [B, −B₀], lora_alpha doubled so the scaling
     * is unchanged (what PEFT's {@code path_initial_model_for_weight_conversion} does).
     *
     * <p>The two files are replaced all-or-nothing, even if the process is killed during the save: a fresh
     * folder appears complete or not at all, and in an existing folder a save killed after its commit point
     * is completed by the next {@link #load} or save (see {@link ai.lorapar.data.AtomicFileSet}); other
     * files in the folder are left alone.
     *
     * @param folder the adapter folder
     * @throws IOException naming the file or folder that cannot be written
     */
    public void save(Path folder) throws IOException {
        checkOpen();
        PeftAdapterFiles.write(folder, this);
    }

    /** File of {@link #saveNative}'s folder holding the configuration the adapters were made with. */
    public static final String NATIVE_CONFIG = "lorapar_lora.json";
    /** File of {@link #saveNative}'s folder holding the adapters' state ({@link #saveState}). */
    public static final String NATIVE_STATE = "lorapar_state.safetensors";

    /**
     * Saves the adapters so that {@link #loadNative} makes the same adapters again, residual
     * initialisations included (PiSSA and OLoRA at their rank r, with A₀ and B₀; PEFT's export of those
     * is a plain LoRA of rank 2r, which {@link #load} reads as such): the configuration as JSON
     * ({@value #NATIVE_CONFIG}) and the state ({@value #NATIVE_STATE}, {@link #saveState}). May share a
     * folder with {@link #save}'s PEFT files, which other tools read and ignore these.
     */
    public void saveNative(Path folder) throws IOException {
        checkOpen();
        JsonObject o = new JsonObject();
        o.addProperty("format", "lorapar-lora-config");
        LoraTargets t = config.targets();
        if (t.pattern() != null) {
            o.addProperty("target_pattern", t.pattern());
        } else {
            JsonArray a = new JsonArray();
            t.entries().forEach(a::add);
            o.add("target_modules", a);
        }
        o.addProperty("r", config.rank());
        o.addProperty("lora_alpha", config.alpha());
        o.addProperty("lora_dropout", config.dropout());
        o.addProperty("init", config.init().name());
        o.addProperty("gaussian_std", config.gaussianStd());
        o.addProperty("seed", config.seed());
        o.addProperty("svd_oversample", config.svdOversample());
        o.addProperty("svd_iterations", config.svdIterations());
        if (config.baseModelNameOrPath() != null) {
            o.addProperty("base_model_name_or_path", config.baseModelNameOrPath());
        }
        byte[] json = (new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n").getBytes(StandardCharsets.UTF_8);
        // both files all-or-nothing (AtomicFileSet), as PEFT's pair is: never one save's config beside another's state
        LoraStateFiles.withContent(this, state -> {
            Map<String, AtomicFiles.Bytes> files = new LinkedHashMap<>();
            files.put(NATIVE_STATE, state);
            files.put(NATIVE_CONFIG, out -> AtomicFiles.writeFully(out, java.nio.ByteBuffer.wrap(json)));
            AtomicFileSet.write(folder, files);
        });
    }

    /** Whether {@code folder} holds {@link #saveNative}'s files. */
    public static boolean isNative(Path folder) {
        return Files.isRegularFile(folder.resolve(NATIVE_CONFIG))
                && Files.isRegularFile(folder.resolve(NATIVE_STATE));
    }

    /**
     * The adapters {@link #saveNative} saved, made again on {@code model}: {@link #apply} with the saved
     * configuration (changed by {@code adjust}, e.g. a training dropout; rank, targets and initialisation
     * must stay), then {@link #loadState}, so A, B, A₀ and B₀ are the saved ones bit for bit.
     *
     * @throws AdapterFormatException naming the file and key that is missing or wrong, or what {@code adjust}
     *     changed that it may not
     */
    public static LoraModel loadNative(Path folder, DecoderModel model, NDManager parent,
            UnaryOperator<LoraConfig> adjust) throws IOException {
        AtomicFileSet.recover(folder); // a save killed after its commit point: finish it
        Path file = folder.resolve(NATIVE_CONFIG);
        LoraConfig saved;
        try {
            JsonObject o = JsonParser.parseString(
                    Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
            if (!o.has("format") || !"lorapar-lora-config".equals(o.get("format").getAsString())) {
                throw new AdapterFormatException(file + ": \"format\" is not \"lorapar-lora-config\"");
            }
            LoraConfig.Builder b = LoraConfig.builder();
            if (o.has("target_pattern")) {
                b.targets(LoraTargets.regex(o.get("target_pattern").getAsString()));
            } else {
                List<String> modules = new ArrayList<>();
                o.getAsJsonArray("target_modules").forEach(e -> modules.add(e.getAsString()));
                b.targets(LoraTargets.modules(modules));
            }
            b.rank(required(o, "r", file).getAsInt()).alpha(required(o, "lora_alpha", file).getAsDouble())
                    .dropout(required(o, "lora_dropout", file).getAsDouble())
                    .init(LoraInit.valueOf(required(o, "init", file).getAsString()))
                    .gaussianStd(required(o, "gaussian_std", file).getAsDouble())
                    .seed(required(o, "seed", file).getAsLong())
                    .svd(required(o, "svd_oversample", file).getAsInt(), required(o, "svd_iterations", file).getAsInt());
            if (o.has("base_model_name_or_path")) {
                b.baseModelNameOrPath(o.get("base_model_name_or_path").getAsString());
            }
            saved = b.build();
        } catch (AdapterFormatException e) {
            throw e;
        } catch (RuntimeException e) { // malformed JSON, a wrong type, an unknown init, an invalid value
            throw new AdapterFormatException(file + ": " + e.getMessage());
        }
        LoraConfig c = adjust == null ? saved : adjust.apply(saved);
        if (c.rank() != saved.rank() || c.init() != saved.init() || !c.targets().equals(saved.targets())) {
            throw new AdapterFormatException(file + ": the saved adapters are " + saved + "; rank, targets and"
                    + " initialisation cannot change when loading them (asked for " + c + ")");
        }
        LoraModel lora = apply(model, c, parent);
        try {
            lora.loadState(folder.resolve(NATIVE_STATE));
        } catch (IOException | RuntimeException e) {
            lora.close();
            throw e;
        }
        return lora;
    }

    private static JsonElement required(JsonObject o, String key, Path file)
            throws AdapterFormatException {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            throw new AdapterFormatException(file + ": key \"" + key + "\" is missing");
        }
        return e;
    }

    /**
     * Saves the adapters' training state to one safetensors file: A and B as they are and, for residual
     * initialisations (PiSSA, OLoRA), A₀ and B₀, all fp32 (unlike {@link #save}, which exports an
     * equivalent plain LoRA for other tools). {@link #loadState} reads it back exactly; trainers checkpoint
     * with it. Written atomically.
     */
    public void saveState(Path file) throws IOException {
        checkOpen();
        LoraStateFiles.write(file, this);
    }

    /**
     * Sets A and B (and A₀, B₀) from a file written by {@link #saveState}, in place and bit for bit (the
     * parameter arrays stay the same objects). Every tensor is checked before anything changes. When the
     * file's A₀/B₀ differ from this model's (another device's SVD, say), the residual base weight is moved
     * with them: W_res = W − scaling·B₀·A₀ is recomputed, which rounds once in the weights' dtype.
     *
     * @throws AdapterFormatException naming the tensor that is missing, extra or of another shape, or when
     *     the file's initialisation (residual or not) differs from this model's
     * @throws IllegalStateException when the adapters are merged
     */
    public void loadState(Path file) throws IOException {
        checkOpen();
        LoraStateFiles.read(file, this);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("LoraModel (" + layers.size() + " adapters, " + config
                    + ") is closed: its adapters are removed from the model and their arrays freed");
        }
    }

    /**
     * Removes the adapters from the model and frees their arrays. Unmerged residual initialisations
     * get W back (W_res + scaling·B₀·A₀, rounded to the weights' dtype); merged adapters stay in the
     * weights (the model is then the fine-tuned one).
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (perExample != null) {
                perExample.close();
            }
            for (LoraLayer l : layers.values()) {
                if (l.linear().adapter() == l) {
                    l.linear().setAdapter(null);
                }
                if (!l.isMerged()) {
                    l.restoreBase();
                }
            }
        } finally {
            manager.close();
        }
    }
}
