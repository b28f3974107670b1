package ai.lorapar.io;

import ai.djl.ndarray.NDArray;
import ai.lorapar.data.AtomicFiles;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;

/**
 * Writes NDArrays as one safetensors file, atomically: the bytes go to a temporary file in the same
 * folder, are forced to disk, and the file is then moved over the target, so a crash never leaves a
 * half-written file under the target name ({@link AtomicFiles}). Tensors are copied to the host one at
 * a time.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    /**
     * Writes {@code tensors} (in map order) with string {@code metadata} to {@code target}, atomically (see
     * {@link AtomicFiles}: the file follows the umask, and an error, a full disk included, names the file).
     *
     * @param target the file to write
     * @param tensors the tensors by name, in the order they are stored
     * @param metadata string metadata ({@code __metadata__}), or null
     * @throws IOException naming the file when it cannot be written
     * @throws IllegalArgumentException for a dtype safetensors cannot hold, naming the tensor
     */
    public static void write(Path target, Map<String, NDArray> tensors, Map<String, String> metadata) throws IOException {
        AtomicFiles.write(target, content(tensors, metadata));
    }

    /**
     * The bytes of a safetensors file holding {@code tensors}, as content for {@link AtomicFiles}; the
     * header is checked now, the tensors are copied from their arrays when the content is written.
     *
     * @param tensors the tensors by name, in the order they are stored
     * @param metadata string metadata ({@code __metadata__}), or null
     * @return the content
     * @throws IllegalArgumentException for a dtype safetensors cannot hold, naming the tensor
     */
    public static AtomicFiles.Bytes content(Map<String, NDArray> tensors, Map<String, String> metadata) {
        ByteBuffer head = header(tensors, metadata);
        return out -> {
            AtomicFiles.writeFully(out, head.duplicate());
            for (NDArray a : tensors.values()) {
                AtomicFiles.writeFully(out, littleEndianBytes(a));
            }
        };
    }

    private static ByteBuffer header(Map<String, NDArray> tensors, Map<String, String> metadata) {
        JsonObject header = new JsonObject();
        if (metadata != null && !metadata.isEmpty()) {
            JsonObject meta = new JsonObject();
            metadata.forEach(meta::addProperty);
            header.add("__metadata__", meta);
        }
        long offset = 0;
        for (Map.Entry<String, NDArray> e : tensors.entrySet()) {
            NDArray a = e.getValue();
            SafetensorsDtype dtype;
            try {
                dtype = SafetensorsDtype.of(a.getDataType());
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("tensor '" + e.getKey() + "': " + ex.getMessage(), ex);
            }
            long bytes = a.size() * dtype.bytes();
            JsonObject t = new JsonObject();
            t.addProperty("dtype", dtype.name());
            JsonArray shape = new JsonArray();
            for (long d : a.getShape().getShape()) {
                shape.add(d);
            }
            t.add("shape", shape);
            JsonArray off = new JsonArray();
            off.add(offset);
            off.add(offset + bytes);
            t.add("data_offsets", off);
            header.add(e.getKey(), t);
            offset += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8; // the format pads the header with spaces to 8 bytes
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        return head;
    }

    private static ByteBuffer littleEndianBytes(NDArray a) {
        // DJL hands back the engine's raw bytes, which are in the host's native order.
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN && a.getDataType().getNumOfBytes() > 1) {
            throw new IllegalStateException("big-endian hosts are not supported (tensor '" + a.getName() + "')");
        }
        return a.toByteBuffer();
    }
}
