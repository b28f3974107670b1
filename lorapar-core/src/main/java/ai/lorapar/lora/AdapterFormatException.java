package ai.lorapar.lora;

import java.io.IOException;

/** An adapter folder that cannot be loaded: the message names the file, config key or tensor at fault. */
public class AdapterFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public AdapterFormatException(String message) {
        super(message);
    }

    public AdapterFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
