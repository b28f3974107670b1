package ai.lorapar.data;

import java.io.IOException;
import java.nio.file.Path;

/** A JSONL file has a line that cannot be used; the message names the file and the 1-based line. */
public class MalformedJsonlException extends IOException {
    private final Path file;
    private final int line;

    public MalformedJsonlException(Path file, int line, String problem) {
        this(file, line, problem, null);
    }

    public MalformedJsonlException(Path file, int line, String problem, Throwable cause) {
        super(file + ":" + line + ": " + problem, cause);
        this.file = file;
        this.line = line;
    }

    public Path file() {
        return file;
    }

    /** 1-based line number within {@link #file()}. */
    public int line() {
        return line;
    }
}
