package ai.lorapar.train;

/**
 * A training step met a NaN or infinite loss or gradient. It is thrown before the optimizer step, so no
 * parameter (and no optimizer state) has changed; the last checkpoint is intact.
 */
public final class TrainingDivergedException extends ArithmeticException {
    private final String stage;
    private final long step;

    public TrainingDivergedException(String stage, long step, String what) {
        super(stage + " step " + step + ": " + what + "; the step was not taken and no parameter changed "
                + "(lower the learning rate, check the data, or resume from the last checkpoint)");
        this.stage = stage;
        this.step = step;
    }

    /** The stage's name. */
    public String stage() {
        return stage;
    }

    /** The 1-based optimizer step that was refused. */
    public long step() {
        return step;
    }
}
