package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import ai.lorapar.train.grpo.GrpoConfig;
import ai.lorapar.train.grpo.RewardFunction;
import ai.lorapar.train.grpo.RewardSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link TwoStageTrainer} with GRPO as stage 2 on the CPU: SFT under the stage-1 mask, then GRPO from the
 * stage-1 weights under the stage-2 mask; a run interrupted inside stage 2 resumes there and ends bit for
 * bit where an uninterrupted run does, and a finished run is not redone; each recipe (LoRA-PAR, plain LoRA,
 * random subset, PiSSA + RL) changes exactly the elements it should in each stage.
 */
class TwoStageGrpoTest {
    @TempDir
    Path tmp;

    private static final List<Example> SYSTEM1 = SftFixtures.examples(4, 1);
    private static final List<Example> SYSTEM2 = SftFixtures.examples(4, 2);

    /** Weight decay moves every active element, so "changed" is exactly "active". */
    private static SftConfig sft() {
        return SftConfig.builder().microBatchSize(2).gradientAccumulation(1).learningRate(1e-2).weightDecay(0.1)
                .schedule(LearningRateSchedule.constant()).build();
    }

    private static GrpoConfig grpo() {
        RewardSet rewards = RewardSet.builder()
                .add(RewardFunction.named("as", (e, t, ids) -> OptionalDouble.of(t.chars().filter(c -> c == 'a').count())))
                .add(RewardFunction.named("length", (e, t, ids) -> OptionalDouble.of(0.1 * ids.length)), 0.5)
                .build();
        return GrpoConfig.builder().groupSize(2).promptsPerStep(2).microBatchSize(4).maxCompletionTokens(4)
                .maxPromptTokens(32).learningRate(1e-2).schedule(LearningRateSchedule.constant()).rewards(rewards)
                .systemPrompt(null).completionLogEvery(0).seed(3).build();
    }

    private static LoraConfig lora(LoraInit init) {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(2).alpha(4).dropout(0.1).init(init)
                .gaussianStd(0.05).seed(1).build();
    }

    /** Snapshots the adapters when stage 2 starts; throws after a given stage-2 step, like a crash. */
    static final class Stage2Watch implements TrainingListener {
        final LoraModel lora;
        final long crashAfter;
        Map<String, float[]> atStage2;
        final List<StepMetrics> grpoSteps = new ArrayList<>();
        final List<StepMetrics> sftSteps = new ArrayList<>();

        Stage2Watch(LoraModel lora, long crashAfter) {
            this.lora = lora;
            this.crashAfter = crashAfter;
        }

        @Override
        public void onStageStart(StageStart s) {
            if (s.stage().equals("grpo")) {
                atStage2 = SftFixtures.snapshot(lora.parameters());
            }
        }

        @Override
        public void onStep(StepMetrics m) {
            (m.stage().equals("grpo") ? grpoSteps : sftSteps).add(m);
            if (m.stage().equals("grpo") && m.step() == crashAfter) {
                throw new IllegalStateException("simulated crash after GRPO step " + crashAfter);
            }
        }
    }

    private static StageMasks randomStageMasks(LoraModel lora, Path file, NDManager m) throws Exception {
        Map<String, NDArray> all = new LinkedHashMap<>();
        SftFixtures.randomMasks(lora.parameters(), 0.5, 1, m).forEach((k, v) -> all.put("stage1/" + k, v));
        SftFixtures.randomMasks(lora.parameters(), 0.5, 2, m).forEach((k, v) -> all.put("stage2/" + k, v));
        ai.lorapar.io.SafetensorsWriter.write(file, all, Map.of("format", "lorapar-stage-masks", "origin", "test"));
        return StageMasks.load(file, m);
    }

    /** For each element: whether it differs between two snapshots. */
    private static Map<String, boolean[]> changed(Map<String, float[]> a, Map<String, float[]> b) {
        Map<String, boolean[]> out = new LinkedHashMap<>();
        a.forEach((k, v) -> {
            boolean[] c = new boolean[v.length];
            for (int i = 0; i < v.length; i++) {
                c[i] = Float.floatToRawIntBits(v[i]) != Float.floatToRawIntBits(b.get(k)[i]);
            }
            out.put(k, c);
        });
        return out;
    }

    private static Map<String, boolean[]> host(Map<String, NDArray> masks, Map<String, float[]> like) {
        Map<String, boolean[]> out = new LinkedHashMap<>();
        like.forEach((k, v) -> {
            if (masks == null) {
                boolean[] all = new boolean[v.length];
                java.util.Arrays.fill(all, true);
                out.put(k, all);
            } else {
                out.put(k, masks.get(k).toBooleanArray());
            }
        });
        return out;
    }

    @Test
    void grpoFollowsSftUnderItsMaskAndResumesInsideStageTwoBitForBit() throws Exception {
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
            Path masksFile = tmp.resolve("masks.safetensors");
            Map<String, float[]> expected;
            // uninterrupted
            try (LoraModel lora = LoraModel.apply(model, lora(LoraInit.GAUSSIAN), m);
                    StageMasks masks = randomStageMasks(lora, masksFile, m)) {
                Map<String, float[]> before = SftFixtures.snapshot(lora.parameters());
                Stage2Watch watch = new Stage2Watch(lora, 0);
                TwoStageTrainer trainer = TwoStageTrainer.loraPar(lora, SftFixtures.encoder(tk), masks).sft(sft())
                        .grpo(grpo()).listener(watch).build();
                assertThat(trainer.recipe()).isEqualTo(TwoStageTrainer.Recipe.LORA_PAR);
                TrainingReport report = trainer.run(SYSTEM1, SYSTEM2);
                assertThat(report.stages()).extracting(StageReport::stage).containsExactly("sft", "grpo");
                assertThat(report.sft().steps()).isEqualTo(2);
                assertThat(report.grpo().steps()).isEqualTo(2);
                assertThat(report.grpo().examples()).isEqualTo(4);
                assertThat(watch.grpoSteps).extracting(StepMetrics::step).containsExactly(1L, 2L);
                assertThat(watch.grpoSteps.get(0).details()).containsKey("rewards/as/mean");
                expected = SftFixtures.snapshot(lora.parameters());
                assertThat(changed(before, watch.atStage2)).usingRecursiveComparison()
                        .isEqualTo(host(masks.stage1(), before));
                assertThat(changed(watch.atStage2, expected)).usingRecursiveComparison()
                        .isEqualTo(host(masks.stage2(), before));
            }
            // checkpoints every step, a crash after GRPO step 1 (its checkpoint written), then a resume
            Path ckpt = tmp.resolve("ckpt");
            try (LoraModel lora = LoraModel.apply(model, lora(LoraInit.GAUSSIAN), m);
                    StageMasks masks = StageMasks.load(masksFile, m)) {
                TwoStageTrainer trainer = TwoStageTrainer.loraPar(lora, SftFixtures.encoder(tk), masks).sft(sft())
                        .grpo(grpo()).checkpoints(ckpt, 1).listener(new Stage2Watch(lora, 1)).build();
                assertThatThrownBy(() -> trainer.run(SYSTEM1, SYSTEM2)).hasMessageContaining("simulated crash");
            }
            try (LoraModel lora = LoraModel.apply(model, lora(LoraInit.GAUSSIAN), m);
                    StageMasks masks = StageMasks.load(masksFile, m)) {
                Stage2Watch watch = new Stage2Watch(lora, 0);
                TrainingReport report = TwoStageTrainer.loraPar(lora, SftFixtures.encoder(tk), masks).sft(sft())
                        .grpo(grpo()).checkpoints(ckpt, 1).listener(watch).build().run(SYSTEM1, SYSTEM2);
                assertThat(watch.sftSteps).as("stage 1 is not redone").isEmpty();
                assertThat(report.grpo().resumedFromStep()).isEqualTo(1);
                assertThat(watch.grpoSteps).extracting(StepMetrics::step).containsExactly(2L);
                assertThat(SftFixtures.snapshot(lora.parameters())).usingRecursiveComparison().isEqualTo(expected);
            }
            // and once more: both stages finished, nothing is trained, the final weights are restored
            try (LoraModel lora = LoraModel.apply(model, lora(LoraInit.GAUSSIAN), m);
                    StageMasks masks = StageMasks.load(masksFile, m)) {
                Stage2Watch watch = new Stage2Watch(lora, 0);
                TrainingReport report = TwoStageTrainer.loraPar(lora, SftFixtures.encoder(tk), masks).sft(sft())
                        .grpo(grpo()).checkpoints(ckpt, 1).listener(watch).build().run(SYSTEM1, SYSTEM2);
                assertThat(watch.sftSteps).isEmpty();
                assertThat(watch.grpoSteps).isEmpty();
                assertThat(report.grpo().resumedFromStep()).isEqualTo(2);
                assertThat(SftFixtures.snapshot(lora.parameters())).usingRecursiveComparison().isEqualTo(expected);
            }
        }
    }

    /** Importance maps over the adapters' elements, for a real partition and its random baseline. */
    private static SubregionPartition partition(LoraModel lora, NDManager m) {
        m.getEngine().setRandomSeed(11);
        Map<String, NDArray> a = new LinkedHashMap<>();
        Map<String, NDArray> b = new LinkedHashMap<>();
        lora.parameters().forEach((name, p) -> {
            a.put(name, m.randomUniform(0f, 1f, p.getShape(), DataType.FLOAT32).pow(4));
            b.put(name, m.randomUniform(0f, 1f, p.getShape(), DataType.FLOAT32).pow(4));
        });
        try (ImportanceMap i1 = ImportanceMap.of(m, a, 4); ImportanceMap i2 = ImportanceMap.of(m, b, 4)) {
            return SubregionPartition.builder().system1(i1).system2(i2).theta(0.6).manager(m).build();
        }
    }

    @Test
    void eachRecipeTrainsExactlyItsElements() throws Exception {
        GrpoConfig oneStep = grpo().toBuilder().maxSteps(1).build();
        SftConfig oneSftStep = sft().toBuilder().microBatchSize(4).build();
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
            for (TwoStageTrainer.Recipe recipe : List.of(TwoStageTrainer.Recipe.LORA_PAR,
                    TwoStageTrainer.Recipe.RANDOM_SUBSET, TwoStageTrainer.Recipe.PLAIN_LORA,
                    TwoStageTrainer.Recipe.PISSA_RL)) {
                LoraInit init = recipe == TwoStageTrainer.Recipe.PISSA_RL ? LoraInit.PISSA : LoraInit.GAUSSIAN;
                try (LoraModel lora = LoraModel.apply(model, lora(init), m);
                        SubregionPartition p = partition(lora, m);
                        StageMasks random = p.randomBaseline(5)) {
                    StageMasks importance = p.stageMasks();
                    assertThat(random.stage1Count()).isEqualTo(importance.stage1Count());
                    assertThat(random.stage2Count()).isEqualTo(importance.stage2Count());
                    assertThat(importance.stage1Count()).isPositive().isLessThan(importance.elementCount());
                    StageMasks used = switch (recipe) {
                        case LORA_PAR -> importance;
                        case RANDOM_SUBSET -> random;
                        default -> null;
                    };
                    Map<String, float[]> before = SftFixtures.snapshot(lora.parameters());
                    Stage2Watch watch = new Stage2Watch(lora, 0);
                    TwoStageTrainer trainer = TwoStageTrainer.recipe(recipe, lora, SftFixtures.encoder(tk), used)
                            .sft(oneSftStep).grpo(oneStep).listener(watch).build();
                    assertThat(trainer.recipe()).isEqualTo(recipe);
                    TrainingReport report = trainer.run(SYSTEM1, SYSTEM2);
                    assertThat(report.sft().steps()).isEqualTo(1);
                    assertThat(report.grpo().steps()).isEqualTo(1);
                    Map<String, float[]> after = SftFixtures.snapshot(lora.parameters());
                    assertThat(changed(before, watch.atStage2)).as("%s stage 1", recipe).usingRecursiveComparison()
                            .isEqualTo(host(used == null ? null : used.stage1(), before));
                    assertThat(changed(watch.atStage2, after)).as("%s stage 2", recipe).usingRecursiveComparison()
                            .isEqualTo(host(used == null ? null : used.stage2(), before));
                }
            }
            try (LoraModel gaussian = LoraModel.apply(model, lora(LoraInit.GAUSSIAN), m)) {
                assertThatThrownBy(() -> TwoStageTrainer.pissaRl(gaussian, SftFixtures.encoder(tk)))
                        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("PiSSA");
                try (SubregionPartition p = partition(gaussian, m)) {
                    assertThatThrownBy(() -> TwoStageTrainer.plainLora(gaussian, SftFixtures.encoder(tk))
                            .masks(p.stageMasks())).isInstanceOf(IllegalStateException.class)
                            .hasMessageContaining("every element");
                }
                assertThatThrownBy(() -> TwoStageTrainer.loraPar(gaussian, SftFixtures.encoder(tk), null))
                        .isInstanceOf(NullPointerException.class).hasMessageContaining("stage masks");
            }
        }
    }
}
