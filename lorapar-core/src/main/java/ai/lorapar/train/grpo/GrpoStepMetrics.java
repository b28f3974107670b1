package ai.lorapar.train.grpo;

import java.util.Locale;
import java.util.Map;

/**
 * What one GRPO optimizer step did.
 *
 * @param step 1-based optimizer step
 * @param totalSteps optimizer steps of the run
 * @param learningRate the learning rate the step used
 * @param loss the step's loss (the sum of its micro-batches' losses)
 * @param gradNorm the global gradient norm over active elements, before clipping
 * @param gradClipped whether the gradient was clipped
 * @param reward mean and std of the completions' total (weighted) rewards
 * @param rewardsByFunction mean and std of each reward function's scores, by name, in the set's order
 * @param kl the mean k3 KL to the reference (aggregated like the loss), NaN when β = 0
 * @param clipFraction the share of completion tokens whose clipped surrogate was the smaller one
 * @param completionLength mean counted tokens per completion
 * @param truncatedFraction the share of completions that hit the token budget without end of sequence
 * @param completions completions in the step
 * @param completionTokens counted completion tokens in the step
 * @param rolloutSeconds sampling (0 for the 2nd.. update of a rollout when μ &gt; 1)
 * @param rewardSeconds reward functions and advantages
 * @param referenceSeconds the reference (and old-policy) log-probability passes
 * @param policySeconds the policy's forward and backward passes
 * @param optimizerSeconds the masked AdamW step
 */
public record GrpoStepMetrics(long step, long totalSteps, double learningRate, double loss, double gradNorm,
        boolean gradClipped, MeanStd reward, Map<String, MeanStd> rewardsByFunction, double kl, double clipFraction,
        double completionLength, double truncatedFraction, int completions, long completionTokens,
        double rolloutSeconds, double rewardSeconds, double referenceSeconds, double policySeconds,
        double optimizerSeconds) {

    public GrpoStepMetrics {
        rewardsByFunction = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(rewardsByFunction));
    }

    /** Wall-clock seconds of the step. */
    public double seconds() {
        return rolloutSeconds + rewardSeconds + referenceSeconds + policySeconds + optimizerSeconds;
    }

    /** Completion tokens per second of the step. */
    public double tokensPerSecond() {
        double s = seconds();
        return s > 0 ? completionTokens / s : Double.NaN;
    }

    /** One log line. */
    public String format() {
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "step %d/%d lr %.3g loss %.4f grad %.4f%s reward %.3f±%.3f kl %.4f clip %.3f len %.1f trunc %.2f",
                step, totalSteps, learningRate, loss, gradNorm, gradClipped ? " (clipped)" : "", reward.mean(),
                reward.std(), kl, clipFraction, completionLength, truncatedFraction));
        rewardsByFunction.forEach((name, ms) -> sb.append(String.format(Locale.ROOT, " %s %.3f", name, ms.mean())));
        sb.append(String.format(Locale.ROOT, " | %.2f s (rollout %.2f, rewards %.2f, ref %.2f, policy %.2f, opt %.2f), %.0f tok/s",
                seconds(), rolloutSeconds, rewardSeconds, referenceSeconds, policySeconds, optimizerSeconds,
                tokensPerSecond()));
        return sb.toString();
    }
}
