package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Fixture models, the byte-level tokenizer and small arithmetic examples for the trainer tests. */
final class SftFixtures {
    private SftFixtures() {}

    static Path resource(String path) {
        URL url = SftFixtures.class.getResource(path);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + path);
        }
        try {
            return Paths.get(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path model(String name) {
        return resource("/fixtures/models/" + name + "/model");
    }

    static DecoderModel load(String name, NDManager m, DataType dtype) throws IOException {
        return DecoderModel.load(model(name), m, dtype);
    }

    static TextTokenizer tokenizer() throws IOException {
        return TextTokenizer.load(resource("/fixtures/models/byte-tokenizer"));
    }

    /** Plain template, at most 64 tokens (the fixtures hold 128 positions), vocabulary checked. */
    static ExampleEncoder encoder(TextTokenizer tk) {
        return ExampleEncoder.builder(tk).maxLength(64).vocabSize(320).build();
    }

    /** {@code n} arithmetic questions with answers of varying lengths. */
    static List<Example> examples(int n, long seed) {
        Random r = new Random(seed);
        List<Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int a = r.nextInt(90) + 1;
            int b = r.nextInt(90) + 1;
            String q = (i % 3 == 0 ? "Add " : "What is ") + a + " and " + b + "?";
            String ans = (i % 2 == 0) ? Integer.toString(a + b) : a + " + " + b + " = " + (a + b) + ". #### " + (a + b);
            out.add(Example.of("ex" + i, q, ans));
        }
        return out;
    }

    /** Random boolean masks (about {@code share} true) for every parameter, on {@code m}. */
    static Map<String, NDArray> randomMasks(Map<String, NDArray> params, double share, long seed, NDManager m) {
        Random r = new Random(seed);
        Map<String, NDArray> masks = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            Shape s = e.getValue().getShape();
            boolean[] b = new boolean[(int) s.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = r.nextDouble() < share;
            }
            masks.put(e.getKey(), m.create(b, s));
        }
        return masks;
    }

    /** Host copies of every parameter. */
    static Map<String, float[]> snapshot(Map<String, NDArray> params) {
        Map<String, float[]> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, v.toType(DataType.FLOAT32, true).toFloatArray()));
        return out;
    }

    /**
     * The largest difference of two snapshots ({@link #snapshot}) over the tensors, each relative to the largest
     * magnitude of its tensor in {@code a}.
     */
    static double maxRelDiff(Map<String, float[]> a, Map<String, float[]> b) {
        double worst = 0;
        for (String k : a.keySet()) {
            float[] x = a.get(k);
            float[] y = b.get(k);
            double scale = 0;
            double diff = 0;
            for (int i = 0; i < x.length; i++) {
                scale = Math.max(scale, Math.abs(x[i]));
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
            }
            worst = Math.max(worst, diff / Math.max(scale, 1e-12));
        }
        return worst;
    }

    /** {@code dst ← values} in place. */
    static void setValues(NDArray dst, float[] values) {
        try (NDArray src = dst.getManager().create(values, dst.getShape())) {
            dst.set(new NDIndex("..."), src);
        }
    }
}
