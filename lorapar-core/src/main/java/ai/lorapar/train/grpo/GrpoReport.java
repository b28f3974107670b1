package ai.lorapar.train.grpo;

import java.util.List;

/**
 * The outcome of {@link GrpoTrainer#train}: the metrics of every optimizer step.
 *
 * @param steps one entry per optimizer step, in order
 * @param prompts the number of distinct prompts trained on
 * @param seconds wall-clock seconds of the run
 */
public record GrpoReport(List<GrpoStepMetrics> steps, int prompts, double seconds) {

    public GrpoReport {
        steps = List.copyOf(steps);
    }

    /** The last step's metrics, or null for no step. */
    public GrpoStepMetrics last() {
        return steps.isEmpty() ? null : steps.get(steps.size() - 1);
    }

    /**
     * The mean total reward over all steps' completions (each step weighed by its completions; with μ &gt; 1
     * every rollout counts μ times, which leaves the mean unchanged).
     */
    public double meanReward() {
        double s = 0;
        long n = 0;
        for (GrpoStepMetrics m : steps) {
            s += m.reward().mean() * m.completions();
            n += m.completions();
        }
        return n == 0 ? Double.NaN : s / n;
    }
}
