package ai.lorapar.io;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsValidationTest {
    @TempDir
    Path dir;

    private Path raw(String name, String header, int dataBytes) throws Exception {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    @Test
    void writesWhatPythonSafetensorsReadsAndReadsItBack() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put("w", m.create(new float[] {1.5f, -2f, 3.25f, 0f, 5f, 6f}, new Shape(2, 3)));
            t.put("ids", m.create(new long[] {7, -8}));
            t.put("mask", m.create(new boolean[] {true, false, true}));
            t.put("half", m.create(new float[] {0.5f, 2f}).toType(DataType.FLOAT16, false));
            Path p = dir.resolve("t.safetensors");
            SafetensorsWriter.write(p, t, Map.of("k", "v"));
            byte[] bytes = Files.readAllBytes(p);
            long headerLen = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertThat(headerLen % 8).isZero();
            String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
            assertThat(header).contains("\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}");
            assertThat(header).contains("\"mask\":{\"dtype\":\"BOOL\"");
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                assertThat(f.names()).containsExactly("w", "ids", "mask", "half");
                assertThat(f.metadata()).containsEntry("k", "v");
                assertThat(f.load("w", m).toFloatArray()).containsExactly(1.5f, -2f, 3.25f, 0f, 5f, 6f);
                assertThat(f.load("w", m).getShape()).isEqualTo(new Shape(2, 3));
                assertThat(f.load("ids", m).toLongArray()).containsExactly(7, -8);
                assertThat(f.load("mask", m).toBooleanArray()).containsExactly(true, false, true);
                assertThat(f.load("half", m).toType(DataType.FLOAT32, false).toFloatArray()).containsExactly(0.5f, 2f);
                assertThat(f.info("half").dtype()).isEqualTo(SafetensorsDtype.F16);
                // The loaded array owns its memory: in-place writes work and do not touch the file.
                NDArray w = f.load("w", m);
                w.addi(1f);
                assertThat(f.load("w", m).toFloatArray()[0]).isEqualTo(1.5f);
            }
        }
    }

    @Test
    void namesTheFileAndTensorOfEachDefect() throws Exception {
        Path truncated = dir.resolve("short.safetensors");
        Files.write(truncated, new byte[] {1, 2, 3});
        assertThatThrownBy(() -> SafetensorsFile.open(truncated)).isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("short.safetensors").hasMessageContaining("truncated");

        Path tooLong = raw("hdr.safetensors", "{}", 0);
        byte[] b = Files.readAllBytes(tooLong);
        b[0] = 100; // claims a 100-byte header in a 10-byte file
        Files.write(tooLong, b);
        assertThatThrownBy(() -> SafetensorsFile.open(tooLong)).hasMessageContaining("hdr.safetensors")
                .hasMessageContaining("header length 100");

        Path outside = raw("outside.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(outside)).hasMessageContaining("outside.safetensors")
                .hasMessageContaining("tensor 'w'").hasMessageContaining("outside the 8 data bytes");

        Path dtype = raw("dtype.safetensors", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
        assertThatThrownBy(() -> SafetensorsFile.open(dtype)).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("unsupported dtype 'F8_E4M3'");

        Path length = raw("len.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
        assertThatThrownBy(() -> SafetensorsFile.open(length)).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("16 data bytes disagree with shape (3)");

        Path malformed = raw("bad.safetensors", "{\"w\":{\"dtype\":\"F32\"}}", 0);
        assertThatThrownBy(() -> SafetensorsFile.open(malformed)).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("malformed");

        Path notJson = raw("json.safetensors", "[1,2", 0);
        assertThatThrownBy(() -> SafetensorsFile.open(notJson)).hasMessageContaining("json.safetensors")
                .hasMessageContaining("not a JSON object");

        Path ok = raw("ok.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        try (SafetensorsFile f = SafetensorsFile.open(ok)) {
            assertThatThrownBy(() -> f.info("v")).hasMessageContaining("ok.safetensors").hasMessageContaining("'v'");
        }
    }

    private static String entry(String name, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + "," + end + "]}";
    }

    /** What the reference implementation (safetensors' Rust validate) also refuses, each naming file and tensor. */
    @Test
    void refusesWhatTheReferenceRefusesNamingFileAndTensor() throws Exception {
        Path overlap = raw("overlap.safetensors", "{" + entry("a", "[4]", 0, 16) + "," + entry("b", "[4]", 8, 24) + "}", 24);
        assertThatThrownBy(() -> SafetensorsFile.open(overlap)).isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("overlap.safetensors").hasMessageContaining("'a' [0, 16]")
                .hasMessageContaining("'b' [8, 24]").hasMessageContaining("overlap");
        Path shared = raw("shared.safetensors", "{" + entry("a", "[4]", 0, 16) + "," + entry("b", "[4]", 0, 16) + "}", 16);
        assertThatThrownBy(() -> SafetensorsFile.open(shared)).hasMessageContaining("overlap");

        Path hole = raw("hole.safetensors", "{" + entry("a", "[2]", 0, 8) + "," + entry("b", "[2]", 12, 20) + "}", 20);
        assertThatThrownBy(() -> SafetensorsFile.open(hole)).hasMessageContaining("hole.safetensors")
                .hasMessageContaining("[8, 12) belong to no tensor").hasMessageContaining("between 'a' and 'b'");
        Path leading = raw("leading.safetensors", "{" + entry("a", "[2]", 4, 12) + "}", 12);
        assertThatThrownBy(() -> SafetensorsFile.open(leading)).hasMessageContaining("before the first tensor 'a'");

        Path trailing = raw("trailing.safetensors", "{" + entry("a", "[2]", 0, 8) + "}", 12);
        assertThatThrownBy(() -> SafetensorsFile.open(trailing)).hasMessageContaining("trailing.safetensors")
                .hasMessageContaining("4 trailing bytes after the last tensor 'a'");

        Path duplicate = raw("dup.safetensors", "{" + entry("a", "[2]", 0, 8) + "," + entry("a", "[1]", 8, 12) + "}", 12);
        assertThatThrownBy(() -> SafetensorsFile.open(duplicate)).hasMessageContaining("dup.safetensors")
                .hasMessageContaining("duplicate key \"a\"");

        Path fraction = raw("fraction.safetensors", "{" + entry("w", "[2.5]", 0, 8) + "}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(fraction)).hasMessageContaining("fraction.safetensors")
                .hasMessageContaining("tensor 'w'").hasMessageContaining("2.5 is not an integer");
        Path decimal = raw("decimal.safetensors", "{" + entry("w", "[2.0]", 0, 8) + "}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(decimal)).hasMessageContaining("2.0 is not an integer");
        Path text = raw("text.safetensors", "{" + entry("w", "[\"2\"]", 0, 8) + "}", 8);
        assertThatThrownBy(() -> SafetensorsFile.open(text)).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("is not an integer");

        // 2^32 · 2^32 elements wrap to 0 in a long: with 0 data bytes the old check passed
        Path wraps = raw("wraps.safetensors", "{" + entry("w", "[4294967296,4294967296]", 0, 0) + "}", 0);
        assertThatThrownBy(() -> SafetensorsFile.open(wraps)).hasMessageContaining("wraps.safetensors")
                .hasMessageContaining("tensor 'w'").hasMessageContaining("64-bit");
        Path bytesWrap = raw("byteswrap.safetensors", "{" + entry("w", "[4611686018427387904]", 0, 0) + "}", 0);
        assertThatThrownBy(() -> SafetensorsFile.open(bytesWrap)).hasMessageContaining("tensor 'w'")
                .hasMessageContaining("64-bit");

        Path folder = Files.createDirectories(dir.resolve("model"));
        assertThatThrownBy(() -> SafetensorsFile.open(folder)).isInstanceOf(SafetensorsException.class)
                .hasMessageContaining(folder.toString()).hasMessageContaining("is a directory");
        assertThatThrownBy(() -> SafetensorsFile.open(dir.resolve("missing.safetensors")))
                .isInstanceOf(SafetensorsException.class).hasMessageContaining("missing.safetensors");

        // still accepted: empty tensors anywhere, tensors listed out of offset order, no tensors at all
        Path fine = raw("fine.safetensors", "{" + entry("b", "[2]", 8, 16) + "," + entry("e", "[0]", 8, 8) + ","
                + entry("a", "[2]", 0, 8) + "," + entry("z", "[0,3]", 16, 16) + "}", 16);
        try (SafetensorsFile f = SafetensorsFile.open(fine)) {
            assertThat(f.names()).containsExactly("b", "e", "a", "z");
        }
        try (SafetensorsFile f = SafetensorsFile.open(raw("empty.safetensors", "{}", 0))) {
            assertThat(f.names()).isEmpty();
        }
    }

    @Test
    void failedWriteLeavesNothingBehind() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put("a", m.create(new float[] {1}));
            t.put("s", m.create("text")); // a string array cannot be stored
            Path p = dir.resolve("x.safetensors");
            assertThatThrownBy(() -> SafetensorsWriter.write(p, t, Map.of())).hasMessageContaining("tensor 's'");
            try (var files = Files.list(dir)) {
                assertThat(files).isEmpty();
            }
        }
    }
}
