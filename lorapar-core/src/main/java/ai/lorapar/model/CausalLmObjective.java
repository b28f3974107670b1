package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Causal-LM losses computed only where they count: the model's final hidden states, the rows of the
 * answer positions ({@link AnswerPositions}), and the LM head and cross-entropy of those rows alone
 * ({@link DecoderModel#tokenNll}), so no {@code [B, T, vocab]} logits and no fp32 log-softmax over the
 * whole vocabulary of every position are made. Same values as {@link CausalLmLoss} (which takes full
 * logits) up to summation order.
 *
 * <p>For policy-gradient losses (GRPO) {@link #tokenLogProbs} gives {@code log p(token)} of the
 * selected positions, for the policy and (adapters disabled) the reference pass.
 */
public final class CausalLmObjective {
    private CausalLmObjective() {}

    /**
     * Per-position negative log-likelihood {@code [N]} (fp32, attached to {@code ids}' manager) of the
     * counted positions, in the order of {@link AnswerPositions#positions()}.
     *
     * @param rightPadded the rows are right-padded or unpadded (see
     *     {@link DecoderModel#forward(NDArray, NDArray, boolean, boolean)}); {@code TokenBatch} rows are
     */
    public static NDArray tokenNll(DecoderModel model, NDArray ids, NDArray mask, AnswerPositions answers,
            boolean training, boolean rightPadded) {
        NDManager out = ids.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray hidden = model.forwardHidden(ids, mask, training, rightPadded);
            hidden.attach(scope);
            NDArray flat = hidden.reshape(-1, model.config().hiddenSize());
            flat.attach(scope);
            NDArray rows = flat.get(answers.positions());
            rows.attach(scope);
            NDArray nll = model.tokenNll(rows, answers.targets());
            nll.attach(out);
            return nll;
        }
    }

    /** {@code log p(target)} of the counted positions, {@code [N]} fp32: {@code −}{@link #tokenNll}. */
    public static NDArray tokenLogProbs(DecoderModel model, NDArray ids, NDArray mask, AnswerPositions answers,
            boolean training, boolean rightPadded) {
        try (NDArray nll = tokenNll(model, ids, mask, answers, training, rightPadded)) {
            return nll.neg();
        }
    }

    /** The summed token loss (a scalar): divide by the answer tokens of all accumulated batches for transformers' mean. */
    public static NDArray sumTokenNll(DecoderModel model, NDArray ids, NDArray mask, AnswerPositions answers,
            boolean training, boolean rightPadded) {
        try (NDArray nll = tokenNll(model, ids, mask, answers, training, rightPadded)) {
            return nll.sum();
        }
    }

    /**
     * The mean over examples of each example's mean token loss, as {@link CausalLmLoss#mean} of the full
     * logits (an example without counted tokens adds 0).
     */
    public static NDArray meanOfExampleMeans(DecoderModel model, NDArray ids, NDArray mask, AnswerPositions answers,
            boolean training, boolean rightPadded) {
        try (NDArray nll = tokenNll(model, ids, mask, answers, training, rightPadded);
                NDArray weighted = nll.mul(answers.exampleMeanWeights())) {
            return weighted.sum();
        }
    }
}
