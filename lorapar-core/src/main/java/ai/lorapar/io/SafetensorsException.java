package ai.lorapar.io;

import java.io.IOException;

/** A safetensors file that cannot be read as such; the message names the file and, where known, the tensor. */
public class SafetensorsException extends IOException {
    private static final long serialVersionUID = 1L;

    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
