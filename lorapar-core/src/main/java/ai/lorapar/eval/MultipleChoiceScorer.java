package ai.lorapar.eval;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Multiple-choice accuracy by option log-likelihood (the way MMLU is scored without generation): for
 * every choice, the log-likelihood of its tokens after the prompt under the model (teacher-forced, one
 * batched forward pass per {@link Builder#batchSize} rows); the prediction is the choice with the highest
 * score, ties going to the earlier choice.
 *
 * <p>The prompt is {@link ExampleEncoder#encodePrompt} of the question (template, system prompt, with
 * special tokens); each choice is encoded without special tokens and appended, as the encoder does for
 * answers. {@link Normalization} says how a choice's token log-probabilities make its score:
 * {@link Normalization#SUM} (lm-evaluation-harness's {@code acc}, the default),
 * {@link Normalization#TOKEN_MEAN} (per token) or {@link Normalization#BYTE_MEAN} (per UTF-8 byte of the
 * choice text, lm-evaluation-harness's {@code acc_norm}). With {@link MultipleChoiceQuestion#mmlu} the
 * choices are the one-token letters, and the three agree.
 */
public final class MultipleChoiceScorer {

    /** How token log-probabilities make a choice's score. */
    public enum Normalization {
        /** The sum (the log-likelihood of the continuation). */
        SUM,
        /** The sum divided by the continuation's number of tokens. */
        TOKEN_MEAN,
        /** The sum divided by the continuation's number of UTF-8 bytes. */
        BYTE_MEAN
    }

    /**
     * One scored question.
     *
     * @param id the question's id
     * @param answer the correct choice
     * @param predicted the best-scoring choice
     * @param scores every choice's score (after normalisation)
     */
    public record Record(String id, int answer, int predicted, double[] scores) {
        public boolean correct() {
            return answer == predicted;
        }
    }

    /** The records and the accuracy. */
    public record Report(List<Record> records) {
        public Report {
            records = List.copyOf(records);
        }

        public int correct() {
            return (int) records.stream().filter(Record::correct).count();
        }

        public int total() {
            return records.size();
        }

        /** correct / total (NaN for no questions). */
        public double accuracy() {
            return records.isEmpty() ? Double.NaN : (double) correct() / total();
        }

        public String format() {
            return String.format(Locale.ROOT, "multiple choice %d/%d = %.2f%%", correct(), total(), 100 * accuracy());
        }
    }

    private final ExampleEncoder encoder;
    private final Normalization normalization;
    private final int batchSize;

    private MultipleChoiceScorer(Builder b) {
        this.encoder = b.encoder;
        this.normalization = b.normalization;
        this.batchSize = b.batchSize;
    }

    /** Defaults: {@link Normalization#SUM}, 16 rows per forward pass; an encoder is required. */
    public static Builder builder() {
        return new Builder();
    }

    public Normalization normalization() {
        return normalization;
    }

    /** Scores every question with {@code model} (an inference pass: dropout off, no gradients). */
    public Report score(DecoderModel model, List<MultipleChoiceQuestion> questions) {
        List<EncodedExample> rows = new ArrayList<>();
        List<Integer> bytes = new ArrayList<>();
        for (MultipleChoiceQuestion q : questions) {
            Example asExample = Example.of(q.id(), q.question(), "");
            long[] prompt = encoder.encodePrompt(asExample);
            for (String choice : q.choices()) {
                long[] cont = encoder.tokenizer().encode(choice, false);
                if (cont.length == 0) {
                    throw new IllegalArgumentException("question '" + q.id() + "': choice '" + choice
                            + "' encodes to no token");
                }
                long[] ids = new long[prompt.length + cont.length];
                System.arraycopy(prompt, 0, ids, 0, prompt.length);
                System.arraycopy(cont, 0, ids, prompt.length, cont.length);
                rows.add(new EncodedExample(asExample, ids, prompt.length, false));
                bytes.add(choice.getBytes(StandardCharsets.UTF_8).length);
            }
        }
        double[] sums = new double[rows.size()];
        for (int from = 0; from < rows.size(); from += batchSize) {
            List<EncodedExample> chunk = rows.subList(from, Math.min(rows.size(), from + batchSize));
            float[] s = continuationLogLikelihoods(model, chunk);
            for (int i = 0; i < s.length; i++) {
                sums[from + i] = s[i];
            }
        }
        List<Record> records = new ArrayList<>(questions.size());
        int row = 0;
        for (MultipleChoiceQuestion q : questions) {
            double[] scores = new double[q.choices().size()];
            int best = 0;
            for (int c = 0; c < scores.length; c++, row++) {
                double sum = sums[row];
                scores[c] = switch (normalization) {
                    case SUM -> sum;
                    case TOKEN_MEAN -> sum / rows.get(row).answerLength();
                    case BYTE_MEAN -> sum / bytes.get(row);
                };
                if (scores[c] > scores[best]) {
                    best = c;
                }
            }
            records.add(new Record(q.id(), q.answer(), best, scores));
        }
        return new Report(records);
    }

    /** Sum of the continuation tokens' log-probabilities per row, one forward pass. */
    static float[] continuationLogLikelihoods(DecoderModel model, List<EncodedExample> rows) {
        try (NDManager scope = model.manager().newSubManager();
                TokenBatch batch = TokenBatch.of(rows, 0, scope)) {
            NDArray logits = model.forward(batch.inputIds(), batch.attentionMask(), false);
            NDArray lp = CausalLmLoss.tokenLogProbs(logits, batch.labels()); // 0 where not counted
            NDArray sum = lp.sum(new int[] {1}).toType(DataType.FLOAT32, false);
            return sum.toFloatArray();
        }
    }

    /** Settings; {@link #build()} checks them. */
    public static final class Builder {
        private ExampleEncoder encoder;
        private Normalization normalization = Normalization.SUM;
        private int batchSize = 16;

        private Builder() {}

        /** How a question becomes a prompt; required. */
        public Builder encoder(ExampleEncoder encoder) {
            this.encoder = Objects.requireNonNull(encoder, "encoder");
            return this;
        }

        /** Default {@link Normalization#SUM}. */
        public Builder normalization(Normalization normalization) {
            this.normalization = Objects.requireNonNull(normalization, "normalization");
            return this;
        }

        /** Prompt + choice rows per forward pass (default 16). */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public MultipleChoiceScorer build() {
            if (encoder == null) {
                throw new IllegalStateException("MultipleChoiceScorer needs an encoder: builder().encoder(ExampleEncoder)");
            }
            if (batchSize <= 0) {
                throw new IllegalArgumentException("batchSize must be positive, got " + batchSize);
            }
            return new MultipleChoiceScorer(this);
        }
    }
}
