package ai.lorapar.train;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The data order: every example exactly once per epoch, seeded, and grouped by length on request. */
class BatchPlanTest {
    private static int[] lengths(int n, long seed) {
        Random r = new Random(seed);
        int[] l = new int[n];
        for (int i = 0; i < n; i++) {
            l[i] = 5 + r.nextInt(60);
        }
        return l;
    }

    private static int[] flat(List<int[]> batches) {
        return batches.stream().flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void everyExampleOncePerEpochInBatchesOfTheMicroBatchSize() {
        for (boolean grouped : new boolean[] {false, true}) {
            BatchPlan plan = new BatchPlan(lengths(23, 1), 4, 3, grouped, 7);
            assertThat(plan.microBatchesPerEpoch()).isEqualTo(6);
            assertThat(plan.stepsPerEpoch()).isEqualTo(2);
            assertThat(plan.stepLength(0)).isEqualTo(3);
            assertThat(plan.stepLength(3)).isEqualTo(3);
            for (int epoch = 0; epoch < 3; epoch++) {
                List<int[]> b = plan.epoch(epoch);
                int[] all = flat(b);
                Arrays.sort(all);
                assertThat(all).as("grouped=%s epoch %d", grouped, epoch)
                        .containsExactly(java.util.stream.IntStream.range(0, 23).toArray());
                assertThat(b).hasSize(6);
                long full = b.stream().filter(x -> x.length == 4).count();
                assertThat(full).isEqualTo(5);
            }
        }
    }

    @Test
    void theOrderIsAFunctionOfSeedAndEpoch() {
        int[] l = lengths(30, 2);
        BatchPlan a = new BatchPlan(l, 4, 2, false, 7);
        BatchPlan b = new BatchPlan(l, 4, 2, false, 7);
        assertThat(flat(a.epoch(1))).containsExactly(flat(b.epoch(1)));
        assertThat(flat(a.epoch(0))).isNotEqualTo(flat(a.epoch(1)));
        assertThat(flat(new BatchPlan(l, 4, 2, false, 8).epoch(0))).isNotEqualTo(flat(a.epoch(0)));
        // the permutation does not depend on the micro-batch size (so 4 x 2 and 8 x 1 see the same steps)
        assertThat(flat(new BatchPlan(l, 8, 1, false, 7).epoch(0))).containsExactly(flat(a.epoch(0)));
    }

    @Test
    void groupingPutsSimilarLengthsTogetherInARandomOrderOfBatches() {
        int[] l = lengths(64, 3);
        BatchPlan plan = new BatchPlan(l, 8, 1, true, 11);
        List<int[]> batches = plan.epoch(0);
        // the batches cover disjoint length ranges: sorted by their minimum, each maximum <= the next minimum
        List<int[]> ranges = new ArrayList<>();
        long padding = 0;
        for (int[] b : batches) {
            int min = Arrays.stream(b).map(i -> l[i]).min().orElseThrow();
            int max = Arrays.stream(b).map(i -> l[i]).max().orElseThrow();
            ranges.add(new int[] {min, max});
            for (int i : b) {
                padding += max - l[i];
            }
        }
        ranges.sort((x, y) -> Integer.compare(x[0], y[0]));
        for (int i = 1; i < ranges.size(); i++) {
            assertThat(ranges.get(i - 1)[1]).isLessThanOrEqualTo(ranges.get(i)[0]);
        }
        long randomPadding = 0;
        for (int[] b : new BatchPlan(l, 8, 1, false, 11).epoch(0)) {
            int max = Arrays.stream(b).map(i -> l[i]).max().orElseThrow();
            for (int i : b) {
                randomPadding += max - l[i];
            }
        }
        assertThat(padding).isLessThan(randomPadding / 3);
        // the batches are not simply in length order
        List<Integer> mins = batches.stream().map(b -> Arrays.stream(b).map(i -> l[i]).min().orElseThrow()).toList();
        assertThat(mins).isNotEqualTo(mins.stream().sorted().toList());
        assertThat(flat(plan.epoch(1))).isNotEqualTo(flat(batches));
    }
}
