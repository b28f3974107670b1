package ai.lorapar.train.grpo;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The GRPO math units against naive double-precision loops on handcrafted groups. */
class GrpoMathTest {

    /** Device of the arrays (CPU; the GPU subclass re-runs on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    private NDManager manager() {
        return NDManager.newBaseManager(device());
    }

    static double[] naiveAdvantages(double[] r, int g, boolean scale) {
        double[] out = new double[r.length];
        for (int start = 0; start < r.length; start += g) {
            double mean = 0;
            for (int i = 0; i < g; i++) {
                mean += r[start + i];
            }
            mean /= g;
            double ss = 0;
            for (int i = 0; i < g; i++) {
                ss += (r[start + i] - mean) * (r[start + i] - mean);
            }
            double std = Math.sqrt(ss / (g - 1)); // unbiased, as torch.std
            for (int i = 0; i < g; i++) {
                out[start + i] = scale ? (r[start + i] - mean) / (std + 1e-4) : r[start + i] - mean;
            }
        }
        return out;
    }

    @Test
    void groupAdvantages() {
        double[] r = {1, 2, 2, 5, 0.5, 0.5, 0.5, 0.5, 4, 0, 0, 0};
        float[] rf = new float[r.length];
        for (int i = 0; i < r.length; i++) {
            rf[i] = (float) r[i];
        }
        try (NDManager m = manager()) {
            NDArray rewards = m.create(rf);
            for (AdvantageScaling s : AdvantageScaling.values()) {
                double[] want = naiveAdvantages(r, 4, s == AdvantageScaling.GROUP_STD);
                float[] got = GroupAdvantages.compute(rewards, 4, s).toFloatArray();
                for (int i = 0; i < r.length; i++) {
                    assertThat((double) got[i]).as("%s %d", s, i).isCloseTo(want[i], within(1e-5));
                }
                assertThat(got[4]).as("a group of equal rewards").isZero();
            }
            assertThatThrownBy(() -> GroupAdvantages.compute(rewards, 5, AdvantageScaling.NONE))
                    .hasMessageContaining("multiple of the group size 5");
            assertThatThrownBy(() -> GroupAdvantages.compute(rewards, 1, AdvantageScaling.NONE))
                    .hasMessageContaining("at least 2");
        }
    }

    @Test
    void completionMaskCountsUpToTheFirstEos() {
        try (NDManager m = manager()) {
            NDArray ids = m.create(new long[] {
                5, 257, 258, 258,
                5, 6, 7, 8,
                257, 1, 257, 2,
                9, 260, 8, 257}, new Shape(4, 4));
            assertThat(CompletionMask.of(ids, new long[] {257}).toFloatArray()).containsExactly(
                    1, 1, 0, 0,
                    1, 1, 1, 1,
                    1, 0, 0, 0,
                    1, 1, 1, 1);
            assertThat(CompletionMask.of(ids, new long[] {257, 260}).toFloatArray()).containsExactly(
                    1, 1, 0, 0,
                    1, 1, 1, 1,
                    1, 0, 0, 0,
                    1, 1, 0, 0);
            assertThat(CompletionMask.of(ids, new long[0]).toFloatArray()).containsOnly(1f);
        }
    }

    /** Naive loss, metrics and gradient of the loss with respect to logp. */
    record Naive(double loss, double[] grad, double klTokens, double klSeq, double clipped, double tokens) {}

    static Naive naive(double[][] lp, double[][] old, double[][] ref, double[] adv, double[][] mask, double eps,
            double beta, LossAggregation agg, double normaliser) {
        int b = lp.length;
        int c = lp[0].length;
        double loss = 0;
        double[] grad = new double[b * c];
        double klTokens = 0;
        double klSeq = 0;
        double clipped = 0;
        double tokens = 0;
        for (int i = 0; i < b; i++) {
            double len = 0;
            for (int t = 0; t < c; t++) {
                len += mask[i][t];
            }
            tokens += len;
            double w = agg == LossAggregation.PER_SEQUENCE ? 1.0 / (Math.max(1, len) * normaliser) : 1.0 / normaliser;
            double klRow = 0;
            for (int t = 0; t < c; t++) {
                double o = old == null ? lp[i][t] : old[i][t];
                double r = Math.exp(lp[i][t] - o);
                double u = r * adv[i];
                double rc = Math.min(Math.max(r, 1 - eps), 1 + eps);
                double cl = rc * adv[i];
                boolean inside = r >= 1 - eps && r <= 1 + eps;
                double surr = Math.min(u, cl);
                double dSurr = u < cl ? r * adv[i] : cl < u ? (inside ? r * adv[i] : 0) : 0.5 * r * adv[i]
                        + 0.5 * (inside ? r * adv[i] : 0);
                double per = -surr;
                double dPer = -dSurr;
                if (ref != null) {
                    double d = ref[i][t] - lp[i][t];
                    double kl = Math.exp(d) - d - 1;
                    per += beta * kl;
                    dPer += beta * (1 - Math.exp(d));
                    klTokens += kl * mask[i][t];
                    klRow += kl * mask[i][t];
                }
                if ((r < 1 - eps && adv[i] < 0) || (r > 1 + eps && adv[i] > 0)) {
                    clipped += mask[i][t];
                }
                loss += per * mask[i][t] * w;
                grad[i * c + t] = dPer * mask[i][t] * w;
            }
            klSeq += klRow / Math.max(1, len);
        }
        return new Naive(loss, grad, klTokens, klSeq, clipped, tokens);
    }

    private static float[] flat(double[][] a) {
        float[] f = new float[a.length * a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                f[i * a[0].length + j] = (float) a[i][j];
            }
        }
        return f;
    }

    private static double[][] rounded(double[][] a) {
        double[][] r = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                r[i][j] = (float) a[i][j];
            }
        }
        return r;
    }

    /**
     * Loss, gradient and metrics on a handcrafted batch of two groups of three completions (lengths 5, 2, 4,
     * 1, 3, 5), with one update per generation (old = logp detached: ρ = 1) and with stored old log-probs whose
     * ratios fall on both sides of the clip range, for both aggregations and β ∈ {0, 0.04}.
     */
    @Test
    void lossGradientAndMetricsMatchNaive() {
        int b = 6;
        int c = 5;
        int[] lengths = {5, 2, 4, 1, 3, 5};
        Random rnd = new Random(7);
        double[][] lp = new double[b][c];
        double[][] old = new double[b][c];
        double[][] ref = new double[b][c];
        double[][] mask = new double[b][c];
        for (int i = 0; i < b; i++) {
            for (int t = 0; t < c; t++) {
                lp[i][t] = -0.2 - 3 * rnd.nextDouble();
                // ratios spread over [e^-0.45, e^0.45] ≈ [0.64, 1.57]: inside and outside [0.8, 1.2]
                old[i][t] = lp[i][t] + (rnd.nextDouble() - 0.5) * 0.9;
                ref[i][t] = lp[i][t] + (rnd.nextDouble() - 0.5) * 2;
                mask[i][t] = t < lengths[i] ? 1 : 0;
            }
        }
        lp = rounded(lp);
        old = rounded(old);
        ref = rounded(ref);
        double[] rewards = {2.5, 0, 0.5, 4, 4, 1};
        double[] adv = naiveAdvantages(rewards, 3, true);
        for (int i = 0; i < b; i++) {
            adv[i] = (float) adv[i];
        }
        float[] advF = new float[b];
        for (int i = 0; i < b; i++) {
            advF[i] = (float) adv[i];
        }
        try (NDManager m = manager()) {
            for (LossAggregation agg : LossAggregation.values()) {
                for (boolean withOld : new boolean[] {false, true}) {
                    for (double beta : new double[] {0, 0.04}) {
                        double normaliser = agg == LossAggregation.PER_SEQUENCE ? 8 : 27; // a larger step
                        Naive want = naive(lp, withOld ? old : null, beta == 0 ? null : ref, adv, mask, 0.2, beta, agg,
                                normaliser);
                        try (NDManager s = m.newSubManager()) {
                            NDArray logp = s.create(flat(lp), new Shape(b, c));
                            logp.setRequiresGradient(true);
                            NDArray oldA = withOld ? s.create(flat(old), new Shape(b, c)) : null;
                            NDArray refA = beta == 0 ? null : s.create(flat(ref), new Shape(b, c));
                            GrpoLoss.Parts parts;
                            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                                parts = GrpoLoss.compute(logp, oldA, refA, s.create(advF), s.create(flat(mask),
                                        new Shape(b, c)), 0.2, beta, agg, normaliser);
                                gc.backward(parts.loss());
                            }
                            String what = agg + " old=" + withOld + " beta=" + beta;
                            assertThat((double) parts.loss().getFloat()).as(what).isCloseTo(want.loss(), within(1e-6));
                            float[] g = logp.getGradient().toFloatArray();
                            for (int k = 0; k < g.length; k++) {
                                assertThat((double) g[k]).as("%s grad %d", what, k).isCloseTo(want.grad()[k], within(1e-6));
                            }
                            float[] mt = parts.metrics().toFloatArray();
                            assertThat((double) mt[GrpoLoss.Parts.KL_TOKEN_SUM]).as(what).isCloseTo(want.klTokens(), within(1e-4));
                            assertThat((double) mt[GrpoLoss.Parts.KL_SEQUENCE_MEAN_SUM]).as(what).isCloseTo(want.klSeq(), within(1e-4));
                            assertThat((double) mt[GrpoLoss.Parts.CLIPPED_TOKENS]).as(what).isEqualTo(want.clipped());
                            assertThat((double) mt[GrpoLoss.Parts.TOKENS]).isEqualTo(20.0);
                            if (!withOld) {
                                assertThat(want.clipped()).as("ρ = 1 clips nothing").isZero();
                            } else {
                                assertThat(want.clipped()).as("the test exercises clipping").isPositive();
                            }
                        }
                    }
                }
            }
            assertThatThrownBy(() -> GrpoLoss.compute(m.zeros(new Shape(1, 1)), null, null, m.zeros(new Shape(1)),
                    m.ones(new Shape(1, 1)), 0.2, 0.04, LossAggregation.PER_TOKEN, 1)).hasMessageContaining("reference");
        }
    }
}
