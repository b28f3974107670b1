package ai.lorapar.train.grpo;

/** How per-token GRPO losses become the step's loss. */
public enum LossAggregation {
    /**
     * The mean over each completion's tokens, then the mean over the step's completions: every completion
     * weighs the same whatever its length (DeepSeekMath's GRPO; TRL's GRPOTrainer up to 0.15, the
     * reference's).
     */
    PER_SEQUENCE,
    /**
     * The sum over all completion tokens of the optimizer step divided by their number: every token weighs
     * the same (DAPO's token-level loss). TRL 0.16's default normalised per device micro-batch instead;
     * here the normaliser is the whole step's token count, so micro-batching never changes the loss.
     */
    PER_TOKEN
}
