package ai.lorapar.io;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsCheckpointTest {

    static Path fixture(String name) throws URISyntaxException {
        return Paths.get(SafetensorsCheckpointTest.class.getResource("/fixtures/models/" + name + "/model").toURI());
    }

    static void copyFolder(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> s = Files.list(from)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Files.copy(p, to.resolve(p.getFileName()));
            }
        }
    }

    @Test
    void readsShardsListedInTheIndex() throws Exception {
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(fixture("qwen2")); NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(ck.files()).hasSize(3);
            assertThat(ck.names()).contains("model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.bias",
                    "model.norm.weight").doesNotContain("lm_head.weight");
            NDArray bias = ck.loadAs("model.layers.1.self_attn.q_proj.bias", m, DataType.FLOAT32);
            assertThat(bias.getShape().get(0)).isEqualTo(64);
            assertThat(ck.fileOf("model.embed_tokens.weight").path().getFileName().toString())
                    .startsWith("model-0000");
        }
    }

    @Test
    void bf16CheckpointBecomesFp32OrFp16WithoutABf16Array() throws Exception {
        try (SafetensorsCheckpoint bf = SafetensorsCheckpoint.open(fixture("llama_bf16"));
                SafetensorsCheckpoint fp = SafetensorsCheckpoint.open(fixture("llama"));
                NDManager m = NDManager.newBaseManager(Device.cpu())) {
            org.junit.jupiter.api.Assumptions.assumeFalse(m.getEngine().hasCapability("BF16"),
                    "checks the conversion for engines without bf16 (stock DJL); this engine has it");
            String name = "model.layers.0.mlp.down_proj.weight";
            assertThat(bf.info(name).dtype()).isEqualTo(SafetensorsDtype.BF16);
            NDArray wide = bf.loadAs(name, m, DataType.FLOAT32);
            NDArray ref = fp.loadAs(name, m, DataType.FLOAT32);
            assertThat(wide.getDataType()).isEqualTo(DataType.FLOAT32);
            // the bf16 copy is torch's round-to-nearest-even of the fp32 weights: widening gives exactly that
            float[] w = wide.toFloatArray();
            float[] r = ref.toFloatArray();
            for (int i = 0; i < r.length; i++) {
                int b = Float.floatToRawIntBits(r[i]);
                int rounded = ((b + 0x7FFF + ((b >>> 16) & 1)) >>> 16) << 16;
                assertThat(Float.floatToRawIntBits(w[i])).as("element %d", i).isEqualTo(rounded);
            }
            NDArray half = bf.loadAs(name, m, DataType.FLOAT16);
            assertThat(half.getDataType()).isEqualTo(DataType.FLOAT16);
            assertThat(half.toType(DataType.FLOAT32, false).sub(wide).abs().max().getFloat()).isLessThan(1e-3f);
            assertThatThrownBy(() -> bf.loadAs(name, m, DataType.BFLOAT16))
                    .isInstanceOf(SafetensorsException.class).hasMessageContaining("no bf16 capability")
                    .hasMessageContaining(name);
            assertThatThrownBy(() -> bf.fileOf(name).load(name, m)).hasMessageContaining("convert it while loading");
        }
    }

    @Test
    void bf16WideningIsExactBitForBit(@TempDir Path dir) throws Exception {
        short[] bits = {0x3F80, (short) 0xC020, 0x0001, 0x7F80, (short) 0xFF80, 0x0000, (short) 0x8000, 0x7F7F, 0x4049};
        String header = "{\"t\":{\"dtype\":\"BF16\",\"shape\":[" + bits.length + "],\"data_offsets\":[0," + 2 * bits.length
                + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + 2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h);
        for (short s : bits) {
            buf.putShort(s);
        }
        Path f = dir.resolve("bf16.safetensors");
        Files.write(f, buf.array());
        try (SafetensorsFile sf = SafetensorsFile.open(f); NDManager m = NDManager.newBaseManager(Device.cpu())) {
            float[] got = sf.loadAs("t", m, DataType.FLOAT32).toFloatArray();
            for (int i = 0; i < bits.length; i++) {
                assertThat(Float.floatToRawIntBits(got[i])).isEqualTo((bits[i] & 0xFFFF) << 16);
            }
            assertThat(got[0]).isEqualTo(1f);
            assertThat(got[1]).isEqualTo(-2.5f);
            assertThat(got[3]).isEqualTo(Float.POSITIVE_INFINITY);
        }
    }

    /** A sparse file of 2.2 GB: a tensor after the 2 GB mark loads; a single tensor over 2 GB is refused by name. */
    @Test
    void tensorsBeyondTwoGigabytes(@TempDir Path dir) throws Exception {
        long big = 2_200_000_000L;
        String header = "{\"big\":{\"dtype\":\"U8\",\"shape\":[" + big + "],\"data_offsets\":[0," + big + "]},"
                + "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[" + big + "," + (big + 8) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path f = dir.resolve("model.safetensors");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(f,
                java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE,
                java.nio.file.StandardOpenOption.SPARSE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(h.length).put(h).flip();
            ch.write(head, 0);
            ByteBuffer w = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            w.putShort((short) 0x3F80).putShort((short) 0x4000).putShort((short) 0xBF80).putShort((short) 0x4040).flip();
            ch.write(w, 8 + h.length + big);
        }
        assertThat(Files.size(f)).isGreaterThan(Integer.MAX_VALUE);
        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(dir); NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThat(ck.loadAs("w", m, DataType.FLOAT32).toFloatArray()).containsExactly(1f, 2f, -1f, 3f);
            assertThatThrownBy(() -> ck.loadAs("big", m, DataType.UINT8))
                    .hasMessageContaining("'big'").hasMessageContaining("over 2 GB");
        }
    }

    @Test
    void indexErrorsNameTheIndexTheShardAndTheTensor(@TempDir Path dir) throws Exception {
        Path missingShard = dir.resolve("a");
        copyFolder(fixture("qwen2"), missingShard);
        Files.delete(missingShard.resolve("model-00002-of-00003.safetensors"));
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(missingShard)).isInstanceOf(SafetensorsException.class)
                .hasMessageContaining("model.safetensors.index.json")
                .hasMessageContaining("model-00002-of-00003.safetensors").hasMessageContaining("missing");

        Path wrongShard = dir.resolve("b");
        copyFolder(fixture("qwen2"), wrongShard);
        Path index = wrongShard.resolve("model.safetensors.index.json");
        JsonObject j = JsonParser.parseString(Files.readString(index)).getAsJsonObject();
        j.getAsJsonObject("weight_map").addProperty("model.norm.weight", "model-00001-of-00003.safetensors");
        Files.writeString(index, j.toString());
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(wrongShard))
                .hasMessageContaining("'model.norm.weight'").hasMessageContaining("does not hold it");

        Path empty = Files.createDirectories(dir.resolve("c"));
        Files.writeString(empty.resolve("config.json"), "{}");
        assertThatThrownBy(() -> SafetensorsCheckpoint.open(empty)).hasMessageContaining("neither model.safetensors")
                .hasMessageContaining("config.json");

        try (SafetensorsCheckpoint ck = SafetensorsCheckpoint.open(fixture("llama"))) {
            assertThatThrownBy(() -> ck.info("model.layers.9.mlp.up_proj.weight"))
                    .hasMessageContaining("missing tensor 'model.layers.9.mlp.up_proj.weight'");
        }
    }
}
