package ai.lorapar.partition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.lora.LoraTensorName;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SubregionPartitionTest extends DeviceTest {
    private static final String Q0A = "model.layers.0.self_attn.q_proj.lora_A";

    private ImportanceMap map(Map<String, float[]> values, Map<String, long[]> shapes) {
        Map<String, NDArray> arrays = new LinkedHashMap<>();
        values.forEach((k, v) -> arrays.put(k, array(v, shapes.get(k))));
        return ImportanceMap.of(manager, arrays, 1);
    }

    private ImportanceMap single(float... values) {
        return map(Map.of(Q0A, values), Map.of(Q0A, new long[] {values.length}));
    }

    private SubregionPartition partition(ImportanceMap s1, ImportanceMap s2, double theta, double alpha, double beta) {
        return SubregionPartition.builder().system1(s1).system2(s2).theta(theta).alpha(alpha).beta(beta).build();
    }

    @Test
    void thetaKeepsTheSmallestPrefixReachingItsShare() {
        // total 15: θ = 0.5 needs 7.5 → 5 + 4 = 9 ≥ 7.5 after two elements.
        try (ImportanceMap s1 = single(3, 5, 1, 4, 2, 0); ImportanceMap s2 = single(0, 1, 5, 2, 3, 4);
                SubregionPartition p = partition(s1, s2, 0.5, 1, 1)) {
            // S1 keeps {5, 4} = idx 1, 3; S2 keeps {5, 4} = idx 2, 5 (5 + 4 = 9 ≥ 7.5).
            assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(false, true, false, true, false, false);
            assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsExactly(false, false, true, false, false, true);
            PartitionStatistics.Row all = p.statistics().total();
            assertThat(all.elements()).isEqualTo(6);
            assertThat(all.system1Kept()).isEqualTo(2);
            assertThat(all.shared()).isZero();
        }
    }

    @Test
    void exactThresholdHitStopsThere() {
        // total 10, θ = 0.5 → 5 reached exactly by the first element.
        try (ImportanceMap s1 = single(5, 3, 2); ImportanceMap s2 = single(5, 3, 2);
                SubregionPartition p = partition(s1, s2, 0.5, 1, 1)) {
            assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(true, false, false);
        }
    }

    @Test
    void tiesGoToTheEarlierElementInNaturalTensorOrder() {
        // layers.2 sorts before layers.10 although "10" < "2" as text.
        String late = "model.layers.10.mlp.up_proj.lora_A";
        String early = "model.layers.2.mlp.up_proj.lora_A";
        Map<String, float[]> v = new LinkedHashMap<>();
        v.put(late, new float[] {1, 1});
        v.put(early, new float[] {1, 1});
        Map<String, long[]> s = Map.of(late, new long[] {2}, early, new long[] {2});
        // total 4, θ = 0.5 → two of four equal elements: both of layers.2.
        try (ImportanceMap s1 = map(v, s); ImportanceMap s2 = map(v, s); SubregionPartition p = partition(s1, s2, 0.5, 1, 1)) {
            assertThat(p.names()).containsExactly(early, late);
            assertThat(booleans(p.stageMasks().stage1().get(early))).containsExactly(true, true);
            assertThat(booleans(p.stageMasks().stage1().get(late))).containsExactly(false, false);
        }
    }

    @Test
    void thetaOneKeepsEveryNonZeroElementAndTinyThetaKeepsTheMaximum() {
        try (ImportanceMap s1 = single(0, 2, 0, 1, 3); ImportanceMap s2 = single(1, 1, 1, 1, 1)) {
            try (SubregionPartition p = partition(s1, s2, 1.0, 1, 1)) {
                assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(false, true, false, true, true);
                assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsOnly(true);
            }
            try (SubregionPartition p = partition(s1, s2, 1e-9, 1, 1)) {
                assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(false, false, false, false, true);
                assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsExactly(true, false, false, false, false);
            }
        }
    }

    @Test
    void alphaAndBetaSelectTheTopOfTheSharedRegion() {
        // θ = 1: S1 keeps idx 0..4 (non-zero), S2 keeps idx 1..5 → shared = 1..4, S1-only {0}, S2-only {5}.
        float[] i1 = {9, 4, 1, 3, 2, 0};
        float[] i2 = {0, 1, 2, 4, 3, 8};
        try (ImportanceMap s1 = single(i1); ImportanceMap s2 = single(i2)) {
            try (SubregionPartition p = partition(s1, s2, 1.0, 0, 0)) {
                assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(true, false, false, false, false, false);
                assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsExactly(false, false, false, false, false, true);
                assertThat(p.statistics().total().shared()).isEqualTo(4);
            }
            try (SubregionPartition p = partition(s1, s2, 1.0, 1, 1)) {
                assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(true, true, true, true, true, false);
                assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsExactly(false, true, true, true, true, true);
            }
            // ⌊0.5·4⌋ = 2: stage 1 adds the top two shared by S1 (idx 1: 4, idx 3: 3); stage 2 by S2 (idx 3: 4, idx 4: 3).
            try (SubregionPartition p = partition(s1, s2, 1.0, 0.5, 0.5)) {
                assertThat(booleans(p.stageMasks().stage1().get(Q0A))).containsExactly(true, true, false, true, false, false);
                assertThat(booleans(p.stageMasks().stage2().get(Q0A))).containsExactly(false, false, false, true, true, true);
                Map<String, NDArray> shared = p.regionMasks(Region.SHARED, manager);
                assertThat(booleans(shared.get(Q0A))).containsExactly(false, true, true, true, true, false);
                assertThat(booleans(p.regionMasks(Region.SYSTEM1_ONLY, manager).get(Q0A)))
                        .containsExactly(true, false, false, false, false, false);
                assertThat(booleans(p.regionMasks(Region.SYSTEM2_ONLY, manager).get(Q0A)))
                        .containsExactly(false, false, false, false, false, true);
            }
            // ⌊0.3·4⌋ = 1.
            try (SubregionPartition p = partition(s1, s2, 1.0, 0.3, 0.3)) {
                assertThat(p.statistics().total().stage1()).isEqualTo(2);
                assertThat(p.statistics().total().stage2()).isEqualTo(2);
            }
        }
    }

    @Test
    void matchesNaiveReferenceOnRandomTiedInputs() {
        Random rnd = new Random(42);
        List<String> names = new ArrayList<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (int layer : new int[] {0, 1, 10}) {
            for (String module : new String[] {"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}) {
                for (String ab : new String[] {"A", "B"}) {
                    String n = "model.layers." + layer + "." + module + ".lora_" + ab;
                    names.add(n);
                    shapes.put(n, ab.equals("A") ? new long[] {2, 1 + rnd.nextInt(6)} : new long[] {1 + rnd.nextInt(6), 2});
                }
            }
        }
        Map<String, float[]> v1 = new LinkedHashMap<>();
        Map<String, float[]> v2 = new LinkedHashMap<>();
        for (String n : names) {
            int size = (int) (shapes.get(n)[0] * shapes.get(n)[1]);
            v1.put(n, tiedValues(rnd, size));
            v2.put(n, tiedValues(rnd, size));
        }
        try (ImportanceMap s1 = map(v1, shapes); ImportanceMap s2 = map(v2, shapes)) {
            for (double theta : new double[] {0.05, 0.3, 0.5, 0.9, 1.0}) {
                for (double[] ab : new double[][] {{1, 1}, {0, 0}, {0.5, 0.25}, {0.3, 0.7}}) {
                    try (SubregionPartition p = partition(s1, s2, theta, ab[0], ab[1])) {
                        Naive expected = new Naive(v1, v2, theta, ab[0], ab[1]);
                        String ctx = "θ=" + theta + " α=" + ab[0] + " β=" + ab[1];
                        assertThat(concat(p.stageMasks().stage1())).as(ctx).containsExactly(expected.stage1);
                        assertThat(concat(p.stageMasks().stage2())).as(ctx).containsExactly(expected.stage2);
                        assertThat(p.stageMasks().stage1Count()).isEqualTo(count(expected.stage1));
                        assertStatistics(p.statistics(), expected, shapes);
                    }
                }
            }
        }
    }

    @Test
    void sampledCutMatchesNaiveReferenceOnLargerArrays() {
        long saved = TopSelection.exactSortLimit;
        TopSelection.exactSortLimit = 1000; // force the bracketed path on a 60 k-element problem
        try {
            Random rnd = new Random(5);
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, float[]> v1 = new LinkedHashMap<>();
            Map<String, float[]> v2 = new LinkedHashMap<>();
            for (int layer = 0; layer < 5; layer++) {
                for (String ab : new String[] {"A", "B"}) {
                    String n = "model.layers." + layer + ".mlp.gate_proj.lora_" + ab;
                    shapes.put(n, new long[] {60, 100});
                    float[] a = new float[6000];
                    float[] b = new float[6000];
                    for (int i = 0; i < a.length; i++) {
                        // Skewed, heavily tied values on a 1/64 grid: exact sums in fp32 and fp64 alike.
                        a[i] = (float) Math.floor(64 * Math.pow(rnd.nextDouble(), 4)) / 64f;
                        b[i] = rnd.nextInt(64) / 64f;
                    }
                    v1.put(n, a);
                    v2.put(n, b);
                }
            }
            try (ImportanceMap s1 = map(v1, shapes); ImportanceMap s2 = map(v2, shapes)) {
                for (double theta : new double[] {0.01, 0.5, 0.9, 0.999}) {
                    for (double[] ab : new double[][] {{1, 1}, {0.5, 0.25}}) {
                        try (SubregionPartition p = partition(s1, s2, theta, ab[0], ab[1])) {
                            Naive expected = new Naive(v1, v2, theta, ab[0], ab[1]);
                            String ctx = "θ=" + theta + " α=" + ab[0] + " β=" + ab[1];
                            assertThat(concat(p.stageMasks().stage1())).as(ctx).containsExactly(expected.stage1);
                            assertThat(concat(p.stageMasks().stage2())).as(ctx).containsExactly(expected.stage2);
                            assertStatistics(p.statistics(), expected, shapes);
                        }
                    }
                }
            }
        } finally {
            TopSelection.exactSortLimit = saved;
        }
    }

    private static float[] tiedValues(Random rnd, int size) {
        float[] v = new float[size];
        for (int i = 0; i < size; i++) {
            v[i] = rnd.nextInt(8) / 8f; // many ties, zeros included; sums stay exact
        }
        v[0] += 0.125f; // never all-zero
        return v;
    }

    private boolean[] concat(Map<String, NDArray> masks) {
        List<Boolean> all = new ArrayList<>();
        for (NDArray m : masks.values()) {
            for (boolean b : booleans(m)) {
                all.add(b);
            }
        }
        boolean[] out = new boolean[all.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = all.get(i);
        }
        return out;
    }

    private static long count(boolean[] b) {
        long n = 0;
        for (boolean x : b) {
            n += x ? 1 : 0;
        }
        return n;
    }

    private static void assertStatistics(PartitionStatistics stats, Naive n, Map<String, long[]> shapes) {
        Map<String, long[]> groups = new TreeMap<>();
        int offset = 0;
        for (String name : n.names) {
            long[] s = shapes.get(name);
            int size = (int) (s[0] * s[1]);
            LoraTensorName t = LoraTensorName.parse(name);
            for (String g : new String[] {"all", "module=" + t.module(), "layer=" + t.layer(), "matrix=" + t.matrix()}) {
                long[] c = groups.computeIfAbsent(g, k -> new long[6]);
                for (int i = offset; i < offset + size; i++) {
                    c[0]++;
                    c[1] += n.keep1[i] ? 1 : 0;
                    c[2] += n.keep2[i] ? 1 : 0;
                    c[3] += n.keep1[i] && n.keep2[i] ? 1 : 0;
                    c[4] += n.stage1[i] ? 1 : 0;
                    c[5] += n.stage2[i] ? 1 : 0;
                }
            }
            offset += size;
        }
        assertThat(stats.rows()).hasSize(groups.size());
        groups.forEach((g, c) -> {
            PartitionStatistics.Row r = stats.row(g);
            assertThat(new long[] {r.elements(), r.system1Kept(), r.system2Kept(), r.shared(), r.stage1(), r.stage2()})
                    .as(g).containsExactly(c);
            assertThat(r.system1Only()).isEqualTo(c[1] - c[3]);
            assertThat(r.system2Only()).isEqualTo(c[2] - c[3]);
        });
    }

    /** The partition computed the obvious way: sort indices, walk them, count. */
    private static final class Naive {
        final List<String> names = new ArrayList<>();
        final boolean[] keep1;
        final boolean[] keep2;
        final boolean[] stage1;
        final boolean[] stage2;

        Naive(Map<String, float[]> v1, Map<String, float[]> v2, double theta, double alpha, double beta) {
            names.addAll(v1.keySet());
            names.sort(LoraTensorName.NATURAL_ORDER);
            float[] f1 = flat(v1);
            float[] f2 = flat(v2);
            keep1 = keep(f1, theta);
            keep2 = keep(f2, theta);
            int n = f1.length;
            boolean[] shared = new boolean[n];
            int sharedCount = 0;
            for (int i = 0; i < n; i++) {
                shared[i] = keep1[i] && keep2[i];
                sharedCount += shared[i] ? 1 : 0;
            }
            stage1 = stage(keep1, shared, f1, (long) Math.floor(alpha * sharedCount));
            stage2 = stage(keep2, shared, f2, (long) Math.floor(beta * sharedCount));
        }

        private float[] flat(Map<String, float[]> v) {
            int n = 0;
            for (String name : names) {
                n += v.get(name).length;
            }
            float[] out = new float[n];
            int o = 0;
            for (String name : names) {
                System.arraycopy(v.get(name), 0, out, o, v.get(name).length);
                o += v.get(name).length;
            }
            return out;
        }

        private static Integer[] ranking(float[] v) {
            Integer[] idx = new Integer[v.length];
            for (int i = 0; i < idx.length; i++) {
                idx[i] = i;
            }
            Arrays.sort(idx, Comparator.<Integer>comparingDouble(i -> -v[i]).thenComparingInt(i -> i));
            return idx;
        }

        private static boolean[] keep(float[] v, double theta) {
            Integer[] order = ranking(v);
            double total = 0;
            for (Integer i : order) {
                total += v[i];
            }
            boolean[] keep = new boolean[v.length];
            double cumulative = 0;
            for (Integer i : order) {
                keep[i] = true;
                cumulative += v[i];
                if (cumulative >= theta * total) {
                    break;
                }
            }
            return keep;
        }

        private static boolean[] stage(boolean[] kept, boolean[] shared, float[] v, long k) {
            boolean[] out = new boolean[v.length];
            for (int i = 0; i < v.length; i++) {
                out[i] = kept[i] && !shared[i];
            }
            long taken = 0;
            for (Integer i : ranking(v)) {
                if (taken == k) {
                    break;
                }
                if (shared[i]) {
                    out[i] = true;
                    taken++;
                }
            }
            return out;
        }
    }

    @Test
    void randomBaselineHasTheSameStageCountsAndIsSeeded() {
        Random rnd = new Random(3);
        float[] a = tiedValues(rnd, 200);
        float[] b = tiedValues(rnd, 200);
        try (ImportanceMap s1 = single(a); ImportanceMap s2 = single(b); SubregionPartition p = partition(s1, s2, 0.6, 1, 0.5);
                StageMasks r1 = p.randomBaseline(17); StageMasks r2 = p.randomBaseline(17); StageMasks r3 = p.randomBaseline(18)) {
            assertThat(r1.stage1Count()).isEqualTo(p.stageMasks().stage1Count());
            assertThat(r1.stage2Count()).isEqualTo(p.stageMasks().stage2Count());
            assertThat(count(booleans(r1.stage1().get(Q0A)))).isEqualTo(p.statistics().total().stage1());
            assertThat(booleans(r2.stage1().get(Q0A))).containsExactly(booleans(r1.stage1().get(Q0A)));
            assertThat(booleans(r3.stage1().get(Q0A))).isNotEqualTo(booleans(r1.stage1().get(Q0A)));
            assertThat(booleans(r1.stage1().get(Q0A))).isNotEqualTo(booleans(p.stageMasks().stage1().get(Q0A)));
            assertThat(r1.origin()).isEqualTo("random(seed=17)");
        }
    }

    @Test
    void stageMasksRoundTripThroughSafetensors(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        try (ImportanceMap s1 = single(3, 1, 2, 0); ImportanceMap s2 = single(0, 2, 2, 1);
                SubregionPartition p = partition(s1, s2, 0.7, 1, 1)) {
            Path file = dir.resolve("masks.safetensors");
            p.stageMasks().save(file);
            try (StageMasks loaded = StageMasks.load(file, manager)) {
                assertThat(loaded.stage1().keySet()).containsExactly(Q0A);
                assertThat(booleans(loaded.stage1().get(Q0A))).containsExactly(booleans(p.stageMasks().stage1().get(Q0A)));
                assertThat(booleans(loaded.stage2().get(Q0A))).containsExactly(booleans(p.stageMasks().stage2().get(Q0A)));
                assertThat(loaded.origin()).isEqualTo("importance");
            }
            try (var files = Files.list(dir)) {
                assertThat(files).containsExactly(file); // no temporary left behind
            }
        }
    }

    @Test
    void rejectsOutOfRangeHyperParameters() {
        assertThatThrownBy(() -> SubregionPartition.builder().theta(0)).hasMessageContaining("theta must be in (0, 1], got 0.0");
        assertThatThrownBy(() -> SubregionPartition.builder().theta(1.5)).hasMessageContaining("theta");
        assertThatThrownBy(() -> SubregionPartition.builder().theta(Double.NaN)).hasMessageContaining("theta");
        assertThatThrownBy(() -> SubregionPartition.builder().alpha(-0.1)).hasMessageContaining("alpha must be in [0, 1]");
        assertThatThrownBy(() -> SubregionPartition.builder().beta(1.1)).hasMessageContaining("beta must be in [0, 1]");
        assertThatThrownBy(() -> SubregionPartition.builder().build()).hasMessageContaining("both importance maps");
    }

    @Test
    void rejectsBadImportanceWithSpecificMessages() {
        String other = "model.layers.1.mlp.gate_proj.lora_B";
        try (ImportanceMap ok = single(1, 2, 3);
                ImportanceMap nan = map(Map.of(Q0A, new float[] {1, Float.NaN, 3}), Map.of(Q0A, new long[] {3}));
                ImportanceMap inf = map(Map.of(Q0A, new float[] {1, Float.POSITIVE_INFINITY, 3}), Map.of(Q0A, new long[] {3}));
                ImportanceMap negative = single(1, -2, 3);
                ImportanceMap zero = single(0, 0, 0);
                ImportanceMap otherName = map(Map.of(other, new float[] {1, 2, 3}), Map.of(other, new long[] {3}));
                ImportanceMap otherShape = map(Map.of(Q0A, new float[] {1, 2, 3, 4}), Map.of(Q0A, new long[] {2, 2}))) {
            assertThatThrownBy(() -> partition(ok, nan, 0.9, 1, 1)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("System 2").hasMessageContaining("NaN").hasMessageContaining(Q0A);
            assertThatThrownBy(() -> partition(inf, ok, 0.9, 1, 1)).hasMessageContaining("System 1")
                    .hasMessageContaining("infinite");
            assertThatThrownBy(() -> partition(ok, negative, 0.9, 1, 1)).hasMessageContaining("negative");
            assertThatThrownBy(() -> partition(zero, ok, 0.9, 1, 1)).hasMessageContaining("zero for every element")
                    .hasMessageContaining("B = 0").hasMessageContaining("non-zero init");
            assertThatThrownBy(() -> partition(ok, otherName, 0.9, 1, 1)).hasMessageContaining("different tensors")
                    .hasMessageContaining(other);
            assertThatThrownBy(() -> partition(ok, otherShape, 0.9, 1, 1)).hasMessageContaining(Q0A)
                    .hasMessageContaining("(3)").hasMessageContaining("(2, 2)");
        }
    }

    @Test
    void statisticsBreakDownByModuleLayerAndMatrix() {
        Map<String, float[]> v = new LinkedHashMap<>();
        v.put("model.layers.0.self_attn.q_proj.lora_A", new float[] {1, 1});
        v.put("model.layers.0.self_attn.q_proj.lora_B", new float[] {1, 1, 1});
        v.put("model.layers.1.mlp.down_proj.lora_A", new float[] {1});
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("model.layers.0.self_attn.q_proj.lora_A", new long[] {2});
        s.put("model.layers.0.self_attn.q_proj.lora_B", new long[] {3});
        s.put("model.layers.1.mlp.down_proj.lora_A", new long[] {1});
        try (ImportanceMap s1 = map(v, s); ImportanceMap s2 = map(v, s); SubregionPartition p = partition(s1, s2, 1, 1, 1)) {
            PartitionStatistics st = p.statistics();
            assertThat(st.rows()).extracting(PartitionStatistics.Row::group).containsExactly("all", "module=q",
                    "module=down", "layer=0", "layer=1", "matrix=A", "matrix=B");
            assertThat(st.row("module=q").elements()).isEqualTo(5);
            assertThat(st.row("matrix=A").elements()).isEqualTo(3);
            assertThat(st.row("layer=1").shared()).isEqualTo(1);
            assertThat(st.total().share(st.total().stage1())).isEqualTo(1.0);
            assertThat(st.format()).contains("module=down").contains("100.0%");
            assertThatThrownBy(() -> st.row("module=x")).hasMessageContaining("module=q");
        }
    }

    @Test
    void importanceMapRoundTripsBitExactly(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        try (ImportanceMap m = single(0.1f, 1e-30f, 3.5f, 0f)) {
            Path file = dir.resolve("s1.safetensors");
            m.save(file);
            try (ImportanceMap back = ImportanceMap.load(file, manager)) {
                assertThat(back.names()).containsExactly(Q0A);
                assertThat(back.numExamples()).isEqualTo(1);
                assertThat(floats(back.get(Q0A))).containsExactly(0.1f, 1e-30f, 3.5f, 0f);
                assertThat(back.get(Q0A).getShape()).isEqualTo(new Shape(4));
            }
            assertThatThrownBy(() -> StageMasks.load(file, manager)).hasMessageContaining("not a stage-mask file")
                    .hasMessageContaining(file.toString());
        }
    }
}
