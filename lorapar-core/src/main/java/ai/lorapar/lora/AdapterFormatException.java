package ai.lorapar.lora;

import java.io.IOException;

/** An adapter folder that cannot be loaded: the message names the file, config key or tensor at fault. */
public class AdapterFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file, key or tensor
     */
    public AdapterFormatException(String message) {
        super(message);
    }

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file, key or tensor
     * @param cause the underlying error
     */
    public AdapterFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
