package ai.lorapar.importance;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedDataset;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.engine.TrainingOps;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.lora.PerExampleGradients;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.testing.DeviceTest;
import ai.lorapar.train.Gradients;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The batched scorer against the reference's definition, computed here independently: one forward and
 * one backward pass per example, g·φ and (g·φ)² summed on the host in double precision. On the tiny
 * llama fixture (fp32) with the byte-level tokenizer, examples of different lengths (padding) and a
 * batch size that does not divide N.
 */
class ImportanceScorerTest extends DeviceTest {
    private static TextTokenizer tokenizer;

    /** Largest |batched − naive| of a tensor, relative to the tensor's largest naive importance. */
    protected double tolerance() {
        return 1e-5;
    }

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = TextTokenizer.load(resource("/fixtures/models/byte-tokenizer"));
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    static Path resource(String path) throws URISyntaxException {
        return Paths.get(ImportanceScorerTest.class.getResource(path).toURI());
    }

    private DecoderModel llama() throws Exception {
        return DecoderModel.load(resource("/fixtures/models/llama/model"), manager, DataType.FLOAT32);
    }

    private LoraModel lora(DecoderModel model, LoraInit init) {
        return LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4).alpha(16)
                .init(init).gaussianStd(0.05).seed(11).build(), manager);
    }

    private static ExampleEncoder encoder() {
        return ExampleEncoder.builder(tokenizer).template(PromptTemplate.chatMl()).maxLength(96).build();
    }

    /** Seven examples of quite different lengths (so batches are padded). */
    static List<Example> examples() {
        return List.of(
                Example.of("e0", "What is 2+3?", "5"),
                Example.of("e1", "Name a colour.", "Blue, like the sky on a clear day."),
                Example.of("e2", "Tom has 3 apples and buys 4 more. How many?", "3 + 4 = 7. #### 7"),
                Example.of("e3", "Hi", "Hello there!"),
                Example.of("e4", "Spell cat backwards.", "tac"),
                Example.of("e5", "A train goes 60 km in 1 h. How far in 3 h?", "60 * 3 = 180 km. #### 180"),
                Example.of("e6", "Is ice cold?", "Yes."));
    }

    private static float[] host(NDArray a) {
        return a.toType(DataType.FLOAT32, true).toFloatArray();
    }

    /**
     * The reference loop, written out: per example one batch of one row, forward (no dropout), its mean
     * answer-token loss, backward, then s1 += g·φ, s2 += (g·φ)² on the host; I = |s1 − s2/2| / N.
     */
    private Map<String, double[]> naive(LoraModel lora, List<EncodedExample> chosen, long padId) {
        Map<String, NDArray> params = lora.parameters();
        Map<String, double[]> s1 = new LinkedHashMap<>();
        Map<String, double[]> s2 = new LinkedHashMap<>();
        Map<String, float[]> phi = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            phi.put(e.getKey(), host(e.getValue()));
            s1.put(e.getKey(), new double[(int) e.getValue().size()]);
            s2.put(e.getKey(), new double[(int) e.getValue().size()]);
        }
        for (EncodedExample ex : chosen) {
            Gradients.zero(params.values());
            try (NDManager scope = manager.newSubManager(); TokenBatch one = TokenBatch.of(List.of(ex), padId, scope)) {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray logits = lora.model().forward(one.inputIds(), one.attentionMask(), false);
                    gc.backward(CausalLmLoss.mean(logits, one.labels()));
                }
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    float[] g = host(e.getValue().getGradient());
                    float[] p = phi.get(e.getKey());
                    double[] a1 = s1.get(e.getKey());
                    double[] a2 = s2.get(e.getKey());
                    for (int i = 0; i < g.length; i++) {
                        double gp = (double) g[i] * p[i];
                        a1[i] += gp;
                        a2[i] += gp * gp;
                    }
                }
            }
        }
        Gradients.zero(params.values());
        Map<String, double[]> out = new LinkedHashMap<>();
        for (String name : params.keySet()) {
            double[] a1 = s1.get(name);
            double[] a2 = s2.get(name);
            double[] imp = new double[a1.length];
            for (int i = 0; i < imp.length; i++) {
                imp[i] = Math.abs(a1[i] - 0.5 * a2[i]) / chosen.size();
            }
            out.put(name, imp);
        }
        return out;
    }

    /** Largest per-tensor |a − e| / max|e| over all tensors. */
    private static double maxRelativeDifference(ImportanceMap actual, Map<String, double[]> expected) {
        assertThat(actual.names()).containsExactlyElementsOf(expected.keySet());
        double worst = 0;
        for (Map.Entry<String, double[]> e : expected.entrySet()) {
            float[] a = host(actual.get(e.getKey()));
            double[] x = e.getValue();
            double scale = Arrays.stream(x).max().orElse(0);
            assertThat(scale).as("naive importance of " + e.getKey()).isGreaterThan(0);
            double diff = 0;
            for (int i = 0; i < x.length; i++) {
                diff = Math.max(diff, Math.abs(a[i] - x[i]));
            }
            worst = Math.max(worst, diff / scale);
        }
        return worst;
    }

    /** Captures what the scorer selected. */
    static final class Recorder implements ImportanceListener {
        final List<EncodedExample> chosen = new ArrayList<>();
        final List<Example> skipped = new ArrayList<>();
        final List<int[]> progress = new ArrayList<>();

        @Override
        public void progress(String source, int done, int total) {
            progress.add(new int[] {done, total});
        }

        @Override
        public void selected(String source, List<EncodedExample> examples, List<Example> skippedExamples) {
            chosen.addAll(examples);
            skipped.addAll(skippedExamples);
        }
    }

    @ParameterizedTest
    @EnumSource(value = LoraInit.class, names = {"GAUSSIAN", "PISSA", "OLORA"})
    void batchedScoresEqualOneBackwardPerExample(LoraInit init) throws Exception {
        ExampleEncoder enc = encoder();
        Recorder rec = new Recorder();
        try (DecoderModel model = llama(); LoraModel lora = lora(model, init)) {
            ImportanceScorer scorer = ImportanceScorer.builder().encoder(enc).examples(100, 42).batchSize(3)
                    .listener(rec).build();
            try (ImportanceMap batched = scorer.score(lora, SystemLabel.SYSTEM_1, examples())) {
                assertThat(batched.numExamples()).isEqualTo(7);
                assertThat(rec.chosen).hasSize(7);
                assertThat(rec.chosen.stream().mapToInt(EncodedExample::length).distinct().count()).isGreaterThan(4);
                assertThat(rec.progress).extracting(p -> p[0]).containsExactly(3, 6, 7);
                assertThat(lora.parameters().get("model.layers.0.self_attn.q_proj.lora_A").getGradient().abs().max()
                        .getFloat()).as("the shared A gets no gradient from the batched pass").isZero();
                double rel = maxRelativeDifference(batched, naive(lora, rec.chosen, enc.padId()));
                System.err.printf("importance %s on %s: batched vs one backward per example, max rel diff %.3g%n", init,
                        device(), rel);
                assertThat(rel).isLessThanOrEqualTo(tolerance());
            }
        }
    }

    /**
     * With a bf16 base on the GPU JNI, the fused per-example node (its bf16 products with split fp32
     * factors, {@code train_lora.cc}) is as close to the fp32 scores as per-row copies of A and B through
     * fp32 batched products are: both differ from them by the bf16 rounding of the base model's
     * activations, the fused node by no more (the fp32 equality with one backward per example is
     * {@link #batchedScoresEqualOneBackwardPerExample}).
     */
    @Test
    void theFusedPerExampleNodeIsAsCloseToFp32AsRowCopiesWithABf16Base() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(device().isGpu()
                && TrainingOps.has(manager.getEngine(), TrainingOps.LORA_ROWS), "needs the GPU JNI's fused per-example node");
        ExampleEncoder enc = encoder();
        ImportanceScorer scorer = ImportanceScorer.builder().encoder(enc).examples(100, 42).batchSize(3).build();
        Map<String, float[]> fp32 = new LinkedHashMap<>();
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN);
                ImportanceMap m = scorer.score(lora, SystemLabel.SYSTEM_1, examples())) {
            for (String name : m.names()) {
                fp32.put(name, host(m.get(name)));
            }
        }
        try (DecoderModel model = DecoderModel.load(resource("/fixtures/models/llama/model"), manager, DataType.BFLOAT16);
                LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            double fused;
            double copies;
            try (ImportanceMap m = scorer.score(lora, SystemLabel.SYSTEM_1, examples())) {
                fused = maxRelative(m, fp32);
            }
            String before = System.setProperty(PerExampleGradients.MODE_PROPERTY, "copies");
            try (ImportanceMap m = scorer.score(lora, SystemLabel.SYSTEM_1, examples())) {
                copies = maxRelative(m, fp32);
            } finally {
                if (before == null) {
                    System.clearProperty(PerExampleGradients.MODE_PROPERTY);
                } else {
                    System.setProperty(PerExampleGradients.MODE_PROPERTY, before);
                }
            }
            System.err.printf("importance, bf16 base vs fp32 scores, max rel diff: fused per-example node %.3g,"
                    + " row copies %.3g%n", fused, copies);
            assertThat(fused).isLessThanOrEqualTo(Math.max(1.25 * copies, 1e-3));
        }
    }

    /** Largest |a − b| of a tensor relative to b's largest |value|, over all tensors. */
    private static double maxRelative(ImportanceMap a, Map<String, float[]> b) {
        double worst = 0;
        for (Map.Entry<String, float[]> e : b.entrySet()) {
            float[] x = host(a.get(e.getKey()));
            float[] y = e.getValue();
            double max = 0;
            double diff = 0;
            for (int i = 0; i < y.length; i++) {
                max = Math.max(max, Math.abs(y[i]));
                diff = Math.max(diff, Math.abs(x[i] - y[i]));
            }
            worst = Math.max(worst, diff / Math.max(max, 1e-30));
        }
        return worst;
    }

    @Test
    void theEncodedOverloadScoresTheSameAsTheExampleOne() throws Exception {
        ExampleEncoder enc = encoder();
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            ImportanceScorer scorer = ImportanceScorer.builder().encoder(enc).examples(5, 3).batchSize(2).build();
            try (ImportanceMap a = scorer.score(lora, examples());
                    ImportanceMap b = scorer.score(lora, enc.encodeAll(examples()))) {
                assertThat(a.numExamples()).isEqualTo(5);
                assertThat(b.numExamples()).isEqualTo(5);
                for (String name : a.names()) {
                    assertThat(host(a.get(name))).as(name).containsExactly(host(b.get(name)));
                }
            }
        }
    }

    @Test
    void seededSamplingIsReproducibleAndMoreThanTheDataUsesAll() throws Exception {
        int[] first = ImportanceScorer.sampleOrder(50, 10, 42);
        assertThat(ImportanceScorer.sampleOrder(50, 10, 42)).containsExactly(first);
        assertThat(first).hasSize(50);
        assertThat(new HashSet<>(Arrays.stream(first).boxed().toList())).hasSize(50); // a permutation
        assertThat(Arrays.copyOf(ImportanceScorer.sampleOrder(50, 10, 43), 10)).isNotEqualTo(Arrays.copyOf(first, 10));
        assertThat(ImportanceScorer.sampleOrder(5, 9, 42)).containsExactly(0, 1, 2, 3, 4);

        ExampleEncoder enc = encoder();
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            Recorder r1 = new Recorder();
            Recorder r2 = new Recorder();
            try (ImportanceMap a = ImportanceScorer.builder().encoder(enc).examples(4, 9).batchSize(4).listener(r1).build()
                    .score(lora, examples());
                    ImportanceMap b = ImportanceScorer.builder().encoder(enc).examples(4, 9).batchSize(4).listener(r2)
                            .build().score(lora, examples())) {
                assertThat(a.numExamples()).isEqualTo(4);
                assertThat(r2.chosen).isEqualTo(r1.chosen);
                int[] order = ImportanceScorer.sampleOrder(7, 4, 9);
                List<Example> expected = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    expected.add(examples().get(order[i]));
                }
                assertThat(r1.chosen).extracting(EncodedExample::example).containsExactlyElementsOf(expected);
                for (String name : a.names()) {
                    assertThat(host(a.get(name))).as(name).containsExactly(host(b.get(name)));
                }
            }
            try (ImportanceMap all = ImportanceScorer.builder().encoder(enc).examples(1000, 9).build()
                    .score(lora, examples())) {
                assertThat(all.numExamples()).isEqualTo(7);
            }
        }
    }

    @Test
    void standardInitIsRefusedWithTheReason() throws Exception {
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.STANDARD)) {
            ImportanceScorer scorer = ImportanceScorer.builder().encoder(encoder()).build();
            assertThatThrownBy(() -> scorer.score(lora, SystemLabel.SYSTEM_1, examples()))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("System1")
                    .hasMessageContaining("every LoRA B matrix is zero")
                    .hasMessageContaining("exactly 0")
                    .hasMessageContaining("GAUSSIAN")
                    .hasMessageContaining("PISSA")
                    .hasMessageContaining("OLORA");
        }
    }

    @Test
    void emptySystemIsRefusedNamingIt() throws Exception {
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            ImportanceScorer scorer = ImportanceScorer.builder().encoder(encoder()).build();
            assertThatThrownBy(() -> scorer.score(lora, SystemLabel.SYSTEM_2, List.of()))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("System2")
                    .hasMessageContaining("empty");
            assertThatThrownBy(() -> ImportanceScorer.builder().build().score(lora, examples()))
                    .hasMessageContaining("encoder");
        }
    }

    @Test
    void tooLongExamplesAreSkippedCountedAndReplaced() throws Exception {
        ExampleEncoder shortEnc = ExampleEncoder.builder(tokenizer).maxLength(48).build();
        List<Example> data = new ArrayList<>(examples());
        data.add(3, Example.of("long", "x".repeat(60) + "?", "y"));
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            Recorder rec = new Recorder();
            try (ImportanceMap m = ImportanceScorer.builder().encoder(shortEnc).batchSize(4).listener(rec).build()
                    .score(lora, data)) {
                assertThat(m.numExamples()).isEqualTo(7);
                assertThat(rec.skipped).extracting(Example::id).containsExactly("long");
            }
            // a sample of 7 of the 8: when the long one is drawn, the next of the shuffle replaces it
            Recorder rec2 = new Recorder();
            long seed = seedThatDraws(8, 7, 3);
            try (ImportanceMap m = ImportanceScorer.builder().encoder(shortEnc).examples(7, seed).listener(rec2).build()
                    .score(lora, data)) {
                assertThat(m.numExamples()).isEqualTo(7);
                assertThat(rec2.skipped).extracting(Example::id).containsExactly("long");
            }
            List<Example> allLong = List.of(Example.of("l1", "x".repeat(60), "y"), Example.of("l2", "z".repeat(70), "w"));
            assertThatThrownBy(() -> ImportanceScorer.builder().encoder(shortEnc).build()
                    .score(lora, SystemLabel.SYSTEM_1, allLong))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("System1")
                    .hasMessageContaining("2 were skipped as longer than 48 tokens")
                    .hasMessageContaining("maxLength");
        }
    }

    /** A seed whose sample of n of size includes index {@code index}. */
    private static long seedThatDraws(int size, int n, int index) {
        for (long s = 0; ; s++) {
            int[] o = ImportanceScorer.sampleOrder(size, n, s);
            for (int i = 0; i < n; i++) {
                if (o[i] == index) {
                    return s;
                }
            }
        }
    }

    @Test
    void idsOutsideTheVocabularyNameTheExample() throws Exception {
        try (DecoderModel model = llama(); LoraModel lora = lora(model, LoraInit.GAUSSIAN)) {
            EncodedExample ok = encoder().encode(examples().get(0));
            EncodedExample bad = new EncodedExample(Example.of("bad", "q", "a"), new long[] {256, 65, 400, 66, 257}, 2,
                    false);
            assertThatThrownBy(() -> ImportanceScorer.builder().build()
                    .score(lora, new EncodedDataset(List.of(ok, bad), List.of(), 0)))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'bad'")
                    .hasMessageContaining("token id 400")
                    .hasMessageContaining("vocabulary of 320");
        }
        // a model whose vocabulary is smaller than the tokenizer's: the encoder checks against the model
        try (DecoderModel small = DecoderModel.random(smallVocabulary(250), manager, DataType.FLOAT32, 1);
                LoraModel lora = lora(small, LoraInit.GAUSSIAN)) {
            assertThatThrownBy(() -> ImportanceScorer.builder().encoder(encoder()).build()
                    .score(lora, List.of(Example.of("only", "Q", "A"))))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'only'")
                    .hasMessageContaining("outside the model's vocabulary of 250");
        }
    }

    private static ModelConfig smallVocabulary(int vocab) throws IOException, URISyntaxException {
        Path config = resource("/fixtures/models/llama/model").resolve("config.json");
        JsonObject j = JsonParser.parseString(Files.readString(config)).getAsJsonObject();
        j.addProperty("vocab_size", vocab);
        j.remove("pad_token_id");
        return ModelConfig.fromJson(j, "llama fixture with a vocabulary of " + vocab);
    }
}
