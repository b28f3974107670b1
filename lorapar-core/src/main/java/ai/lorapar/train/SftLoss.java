package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.model.AnswerPositions;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.CausalLmObjective;
import ai.lorapar.model.DecoderModel;

/**
 * The loss of one SFT micro-batch: the one place the trainer computes it. It runs at the answer
 * positions only ({@link CausalLmObjective}): the LM head and cross-entropy of the counted positions,
 * chunked, so neither {@code [B, T, vocab]} logits nor an fp32 log-softmax over them are made.
 *
 * <p>Normalisation is the caller's, through per-row weights: {@link SftConfig.LossNormalization#PER_TOKEN}
 * gives every row 1/N (N = answer tokens of the whole optimizer step), {@link
 * SftConfig.LossNormalization#PER_EXAMPLE} gives row r 1/(n_r·E) (n_r its answer tokens, E the step's
 * examples). Summing the micro-batches' losses then gives the step's loss, and their gradients add up
 * to its gradient.
 */
public final class SftLoss {
    private SftLoss() {}

    /**
     * What the loss of one micro-batch needs besides the batch, made on the host and copied to the device
     * before the step's passes: the counted positions and their targets ({@link AnswerPositions}) and one
     * weight per position (its row's weight), or, for a batch without counted positions, the row weights.
     */
    public static final class Targets implements AutoCloseable {
        private final AnswerPositions answers;
        private final NDArray positionWeights;
        private final NDArray rowWeights;

        private Targets(AnswerPositions answers, NDArray positionWeights, NDArray rowWeights) {
            this.answers = answers;
            this.positionWeights = positionWeights;
            this.rowWeights = rowWeights;
        }

        /** The counted positions (and any padding). */
        public AnswerPositions answers() {
            return answers;
        }

        /** {@code [size]} fp32: each position's row weight, 0 on the padding. */
        public NDArray positionWeights() {
            return positionWeights;
        }

        @Override
        public void close() {
            answers.close();
            positionWeights.close();
            rowWeights.close();
        }
    }

    /**
     * The targets of {@code batch} with row weights {@code rowWeights} (one per row), on {@code manager}'s
     * device. Also checks the ids against the model's vocabulary on the host, which is why the passes can
     * skip the device-side check ({@link DecoderModel#forward(NDArray, NDArray, boolean, boolean)}).
     *
     * @throws IllegalArgumentException for an id outside the vocabulary, naming the example
     */
    public static Targets targets(DecoderModel model, TokenBatch batch, float[] rowWeights, NDManager manager) {
        return targets(model, batch, rowWeights, manager, 0);
    }

    /**
     * {@link #targets(DecoderModel, TokenBatch, float[], NDManager)} with the positions padded to at least
     * {@code minSize} ({@link AnswerPositions#fromLabels(long[], int, int, NDManager, int)}; the padding has
     * weight 0, so the loss and its gradient are the unpadded ones): one shape for batches with different
     * answer counts.
     */
    public static Targets targets(DecoderModel model, TokenBatch batch, float[] rowWeights, NDManager manager,
            int minSize) {
        int vocab = model.config().vocabSize();
        for (EncodedExample e : batch.rows()) {
            for (long id : e.ids()) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("example '" + e.example().id() + "' (line " + e.example().line()
                            + ") holds token id " + id + ", outside the model's vocabulary of " + vocab
                            + "; is the encoder's tokenizer the model's?");
                }
            }
        }
        AnswerPositions answers = batch.answerPositions(manager, minSize);
        int[] perRow = answers.perRow();
        float[] w = new float[answers.size()]; // 0 on the padding
        int k = 0;
        for (int r = 0; r < perRow.length; r++) {
            for (int i = 0; i < perRow[r]; i++) {
                w[k++] = rowWeights[r];
            }
        }
        return new Targets(answers, manager.create(w), manager.create(rowWeights));
    }

    /**
     * Σ_r w_r · Σ_t −log p(label_{r,t+1} | ids_{r,≤t}) over the answer tokens (labels ≠ −100) of the batch,
     * computed only at the answer positions (final hidden states of those positions through the LM head,
     * chunked: no {@code [B, T, vocab]} logits, see {@link CausalLmObjective}); right-padded rows let
     * attention run causally without a mask.
     *
     * @param targets from {@link #targets}
     * @param training whether dropout is on (forward in training mode)
     * @return a scalar fp32 array attached to the batch's manager, differentiable in a gradient collector
     */
    public static NDArray weightedTokenNll(DecoderModel model, TokenBatch batch, Targets targets, boolean training) {
        if (targets.answers.count() == 0) {
            return fullLogitsWeightedTokenNll(model, batch, targets.rowWeights, training); // keeps a graph to 0
        }
        return weightedTokenNll(model, batch.inputIds(), batch.attentionMask(), targets.answers,
                targets.positionWeights, training);
    }

    /**
     * The answer-position path of {@link #weightedTokenNll(DecoderModel, TokenBatch, Targets, boolean)} on the
     * arrays themselves (right-padded {@code ids} and {@code mask}, at least one counted position): Σ
     * weights·nll, attached to {@code ids}' manager.
     */
    static NDArray weightedTokenNll(DecoderModel model, NDArray ids, NDArray mask, AnswerPositions answers,
            NDArray positionWeights, boolean training) {
        NDManager out = ids.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray nll = CausalLmObjective.tokenNll(model, ids, mask, answers, training, true);
            nll.attach(scope);
            NDArray loss = nll.mul(positionWeights).sum();
            loss.attach(out);
            return loss;
        }
    }

    /** The same sum through full logits and {@link CausalLmLoss#tokenLogProbs} (the reference path). */
    static NDArray fullLogitsWeightedTokenNll(DecoderModel model, TokenBatch batch, NDArray rowWeights,
            boolean training) {
        NDManager out = batch.inputIds().getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray logits = model.forward(batch.inputIds(), batch.attentionMask(), training);
            logits.attach(scope);
            NDArray logProbs = CausalLmLoss.tokenLogProbs(logits, batch.labels()); // [B, T-1], 0 where not counted
            logProbs.attach(scope);
            NDArray rowNll = logProbs.sum(new int[] {1}).neg();
            rowNll.attach(scope);
            NDArray loss = rowNll.mul(rowWeights).sum();
            loss.attach(out);
            return loss;
        }
    }

    /**
     * The tokens of {@code e} that a causal LM loss counts: its answer tokens, less the first position
     * when the prompt is empty (position 0 has nothing before it to be predicted from).
     */
    public static int countedTokens(EncodedExample e) {
        return e.answerLength() - (e.promptLength() == 0 ? 1 : 0);
    }
}
