package ai.lorapar.examples.pipeline;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A worker process of {@link WorkerPool}: loads the run's context and model once, then runs the units named on
 * stdin, one per line, answering each on stdout ({@code @@done UNIT} / {@code @@failed UNIT: why}). Ends at
 * the end of its input. Not meant to be started by hand: {@code java ... PipelineWorker out/work/context.json}.
 */
public final class PipelineWorker {

    private PipelineWorker() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: PipelineWorker CONTEXT.json (started by the lorapar pipeline)");
            System.exit(2);
        }
        PipelineContext context = PipelineContext.load(Path.of(args[0]));
        PipelineSettings s = context.settings();
        Writer out = new OutputStreamWriter(System.out, StandardCharsets.UTF_8);
        try (ModelHandle handle = ModelHandle.open(context.modelDir(), s.tokenizer, s.templateName(), s.maxLength,
                ModelHandle.device(s.device));
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                Unit unit = Unit.parse(line);
                try {
                    System.err.println("worker: " + unit + " ...");
                    long t0 = System.nanoTime();
                    unit.execute(handle, context, false);
                    System.err.printf("worker: %s done in %.1f s%n", unit, (System.nanoTime() - t0) / 1e9);
                    WorkerPool.answer(out, WorkerPool.DONE + unit.command());
                } catch (Exception e) {
                    e.printStackTrace();
                    WorkerPool.answer(out, WorkerPool.FAILED + unit.command() + ": " + String.valueOf(e.getMessage())
                            .replace('\n', ' '));
                }
            }
        }
    }
}
