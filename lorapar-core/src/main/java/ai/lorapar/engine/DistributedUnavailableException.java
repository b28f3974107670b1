package ai.lorapar.engine;

/**
 * Thrown to the ranks other than 0 of a multi-process job when the engine cannot do collectives (stock DJL
 * has no c10d): distributed training needs the project's libtorch JNI; rank 0 goes on alone on one device,
 * and the other ranks should end cleanly (the {@code lorapar} command line exits 0 on it).
 */
public final class DistributedUnavailableException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** An exception with {@code message}. */
    public DistributedUnavailableException(String message) {
        super(message);
    }
}
