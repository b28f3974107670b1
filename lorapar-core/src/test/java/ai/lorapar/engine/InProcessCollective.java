package ai.lorapar.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A testing aid: the N ranks of a data-parallel job as N threads of one JVM, each with its own
 * {@link Collective} and its own copy of the model.
 *
 * <p><b>The ranks take turns.</b> Rank 0 runs until its next collective operation, then rank 1 until its,
 * …; when the last rank arrives the operation completes (sums taken on the host in double precision in
 * rank order 0, 1, …, so results are deterministic) and rank 0 goes on. Only one rank thread computes at a
 * time because DJL's {@code PtGradientCollector} allows one collecting gradient collector per JVM (a static
 * flag: a second thread opening one fails) and sampling seeds the engine's global generator; it also keeps
 * the CPU tests from oversubscribing the machine. A real job runs one JVM per rank, where neither applies.
 * Torch's grad mode is thread-local and on by default in a new thread, while DJL's engine turns it off on
 * the thread that loads it; each rank thread turns it off too, as the trainers expect.
 *
 * <p>Arrays go through the host (this is a test helper: NCCL sums on the device). A rank that fails makes
 * the others fail at their next wait (no hang); every wait gives up after {@link #TIMEOUT_SECONDS}.
 */
public final class InProcessCollective implements Collective {
    /** How long a rank waits for the others before failing. */
    public static final long TIMEOUT_SECONDS = 300;

    /** The work of one rank. */
    @FunctionalInterface
    public interface RankBody<T> {
        T run(Collective collective) throws Exception;
    }

    private final Group group;
    private final int rank;
    private boolean closed;

    private InProcessCollective(Group group, int rank) {
        this.group = group;
        this.rank = rank;
    }

    /**
     * Runs {@code body} on {@code n} ranks (threads taking turns, rank 0 first) and returns their results by
     * rank; the first failure is rethrown (the others' are suppressed into it).
     */
    public static <T> List<T> run(int n, RankBody<T> body) throws Exception {
        if (n < 1) {
            throw new IllegalArgumentException("world size must be >= 1, got " + n);
        }
        EngineSupport.requireEngine(); // loaded (and its native library) before any rank thread touches torch
        Group group = new Group(n);
        List<T> results = new ArrayList<>();
        Throwable[] failures = new Throwable[n];
        List<Thread> threads = new ArrayList<>();
        for (int r = 0; r < n; r++) {
            results.add(null);
            int rank = r;
            Thread t = new Thread(() -> {
                InProcessCollective c = new InProcessCollective(group, rank);
                try {
                    JniUtils.setGradMode(false); // as on the thread that loaded the engine
                    group.awaitTurn(rank, -1);
                    results.set(rank, body.run(c));
                    group.leave(rank);
                } catch (Throwable e) {
                    failures[rank] = e;
                    group.fail(rank, e);
                }
            }, "rank-" + r);
            threads.add(t);
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            t.join(TimeUnit.SECONDS.toMillis(TIMEOUT_SECONDS * 4));
            if (t.isAlive()) {
                group.fail(-1, new IllegalStateException("timed out"));
                throw new IllegalStateException(t.getName() + " did not finish within " + TIMEOUT_SECONDS * 4 + " s");
            }
        }
        Throwable first = group.firstFailure;
        if (first != null) {
            for (Throwable f : failures) {
                if (f != null && f != first) {
                    first.addSuppressed(f);
                }
            }
            if (first instanceof Exception e) {
                throw e;
            }
            throw (Error) first;
        }
        return results;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return group.n;
    }

    @Override
    public void allReduceSum(NDList arrays) {
        double[][] mine = new double[arrays.size()][];
        String signature = signature("allReduceSum", arrays);
        for (int i = 0; i < arrays.size(); i++) {
            mine[i] = arrays.get(i).toType(DataType.FLOAT64, true).toDoubleArray();
        }
        double[][] sum = (double[][]) group.exchange(rank, signature, mine, deposits -> {
            double[][] acc = new double[mine.length][];
            for (int i = 0; i < mine.length; i++) {
                acc[i] = new double[mine[i].length];
                for (Object d : deposits) { // rank order
                    double[] x = ((double[][]) d)[i];
                    for (int j = 0; j < x.length; j++) {
                        acc[i][j] += x[j];
                    }
                }
            }
            return acc;
        });
        writeBack(arrays, sum);
    }

    @Override
    public void broadcast(NDList arrays, int root) {
        if (root < 0 || root >= group.n) {
            throw new IllegalArgumentException("root " + root + " outside a world of size " + group.n);
        }
        double[][] mine = null;
        if (rank == root) {
            mine = new double[arrays.size()][];
            for (int i = 0; i < arrays.size(); i++) {
                mine[i] = arrays.get(i).toType(DataType.FLOAT64, true).toDoubleArray();
            }
        }
        double[][] value = (double[][]) group.exchange(rank, signature("broadcast(" + root + ")", arrays), mine,
                deposits -> deposits[root]);
        if (rank != root) {
            writeBack(arrays, value);
        }
    }

    @Override
    public void barrier() {
        group.exchange(rank, "barrier", null, deposits -> null);
    }

    @Override
    public void close() {
        closed = true;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("rank " + rank + " has left the job (closed)");
        }
    }

    private String signature(String op, NDList arrays) {
        checkOpen();
        StringBuilder sb = new StringBuilder(op);
        for (NDArray a : arrays) {
            sb.append(' ').append(a.getDataType()).append(a.getShape());
        }
        return sb.toString();
    }

    private static void writeBack(NDList arrays, double[][] values) {
        for (int i = 0; i < arrays.size(); i++) {
            NDArray a = arrays.get(i);
            try (NDManager s = a.getManager().newSubManager()) {
                Shape shape = a.getShape();
                NDArray v = s.create(values[i], shape).toType(a.getDataType(), false);
                v.attach(s);
                a.set(new NDIndex("..."), v);
            }
        }
    }

    /** The rendezvous and the turn of the ranks of one job. */
    private static final class Group {
        final int n;
        int turn;
        int arrived;
        long generation;
        String signature;
        final Object[] deposits;
        Object result;
        final boolean[] left;
        Throwable firstFailure;

        Group(int n) {
            this.n = n;
            this.deposits = new Object[n];
            this.left = new boolean[n];
        }

        interface Combine {
            Object apply(Object[] deposits);
        }

        synchronized void awaitTurn(int rank, long afterGeneration) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
            while (turn != rank || generation <= afterGeneration) {
                if (firstFailure != null) {
                    throw new IllegalStateException("rank " + rank + " stops: another rank failed", firstFailure);
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("rank " + rank + " waited " + TIMEOUT_SECONDS
                            + " s for the other ranks");
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
        }

        /** Deposits, passes the turn on, waits for the operation to complete and for the turn to come back. */
        Object exchange(int rank, String op, Object deposit, Combine combine) {
            synchronized (this) {
                if (firstFailure != null) {
                    throw new IllegalStateException("rank " + rank + " stops: another rank failed", firstFailure);
                }
                if (arrived == 0) {
                    signature = op;
                } else if (!signature.equals(op)) {
                    IllegalStateException e = new IllegalStateException("rank " + rank + " called " + op
                            + " while rank 0 called " + signature);
                    fail(rank, e);
                    throw e;
                }
                deposits[rank] = deposit;
                arrived++;
                long mine = generation;
                if (arrived == n) {
                    result = combine.apply(deposits.clone());
                    Arrays.fill(deposits, null);
                    arrived = 0;
                    generation++;
                    turn = 0;
                } else {
                    turn = rank + 1;
                }
                notifyAll();
                try {
                    awaitTurn(rank, mine);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("rank " + rank + " interrupted", e);
                }
                return result;
            }
        }

        synchronized void leave(int rank) {
            left[rank] = true;
            turn = rank + 1;
            notifyAll();
        }

        synchronized void fail(int rank, Throwable e) {
            if (firstFailure == null) {
                firstFailure = e;
            }
            notifyAll();
        }
    }
}
