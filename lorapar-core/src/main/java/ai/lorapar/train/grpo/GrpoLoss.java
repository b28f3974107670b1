package ai.lorapar.train.grpo;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The GRPO loss of a batch of completions (DeepSeekMath; TRL's GRPOTrainer), per token t of completion i:
 *
 * <pre>
 *   ρ      = exp(logp − old_logp)                      (old = logp detached when each generation gets one
 *                                                       update: ρ = 1 in value, gradient ∇logp)
 *   L_it   = −min(ρ·Â_i, clip(ρ, 1 − ε, 1 + ε)·Â_i) + β·KL_it
 *   KL_it  = exp(ref − logp) − (ref − logp) − 1         (the k3 estimator; ref = the reference policy)
 * </pre>
 *
 * masked by the completion mask, then aggregated ({@link LossAggregation}) and divided by a normaliser
 * that covers the whole optimizer step (its number of completions, or of completion tokens), so that the
 * losses of its micro-batches add up to the step's loss and their gradients accumulate to its gradient.
 *
 * <p>All NDArray ops; the metrics come back as device scalars, read by the caller once per step. Results
 * and intermediates (small {@code [B, C]} arrays) live in {@code logp}'s manager: call it inside a scope
 * that is closed after the backward pass.
 */
public final class GrpoLoss {
    private GrpoLoss() {}

    /**
     * The loss of one micro-batch and its metric sums.
     *
     * @param loss scalar fp32, with the autograd graph of {@code logp}
     * @param metrics {@code [4]} fp32, detached: Σ mask·KL, Σ_i (mean over i's tokens of KL), Σ mask·clipped
     *     (tokens whose clipped term is the smaller one, i.e. ρ &gt; 1+ε with Â &gt; 0 or ρ &lt; 1−ε with Â &lt; 0),
     *     Σ mask (tokens)
     */
    public record Parts(NDArray loss, NDArray metrics) implements AutoCloseable {
        public static final int KL_TOKEN_SUM = 0;
        public static final int KL_SEQUENCE_MEAN_SUM = 1;
        public static final int CLIPPED_TOKENS = 2;
        public static final int TOKENS = 3;

        @Override
        public void close() {
            loss.close();
            metrics.close();
        }
    }

    /**
     * @param logp {@code [B, C]} fp32 log-probabilities of the completion tokens under the policy (with gradient)
     * @param oldLogp {@code [B, C]} the policy's log-probabilities when the completions were sampled, or null
     *     for {@code logp} detached (one update per generation)
     * @param refLogp {@code [B, C]} the reference policy's, or null when β = 0 (no KL term)
     * @param advantages {@code [B]}
     * @param mask {@code [B, C]} 1 for tokens that count ({@link CompletionMask})
     * @param clipEpsilon ε of the clipped ratio
     * @param beta β of the KL term
     * @param normaliser the step's number of completions ({@link LossAggregation#PER_SEQUENCE}) or of completion
     *     tokens ({@link LossAggregation#PER_TOKEN})
     * @return the loss and metrics, in {@code logp}'s manager
     */
    public static Parts compute(NDArray logp, NDArray oldLogp, NDArray refLogp, NDArray advantages, NDArray mask,
            double clipEpsilon, double beta, LossAggregation aggregation, double normaliser) {
        if (!(normaliser > 0)) {
            throw new IllegalArgumentException("normaliser must be positive, got " + normaliser);
        }
        if (beta != 0 && refLogp == null) {
            throw new IllegalArgumentException("β = " + beta + " needs the reference log-probabilities");
        }
        // small [B, C] arrays: intermediates stay in logp's manager (the caller's per-micro-batch scope). No
        // op takes a Java number (DJL would copy each to the device, a synchronisation on a GPU): constants are
        // made on the device by full(), clip takes its bounds natively, comparisons are between arrays.
        NDManager out = logp.getManager();
        Device device = logp.getDevice();
        NDArray m = mask.toType(DataType.FLOAT32, true);
        NDArray adv = advantages.toType(DataType.FLOAT32, true).expandDims(1); // [B,1]
        NDArray old = oldLogp != null ? oldLogp : logp.stopGradient();
        NDArray ratio = logp.sub(old).exp();
        NDArray ratioClipped = ratio.clip(1 - clipEpsilon, 1 + clipEpsilon);
        NDArray unclipped = ratio.mul(adv);
        NDArray clipped = ratioClipped.mul(adv);
        NDArray perToken = NDArrays.minimum(unclipped, clipped).neg();
        NDArray kl = null;
        if (refLogp != null) {
            NDArray d = logp.neg().add(refLogp); // ref − logp, made from logp so it lands in logp's manager
            kl = d.exp().sub(d).sub(d.onesLike());
            if (beta != 0) {
                perToken = perToken.add(kl.mul(out.full(new Shape(), (float) beta, DataType.FLOAT32, device)));
            }
        }
        NDArray masked = perToken.mul(m);
        NDArray tokens = m.sum(new int[] {1}); // [B]
        NDArray lengths = tokens.clip(1f, Float.MAX_VALUE);
        NDArray norm = out.full(new Shape(), (float) normaliser, DataType.FLOAT32, device);
        NDArray loss = aggregation == LossAggregation.PER_SEQUENCE
                ? masked.sum(new int[] {1}).div(lengths).sum().div(norm)
                : masked.sum().div(norm);

        NDArray klMasked;
        NDArray klSeq;
        if (kl != null) {
            NDArray kld = kl.stopGradient().mul(m);
            klMasked = kld.sum();
            klSeq = kld.sum(new int[] {1}).div(lengths).sum();
        } else {
            klMasked = out.zeros(new Shape(), DataType.FLOAT32, device);
            klSeq = klMasked;
        }
        // clipped below 1 − ε ⇔ clip(ρ) > ρ; above 1 + ε ⇔ clip(ρ) < ρ; Â < 0 ⇔ −Â > Â
        NDArray ratioD = ratio.stopGradient();
        NDArray ratioClippedD = ratioClipped.stopGradient();
        NDArray advNeg = adv.neg();
        Shape shape = ratioD.getShape();
        NDArray low = ratioClippedD.gt(ratioD).logicalAnd(advNeg.gt(adv).broadcast(shape));
        NDArray high = ratioClippedD.lt(ratioD).logicalAnd(adv.gt(advNeg).broadcast(shape));
        NDArray clippedTokens = low.logicalOr(high).toType(DataType.FLOAT32, false).mul(m).sum();
        NDArray metrics = NDArrays.stack(new NDList(klMasked, klSeq, clippedTokens, tokens.sum()));
        return new Parts(loss, metrics);
    }
}
