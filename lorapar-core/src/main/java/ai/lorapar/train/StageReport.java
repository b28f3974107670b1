package ai.lorapar.train;

import java.nio.file.Path;
import java.time.Duration;

/**
 * What one training stage did.
 *
 * @param stage the stage's name ("sft", "grpo")
 * @param steps optimizer steps done in the stage, including those before a resume
 * @param totalSteps optimizer steps of the whole stage
 * @param resumedFromStep the checkpoint's step this run resumed from, or 0 for a fresh start
 * @param examples examples trained on (after encoding)
 * @param skippedExamples examples left out by the encoder's truncation policy
 * @param truncatedExamples examples whose answer was cut to the maximum length
 * @param tokens real (unpadded) tokens processed in the stage, including those before a resume
 * @param answerTokens answer tokens (those the loss counts) processed in the stage, likewise
 * @param finalLoss the loss of the last optimizer step
 * @param meanLoss the mean loss of the steps this run took (NaN when it took none)
 * @param time wall time of this run of the stage
 * @param lastCheckpoint the last checkpoint folder written or resumed from, or null
 */
public record StageReport(String stage, long steps, long totalSteps, long resumedFromStep, int examples,
        int skippedExamples, int truncatedExamples, long tokens, long answerTokens, double finalLoss, double meanLoss,
        Duration time, Path lastCheckpoint) {}
