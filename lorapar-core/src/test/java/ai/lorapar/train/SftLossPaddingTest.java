package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.AnswerPositions;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The padded shapes of {@link SftConfig#cudaGraphs()} change nothing: a batch padded to more positions
 * ({@link TokenBatch#of(List, long, NDManager, int)}) with answer positions padded by weight-0 entries
 * ({@link SftLoss#targets(DecoderModel, TokenBatch, float[], NDManager, int)}) gives the unpadded loss and LoRA
 * gradients (fp32, CPU, fixture LLaMA, 1e-6 relative), and the padding entries are what they say.
 */
class SftLossPaddingTest {
    @Test
    void paddingEntriesPointAtPositionZeroWithWeightZero() {
        long[] labels = {-100, 4, 5, -100, -100, 6};
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                AnswerPositions a = AnswerPositions.fromLabels(labels, 2, 3, m, 7)) {
            assertThat(a.count()).isEqualTo(3);
            assertThat(a.size()).isEqualTo(7);
            assertThat(a.positions().toLongArray()).containsExactly(0, 1, 4, 0, 0, 0, 0);
            assertThat(a.targets().toLongArray()).containsExactly(4, 5, 6, 0, 0, 0, 0);
            assertThat(a.exampleMeanWeights().toFloatArray()).containsExactly(0.25f, 0.25f, 0.5f, 0, 0, 0, 0);
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                AnswerPositions a = AnswerPositions.fromLabels(labels, 2, 3, m, 2)) {
            assertThat(a.size()).as("never fewer than the counted positions").isEqualTo(3);
        }
    }

    @Test
    void graphShapesHaveAtMostFourPositionSizesPerRowLength() {
        // small batches: multiples of 256
        assertThat(SftTrainer.graphPositions(3, 64, 1)).isEqualTo(256);
        assertThat(SftTrainer.graphPositions(3, 64, 190)).isEqualTo(256);
        // 8 x 512 = 4096 positions: multiples of 1024, whatever the count
        java.util.Set<Integer> sizes = new java.util.TreeSet<>();
        for (int count = 1; count < 8 * 512; count++) {
            int k = SftTrainer.graphPositions(8, 512, count);
            assertThat(k).isGreaterThanOrEqualTo(count).isLessThanOrEqualTo(8 * 512);
            sizes.add(k);
        }
        assertThat(sizes).containsExactly(1024, 2048, 3072, 4096);
        // the benchmarks' shapes pad nothing: 3/4 of the positions are answers
        assertThat(SftTrainer.graphPositions(4, 512, 1536)).isEqualTo(1536);
        assertThat(SftTrainer.graphPositions(2, 512, 768)).isEqualTo(768);
    }

    @Test
    void aPaddedBatchGivesTheUnpaddedLossAndGradients() throws Exception {
        try (TextTokenizer tk = SftFixtures.tokenizer();
                NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4)
                        .alpha(8).dropout(0).init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(3).build(), m)) {
            List<EncodedExample> rows = SftFixtures.encoder(tk).encodeAll(SftFixtures.examples(3, 4)).examples();
            float[] w = {0.5f, 0.25f, 0.125f};
            Map<String, NDArray> params = lora.parameters();

            TokenBatch plain = TokenBatch.of(rows, 0, m);
            float lossPlain;
            Map<String, float[]> gradPlain;
            try (plain; SftLoss.Targets t = SftLoss.targets(model, plain, w, m)) {
                lossPlain = pass(model, plain, t, params);
                gradPlain = grads(params);
                assertThat(t.answers().size()).isEqualTo(t.answers().count());
            }
            TokenBatch padded = TokenBatch.of(rows, 0, m, 64);
            try (padded; SftLoss.Targets t = SftLoss.targets(model, padded, w, m, 256)) {
                assertThat(padded.length()).isEqualTo(64).isGreaterThan(plain.length());
                assertThat(t.answers().size()).isEqualTo(256);
                assertThat(t.positionWeights().toFloatArray()).hasSize(256);
                float lossPadded = pass(model, padded, t, params);
                assertThat(lossPadded).isCloseTo(lossPlain, org.assertj.core.data.Offset.offset(1e-6f * Math.abs(lossPlain)));
                Map<String, float[]> gradPadded = grads(params);
                for (String k : gradPlain.keySet()) {
                    float[] a = gradPlain.get(k);
                    float[] b = gradPadded.get(k);
                    double scale = 0;
                    double diff = 0;
                    for (int i = 0; i < a.length; i++) {
                        scale = Math.max(scale, Math.abs(a[i]));
                        diff = Math.max(diff, Math.abs(a[i] - b[i]));
                    }
                    assertThat(diff).as("gradient of %s", k).isLessThanOrEqualTo(1e-5 * scale);
                }
            }
        }
    }

    private static float pass(DecoderModel model, TokenBatch batch, SftLoss.Targets t, Map<String, NDArray> params) {
        Gradients.zero(params.values());
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray loss = SftLoss.weightedTokenNll(model, batch, t, true);
            gc.backward(loss);
            return loss.getFloat();
        }
    }

    private static Map<String, float[]> grads(Map<String, NDArray> params) {
        Map<String, float[]> out = new java.util.LinkedHashMap<>();
        params.forEach((k, v) -> {
            try (NDArray g = v.getGradient()) {
                out.put(k, g.toFloatArray());
            }
        });
        return out;
    }
}
