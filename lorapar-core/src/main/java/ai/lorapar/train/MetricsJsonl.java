package ai.lorapar.train;

import com.google.gson.JsonNull;
import com.google.gson.JsonObject;

import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;

/**
 * A {@link TrainingListener} that appends one JSON object per event to a file: {@code "event"} is
 * {@code stage_start}, {@code step}, {@code evaluation}, {@code checkpoint} or {@code stage_end}, with
 * the event's fields in snake case (NaN and infinities as null); a step's {@link StepMetrics#details()}
 * are fields of its object too. Each line is flushed as it is written,
 * and a resumed run appends to the same file, so the file is the run's whole history.
 */
public final class MetricsJsonl implements TrainingListener, Closeable {
    private final Path file;
    private BufferedWriter out;

    private MetricsJsonl(Path file, BufferedWriter out) {
        this.file = file;
        this.out = out;
    }

    /**
     * Opens {@code file} for appending (creating it and its folder when missing). When a stage resumes
     * from a checkpoint at step s, the lines this stage logged for steps after s (by the run that
     * stopped) are dropped first ({@link StepLogs}), so the file reads as one uninterrupted run.
     */
    public static MetricsJsonl open(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        return new MetricsJsonl(file, append(file));
    }

    private static BufferedWriter append(Path file) throws IOException {
        return Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    public Path file() {
        return file;
    }

    @Override
    public void onStageStart(StageStart s) {
        if (s.startStep() > 0) {
            dropStepsAfter(s.stage(), s.startStep());
        }
        JsonObject o = event("stage_start", s.stage());
        o.addProperty("total_steps", s.totalSteps());
        o.addProperty("start_step", s.startStep());
        o.addProperty("examples", s.examples());
        o.addProperty("skipped_examples", s.skippedExamples());
        o.addProperty("trainable_elements", s.trainableElements());
        o.addProperty("active_elements", s.activeElements());
        o.addProperty("target", s.target());
        write(o);
    }

    @Override
    public void onStep(StepMetrics m) {
        JsonObject o = event("step", m.stage());
        o.addProperty("step", m.step());
        o.addProperty("total_steps", m.totalSteps());
        number(o, "epoch", m.epoch());
        number(o, "loss", m.loss());
        number(o, "learning_rate", m.learningRate());
        number(o, "grad_norm", m.gradNorm());
        number(o, "tokens_per_second", m.tokensPerSecond());
        o.addProperty("active_elements", m.activeElements());
        o.addProperty("tokens", m.tokens());
        o.addProperty("answer_tokens", m.answerTokens());
        m.details().forEach((k, v) -> number(o, k, v == null ? Double.NaN : v));
        write(o);
    }

    @Override
    public void onEvaluation(String stage, long step, Map<String, Double> metrics) {
        JsonObject o = event("evaluation", stage);
        o.addProperty("step", step);
        JsonObject values = new JsonObject();
        new TreeMap<>(metrics).forEach((k, v) -> number(values, k, v == null ? Double.NaN : v));
        o.add("metrics", values);
        write(o);
    }

    @Override
    public void onCheckpoint(String stage, long step, Path folder) {
        JsonObject o = event("checkpoint", stage);
        o.addProperty("step", step);
        o.addProperty("path", folder.toString());
        write(o);
    }

    @Override
    public void onStageEnd(StageReport r) {
        JsonObject o = event("stage_end", r.stage());
        o.addProperty("steps", r.steps());
        o.addProperty("total_steps", r.totalSteps());
        o.addProperty("resumed_from_step", r.resumedFromStep());
        o.addProperty("examples", r.examples());
        o.addProperty("skipped_examples", r.skippedExamples());
        o.addProperty("tokens", r.tokens());
        o.addProperty("answer_tokens", r.answerTokens());
        number(o, "final_loss", r.finalLoss());
        number(o, "mean_loss", r.meanLoss());
        number(o, "seconds", r.time().toNanos() / 1e9);
        write(o);
    }

    private static JsonObject event(String kind, String stage) {
        JsonObject o = new JsonObject();
        o.addProperty("event", kind);
        o.addProperty("stage", stage);
        o.addProperty("time_ms", System.currentTimeMillis());
        return o;
    }

    private static void number(JsonObject o, String key, double v) {
        if (Double.isFinite(v)) {
            o.addProperty(key, v);
        } else {
            o.add(key, JsonNull.INSTANCE);
        }
    }

    private synchronized void dropStepsAfter(String stage, long step) {
        try {
            out.close();
            try {
                StepLogs.dropStepsAfter(file, stage, step);
            } finally {
                out = append(file); // appending goes on even if the old lines could not be dropped
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot drop the lines after step " + step + " of " + stage
                    + " on resume: " + e.getMessage(), e);
        }
    }

    private synchronized void write(JsonObject o) {
        try {
            out.write(o.toString());
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write metrics: " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }
}
