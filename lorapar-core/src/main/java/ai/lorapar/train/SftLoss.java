package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;

/**
 * The loss of one SFT micro-batch: the one place the trainer computes it, so a faster implementation
 * (the loss at answer positions only, say) is a change to {@link #weightedTokenNll} alone.
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
     * Σ_r w_r · Σ_t −log p(label_{r,t+1} | ids_{r,≤t}) over the answer tokens (labels ≠ −100) of the batch.
     *
     * @param rowWeights {@code [B]} fp32 weights, on the batch's device
     * @param training whether dropout is on (forward in training mode)
     * @return a scalar fp32 array attached to the batch's manager, differentiable in a gradient collector
     */
    public static NDArray weightedTokenNll(DecoderModel model, TokenBatch batch, NDArray rowWeights, boolean training) {
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
