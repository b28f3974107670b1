package ai.lorapar.examples.pipeline;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.Writer;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Runs a run's units in order of their dependencies, either in this process (one worker) or spread over
 * several worker JVMs ({@link PipelineWorker}), each with its own model and its own torch random generator.
 *
 * <p>Why processes and not threads: DJL has one random generator per engine, which GRPO's sampling and the
 * LoRA init reseed and draw from; two threads would interleave their draws and a run would no longer be
 * reproducible. Each unit seeds everything it draws from, so a unit gives the same result in any process and in
 * any order (on one machine with the same number of torch threads).
 *
 * <p>Workers read unit commands ({@link Unit#command()}) on stdin and answer {@code @@done UNIT} or
 * {@code @@failed UNIT: message} on stdout; their logs go to {@code out/logs/worker-K.log}.
 */
final class WorkerPool {

    /** Told when a unit starts or ends (on the pool's thread). */
    interface Listener {
        default void onStart(Unit unit, int worker) {
        }

        void onDone(Unit unit, int worker, double seconds);
    }

    static final String DONE = "@@done ";
    static final String FAILED = "@@failed ";

    private WorkerPool() {
    }

    /**
     * Runs {@code units} (a unit after its dependency) with {@code workers} processes; with one worker, in this
     * process on {@code handle} (which may then be null only if there is nothing to run).
     *
     * @throws IOException when a unit fails (naming it and, for a worker process, its log)
     */
    static void run(List<Unit> units, int workers, PipelineContext context, Path contextFile, ModelHandle handle,
            boolean progress, Listener listener) throws IOException {
        if (workers <= 1) {
            for (Unit u : units) {
                listener.onStart(u, 0);
                long t0 = System.nanoTime();
                try {
                    u.execute(handle, context, progress);
                } catch (IOException | RuntimeException e) {
                    throw new IOException(u + " failed: " + e.getMessage(), e);
                }
                listener.onDone(u, 0, (System.nanoTime() - t0) / 1e9);
            }
            return;
        }
        runInProcesses(units, Math.min(workers, units.size()), context, contextFile, listener);
    }

    private record Event(int worker, String line) {
    }

    private static void runInProcesses(List<Unit> units, int workers, PipelineContext context, Path contextFile,
            Listener listener) throws IOException {
        Path logs = context.out().resolve("logs");
        Files.createDirectories(logs);
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        List<Process> processes = new ArrayList<>();
        List<PrintWriter> inputs = new ArrayList<>();
        try {
            for (int k = 0; k < workers; k++) {
                ProcessBuilder pb = new ProcessBuilder(command(contextFile));
                pb.redirectError(logs.resolve("worker-" + (k + 1) + ".log").toFile());
                Process p = pb.start();
                processes.add(p);
                inputs.add(new PrintWriter(new java.io.OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8),
                        true));
                int worker = k;
                Thread reader = new Thread(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                            StandardCharsets.UTF_8))) {
                        String line;
                        while ((line = r.readLine()) != null) {
                            if (line.startsWith(DONE) || line.startsWith(FAILED)) {
                                events.add(new Event(worker, line));
                            }
                        }
                    } catch (IOException e) {
                        // the process ended; reported below through its exit
                    }
                    events.add(new Event(worker, null));
                }, "lorapar-worker-" + (k + 1));
                reader.setDaemon(true);
                reader.start();
            }
            List<Unit> pending = new ArrayList<>(units);
            Set<Unit> done = new HashSet<>();
            Map<Integer, Unit> running = new LinkedHashMap<>();
            Map<Integer, Long> started = new LinkedHashMap<>();
            List<Integer> idle = new ArrayList<>();
            for (int k = 0; k < workers; k++) {
                idle.add(k);
            }
            while (!pending.isEmpty() || !running.isEmpty()) {
                // hand every idle worker the first unit whose dependency is done
                while (!idle.isEmpty()) {
                    Unit next = null;
                    for (Unit u : pending) {
                        if (u.dependency() == null || done.contains(u.dependency())) {
                            next = u;
                            break;
                        }
                    }
                    if (next == null) {
                        break;
                    }
                    pending.remove(next);
                    int w = idle.remove(0);
                    running.put(w, next);
                    started.put(w, System.nanoTime());
                    listener.onStart(next, w + 1);
                    inputs.get(w).println(next.command());
                }
                if (running.isEmpty()) {
                    throw new IllegalStateException("units wait on units that never run: " + pending);
                }
                Event e;
                try {
                    e = events.take();
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while waiting for the workers", ie);
                }
                Unit u = running.get(e.worker());
                Path log = logs.resolve("worker-" + (e.worker() + 1) + ".log");
                if (e.line() == null) {
                    if (u == null) {
                        continue;
                    }
                    throw new IOException("worker " + (e.worker() + 1) + " ended while running " + u + " (exit code "
                            + exitCode(processes.get(e.worker())) + "); its log: " + log + tail(log));
                }
                if (e.line().startsWith(FAILED)) {
                    throw new IOException(u + " failed in worker " + (e.worker() + 1) + ": "
                            + e.line().substring(FAILED.length()) + " (log: " + log + ")");
                }
                running.remove(e.worker());
                done.add(u);
                idle.add(e.worker());
                listener.onDone(u, e.worker() + 1, (System.nanoTime() - started.remove(e.worker())) / 1e9);
            }
        } finally {
            for (PrintWriter in : inputs) {
                in.close(); // end of input: the worker exits
            }
            for (Process p : processes) {
                try {
                    if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                        p.destroy();
                    }
                } catch (InterruptedException ie) {
                    p.destroy();
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    private static String exitCode(Process p) {
        try {
            return p.waitFor(5, java.util.concurrent.TimeUnit.SECONDS) ? String.valueOf(p.exitValue()) : "still running";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return "\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * The worker's command line: this JVM's java, its -D/-X memory options (torch threads, offline mode, log
     * levels, heap) and class path.
     */
    static List<String> command(Path contextFile) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-D") || a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-Xss")
                    || a.startsWith("--enable-native-access") || a.startsWith("--add-opens")) {
                cmd.add(a);
            }
        }
        for (String p : List.of("ai.djl.offline", "ai.djl.pytorch.num_threads", "ai.djl.pytorch.num_interop_threads",
                "java.awt.headless")) {
            String v = System.getProperty(p);
            if (v != null && cmd.stream().noneMatch(a -> a.startsWith("-D" + p + "="))) {
                cmd.add("-D" + p + "=" + v);
            }
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(PipelineWorker.class.getName());
        cmd.add(contextFile.toAbsolutePath().toString());
        return cmd;
    }

    /** Writes a protocol line (a worker's answer) and flushes. */
    static void answer(Writer out, String line) throws IOException {
        out.write(line);
        out.write('\n');
        out.flush();
    }
}
