package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.partition.StageMasks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link TwoStageTrainer}: stage 1 trains under the stage-1 mask, the second stage gets the stage-1
 * weights, the stage-2 mask and its own checkpoint folder; a run after an interruption does not redo a
 * finished stage 1.
 */
class TwoStageTrainerTest {
    @TempDir
    Path tmp;

    private static StageMasks stageMasks(LoraModel lora, Path file, NDManager m) throws Exception {
        Map<String, NDArray> all = new LinkedHashMap<>();
        SftFixtures.randomMasks(lora.parameters(), 0.5, 1, m).forEach((k, v) -> all.put("stage1/" + k, v));
        SftFixtures.randomMasks(lora.parameters(), 0.5, 2, m).forEach((k, v) -> all.put("stage2/" + k, v));
        SafetensorsWriter.write(file, all, Map.of("format", "lorapar-stage-masks", "origin", "test"));
        return StageMasks.load(file, m);
    }

    /** A stand-in second stage that records what it was given. */
    static final class Recorder implements TwoStageTrainer.SecondStage {
        TwoStageTrainer.StageContext context;
        Map<String, float[]> weightsAtStart;
        List<Example> examples;

        @Override
        public StageReport run(TwoStageTrainer.StageContext ctx, List<Example> system2) {
            context = ctx;
            examples = system2;
            weightsAtStart = SftFixtures.snapshot(ctx.lora().parameters());
            return new StageReport(ctx.stage(), 0, 0, 0, system2.size(), 0, 0, 0, 0, Double.NaN, Double.NaN,
                    java.time.Duration.ZERO, null);
        }
    }

    @Test
    void stageOneThenStageTwoFromItsWeightsAndAResumeDoesNotRedoStageOne() throws Exception {
        List<Example> s1 = SftFixtures.examples(6, 1);
        List<Example> s2 = SftFixtures.examples(4, 2);
        SftConfig cfg = SftConfig.builder().microBatchSize(2).gradientAccumulation(1).learningRate(1e-2).weightDecay(0.1)
                .build();
        LoraConfig loraCfg = LoraConfig.builder().rank(2).alpha(4).init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(1)
                .build();
        Path ckpt = tmp.resolve("run");
        Map<String, float[]> afterStage1;
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
            try (LoraModel lora = LoraModel.apply(model, loraCfg, m); StageMasks masks = stageMasks(lora,
                    tmp.resolve("masks.safetensors"), m)) {
                Map<String, float[]> before = SftFixtures.snapshot(lora.parameters());
                Recorder grpo = new Recorder();
                SftTrainerTest.Steps steps = new SftTrainerTest.Steps();
                TrainingReport report = TwoStageTrainer.builder(lora, SftFixtures.encoder(tk)).masks(masks).sft(cfg)
                        .stage2("grpo", grpo).checkpoints(ckpt, 2).listener(steps).build().run(s1, s2);
                assertThat(report.stages()).extracting(StageReport::stage).containsExactly("sft", "grpo");
                assertThat(report.sft().steps()).isEqualTo(3);
                assertThat(steps.checkpoints).containsExactly(2L, 3L);
                afterStage1 = grpo.weightsAtStart;
                assertThat(afterStage1).usingRecursiveComparison().isEqualTo(SftFixtures.snapshot(lora.parameters()));
                // stage 1 moved only its mask's elements
                for (String k : before.keySet()) {
                    boolean[] m1 = masks.stage1().get(k).toBooleanArray();
                    for (int i = 0; i < m1.length; i++) {
                        if (!m1[i]) {
                            assertThat(afterStage1.get(k)[i]).isEqualTo(before.get(k)[i]);
                        }
                    }
                }
                assertThat(grpo.context.masks()).isSameAs(masks.stage2());
                assertThat(grpo.context.lora()).isSameAs(lora);
                assertThat(grpo.context.checkpointFolder()).isEqualTo(ckpt.resolve("grpo"));
                assertThat(grpo.context.checkpointEvery()).isEqualTo(2);
                assertThat(grpo.context.listeners()).contains(steps);
                assertThat(grpo.examples).isEqualTo(s2);
            }
            // run again (as after a crash in stage 2): stage 1 is restored from its final checkpoint, not redone
            try (LoraModel lora = LoraModel.apply(model, loraCfg, m); StageMasks masks = StageMasks.load(
                    tmp.resolve("masks.safetensors"), m)) {
                Recorder grpo = new Recorder();
                List<StepMetrics> sftSteps = new ArrayList<>();
                TrainingReport report = TwoStageTrainer.builder(lora, SftFixtures.encoder(tk)).masks(masks).sft(cfg)
                        .stage2("grpo", grpo).checkpoints(ckpt, 2).listener(new TrainingListener() {
                            @Override
                            public void onStep(StepMetrics s) {
                                sftSteps.add(s);
                            }
                        }).build().run(s1, s2);
                assertThat(sftSteps).isEmpty();
                assertThat(report.sft().resumedFromStep()).isEqualTo(3);
                assertThat(grpo.weightsAtStart).usingRecursiveComparison().isEqualTo(afterStage1);
            }
        }
    }
}
