package ai.lorapar.train;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Which examples go into which micro-batch, epoch by epoch: a function of the seed and the epoch only,
 * so a resumed run recomputes exactly the order it was interrupted in.
 *
 * <p>Plain: a seeded permutation of the examples, cut into micro-batches of {@code microBatch} (the
 * last one may be smaller). Grouped by length: the permutation is sorted by length (stable, so equal
 * lengths keep their random order), cut into micro-batches, and the micro-batches are shuffled with
 * the same epoch's generator: similar lengths share a micro-batch (little padding) while the order of
 * micro-batches stays random. Either way every example is in exactly one micro-batch per epoch.
 * Consecutive runs of {@code accumulation} micro-batches form the optimizer steps; an epoch's last
 * step may have fewer.
 */
final class BatchPlan {
    private final int[] lengths;
    private final int microBatch;
    private final int accumulation;
    private final boolean groupByLength;
    private final long seed;

    BatchPlan(int[] lengths, int microBatch, int accumulation, boolean groupByLength, long seed) {
        if (lengths.length == 0) {
            throw new IllegalArgumentException("no examples");
        }
        if (microBatch < 1 || accumulation < 1) {
            throw new IllegalArgumentException("micro-batch " + microBatch + " and accumulation " + accumulation
                    + " must be >= 1");
        }
        this.lengths = lengths.clone();
        this.microBatch = microBatch;
        this.accumulation = accumulation;
        this.groupByLength = groupByLength;
        this.seed = seed;
    }

    int examples() {
        return lengths.length;
    }

    int microBatchesPerEpoch() {
        return (lengths.length + microBatch - 1) / microBatch;
    }

    long stepsPerEpoch() {
        return (microBatchesPerEpoch() + accumulation - 1) / accumulation;
    }

    /** Micro-batches (example indices) of the optimizer step that starts at micro-batch {@code first} of an epoch. */
    int stepLength(int first) {
        return Math.min(accumulation, microBatchesPerEpoch() - first);
    }

    /** The micro-batches of {@code epoch}, each an array of example indices. */
    List<int[]> epoch(int epoch) {
        SplittableRandom rnd = new SplittableRandom(mix(seed, epoch));
        int n = lengths.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = n - 1; i > 0; i--) { // Fisher–Yates
            int j = rnd.nextInt(i + 1);
            Integer t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        if (groupByLength) {
            Arrays.sort(order, Comparator.comparingInt(i -> lengths[i])); // stable: ties stay random
        }
        List<int[]> batches = new ArrayList<>(microBatchesPerEpoch());
        for (int start = 0; start < n; start += microBatch) {
            int end = Math.min(n, start + microBatch);
            int[] b = new int[end - start];
            for (int i = start; i < end; i++) {
                b[i - start] = order[i];
            }
            batches.add(b);
        }
        if (groupByLength) {
            for (int i = batches.size() - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int[] t = batches.get(i);
                batches.set(i, batches.get(j));
                batches.set(j, t);
            }
        }
        return batches;
    }

    /** splitmix64 of (seed, stream): well-spread seeds for nearby inputs. */
    static long mix(long seed, long stream) {
        long z = seed * 0x9E3779B97F4A7C15L + (stream + 1) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
