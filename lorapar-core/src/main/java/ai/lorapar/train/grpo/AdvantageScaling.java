package ai.lorapar.train.grpo;

/** How {@link GroupAdvantages} normalises rewards within a group. */
public enum AdvantageScaling {
    /**
     * (r − mean) / (std + 1e-4) with the group's unbiased standard deviation (Bessel's correction, as
     * {@code torch.Tensor.std} in TRL's GRPOTrainer): DeepSeekMath's GRPO, TRL's {@code scale_rewards=True}.
     */
    GROUP_STD,
    /** r − mean only (Dr. GRPO's recommendation; TRL's {@code scale_rewards=False}). */
    NONE
}
