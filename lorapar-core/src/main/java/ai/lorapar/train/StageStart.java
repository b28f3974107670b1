package ai.lorapar.train;

/**
 * A stage is starting ({@link TrainingListener#onStageStart}).
 *
 * @param stage the stage's name
 * @param totalSteps optimizer steps of the whole stage
 * @param startStep steps already done (resumed from a checkpoint), else 0
 * @param examples examples trained on (after encoding)
 * @param skippedExamples examples left out by the encoder's truncation policy
 * @param trainableElements elements of all trained tensors
 * @param activeElements elements the stage's mask lets the optimizer change
 * @param target what is trained ({@link TrainingTarget#description()})
 */
public record StageStart(String stage, long totalSteps, long startStep, int examples, int skippedExamples,
        long trainableElements, long activeElements, String target) {}
