package ai.lorapar.importance;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.InProcessCollective;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Data-parallel importance scoring (issue 15), ranks as threads ({@link InProcessCollective}), CPU, fp32,
 * the fixture LLaMA: W ranks each scoring their share give every rank the map of one process scoring the
 * whole sample, with the same example count; also when a rank has no example at all.
 */
class DataParallelImportanceTest {
    private static TextTokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = TextTokenizer.load(ImportanceScorerTest.resource("/fixtures/models/byte-tokenizer"));
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    /** Device of the ranks' models (CPU; the GPU subclass re-runs on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    private record Scored(Map<String, float[]> values, long examples) {}

    /** One rank: its own model copy and adapters (same seeds), the scorer with batches of 2. */
    private Scored score(Collective c, int n) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device())) {
            DecoderModel model = DecoderModel.load(ImportanceScorerTest.resource("/fixtures/models/llama/model"), m,
                    DataType.FLOAT32);
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4)
                    .alpha(16).init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(11).build(), m)) {
                ExampleEncoder enc = ExampleEncoder.builder(tokenizer).template(PromptTemplate.chatMl()).maxLength(96)
                        .build();
                ImportanceScorer scorer = ImportanceScorer.builder().encoder(enc).examples(n, 5).batchSize(2)
                        .collective(c).build();
                try (ImportanceMap map = scorer.score(lora, SystemLabel.SYSTEM_2, ImportanceScorerTest.examples())) {
                    Map<String, float[]> values = new LinkedHashMap<>();
                    map.tensors().forEach((k, v) -> values.put(k, v.toType(DataType.FLOAT32, true).toFloatArray()));
                    return new Scored(values, map.numExamples());
                }
            }
        }
    }

    /** Every element within 1e-6 of its tensor's largest importance (fp32, other summation orders). */
    private void assertSameMap(Scored actual, Scored expected) {
        assertThat(actual.examples()).isEqualTo(expected.examples());
        assertThat(actual.values().keySet()).isEqualTo(expected.values().keySet());
        for (String k : expected.values().keySet()) {
            float[] e = expected.values().get(k);
            float[] a = actual.values().get(k);
            double max = 0;
            for (float v : e) {
                max = Math.max(max, Math.abs(v));
            }
            assertThat(max).as("%s has non-zero importance", k).isPositive();
            for (int i = 0; i < e.length; i++) {
                assertThat(Math.abs(a[i] - e[i]) / max).as("%s[%d]: %s vs %s", k, i, a[i], e[i]).isLessThan(device().isGpu() ? 1e-5 : 1e-6);
            }
        }
    }

    @Test
    void twoRanksGiveOneProcessMap() throws Exception {
        Scored single = InProcessCollective.run(1, c -> score(c, 7)).get(0);
        assertThat(single.examples()).isEqualTo(7);
        List<Scored> ranks = InProcessCollective.run(2, c -> score(c, 7));
        for (Scored s : ranks) {
            assertSameMap(s, single);
        }
    }

    @Test
    void aRankWithoutExamplesTakesPartWithZeros() throws Exception {
        Scored single = InProcessCollective.run(1, c -> score(c, 3)).get(0);
        List<Scored> ranks = new ArrayList<>(InProcessCollective.run(4, c -> score(c, 3))); // rank 3 scores nothing
        assertThat(single.examples()).isEqualTo(3);
        for (Scored s : ranks) {
            assertSameMap(s, single);
        }
    }
}
