package ai.lorapar.model;

import java.io.IOException;

/** A config.json / generation_config.json / weight set that does not describe a supported model; the message names the file and key. */
public class ModelConfigException extends IOException {
    private static final long serialVersionUID = 1L;

    public ModelConfigException(String message) {
        super(message);
    }

    public ModelConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
