package ai.lorapar.train;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a trainer reports every {@code loggingSteps} optimizer steps ({@link TrainingListener#onStep}).
 *
 * @param stage the stage's name ("sft", "grpo")
 * @param step optimizer steps done in the stage (1-based: the step just taken)
 * @param totalSteps optimizer steps of the whole stage
 * @param epoch epochs done, fractional (1.5 = half-way through the second)
 * @param loss the mean loss of the steps since the previous report (Hugging Face's logged loss)
 * @param learningRate the learning rate of the step just taken
 * @param gradNorm the global gradient norm over active elements of the step just taken, before clipping
 * @param tokensPerSecond real (unpadded) tokens per second since the previous report
 * @param activeElements elements the optimizer may change (the stage mask's count)
 * @param tokens real tokens processed in the stage so far
 * @param answerTokens answer tokens (those the loss counts) processed in the stage so far
 * @param details the stage's own figures since the previous report, by name in snake case, in a fixed
 *     order (empty for SFT; GRPO's: rewards per function, KL, clip ratio, completion length, ... as
 *     {@code GrpoTrainer} documents)
 */
public record StepMetrics(String stage, long step, long totalSteps, double epoch, double loss, double learningRate,
        double gradNorm, double tokensPerSecond, long activeElements, long tokens, long answerTokens,
        Map<String, Double> details) {

    public StepMetrics {
        details = Collections.unmodifiableMap(new LinkedHashMap<>(details));
    }

    /** Without stage-specific figures. */
    public StepMetrics(String stage, long step, long totalSteps, double epoch, double loss, double learningRate,
            double gradNorm, double tokensPerSecond, long activeElements, long tokens, long answerTokens) {
        this(stage, step, totalSteps, epoch, loss, learningRate, gradNorm, tokensPerSecond, activeElements, tokens,
                answerTokens, Map.of());
    }

    /** A detail by name, NaN when absent. */
    public double detail(String name) {
        Double v = details.get(name);
        return v == null ? Double.NaN : v;
    }
}
