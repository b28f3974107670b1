package ai.lorapar.io;

import java.io.IOException;

/** A safetensors file that cannot be read as such; the message names the file and, where known, the tensor. */
public class SafetensorsException extends IOException {
    private static final long serialVersionUID = 1L;

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file and tensor
     */
    public SafetensorsException(String message) {
        super(message);
    }

    /**
     * Creates the exception.
     *
     * @param message what is wrong, naming the file and tensor
     * @param cause the underlying error
     */
    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
