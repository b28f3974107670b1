package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A few SFT steps of {@link SftTrainer} equal a naive reference loop written here independently: one
 * example per forward pass (no padding), the NLL picked from the log-softmax with a one-hot mask, the
 * normalisation done by hand, AdamW with masks, clipping and the schedule in double precision on the
 * host. Only the data order ({@link BatchPlan}) and the model's forward pass are shared.
 *
 * <p>Setting: fixture LLaMA, LoRA QKVGUD r=4 (Gaussian init, dropout 0), random masks (half the
 * elements), weight decay 0.1, clipping at 1.0, 11 examples in micro-batches of 3 (the last one of 2)
 * accumulated 3 at a time, so each epoch has a full step of 3 micro-batches and a partial one of 1;
 * 2 epochs = 4 steps. Bounds (fp32 on the CPU): losses within 1e-5 relative; parameters within
 * 1e-5·|p| + 1e-3·lr (padding and summation order change the last bits of gradients; Adam's update of an
 * element with a tiny gradient amplifies that, so an absolute term scaled by the step size is needed).
 */
class SftReferenceTest extends DeviceTest {
    private static TextTokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = SftFixtures.tokenizer();
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    /** The base model's compute dtype. */
    protected DataType baseDtype() {
        return DataType.FLOAT32;
    }

    protected double lossTolerance() {
        return 1e-5;
    }

    protected double paramRelTolerance() {
        return 1e-5;
    }

    protected double paramAbsToleranceInSteps() {
        return 1e-3;
    }

    static final double LR = 5e-3;

    static SftConfig config(SftConfig.LossNormalization norm) {
        return SftConfig.builder().learningRate(LR).schedule(LearningRateSchedule.cosine(0.0)).weightDecay(0.1)
                .maxGradNorm(1.0).microBatchSize(3).gradientAccumulation(3).epochs(2).lossNormalization(norm)
                .seed(7).loggingSteps(1).build();
    }

    static LoraConfig loraConfig() {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8).dropout(0).init(LoraInit.GAUSSIAN)
                .gaussianStd(0.05).seed(3).build();
    }

    /** The trainer's config: the reference's settings (subclasses add the trainer's own options). */
    protected SftConfig trainerConfig(SftConfig reference) {
        return reference;
    }

    /** Checks on the trainer after its run (subclasses). */
    protected void checkTrainer(SftTrainer trainer) {}

    @Test
    void perTokenStepsEqualTheReference() throws Exception {
        compareWithReference(SftConfig.LossNormalization.PER_TOKEN);
    }

    @Test
    void perExampleMeanStepsEqualTheReference() throws Exception {
        compareWithReference(SftConfig.LossNormalization.PER_EXAMPLE);
    }

    private void compareWithReference(SftConfig.LossNormalization norm) throws Exception {
        SftConfig cfg = config(norm);
        ExampleEncoder enc = SftFixtures.encoder(tokenizer);
        List<Example> examples = SftFixtures.examples(11, 5);
        List<EncodedExample> rows = enc.encodeAll(examples).examples();
        assertThat(rows).hasSize(11);
        try (DecoderModel model = SftFixtures.load("llama", manager, baseDtype())) {
            Map<String, float[]> initial;
            Map<String, boolean[]> maskValues = new LinkedHashMap<>();
            Reference ref;
            try (LoraModel lora = LoraModel.apply(model, loraConfig(), manager)) {
                initial = SftFixtures.snapshot(lora.parameters());
                Map<String, NDArray> masks = SftFixtures.randomMasks(lora.parameters(), 0.5, 11, manager);
                masks.forEach((k, v) -> maskValues.put(k, v.toBooleanArray()));
                ref = reference(model, lora.parameters(), maskValues, rows, cfg);
            }
            try (LoraModel lora = LoraModel.apply(model, loraConfig(), manager)) {
                assertThat(SftFixtures.snapshot(lora.parameters())).as("same initialisation")
                        .usingRecursiveComparison().isEqualTo(initial);
                Map<String, NDArray> masks = new LinkedHashMap<>();
                maskValues.forEach((k, v) -> masks.put(k, manager.create(v, lora.parameters().get(k).getShape())));
                List<StepMetrics> steps = new ArrayList<>();
                SftTrainer trainer = SftTrainer.builder(lora, enc).masks(masks).config(trainerConfig(cfg))
                        .listener(new TrainingListener() {
                            @Override
                            public void onStep(StepMetrics m) {
                                steps.add(m);
                            }
                        }).build();
                StageReport report = trainer.train(examples);
                checkTrainer(trainer);
                assertThat(report.steps()).isEqualTo(4);
                assertThat(report.totalSteps()).isEqualTo(4);
                assertThat(steps).hasSize(4);
                for (int i = 0; i < 4; i++) {
                    assertThat(steps.get(i).loss()).as("loss of step %d", i + 1)
                            .isCloseTo(ref.losses.get(i), org.assertj.core.data.Offset.offset(
                                    lossTolerance() * Math.abs(ref.losses.get(i))));
                    assertThat(steps.get(i).learningRate()).isCloseTo(ref.rates.get(i),
                            org.assertj.core.data.Offset.offset(1e-12));
                    // Adam is blind to the gradients' scale: the norm checks it (and the clipping)
                    assertThat(steps.get(i).gradNorm()).as("grad norm of step %d", i + 1)
                            .isCloseTo(ref.norms.get(i), org.assertj.core.data.Offset.offset(
                                    gradNormTolerance() * ref.norms.get(i)));
                }
                Map<String, float[]> actual = SftFixtures.snapshot(lora.parameters());
                double worst = 0;
                double dot = 0;
                double actualSq = 0;
                double refSq = 0;
                for (String name : actual.keySet()) {
                    float[] a = actual.get(name);
                    double[] r = ref.params.get(name);
                    boolean[] mask = maskValues.get(name);
                    float[] init = initial.get(name);
                    for (int j = 0; j < a.length; j++) {
                        if (!mask[j]) {
                            assertThat(Float.floatToRawIntBits(a[j])).as("frozen %s[%d]", name, j)
                                    .isEqualTo(Float.floatToRawIntBits(init[j]));
                            continue;
                        }
                        double ua = a[j] - (double) init[j];
                        double ur = r[j] - init[j];
                        dot += ua * ur;
                        actualSq += ua * ua;
                        refSq += ur * ur;
                        if (elementwise()) {
                            double tol = paramRelTolerance() * Math.abs(r[j]) + paramAbsToleranceInSteps() * LR;
                            worst = Math.max(worst, Math.abs(a[j] - r[j]) / tol);
                            assertThat((double) a[j]).as("%s[%d]", name, j).isCloseTo(r[j],
                                    org.assertj.core.data.Offset.offset(tol));
                        }
                    }
                }
                double cosine = dot / Math.sqrt(actualSq * refSq);
                double normRatio = Math.sqrt(actualSq / refSq);
                System.err.printf("SFT vs reference (%s, %s, %s): losses %s, grad norms %s; worst parameter error "
                        + "%.3f of the bound; updates: cosine %.6f, norm ratio %.6f%n", norm, device(), baseDtype(),
                        ref.losses, ref.norms, worst, cosine, normRatio);
                if (!elementwise()) {
                    assertThat(cosine).as("cosine of the parameter updates").isGreaterThan(minUpdateCosine());
                    assertThat(normRatio).as("ratio of the update norms").isBetween(1 - maxUpdateNormError(),
                            1 + maxUpdateNormError());
                }
            }
        }
    }

    /** Whether parameters are compared element by element (fp32), or through their updates as a whole (bf16). */
    protected boolean elementwise() {
        return true;
    }

    /** With {@link #elementwise()} off: the least cosine between the trainer's and the reference's updates. */
    protected double minUpdateCosine() {
        return 0.999;
    }

    /** With {@link #elementwise()} off: the largest relative difference of the updates' norms. */
    protected double maxUpdateNormError() {
        return 0.01;
    }

    /** The bound on the grad norms' relative difference. */
    protected double gradNormTolerance() {
        return 10 * lossTolerance();
    }

    /** The reference's per-step losses, learning rates and final parameters. */
    static final class Reference {
        final List<Double> losses = new ArrayList<>();
        final List<Double> rates = new ArrayList<>();
        final List<Double> norms = new ArrayList<>();
        final Map<String, double[]> params = new LinkedHashMap<>();
    }

    /** The naive loop (see the class comment). */
    static Reference reference(DecoderModel model, Map<String, NDArray> params, Map<String, boolean[]> masks,
            List<EncodedExample> rows, SftConfig cfg) {
        NDManager m = model.manager();
        BatchPlan plan = new BatchPlan(rows.stream().mapToInt(EncodedExample::length).toArray(), cfg.microBatchSize(),
                cfg.gradientAccumulation(), cfg.groupByLength(), cfg.seed());
        long total = cfg.epochs() * plan.stepsPerEpoch();
        Reference out = new Reference();
        Map<String, double[]> p = new LinkedHashMap<>();
        Map<String, double[]> m1 = new LinkedHashMap<>();
        Map<String, double[]> m2 = new LinkedHashMap<>();
        params.forEach((k, v) -> {
            float[] f = v.toFloatArray();
            double[] d = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                d[i] = f[i];
            }
            p.put(k, d);
            m1.put(k, new double[f.length]);
            m2.put(k, new double[f.length]);
        });
        int vocab = model.config().vocabSize();
        long t = 0;
        for (int epoch = 0; epoch < cfg.epochs(); epoch++) {
            List<int[]> batches = plan.epoch(epoch);
            for (int first = 0; first < batches.size(); first += cfg.gradientAccumulation()) {
                List<EncodedExample> step = new ArrayList<>();
                for (int b = first; b < Math.min(batches.size(), first + cfg.gradientAccumulation()); b++) {
                    for (int idx : batches.get(b)) {
                        step.add(rows.get(idx));
                    }
                }
                long n = 0;
                for (EncodedExample e : step) {
                    n += e.length() - Math.max(1, e.promptLength());
                }
                double loss = 0;
                for (EncodedExample e : step) {
                    int len = e.length();
                    int counted = len - Math.max(1, e.promptLength());
                    double w = cfg.lossNormalization() == SftConfig.LossNormalization.PER_TOKEN ? 1.0 / n
                            : 1.0 / ((double) counted * step.size());
                    float[] pick = new float[len * vocab];
                    for (int pos = 0; pos + 1 < len; pos++) {
                        if (pos + 1 >= e.promptLength()) {
                            pick[pos * vocab + (int) e.ids()[pos + 1]] = 1f;
                        }
                    }
                    try (NDManager s = m.newSubManager()) {
                        NDArray ids = s.create(e.ids(), new Shape(1, len));
                        NDArray sel = s.create(pick, new Shape(1, len, vocab));
                        NDArray weighted;
                        try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                            NDArray logits = model.forward(ids, null, true);
                            NDArray logp = logits.toType(DataType.FLOAT32, false).logSoftmax(-1);
                            NDArray nll = logp.mul(sel).sum().neg();
                            weighted = nll.mul((float) w);
                            gc.backward(weighted);
                        }
                        loss += weighted.getFloat();
                    }
                }
                // AdamW with masks, global clipping over active elements and the schedule, in double
                Map<String, float[]> grads = new LinkedHashMap<>();
                double sq = 0;
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    float[] g = e.getValue().getGradient().toFloatArray();
                    grads.put(e.getKey(), g);
                    boolean[] mask = masks.get(e.getKey());
                    for (int j = 0; j < g.length; j++) {
                        if (mask[j]) {
                            sq += (double) g[j] * g[j];
                        }
                    }
                }
                double norm = Math.sqrt(sq);
                double coef = cfg.maxGradNorm() > 0 ? Math.min(1.0, cfg.maxGradNorm() / (norm + 1e-6)) : 1.0;
                double lr = cfg.learningRate() * cfg.schedule().multiplier(t, total);
                t++;
                for (String name : params.keySet()) {
                    float[] g = grads.get(name);
                    double[] pp = p.get(name);
                    double[] mm = m1.get(name);
                    double[] vv = m2.get(name);
                    boolean[] mask = masks.get(name);
                    for (int j = 0; j < g.length; j++) {
                        if (!mask[j]) {
                            continue;
                        }
                        double gj = g[j] * coef;
                        pp[j] *= 1 - lr * cfg.weightDecay();
                        mm[j] = cfg.beta1() * mm[j] + (1 - cfg.beta1()) * gj;
                        vv[j] = cfg.beta2() * vv[j] + (1 - cfg.beta2()) * gj * gj;
                        double mhat = mm[j] / (1 - Math.pow(cfg.beta1(), t));
                        double vhat = vv[j] / (1 - Math.pow(cfg.beta2(), t));
                        pp[j] -= lr * mhat / (Math.sqrt(vhat) + cfg.epsilon());
                    }
                    float[] f = new float[pp.length];
                    for (int j = 0; j < f.length; j++) {
                        f[j] = (float) pp[j];
                    }
                    SftFixtures.setValues(params.get(name), f);
                }
                Gradients.zero(params.values());
                out.losses.add(loss);
                out.rates.add(lr);
                out.norms.add(norm);
            }
        }
        assertThat(t).isEqualTo(total);
        out.params.putAll(p);
        return out;
    }
}
