package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class MaskedAdamWTest extends DeviceTest {
    private static final String P = "model.layers.0.mlp.up_proj.lora_A";
    private static final String Q = "model.layers.1.self_attn.k_proj.lora_B";

    /** Scalar AdamW with masks, global clipping and a schedule, in fp64: the reference. */
    private static final class ScalarAdamW {
        final double lr;
        final double b1;
        final double b2;
        final double eps;
        final double wd;
        final double maxNorm;
        final LearningRateSchedule schedule;
        final long total;
        final double[][] p;
        final double[][] m;
        final double[][] v;
        final boolean[][] mask;
        long t;

        ScalarAdamW(double lr, double b1, double b2, double eps, double wd, double maxNorm, LearningRateSchedule schedule,
                long total, float[][] p0, boolean[][] mask) {
            this.lr = lr;
            this.b1 = b1;
            this.b2 = b2;
            this.eps = eps;
            this.wd = wd;
            this.maxNorm = maxNorm;
            this.schedule = schedule;
            this.total = total;
            this.mask = mask;
            p = new double[p0.length][];
            m = new double[p0.length][];
            v = new double[p0.length][];
            for (int i = 0; i < p0.length; i++) {
                p[i] = new double[p0[i].length];
                for (int j = 0; j < p0[i].length; j++) {
                    p[i][j] = p0[i][j];
                }
                m[i] = new double[p0[i].length];
                v[i] = new double[p0[i].length];
            }
        }

        void step(float[][] g) {
            double rate = lr * schedule.multiplier(t, total);
            double sq = 0;
            for (int i = 0; i < g.length; i++) {
                for (int j = 0; j < g[i].length; j++) {
                    if (mask[i][j]) {
                        sq += (double) g[i][j] * g[i][j];
                    }
                }
            }
            double norm = Math.sqrt(sq);
            double coef = maxNorm > 0 ? Math.min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
            t++;
            for (int i = 0; i < g.length; i++) {
                for (int j = 0; j < g[i].length; j++) {
                    if (!mask[i][j]) {
                        continue;
                    }
                    double gj = g[i][j] * coef;
                    p[i][j] *= 1 - rate * wd;
                    m[i][j] = b1 * m[i][j] + (1 - b1) * gj;
                    v[i][j] = b2 * v[i][j] + (1 - b2) * gj * gj;
                    double mhat = m[i][j] / (1 - Math.pow(b1, t));
                    double vhat = v[i][j] / (1 - Math.pow(b2, t));
                    p[i][j] -= rate * mhat / (Math.sqrt(vhat) + eps);
                }
            }
        }
    }

    private static float[] gaussian(Random r, int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (r.nextGaussian() * scale);
        }
        return out;
    }

    private static boolean[] randomMask(Random r, int n) {
        boolean[] out = new boolean[n];
        for (int i = 0; i < n; i++) {
            out[i] = r.nextBoolean();
        }
        out[0] = true;
        out[1] = false;
        return out;
    }

    private void runAgainstReference(double maxNorm, double gradScale, long seed) {
        Random rnd = new Random(seed);
        float[][] p0 = {gaussian(rnd, 12, 1), gaussian(rnd, 6, 1)};
        boolean[][] masks = {randomMask(rnd, 12), randomMask(rnd, 6)};
        NDArray pa = array(p0[0], 3, 4);
        NDArray pb = array(p0[1], 6);
        Map<String, NDArray> params = new LinkedHashMap<>();
        params.put(P, pa);
        params.put(Q, pb);
        int steps = 40;
        LearningRateSchedule schedule = LearningRateSchedule.cosine(0.1);
        ScalarAdamW ref = new ScalarAdamW(1e-2, 0.9, 0.99, 1e-8, 0.1, maxNorm, schedule, steps, p0, masks);
        try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(1e-2).betas(0.9, 0.99).weightDecay(0.1)
                .maxGradNorm(maxNorm).schedule(schedule, steps)
                .build(params, Map.of(P, mask(masks[0], 3, 4), Q, mask(masks[1], 6)))) {
            for (int s = 0; s < steps; s++) {
                float[][] g = {gaussian(rnd, 12, gradScale), gaussian(rnd, 6, gradScale)};
                // Frozen gradients are garbage on purpose: they must not reach anything.
                g[0][1] = Float.NaN;
                g[1][1] = 1e30f;
                MaskedAdamW.StepResult r = opt.step(Map.of(P, array(g[0], 3, 4), Q, array(g[1], 6)));
                ref.step(g);
                assertThat(r.step()).isEqualTo(s + 1);
                assertThat(r.learningRate()).isCloseTo(1e-2 * schedule.multiplier(s, steps), within(1e-15));
                assertThat(Double.isFinite(r.gradNorm())).isTrue();
            }
            float[][] actual = {floats(pa), floats(pb)};
            float[][] m = {floats(opt.firstMoment(P)), floats(opt.firstMoment(Q))};
            float[][] v = {floats(opt.secondMoment(P)), floats(opt.secondMoment(Q))};
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < actual[i].length; j++) {
                    if (masks[i][j]) {
                        assertThat((double) actual[i][j]).as("active %d/%d", i, j).isCloseTo(ref.p[i][j], within(1e-6));
                        assertThat((double) actual[i][j]).isNotEqualTo((double) p0[i][j]);
                    } else {
                        // Bit-identical through 40 steps of weight decay 0.1, moments exactly zero.
                        assertThat(Float.floatToRawIntBits(actual[i][j])).as("frozen %d/%d", i, j)
                                .isEqualTo(Float.floatToRawIntBits(p0[i][j]));
                        assertThat(m[i][j]).isEqualTo(0f);
                        assertThat(v[i][j]).isEqualTo(0f);
                    }
                }
            }
        }
    }

    @Test
    void matchesScalarReferenceAndKeepsFrozenElementsBitIdentical() {
        runAgainstReference(0, 1.0, 1);
    }

    @Test
    void clipsTheGlobalNormOfActiveElements() {
        // Gradients of norm ~30 against a limit of 0.5: clipping acts on every step.
        runAgainstReference(0.5, 10.0, 2);
    }

    @Test
    void reportsGradientNormOverActiveElementsOnly() {
        NDArray p = array(new float[] {1, 2, 3, 4}, 4);
        try (MaskedAdamW opt = MaskedAdamW.builder().maxGradNorm(1.0)
                .build(Map.of(P, p), Map.of(P, mask(new boolean[] {true, false, true, false}, 4)))) {
            MaskedAdamW.StepResult r = opt.step(Map.of(P, array(new float[] {3, 100, 4, 100}, 4)));
            assertThat(r.gradNorm()).isCloseTo(5.0, within(1e-6));
            assertThat(r.clipped()).isTrue();
        }
    }

    @Test
    void stepsWithAutogradGradientsOnLeafParameters() {
        NDArray w = array(new float[] {0.5f, -1f, 2f}, 3);
        w.setRequiresGradient(true);
        NDArray x = array(new float[] {1f, 2f, 3f}, 3);
        try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(0.1).maxGradNorm(0)
                .build(Map.of(P, w), Map.of(P, mask(new boolean[] {true, false, true}, 3)))) {
            try (GradientCollector gc = manager.getEngine().newGradientCollector()) {
                gc.backward(w.mul(x).sum()); // dL/dw = x
            }
            opt.step();
            opt.zeroGradients();
            assertThat(floats(w.getGradient())).containsOnly(0f);
            // First Adam step moves each active element by lr·sign(g) (up to ε).
            float[] after = floats(w);
            assertThat((double) after[0]).isCloseTo(0.5 - 0.1, within(1e-6));
            assertThat(after[1]).isEqualTo(-1f);
            assertThat((double) after[2]).isCloseTo(2 - 0.1, within(1e-6));
        }
    }

    @Test
    void rejectsBadInputsNamingTheTensor() {
        NDArray p = array(new float[4], 2, 2);
        assertThatThrownBy(() -> MaskedAdamW.builder().build(Map.of(P, p), Map.of(P, mask(new boolean[4], 4))))
                .hasMessageContaining(P).hasMessageContaining("(4)").hasMessageContaining("(2, 2)");
        assertThatThrownBy(() -> MaskedAdamW.builder().build(Map.of(P, p), Map.of(Q, mask(new boolean[4], 2, 2))))
                .hasMessageContaining("no mask for parameter '" + P + "'");
        assertThatThrownBy(() -> MaskedAdamW.builder().build(Map.of(P, p.toType(DataType.FLOAT64, false)), null))
                .hasMessageContaining(P).hasMessageContaining("fp32");
        assertThatThrownBy(() -> MaskedAdamW.builder().learningRate(-1)).hasMessageContaining("learning_rate");
        assertThatThrownBy(() -> MaskedAdamW.builder().betas(1.0, 0.9)).hasMessageContaining("adam_beta1");
        assertThatThrownBy(() -> MaskedAdamW.builder().weightDecay(Double.NaN)).hasMessageContaining("weight_decay");
        try (MaskedAdamW opt = MaskedAdamW.builder().schedule(LearningRateSchedule.linear(0), 1).build(Map.of(P, p), null)) {
            assertThatThrownBy(() -> opt.step(Map.of(P, array(new float[4], 4)))).hasMessageContaining("gradient of '" + P);
            assertThatThrownBy(() -> opt.step(Map.of())).hasMessageContaining("no gradient for parameter '" + P);
            opt.step(Map.of(P, array(new float[] {1, 1, 1, 1}, 2, 2)));
            assertThatThrownBy(() -> opt.step(Map.of(P, array(new float[4], 2, 2)))).hasMessageContaining("exceeds totalSteps 1");
        }
    }

    private static int[] bits(float[] a) {
        int[] out = new int[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = Float.floatToRawIntBits(a[i]);
        }
        return out;
    }

    /**
     * NaN, +Inf or -Inf in one trainable element: before, NaN made that parameter NaN silently and +Inf clipped
     * every other update to zero. Now the step is refused naming the tensor and step, and nothing changes; the
     * next finite step equals the naive reference's first step, as if the bad one never happened.
     */
    @Test
    void aNonFiniteTrainableGradientRefusesTheStepAndChangesNothing() {
        boolean[][] masks = {{true, false, true, true}, {true, true}};
        float[][] p0 = {{0.5f, -1f, 2f, 3f}, {1f, -2f}};
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            NDArray pa = array(p0[0].clone(), 2, 2);
            NDArray pb = array(p0[1].clone(), 2);
            Map<String, NDArray> params = new LinkedHashMap<>();
            params.put(P, pa);
            params.put(Q, pb);
            ScalarAdamW ref = new ScalarAdamW(0.1, 0.9, 0.999, 1e-8, 0.1, 1.0, LearningRateSchedule.constant(), 10,
                    p0, masks);
            try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(0.1).weightDecay(0.1).maxGradNorm(1.0)
                    .build(params, Map.of(P, mask(masks[0], 2, 2), Q, mask(masks[1], 2)))) {
                float[][] good = {{0.1f, 0.2f, -0.3f, 0.4f}, {0.5f, -0.6f}};
                opt.step(Map.of(P, array(good[0], 2, 2), Q, array(good[1], 2)));
                ref.step(good);
                float[] pBefore = floats(pa);
                float[] qBefore = floats(pb);
                float[] mBefore = floats(opt.firstMoment(Q));
                float[] vBefore = floats(opt.secondMoment(Q));
                float[] poisoned = {0.1f, 0.2f, 0.3f, 0.4f};
                float[] qGrad = {0.5f, bad};
                assertThatThrownBy(() -> opt.step(Map.of(P, array(poisoned, 2, 2), Q, array(qGrad, 2))))
                        .as("gradient %s", bad)
                        .isInstanceOf(NonFiniteGradientException.class)
                        .hasMessageContaining("'" + Q + "'").hasMessageContaining("step 2")
                        .satisfies(e -> {
                            NonFiniteGradientException n = (NonFiniteGradientException) e;
                            assertThat(n.tensorName()).isEqualTo(Q);
                            assertThat(n.step()).isEqualTo(2);
                        });
                assertThat(opt.stepCount()).isEqualTo(1);
                assertThat(bits(floats(pa))).isEqualTo(bits(pBefore));
                assertThat(bits(floats(pb))).isEqualTo(bits(qBefore));
                assertThat(bits(floats(opt.firstMoment(Q)))).isEqualTo(bits(mBefore));
                assertThat(bits(floats(opt.secondMoment(Q)))).isEqualTo(bits(vBefore));
                // the next good step is the reference's second step
                opt.step(Map.of(P, array(good[0], 2, 2), Q, array(good[1], 2)));
                ref.step(good);
                float[] after = floats(pb);
                assertThat(opt.stepCount()).isEqualTo(2);
                for (int j = 0; j < 2; j++) {
                    assertThat((double) after[j]).isCloseTo(ref.p[1][j], within(1e-6));
                }
            }
        }
    }

    @Test
    void aNonFiniteFrozenGradientIsIgnoredAsBefore() {
        NDArray p = array(new float[] {1, 2, 3}, 3);
        try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(0.1)
                .build(Map.of(P, p), Map.of(P, mask(new boolean[] {true, false, true}, 3)))) {
            MaskedAdamW.StepResult r = opt.step(Map.of(P, array(new float[] {3, Float.NaN, 4}, 3)));
            assertThat(r.gradNorm()).isCloseTo(5.0, within(1e-6));
            float[] after = floats(p);
            assertThat(after[1]).isEqualTo(2f);
            assertThat(Float.isFinite(after[0]) && Float.isFinite(after[2])).isTrue();
        }
    }

    @Test
    void anOverflowingNormIsRefusedNamingTheLargestGradient() {
        NDArray p = array(new float[] {1, 2}, 2);
        NDArray q = array(new float[] {1, 2}, 2);
        try (MaskedAdamW opt = MaskedAdamW.builder().build(Map.of(P, p, Q, q), null)) {
            assertThatThrownBy(() -> opt.step(Map.of(P, array(new float[] {1, 1}, 2), Q, array(new float[] {3e30f, 1}, 2))))
                    .isInstanceOf(NonFiniteGradientException.class).hasMessageContaining("overflowed")
                    .hasMessageContaining("'" + Q + "'");
            assertThat(opt.stepCount()).isZero();
            assertThat(floats(q)).containsExactly(1f, 2f);
        }
    }

    /** Engine messages that said nothing useful: step() inside a GradientCollector, use after close. */
    @Test
    void stepInsideAnOpenGradientCollectorOrAfterCloseSaysWhatToDo() {
        NDArray w = array(new float[] {0.5f, -1f}, 2);
        w.setRequiresGradient(true);
        MaskedAdamW opt = MaskedAdamW.builder().build(Map.of(P, w), null);
        try (GradientCollector gc = manager.getEngine().newGradientCollector()) {
            gc.backward(w.mul(2f).sum());
            assertThatThrownBy(opt::step).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("after the GradientCollector is closed");
        }
        assertThat(opt.stepCount()).isZero();
        assertThat(floats(w)).containsExactly(0.5f, -1f);
        opt.step(); // after the collector: fine
        assertThat(opt.stepCount()).isEqualTo(1);
        opt.close();
        assertThatThrownBy(opt::step).isInstanceOf(IllegalStateException.class).hasMessageContaining("MaskedAdamW is closed");
        assertThatThrownBy(() -> opt.firstMoment(P)).hasMessageContaining("MaskedAdamW is closed");
    }
}
