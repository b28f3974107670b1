package ai.lorapar.train;

import ai.lorapar.engine.Collective;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * What the builder of every training stage ({@link SftTrainer}, {@code GrpoTrainer}) takes besides the
 * stage's own settings: listeners, checkpoints, a periodic evaluation, the stage's name and the
 * {@link Collective} of a data-parallel run. Each setter checks its value and names what is wrong.
 *
 * @param <B> the concrete builder, returned by the setters
 */
public abstract class StageBuilder<B extends StageBuilder<B>> {
    private final List<TrainingListener> listeners = new ArrayList<>();
    private Path checkpointFolder;
    private int checkpointEvery;
    private int keepCheckpoints = 3;
    private Evaluator evaluator;
    private int evaluateEvery;
    private String stage;
    private Collective collective = Collective.single();

    /** @param defaultStage the stage's name unless {@link #stageName} changes it */
    protected StageBuilder(String defaultStage) {
        this.stage = defaultStage;
    }

    /** This builder, as its own type. */
    protected abstract B self();

    /** Adds a listener (called in the order added). */
    public B listener(TrainingListener listener) {
        this.listeners.add(Objects.requireNonNull(listener, "listener"));
        return self();
    }

    /** Adds listeners. */
    public B listeners(Collection<TrainingListener> listeners) {
        listeners.forEach(this::listener);
        return self();
    }

    /**
     * Checkpoints into {@code folder} every {@code everySteps} optimizer steps and after the last; a run
     * resumes from the latest checkpoint there. Without this no checkpoint is written.
     */
    public B checkpoints(Path folder, int everySteps) {
        if (everySteps < 1) {
            throw new IllegalArgumentException("checkpoint interval must be >= 1 step, got " + everySteps);
        }
        this.checkpointFolder = Objects.requireNonNull(folder, "folder");
        this.checkpointEvery = everySteps;
        return self();
    }

    /** How many checkpoints to keep, newest first (default 3). */
    public B keepCheckpoints(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("checkpoints to keep must be >= 1, got " + n);
        }
        this.keepCheckpoints = n;
        return self();
    }

    /** Runs {@code evaluator} every {@code everySteps} optimizer steps and after the last. */
    public B evaluator(Evaluator evaluator, int everySteps) {
        if (everySteps < 1) {
            throw new IllegalArgumentException("evaluation interval must be >= 1 step, got " + everySteps);
        }
        this.evaluator = Objects.requireNonNull(evaluator, "evaluator");
        this.evaluateEvery = everySteps;
        return self();
    }

    /** The stage's name in checkpoints, reports and events. */
    public B stageName(String name) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("stage name must not be blank");
        }
        this.stage = name;
        return self();
    }

    /**
     * Trains data-parallel with the ranks of {@code collective} (default {@link Collective#single()}: one
     * process). Every rank builds the same trainer on its own copy of the model and calls {@code train} with
     * the same examples; each takes its share of every global batch, gradients are summed across ranks before
     * each optimizer step, and the result equals one process training on the whole batch (up to
     * floating-point summation order). The leader alone writes checkpoints and reports to listeners.
     */
    public B collective(Collective collective) {
        this.collective = Objects.requireNonNull(collective, "collective");
        return self();
    }

    /** The settings made so far, for the stage's constructor. */
    protected StageOptions options() {
        return new StageOptions(List.copyOf(listeners), checkpointFolder, checkpointEvery, keepCheckpoints, evaluator,
                evaluateEvery, stage, collective);
    }

    /**
     * The common settings of a stage, as its builder left them.
     *
     * @param listeners the listeners, in order
     * @param checkpointFolder where checkpoints go, or null for none
     * @param checkpointEvery the checkpoint interval in optimizer steps (when there is a folder)
     * @param keepCheckpoints how many checkpoints to keep
     * @param evaluator the periodic evaluation, or null
     * @param evaluateEvery its interval in optimizer steps (when there is one)
     * @param stage the stage's name
     * @param collective the ranks of a data-parallel run ({@link Collective#single()} for one process)
     */
    public record StageOptions(List<TrainingListener> listeners, Path checkpointFolder, int checkpointEvery,
            int keepCheckpoints, Evaluator evaluator, int evaluateEvery, String stage, Collective collective) {
        /** The checkpoint store of these settings, or null when no checkpoint is written. */
        public CheckpointStore store() {
            return checkpointFolder == null ? null : new CheckpointStore(checkpointFolder, keepCheckpoints);
        }
    }
}
