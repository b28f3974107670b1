package ai.lorapar.examples.pipeline;

import ai.lorapar.examples.plots.Plots;
import ai.lorapar.train.MetricsJsonl;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainingListener;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One metrics JSONL per training stage ({@code metrics-sft.jsonl}, {@code metrics-grpo.jsonl}: every event of
 * that stage, as {@link MetricsJsonl} writes it), and the curves kept in memory for the plots and the report.
 */
final class StageMetricsFiles implements TrainingListener, Closeable {
    private final Path folder;
    private final Map<String, MetricsJsonl> files = new LinkedHashMap<>();
    private final List<Plots.Metric> curves = new ArrayList<>();
    private final Map<String, List<StepMetrics>> steps = new LinkedHashMap<>();

    StageMetricsFiles(Path folder) {
        this.folder = folder;
    }

    static Path file(Path folder, String stage) {
        return folder.resolve("metrics-" + stage + ".jsonl");
    }

    private MetricsJsonl of(String stage) {
        return files.computeIfAbsent(stage, s -> {
            try {
                Path f = file(folder, s);
                Files.deleteIfExists(f); // a fresh run of this folder: MetricsJsonl appends
                return MetricsJsonl.open(f);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    @Override
    public void onStageStart(StageStart s) {
        of(s.stage()).onStageStart(s);
    }

    @Override
    public void onStep(StepMetrics m) {
        of(m.stage()).onStep(m);
        steps.computeIfAbsent(m.stage(), k -> new ArrayList<>()).add(m);
        curves.add(new Plots.Metric(m.stage(), m.step(), "loss", m.loss()));
        m.details().forEach((k, v) -> curves.add(new Plots.Metric(m.stage(), m.step(), k, v == null ? Double.NaN : v)));
    }

    @Override
    public void onEvaluation(String stage, long step, Map<String, Double> metrics) {
        of(stage).onEvaluation(stage, step, metrics);
    }

    @Override
    public void onCheckpoint(String stage, long step, Path f) {
        of(stage).onCheckpoint(stage, step, f);
    }

    @Override
    public void onStageEnd(StageReport r) {
        of(r.stage()).onStageEnd(r);
    }

    /** The step reports of a stage, in order. */
    List<StepMetrics> steps(String stage) {
        return steps.getOrDefault(stage, List.of());
    }

    List<Plots.Metric> curves() {
        return curves;
    }

    @Override
    public void close() throws IOException {
        for (MetricsJsonl f : files.values()) {
            f.close();
        }
    }
}
