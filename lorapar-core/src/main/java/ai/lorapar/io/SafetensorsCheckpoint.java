package ai.lorapar.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights of a Hugging Face model folder: {@code model.safetensors}, or the shards listed in
 * {@code model.safetensors.index.json}. Only headers are read when it is opened; tensors are then
 * loaded one at a time (see {@link SafetensorsFile#loadAs}). An index that names a missing shard,
 * or a tensor its shard does not hold, is an error naming the index, the shard and the tensor.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {
    /** The weights of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The index of a sharded checkpoint. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path folder;
    private final List<SafetensorsFile> files;
    private final Map<String, SafetensorsFile> byTensor;

    private SafetensorsCheckpoint(Path folder, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor) {
        this.folder = folder;
        this.files = files;
        this.byTensor = byTensor;
    }

    /** Opens the weights in {@code folder} (index first, then the single file). */
    public static SafetensorsCheckpoint open(Path folder) throws IOException {
        Path index = folder.resolve(INDEX_FILE);
        if (Files.isRegularFile(index)) {
            return openIndex(folder, index);
        }
        Path single = folder.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            SafetensorsFile f = SafetensorsFile.open(single);
            Map<String, SafetensorsFile> map = new LinkedHashMap<>();
            for (String name : f.names()) {
                map.put(name, f);
            }
            return new SafetensorsCheckpoint(folder, List.of(f), Collections.unmodifiableMap(map));
        }
        List<String> present = new ArrayList<>();
        if (Files.isDirectory(folder)) {
            try (var s = Files.list(folder)) {
                s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors") || n.endsWith(".json"))
                        .sorted().forEach(present::add);
            }
        }
        throw new SafetensorsException(folder + ": neither " + SINGLE_FILE + " nor " + INDEX_FILE
                + " found (folder has " + present + ")");
    }

    private static SafetensorsCheckpoint openIndex(Path folder, Path index) throws IOException {
        JsonObject weightMap;
        try (Reader r = Files.newBufferedReader(index, StandardCharsets.UTF_8)) {
            JsonElement root = StrictJson.parse(r);
            JsonElement wm = root.isJsonObject() ? root.getAsJsonObject().get("weight_map") : null;
            if (wm == null || !wm.isJsonObject()) {
                throw new SafetensorsException(index + ": no \"weight_map\" object");
            }
            weightMap = wm.getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
            throw new SafetensorsException(index + ": not valid JSON: " + e.getMessage(), e);
        }
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, JsonElement> e : weightMap.entrySet()) {
                String tensor = e.getKey();
                if (!e.getValue().isJsonPrimitive() || !e.getValue().getAsJsonPrimitive().isString()) {
                    throw new SafetensorsException(index + ": tensor '" + tensor + "' maps to " + e.getValue()
                            + ", not to a shard file name");
                }
                String shard = e.getValue().getAsString();
                Path shardPath = folder.resolve(shard).normalize();
                if (!shardPath.startsWith(folder.normalize()) || !Files.isRegularFile(shardPath)) {
                    throw new SafetensorsException(index + ": tensor '" + tensor + "' is in shard '" + shard
                            + "', which is missing from " + folder);
                }
                SafetensorsFile f = shards.get(shard);
                if (f == null) {
                    f = SafetensorsFile.open(shardPath);
                    shards.put(shard, f);
                }
                if (!f.contains(tensor)) {
                    throw new SafetensorsException(index + ": tensor '" + tensor + "' is listed in shard '" + shard
                            + "', which does not hold it");
                }
                byTensor.put(tensor, f);
            }
        } catch (IOException | RuntimeException e) {
            for (SafetensorsFile f : shards.values()) {
                try {
                    f.close();
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
        return new SafetensorsCheckpoint(folder, List.copyOf(shards.values()), Collections.unmodifiableMap(byTensor));
    }

    /** The model folder. */
    public Path folder() {
        return folder;
    }

    /** The opened files (one, or the shards in index order). */
    public List<SafetensorsFile> files() {
        return files;
    }

    /** All tensor names. */
    public Set<String> names() {
        return byTensor.keySet();
    }

    /** Whether the checkpoint holds {@code name}. */
    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    /** The file holding {@code name}, or an error naming the folder and the tensor. */
    public SafetensorsFile fileOf(String name) throws SafetensorsException {
        SafetensorsFile f = byTensor.get(name);
        if (f == null) {
            throw new SafetensorsException(folder + ": missing tensor '" + name + "' (checkpoint has "
                    + byTensor.size() + " tensors in " + files.size() + " file(s))");
        }
        return f;
    }

    /** Header entry of {@code name}. */
    public TensorInfo info(String name) throws SafetensorsException {
        return fileOf(name).info(name);
    }

    /** Loads {@code name} converted to {@code target}; see {@link SafetensorsFile#loadAs}. */
    public NDArray loadAs(String name, NDManager manager, DataType target) throws IOException {
        return fileOf(name).loadAs(name, manager, target);
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (SafetensorsFile f : files) {
            try {
                f.close();
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
