package ai.lorapar.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class ImportanceAccumulatorTest extends DeviceTest {
    private static final String A = "model.layers.0.self_attn.q_proj.lora_A";
    private static final String B = "model.layers.0.self_attn.q_proj.lora_B";

    /** Input dtype of parameters and gradients (fp32 here; bf16 in the GPU variant). */
    protected DataType inputType() {
        return DataType.FLOAT32;
    }

    /** Relative tolerance of the comparison with the fp64 reference. */
    protected double tolerance() {
        return 1e-5;
    }

    private static float[] random(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /** Rounds to what the input dtype can hold, so the reference sees the same inputs. */
    private float[] representable(float[] v) {
        return floats(manager.create(v).toType(inputType(), false));
    }

    @Test
    void matchesNaiveFormulaOnRandomInputs() {
        Random rnd = new Random(7);
        int n = 9;
        float[] phiA = representable(random(rnd, 6));
        float[] phiB = representable(random(rnd, 8));
        float[][] gA = new float[n][];
        float[][] gB = new float[n][];
        try (ImportanceAccumulator acc = new ImportanceAccumulator(manager)) {
            for (int i = 0; i < n; i++) {
                gA[i] = representable(random(rnd, 6));
                gB[i] = representable(random(rnd, 8));
                acc.add(Map.of(A, array(phiA, 2, 3).toType(inputType(), false), B, array(phiB, 4, 2).toType(inputType(), false)),
                        Map.of(A, array(gA[i], 2, 3).toType(inputType(), false), B, array(gB[i], 4, 2).toType(inputType(), false)));
            }
            assertThat(acc.count()).isEqualTo(n);
            try (ImportanceMap map = acc.result()) {
                assertThat(map.names()).containsExactly(A, B);
                assertThat(map.numExamples()).isEqualTo(n);
                assertThat(map.get(A).getShape().getShape()).containsExactly(2, 3);
                assertThat(map.get(A).getDataType()).isEqualTo(DataType.FLOAT32);
                assertClose(floats(map.get(A)), naive(phiA, gA));
                assertClose(floats(map.get(B)), naive(phiB, gB));
            }
        }
    }

    @Test
    void batchOfPerExampleGradientsEqualsOneAtATime() {
        Random rnd = new Random(11);
        float[] phi = random(rnd, 6);
        int n = 5;
        float[][] g = new float[n][];
        NDList rows = new NDList();
        try (ImportanceAccumulator single = new ImportanceAccumulator(manager);
                ImportanceAccumulator batch = new ImportanceAccumulator(manager)) {
            for (int i = 0; i < n; i++) {
                g[i] = random(rnd, 6);
                single.add(Map.of(A, array(phi, 2, 3)), Map.of(A, array(g[i], 2, 3)));
                rows.add(array(g[i], 2, 3));
            }
            batch.addBatch(Map.of(A, array(phi, 2, 3)), Map.of(A, NDArrays.stack(rows)));
            assertThat(batch.count()).isEqualTo(n);
            try (ImportanceMap s = single.result(); ImportanceMap b = batch.result()) {
                float[] expected = naive(phi, g);
                assertClose(floats(s.get(A)), expected);
                assertClose(floats(b.get(A)), expected);
            }
        }
    }

    @Test
    void standardLoraInitGivesZeroImportance() {
        // B = 0: B's elements are zero and A's gradient is zero, so every g·φ vanishes.
        float[] phiA = {0.3f, -0.2f, 0.5f, 0.1f};
        float[] phiB = {0f, 0f, 0f, 0f};
        try (ImportanceAccumulator acc = new ImportanceAccumulator(manager)) {
            acc.add(Map.of(A, array(phiA, 2, 2), B, array(phiB, 2, 2)),
                    Map.of(A, array(new float[4], 2, 2), B, array(new float[] {1, 2, 3, 4}, 2, 2)));
            try (ImportanceMap map = acc.result()) {
                assertThat(floats(map.get(A))).containsOnly(0f);
                assertThat(floats(map.get(B))).containsOnly(0f);
            }
        }
    }

    @Test
    void rejectsMismatchedInputs() {
        try (ImportanceAccumulator acc = new ImportanceAccumulator(manager)) {
            assertThatThrownBy(acc::result).isInstanceOf(IllegalStateException.class).hasMessageContaining("no examples");
            NDArray phi = array(new float[6], 2, 3);
            assertThatThrownBy(() -> acc.add(Map.of(A, phi), Map.of(A, array(new float[6], 3, 2))))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining(A).hasMessageContaining("(3, 2)").hasMessageContaining("(2, 3)");
            assertThatThrownBy(() -> acc.add(Map.of(A, phi), Map.of(B, phi)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(B);
            acc.add(Map.of(A, phi), Map.of(A, phi));
            Map<String, NDArray> two = new LinkedHashMap<>();
            two.put(A, phi);
            two.put(B, phi);
            assertThatThrownBy(() -> acc.add(two, two)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("differ from the first example");
        }
    }

    /** I_j = |mean_i(g_ij·φ_j) − 0.5·mean_i(g_ij²)·φ_j²|, in fp64. */
    private static float[] naive(float[] phi, float[][] g) {
        float[] out = new float[phi.length];
        for (int j = 0; j < phi.length; j++) {
            double first = 0;
            double second = 0;
            for (float[] gi : g) {
                first += (double) gi[j] * phi[j];
                second += (double) gi[j] * gi[j];
            }
            first /= g.length;
            second /= g.length;
            out[j] = (float) Math.abs(first - 0.5 * second * phi[j] * phi[j]);
        }
        return out;
    }

    private void assertClose(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < actual.length; i++) {
            assertThat((double) actual[i]).as("element %d", i)
                    .isCloseTo(expected[i], within(tolerance() * Math.max(1, Math.abs(expected[i]))));
        }
    }
}
