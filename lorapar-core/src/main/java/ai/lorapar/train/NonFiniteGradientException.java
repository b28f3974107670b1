package ai.lorapar.train;

/**
 * A gradient held NaN or ±Inf in an element that trains (or the global gradient norm overflowed), so
 * {@link MaskedAdamW} refused the step: no parameter, moment or step count changed. A trainer's NaN
 * guard catches this, logs it, zeroes the gradients and goes on with the next batch (or stops).
 * Non-finite gradients of frozen (masked-off) elements are ignored and never raise this.
 */
public final class NonFiniteGradientException extends ArithmeticException {
    private static final long serialVersionUID = 1L;

    /** The refused step. */
    private final long step;
    /** The tensor at fault. */
    private final String tensorName;

    /**
     * Creates the exception.
     *
     * @param step the 1-based number of the refused step
     * @param tensorName the parameter whose gradient is not finite (for an overflow: the one with the largest
     *     magnitude)
     * @param message the full message
     */
    public NonFiniteGradientException(long step, String tensorName, String message) {
        super(message);
        this.step = step;
        this.tensorName = tensorName;
    }

    /**
     * The 1-based number the refused step would have had ({@link MaskedAdamW#stepCount()} + 1).
     *
     * @return the step number
     */
    public long step() {
        return step;
    }

    /**
     * The parameter whose gradient is not finite.
     *
     * @return its name, as in {@link MaskedAdamW}'s parameter map
     */
    public String tensorName() {
        return tensorName;
    }
}
