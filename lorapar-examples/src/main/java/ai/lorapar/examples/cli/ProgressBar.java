package ai.lorapar.examples.cli;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A text progress bar on stderr, fed from a library listener. On a terminal it redraws one line in place
 * (at most ten times a second); otherwise (a log file, CI) it prints a line at every tenth of the work.
 *
 * <pre>label  [##########..........]  50%   500/1000  41.7/s  ETA 0:12</pre>
 */
public final class ProgressBar implements AutoCloseable {
    private static final int WIDTH = 30;

    private final String task;
    private final long total;
    private final PrintStream out;
    private final boolean interactive;
    private final long start = System.nanoTime();
    private long lastDraw;
    private int lastTenth = -1;
    private long done;
    private boolean closed;

    /** A bar for {@code total} units of {@code task}, on stderr; interactive when the JVM has a console. */
    public ProgressBar(String task, long total) {
        this(task, total, System.err, System.console() != null);
    }

    public ProgressBar(String task, long total, PrintStream out, boolean interactive) {
        if (total < 0) {
            throw new IllegalArgumentException("total must be >= 0, was " + total);
        }
        this.task = task;
        this.total = total;
        this.out = out;
        this.interactive = interactive;
    }

    /** Sets the units done so far (thread-safe; listeners may call from worker threads). */
    public synchronized void update(long doneSoFar) {
        if (closed) {
            return;
        }
        done = Math.min(Math.max(doneSoFar, 0), total);
        long now = System.nanoTime();
        if (interactive) {
            if (now - lastDraw > 100_000_000L || done == total) {
                lastDraw = now;
                out.print("\r" + line(now));
                out.flush();
            }
        } else {
            int tenth = total == 0 ? 10 : (int) (10 * done / total);
            if (tenth > lastTenth) {
                lastTenth = tenth;
                out.println(line(now));
            }
        }
    }

    /** One more unit done. */
    public synchronized void step() {
        update(done + 1);
    }

    String line(long now) {
        double seconds = (now - start) / 1e9;
        double fraction = total == 0 ? 1 : (double) done / total;
        int filled = (int) Math.round(fraction * WIDTH);
        String bar = "#".repeat(filled) + ".".repeat(WIDTH - filled);
        double rate = seconds > 0 ? done / seconds : 0;
        String eta = rate > 0 && done < total && (seconds >= 1 || fraction >= 0.05) ? clock((total - done) / rate) : done == total ? "done " + clock(seconds) : "?";
        return String.format(Locale.ROOT, "%-10s [%s] %3.0f%% %7d/%d  %.1f/s  %s", task, bar, 100 * fraction, done, total,
                rate, done == total ? eta : "ETA " + eta);
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (interactive) {
            out.print("\r" + line(System.nanoTime()));
            out.println();
        } else if (lastTenth < 10) {
            out.println(line(System.nanoTime()));
        }
        out.flush();
        closed = true;
    }
}
