package ai.lorapar.eval;

import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The GSM8K files beside the repository ({@code ../shared/data/gsm8k} from the repository root, i.e.
 * {@code ../../shared/data/gsm8k} from the module directory where tests run), or null when absent.
 */
public final class Gsm8kData {
    private Gsm8kData() {}

    /** The folder holding train.jsonl and test.jsonl, or null. */
    public static Path folder() {
        for (String p : new String[] {"../shared/data/gsm8k", "../../shared/data/gsm8k"}) {
            Path dir = Path.of(p);
            if (Files.isRegularFile(dir.resolve("train.jsonl")) && Files.isRegularFile(dir.resolve("test.jsonl"))) {
                return dir;
            }
        }
        return null;
    }

    /** The examples of {@code name} (train.jsonl, test.jsonl); call only when {@link #folder()} is not null. */
    public static List<Example> read(String name) {
        try {
            return JsonlExamples.read(folder().resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
