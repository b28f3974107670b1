package ai.lorapar.train;

/**
 * The loss handed to {@link MaskedAdamW#step(ai.djl.ndarray.NDArray)} was NaN or ±Inf, so the step was
 * refused: no parameter, moment or step count changed. (A cross-entropy can be infinite while its
 * gradient is finite, so the gradient check alone would let such a step through.)
 */
public final class NonFiniteLossException extends ArithmeticException {
    private static final long serialVersionUID = 1L;

    private final long step;

    /**
     * Creates the exception.
     *
     * @param step the 1-based number of the refused step
     * @param message the full message
     */
    public NonFiniteLossException(long step, String message) {
        super(message);
        this.step = step;
    }

    /**
     * The 1-based number the refused step would have had.
     *
     * @return the step number
     */
    public long step() {
        return step;
    }
}
