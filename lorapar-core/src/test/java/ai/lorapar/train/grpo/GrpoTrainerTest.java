package ai.lorapar.train.grpo;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.eval.EvalFixtures;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.LearningRateSchedule;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * {@link GrpoTrainer} on the tiny Qwen2 fixture with the byte-level tokenizer (ids 0-255 bytes, bos 256,
 * eos 257): one step on fixed completions equals a naive step computed independently (unpadded per-row
 * passes, host log-softmax in double, the reference from the model before LoRA was applied, the loss's
 * gradient weights and masked AdamW by hand); frozen elements stay bit-identical; β_KL = 0 skips the
 * reference pass; sampled training is reproducible.
 */
class GrpoTrainerTest {
    private static TextTokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = TextTokenizer.load(EvalFixtures.byteTokenizer());
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    /** Device of the model (CPU; the GPU subclass re-runs on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    /** Scales the fp32 tolerances of the naive comparison (GPU kernels sum in other orders). */
    protected double slack() {
        return device().isGpu() ? 10 : 1;
    }

    private static final int EOS = 257;

    private static long[] bytes(String s, long... tail) {
        long[] b = s.chars().mapToLong(c -> c).toArray();
        long[] out = new long[b.length + tail.length];
        System.arraycopy(b, 0, out, 0, b.length);
        System.arraycopy(tail, 0, out, b.length, tail.length);
        return out;
    }

    /** Counts 'a'; a fixed bonus per completion token (weight 0.5); "no score" for texts with a 'z'. */
    private static RewardSet testRewards() {
        return RewardSet.builder()
                .add(RewardFunction.named("as", (e, t, ids) -> OptionalDouble.of(t.chars().filter(c -> c == 'a').count())))
                .add(RewardFunction.named("length", (e, t, ids) -> OptionalDouble.of(0.1 * ids.length)), 0.5)
                .add(RewardFunction.named("no_z", (e, t, ids) -> t.indexOf('z') >= 0 ? OptionalDouble.empty()
                        : OptionalDouble.of(1.0)))
                .build();
    }

    private static LoraConfig loraConfig() {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(2).alpha(4).dropout(0).init(LoraInit.GAUSSIAN)
                .gaussianStd(0.2).seed(5).build();
    }

    private static Map<String, NDArray> randomMasks(LoraModel lora, NDManager m, long seed) {
        Random rnd = new Random(seed);
        Map<String, NDArray> masks = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> {
            boolean[] b = new boolean[(int) p.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = rnd.nextBoolean();
            }
            masks.put(name, m.create(b, p.getShape()));
        });
        return masks;
    }

    private static Map<String, float[]> snapshot(LoraModel lora) {
        Map<String, float[]> s = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> s.put(name, p.toFloatArray()));
        return s;
    }

    /** log p(seq[t+1] | seq[..t]) for the completion positions, in double from one unpadded pass. */
    private static double[] naiveLogProbs(DecoderModel model, long[] prompt, long[] completion, double temperature) {
        try (NDManager s = model.manager().newSubManager()) {
            long[] seq = concat(prompt, completion);
            NDArray logits = model.forward(s.create(seq, new Shape(1, seq.length)), null, false);
            float[] lg = logits.toType(DataType.FLOAT32, false).toFloatArray();
            int v = (int) logits.getShape().get(2);
            double[] out = new double[completion.length];
            for (int j = 0; j < completion.length; j++) {
                int pos = prompt.length - 1 + j;
                double max = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < v; k++) {
                    max = Math.max(max, lg[pos * v + k] / temperature);
                }
                double z = 0;
                for (int k = 0; k < v; k++) {
                    z += Math.exp(lg[pos * v + k] / temperature - max);
                }
                out[j] = lg[pos * v + (int) completion[j]] / temperature - max - Math.log(z);
            }
            return out;
        }
    }

    private static long[] concat(long[] a, long[] b) {
        long[] out = new long[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static long[] cutAfterEos(long[] c) {
        for (int t = 0; t < c.length; t++) {
            if (c[t] == EOS) {
                return java.util.Arrays.copyOf(c, t + 1);
            }
        }
        return c;
    }

    /** A configuration of the comparison. */
    record Variant(String name, double beta, LossAggregation aggregation, AdvantageScaling scaling, double temperature,
            double maxGradNorm) {}

    @Test
    void aStepOnFixedCompletionsEqualsANaiveStep() throws Exception {
        for (Variant v : List.of(
                new Variant("paper defaults", 0.04, LossAggregation.PER_SEQUENCE, AdvantageScaling.GROUP_STD, 1.0, 0.05),
                new Variant("token loss, no KL, centred, T=0.7", 0, LossAggregation.PER_TOKEN, AdvantageScaling.NONE, 0.7,
                        0))) {
            compareWithNaive(v);
        }
    }

    private void compareWithNaive(Variant v) throws Exception {
        int g = 3;
        List<GrpoPrompt> prompts = List.of(
                new GrpoPrompt(Example.of("p0", "What is 2+2?", "#### 4"), concat(new long[] {256}, bytes("What is 2+2?"))),
                new GrpoPrompt(Example.of("p1", "Hi", "#### 1"), concat(new long[] {256}, bytes("Hi"))));
        List<long[]> completions = List.of(
                bytes("a banana", EOS),            // stops
                bytes("zzz", EOS, 97, 97),         // "no score" from no_z; tokens after eos are padding
                bytes("abc abc a"),                // ran out of budget
                bytes("aa", EOS),
                bytes("b", EOS),
                bytes("data and a", EOS));
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32)) {
            // the reference policy, independently: the model before LoRA
            List<long[]> cut = new ArrayList<>();
            List<double[]> ref = new ArrayList<>();
            for (int i = 0; i < completions.size(); i++) {
                cut.add(cutAfterEos(completions.get(i)));
                ref.add(naiveLogProbs(model, prompts.get(i / g).ids(), cut.get(i), v.temperature()));
            }
            try (LoraModel lora = LoraModel.apply(model, loraConfig(), m)) {
                Map<String, NDArray> masks = randomMasks(lora, m, 11);
                Map<String, float[]> before = snapshot(lora);

                // ---- naive: rewards, advantages, log-probs, loss and its gradient weights
                RewardSet rewards = testRewards();
                int b = completions.size();
                double[] totals = new double[b];
                for (int i = 0; i < b; i++) {
                    String text = tokenizer.decode(cut.get(i), true);
                    double as = text.chars().filter(c -> c == 'a').count();
                    double len = 0.1 * cut.get(i).length;
                    totals[i] = as + 0.5 * len + (text.indexOf('z') >= 0 ? 0 : 1.0);
                }
                double[] adv = GrpoMathTest.naiveAdvantages(totals, g, v.scaling() == AdvantageScaling.GROUP_STD);
                long tokenCount = cut.stream().mapToLong(c -> c.length).sum();
                double normaliser = v.aggregation() == LossAggregation.PER_SEQUENCE ? b : tokenCount;
                double loss = 0;
                double klSum = 0;
                List<double[]> weights = new ArrayList<>();
                for (int i = 0; i < b; i++) {
                    double[] lp = naiveLogProbs(model, prompts.get(i / g).ids(), cut.get(i), v.temperature());
                    int len = cut.get(i).length;
                    double w = v.aggregation() == LossAggregation.PER_SEQUENCE ? 1.0 / (len * normaliser) : 1.0 / normaliser;
                    double[] dl = new double[len];
                    double klRow = 0;
                    for (int t = 0; t < len; t++) {
                        double d = ref.get(i)[t] - lp[t];
                        double kl = Math.exp(d) - d - 1;
                        klRow += kl;
                        // ρ = 1: −min(Â, Â) = −Â; ∂/∂logp = −Â + β(1 − e^d)
                        loss += (-adv[i] + v.beta() * kl) * w;
                        dl[t] = (-adv[i] + v.beta() * (1 - Math.exp(d))) * w;
                    }
                    klSum += klRow / len;
                    weights.add(dl);
                }
                // gradient of Σ_it dl_it · logp_it: one unpadded pass per row (independent of GrpoLogProbs)
                Map<String, float[]> naiveGrad = new LinkedHashMap<>();
                ai.lorapar.train.Gradients.zero(lora.parameters().values());
                for (int i = 0; i < b; i++) {
                    long[] prompt = prompts.get(i / g).ids();
                    long[] seq = concat(prompt, cut.get(i));
                    try (NDManager s = m.newSubManager();
                            GradientCollector gc = m.getEngine().newGradientCollector()) {
                        NDArray logits = model.forward(s.create(seq, new Shape(1, seq.length)), null, true);
                        NDArray pos = logits.get(new ai.djl.ndarray.index.NDIndex(":, {}:{}, :", prompt.length - 1,
                                seq.length - 1)).div((float) v.temperature()).logSoftmax(-1);
                        NDArray tok = s.create(cut.get(i)).reshape(1, -1, 1);
                        NDArray picked = pos.gather(tok, -1).reshape(-1);
                        float[] wf = new float[weights.get(i).length];
                        for (int t = 0; t < wf.length; t++) {
                            wf[t] = (float) weights.get(i)[t];
                        }
                        gc.backward(picked.mul(s.create(wf)).sum());
                    }
                }
                lora.parameters().forEach((name, p) -> naiveGrad.put(name, p.getGradient().toFloatArray()));
                ai.lorapar.train.Gradients.zero(lora.parameters().values());

                double lr = 0.01;
                double wd = 0.1;
                double b1 = 0.9;
                double b2 = 0.99;
                double normSqNaive = 0;
                for (String name : before.keySet()) {
                    boolean[] mk = masks.get(name).toBooleanArray();
                    float[] gr = naiveGrad.get(name);
                    for (int k = 0; k < gr.length; k++) {
                        normSqNaive += mk[k] ? (double) gr[k] * gr[k] : 0;
                    }
                }
                double norm = Math.sqrt(normSqNaive);

                // ---- the trainer
                GrpoConfig cfg = GrpoConfig.builder().groupSize(g).promptsPerStep(2).microBatchSize(4)
                        .learningRate(lr).weightDecay(wd).betas(b1, b2).maxGradNorm(v.maxGradNorm())
                        .schedule(LearningRateSchedule.constant()).klBeta(v.beta()).lossAggregation(v.aggregation())
                        .advantageScaling(v.scaling()).temperature(v.temperature()).rewards(rewards).build();
                ExampleEncoder enc = ExampleEncoder.builder(tokenizer).build();
                Map<String, float[]> trainerGrad = new LinkedHashMap<>();
                try (GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(enc).config(cfg).masks(masks).build()) {
                    trainer.start(1);
                    trainer.setGradientProbe(grads -> grads.forEach((name, gr) -> trainerGrad.put(name, gr.toFloatArray())));
                    List<GrpoStepMetrics> metrics = trainer.stepWithCompletions(prompts, completions);
                    assertThat(metrics).hasSize(1);
                    GrpoStepMetrics mt = metrics.get(0);
                    assertThat(mt.loss()).as("%s loss", v.name()).isCloseTo(loss, within(1e-5 * slack()));
                    assertThat(mt.reward().mean()).isCloseTo(java.util.Arrays.stream(totals).average().orElseThrow(),
                            within(1e-9));
                    assertThat(mt.rewardsByFunction().get("no_z").count()).as("no score left out").isEqualTo(5);
                    assertThat(mt.completionTokens()).isEqualTo(tokenCount);
                    assertThat(mt.truncatedFraction()).isEqualTo(1.0 / 6);
                    assertThat(mt.clipFraction()).isZero();
                    if (v.beta() > 0) {
                        assertThat(mt.kl()).isCloseTo(klSum / b, within((1e-6 + 1e-6 * klSum / b) * slack()));
                        assertThat(trainer.referencePasses()).as("two micro-batches of the reference").isEqualTo(2);
                    } else {
                        assertThat(mt.kl()).isNaN();
                        assertThat(trainer.referencePasses()).as("β = 0 skips the reference pass").isZero();
                    }
                    assertThat(mt.gradClipped()).isEqualTo(v.maxGradNorm() > 0 && norm > v.maxGradNorm());
                    assertThat(mt.gradNorm()).isCloseTo(norm, within((1e-5 + 1e-4 * norm) * slack()));
                }
                // naive masked AdamW, first step, in double, on the gradients the trainer used (checked against the
                // naive gradients above: Adam's first step g/(|g| + ε) is ill-conditioned for |g| near ε, so the
                // update is compared given the gradient)
                double eps = 1e-8;
                double normSq = 0;
                for (String name : before.keySet()) {
                    boolean[] mk = masks.get(name).toBooleanArray();
                    float[] gr = trainerGrad.get(name);
                    for (int k = 0; k < gr.length; k++) {
                        normSq += mk[k] ? (double) gr[k] * gr[k] : 0;
                    }
                }
                double usedNorm = Math.sqrt(normSq);
                double coef = v.maxGradNorm() > 0 ? Math.min(1, v.maxGradNorm() / (usedNorm + 1e-6)) : 1;
                Map<String, double[]> expected = new LinkedHashMap<>();
                for (String name : before.keySet()) {
                    boolean[] mk = masks.get(name).toBooleanArray();
                    float[] p0 = before.get(name);
                    float[] gr = trainerGrad.get(name);
                    double[] p1 = new double[p0.length];
                    for (int k = 0; k < p0.length; k++) {
                        if (!mk[k]) {
                            p1[k] = p0[k];
                            continue;
                        }
                        double gk = gr[k] * coef;
                        double p = p0[k] * (1 - lr * wd);
                        double mm = (1 - b1) * gk;
                        double vv = (1 - b2) * gk * gk;
                        p1[k] = p - lr / (1 - b1) * mm / (Math.sqrt(vv) / Math.sqrt(1 - b2) + eps);
                    }
                    expected.put(name, p1);
                }

                for (String name : before.keySet()) {
                    float[] want = naiveGrad.get(name);
                    float[] got = trainerGrad.get(name);
                    for (int k = 0; k < want.length; k++) {
                        assertThat((double) got[k]).as("%s grad %s[%d]", v.name(), name, k)
                                .isCloseTo(want[k], within((2e-7 + 5e-4 * Math.abs(want[k])) * slack()));
                    }
                    boolean[] mk = masks.get(name).toBooleanArray();
                    float[] after = lora.parameters().get(name).toFloatArray();
                    float[] p0 = before.get(name);
                    for (int k = 0; k < after.length; k++) {
                        if (mk[k]) {
                            assertThat((double) after[k]).as("%s %s[%d]", v.name(), name, k)
                                    .isCloseTo(expected.get(name)[k], within(2e-6 * slack()));
                        } else {
                            assertThat(Float.floatToRawIntBits(after[k])).as("%s frozen %s[%d]", v.name(), name, k)
                                    .isEqualTo(Float.floatToRawIntBits(p0[k]));
                        }
                    }
                }
            }
        }
    }

    private static List<Example> arithmetic() {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ex.add(Example.of("q" + i, i + "+" + (i + 1) + "=?", "#### " + (2 * i + 1)));
        }
        return ex;
    }

    /**
     * Sampled training end to end: the step count of the run, the completion log, frozen elements unchanged,
     * and a second run with the same seed gives the same weights bit for bit (the per-rollout sampling
     * seed is a function of the run's seed and the rollout index).
     */
    @Test
    void sampledTrainingIsReproducibleAndKeepsFrozenElements(@TempDir Path tmp) throws Exception {
        GrpoConfig cfg = GrpoConfig.builder().groupSize(2).promptsPerStep(2).gradientAccumulation(2).microBatchSize(3)
                .maxCompletionTokens(6).maxPromptTokens(40).learningRate(0.02).rewards(testRewards()).systemPrompt("Be brief.")
                .completionLogEvery(1).seed(3).build();
        assertThat(cfg.totalSteps(6)).isEqualTo(2);
        Map<String, float[]> first = null;
        for (int run = 0; run < 2; run++) {
            try (NDManager m = NDManager.newBaseManager(device());
                    DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                    LoraModel lora = LoraModel.apply(model, loraConfig(), m)) {
                Map<String, NDArray> masks = randomMasks(lora, m, 12);
                Map<String, float[]> before = snapshot(lora);
                ExampleEncoder enc = ExampleEncoder.builder(tokenizer).build();
                Path log = tmp.resolve("run" + run).resolve("completions.jsonl");
                List<GrpoStepMetrics> seen = new ArrayList<>();
                GrpoReport report;
                try (GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(enc).config(cfg).masks(masks)
                        .completionLog(log).listener(seen::add).build()) {
                    assertThat(trainer.promptEncoder().systemPrompt()).isEqualTo("Be brief.");
                    report = trainer.train(arithmetic());
                    assertThat(trainer.rolloutCount()).isEqualTo(3); // 2 + 1 rollouts of 2 prompts
                }
                assertThat(report.steps()).hasSize(2).isEqualTo(seen);
                assertThat(report.steps().get(0).completions()).isEqualTo(8);
                assertThat(report.steps().get(1).completions()).as("the prompts that are left").isEqualTo(4);
                assertThat(report.steps().get(1).step()).isEqualTo(2);
                List<String> lines = Files.readAllLines(log);
                assertThat(lines).hasSize(12);
                JsonObject o = JsonParser.parseString(lines.get(0)).getAsJsonObject();
                assertThat(o.get("step").getAsInt()).isEqualTo(1);
                assertThat(o.getAsJsonObject("rewards").keySet()).containsExactly("as", "length", "no_z");
                Map<String, float[]> after = snapshot(lora);
                boolean moved = false;
                for (String name : before.keySet()) {
                    boolean[] mk = masks.get(name).toBooleanArray();
                    for (int k = 0; k < mk.length; k++) {
                        if (!mk[k]) {
                            assertThat(Float.floatToRawIntBits(after.get(name)[k])).as("frozen %s[%d]", name, k)
                                    .isEqualTo(Float.floatToRawIntBits(before.get(name)[k]));
                        } else {
                            moved |= after.get(name)[k] != before.get(name)[k];
                        }
                    }
                }
                assertThat(moved).as("active elements trained").isTrue();
                if (first == null) {
                    first = after;
                } else {
                    for (String name : first.keySet()) {
                        if (device().isGpu()) {
                            // CUDA kernels may reduce in another order from run to run
                            assertThat(after.get(name)).as("run 2 %s", name).containsExactly(first.get(name),
                                    org.assertj.core.data.Offset.offset(1e-5f));
                        } else {
                            assertThat(after.get(name)).as("run 2 %s", name).containsExactly(first.get(name));
                        }
                    }
                }
            }
        }
    }

    /** μ = 2: one rollout, two optimizer steps against the stored old log-probabilities. */
    @Test
    void severalUpdatesPerGeneration() throws Exception {
        GrpoConfig cfg = GrpoConfig.builder().groupSize(2).promptsPerStep(2).updatesPerGeneration(2).microBatchSize(4)
                .maxCompletionTokens(5).learningRate(0.05).maxGradNorm(0).schedule(LearningRateSchedule.constant())
                .rewards(testRewards()).systemPrompt(null)
                .completionLogEvery(0).build();
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, loraConfig(), m);
                GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(ExampleEncoder.builder(tokenizer).build())
                        .config(cfg).build()) {
            GrpoReport r = trainer.train(arithmetic().subList(0, 2));
            assertThat(r.steps()).hasSize(2);
            assertThat(trainer.rolloutCount()).isEqualTo(1);
            assertThat(r.steps().get(0).clipFraction()).as("the old policy is the sampling one").isZero();
            assertThat(r.steps().get(1).rolloutSeconds()).isZero();
            assertThat(r.steps().get(1).reward()).isEqualTo(r.steps().get(0).reward());
            assertThat(r.steps().get(1).loss()).isNotEqualTo(r.steps().get(0).loss());
        }
    }

    @Test
    void badUseNamesTheProblem() throws Exception {
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, loraConfig(), m);
                GrpoTrainer noEncoder = GrpoTrainer.builder(lora).build()) {
            assertThatThrownBy(() -> noEncoder.train(arithmetic())).hasMessageContaining("encoder");
            assertThatThrownBy(() -> noEncoder.step(List.of())).hasMessageContaining("start");
        }
        assertThatThrownBy(() -> GrpoConfig.builder().groupSize(1)).hasMessageContaining(">= 2");
        assertThatThrownBy(() -> GrpoConfig.builder().groupSize(8).trlBatch(6, 2)).hasMessageContaining("whole number");
        assertThat(GrpoConfig.builder().trlBatch(8, 4).build().promptsPerStep()).isEqualTo(4);
        GrpoConfig defaults = GrpoConfig.builder().build();
        assertThat(defaults.learningRate()).isEqualTo(5e-6);
        assertThat(defaults.weightDecay()).isEqualTo(0.1);
        assertThat(defaults.maxGradNorm()).isEqualTo(0.1);
        assertThat(defaults.klBeta()).isEqualTo(0.04);
        assertThat(defaults.promptsPerUpdate() * defaults.groupSize()).as("TRL's 8 x 4 completions").isEqualTo(32);
        assertThat(defaults.systemPrompt()).isEqualTo(GsmRewards.SYSTEM_PROMPT);
        assertThat(GrpoTrainer.rolloutSeed(42, 0)).isNotEqualTo(GrpoTrainer.rolloutSeed(42, 1))
                .isBetween(0L, (long) Integer.MAX_VALUE);
    }
}
