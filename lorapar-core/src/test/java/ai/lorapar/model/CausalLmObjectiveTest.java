package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.train.Gradients;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The loss at answer positions only ({@link CausalLmObjective}, {@link DecoderModel#tokenNll}, chunked)
 * against {@link CausalLmLoss} of the full logits, on the qwen2 fixture with LoRA: values and the
 * gradients of every LoRA parameter within 1e-5 relative (fp32, CPU).
 */
class CausalLmObjectiveTest {
    static final String NAME = "qwen2";

    /** Host copy of an int64 [B, T] array. */
    static long[] longs(NDArray a) {
        return a.toType(DataType.INT64, false).toLongArray();
    }

    @Test
    void answerPositionsAreTheShiftedCountedLabels() {
        long[] labels = {-100, 4, 5, -100, -100, 6, 7, 8, -100};
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                AnswerPositions a = AnswerPositions.fromLabels(labels, 3, 3, m)) {
            long[] want = naive(labels, 3, 3);
            assertThat(want).containsExactly(0, 1, 4, 6);
            assertThat(a.positions().toLongArray()).containsExactly(want);
            assertThat(a.count()).isEqualTo(want.length);
            long[] targets = a.targets().toLongArray();
            for (int i = 0; i < want.length; i++) {
                assertThat(targets[i]).isEqualTo(labels[(int) want[i] + 1]);
            }
            assertThat(a.perRow()).containsExactly(2, 1, 1);
            assertThat(a.exampleMeanWeights().toFloatArray()).containsExactly(1f / 6, 1f / 6, 1f / 3, 1f / 3);
        }
        assertThatThrownBy(() -> AnswerPositions.fromLabels(labels, 2, 3, null)).isInstanceOf(
                IllegalArgumentException.class).hasMessageContaining("batch 2 x length 3");
        long[] bad = {-100, -7};
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            assertThatThrownBy(() -> AnswerPositions.fromLabels(bad, 1, 2, m)).hasMessageContaining("label -7 at row 0");
        }
    }

    @Test
    void aTokenBatchGivesTheAnswerPositionsOfItsLabels() {
        ai.lorapar.data.Example ex = ai.lorapar.data.Example.of("x", "q", "a");
        ai.lorapar.data.EncodedExample a = new ai.lorapar.data.EncodedExample(ex, new long[] {1, 2, 3, 4, 5}, 2, false);
        ai.lorapar.data.EncodedExample b = new ai.lorapar.data.EncodedExample(ex, new long[] {6, 7, 8}, 1, false);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                ai.lorapar.data.TokenBatch batch = ai.lorapar.data.TokenBatch.of(java.util.List.of(a, b), 0, m);
                AnswerPositions pos = batch.answerPositions(m)) {
            long[] labels = batch.labels().toLongArray();
            assertThat(pos.positions().toLongArray()).containsExactly(naive(labels, 2, 5));
            assertThat(pos.count()).isEqualTo(batch.answerTokens()); // a prompt never starts with an answer token
            assertThat(pos.targets().toLongArray()).containsExactly(3, 4, 5, 7, 8);
        }
    }

    private static long[] naive(long[] labels, int b, int t) {
        java.util.List<Long> out = new java.util.ArrayList<>();
        for (int i = 0; i < b; i++) {
            for (int j = 0; j + 1 < t; j++) {
                if (labels[i * t + j + 1] != -100) {
                    out.add((long) i * t + j);
                }
            }
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    @Test
    void hiddenStatesThroughTheHeadAreTheLogits() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, DataType.FLOAT32)) {
            NDArray ids = Fixtures.ref(NAME, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", m);
            NDArray logits = model.forward(ids, mask, false);
            NDArray viaHidden = model.logitsAt(model.forwardHidden(ids, mask, false, true));
            assertThat(Fixtures.maxAbsDiff(viaHidden, logits)).isZero();
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, mask, false, true), logits)).isZero();
        }
    }

    @Test
    void lossAtAnswerPositionsEqualsTheFullLogitsLossWithGradients() throws Exception {
        for (long chunk : new long[] {3, 1 << 20}) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu());
                    DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, DataType.FLOAT32);
                    LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4)
                            .alpha(8).dropout(0).init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(3).build(), m)) {
                model.setLossChunkRows(chunk);
                NDArray ids = Fixtures.ref(NAME, "loss.input_ids", m);
                NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", m);
                NDArray labels = Fixtures.ref(NAME, "loss.labels", m);
                int b = (int) ids.getShape().get(0);
                int t = (int) ids.getShape().get(1);
                try (AnswerPositions answers = AnswerPositions.fromLabels(longs(labels), b, t, m)) {
                    assertThat(answers.count()).isPositive();
                    Result full = lossAndGrads(lora, () -> CausalLmLoss.mean(model.forward(ids, mask, true), labels));
                    Result mine = lossAndGrads(lora,
                            () -> CausalLmObjective.meanOfExampleMeans(model, ids, mask, answers, true, true));
                    System.err.printf("chunk %d: full-logits loss %.7f, answer-position loss %.7f%n", chunk, full.loss,
                            mine.loss);
                    assertThat((double) mine.loss).isCloseTo(full.loss, org.assertj.core.data.Offset.offset(
                            1e-5 * Math.abs(full.loss)));
                    assertSameGrads(full.grads, mine.grads, 1e-5f);

                    // per-token log-probabilities at the positions equal CausalLmLoss.tokenLogProbs there
                    NDArray lp = CausalLmObjective.tokenLogProbs(model, ids, mask, answers, false, true);
                    NDArray all = CausalLmLoss.tokenLogProbs(model.forward(ids, mask, false), labels); // [B, T-1]
                    long[] pos = answers.positions().toLongArray();
                    long[] rowsCols = new long[pos.length];
                    for (int i = 0; i < pos.length; i++) {
                        rowsCols[i] = pos[i] / t * (t - 1) + pos[i] % t; // index into the flattened [B, T-1]
                    }
                    NDArray want = all.reshape(-1).get(m.create(rowsCols));
                    assertThat(Fixtures.maxAbsDiff(lp, want)).isLessThan(1e-5f);
                    // the sum is the sum of the per-token losses
                    NDArray sum = CausalLmObjective.sumTokenNll(model, ids, mask, answers, false, true);
                    assertThat((double) sum.getFloat()).isCloseTo(-want.sum().getFloat(),
                            org.assertj.core.data.Offset.offset(1e-4));
                }
            }
        }
    }

    /** The answer-position loss, chunked, leaves no array in the model's, the caller's or the positions' manager. */
    @Test
    void noArraysAccumulate() throws Exception {
        try (NDManager root = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), root, DataType.FLOAT32);
                NDManager caller = root.newSubManager()) {
            model.setLossChunkRows(2);
            NDArray ids = Fixtures.ref(NAME, "loss.input_ids", caller);
            NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", caller);
            NDArray labels = Fixtures.ref(NAME, "loss.labels", caller);
            int b = (int) ids.getShape().get(0);
            int t = (int) ids.getShape().get(1);
            try (AnswerPositions answers = AnswerPositions.fromLabels(longs(labels), b, t, caller)) {
                int modelArrays = model.manager().getManagedArrays().size();
                int callerArrays = caller.getManagedArrays().size();
                for (int i = 0; i < 3; i++) {
                    CausalLmObjective.meanOfExampleMeans(model, ids, mask, answers, true, true).close();
                    CausalLmObjective.tokenLogProbs(model, ids, mask, answers, false, true).close();
                }
                assertThat(model.manager().getManagedArrays()).hasSize(modelArrays);
                assertThat(caller.getManagedArrays()).hasSize(callerArrays);
            }
        }
    }

    @Test
    void tokenNllChecksShapes() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, DataType.FLOAT32)) {
            long h = model.config().hiddenSize();
            assertThatThrownBy(() -> model.tokenNll(m.zeros(new ai.djl.ndarray.types.Shape(2, h + 1)),
                    m.zeros(new ai.djl.ndarray.types.Shape(2), DataType.INT64))).hasMessageContaining("must be [N, " + h);
        }
    }

    /** A loss value and host copies of the LoRA gradients. */
    record Result(float loss, Map<String, float[]> grads) {}

    /** Loss value and host copies of the LoRA gradients of one forward + backward. */
    static Result lossAndGrads(LoraModel lora, java.util.function.Supplier<NDArray> loss) {
        Gradients.zero(lora.parameters().values());
        float value;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray l = loss.get();
            value = l.toType(DataType.FLOAT32, false).getFloat();
            gc.backward(l);
        }
        Map<String, float[]> grads = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
            try (NDArray g = e.getValue().getGradient()) {
                grads.put(e.getKey(), g.toType(DataType.FLOAT32, true).toDevice(Device.cpu(), false).toFloatArray());
            }
        }
        return new Result(value, grads);
    }

    /** Every gradient within {@code rel} of the largest magnitude of the expected tensor. */
    static void assertSameGrads(Map<String, float[]> want, Map<String, float[]> got, float rel) {
        assertThat(got.keySet()).containsExactlyElementsOf(want.keySet());
        double worst = 0;
        for (String k : want.keySet()) {
            float[] w = want.get(k);
            float[] g = got.get(k);
            assertThat(g).as(k).hasSameSizeAs(w);
            double scale = 0;
            double d = 0;
            for (int i = 0; i < w.length; i++) {
                scale = Math.max(scale, Math.abs(w[i]));
                d = Math.max(d, Math.abs(g[i] - w[i]));
            }
            assertThat(scale).as(k + " has a gradient").isPositive();
            worst = Math.max(worst, d / scale);
            assertThat(d).as(k).isLessThanOrEqualTo(rel * scale);
        }
        System.err.printf("worst relative gradient difference %.3g (bound %.1g)%n", worst, rel);
    }
}
