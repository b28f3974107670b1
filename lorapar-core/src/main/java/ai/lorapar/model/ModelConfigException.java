package ai.lorapar.model;

import java.io.IOException;

/** A config.json / generation_config.json / weight set that does not describe a supported model; the message names the file and key. */
public class ModelConfigException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file and key
     */
    public ModelConfigException(String message) {
        super(message);
    }

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file and key
     * @param cause the underlying error
     */
    public ModelConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
