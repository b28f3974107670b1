package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.io.SafetensorsWriter;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Op count of a decode step, without a GPU: during sampling on CPU the model's debugging probe counts
 * the arrays every layer creates (each NDArray op that returns an array makes one; the two in-place
 * KV-cache writes come on top). On a GPU each op is a JNI call and most a kernel launch, so this is
 * the number that bounds decoding speed at small batch.
 */
class DecodeOpCountTest {
    /** Arrays created per layer per decode step (one new token), sampling with top-k/top-p off. */
    static double decodeOpsPerLayer(String fixture) throws Exception {
        AtomicLong layers = new AtomicLong();
        AtomicLong arrays = new AtomicLong();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(fixture), m)) {
            DecoderModel.probe = (i, tokens, created) -> {
                if (tokens == 1) {
                    layers.incrementAndGet();
                    arrays.addAndGet(created);
                }
            };
            try {
                new Generator(model).generate(List.of(new long[] {256, 1, 2, 3}, new long[] {256, 5}),
                        SamplingConfig.sample(6, 1.0, 3).withStopTokenIds(List.of()).withPadTokenId(0));
            } finally {
                DecoderModel.probe = null;
            }
        }
        assertThat(layers.get()).isPositive();
        return (double) arrays.get() / layers.get();
    }

    @Test
    void decodeStepOpsPerLayer() throws Exception {
        for (String fixture : new String[] {"qwen2", "llama"}) {
            double ops = decodeOpsPerLayer(fixture);
            System.err.printf("OPS %s: %.1f arrays created per layer per decode step (+2 in-place cache writes)%n",
                    fixture, ops);
            // a regression guard: 48 per layer since the fused projections and cached scalars (2026-11-23)
            assertThat(ops).isLessThanOrEqualTo(48.0);
        }
    }

    /**
     * Wall time per decode step of a tiny model with many layers (the qwen2 fixture's shape, 24
     * layers, random weights) on the CPU, where, as on a GPU at small batch, the time is mostly per-op
     * overhead. A measurement, not a bound: it prints a TIMING line.
     */
    @Test
    void decodeStepWallTimeOfATinyDeepModel(@TempDir Path dir) throws Exception {
        int layersN = 24;
        JsonObject cfg = JsonParser.parseString(Files.readString(Fixtures.model("qwen2").resolve("config.json")))
                .getAsJsonObject();
        cfg.addProperty("num_hidden_layers", layersN);
        cfg.remove("layer_types");
        cfg.addProperty("max_position_embeddings", 256);
        Files.writeString(dir.resolve("config.json"), cfg.toString(), StandardCharsets.UTF_8);
        long h = cfg.get("hidden_size").getAsLong();
        long heads = cfg.get("num_attention_heads").getAsLong();
        long kv = cfg.get("num_key_value_heads").getAsLong();
        long d = h / heads;
        long ffn = cfg.get("intermediate_size").getAsLong();
        long vocab = cfg.get("vocab_size").getAsLong();
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Map<String, NDArray> t = new LinkedHashMap<>();
            t.put("model.embed_tokens.weight", m.randomNormal(0, 0.1f, new Shape(vocab, h), DataType.FLOAT32));
            for (int i = 0; i < layersN; i++) {
                String p = "model.layers." + i + ".";
                t.put(p + "input_layernorm.weight", m.ones(new Shape(h)));
                t.put(p + "post_attention_layernorm.weight", m.ones(new Shape(h)));
                long[][] shapes = {{heads * d, h}, {kv * d, h}, {kv * d, h}};
                String[] qkv = {"q", "k", "v"};
                for (int j = 0; j < 3; j++) {
                    t.put(p + "self_attn." + qkv[j] + "_proj.weight", m.randomNormal(0, 0.1f, new Shape(shapes[j]), DataType.FLOAT32));
                    t.put(p + "self_attn." + qkv[j] + "_proj.bias", m.randomNormal(0, 0.1f, new Shape(shapes[j][0]), DataType.FLOAT32));
                }
                t.put(p + "self_attn.o_proj.weight", m.randomNormal(0, 0.1f, new Shape(h, heads * d), DataType.FLOAT32));
                t.put(p + "mlp.gate_proj.weight", m.randomNormal(0, 0.1f, new Shape(ffn, h), DataType.FLOAT32));
                t.put(p + "mlp.up_proj.weight", m.randomNormal(0, 0.1f, new Shape(ffn, h), DataType.FLOAT32));
                t.put(p + "mlp.down_proj.weight", m.randomNormal(0, 0.1f, new Shape(h, ffn), DataType.FLOAT32));
            }
            t.put("model.norm.weight", m.ones(new Shape(h)));
            SafetensorsWriter.write(dir.resolve("model.safetensors"), t, Map.of("format", "pt"));
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(dir, m)) {
            List<long[]> prompts = new ArrayList<>();
            for (int b = 0; b < 8; b++) {
                prompts.add(new long[] {1 + b, 2, 3, 4, 5, 6, 7, 8});
            }
            Generator g = new Generator(model);
            SamplingConfig warm = SamplingConfig.sample(8, 1.0, 1).withStopTokenIds(List.of()).withPadTokenId(0);
            g.generate(prompts, warm);
            int steps = 48;
            SamplingConfig cfgS = SamplingConfig.sample(steps, 1.0, 2).withStopTokenIds(List.of()).withPadTokenId(0);
            long t0 = System.nanoTime();
            g.generate(prompts, cfgS);
            double ms = (System.nanoTime() - t0) / 1e6;
            System.err.printf("TIMING tiny %d-layer model, batch 8, CPU: %.2f ms per generated token step (%.3f ms per layer)%n",
                    layersN, ms / steps, ms / steps / layersN);
        }
    }
}
