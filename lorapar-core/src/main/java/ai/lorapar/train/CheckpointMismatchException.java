package ai.lorapar.train;

import java.nio.file.Path;
import java.util.List;

/**
 * A checkpoint belongs to another run: another model, adapters, training configuration, mask or data.
 * The message names each difference with the checkpoint's and this run's value.
 */
public final class CheckpointMismatchException extends IllegalStateException {
    private final Path checkpoint;
    private final List<String> differences;

    public CheckpointMismatchException(Path checkpoint, List<String> differences) {
        super("checkpoint " + checkpoint + " was written by another run, so this run does not resume from it: "
                + String.join("; ", differences) + ". Use another checkpoint folder for a new run.");
        this.checkpoint = checkpoint;
        this.differences = List.copyOf(differences);
    }

    public Path checkpoint() {
        return checkpoint;
    }

    /** One line per difference, e.g. "the training config differs (checkpoint: ..., this run: ...)". */
    public List<String> differences() {
        return differences;
    }
}
