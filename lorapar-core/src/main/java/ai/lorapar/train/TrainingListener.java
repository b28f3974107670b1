package ai.lorapar.train;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Progress of a training stage. Trainers call the methods on their own thread, between steps; an
 * exception thrown here stops the run (the last checkpoint stays valid).
 */
public interface TrainingListener {
    /** A stage starts (or resumes). */
    default void onStageStart(StageStart start) {}

    /** Every {@code loggingSteps} optimizer steps and after the last one. */
    default void onStep(StepMetrics metrics) {}

    /** An {@link Evaluator} returned {@code metrics} after {@code step}. */
    default void onEvaluation(String stage, long step, Map<String, Double> metrics) {}

    /** A checkpoint folder was written (complete and durable) after {@code step}. */
    default void onCheckpoint(String stage, long step, Path folder) {}

    /** A stage ended. */
    default void onStageEnd(StageReport report) {}

    /** Logs every report through SLF4J (logger {@code ai.lorapar.train.TrainingListener}, level INFO). */
    static TrainingListener logging() {
        return logging(1);
    }

    /**
     * Logs through SLF4J the step reports whose step is a multiple of {@code everySteps} (and the last
     * step), and every stage start/end, checkpoint and evaluation. Reports arrive every
     * {@code loggingSteps} of the stage's config, so {@code everySteps} coarsens, never refines, them.
     */
    static TrainingListener logging(int everySteps) {
        if (everySteps < 1) {
            throw new IllegalArgumentException("logging every " + everySteps + " steps: must be >= 1");
        }
        Logger log = LoggerFactory.getLogger(TrainingListener.class);
        return new TrainingListener() {
            @Override
            public void onStageStart(StageStart s) {
                log.info("{}: {} steps{} over {} examples ({} skipped), {} of {} elements active; {}", s.stage(),
                        s.totalSteps(), s.startStep() > 0 ? " (resuming after step " + s.startStep() + ")" : "",
                        s.examples(), s.skippedExamples(), s.activeElements(), s.trainableElements(), s.target());
            }

            @Override
            public void onStep(StepMetrics m) {
                if (m.step() % everySteps != 0 && m.step() != m.totalSteps()) {
                    return;
                }
                StringBuilder details = new StringBuilder();
                m.details().forEach((k, v) -> details.append(String.format(Locale.ROOT, ", %s %.4g", k, v)));
                log.info(String.format(Locale.ROOT, "%s step %d/%d (epoch %.2f): loss %.4f, lr %.3e, grad norm %.4f, "
                        + "%.0f tokens/s%s", m.stage(), m.step(), m.totalSteps(), m.epoch(), m.loss(), m.learningRate(),
                        m.gradNorm(), m.tokensPerSecond(), details));
            }

            @Override
            public void onEvaluation(String stage, long step, Map<String, Double> metrics) {
                log.info("{} step {}: evaluation {}", stage, step, new TreeMap<>(metrics));
            }

            @Override
            public void onCheckpoint(String stage, long step, Path folder) {
                log.info("{} step {}: checkpoint {}", stage, step, folder);
            }

            @Override
            public void onStageEnd(StageReport r) {
                log.info(String.format(Locale.ROOT, "%s done: %d/%d steps, final loss %.4f, %d tokens, %.1f s",
                        r.stage(), r.steps(), r.totalSteps(), r.finalLoss(), r.tokens(), r.time().toMillis() / 1e3));
            }
        };
    }
}
