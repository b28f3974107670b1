package ai.lorapar.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A safetensors file opened for reading, one tensor at a time.
 *
 * <p>Only the header is read when the file is opened; each tensor's bytes are memory-mapped on
 * request, so files larger than 2 GB (which DJL's own reader, holding a whole file in one
 * {@code byte[]}, cannot read) work as long as each single tensor is under 2 GB. The header is
 * validated up front, as strictly as the reference implementation: a truncated file, offsets outside
 * the data, tensors whose bytes overlap, bytes that belong to no tensor (holes, trailing bytes), a
 * repeated key, an unknown dtype, a dimension that is not a non-negative integer, an element count that
 * overflows, or a byte length that disagrees with the shape is an error naming the file and the tensor.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The format's own limit on the header size. */
    private static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private final Path path;
    private final FileChannel channel;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, FileChannel channel, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.channel = channel;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Opens and validates {@code path}.
     *
     * @param path the file
     * @return the opened file; close it
     * @throws IOException naming the file (and tensor) when it cannot be read or is not valid
     */
    public static SafetensorsFile open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            throw new SafetensorsException(path + " is a directory, not a safetensors file"
                    + (Files.isRegularFile(path.resolve("model.safetensors")) ? " (did you mean "
                            + path.resolve("model.safetensors") + "?)" : ""));
        }
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new SafetensorsException(path + ": no such file", e);
        }
        try {
            long fileSize = ch.size();
            if (fileSize < 8) {
                throw new SafetensorsException(path + ": truncated safetensors file (" + fileSize + " bytes, no header length)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(path, ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > fileSize - 8) {
                throw new SafetensorsException(path + ": header length " + headerLen + " does not fit a file of "
                        + fileSize + " bytes (truncated or not a safetensors file)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(path, ch, header, 8);
            String json = new String(header.array(), StandardCharsets.UTF_8);
            long dataStart = 8 + headerLen;
            long dataLen = fileSize - dataStart;
            Map<String, String> meta = new LinkedHashMap<>();
            Map<String, TensorInfo> infos = parseHeader(path, json, dataStart, dataLen, meta);
            return new SafetensorsFile(path, ch, Collections.unmodifiableMap(infos), Collections.unmodifiableMap(meta));
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private static void readFully(Path path, FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n;
            try {
                n = ch.read(buf, pos + buf.position());
            } catch (IOException e) {
                throw new SafetensorsException(path + ": cannot read the header: " + e.getMessage(), e);
            }
            if (n < 0) {
                throw new SafetensorsException(path + ": unexpected end of file in the header");
            }
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path path, String json, long dataStart, long dataLen,
            Map<String, String> meta) throws SafetensorsException {
        JsonObject root;
        try {
            JsonElement parsed = StrictJson.parse(json.trim());
            if (!parsed.isJsonObject()) {
                throw new JsonParseException("found " + (parsed.isJsonArray() ? "an array" : parsed.toString()));
            }
            root = parsed.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new SafetensorsException(path + ": header is not a JSON object: " + e.getMessage(), e);
        }
        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : root.entrySet()) {
            String name = e.getKey();
            if ("__metadata__".equals(name)) {
                if (e.getValue().isJsonObject()) {
                    for (Map.Entry<String, JsonElement> m : e.getValue().getAsJsonObject().entrySet()) {
                        meta.put(m.getKey(), m.getValue().isJsonPrimitive() ? m.getValue().getAsString() : m.getValue().toString());
                    }
                }
                continue;
            }
            String where = path + ": tensor '" + name + "'";
            try {
                JsonObject t = e.getValue().getAsJsonObject();
                String dtypeName = t.get("dtype").getAsString();
                SafetensorsDtype dtype = SafetensorsDtype.parse(dtypeName);
                if (dtype == null) {
                    throw new SafetensorsException(where + " has unsupported dtype '" + dtypeName + "'");
                }
                JsonArray shapeJson = t.get("shape").getAsJsonArray();
                long[] dims = new long[shapeJson.size()];
                long elements = 1;
                for (int i = 0; i < dims.length; i++) {
                    dims[i] = integer(shapeJson.get(i), where + " shape " + shapeJson);
                    if (dims[i] < 0) {
                        throw new SafetensorsException(where + " has a negative dimension in shape " + shapeJson);
                    }
                    try {
                        elements = Math.multiplyExact(elements, dims[i]);
                    } catch (ArithmeticException overflow) {
                        throw new SafetensorsException(where + ": shape " + shapeJson + " has more elements than a "
                                + "64-bit count holds", overflow);
                    }
                }
                JsonArray off = t.get("data_offsets").getAsJsonArray();
                if (off.size() != 2) {
                    throw new SafetensorsException(where + " has data_offsets " + off + "; expected [begin, end]");
                }
                long begin = integer(off.get(0), where + " data_offsets " + off);
                long end = integer(off.get(1), where + " data_offsets " + off);
                if (begin < 0 || end < begin || end > dataLen) {
                    throw new SafetensorsException(where + " has data_offsets [" + begin + ", " + end
                            + "] outside the " + dataLen + " data bytes (truncated file?)");
                }
                Shape shape = new Shape(dims);
                long expected;
                try {
                    expected = Math.multiplyExact(elements, (long) dtype.bytes());
                } catch (ArithmeticException overflow) {
                    throw new SafetensorsException(where + ": shape " + shape + " of " + dtype
                            + " has more bytes than a 64-bit count holds", overflow);
                }
                if (end - begin != expected) {
                    throw new SafetensorsException(where + ": " + (end - begin) + " data bytes disagree with shape "
                            + shape + " of " + dtype + " (" + expected + " bytes)");
                }
                infos.put(name, new TensorInfo(name, dtype, shape, dataStart + begin, end - begin));
            } catch (NullPointerException | IllegalStateException | IndexOutOfBoundsException | UnsupportedOperationException
                    | NumberFormatException ex) {
                throw new SafetensorsException(where + " has a malformed header entry: " + e.getValue(), ex);
            }
        }
        checkCoverage(path, infos, dataStart, dataLen);
        return infos;
    }

    /** A JSON integer (not 2.0, 2.5 or 1e3), or an error naming {@code where}. */
    private static long integer(JsonElement e, String where) throws SafetensorsException {
        String text = e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber() ? e.getAsString() : null;
        if (text == null || !text.matches("-?[0-9]+")) {
            throw new SafetensorsException(where + ": " + e + " is not an integer");
        }
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException tooLarge) {
            throw new SafetensorsException(where + ": " + text + " does not fit a 64-bit integer", tooLarge);
        }
    }

    /**
     * The tensors must tile the data exactly, as the reference implementation requires: sorted by
     * offset, each begins where the previous ends, the first at 0 and the last at the end of the file.
     */
    private static void checkCoverage(Path path, Map<String, TensorInfo> infos, long dataStart, long dataLen)
            throws SafetensorsException {
        List<TensorInfo> byOffset = new ArrayList<>(infos.values());
        byOffset.sort(Comparator.comparingLong(TensorInfo::dataOffset).thenComparingLong(TensorInfo::byteLength));
        long expectedBegin = 0;
        TensorInfo previous = null;
        for (TensorInfo t : byOffset) {
            long begin = t.dataOffset() - dataStart;
            if (begin < expectedBegin) {
                throw new SafetensorsException(path + ": tensors '" + previous.name() + "' " + range(previous, dataStart)
                        + " and '" + t.name() + "' " + range(t, dataStart) + " overlap in the data");
            }
            if (begin > expectedBegin) {
                throw new SafetensorsException(path + ": data bytes [" + expectedBegin + ", " + begin
                        + ") belong to no tensor (a hole " + (previous == null ? "before the first tensor '" + t.name()
                        : "between '" + previous.name() + "' and '" + t.name()) + "')");
            }
            expectedBegin = begin + t.byteLength();
            previous = t;
        }
        if (expectedBegin != dataLen) {
            throw new SafetensorsException(path + ": " + (dataLen - expectedBegin) + " trailing bytes after "
                    + (previous == null ? "the header (the file holds no tensor)" : "the last tensor '" + previous.name()
                            + "' (which ends at data byte " + expectedBegin + " of " + dataLen + ")"));
        }
    }

    private static String range(TensorInfo t, long dataStart) {
        long begin = t.dataOffset() - dataStart;
        return "[" + begin + ", " + (begin + t.byteLength()) + "]";
    }

    /** The file this was opened from. */
    public Path path() {
        return path;
    }

    /** Tensor names, in header order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    /** All header entries, in header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The {@code __metadata__} entries (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Whether the file holds {@code name}. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The header entry of {@code name}, or an error naming the file and the tensor. */
    public TensorInfo info(String name) throws SafetensorsException {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new SafetensorsException(path + ": no tensor named '" + name + "' (the file has " + tensors.size() + ")");
        }
        return info;
    }

    /**
     * Maps {@code name}'s bytes read-only, little-endian. The mapping must not reach an NDArray
     * directly: PyTorch would alias it, and a later in-place op would write to a read-only page.
     */
    public ByteBuffer map(String name) throws IOException {
        if (!channel.isOpen()) {
            throw new IllegalStateException(path + " is closed (SafetensorsFile.close() was called)");
        }
        TensorInfo info = info(name);
        if (info.byteLength() > Integer.MAX_VALUE) {
            throw new SafetensorsException(path + ": tensor '" + name + "' has " + info.byteLength()
                    + " bytes; single tensors over 2 GB are not supported");
        }
        return channel.map(FileChannel.MapMode.READ_ONLY, info.dataOffset(), info.byteLength()).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Loads {@code name} into a new array of {@code manager}, in the file's dtype, on the manager's
     * device. The bytes are copied: the array owns its memory.
     *
     * @param name the tensor
     * @param manager the manager of the new array
     * @return the array
     * @throws SafetensorsException when the tensor is bf16 and the manager's engine cannot hold bf16
     *     (stock DJL aborts the JVM on a bf16 array, so this refuses instead)
     */
    public NDArray load(String name, NDManager manager) throws IOException {
        TensorInfo info = info(name);
        if (info.dtype() == SafetensorsDtype.BF16 && !manager.getEngine().hasCapability("BF16")) {
            throw new SafetensorsException(path + ": tensor '" + name + "' is bf16 and engine "
                    + manager.getEngine().getEngineName() + " has no bf16 capability; convert it while loading");
        }
        ByteBuffer src = map(name);
        ByteBuffer owned = ByteBuffer.allocateDirect(src.remaining()).order(ByteOrder.nativeOrder());
        owned.put(src).flip();
        // DJL keeps a reference to the direct buffer for as long as the CPU array aliases it.
        NDArray array = manager.create(owned, info.shape(), info.dtype().toDataType());
        array.setName(name);
        return array;
    }

    /**
     * Loads {@code name} into a new array of {@code manager} converted to {@code target}, never
     * creating a bf16 array on an engine without the {@code BF16} capability: bf16 data becomes fp32
     * on the host (exact: the 16 bits are widened with a shift) and, for an fp16 target, is then cast
     * by the engine. Floating-point data converts to any floating-point target; integer data must be
     * loaded in its own type.
     *
     * @param name the tensor
     * @param manager the manager of the new array
     * @param target the data type of the array
     * @return the array
     * @throws SafetensorsException naming the file and tensor when the conversion is not possible
     */
    public NDArray loadAs(String name, NDManager manager, DataType target) throws IOException {
        TensorInfo info = info(name);
        DataType source = info.dtype().toDataType();
        if (source == target) {
            return load(name, manager);
        }
        boolean engineBf16 = manager.getEngine().hasCapability("BF16");
        if (target == DataType.BFLOAT16 && !engineBf16) {
            throw new SafetensorsException(path + ": tensor '" + name + "' cannot become bf16: engine "
                    + manager.getEngine().getEngineName() + " has no bf16 capability");
        }
        if (!source.isFloating() || !target.isFloating()) {
            throw new SafetensorsException(path + ": tensor '" + name + "' is " + info.dtype()
                    + " and cannot be converted to " + target);
        }
        NDArray loaded;
        if (info.dtype() == SafetensorsDtype.BF16 && !engineBf16) {
            loaded = loadBf16AsFloat32(name, manager);
            if (target == DataType.FLOAT32) {
                return loaded;
            }
        } else {
            loaded = load(name, manager);
        }
        try (NDArray toClose = loaded) {
            NDArray converted = toClose.toType(target, true);
            converted.setName(name);
            return converted;
        }
    }

    /** bf16 bits widened to fp32 on the host: the fp32 value with the same sign, exponent and top mantissa bits. */
    private NDArray loadBf16AsFloat32(String name, NDManager manager) throws IOException {
        TensorInfo info = info(name);
        if (info.byteLength() * 2 > Integer.MAX_VALUE) {
            throw new SafetensorsException(path + ": tensor '" + name + "' is over 1 GB as bf16 (2 GB as fp32); "
                    + "single tensors over 2 GB are not supported");
        }
        ShortBuffer src = map(name).asShortBuffer();
        ByteBuffer owned = ByteBuffer.allocateDirect(src.remaining() * 4).order(ByteOrder.nativeOrder());
        IntBuffer dst = owned.asIntBuffer();
        int n = src.remaining();
        for (int i = 0; i < n; i++) {
            dst.put(i, (src.get(i) & 0xFFFF) << 16);
        }
        NDArray array = manager.create(owned, info.shape(), DataType.FLOAT32);
        array.setName(name);
        return array;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
