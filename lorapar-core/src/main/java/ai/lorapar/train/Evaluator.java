package ai.lorapar.train;

import ai.lorapar.model.DecoderModel;

import java.io.IOException;
import java.util.Map;

/**
 * A callback a trainer runs every k optimizer steps and at the end of a stage, between steps (outside
 * any gradient collector), e.g. accuracy on held-out examples. Its metrics go to the listeners
 * ({@link TrainingListener#onEvaluation}).
 */
@FunctionalInterface
public interface Evaluator {
    /**
     * @param model the model being trained, in its current state (adapters enabled)
     * @param step optimizer steps done in the stage
     * @return named metrics (an empty map is fine)
     */
    Map<String, Double> evaluate(DecoderModel model, long step) throws IOException;
}
