package ai.lorapar.importance;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.lora.LoraTensorName;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Element-wise importance of every LoRA tensor for one system (System 1 or System 2): one
 * non-negative fp32 array per tensor, shaped like the tensor.
 *
 * <p>The map owns its arrays (in a manager of its own, closed by {@link #close()}); tensors are kept
 * in {@link LoraTensorName#NATURAL_ORDER}, the order in which partitioning flattens them.
 */
public final class ImportanceMap implements AutoCloseable {
    static final String FORMAT = "lorapar-importance";

    private final NDManager manager;
    private final Map<String, NDArray> tensors;
    private final long numExamples;
    private volatile boolean closed;

    private ImportanceMap(NDManager manager, Map<String, NDArray> tensors, long numExamples) {
        this.manager = manager;
        this.tensors = tensors;
        this.numExamples = numExamples;
    }

    /**
     * Wraps {@code values} as an importance map. The arrays are moved into a new manager under
     * {@code parent} (so closing the map closes them) and converted to fp32 when they are not.
     *
     * @param numExamples how many examples the importance was averaged over (metadata; 0 if unknown)
     * @throws IllegalArgumentException for an empty map or a non-floating-point array, naming it
     */
    public static ImportanceMap of(NDManager parent, Map<String, NDArray> values, long numExamples) {
        if (values.isEmpty()) {
            throw new IllegalArgumentException("an importance map needs at least one tensor");
        }
        NDManager own = parent.newSubManager();
        Map<String, NDArray> sorted = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        try {
            for (Map.Entry<String, NDArray> e : values.entrySet()) {
                NDArray a = e.getValue();
                if (!a.getDataType().isFloating()) {
                    throw new IllegalArgumentException("importance tensor '" + e.getKey() + "' has non-floating type "
                            + a.getDataType());
                }
                a.attach(own);
                NDArray f = a.getDataType() == DataType.FLOAT32 ? a : a.toType(DataType.FLOAT32, false);
                if (f != a) {
                    a.close();
                }
                f.setName(e.getKey());
                sorted.put(e.getKey(), f);
            }
        } catch (RuntimeException ex) {
            own.close();
            throw ex;
        }
        return new ImportanceMap(own, Collections.unmodifiableMap(new LinkedHashMap<>(sorted)), numExamples);
    }

    /** Tensor names in natural order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** All tensors, in natural order (read-only map; the arrays stay owned by this map). */
    public Map<String, NDArray> tensors() {
        checkOpen();
        return tensors;
    }

    /** The importance of tensor {@code name}. */
    public NDArray get(String name) {
        checkOpen();
        NDArray a = tensors.get(name);
        if (a == null) {
            throw new IllegalArgumentException("no importance tensor named '" + name + "'");
        }
        return a;
    }

    /** The shape of tensor {@code name}. */
    public Shape shape(String name) {
        return get(name).getShape();
    }

    /** How many examples the importance was averaged over (0 when unknown). */
    public long numExamples() {
        return numExamples;
    }

    /** Total number of elements over all tensors. */
    public long elementCount() {
        long n = 0;
        for (NDArray a : tensors.values()) {
            n += a.size();
        }
        return n;
    }

    /** The device the arrays live on. */
    public Device device() {
        return tensors.values().iterator().next().getDevice();
    }

    /** The manager that owns the arrays. */
    public NDManager manager() {
        return manager;
    }

    /** Saves the map as safetensors (atomically), with the example count in the metadata. */
    public void save(Path path) throws IOException {
        checkOpen();
        SafetensorsWriter.write(path, tensors, Map.of("format", FORMAT, "num_examples", Long.toString(numExamples)));
    }

    /**
     * Loads a map saved by {@link #save(Path)} into a new manager under {@code parent}.
     *
     * @throws IOException when the file is not an importance map or is malformed, naming the file
     */
    public static ImportanceMap load(Path path, NDManager parent) throws IOException {
        try (SafetensorsFile file = SafetensorsFile.open(path)) {
            if (!FORMAT.equals(file.metadata().get("format"))) {
                throw new IOException(path + ": not an importance map (metadata format is "
                        + file.metadata().get("format") + ", expected " + FORMAT + ")");
            }
            String count = file.metadata().getOrDefault("num_examples", "0");
            long n;
            try {
                n = Long.parseLong(count.strip());
            } catch (NumberFormatException e) {
                throw new IOException(path + ": metadata key num_examples is '" + count + "', not a whole number", e);
            }
            if (n < 0) {
                throw new IOException(path + ": metadata key num_examples is " + n + ", a negative count");
            }
            NDManager staging = parent.newSubManager();
            try {
                Map<String, NDArray> values = new LinkedHashMap<>();
                for (String name : file.names()) {
                    values.put(name, file.load(name, staging));
                }
                return of(parent, values, n);
            } finally {
                staging.close();
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("ImportanceMap (" + tensors.size() + " tensors) is closed; its arrays are freed");
        }
    }

    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
