package ai.lorapar.examples;

import ai.djl.ndarray.types.Shape;

import java.util.LinkedHashMap;
import java.util.Map;

/** LoRA tensor shapes of real decoder architectures, for benchmarks and demos (QKVGUD targets). */
public final class LoraShapes {
    private LoraShapes() {}

    /** Qwen2.5-0.5B: 24 layers, hidden 896, 14 heads / 2 KV heads of 64, MLP 4864. */
    public static Map<String, Shape> qwen25Half(int rank) {
        return qkvgud(24, 896, 128, 4864, rank);
    }

    /** LLaMA-2-7B: 32 layers, hidden 4096, 32 heads of 128 (no GQA), MLP 11008. */
    public static Map<String, Shape> llama2_7b(int rank) {
        return qkvgud(32, 4096, 4096, 11008, rank);
    }

    /** Q, K, V, gate, up and down adapters of rank {@code r} in every layer, keyed by Hugging Face module names. */
    public static Map<String, Shape> qkvgud(int layers, int hidden, int kvDim, int intermediate, int r) {
        Map<String, Shape> shapes = new LinkedHashMap<>();
        for (int l = 0; l < layers; l++) {
            String p = "model.layers." + l + ".";
            add(shapes, p + "self_attn.q_proj", hidden, hidden, r);
            add(shapes, p + "self_attn.k_proj", hidden, kvDim, r);
            add(shapes, p + "self_attn.v_proj", hidden, kvDim, r);
            add(shapes, p + "mlp.gate_proj", hidden, intermediate, r);
            add(shapes, p + "mlp.up_proj", hidden, intermediate, r);
            add(shapes, p + "mlp.down_proj", intermediate, hidden, r);
        }
        return shapes;
    }

    private static void add(Map<String, Shape> shapes, String module, int in, int out, int r) {
        shapes.put(module + ".lora_A", new Shape(r, in));
        shapes.put(module + ".lora_B", new Shape(out, r));
    }

    /** Total elements. */
    public static long count(Map<String, Shape> shapes) {
        return shapes.values().stream().mapToLong(Shape::size).sum();
    }
}
