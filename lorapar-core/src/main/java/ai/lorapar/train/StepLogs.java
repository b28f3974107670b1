package ai.lorapar.train;

import ai.lorapar.data.AtomicFiles;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Step-numbered JSONL logs (metrics, GRPO completions) on resume: a run that stopped after its last
 * checkpoint had already logged the steps after it, and the resumed run logs them again. Like the
 * Hugging Face trainer, whose log history comes back with the checkpoint, the lines of those steps are
 * dropped when the run resumes, so the file reads as one uninterrupted run.
 */
public final class StepLogs {
    private StepLogs() {}

    /**
     * Rewrites {@code file} (atomically) without the lines whose {@code "step"} is above {@code step}
     * and, when {@code stage} is not null, whose {@code "stage"} is {@code stage}. Other lines, lines
     * without a step and lines that are not JSON objects are kept as they are. A missing file is left
     * missing.
     *
     * @return the number of lines dropped
     * @throws IOException naming the file when it cannot be read or replaced (it is then unchanged)
     */
    public static int dropStepsAfter(Path file, String stage, long step) throws IOException {
        if (!Files.isRegularFile(file)) {
            return 0;
        }
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        List<String> kept = new ArrayList<>(lines.size());
        for (String line : lines) {
            if (!isAfter(line, stage, step)) {
                kept.add(line);
            }
        }
        int dropped = lines.size() - kept.size();
        if (dropped > 0) {
            AtomicFiles.writeUtf8(file, w -> {
                for (String line : kept) {
                    w.write(line);
                    w.write('\n');
                }
            });
        }
        return dropped;
    }

    private static boolean isAfter(String line, String stage, long step) {
        JsonObject o;
        try {
            JsonElement e = JsonParser.parseString(line);
            if (!e.isJsonObject()) {
                return false;
            }
            o = e.getAsJsonObject();
        } catch (RuntimeException notJson) {
            return false;
        }
        JsonElement s = o.get("step");
        if (s == null || !s.isJsonPrimitive() || !s.getAsJsonPrimitive().isNumber()) {
            return false;
        }
        if (stage != null) {
            JsonElement st = o.get("stage");
            if (st == null || !st.isJsonPrimitive() || !stage.equals(st.getAsString())) {
                return false;
            }
        }
        return s.getAsLong() > step;
    }
}
