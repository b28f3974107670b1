package ai.lorapar.train.grpo;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.InProcessCollective;
import ai.lorapar.eval.EvalFixtures;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.LearningRateSchedule;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainingListener;
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
 * Data-parallel GRPO (issue 15), ranks as threads ({@link InProcessCollective}), CPU, fp32, the tiny Qwen2
 * fixture: on the same completions, 2 ranks (each taking its share of the groups) give one process's
 * parameters and metrics over two updates, for the paper's defaults (per-sequence loss, KL, clipping) and
 * for a per-token loss with μ = 2; sampled training keeps the replicas identical, reports global counts,
 * and its checkpoint resumes on another world size; a world size that does not divide the prompts per
 * rollout is refused.
 */
class DataParallelGrpoTest {
    private static TextTokenizer tokenizer;
    private static final int EOS = 257;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = TextTokenizer.load(EvalFixtures.byteTokenizer());
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    /** Device of the ranks' models (CPU; the GPU subclass re-runs on CUDA, sampling through CUDA graphs). */
    protected Device device() {
        return Device.cpu();
    }

    /** Scales the fp32 tolerances (GPU kernels sum in other orders). */
    protected double slack() {
        return device().isGpu() ? 10 : 1;
    }

    private static long[] bytes(String s, long... tail) {
        long[] b = s.chars().mapToLong(c -> c).toArray();
        long[] out = new long[b.length + tail.length];
        System.arraycopy(b, 0, out, 0, b.length);
        System.arraycopy(tail, 0, out, b.length, tail.length);
        return out;
    }

    private static long[] prompt(String s) {
        long[] b = bytes(s);
        long[] out = new long[b.length + 1];
        out[0] = 256;
        System.arraycopy(b, 0, out, 1, b.length);
        return out;
    }

    private static RewardSet rewards() {
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

    private static Map<String, NDArray> masks(LoraModel lora, NDManager m) {
        Random rnd = new Random(12);
        Map<String, NDArray> masks = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> {
            boolean[] b = new boolean[(int) p.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = rnd.nextDouble() < 0.7;
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

    private static final List<GrpoPrompt> PROMPTS = List.of(
            new GrpoPrompt(Example.of("p0", "What is 2+2?", "#### 4"), prompt("What is 2+2?")),
            new GrpoPrompt(Example.of("p1", "Hi", "#### 1"), prompt("Hi")),
            new GrpoPrompt(Example.of("p2", "Name a fruit.", "#### 0"), prompt("Name a fruit.")),
            new GrpoPrompt(Example.of("p3", "Say zebra", "#### 3"), prompt("Say zebra")));

    /** Two updates' completions, G = 3 per prompt: stops, padding after eos, budget exhausted, "no score". */
    private static List<List<long[]>> completions() {
        String[] words = {"a banana", "zzz", "abc abc a", "aa", "b", "data and a", "apple", "pear", "zz a",
                "zebra", "a", "aaaa aa"};
        List<List<long[]>> out = new ArrayList<>();
        for (int u = 0; u < 2; u++) {
            List<long[]> c = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                String w = words[(i + 5 * u) % words.length];
                c.add(i % 4 == 2 ? bytes(w) : i % 5 == 1 ? bytes(w, EOS, 97, 97) : bytes(w, EOS));
            }
            out.add(c);
        }
        return out;
    }

    private record Run(Map<String, float[]> params, List<GrpoStepMetrics> metrics) {}

    private Run onCompletions(Collective c, GrpoConfig cfg) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, loraConfig(), m)) {
            List<GrpoStepMetrics> metrics = new ArrayList<>();
            try (GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(ExampleEncoder.builder(tokenizer).build())
                    .config(cfg).masks(masks(lora, m)).collective(c).build()) {
                trainer.start(2 * cfg.updatesPerGeneration());
                for (List<long[]> update : completions()) {
                    metrics.addAll(trainer.stepWithCompletions(PROMPTS, update));
                }
            }
            return new Run(snapshot(lora), metrics);
        }
    }

    private void assertClose(Map<String, float[]> actual, Map<String, float[]> expected) {
        for (String k : expected.keySet()) {
            float[] a = actual.get(k);
            float[] e = expected.get(k);
            for (int i = 0; i < e.length; i++) {
                assertThat(a[i]).as("%s[%d]", k, i).isCloseTo(e[i], within((float) ((1e-4 * Math.abs(e[i]) + 1e-6) * slack())));
            }
        }
    }

    @Test
    void twoRanksOnTheSameCompletionsGiveOneProcessParametersAndMetrics() throws Exception {
        GrpoConfig.Builder base = GrpoConfig.builder().groupSize(3).promptsPerStep(4).microBatchSize(4)
                .learningRate(0.02).weightDecay(0.1).schedule(LearningRateSchedule.constant()).rewards(rewards());
        for (GrpoConfig cfg : List.of(
                base.klBeta(0.04).lossAggregation(LossAggregation.PER_SEQUENCE).maxGradNorm(0.05).build(),
                base.klBeta(0).lossAggregation(LossAggregation.PER_TOKEN).updatesPerGeneration(2).clipEpsilon(0.01)
                        .maxGradNorm(0).build())) {
            Run single = InProcessCollective.run(1, c -> onCompletions(c, cfg)).get(0);
            List<Run> ranks = InProcessCollective.run(2, c -> onCompletions(c, cfg));
            assertClose(ranks.get(0).params(), single.params());
            assertClose(ranks.get(1).params(), single.params());
            assertThat(ranks.get(0).metrics()).hasSameSizeAs(single.metrics());
            for (int i = 0; i < single.metrics().size(); i++) {
                GrpoStepMetrics e = single.metrics().get(i);
                for (Run r : ranks) {
                    GrpoStepMetrics a = r.metrics().get(i);
                    assertThat(a.completions()).isEqualTo(12).isEqualTo(e.completions());
                    assertThat(a.completionTokens()).isEqualTo(e.completionTokens());
                    assertThat(a.reward().mean()).isEqualTo(e.reward().mean());
                    assertThat(a.reward().std()).isEqualTo(e.reward().std());
                    assertThat(a.rewardsByFunction()).isEqualTo(e.rewardsByFunction());
                    assertThat(a.truncatedFraction()).isEqualTo(e.truncatedFraction());
                    assertThat(a.completionLength()).isEqualTo(e.completionLength());
                    assertThat(a.loss()).isCloseTo(e.loss(), within((1e-5 * Math.abs(e.loss()) + 1e-7) * slack()));
                    assertThat(a.gradNorm()).isCloseTo(e.gradNorm(), within(1e-5 * e.gradNorm() * slack()));
                    assertThat(a.gradClipped()).isEqualTo(e.gradClipped());
                    assertThat(a.clipFraction()).isCloseTo(e.clipFraction(), within(1e-6));
                    if (Double.isNaN(e.kl())) {
                        assertThat(a.kl()).isNaN();
                    } else {
                        assertThat(a.kl()).isCloseTo(e.kl(), within((1e-5 * Math.abs(e.kl()) + 1e-8) * slack()));
                    }
                }
            }
            if (cfg.updatesPerGeneration() == 2) {
                assertThat(single.metrics().get(1).clipFraction()).as("the ratio is clipped in step 2").isPositive();
            } else {
                assertThat(single.metrics().get(0).gradClipped()).as("clipping is exercised").isTrue();
            }
        }
    }

    /** An update with fewer prompts than ranks: ranks 2 and 3 have none and take part with zero gradients. */
    @Test
    void ranksWithoutPromptsTakePartWithZeroGradients() throws Exception {
        GrpoConfig cfg = GrpoConfig.builder().groupSize(3).promptsPerStep(4).microBatchSize(4).learningRate(0.02)
                .schedule(LearningRateSchedule.constant()).rewards(rewards()).build();
        List<GrpoPrompt> two = PROMPTS.subList(0, 2);
        List<long[]> completions = completions().get(0).subList(0, 6);
        RankBody body = c -> {
            try (NDManager m = NDManager.newBaseManager(device());
                    DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                    LoraModel lora = LoraModel.apply(model, loraConfig(), m);
                    GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(ExampleEncoder.builder(tokenizer).build())
                            .config(cfg).collective(c).build()) {
                trainer.start(1);
                List<GrpoStepMetrics> metrics = trainer.stepWithCompletions(two, completions);
                return new Run(snapshot(lora), metrics);
            }
        };
        Run single = InProcessCollective.run(1, body::run).get(0);
        List<Run> ranks = InProcessCollective.run(4, body::run);
        for (Run r : ranks) {
            assertClose(r.params(), single.params());
            assertThat(r.metrics().get(0).completions()).isEqualTo(6);
            assertThat(r.metrics().get(0).reward().mean()).isEqualTo(single.metrics().get(0).reward().mean());
        }
    }

    private interface RankBody {
        Run run(Collective c) throws Exception;
    }

    private static List<Example> arithmetic() {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            ex.add(Example.of("q" + i, i + "+" + (i + 1) + "=?", "#### " + (2 * i + 1)));
        }
        return ex;
    }

    private static GrpoConfig sampled() {
        return GrpoConfig.builder().groupSize(2).promptsPerStep(2).gradientAccumulation(2).microBatchSize(3)
                .maxCompletionTokens(6).maxPromptTokens(40).learningRate(0.02).rewards(rewards()).completionLogEvery(1)
                .seed(3).stopAtEos(true).build();
    }

    private record Sampled(Map<String, float[]> params, GrpoReport report, long rollouts, List<StepMetrics> reported) {}

    private Sampled sample(Collective c, Path checkpoints, Path log, TrainingListener... extra) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, loraConfig(), m)) {
            List<StepMetrics> reported = new ArrayList<>();
            GrpoTrainer.Builder b = GrpoTrainer.builder(lora).encoder(ExampleEncoder.builder(tokenizer).build())
                    .config(sampled()).masks(masks(lora, m)).collective(c).completionLog(log)
                    .listener(new TrainingListener() {
                        @Override
                        public void onStep(StepMetrics s) {
                            reported.add(s);
                        }
                    });
            for (TrainingListener t : extra) {
                b.listener(t);
            }
            if (checkpoints != null) {
                b.checkpoints(checkpoints, 1);
            }
            try (GrpoTrainer trainer = b.build()) {
                GrpoReport r = trainer.train(arithmetic());
                return new Sampled(snapshot(lora), r, trainer.rolloutCount(), reported);
            }
        }
    }

    /**
     * Sampled training: the 2-rank run samples the 1-rank run's completions (each completion takes its row of
     * the whole rollout's random draws) and ends with its parameters; the replicas stay bit-identical.
     */
    @Test
    void sampledTrainingOnTwoRanksEqualsOneProcess(@TempDir Path tmp) throws Exception {
        Sampled single = InProcessCollective.run(1, c -> sample(c, null, null)).get(0);
        Path log = tmp.resolve("completions.jsonl");
        List<Sampled> ranks = InProcessCollective.run(2, c -> sample(c, null, log));
        assertClose(ranks.get(0).params(), single.params());
        for (int i = 0; i < 2; i++) {
            GrpoStepMetrics e = single.report().steps().get(i);
            GrpoStepMetrics a = ranks.get(0).report().steps().get(i);
            assertThat(a.completionTokens()).as("the same completions").isEqualTo(e.completionTokens());
            assertThat(a.reward().mean()).isEqualTo(e.reward().mean());
            assertThat(a.rewardsByFunction()).isEqualTo(e.rewardsByFunction());
            assertThat(a.loss()).isCloseTo(e.loss(), within((1e-5 * Math.abs(e.loss()) + 1e-7) * slack()));
        }
        for (String k : ranks.get(0).params().keySet()) {
            assertThat(ranks.get(1).params().get(k)).as("replica %s", k).containsExactly(ranks.get(0).params().get(k));
        }
        for (Sampled s : ranks) {
            assertThat(s.rollouts()).isEqualTo(3); // 2 + 1 rollouts of 2 prompts, counted globally
            assertThat(s.report().steps()).hasSize(2);
            assertThat(s.report().steps().get(0).completions()).isEqualTo(8);
            assertThat(s.report().steps().get(1).completions()).as("the prompts that are left").isEqualTo(4);
        }
        assertThat(ranks.get(0).reported()).hasSize(2);
        assertThat(ranks.get(1).reported()).as("only the leader reports").isEmpty();
        assertThat(Files.readAllLines(log)).as("the leader's share of the 12 completions").hasSize(6);
    }

    @Test
    void aCheckpointOfTwoRanksResumesOnOne(@TempDir Path tmp) throws Exception {
        Path ckpt = tmp.resolve("grpo");
        TrainingListener crash = new TrainingListener() {
            @Override
            public void onStep(StepMetrics s) {
                if (s.step() == 1) {
                    throw new IllegalStateException("simulated crash after step 1");
                }
            }
        };
        assertThatThrownBy(() -> InProcessCollective.run(2, c -> sample(c, ckpt, null, crash)))
                .hasMessageContaining("simulated crash");
        Sampled resumed = InProcessCollective.run(1, c -> sample(c, ckpt, null)).get(0);
        assertThat(resumed.report().stage().resumedFromStep()).isEqualTo(1);
        assertThat(resumed.report().stage().steps()).isEqualTo(2);
        assertThat(resumed.rollouts()).isEqualTo(3);
    }

    @Test
    void aWorldSizeThatDoesNotDivideThePromptsPerRolloutIsRefused() throws Exception {
        Collective two = new Collective() {
            @Override
            public int rank() {
                return 0;
            }

            @Override
            public int worldSize() {
                return 2;
            }

            @Override
            public void allReduceSum(NDList arrays) {}

            @Override
            public void broadcast(NDList arrays, int root) {}

            @Override
            public void barrier() {}

            @Override
            public void close() {}
        };
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, loraConfig(), m)) {
            GrpoConfig cfg = GrpoConfig.builder().groupSize(2).promptsPerStep(3).rewards(rewards()).build();
            assertThatThrownBy(() -> GrpoTrainer.builder(lora).config(cfg).collective(two).build())
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("world size 2")
                    .hasMessageContaining("promptsPerStep").hasMessageContaining(" 3");
        }
    }
}
