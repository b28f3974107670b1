package ai.lorapar.train.grpo;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Progress of {@link GrpoTrainer}: called on the training thread after every optimizer step. */
@FunctionalInterface
public interface GrpoListener {

    void onStep(GrpoStepMetrics metrics);

    /** Nothing. */
    static GrpoListener none() {
        return m -> { };
    }

    /** Logs every {@code every}-th step (and the last) at INFO through SLF4J. */
    static GrpoListener logging(int every) {
        if (every <= 0) {
            throw new IllegalArgumentException("every must be positive, got " + every);
        }
        Logger log = LoggerFactory.getLogger(GrpoTrainer.class);
        return m -> {
            if (m.step() % every == 0 || m.step() == m.totalSteps()) {
                log.info("GRPO {}", m.format());
            }
        };
    }
}
