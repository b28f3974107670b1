package ai.lorapar.partition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.lora.LoraTensorName;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The element masks of the two training stages: for every LoRA tensor a boolean array of its shape,
 * true where the optimizer may change the element in that stage. Stage 1 is SFT on System-1 data,
 * stage 2 is GRPO on System-2 data.
 *
 * <p>Owns its arrays (closed by {@link #close()}). Masks are saved as safetensors BOOL tensors keyed
 * {@code stage1/<name>} and {@code stage2/<name>}.
 */
public final class StageMasks implements AutoCloseable {
    private volatile boolean closed;
    static final String FORMAT = "lorapar-stage-masks";
    private static final String STAGE1 = "stage1/";
    private static final String STAGE2 = "stage2/";

    private final NDManager manager;
    private final Map<String, NDArray> stage1;
    private final Map<String, NDArray> stage2;
    private final long stage1Count;
    private final long stage2Count;
    private final String origin;

    StageMasks(NDManager manager, Map<String, NDArray> stage1, Map<String, NDArray> stage2, String origin) {
        this(manager, stage1, stage2, origin, countAll(stage1), countAll(stage2));
    }

    /** With counts already known (a partition's statistics), so nothing is read back again. */
    StageMasks(NDManager manager, Map<String, NDArray> stage1, Map<String, NDArray> stage2, String origin,
            long stage1Count, long stage2Count) {
        if (!stage1.keySet().equals(stage2.keySet())) {
            throw new IllegalArgumentException("stage masks cover different tensors: " + stage1.keySet() + " vs "
                    + stage2.keySet());
        }
        this.manager = manager;
        this.stage1 = Collections.unmodifiableMap(sorted(stage1));
        this.stage2 = Collections.unmodifiableMap(sorted(stage2));
        this.stage1Count = stage1Count;
        this.stage2Count = stage2Count;
        this.origin = origin;
    }

    private static Map<String, NDArray> sorted(Map<String, NDArray> m) {
        Map<String, NDArray> byName = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        byName.putAll(m);
        return new LinkedHashMap<>(byName);
    }

    private static long countAll(Map<String, NDArray> masks) {
        long n = 0;
        for (NDArray m : masks.values()) {
            try (NDArray c = m.sum(); NDArray c64 = c.toType(DataType.INT64, false)) {
                n += c64.getLong();
            }
        }
        return n;
    }

    /** Stage-1 masks by tensor name (natural order). */
    public Map<String, NDArray> stage1() {
        checkOpen();
        return stage1;
    }

    /** Stage-2 masks by tensor name (natural order). */
    public Map<String, NDArray> stage2() {
        checkOpen();
        return stage2;
    }

    /** The masks of stage 1 or 2. */
    public Map<String, NDArray> stage(int stage) {
        checkOpen();
        if (stage == 1) {
            return stage1;
        }
        if (stage == 2) {
            return stage2;
        }
        throw new IllegalArgumentException("stage must be 1 or 2, got " + stage);
    }

    /** Number of elements trainable in stage 1. */
    public long stage1Count() {
        return stage1Count;
    }

    /** Number of elements trainable in stage 2. */
    public long stage2Count() {
        return stage2Count;
    }

    /** Number of elements over all tensors. */
    public long elementCount() {
        long n = 0;
        for (NDArray m : stage1.values()) {
            n += m.size();
        }
        return n;
    }

    /** Where the masks came from: "importance" for a LoRA-PAR partition, "random(seed=…)" for the baseline. */
    public String origin() {
        return origin;
    }

    /** Saves both stages' masks to one safetensors file, atomically. */
    public void save(Path path) throws IOException {
        checkOpen();
        Map<String, NDArray> all = new LinkedHashMap<>();
        stage1.forEach((k, v) -> all.put(STAGE1 + k, v));
        stage2.forEach((k, v) -> all.put(STAGE2 + k, v));
        SafetensorsWriter.write(path, all, Map.of("format", FORMAT, "origin", origin));
    }

    /**
     * Loads masks saved by {@link #save(Path)} into a new manager under {@code parent}.
     *
     * @throws IOException when the file is not a stage-mask file, naming the file and what is wrong
     */
    public static StageMasks load(Path path, NDManager parent) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            if (!FORMAT.equals(file.metadata().get("format"))) {
                throw new IOException(path + ": not a stage-mask file (metadata format is "
                        + file.metadata().get("format") + ", expected " + FORMAT + ")");
            }
            NDManager own = parent.newSubManager();
            try {
                Map<String, NDArray> s1 = new LinkedHashMap<>();
                Map<String, NDArray> s2 = new LinkedHashMap<>();
                for (String key : file.names()) {
                    if (file.info(key).dtype() != ai.lorapar.io.SafetensorsDtype.BOOL) {
                        throw new IOException(path + ": mask '" + key + "' has dtype " + file.info(key).dtype() + ", expected BOOL");
                    }
                    if (key.startsWith(STAGE1)) {
                        s1.put(key.substring(STAGE1.length()), file.load(key, own));
                    } else if (key.startsWith(STAGE2)) {
                        s2.put(key.substring(STAGE2.length()), file.load(key, own));
                    } else {
                        throw new IOException(path + ": unexpected key '" + key + "' (expected stage1/… or stage2/…)");
                    }
                }
                if (!s1.keySet().equals(s2.keySet())) {
                    throw new IOException(path + ": stage 1 and stage 2 cover different tensors");
                }
                return new StageMasks(own, s1, s2, file.metadata().getOrDefault("origin", "unknown"));
            } catch (IOException | RuntimeException e) {
                own.close();
                throw e;
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("StageMasks (" + origin + ") is closed; its masks are freed");
        }
    }

    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
