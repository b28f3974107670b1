package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The four initialisations, against exact decompositions and PEFT's own PiSSA/OLoRA (fixtures/lora). */
class LoraInitTest {
    private static final List<String> LAYER0 = List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
            "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj",
            "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj");

    private static Map<String, NDArray> copyWeights(DecoderModel model, NDManager m) {
        Map<String, NDArray> w = new LinkedHashMap<>();
        for (Linear l : model.linears().values()) {
            NDArray c = l.weight().duplicate();
            c.attach(m);
            w.put(l.name(), c);
        }
        return w;
    }

    private static NDArray batchLogits(DecoderModel model, NDManager m) {
        return model.forward(LoraFixtures.ref("input_ids", m), LoraFixtures.ref("attention_mask", m), false);
    }

    @Test
    void standardInitIsKaimingUniformAWithZeroBAndLeavesTheModelUnchanged() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            NDArray base = batchLogits(model, m);
            LoraConfig c = LoraConfig.builder().init(LoraInit.STANDARD).rank(8).alpha(16).seed(1).build();
            try (LoraModel lora = LoraModel.apply(model, c, m)) {
                assertThat(lora.modules()).hasSize(12);
                for (LoraLayer l : lora.layers().values()) {
                    double bound = 1 / Math.sqrt(l.linear().inFeatures());
                    assertThat(LoraFixtures.maxAbs(l.b())).isZero();
                    float[] a = l.a().toFloatArray();
                    double sq = 0;
                    for (float v : a) {
                        assertThat(Math.abs(v)).isLessThanOrEqualTo((float) bound);
                        sq += v * v;
                    }
                    // U(−b, b) has variance b²/3
                    assertThat(sq / a.length).as(l.module()).isCloseTo(bound * bound / 3, within(bound * bound / 3 * 0.25));
                }
                assertThat(LoraFixtures.maxAbsDiff(batchLogits(model, m), base)).isLessThan(1e-6f);
            }
        }
    }

    @Test
    void gaussianInitDrawsAAndBFromNormalAndKeepsTheBase() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            Map<String, NDArray> before = copyWeights(model, m);
            LoraConfig c = LoraConfig.builder().init(LoraInit.GAUSSIAN).rank(8).alpha(64).seed(2).build();
            try (LoraModel lora = LoraModel.apply(model, c, m)) {
                double sum = 0;
                double sq = 0;
                long n = 0;
                for (NDArray p : lora.parameters().values()) {
                    for (float v : p.toFloatArray()) {
                        sum += v;
                        sq += v * v;
                        n++;
                    }
                }
                double mean = sum / n;
                double std = Math.sqrt(sq / n - mean * mean);
                assertThat(n).isEqualTo(lora.parameterCount());
                assertThat(std).isCloseTo(0.01, within(0.0005));
                assertThat(mean).isCloseTo(0, within(0.0005));
                for (Linear l : model.linears().values()) {
                    assertThat(LoraFixtures.maxAbsDiff(l.weight(), before.get(l.name()))).as(l.name()).isZero();
                }
            }
            // a second apply with the same seed draws the same values
            try (LoraModel a = LoraModel.apply(model, c, m)) {
                float first = a.parameters().values().iterator().next().getFloat(0, 0);
                try (NDManager m2 = NDManager.newBaseManager(Device.cpu()); DecoderModel other = LoraFixtures.loadLlama(m2);
                        LoraModel b = LoraModel.apply(other, c, m2)) {
                    assertThat(b.parameters().values().iterator().next().getFloat(0, 0)).isEqualTo(first);
                }
            }
        }
    }

    @Test
    void pissaOfAMatrixWithKnownSingularValues() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Random rnd = new Random(7);
            int out = 40;
            int in = 24;
            double[] sigma = new double[in];
            for (int i = 0; i < in; i++) {
                sigma[i] = 8 * Math.pow(0.75, i);
            }
            NDArray u = orthonormal(m, rnd, out, in);
            NDArray v = orthonormal(m, rnd, in, in);
            float[] s = new float[in];
            for (int i = 0; i < in; i++) {
                s[i] = (float) sigma[i];
            }
            NDArray w = u.mul(m.create(s).expandDims(0)).matMul(v.transpose()); // U·diag(σ)·Vᵀ
            int r = 5;
            double scaling = 16.0 / r;
            LoraConfig c = LoraConfig.builder().rank(r).alpha(16).init(LoraInit.PISSA).svd(10, 6).seed(9).build();
            NDArray[] ab = LoraModel.pissa(w, c, 0, m);
            NDArray a = ab[0];
            NDArray b = ab[1];
            assertThat(a.getShape()).isEqualTo(new Shape(r, in));
            assertThat(b.getShape()).isEqualTo(new Shape(out, r));
            // A·Aᵀ = diag(σ/scaling) = Bᵀ·B (rows of Vᵀ and columns of U orthonormal)
            float[] aat = a.matMul(a.transpose()).toFloatArray();
            float[] btb = b.transpose().matMul(b).toFloatArray();
            for (int i = 0; i < r; i++) {
                for (int j = 0; j < r; j++) {
                    double want = i == j ? sigma[i] / scaling : 0;
                    assertThat((double) aat[i * r + j]).as("AAᵀ(%d,%d)", i, j).isCloseTo(want, within(1e-4 * sigma[0]));
                    assertThat((double) btb[i * r + j]).as("BᵀB(%d,%d)", i, j).isCloseTo(want, within(1e-4 * sigma[0]));
                }
            }
            // scaling·B·A = the exact rank-r truncation U_r·diag(σ_r)·V_rᵀ
            NDArray truncation = u.get(":, :" + r).mul(m.create(java.util.Arrays.copyOf(s, r)).expandDims(0))
                    .matMul(v.get(":, :" + r).transpose());
            NDArray product = b.matMul(a).mul((float) scaling);
            assertThat(LoraFixtures.maxAbsDiff(product, truncation)).isLessThan(1e-4f);
        }
    }

    /** Orthonormal columns from Gram-Schmidt in fp64 on the host (an independent reference). */
    private static NDArray orthonormal(NDManager m, Random rnd, int rows, int cols) {
        double[][] q = new double[cols][rows];
        for (int c = 0; c < cols; c++) {
            double[] x = new double[rows];
            for (int i = 0; i < rows; i++) {
                x[i] = rnd.nextGaussian();
            }
            for (int p = 0; p < c; p++) {
                double dot = 0;
                for (int i = 0; i < rows; i++) {
                    dot += q[p][i] * x[i];
                }
                for (int i = 0; i < rows; i++) {
                    x[i] -= dot * q[p][i];
                }
            }
            double norm = 0;
            for (double e : x) {
                norm += e * e;
            }
            for (int i = 0; i < rows; i++) {
                q[c][i] = x[i] / Math.sqrt(norm);
            }
        }
        float[] flat = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < cols; c++) {
                flat[i * cols + c] = (float) q[c][i];
            }
        }
        return m.create(flat, new Shape(rows, cols));
    }

    @Test
    void pissaAndOloraMatchPeftsExactInitsAndKeepTheModelOutput() throws Exception {
        for (LoraInit init : List.of(LoraInit.PISSA, LoraInit.OLORA)) {
            String key = init == LoraInit.PISSA ? "pissa" : "olora";
            try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
                NDArray base = batchLogits(model, m);
                Map<String, NDArray> before = copyWeights(model, m);
                LoraConfig c = LoraConfig.builder().targets(LoraTargets.modules(LAYER0)).rank(4).alpha(8).init(init)
                        .svd(20, 30).seed(5).build();
                float scaling = (float) c.scaling();
                try (LoraModel lora = LoraModel.apply(model, c, m)) {
                    assertThat(lora.modules()).containsExactlyElementsOf(LAYER0);
                    for (LoraLayer l : lora.layers().values()) {
                        String mod = l.module();
                        NDArray peftA = LoraFixtures.ref(key + "." + mod + ".lora_A", m);
                        NDArray peftB = LoraFixtures.ref(key + "." + mod + ".lora_B", m);
                        NDArray peftW = LoraFixtures.ref(key + "." + mod + ".weight", m);
                        // B·A and W_res do not depend on the sign of singular vectors / QR columns
                        float dProduct = LoraFixtures.maxAbsDiff(l.b().matMul(l.a()), peftB.matMul(peftA));
                        float dRes = LoraFixtures.maxAbsDiff(l.linear().weight(), peftW);
                        assertThat(dProduct).as(key + " B·A " + mod).isLessThan(2e-4f);
                        assertThat(dRes).as(key + " W_res " + mod).isLessThan(2e-4f);
                        // |A| and |B| agree element by element (same factors up to signs)
                        assertThat(LoraFixtures.maxAbsDiff(l.a().abs(), peftA.abs())).as(key + " |A| " + mod).isLessThan(2e-4f);
                        assertThat(LoraFixtures.maxAbsDiff(l.b().abs(), peftB.abs())).as(key + " |B| " + mod).isLessThan(2e-4f);
                        // W_res + scaling·B·A = W
                        NDArray rebuilt = l.linear().weight().add(l.b().matMul(l.a()).mul(scaling));
                        assertThat(LoraFixtures.maxAbsDiff(rebuilt, before.get(mod))).as(mod).isLessThan(1e-5f);
                        // B has orthonormal columns for OLoRA (Q_r), and A's first r columns are upper-triangular (R_r)
                        if (init == LoraInit.OLORA) {
                            assertThat(LoraFixtures.maxAbsDiff(l.b().transpose().matMul(l.b()), m.eye(4))).isLessThan(1e-5f);
                            float[] rr = l.a().get(":, :4").toFloatArray();
                            for (int i = 0; i < 4; i++) {
                                for (int j = 0; j < i; j++) {
                                    assertThat(rr[i * 4 + j]).isCloseTo(0f, within(1e-5f));
                                }
                            }
                        }
                        assertThat(l.a().getDataType()).isEqualTo(DataType.FLOAT32);
                        assertThat(l.a().hasGradient()).isTrue();
                    }
                    // at initialisation the adapted model computes the base model
                    assertThat(LoraFixtures.maxAbsDiff(batchLogits(model, m), base)).as(key).isLessThan(1e-4f);
                }
                // closing the adapters restores W
                for (String mod : LAYER0) {
                    assertThat(LoraFixtures.maxAbsDiff(model.linear(mod).weight(), before.get(mod))).as(mod)
                            .isLessThan(1e-5f);
                }
            }
        }
    }
}
