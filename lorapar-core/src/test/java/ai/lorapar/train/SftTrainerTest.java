package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The SFT loop's behaviour on the fixture LLaMA (CPU, fp32): accumulation equivalence, frozen elements
 * over many steps, the NaN guard, exact resume, refused checkpoints, listeners and evaluation.
 */
class SftTrainerTest {
    private static TextTokenizer tokenizer;
    private NDManager manager;
    private DecoderModel model;
    @TempDir
    Path tmp;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = SftFixtures.tokenizer();
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    @BeforeEach
    void open() throws Exception {
        manager = NDManager.newBaseManager(Device.cpu());
        model = SftFixtures.load("llama", manager, DataType.FLOAT32);
    }

    @AfterEach
    void close() {
        manager.close();
    }

    private static ExampleEncoder enc() {
        return SftFixtures.encoder(tokenizer);
    }

    private static LoraConfig lora(double dropout) {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8).dropout(dropout)
                .init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(3).build();
    }

    /** Records every step report. */
    static final class Steps implements TrainingListener {
        final List<StepMetrics> steps = new ArrayList<>();
        final List<StageStart> starts = new ArrayList<>();
        final List<Long> checkpoints = new ArrayList<>();

        @Override
        public void onStageStart(StageStart s) {
            starts.add(s);
        }

        @Override
        public void onStep(StepMetrics m) {
            steps.add(m);
        }

        @Override
        public void onCheckpoint(String stage, long step, Path folder) {
            checkpoints.add(step);
        }
    }

    /** Stops the run after a step, like a crash (the listener runs after the step's checkpoint). */
    static final class Crash extends RuntimeException {
        Crash(long step) {
            super("simulated crash after step " + step);
        }
    }

    static TrainingListener crashAfter(long step) {
        return new TrainingListener() {
            @Override
            public void onStep(StepMetrics m) {
                if (m.step() == step) {
                    throw new Crash(step);
                }
            }
        };
    }

    private static void assertBitsEqual(Map<String, float[]> a, Map<String, float[]> b) {
        assertThat(a.keySet()).isEqualTo(b.keySet());
        for (String k : a.keySet()) {
            float[] x = a.get(k);
            float[] y = b.get(k);
            for (int i = 0; i < x.length; i++) {
                if (Float.floatToRawIntBits(x[i]) != Float.floatToRawIntBits(y[i])) {
                    throw new AssertionError(k + "[" + i + "]: " + x[i] + " != " + y[i]);
                }
            }
        }
    }

    // ---------------------------------------------------------------- accumulation

    @Test
    void fourTimesTwoEqualsEightTimesOne() throws Exception {
        List<Example> data = SftFixtures.examples(16, 21);
        SftConfig.Builder base = SftConfig.builder().learningRate(5e-3).schedule(LearningRateSchedule.linear(0))
                .weightDecay(0.01).seed(9).loggingSteps(1);
        Map<String, float[]> split;
        List<Double> splitLosses = new ArrayList<>();
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            Steps s = new Steps();
            SftTrainer.builder(l, enc()).config(base.microBatchSize(4).gradientAccumulation(2).build()).listener(s)
                    .build().train(data);
            s.steps.forEach(m -> splitLosses.add(m.loss()));
            split = SftFixtures.snapshot(l.parameters());
        }
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            Steps s = new Steps();
            SftTrainer.builder(l, enc()).config(base.microBatchSize(8).gradientAccumulation(1).build()).listener(s)
                    .build().train(data);
            assertThat(s.steps).hasSize(2);
            for (int i = 0; i < 2; i++) {
                assertThat(s.steps.get(i).loss()).isCloseTo(splitLosses.get(i), within(1e-5 * splitLosses.get(i)));
            }
            Map<String, float[]> whole = SftFixtures.snapshot(l.parameters());
            for (String k : whole.keySet()) {
                for (int i = 0; i < whole.get(k).length; i++) {
                    float a = whole.get(k)[i];
                    float b = split.get(k)[i];
                    assertThat(a).as("%s[%d]", k, i).isCloseTo(b, within((float) (1e-5 * Math.abs(b) + 1e-3 * 5e-3)));
                }
            }
        }
    }

    // ---------------------------------------------------------------- masks

    @Test
    void frozenElementsStayBitIdenticalOverManyStepsWithWeightDecay() throws Exception {
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            Map<String, float[]> before = SftFixtures.snapshot(l.parameters());
            Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.3, 17, manager);
            SftConfig cfg = SftConfig.builder().learningRate(1e-2).weightDecay(0.1).microBatchSize(2)
                    .gradientAccumulation(1).maxSteps(20).seed(1).build();
            StageReport r = SftTrainer.builder(l, enc()).masks(masks).config(cfg).build()
                    .train(SftFixtures.examples(12, 2));
            assertThat(r.steps()).isEqualTo(20);
            Map<String, float[]> after = SftFixtures.snapshot(l.parameters());
            long frozen = 0;
            long moved = 0;
            long active = 0;
            for (String k : after.keySet()) {
                boolean[] m = masks.get(k).toBooleanArray();
                for (int i = 0; i < m.length; i++) {
                    if (m[i]) {
                        active++;
                        if (after.get(k)[i] != before.get(k)[i]) {
                            moved++;
                        }
                    } else {
                        frozen++;
                        assertThat(Float.floatToRawIntBits(after.get(k)[i])).as("frozen %s[%d]", k, i)
                                .isEqualTo(Float.floatToRawIntBits(before.get(k)[i]));
                    }
                }
            }
            assertThat(frozen).isPositive();
            assertThat(moved).as("active elements that moved").isGreaterThan(active * 9 / 10);
        }
    }

    @Test
    void masksMustCoverTheParametersWithTheirShapes() throws Exception {
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            Map<String, NDArray> masks = new HashMap<>(SftFixtures.randomMasks(l.parameters(), 0.5, 1, manager));
            String first = masks.keySet().iterator().next();
            masks.remove(first);
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).masks(masks).build())
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no mask for parameter");
            masks.put(first, manager.ones(new ai.djl.ndarray.types.Shape(2, 2), DataType.BOOLEAN));
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).masks(masks).build())
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(first).hasMessageContaining("shape");
        }
    }

    // ---------------------------------------------------------------- NaN guard

    @Test
    void aNanLossStopsTheRunNamingTheStepAndChangesNoParameter() throws Exception {
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.5, 4, manager);
            Map<String, float[]> afterStep2 = new LinkedHashMap<>();
            TrainingListener inject = new TrainingListener() {
                @Override
                public void onStep(StepMetrics m) {
                    if (m.step() == 2) {
                        afterStep2.putAll(SftFixtures.snapshot(l.parameters()));
                        NDArray w = model.linear("model.layers.1.mlp.down_proj").weight();
                        w.set(new NDIndex("0, 0"), Float.NaN); // the data or a bad weight turns the loss NaN
                    }
                }
            };
            SftConfig cfg = SftConfig.builder().learningRate(1e-2).weightDecay(0.1).microBatchSize(2)
                    .gradientAccumulation(2).loggingSteps(1).epochs(3).build();
            Path ckpt = tmp.resolve("nan");
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).masks(masks).config(cfg).listener(inject)
                    .checkpoints(ckpt, 1).build().train(SftFixtures.examples(8, 3)))
                    .isInstanceOf(TrainingDivergedException.class)
                    .hasMessageContaining("sft step 3").hasMessageContaining("loss is NaN")
                    .satisfies(e -> assertThat(((TrainingDivergedException) e).step()).isEqualTo(3));
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), afterStep2);
            assertThat(new CheckpointStore(ckpt, 3).latest()).get().isEqualTo(ckpt.resolve("step-000002"));
            for (NDArray p : l.parameters().values()) {
                assertThat(p.getGradient().abs().sum().getFloat()).as("gradients left zeroed").isEqualTo(0f);
            }
        }
    }

    @Test
    void aNanGradientWithAFiniteLossIsCaughtToo() throws Exception {
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            Map<String, float[]> before = SftFixtures.snapshot(l.parameters());
            // o_proj carries no LoRA: an adapter whose output is exactly 0 but whose backward is 0·∞ = NaN
            model.linear("model.layers.1.self_attn.o_proj").setAdapter((layer, x, training) -> x.mul(0f).sqrt().mul(0f));
            try {
                assertThatThrownBy(() -> SftTrainer.builder(l, enc())
                        .config(SftConfig.builder().microBatchSize(4).gradientAccumulation(1).build()).build()
                        .train(SftFixtures.examples(8, 3)))
                        .isInstanceOf(TrainingDivergedException.class)
                        .hasMessageContaining("sft step 1").hasMessageContaining("the gradient of 'model.layers.");
            } finally {
                model.linear("model.layers.1.self_attn.o_proj").setAdapter(null);
            }
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), before);
        }
    }

    // ---------------------------------------------------------------- resume

    private static SftConfig resumeConfig() {
        return SftConfig.builder().learningRate(5e-3).schedule(LearningRateSchedule.cosine(0.1)).weightDecay(0.1)
                .microBatchSize(2).gradientAccumulation(2).epochs(2).loggingSteps(1).seed(5).build();
    }

    @Test
    void aResumedRunEqualsAnUninterruptedOneBitForBit() throws Exception {
        List<Example> data = SftFixtures.examples(10, 8); // 5 micro-batches per epoch: steps of 2, 2, 1
        Map<String, float[]> uninterrupted;
        List<Double> losses = new ArrayList<>();
        Map<String, boolean[]> maskValues = new LinkedHashMap<>();
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.6, 2, manager);
            masks.forEach((k, v) -> maskValues.put(k, v.toBooleanArray()));
            Steps s = new Steps();
            StageReport r = SftTrainer.builder(l, enc()).masks(masks).config(resumeConfig()).listener(s).build()
                    .train(data);
            assertThat(r.steps()).isEqualTo(6);
            s.steps.forEach(m -> losses.add(m.loss()));
            uninterrupted = SftFixtures.snapshot(l.parameters());
        }
        Path ckpt = tmp.resolve("ckpt");
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).masks(masks(maskValues, l)).config(resumeConfig())
                    .checkpoints(ckpt, 2).listener(crashAfter(3)).build().train(data)).isInstanceOf(Crash.class);
        }
        assertThat(new CheckpointStore(ckpt, 3).latest()).get().isEqualTo(ckpt.resolve("step-000002"));
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            Steps s = new Steps();
            StageReport r = SftTrainer.builder(l, enc()).masks(masks(maskValues, l)).config(resumeConfig())
                    .checkpoints(ckpt, 2).listener(s).build().train(data);
            assertThat(r.resumedFromStep()).isEqualTo(2);
            assertThat(r.steps()).isEqualTo(6);
            assertThat(s.starts.get(0).startStep()).isEqualTo(2);
            assertThat(s.steps).extracting(StepMetrics::step).containsExactly(3L, 4L, 5L, 6L);
            for (int i = 0; i < 4; i++) {
                assertThat(s.steps.get(i).loss()).as("loss of step %d", i + 3).isEqualTo(losses.get(i + 2));
            }
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), uninterrupted);
            assertThat(s.checkpoints).containsExactly(4L, 6L);
        }
        // the latest checkpoint is the completed stage: another run restores it and trains nothing
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager)) {
            Steps s = new Steps();
            StageReport r = SftTrainer.builder(l, enc()).masks(masks(maskValues, l)).config(resumeConfig())
                    .checkpoints(ckpt, 2).listener(s).build().train(data);
            assertThat(r.resumedFromStep()).isEqualTo(6);
            assertThat(s.steps).isEmpty();
            assertThat(r.finalLoss()).isEqualTo(losses.get(5));
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), uninterrupted);
        }
        try (var dirs = Files.list(ckpt)) {
            assertThat(dirs.map(p -> p.getFileName().toString()).sorted().toList())
                    .containsExactly("latest", "step-000002", "step-000004", "step-000006");
        }
        Path last = ckpt.resolve("step-000006");
        assertThat(last.resolve("adapter/adapter_config.json")).exists();
        assertThat(last.resolve("adapter/adapter_model.safetensors")).exists();
        assertThat(last.resolve("lora_state.safetensors")).exists();
        assertThat(last.resolve("optimizer.safetensors")).exists();
        assertThat(last.resolve("masks.safetensors")).exists();
        JsonObject state = JsonParser.parseString(Files.readString(last.resolve("trainer_state.json"))).getAsJsonObject();
        assertThat(state.get("completed").getAsBoolean()).isTrue();
        assertThat(state.get("stage").getAsString()).isEqualTo("sft");
    }

    @Test
    void aPissaRunResumesExactlyToo() throws Exception {
        LoraConfig pissa = LoraConfig.builder().targets(LoraTargets.QKV).rank(2).alpha(4).dropout(0.05)
                .init(LoraInit.PISSA).svd(2, 2).seed(6).build();
        List<Example> data = SftFixtures.examples(8, 4);
        SftConfig cfg = SftConfig.builder().learningRate(5e-3).microBatchSize(2).gradientAccumulation(1).maxSteps(4)
                .loggingSteps(1).build();
        Map<String, float[]> uninterrupted;
        float[] residualW;
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel fresh = SftFixtures.load("llama", m,
                DataType.FLOAT32); LoraModel l = LoraModel.apply(fresh, pissa, m)) {
            SftTrainer.builder(l, enc()).config(cfg).build().train(data);
            uninterrupted = SftFixtures.snapshot(l.parameters());
            residualW = fresh.linear("model.layers.0.self_attn.q_proj").weight().toFloatArray();
        }
        Path ckpt = tmp.resolve("pissa");
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel fresh = SftFixtures.load("llama", m,
                DataType.FLOAT32); LoraModel l = LoraModel.apply(fresh, pissa, m)) {
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).config(cfg).checkpoints(ckpt, 2)
                    .listener(crashAfter(3)).build().train(data)).isInstanceOf(Crash.class);
        }
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel fresh = SftFixtures.load("llama", m,
                DataType.FLOAT32); LoraModel l = LoraModel.apply(fresh, pissa, m)) {
            StageReport r = SftTrainer.builder(l, enc()).config(cfg).checkpoints(ckpt, 2).build().train(data);
            assertThat(r.resumedFromStep()).isEqualTo(2);
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), uninterrupted);
            float[] w = fresh.linear("model.layers.0.self_attn.q_proj").weight().toFloatArray();
            assertBitsEqual(Map.of("W_res", w), Map.of("W_res", residualW));
        }
    }

    private Map<String, NDArray> masks(Map<String, boolean[]> values, LoraModel l) {
        Map<String, NDArray> m = new LinkedHashMap<>();
        values.forEach((k, v) -> m.put(k, manager.create(v, l.parameters().get(k).getShape())));
        return m;
    }

    // ---------------------------------------------------------------- refused checkpoints

    @Test
    void aCheckpointOfAnotherRunIsRefusedNamingWhatDiffers() throws Exception {
        List<Example> data = SftFixtures.examples(6, 1);
        SftConfig cfg = SftConfig.builder().learningRate(5e-3).microBatchSize(2).gradientAccumulation(1).maxSteps(2)
                .build();
        Path ckpt = tmp.resolve("run");
        Map<String, boolean[]> maskValues = new LinkedHashMap<>();
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.5, 1, manager);
            masks.forEach((k, v) -> maskValues.put(k, v.toBooleanArray()));
            SftTrainer.builder(l, enc()).masks(masks).config(cfg).checkpoints(ckpt, 1).build().train(data);
        }
        // the same run resumes (a completed stage: nothing to do)
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            assertThat(SftTrainer.builder(l, enc()).masks(masks(maskValues, l)).config(cfg).checkpoints(ckpt, 1).build()
                    .train(data).resumedFromStep()).isEqualTo(2);
        }
        refused(lora(0), maskValues, cfg.toBuilder().learningRate(1e-3).build(), data, ckpt,
                "the training config differs", "lr is 0.005 in the checkpoint, 0.001 in this run");
        refused(lora(0).toBuilder().alpha(16).build(), maskValues, cfg, data, ckpt,
                "the trained parameters (LoRA config) differs", "alpha is 8.0 in the checkpoint, 16.0 in this run");
        Map<String, boolean[]> otherMask = new LinkedHashMap<>(maskValues);
        String first = otherMask.keySet().iterator().next();
        boolean[] flipped = otherMask.get(first).clone();
        flipped[0] = !flipped[0];
        otherMask.put(first, flipped);
        refused(lora(0), otherMask, cfg, data, ckpt, "the stage mask differs", "sha256:");
        refused(lora(0), maskValues, cfg, data.subList(0, 5), ckpt, "the training data differs", "5 examples");
        NDArray norm = model.weights().get("model.norm.weight");
        norm.muli(2f);
        refused(lora(0), maskValues, cfg, data, ckpt, "the model's weights differ", "sum w^2");
        norm.divi(2f);
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel other = SftFixtures.load("mistral", m, DataType.FLOAT32);
                LoraModel l = LoraModel.apply(other, lora(0), m)) {
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).config(cfg).checkpoints(ckpt, 1).build().train(data))
                    .isInstanceOf(CheckpointMismatchException.class).hasMessageContaining("the model differs")
                    .hasMessageContaining("mistral").hasMessageContaining("the stage mask differs");
        }
    }

    private void refused(LoraConfig loraConfig, Map<String, boolean[]> maskValues, SftConfig cfg, List<Example> data,
            Path ckpt, String what, String detail) throws Exception {
        try (LoraModel l = LoraModel.apply(model, loraConfig, manager)) {
            Map<String, float[]> before = SftFixtures.snapshot(l.parameters());
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).masks(masks(maskValues, l)).config(cfg)
                    .checkpoints(ckpt, 1).build().train(data))
                    .isInstanceOf(CheckpointMismatchException.class).hasMessageContaining(what)
                    .hasMessageContaining(detail).hasMessageContaining(ckpt.resolve("step-000002").toString());
            assertBitsEqual(SftFixtures.snapshot(l.parameters()), before);
        }
    }

    // ---------------------------------------------------------------- listeners, evaluation

    @Test
    void listenersSeeStepsCheckpointsAndEvaluationsAndTheJsonlHasThemAll() throws Exception {
        Path metrics = tmp.resolve("metrics.jsonl");
        List<Long> evaluated = new ArrayList<>();
        Steps s = new Steps();
        StageReport r;
        try (LoraModel l = LoraModel.apply(model, lora(0.05), manager); MetricsJsonl jsonl = MetricsJsonl.open(metrics)) {
            r = SftTrainer.builder(l, enc())
                    .config(SftConfig.builder().microBatchSize(2).gradientAccumulation(2).maxSteps(5).loggingSteps(2)
                            .build())
                    .listener(s).listener(jsonl).listener(TrainingListener.logging(2))
                    .checkpoints(tmp.resolve("c"), 3).keepCheckpoints(1)
                    .evaluator((m, step) -> {
                        evaluated.add(step);
                        return Map.of("answer_accuracy", step / 10.0);
                    }, 2)
                    .build().train(SftFixtures.examples(9, 6));
        }
        assertThat(s.steps).extracting(StepMetrics::step).containsExactly(2L, 4L, 5L);
        StepMetrics last = s.steps.get(2);
        assertThat(last.totalSteps()).isEqualTo(5);
        assertThat(last.learningRate()).isCloseTo(2e-4 * LearningRateSchedule.cosine(0.03).multiplier(4, 5),
                within(1e-15));
        assertThat(last.gradNorm()).isPositive();
        assertThat(last.tokensPerSecond()).isPositive();
        assertThat(last.activeElements()).isEqualTo(s.starts.get(0).trainableElements());
        assertThat(last.tokens()).isEqualTo(r.tokens());
        assertThat(evaluated).containsExactly(2L, 4L, 5L);
        assertThat(s.checkpoints).containsExactly(3L, 5L);
        try (var dirs = Files.list(tmp.resolve("c"))) {
            assertThat(dirs.map(p -> p.getFileName().toString()).sorted().toList())
                    .containsExactly("latest", "step-000005");
        }
        List<String> lines = Files.readAllLines(metrics);
        List<String> events = lines.stream().map(x -> JsonParser.parseString(x).getAsJsonObject().get("event")
                .getAsString()).toList();
        assertThat(events).containsExactly("stage_start", "step", "evaluation", "checkpoint", "step", "evaluation",
                "checkpoint", "step", "evaluation", "stage_end");
        JsonObject step = JsonParser.parseString(lines.get(1)).getAsJsonObject();
        assertThat(step.get("step").getAsLong()).isEqualTo(2);
        assertThat(step.get("loss").getAsDouble()).isPositive();
        JsonObject eval = JsonParser.parseString(lines.get(2)).getAsJsonObject();
        assertThat(eval.getAsJsonObject("metrics").get("answer_accuracy").getAsDouble()).isEqualTo(0.2);
        assertThat(r.examples()).isEqualTo(9);
        assertThat(r.skippedExamples()).isZero();
        assertThat(r.meanLoss()).isPositive();
    }

    @Test
    void examplesTooLongAreSkippedAndCountedAndNoneLeftIsAnError() throws Exception {
        List<Example> data = new ArrayList<>(SftFixtures.examples(4, 1));
        data.add(Example.of("long", "x".repeat(200), "y"));
        try (LoraModel l = LoraModel.apply(model, lora(0), manager)) {
            StageReport r = SftTrainer.builder(l, enc()).config(SftConfig.builder().maxSteps(1).build()).build()
                    .train(data);
            assertThat(r.skippedExamples()).isEqualTo(1);
            assertThat(r.examples()).isEqualTo(4);
            assertThatThrownBy(() -> SftTrainer.builder(l, enc()).build().train(List.of(data.get(4))))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("all 1 were skipped");
        }
    }
}
