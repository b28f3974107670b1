package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.engine.CudaMemory;
import ai.lorapar.engine.TrainingOps;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraLayer;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Map;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The training-path natives ({@link TrainingOps}: train_attention.cc, train_lora.cc, train_loss.cc,
 * train_norm.cc) and {@link CudaMemory} against the NDArray path, through the project's JNI: on the CPU in
 * fp32 (the natives run there too), on CUDA in fp32 and in bf16. Each switch of {@link TrainingPath} alone,
 * and all together, give the reference's logits at real positions and its LoRA gradients (qwen2 fixture:
 * grouped-query heads, q/k/v bias; right-padded training batch; LoRA QKVGUD). Skipped where the engine does
 * not advertise the op (stock DJL, or a JNI built without that source).
 *
 * <p>Bounds, relative to the largest expected magnitude (at least 1 for logits): CPU fp32 1e-4, CUDA fp32
 * 1e-3 (other kernels, other summation orders), CUDA bf16 0.15 for logits and gradients (DecoderModelTest's
 * bf16 bound: fused attention and SiLU round differently from the eager ops, by a few per cent through two
 * layers; a wrong op or a miswired part errs by the order of the values themselves).
 */
@Tag("gpu")
class TrainingOpsGpuTest {
    enum Target {
        CPU_FP32(false, DataType.FLOAT32, 1e-4f, 1e-4f),
        GPU_FP32(true, DataType.FLOAT32, 1e-3f, 1e-3f),
        GPU_BF16(true, DataType.BFLOAT16, 0.15f, 0.15f);

        final boolean gpu;
        final DataType dtype;
        final float logitRel;
        final float gradRel;

        Target(boolean gpu, DataType dtype, float logitRel, float gradRel) {
            this.gpu = gpu;
            this.dtype = dtype;
            this.logitRel = logitRel;
            this.gradRel = gradRel;
        }

        Device device() {
            return gpu ? Device.gpu() : Device.cpu();
        }

        void assume() {
            Assumptions.assumeTrue(!gpu || Engine.getInstance().getGpuCount() > 0, "no GPU");
            Assumptions.assumeTrue(dtype != DataType.BFLOAT16 || Engine.getInstance().hasCapability("BF16"), "no bf16");
        }
    }

    static final String NAME = "qwen2";

    private static void needs(String capability) {
        Assumptions.assumeTrue(TrainingOps.has(Engine.getInstance(), capability),
                "engine does not advertise " + capability);
    }

    private static LoraConfig lora(double dropout) {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8).dropout(dropout).init(LoraInit.GAUSSIAN)
                .gaussianStd(0.05).seed(7).build();
    }

    /** All switches off: the NDArray path. */
    private static void reference(TrainingPath p) {
        p.setSdpa(false);
        p.setFusedLora(false);
        p.setLean(false);
        p.setFusedLoss(false);
        p.setLoraFp32(true);
    }

    /** Logits (zeroed at padded positions, fp32 on the host) and LoRA gradients of one training pass. */
    private record Pass(float[] logits, float scale, CausalLmObjectiveTest.Result result) {}

    private static Pass pass(DecoderModel model, LoraModel lora, NDArray ids, NDArray mask, NDArray labels,
            boolean rightPadded) {
        float[][] logits = new float[1][];
        float[] scale = new float[1];
        CausalLmObjectiveTest.Result r = CausalLmObjectiveTest.lossAndGrads(lora, () -> {
            NDArray l = model.forward(ids, mask, true, rightPadded);
            NDArray real = l.toType(DataType.FLOAT32, false).mul(mask.toType(DataType.FLOAT32, false).expandDims(-1));
            logits[0] = real.toDevice(Device.cpu(), false).toFloatArray();
            scale[0] = Math.max(1f, real.abs().max().toDevice(Device.cpu(), false).getFloat());
            return CausalLmLoss.mean(l, labels);
        });
        return new Pass(logits[0], scale[0], r);
    }

    private static void assertClose(String what, float[] got, float[] want, float bound) {
        assertThat(got).as(what).hasSameSizeAs(want);
        float worst = 0;
        for (int i = 0; i < want.length; i++) {
            assertThat(got[i]).as(what + " [" + i + "] is finite").isFinite();
            worst = Math.max(worst, Math.abs(got[i] - want[i]));
        }
        System.err.printf("%s: max |diff| %.3g (bound %.3g)%n", what, worst, bound);
        assertThat(worst).as(what).isLessThanOrEqualTo(bound);
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void eachSwitchGivesTheReferenceLogitsAndLoraGradients(Target target) throws Exception {
        target.assume();
        needs(TrainingOps.ATTENTION);
        needs(TrainingOps.LORA);
        needs(TrainingOps.NORM);
        try (NDManager m = NDManager.newBaseManager(target.device());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, target.dtype);
                LoraModel lora = LoraModel.apply(model, lora(0), m)) {
            NDArray ids = Fixtures.ref(NAME, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(NAME, "loss.labels", m);
            TrainingPath p = model.trainingPath();
            reference(p);
            Pass ref = pass(model, lora, ids, mask, labels, true);
            Map<String, Consumer<TrainingPath>> variants = new java.util.LinkedHashMap<>();
            variants.put("sdpa causal", q -> q.setSdpa(true));
            variants.put("fused lora fp32", q -> q.setFusedLora(true));
            variants.put("lean norm/silu", q -> q.setLean(true));
            variants.put("all", q -> {
                q.setSdpa(true);
                q.setFusedLora(true);
                q.setLean(true);
            });
            for (Map.Entry<String, Consumer<TrainingPath>> v : variants.entrySet()) {
                reference(p);
                v.getValue().accept(p);
                Pass got = pass(model, lora, ids, mask, labels, true);
                String what = target + " " + v.getKey();
                assertClose(what + " logits", got.logits, ref.logits, target.logitRel * ref.scale);
                CausalLmObjectiveTest.assertSameGrads(ref.result.grads(), got.result.grads(), target.gradRel);
            }
            // the LoRA product in the compute dtype: equal in fp32, close in bf16
            reference(p);
            p.setFusedLora(true);
            p.setLoraFp32(false);
            Pass compute = pass(model, lora, ids, mask, labels, true);
            assertClose(target + " fused lora in compute dtype logits", compute.logits, ref.logits,
                    target.logitRel * ref.scale);
            CausalLmObjectiveTest.assertSameGrads(ref.result.grads(), compute.result.grads(), target.gradRel);
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void maskedSdpaMatchesExplicitAttentionOnLeftPaddedRows(Target target) throws Exception {
        target.assume();
        needs(TrainingOps.ATTENTION);
        try (NDManager m = NDManager.newBaseManager(target.device());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, target.dtype)) {
            NDArray ids = Fixtures.ref(NAME, "batch.input_ids", m);
            NDArray mask = Fixtures.ref(NAME, "batch.attention_mask", m);
            TrainingPath p = model.trainingPath();
            reference(p);
            NDArray maskF = mask.toType(DataType.FLOAT32, false).expandDims(-1);
            NDArray want = model.forward(ids, mask, false).toType(DataType.FLOAT32, false).mul(maskF);
            assertThat(p.setSdpa(true)).isTrue();
            NDArray all = model.forward(ids, mask, false, false).toType(DataType.FLOAT32, false);
            float scale = Math.max(1f, want.abs().max().toDevice(Device.cpu(), false).getFloat());
            float[] everywhere = all.toDevice(Device.cpu(), false).toFloatArray();
            for (float f : everywhere) {
                assertThat(f).as("no NaN at padded positions either").isFinite();
            }
            assertClose(target + " masked sdpa logits", all.mul(maskF).toDevice(Device.cpu(), false).toFloatArray(),
                    want.toDevice(Device.cpu(), false).toFloatArray(), target.logitRel * scale);
        }
    }

    /** With dropout on, the fused projection draws the masks the adapters' keyed path draws for the same keys. */
    @ParameterizedTest
    @EnumSource(Target.class)
    void fusedLoraWithDropoutEqualsTheAdapterPathWithKeyedMasks(Target target) throws Exception {
        target.assume();
        needs(TrainingOps.LORA);
        System.setProperty(LoraLayer.DROPOUT_PROPERTY, "keyed");
        try (NDManager m = NDManager.newBaseManager(target.device());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, target.dtype);
                LoraModel lora = LoraModel.apply(model, lora(0.3), m)) {
            NDArray ids = Fixtures.ref(NAME, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(NAME, "loss.labels", m);
            TrainingPath p = model.trainingPath();
            reference(p);
            lora.reseedDropout(11);
            Pass adapters = pass(model, lora, ids, mask, labels, true);
            lora.reseedDropout(12);
            Pass otherSeed = pass(model, lora, ids, mask, labels, true);
            assertThat(p.setFusedLora(true)).isTrue();
            lora.reseedDropout(11);
            Pass fused = pass(model, lora, ids, mask, labels, true);
            assertClose(target + " fused lora with dropout logits", fused.logits, adapters.logits,
                    target.logitRel * adapters.scale);
            CausalLmObjectiveTest.assertSameGrads(adapters.result.grads(), fused.result.grads(), target.gradRel);
            // and the masks do change with the seed
            float diff = 0;
            for (int i = 0; i < adapters.logits.length; i++) {
                diff = Math.max(diff, Math.abs(adapters.logits[i] - otherSeed.logits[i]));
            }
            assertThat(diff).isGreaterThan(1e-3f);
        } finally {
            System.clearProperty(LoraLayer.DROPOUT_PROPERTY);
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void fusedLossEqualsTheChunkedLossWithGradients(Target target) throws Exception {
        target.assume();
        needs(TrainingOps.LOSS);
        try (NDManager m = NDManager.newBaseManager(target.device());
                DecoderModel model = DecoderModel.load(Fixtures.model(NAME), m, target.dtype);
                LoraModel lora = LoraModel.apply(model, lora(0), m)) {
            NDArray ids = Fixtures.ref(NAME, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(NAME, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(NAME, "loss.labels", m);
            int b = (int) ids.getShape().get(0);
            int t = (int) ids.getShape().get(1);
            reference(model.trainingPath());
            try (AnswerPositions answers = AnswerPositions.fromLabels(CausalLmObjectiveTest.longs(labels), b, t, m)) {
                CausalLmObjectiveTest.Result chunked = CausalLmObjectiveTest.lossAndGrads(lora,
                        () -> CausalLmObjective.meanOfExampleMeans(model, ids, mask, answers, true, true));
                assertThat(model.trainingPath().setFusedLoss(true)).isTrue();
                for (long chunk : new long[] {3, 1 << 20}) {
                    model.setLossChunkRows(chunk);
                    CausalLmObjectiveTest.Result fused = CausalLmObjectiveTest.lossAndGrads(lora,
                            () -> CausalLmObjective.meanOfExampleMeans(model, ids, mask, answers, true, true));
                    System.err.printf("%s chunk %d: chunked loss %.6f, fused loss %.6f%n", target, chunk, chunked.loss(),
                            fused.loss());
                    assertThat((double) fused.loss()).isCloseTo(chunked.loss(),
                            org.assertj.core.data.Offset.offset(target.logitRel * Math.max(1.0, chunked.loss())));
                    CausalLmObjectiveTest.assertSameGrads(chunked.grads(), fused.grads(), target.gradRel);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void leanNormAndSiluEqualTheirNdArrayOpsWithGradients(Target target) {
        target.assume();
        needs(TrainingOps.NORM);
        try (NDManager m = NDManager.newBaseManager(target.device())) {
            DataType dt = target.dtype;
            NDArray x = m.randomNormal(0f, 2f, new Shape(3, 5, 64), DataType.FLOAT32).toType(dt, false);
            NDArray w = m.randomNormal(1f, 0.2f, new Shape(64), DataType.FLOAT32).toType(dt, false);
            NDArray gu = m.randomNormal(0f, 2f, new Shape(3, 5, 96), DataType.FLOAT32).toType(dt, false);
            NDArray up = m.randomNormal(0f, 1f, new Shape(3, 5, 64), DataType.FLOAT32).toType(dt, false);
            NDArray up2 = m.randomNormal(0f, 1f, new Shape(3, 5, 48), DataType.FLOAT32).toType(dt, false);
            float[][] ref = normAndSilu(x, w, gu, up, up2, false);
            float[][] lean = normAndSilu(x, w, gu, up, up2, true);
            String[] names = {"rmsNorm", "d rmsNorm / dx", "siluMul", "d siluMul / d gateUp"};
            for (int i = 0; i < 4; i++) {
                float scale = 1;
                for (float f : ref[i]) {
                    scale = Math.max(scale, Math.abs(f));
                }
                assertClose(target + " " + names[i], lean[i], ref[i], target.logitRel * scale);
            }
        }
    }

    /** Values and input gradients (of a weighted sum) of RMSNorm and SiLU·up, by the natives or by NDArray ops. */
    private static float[][] normAndSilu(NDArray x0, NDArray w, NDArray gu0, NDArray up, NDArray up2, boolean lean) {
        NDArray x = x0.duplicate();
        NDArray gu = gu0.duplicate();
        x.setRequiresGradient(true);
        gu.setRequiresGradient(true);
        float[][] out = new float[4][];
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray n = lean ? TrainingOps.rmsNorm(x, w, 1e-6) : DecoderModel.rmsNorm(x, w, 1e-6, x.getDataType());
            NDArray s = lean ? TrainingOps.siluMul(gu) : DecoderModel.siluMul(gu, 48);
            out[0] = n.toType(DataType.FLOAT32, false).toDevice(Device.cpu(), false).toFloatArray();
            out[2] = s.toType(DataType.FLOAT32, false).toDevice(Device.cpu(), false).toFloatArray();
            NDArray loss = n.mul(up).sum().toType(DataType.FLOAT32, false)
                    .add(s.mul(up2).sum().toType(DataType.FLOAT32, false));
            gc.backward(loss);
        }
        out[1] = x.getGradient().toType(DataType.FLOAT32, false).toDevice(Device.cpu(), false).toFloatArray();
        out[3] = gu.getGradient().toType(DataType.FLOAT32, false).toDevice(Device.cpu(), false).toFloatArray();
        return out;
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void keepMasksAreKeyedReproducibleAndKeepTheirShare(Target target) {
        target.assume();
        needs(TrainingOps.LORA);
        try (NDManager m = NDManager.newBaseManager(target.device())) {
            NDArray like = m.zeros(new Shape(1), target.dtype);
            NDArray k1 = TrainingOps.keepMask(like, 400, 250, 0.3, 12345);
            NDArray k1again = TrainingOps.keepMask(like, 400, 250, 0.3, 12345);
            NDArray k2 = TrainingOps.keepMask(like, 400, 250, 0.3, 12346);
            m.getEngine().setRandomSeed(99); // the global generator plays no part
            NDArray k1third = TrainingOps.keepMask(like, 400, 250, 0.3, 12345);
            assertThat(k1.getDataType()).isEqualTo(DataType.BOOLEAN);
            assertThat(k1.eq(k1again).all().getBoolean()).isTrue();
            assertThat(k1.eq(k1third).all().getBoolean()).isTrue();
            double kept = k1.toType(DataType.FLOAT32, false).mean().getFloat();
            double both = k1.logicalAnd(k2).toType(DataType.FLOAT32, false).mean().getFloat();
            assertThat(kept).isCloseTo(0.7, org.assertj.core.data.Offset.offset(0.01));
            assertThat(both).as("another key, an independent mask").isCloseTo(0.49, org.assertj.core.data.Offset.offset(0.01));
            // keyedDropout is x · mask / (1 − p) with that mask
            NDArray x = m.randomNormal(0f, 1f, new Shape(400, 250), DataType.FLOAT32).toType(target.dtype, false);
            NDArray dropped = TrainingOps.keyedDropout(x, 0.3, 12345);
            NDArray want = x.toType(DataType.FLOAT32, false).mul(k1.toType(DataType.FLOAT32, false)).div(0.7f)
                    .toType(target.dtype, false);
            // fp32: x·(1/0.7) against x/0.7, one ulp; bf16: one bf16 ulp at |x|/0.7 < 8
            assertThat(Fixtures.maxAbsDiff(dropped, want)).isLessThanOrEqualTo(target.dtype == DataType.FLOAT32 ? 2e-6f
                    : 6.3e-2f);
        }
    }

    /** sdpa with enable_gqa equals explicit attention over keys/values repeated per query group, causal and masked. */
    @ParameterizedTest
    @EnumSource(Target.class)
    void groupedQuerySdpaEqualsExplicitAttention(Target target) {
        target.assume();
        needs(TrainingOps.ATTENTION);
        try (NDManager m = NDManager.newBaseManager(target.device())) {
            DataType dt = target.dtype;
            int b = 2;
            int heads = 6;
            int kv = 2;
            int t = 9;
            int d = 16;
            NDArray q = m.randomNormal(0f, 1f, new Shape(b, heads, t, d), DataType.FLOAT32).toType(dt, false);
            NDArray k = m.randomNormal(0f, 1f, new Shape(b, kv, t, d), DataType.FLOAT32).toType(dt, false);
            NDArray v = m.randomNormal(0f, 1f, new Shape(b, kv, t, d), DataType.FLOAT32).toType(dt, false);
            // reference in fp32: kv head j serves query heads j·rep .. j·rep + rep − 1
            int rep = heads / kv;
            NDArray kf = k.toType(DataType.FLOAT32, false).expandDims(2).broadcast(new Shape(b, kv, rep, t, d))
                    .reshape(b, heads, t, d);
            NDArray vf = v.toType(DataType.FLOAT32, false).expandDims(2).broadcast(new Shape(b, kv, rep, t, d))
                    .reshape(b, heads, t, d);
            NDArray rows = m.arange(0, t, 1, DataType.INT64).reshape(t, 1);
            NDArray cols = m.arange(0, t, 1, DataType.INT64).reshape(1, t);
            NDArray causal = cols.lte(rows).reshape(1, 1, t, t);
            double scale = 1.0 / Math.sqrt(d);
            NDArray bias = causal.logicalNot().toType(DataType.FLOAT32, false).mul(-1e30f);
            NDArray probs = q.toType(DataType.FLOAT32, false).matMul(kf.transpose(0, 1, 3, 2)).mul((float) scale)
                    .add(bias).softmax(-1);
            float[] want = probs.matMul(vf).toDevice(Device.cpu(), false).toFloatArray();
            float bound = dt == DataType.FLOAT32 ? 1e-4f : 5e-2f;
            NDArray got = TrainingOps.sdpa(q, k, v, null, true, scale, true);
            assertClose(target + " gqa sdpa causal", got.toType(DataType.FLOAT32, false).toDevice(Device.cpu(), false)
                    .toFloatArray(), want, bound);
            NDArray gotMasked = TrainingOps.sdpa(q, kf.toType(dt, false), vf.toType(dt, false), causal, false, scale, false);
            assertClose(target + " sdpa with a keep-mask", gotMasked.toType(DataType.FLOAT32, false)
                    .toDevice(Device.cpu(), false).toFloatArray(), want, bound);
        }
    }

    @Test
    void cudaMemoryReportsAndResetsThePeak() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "no GPU");
        Assumptions.assumeTrue(CudaMemory.isAvailable(Engine.getInstance()), "engine does not advertise "
                + CudaMemory.CAPABILITY);
        Device gpu = Device.gpu();
        try (NDManager m = NDManager.newBaseManager(gpu)) {
            long before = CudaMemory.peakAllocatedBytes(gpu);
            NDArray big = m.zeros(new Shape(64, 1024, 1024), DataType.FLOAT32); // 256 MiB
            long peak = CudaMemory.peakAllocatedBytes(gpu);
            assertThat(peak).isGreaterThanOrEqualTo(256L << 20);
            assertThat(peak).isGreaterThanOrEqualTo(before);
            big.close();
            CudaMemory.resetPeak(gpu);
            long after = CudaMemory.peakAllocatedBytes(gpu);
            System.err.printf("CUDA peak: %d bytes with a 256 MiB array, %d after freeing it and a reset%n", peak, after);
            assertThat(after).isLessThanOrEqualTo(peak - (256L << 20));
        }
    }
}
