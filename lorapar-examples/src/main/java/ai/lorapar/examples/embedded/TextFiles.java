package ai.lorapar.examples.embedded;

import ai.lorapar.data.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;

/** Whole-file text writes through the library's {@link AtomicFiles}: no half-written file is ever seen. */
final class TextFiles {

    private TextFiles() {
    }

    static void writeAtomically(Path file, String content) throws IOException {
        AtomicFiles.writeUtf8(file, w -> w.write(content));
    }
}
