package ai.lorapar.train.grpo;

import ai.lorapar.train.StageReport;

import java.util.List;

/**
 * The outcome of {@link GrpoTrainer#train}: the stage's report and the metrics of every optimizer step this
 * run took (after a resume, the steps since the checkpoint).
 *
 * @param stage what the stage did, as every trainer reports it (steps before a resume included)
 * @param steps one entry per optimizer step of this run, in order
 */
public record GrpoReport(StageReport stage, List<GrpoStepMetrics> steps) {

    public GrpoReport {
        steps = List.copyOf(steps);
    }

    /** The number of distinct prompts trained on. */
    public int prompts() {
        return stage.examples();
    }

    /** Wall-clock seconds of this run. */
    public double seconds() {
        return stage.time().toNanos() / 1e9;
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
