package ai.lorapar.examples.embedded;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.io.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Test fixture: a model folder of the embedded tiny model's shape (its tokenizer and config) with random
 * weights N(0, 0.02) under transformers' LLaMA names, so that stages that load a folder can be run before the
 * trained weights exist. Not the trained model.
 */
public final class RandomTinyModel {

    private RandomTinyModel() {
    }

    public static Path write(Path folder, TinyModelConfig shape, long seed) throws IOException {
        EmbeddedDefault.writeModelFiles(folder, shape);
        int vocab = EmbeddedTokenizer.defaultVocabulary().size();
        long h = shape.hiddenSize();
        long kv = (long) shape.numKeyValueHeads() * shape.headDim();
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed((int) seed);
            Map<String, NDArray> w = new LinkedHashMap<>();
            w.put("model.embed_tokens.weight", random(m, vocab, h));
            for (int i = 0; i < shape.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                w.put(p + "input_layernorm.weight", m.ones(new Shape(h)));
                w.put(p + "self_attn.q_proj.weight", random(m, h, h));
                w.put(p + "self_attn.k_proj.weight", random(m, kv, h));
                w.put(p + "self_attn.v_proj.weight", random(m, kv, h));
                w.put(p + "self_attn.o_proj.weight", random(m, h, h));
                w.put(p + "post_attention_layernorm.weight", m.ones(new Shape(h)));
                w.put(p + "mlp.gate_proj.weight", random(m, shape.intermediateSize(), h));
                w.put(p + "mlp.up_proj.weight", random(m, shape.intermediateSize(), h));
                w.put(p + "mlp.down_proj.weight", random(m, h, shape.intermediateSize()));
            }
            w.put("model.norm.weight", m.ones(new Shape(h)));
            if (!shape.tieWordEmbeddings()) {
                w.put("lm_head.weight", random(m, vocab, h));
            }
            SafetensorsWriter.write(folder.resolve("model.safetensors"), w, Map.of("format", "pt"));
        }
        return folder;
    }

    private static NDArray random(NDManager m, long rows, long cols) {
        return m.randomNormal(0f, 0.02f, new Shape(rows, cols), DataType.FLOAT32);
    }
}
