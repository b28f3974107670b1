package ai.lorapar.io;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A safetensors file opened for reading, one tensor at a time.
 *
 * <p>Only the header is read when the file is opened; each tensor's bytes are memory-mapped on
 * request, so files larger than 2 GB (which DJL's own reader, holding a whole file in one
 * {@code byte[]}, cannot read) work as long as each single tensor is under 2 GB. The header is
 * validated up front: a truncated file, offsets outside the data, an unknown dtype or a byte
 * length that disagrees with the shape is an error naming the file and the tensor.
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

    /** Opens and validates {@code path}. */
    public static SafetensorsFile open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        try {
            long fileSize = ch.size();
            if (fileSize < 8) {
                throw new SafetensorsException(path + ": truncated safetensors file (" + fileSize + " bytes, no header length)");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > fileSize - 8) {
                throw new SafetensorsException(path + ": header length " + headerLen + " does not fit a file of "
                        + fileSize + " bytes (truncated or not a safetensors file)");
            }
            ByteBuffer header = ByteBuffer.allocate((int) headerLen);
            readFully(ch, header, 8);
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

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + buf.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static Map<String, TensorInfo> parseHeader(Path path, String json, long dataStart, long dataLen,
            Map<String, String> meta) throws SafetensorsException {
        JsonObject root;
        try {
            root = JsonParser.parseString(json.trim()).getAsJsonObject();
        } catch (JsonParseException | IllegalStateException e) {
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
                for (int i = 0; i < dims.length; i++) {
                    dims[i] = shapeJson.get(i).getAsLong();
                    if (dims[i] < 0) {
                        throw new SafetensorsException(where + " has a negative dimension in shape " + shapeJson);
                    }
                }
                JsonArray off = t.get("data_offsets").getAsJsonArray();
                long begin = off.get(0).getAsLong();
                long end = off.get(1).getAsLong();
                if (begin < 0 || end < begin || end > dataLen) {
                    throw new SafetensorsException(where + " has data_offsets [" + begin + ", " + end
                            + "] outside the " + dataLen + " data bytes (truncated file?)");
                }
                Shape shape = new Shape(dims);
                long expected = Math.multiplyExact(shape.size(), (long) dtype.bytes());
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
        return infos;
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
