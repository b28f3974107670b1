package ai.lorapar.data;

import java.io.IOException;
import java.nio.file.Path;

/** A JSONL file has a line that cannot be used; the message names the file and the 1-based line. */
public class MalformedJsonlException extends IOException {
    /** The file. */
    private final Path file;
    /** The 1-based line. */
    private final int line;

    /**
     * Creates the exception; the message is {@code file:line: problem}.
     *
     * @param file the file
     * @param line the 1-based line
     * @param problem what is wrong
     */
    public MalformedJsonlException(Path file, int line, String problem) {
        this(file, line, problem, null);
    }

    /**
     * Creates the exception; the message is {@code file:line: problem}.
     *
     * @param file the file
     * @param line the 1-based line
     * @param problem what is wrong
     * @param cause the underlying error
     */
    public MalformedJsonlException(Path file, int line, String problem, Throwable cause) {
        super(file + ":" + line + ": " + problem, cause);
        this.file = file;
        this.line = line;
    }

    /**
     * The file.
     *
     * @return its path
     */
    public Path file() {
        return file;
    }

    /** 1-based line number within {@link #file()}. */
    public int line() {
        return line;
    }
}
