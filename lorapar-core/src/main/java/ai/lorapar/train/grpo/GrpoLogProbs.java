package ai.lorapar.train.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;

/**
 * Log-probabilities of completion tokens under a model: the one place where GRPO turns a forward pass
 * into per-token log-probabilities (policy, reference and old policy alike), so a faster path (logits only
 * at the completion positions) can replace it without touching the trainer.
 *
 * <p>The logits are divided by the sampling temperature before the log-softmax, so the log-probabilities
 * are those of the distribution the tokens were sampled from (TRL ≥ 0.16; TRL 0.14/0.15 did not divide).
 */
public final class GrpoLogProbs {
    private GrpoLogProbs() {}

    /**
     * @param model the model (its adapters as they are: enabled for the policy, inside
     *     {@code LoraModel.disabled()} for the reference)
     * @param ids {@code [B, P + C]} left-padded prompts followed by right-padded completions
     * @param attentionMask {@code [B, P + C]} 1 on real tokens (prompt and counted completion tokens)
     * @param completionStart P, the column of the first completion token (≥ 1)
     * @param temperature the sampling temperature (&gt; 0)
     * @param training whether the pass runs in training mode (adapter dropout)
     * @return {@code [B, C]} fp32: position j is log p(ids[:, P + j] | ids[:, :P + j]); attached to
     *     {@code ids}' manager (with the autograd graph when called in a gradient collector)
     */
    public static NDArray ofCompletions(DecoderModel model, NDArray ids, NDArray attentionMask, int completionStart,
            double temperature, boolean training) {
        long total = ids.getShape().get(1);
        if (completionStart < 1 || completionStart >= total) {
            throw new IllegalArgumentException("completion start " + completionStart + " must be in [1, " + total
                    + ") for ids " + ids.getShape());
        }
        if (!(temperature > 0)) {
            throw new IllegalArgumentException("temperature must be positive, got " + temperature);
        }
        NDManager out = ids.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray logits = model.forward(ids, attentionMask, training);
            logits.attach(scope);
            // the positions that predict completion tokens, plus the last (ignored by tokenLogProbs' shift)
            NDArray selected = logits.get(new NDIndex(":, {}:, :", completionStart - 1));
            selected.attach(scope);
            if (temperature != 1.0) {
                NDArray t = scope.full(new Shape(), (float) temperature, DataType.FLOAT32, selected.getDevice());
                selected = selected.toType(DataType.FLOAT32, false).div(t); // no host-to-device copy of the number
                selected.attach(scope);
            }
            NDArray labels = ids.get(new NDIndex(":, {}:", completionStart - 1));
            labels.attach(scope);
            NDArray logp = CausalLmLoss.tokenLogProbs(selected, labels);
            logp.attach(out);
            return logp;
        }
    }
}
