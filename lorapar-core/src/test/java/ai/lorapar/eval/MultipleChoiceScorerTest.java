package ai.lorapar.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MultipleChoiceScorerTest {

    /** Naive: one unbatched forward pass per choice, log-softmax and the sum over the choice's tokens on the host. */
    private static double naiveSum(DecoderModel model, long[] prompt, long[] cont) {
        try (NDManager s = model.manager().newSubManager()) {
            long[] ids = new long[prompt.length + cont.length];
            System.arraycopy(prompt, 0, ids, 0, prompt.length);
            System.arraycopy(cont, 0, ids, prompt.length, cont.length);
            NDArray logits = model.forward(s.create(ids, new Shape(1, ids.length)), null, false);
            float[] lg = logits.toFloatArray();
            int vocab = (int) logits.getShape().get(2);
            double sum = 0;
            for (int j = 0; j < cont.length; j++) {
                int pos = prompt.length - 1 + j;
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    max = Math.max(max, lg[pos * vocab + v]);
                }
                double z = 0;
                for (int v = 0; v < vocab; v++) {
                    z += Math.exp(lg[pos * vocab + v] - max);
                }
                sum += lg[pos * vocab + (int) cont[j]] - max - Math.log(z);
            }
            return sum;
        }
    }

    @Test
    void scoresEveryChoiceByItsLogLikelihood() throws Exception {
        try (NDManager m = NDManager.newBaseManager();
                DecoderModel model = DecoderModel.load(EvalFixtures.model("llama"), m, DataType.FLOAT32);
                TextTokenizer tk = TextTokenizer.load(EvalFixtures.byteTokenizer())) {
            ExampleEncoder enc = ExampleEncoder.builder(tk).maxLength(100).build();
            List<MultipleChoiceQuestion> qs = List.of(
                    MultipleChoiceQuestion.of("q1", "Capital?", List.of(" Paris", " Rome", " a much longer option"), 1),
                    MultipleChoiceQuestion.mmlu("q2", "2+2?", List.of("3", "4", "5", "22"), 1),
                    MultipleChoiceQuestion.of("q3", "Yes?", List.of(" yes", " no"), 0));
            for (MultipleChoiceScorer.Normalization norm : MultipleChoiceScorer.Normalization.values()) {
                MultipleChoiceScorer.Report r = MultipleChoiceScorer.builder().encoder(enc).normalization(norm)
                        .batchSize(3).build().score(model, qs);
                int correct = 0;
                for (int qi = 0; qi < qs.size(); qi++) {
                    MultipleChoiceQuestion q = qs.get(qi);
                    long[] prompt = enc.encodePrompt(Example.of(q.id(), q.question(), ""));
                    double[] want = new double[q.choices().size()];
                    int best = 0;
                    for (int c = 0; c < want.length; c++) {
                        long[] cont = tk.encode(q.choices().get(c), false);
                        double sum = naiveSum(model, prompt, cont);
                        want[c] = switch (norm) {
                            case SUM -> sum;
                            case TOKEN_MEAN -> sum / cont.length;
                            case BYTE_MEAN -> sum / q.choices().get(c).getBytes(StandardCharsets.UTF_8).length;
                        };
                        if (want[c] > want[best]) {
                            best = c;
                        }
                    }
                    MultipleChoiceScorer.Record rec = r.records().get(qi);
                    assertThat(rec.scores()).as("%s %s", norm, q.id()).containsExactly(want,
                            org.assertj.core.data.Offset.offset(1e-4));
                    assertThat(rec.predicted()).isEqualTo(best);
                    correct += best == q.answer() ? 1 : 0;
                }
                assertThat(r.correct()).isEqualTo(correct);
                assertThat(r.accuracy()).isEqualTo(correct / 3.0);
            }
        }
    }

    @Test
    void mmluFormatAndBadQuestions() {
        MultipleChoiceQuestion q = MultipleChoiceQuestion.mmlu("x", " What? ", List.of("a ", "b"), 0);
        assertThat(q.question()).isEqualTo("What?\nA. a\nB. b\nAnswer:");
        assertThat(q.choices()).containsExactly(" A", " B");
        assertThatThrownBy(() -> MultipleChoiceQuestion.of("y", "Q", List.of("a"), 0)).hasMessageContaining("two choices");
        assertThatThrownBy(() -> MultipleChoiceQuestion.of("y", "Q", List.of("a", "b"), 2)).hasMessageContaining("answer index 2");
    }
}
