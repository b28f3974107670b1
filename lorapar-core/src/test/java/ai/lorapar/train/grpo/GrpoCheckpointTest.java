package ai.lorapar.train.grpo;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.eval.EvalFixtures;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.CheckpointMismatchException;
import ai.lorapar.train.MetricsJsonl;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainerState;
import ai.lorapar.train.TrainingDivergedException;
import ai.lorapar.train.TrainingListener;
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

/**
 * GRPO's checkpoints on the CPU: a run interrupted mid-epoch and resumed ends with bit for bit the weights
 * (and step losses) of an uninterrupted one, LoRA dropout on; a completed stage is restored, not redone;
 * another run's checkpoint is refused; the NaN guard stops a step before it changes anything; listeners
 * and the metrics JSONL get GRPO's figures.
 */
class GrpoCheckpointTest {
    private static TextTokenizer tokenizer;

    @TempDir
    Path tmp;

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

    /**
     * The weights of a resumed run against an uninterrupted one's: bit for bit on the CPU; on CUDA, whose
     * kernels may reduce in another order from run to run, within 1e-5.
     */
    private void assertSameWeights(Map<String, int[]> actual, Map<String, int[]> expected) {
        if (!device().isGpu()) {
            assertThat(actual).usingRecursiveComparison().isEqualTo(expected);
            return;
        }
        assertThat(actual.keySet()).isEqualTo(expected.keySet());
        expected.forEach((name, bits) -> {
            int[] got = actual.get(name);
            for (int i = 0; i < bits.length; i++) {
                assertThat(Float.intBitsToFloat(got[i])).as("%s[%d]", name, i)
                        .isCloseTo(Float.intBitsToFloat(bits[i]), org.assertj.core.data.Offset.offset(1e-5f));
            }
        });
    }

    private void assertSameLoss(double actual, double expected) {
        assertThat(actual).isCloseTo(expected, org.assertj.core.data.Offset.offset(device().isGpu() ? 1e-4 : 0.0));
    }

    /** Counts 'a'; a bonus per completion token. */
    static RewardSet rewards() {
        return RewardSet.builder()
                .add(RewardFunction.named("as", (e, t, ids) -> OptionalDouble.of(t.chars().filter(c -> c == 'a').count())))
                .add(RewardFunction.named("length", (e, t, ids) -> OptionalDouble.of(0.1 * ids.length)), 0.5)
                .build();
    }

    static List<Example> prompts(int n) {
        List<Example> ex = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ex.add(Example.of("q" + i, i + "+" + (i + 1) + "=?", "#### " + (2 * i + 1)));
        }
        return ex;
    }

    /** 3 prompts, 2 per update: 2 updates per epoch (the last of 1 prompt), 2 epochs = 4 steps. */
    private static GrpoConfig config() {
        return GrpoConfig.builder().groupSize(2).promptsPerStep(2).microBatchSize(3).maxCompletionTokens(5)
                .maxPromptTokens(32).learningRate(0.02).epochs(2).rewards(rewards()).systemPrompt(null)
                .completionLogEvery(0).loggingSteps(2).seed(9).build();
    }

    private static LoraConfig lora() {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(2).alpha(4).dropout(0.2).init(LoraInit.GAUSSIAN)
                .gaussianStd(0.2).seed(5).build();
    }

    private static Map<String, NDArray> masks(LoraModel lora, NDManager m) {
        Random rnd = new Random(4);
        Map<String, NDArray> masks = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> {
            boolean[] b = new boolean[(int) p.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = rnd.nextInt(3) > 0;
            }
            masks.put(name, m.create(b, p.getShape()));
        });
        return masks;
    }

    private static Map<String, int[]> bits(LoraModel lora) {
        Map<String, int[]> out = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> {
            float[] f = p.toFloatArray();
            int[] b = new int[f.length];
            for (int i = 0; i < f.length; i++) {
                b[i] = Float.floatToRawIntBits(f[i]);
            }
            out.put(name, b);
        });
        return out;
    }

    /** Records what a trainer reports; throws after step {@code stopAfter} (0: never), like a crash. */
    static final class Recorder implements TrainingListener {
        final List<StageStart> starts = new ArrayList<>();
        final List<StepMetrics> steps = new ArrayList<>();
        final List<Long> checkpoints = new ArrayList<>();
        final List<StageReport> ends = new ArrayList<>();
        final long stopAfter;

        Recorder(long stopAfter) {
            this.stopAfter = stopAfter;
        }

        @Override
        public void onStageStart(StageStart s) {
            starts.add(s);
        }

        @Override
        public void onStep(StepMetrics m) {
            steps.add(m);
            if (m.step() == stopAfter) {
                throw new IllegalStateException("simulated crash after step " + stopAfter);
            }
        }

        @Override
        public void onCheckpoint(String stage, long step, Path folder) {
            checkpoints.add(step);
        }

        @Override
        public void onStageEnd(StageReport r) {
            ends.add(r);
        }
    }

    private interface Run {
        void accept(GrpoTrainer.Builder b, LoraModel lora) throws Exception;
    }

    /** The "step" of every line of a completion log, in file order. */
    private static List<Long> completionSteps(Path log) throws java.io.IOException {
        return Files.readAllLines(log).stream().map(l -> JsonParser.parseString(l).getAsJsonObject().get("step")
                .getAsLong()).toList();
    }

    /** A fresh model, adapters and masks (the same every time), a trainer configured by {@code setup}. */
    private void withTrainer(GrpoConfig cfg, Run run) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device());
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                LoraModel lora = LoraModel.apply(model, lora(), m)) {
            GrpoTrainer.Builder b = GrpoTrainer.builder(lora).encoder(ExampleEncoder.builder(tokenizer).build())
                    .config(cfg).masks(masks(lora, m));
            run.accept(b, lora);
        }
    }

    @Test
    void anInterruptedRunResumesBitForBitAndAFinishedStageIsNotRedone() throws Exception {
        List<Example> data = prompts(3);
        GrpoConfig cfg = config();
        assertThat(cfg.totalSteps(3)).isEqualTo(4);

        // uninterrupted, no checkpoints; reports every 2 steps with GRPO's figures, also into the metrics JSONL
        List<GrpoStepMetrics> uninterrupted = new ArrayList<>();
        Map<String, int[]> expected = new LinkedHashMap<>();
        Path metricsFile = tmp.resolve("metrics.jsonl");
        withTrainer(cfg, (b, lora) -> {
            Recorder rec = new Recorder(0);
            try (MetricsJsonl metrics = MetricsJsonl.open(metricsFile);
                    GrpoTrainer t = b.listener(rec).listener(metrics).listener(uninterrupted::add).build()) {
                GrpoReport r = t.train(data);
                assertThat(r.stage().steps()).isEqualTo(4);
                assertThat(r.stage().stage()).isEqualTo("grpo");
                assertThat(r.stage().examples()).isEqualTo(3);
                assertThat(t.rolloutCount()).isEqualTo(4);
            }
            expected.putAll(bits(lora));
            assertThat(rec.starts).singleElement().satisfies(s -> {
                assertThat(s.totalSteps()).isEqualTo(4);
                assertThat(s.startStep()).isZero();
                assertThat(s.activeElements()).isLessThan(s.trainableElements()).isPositive();
            });
            assertThat(rec.steps).extracting(StepMetrics::step).containsExactly(2L, 4L);
            StepMetrics m = rec.steps.get(0);
            assertThat(m.stage()).isEqualTo("grpo");
            assertThat(m.loss()).isEqualTo((uninterrupted.get(0).loss() + uninterrupted.get(1).loss()) / 2);
            assertThat(m.details().keySet()).contains("reward", "reward_std", "rewards/as/mean", "rewards/length/std",
                    "kl", "clip_ratio", "completion_length", "completion_tokens_per_second", "seconds_rollout");
            assertThat(m.detail("completion_length")).isEqualTo(
                    (uninterrupted.get(0).completionLength() + uninterrupted.get(1).completionLength()) / 2);
            assertThat(m.detail("reward")).isEqualTo(
                    (uninterrupted.get(0).reward().mean() + uninterrupted.get(1).reward().mean()) / 2);
            assertThat(m.answerTokens()).isEqualTo(uninterrupted.get(0).completionTokens()
                    + uninterrupted.get(1).completionTokens());
            assertThat(m.tokens()).isGreaterThan(m.answerTokens());
            assertThat(m.tokensPerSecond()).isPositive();
            assertThat(rec.ends).singleElement().satisfies(e -> assertThat(e.finalLoss())
                    .isEqualTo(uninterrupted.get(3).loss()));
        });
        List<String> lines = Files.readAllLines(metricsFile);
        JsonObject step = JsonParser.parseString(lines.get(1)).getAsJsonObject();
        assertThat(step.get("event").getAsString()).isEqualTo("step");
        assertThat(step.has("rewards/as/mean")).isTrue();
        assertThat(step.has("clip_ratio")).isTrue();
        assertThat(step.get("learning_rate").getAsDouble()).isPositive();

        // checkpoints every step; a crash inside step 4, before its checkpoint (the latest is after step 3, mid-epoch 2);
        // completions logged every step, so the crashed run has logged step 4 already
        Path ckpt = tmp.resolve("ckpt");
        Path completions = tmp.resolve("completions.jsonl");
        GrpoConfig logged = cfg.toBuilder().completionLogEvery(1).build();
        withTrainer(logged, (b, lora) -> {
            Recorder rec = new Recorder(0);
            GrpoListener crash = m -> {
                if (m.step() == 4) {
                    throw new IllegalStateException("simulated crash in step 4");
                }
            };
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).completionLog(completions).listener(rec).listener(crash).build()) {
                assertThatThrownBy(() -> t.train(data)).hasMessageContaining("simulated crash");
            }
            assertThat(rec.checkpoints).containsExactly(1L, 2L, 3L);
        });
        TrainerState at3 = TrainerState.read(ckpt.resolve("step-000003"));
        assertThat(at3.epoch()).isEqualTo(1);
        assertThat(at3.microBatchInEpoch()).as("prompts of epoch 2 done").isEqualTo(2);
        assertThat(at3.extra().get("rollouts").getAsLong()).isEqualTo(3);
        assertThat(at3.completed()).isFalse();

        List<Long> beforeResume = completionSteps(completions);
        assertThat(beforeResume).as("the crashed run logged step 4").contains(4L);

        // resumed: step 4 again, the same weights bit for bit; the completion log has each step once
        List<GrpoStepMetrics> resumed = new ArrayList<>();
        withTrainer(logged, (b, lora) -> {
            Recorder rec = new Recorder(0);
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).completionLog(completions).listener(rec).listener(resumed::add)
                    .build()) {
                GrpoReport r = t.train(data);
                assertThat(r.stage().resumedFromStep()).isEqualTo(3);
                assertThat(r.stage().steps()).isEqualTo(4);
                assertThat(t.rolloutCount()).isEqualTo(4);
            }
            assertThat(rec.starts.get(0).startStep()).isEqualTo(3);
            assertThat(rec.checkpoints).containsExactly(4L);
            assertSameWeights(bits(lora), expected);
        });
        assertThat(resumed).extracting(GrpoStepMetrics::step).containsExactly(4L);
        // step 4's lines of the crashed run were dropped on resume and logged again (the same completions)
        assertThat(completionSteps(completions)).isEqualTo(beforeResume).isSorted().containsSequence(3L, 4L);
        assertSameLoss(resumed.get(0).loss(), uninterrupted.get(3).loss());
        assertThat(resumed.get(0).reward()).as("the same completions").isEqualTo(uninterrupted.get(3).reward());
        assertThat(TrainerState.read(ckpt.resolve("step-000004")).completed()).isTrue();

        // run again: the finished stage is restored, nothing is trained
        withTrainer(cfg, (b, lora) -> {
            Recorder rec = new Recorder(0);
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).listener(rec).build()) {
                GrpoReport r = t.train(data);
                assertThat(r.steps()).isEmpty();
                assertThat(r.stage().resumedFromStep()).isEqualTo(4);
                assertThat(t.rolloutCount()).as("nothing sampled").isEqualTo(4);
            }
            assertThat(rec.steps).isEmpty();
            assertSameWeights(bits(lora), expected);
        });
    }

    @Test
    void anotherRunsCheckpointIsRefused() throws Exception {
        GrpoConfig cfg = config().toBuilder().maxSteps(1).build();
        Path ckpt = tmp.resolve("ckpt");
        withTrainer(cfg, (b, lora) -> {
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).build()) {
                t.train(prompts(2));
            }
        });
        withTrainer(cfg.toBuilder().learningRate(0.01).build(), (b, lora) -> {
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).build()) {
                assertThatThrownBy(() -> t.train(prompts(2))).isInstanceOf(CheckpointMismatchException.class)
                        .hasMessageContaining("lr is 0.02 in the checkpoint, 0.01 in this run");
            }
        });
        withTrainer(cfg, (b, lora) -> {
            try (GrpoTrainer t = b.checkpoints(ckpt, 1).build()) {
                assertThatThrownBy(() -> t.train(prompts(3))).isInstanceOf(CheckpointMismatchException.class)
                        .hasMessageContaining("training data");
            }
        });
        withTrainer(cfg, (b, lora) -> {
            try (GrpoTrainer t = b.masks(null).checkpoints(ckpt, 1).build()) {
                assertThatThrownBy(() -> t.train(prompts(2))).isInstanceOf(CheckpointMismatchException.class)
                        .hasMessageContaining("stage mask");
            }
        });
    }

    @Test
    void longPromptsAreCountedAndKeepTheirLastTokens() throws Exception {
        GrpoConfig cfg = config().toBuilder().maxPromptTokens(4).maxSteps(1).build();
        List<Example> data = List.of(Example.of("short", "1+2", "#### 3"), Example.of("long", "12+345=?", "#### 357"));
        withTrainer(cfg, (b, lora) -> {
            try (GrpoTrainer t = b.build()) {
                GrpoReport r = t.train(data);
                assertThat(r.stage().truncatedExamples()).as("bos + 8 bytes > 4").isEqualTo(1);
                assertThat(r.stage().examples()).isEqualTo(2);
                // prompt tokens counted after truncation: (bos + 3) + 4, G = 2 each
                assertThat(r.stage().tokens() - r.stage().answerTokens()).isEqualTo(2 * (4 + 4));
            }
        });
    }

    @Test
    void aNonFiniteLossStopsTheStepBeforeAnythingChanges() throws Exception {
        // one completion's reward overflows float: its group's advantages, and so the loss, are NaN
        RewardSet huge = RewardSet.builder().add(RewardFunction.named("huge", (e, t, ids) -> OptionalDouble.of(
                e.id().equals("q1") ? 1e39 : 1.0))).build();
        GrpoConfig cfg = config().toBuilder().rewards(huge).build();
        withTrainer(cfg, (b, lora) -> {
            Map<String, int[]> before = bits(lora);
            try (GrpoTrainer t = b.build()) {
                assertThatThrownBy(() -> t.train(prompts(2))).isInstanceOfSatisfying(TrainingDivergedException.class,
                        e -> {
                            assertThat(e.stage()).isEqualTo("grpo");
                            assertThat(e.step()).isEqualTo(1);
                            assertThat(e).hasMessageContaining("the loss is NaN");
                        });
                assertThat(t.optimizer().stepCount()).isZero();
                assertThat(t.stepCount()).isZero();
            }
            assertThat(bits(lora)).usingRecursiveComparison().isEqualTo(before);
            for (NDArray p : lora.parameters().values()) {
                assertThat(p.getGradient().abs().sum().getFloat()).as("gradients zeroed").isZero();
            }
        });
    }
}
