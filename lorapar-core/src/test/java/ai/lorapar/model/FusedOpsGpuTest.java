package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.FusedOps;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The JNI's fused ops ({@link FusedOps}, native source fused.cc) against their NDArray fallbacks on
 * CUDA, in fp32 and bf16; skipped when the engine does not advertise {@link FusedOps#CAPABILITY}
 * (stock DJL, or a JNI built without fused.cc).
 *
 * <p>Bounds (relative to max(1, largest expected value)): RMSNorm, RoPE and the slice write are the same torch ops as the fallback (1e-6 fp32,
 * exact-ish bf16: 1e-2 relative to the largest value). SiLU·up uses torch's silu (one rounding
 * instead of two): 1e-5 fp32, 2e-2 bf16 relative. Attention is torch's scaled_dot_product_attention
 * against the fp32 eager reference: 1e-5 fp32, 2e-2 bf16 relative.
 */
@Tag("gpu")
class FusedOpsGpuTest {
    enum Precision {
        FP32(DataType.FLOAT32, 1e-5f),
        BF16(DataType.BFLOAT16, 2e-2f);

        final DataType dtype;
        final float rel;

        Precision(DataType dtype, float rel) {
            this.dtype = dtype;
            this.rel = rel;
        }
    }

    @BeforeEach
    void needsFusedOps() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "no GPU");
        Assumptions.assumeTrue(FusedOps.isAvailable(Engine.getInstance()),
                "engine does not advertise " + FusedOps.CAPABILITY + " (JNI built without fused.cc?)");
    }

    private static NDArray rand(NDManager m, DataType dt, long... shape) {
        return m.randomNormal(0f, 1f, new Shape(shape), DataType.FLOAT32).toType(dt, false);
    }

    private static void assertClose(String what, NDArray actual, NDArray expected, float rel) {
        float scale = Math.max(1f, expected.toType(DataType.FLOAT32, true).abs().max().getFloat());
        float diff = Fixtures.maxAbsDiff(actual, expected);
        System.err.printf("%s: max |diff| %s (bound %s)%n", what, diff, rel * scale);
        assertThat(actual.getShape()).as(what).isEqualTo(expected.getShape());
        assertThat(actual.getDataType()).as(what).isEqualTo(expected.getDataType());
        assertThat(diff).as(what).isLessThanOrEqualTo(rel * scale);
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void opsMatchTheirFallbacks(Precision p) {
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            DataType dt = p.dtype;
            // RMSNorm
            NDArray x = rand(m, dt, 4, 3, 64);
            NDArray w = rand(m, dt, 64);
            assertClose("rmsNorm " + dt, FusedOps.rmsNorm(x, w, 1e-6), DecoderModel.rmsNorm(x, w, 1e-6, dt),
                    dt == DataType.FLOAT32 ? 1e-6f : 1e-2f);
            // SiLU·up
            NDArray gu = rand(m, dt, 4, 3, 2 * 48);
            assertClose("siluMul " + dt, FusedOps.siluMul(gu), DecoderModel.siluMul(gu, 48), p.rel);
            // RoPE (on a non-contiguous slice, as the model applies it)
            NDArray qkv = rand(m, dt, 2, 3, 8, 16);
            NDArray qk = qkv.get(new NDIndex(":, :, :6"));
            NDArray cos = rand(m, dt, 2, 3, 1, 16);
            NDArray sin = rand(m, dt, 2, 3, 1, 16);
            assertClose("rope " + dt, FusedOps.rope(qk, cos, sin), DecoderModel.rope(qk, new Shape(2, 3, 6, 16), cos, sin),
                    dt == DataType.FLOAT32 ? 1e-6f : 1e-2f);
            // KV slice write vs NDArray set
            NDArray a = m.zeros(new Shape(2, 2, 8, 4), dt);
            NDArray b = m.zeros(new Shape(2, 2, 8, 4), dt);
            NDArray src = rand(m, dt, 2, 3, 2, 4).transpose(0, 2, 1, 3); // [2,2,3,4], non-contiguous
            FusedOps.writeSlice(a, src, 2, 5);
            b.set(new NDIndex(":, :, 5:8"), src);
            assertClose("writeSlice " + dt, a, b, 0f);
        }
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void decodeAttentionMatchesEagerAttention(Precision p) {
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            DataType dt = p.dtype;
            int kv = 2;
            int rep = 3;
            int s = 7;
            int d = 16;
            NDArray q = rand(m, dt, 2, kv, rep, d);
            NDArray k = rand(m, dt, 2, kv, s, d);
            NDArray v = rand(m, dt, 2, kv, s, d);
            // row 0 attends to everything, row 1 not to its first two (padded) positions
            NDArray keep = m.create(new boolean[] {true, true, true, true, true, true, true, false, false, true, true,
                true, true, true}, new Shape(2, 1, 1, s));
            double scale = 1.0 / Math.sqrt(d);
            NDArray fused = FusedOps.scaledDotProductAttention(q, k, v, keep, false, scale);
            // eager reference in fp32 from the same (rounded) inputs
            NDArray qf = q.toType(DataType.FLOAT32, false);
            NDArray kf = k.toType(DataType.FLOAT32, false);
            NDArray vf = v.toType(DataType.FLOAT32, false);
            NDArray bias = keep.logicalNot().toType(DataType.FLOAT32, false).mul(-Float.MAX_VALUE);
            NDArray probs = qf.matMul(kf.transpose(0, 1, 3, 2)).mul(scale).add(bias).softmax(-1);
            NDArray expected = probs.matMul(vf).toType(dt, false);
            assertClose("sdpa " + dt, fused, expected, p.rel);
            // the masked keys have no influence: change them and the result stays
            NDArray v2 = NDArrays.where(keep.reshape(2, 1, s, 1).broadcast(new Shape(2, kv, s, d)), v, v.mul(5));
            assertClose("sdpa masked keys " + dt, FusedOps.scaledDotProductAttention(q, k, v2, keep, false, scale), fused,
                    1e-6f);
        }
    }

    /** Prefill + one decode step; logits of both, {@code [B, 2, vocab]}. */
    private static NDArray decodeLogits(DecoderModel model, NDManager m, NDArray ids, NDArray mask) {
        try (KvCache cache = model.newCache(m, (int) ids.getShape().get(0), (int) ids.getShape().get(1) + 4)) {
            NDArray logits = model.forward(ids, mask, cache, false, true);
            NDArray next = logits.argMax(-1); // [B,1]
            NDArray step = model.forward(next, m.ones(next.getShape(), DataType.INT64), cache, false, true);
            return NDArrays.concat(new ai.djl.ndarray.NDList(logits, step), 1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "llama"})
    void modelDecodeStepsAgreeWithAndWithoutFusedOps(String name) throws Exception {
        for (DataType dt : new DataType[] {DataType.FLOAT32, DataType.BFLOAT16}) {
            try (NDManager m = NDManager.newBaseManager(Device.gpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m, dt)) {
                assertThat(model.usesFusedOps()).as("fused ops are opt-in").isFalse();
                assertThat(model.setFusedOps(true)).as("the engine has the fused ops").isTrue();
                NDArray ids = Fixtures.ref(name, "batch.input_ids", m);
                NDArray mask = Fixtures.ref(name, "batch.attention_mask", m);
                // fp32: rounding only. bf16: torch's attention rounds differently from the eager one (fp32 scores
                // and probabilities); the bound is DecoderModelTest's bf16 one, 15% of the largest logit, which
                // catches a wrong op (errors of the order of the logits), not a different rounding order
                float bound = dt == DataType.FLOAT32 ? 1e-4f : 0.15f;
                model.setFusedOps(false);
                NDArray plain = decodeLogits(model, m, ids, mask);
                model.setFusedOps(true);
                boolean layer = model.setFusedLayer(false);
                assertClose(name + " decode logits, fused ops vs NDArray ops " + dt, decodeLogits(model, m, ids, mask),
                        plain, bound);
                layer = model.setFusedLayer(true);
                System.err.printf("%s: fused decode layer %s%n", name, layer ? "available" : "NOT available");
                NDArray fusedLayer = decodeLogits(model, m, ids, mask);
                assertThat(model.usesFusedOps()).as("fused ops still on after the fused layer").isTrue();
                assertClose(name + " decode logits, fused layer vs NDArray ops " + dt, fusedLayer, plain, bound);

                // with an adapter on one layer that layer runs op by op, and the adapter counts
                model.linear("model.layers.1.mlp.down_proj").setAdapter((l, x, training) ->
                        x.getManager().full(new Shape(l.outFeatures()), 0.05f).toType(x.getDataType(), false));
                NDArray adaptedFused = decodeLogits(model, m, ids, mask);
                model.setFusedOps(false);
                NDArray adaptedPlain = decodeLogits(model, m, ids, mask);
                model.setFusedOps(true);
                assertClose(name + " adapted decode logits, fused vs NDArray ops " + dt, adaptedFused, adaptedPlain, bound);
                assertThat(Fixtures.maxAbsDiff(adaptedFused, fusedLayer)).isGreaterThan(1e-3f);
                // no fused op failed on the way (a failure would have switched the model to NDArray ops)
                assertThat(model.usesFusedOps()).as("fused ops still on").isTrue();
            }
        }
    }
}
