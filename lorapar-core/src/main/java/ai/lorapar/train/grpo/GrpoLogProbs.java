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
 * into per-token log-probabilities (policy, reference and old policy alike). Only the completion positions'
 * logits are made, a chunk at a time ({@link DecoderModel#tokenNll}): no {@code [B, L, vocab]} logits and no
 * fp32 log-softmax over them.
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
            // rows are left-padded prompts + completions: not causal-only, so SDPA (where used) takes the mask;
            // ids come from the encoder (checked on the host) and from sampling, so no device-side id check
            NDArray hidden = model.forwardHidden(ids, attentionMask, training, false, false);
            hidden.attach(scope);
            long batch = ids.getShape().get(0);
            long width = total - completionStart;
            // the positions that predict completion tokens: columns P-1 .. L-2; only their logits are made
            NDArray rows = hidden.get(new NDIndex(":, {}:{}, :", completionStart - 1, total - 1))
                    .reshape(-1, model.config().hiddenSize());
            rows.attach(scope);
            if (temperature != 1.0) {
                // logits / T = (h / T)·Wᵀ: scaling the hidden rows divides the logits (no host-to-device copy)
                NDArray t = scope.full(new Shape(), (float) temperature, rows.getDataType(), rows.getDevice());
                rows = rows.div(t);
                rows.attach(scope);
            }
            NDArray targets = ids.get(new NDIndex(":, {}:", completionStart)).reshape(-1);
            targets.attach(scope);
            NDArray nll = model.tokenNll(rows, targets);
            nll.attach(scope);
            NDArray logp = nll.neg().reshape(batch, width);
            logp.attach(out);
            return logp;
        }
    }
}
