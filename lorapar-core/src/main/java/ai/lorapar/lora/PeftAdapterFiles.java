package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.data.AtomicFileSet;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.io.StrictJson;
import ai.lorapar.io.TensorInfo;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** PEFT's LoRA adapter folder: adapter_config.json + adapter_model.safetensors. */
final class PeftAdapterFiles {
    static final String CONFIG = "adapter_config.json";
    static final String WEIGHTS = "adapter_model.safetensors";
    static final String PREFIX = "base_model.model.";

    private static final Logger LOG = LoggerFactory.getLogger(PeftAdapterFiles.class);

    /** What the variant keys that are refused ask for. */
    private static final Map<String, String> UNSUPPORTED = Map.of(
            "alora_invocation_tokens", "activated LoRA (applied only after the invocation tokens)",
            "arrow_config", "Arrow routing between several LoRA experts",
            "bdlora_config", "block-diagonal LoRA");

    /** The keys of PEFT's LoraConfig (0.13 to 0.18) that this loader reads, checks or may ignore. */
    private static final Set<String> KNOWN_KEYS = Set.of("peft_type", "task_type", "base_model_name_or_path",
            "revision", "inference_mode", "auto_mapping", "peft_version", "r", "target_modules", "exclude_modules",
            "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora", "modules_to_save",
            "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
            "megatron_config", "megatron_core", "trainable_token_indices", "loftq_config", "eva_config",
            "corda_config", "use_dora", "use_qalora", "qalora_group_size", "layer_replication", "runtime_config",
            "lora_bias", "target_parameters", "alora_invocation_tokens", "arrow_config", "bdlora_config",
            "ensure_weight_tying");

    private PeftAdapterFiles() {}

    static String keyA(String module) {
        return PREFIX + module + ".lora_A.weight";
    }

    static String keyB(String module) {
        return PREFIX + module + ".lora_B.weight";
    }

    // ---------------------------------------------------------------- write

    static void write(Path folder, LoraModel lora) throws IOException {
        LoraConfig c = lora.config();
        boolean residual = lora.layers().values().stream().anyMatch(l -> l.initialA() != null);
        int rank = residual ? 2 * c.rank() : c.rank();
        double alpha = residual ? 2 * c.alpha() : c.alpha();
        String json = configJson(c, rank, alpha);
        try (NDManager s = lora.model().manager().newSubManager()) {
            Map<String, NDArray> tensors = new LinkedHashMap<>();
            for (LoraLayer l : lora.layers().values()) {
                NDArray a = l.a().stopGradient();
                a.attach(s);
                NDArray b = l.b().stopGradient();
                b.attach(s);
                if (l.initialA() != null) {
                    // ΔW = s·(B·A − B₀·A₀) = s·[B, −B₀]·[A; A₀]
                    a = NDArrays.concat(new NDList(a, l.initialA()), 0);
                    a.attach(s);
                    NDArray negB0 = l.initialB().neg();
                    negB0.attach(s);
                    b = NDArrays.concat(new NDList(b, negB0), 1);
                    b.attach(s);
                }
                NDArray aHost = a.toDevice(ai.djl.Device.cpu(), false).toType(DataType.FLOAT32, false);
                aHost.attach(s);
                NDArray bHost = b.toDevice(ai.djl.Device.cpu(), false).toType(DataType.FLOAT32, false);
                bHost.attach(s);
                tensors.put(keyA(l.module()), aHost);
                tensors.put(keyB(l.module()), bHost);
            }
            Map<String, AtomicFiles.Bytes> files = new LinkedHashMap<>();
            files.put(WEIGHTS, SafetensorsWriter.content(tensors, Map.of("format", "pt")));
            byte[] configBytes = json.getBytes(StandardCharsets.UTF_8);
            files.put(CONFIG, out -> AtomicFiles.writeFully(out, ByteBuffer.wrap(configBytes)));
            // all-or-nothing, also under kill -9: see AtomicFileSet (the loader completes a committed save)
            AtomicFileSet.write(folder, files);
        }
    }

    static String configJson(LoraConfig c, int rank, double alpha) {
        JsonObject o = new JsonObject();
        o.addProperty("peft_type", "LORA");
        o.addProperty("task_type", "CAUSAL_LM");
        if (c.baseModelNameOrPath() != null) {
            o.addProperty("base_model_name_or_path", c.baseModelNameOrPath());
        } else {
            o.add("base_model_name_or_path", JsonNull.INSTANCE);
        }
        o.addProperty("r", rank);
        o.addProperty("lora_alpha", alpha == Math.rint(alpha) && Math.abs(alpha) < 1e15 ? (Number) (long) alpha
                : (Number) alpha);
        o.addProperty("lora_dropout", c.dropout());
        if (c.targets().entries() != null) {
            JsonArray t = new JsonArray();
            c.targets().entries().forEach(t::add);
            o.add("target_modules", t);
        } else {
            o.addProperty("target_modules", c.targets().pattern());
        }
        o.addProperty("bias", "none");
        o.addProperty("fan_in_fan_out", false);
        o.addProperty("inference_mode", true);
        o.addProperty("init_lora_weights", true);
        o.addProperty("use_rslora", false);
        o.addProperty("use_dora", false);
        o.add("modules_to_save", JsonNull.INSTANCE);
        o.add("layers_to_transform", JsonNull.INSTANCE);
        o.add("rank_pattern", new JsonObject());
        o.add("alpha_pattern", new JsonObject());
        return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(o) + "\n";
    }

    // ---------------------------------------------------------------- read

    record Loaded(LoraConfig config, List<String> modules, Map<String, NDArray> a, Map<String, NDArray> b,
            NDManager manager) {}

    static Loaded read(Path folder, DecoderModel model, NDManager parent) throws IOException {
        if (Files.isDirectory(folder)) {
            AtomicFileSet.recover(folder); // a save killed after its commit point: finish it
        }
        Path configPath = folder.resolve(CONFIG);
        Path weightsPath = folder.resolve(WEIGHTS);
        if (!Files.isRegularFile(configPath)) {
            throw new AdapterFormatException(folder + ": no " + CONFIG + " (not a PEFT adapter folder)");
        }
        if (!Files.isRegularFile(weightsPath)) {
            throw new AdapterFormatException(folder + ": no " + WEIGHTS
                    + (Files.exists(folder.resolve("adapter_model.bin")) ? " (adapter_model.bin, PyTorch pickles, is not "
                            + "read: re-save with safe_serialization=True)" : ""));
        }
        JsonObject o;
        try (Reader r = Files.newBufferedReader(configPath, StandardCharsets.UTF_8)) {
            JsonElement e = StrictJson.parse(r);
            if (!e.isJsonObject()) {
                throw new AdapterFormatException(configPath + ": not a JSON object");
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new AdapterFormatException(configPath + ": invalid JSON: " + e.getMessage(), e);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new AdapterFormatException(configPath + ": not valid UTF-8 (" + e + ")", e);
        }
        String peftType = string(o, "peft_type", configPath);
        if (!"LORA".equals(peftType)) {
            throw new AdapterFormatException(configPath + ": peft_type is '" + peftType + "'; only LORA adapters are read");
        }
        int rank = (int) number(o, "r", configPath);
        double alpha = o.has("lora_alpha") && !o.get("lora_alpha").isJsonNull() ? number(o, "lora_alpha", configPath)
                : 8; // PEFT's default
        double dropout = o.has("lora_dropout") && !o.get("lora_dropout").isJsonNull()
                ? number(o, "lora_dropout", configPath) : 0;
        requireFalse(o, "use_rslora", configPath, "rank-stabilised scaling (alpha/√r) is not supported");
        requireFalse(o, "use_dora", configPath, "DoRA adapters are not supported");
        requireFalse(o, "fan_in_fan_out", configPath, "fan_in_fan_out (Conv1D-style weights) is not supported");
        requireFalse(o, "lora_bias", configPath, "LoRA biases are not supported");
        requireFalse(o, "use_qalora", configPath, "QALoRA (pooled inputs for quantized models) is not supported");
        for (String key : List.of("alora_invocation_tokens", "arrow_config", "bdlora_config")) {
            if (isSet(o, key)) {
                throw new AdapterFormatException(configPath + ": " + key + " is set (" + o.get(key) + "); "
                        + UNSUPPORTED.get(key) + " is not supported, and loading it as a plain LoRA would compute "
                        + "something else");
            }
        }
        for (String key : o.keySet()) {
            if (!KNOWN_KEYS.contains(key)) {
                LOG.warn("{}: unknown key '{}' is ignored; if it changes what the adapter computes, the result will "
                        + "differ from PEFT's", configPath, key);
            }
        }
        if (o.has("bias") && !o.get("bias").isJsonNull() && !"none".equals(o.get("bias").getAsString())) {
            throw new AdapterFormatException(configPath + ": bias is '" + o.get("bias").getAsString()
                    + "'; only bias \"none\" is supported");
        }
        for (String key : List.of("rank_pattern", "alpha_pattern")) {
            if (o.has(key) && o.get(key).isJsonObject() && o.getAsJsonObject(key).size() > 0) {
                throw new AdapterFormatException(configPath + ": " + key + " is not empty; per-module ranks and alphas "
                        + "are not supported");
            }
        }
        for (String key : List.of("layers_to_transform", "layers_pattern", "modules_to_save", "exclude_modules",
                "target_parameters", "trainable_token_indices", "layer_replication")) {
            if (o.has(key) && !o.get(key).isJsonNull() && !(o.get(key).isJsonArray() && o.getAsJsonArray(key).isEmpty())) {
                throw new AdapterFormatException(configPath + ": " + key + " is set; it is not supported");
            }
        }
        if (!o.has("target_modules") || o.get("target_modules").isJsonNull()) {
            throw new AdapterFormatException(configPath + ": target_modules is missing");
        }
        LoraTargets targets;
        JsonElement tm = o.get("target_modules");
        try {
            if (tm.isJsonArray()) {
                List<String> names = new ArrayList<>();
                tm.getAsJsonArray().forEach(e -> names.add(e.getAsString()));
                targets = LoraTargets.modules(names);
            } else {
                targets = LoraTargets.regex(tm.getAsString());
            }
        } catch (IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
            throw new AdapterFormatException(configPath + ": target_modules: " + e.getMessage(), e);
        }
        LoraConfig config;
        try {
            LoraConfig.Builder b = LoraConfig.builder().targets(targets).rank(rank).alpha(alpha).dropout(dropout)
                    .init(LoraInit.STANDARD);
            if (o.has("base_model_name_or_path") && !o.get("base_model_name_or_path").isJsonNull()) {
                b.baseModelNameOrPath(o.get("base_model_name_or_path").getAsString());
            }
            config = b.build();
        } catch (IllegalArgumentException e) {
            throw new AdapterFormatException(configPath + ": " + e.getMessage(), e);
        }
        List<String> modules;
        try {
            modules = targets.resolve(model);
        } catch (IllegalArgumentException e) {
            throw new AdapterFormatException(configPath + ": " + e.getMessage(), e);
        }

        NDManager manager = parent.newSubManager(model.device());
        try (SafetensorsFile f = SafetensorsFile.open(weightsPath)) {
            Set<String> unexpected = new TreeSet<>(LoraTensorName.NATURAL_ORDER);
            unexpected.addAll(f.names());
            Map<String, NDArray> as = new LinkedHashMap<>();
            Map<String, NDArray> bs = new LinkedHashMap<>();
            for (String m : modules) {
                Linear lin = model.linear(m);
                as.put(m, tensor(f, keyA(m), new Shape(rank, lin.inFeatures()), m, manager, weightsPath));
                bs.put(m, tensor(f, keyB(m), new Shape(lin.outFeatures(), rank), m, manager, weightsPath));
                unexpected.remove(keyA(m));
                unexpected.remove(keyB(m));
            }
            if (!unexpected.isEmpty()) {
                throw new AdapterFormatException(weightsPath + ": tensor '" + unexpected.iterator().next()
                        + "' belongs to no target module of " + CONFIG + " (target_modules " + targets + "; "
                        + unexpected.size() + " such tensor(s))");
            }
            return new Loaded(config, modules, as, bs, manager);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static NDArray tensor(SafetensorsFile f, String key, Shape want, String module, NDManager manager,
            Path path) throws IOException {
        if (!f.contains(key)) {
            throw new AdapterFormatException(path + ": missing tensor '" + key + "' for target module '" + module + "'");
        }
        TensorInfo info = f.info(key);
        if (!info.shape().equals(want)) {
            throw new AdapterFormatException(path + ": tensor '" + key + "' has shape " + info.shape() + ", expected "
                    + want + " (r from " + CONFIG + ", features from the model's '" + module + "')");
        }
        NDArray a = f.loadAs(key, manager, DataType.FLOAT32);
        NDArray onDevice = a.toDevice(manager.getDevice(), false);
        if (onDevice != a) {
            onDevice.attach(manager);
            a.close();
        }
        onDevice.setName(key);
        return onDevice;
    }

    private static String string(JsonObject o, String key, Path path) throws AdapterFormatException {
        if (!o.has(key) || o.get(key).isJsonNull()) {
            throw new AdapterFormatException(path + ": '" + key + "' is missing");
        }
        try {
            return o.get(key).getAsString();
        } catch (IllegalStateException | UnsupportedOperationException e) {
            throw new AdapterFormatException(path + ": '" + key + "' is not a string: " + o.get(key));
        }
    }

    private static double number(JsonObject o, String key, Path path) throws AdapterFormatException {
        if (!o.has(key) || o.get(key).isJsonNull()) {
            throw new AdapterFormatException(path + ": '" + key + "' is missing");
        }
        try {
            return o.get(key).getAsDouble();
        } catch (NumberFormatException | IllegalStateException | UnsupportedOperationException e) {
            throw new AdapterFormatException(path + ": '" + key + "' is not a number: " + o.get(key));
        }
    }

    private static boolean isSet(JsonObject o, String key) {
        JsonElement e = o.get(key);
        return e != null && !e.isJsonNull() && !(e.isJsonArray() && e.getAsJsonArray().isEmpty())
                && !(e.isJsonObject() && e.getAsJsonObject().size() == 0);
    }

    private static void requireFalse(JsonObject o, String key, Path path, String why) throws AdapterFormatException {
        if (o.has(key) && !o.get(key).isJsonNull() && o.get(key).isJsonPrimitive() && o.get(key).getAsBoolean()) {
            throw new AdapterFormatException(path + ": " + key + " is true; " + why);
        }
    }
}
