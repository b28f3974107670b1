package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * SFT with {@link SftConfig#cudaGraphs()} and LoRA dropout on the GPU (fp32 fixture LLaMA): the replayed passes
 * draw their masks from the CUDA generator seeded per micro-batch, so a run resumed from a checkpoint (whose
 * graphs are captured at other micro-batches) makes the uninterrupted run's steps; the masks are really applied
 * (dropout changes the result) and differ between micro-batches.
 */
@Tag("gpu")
class SftGraphsGpuTest {
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
        manager = NDManager.newBaseManager(Device.gpu());
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

    private static SftConfig config() {
        return SftConfig.builder().learningRate(5e-3).schedule(LearningRateSchedule.cosine(0.1)).weightDecay(0.1)
                .microBatchSize(2).gradientAccumulation(2).epochs(2).loggingSteps(1).seed(5).cudaGraphs(true).build();
    }

    private record Run(Map<String, float[]> params, List<Double> losses, long captures) {}

    private Run train(double dropout, Path checkpoints, TrainingListener extra) throws Exception {
        try (LoraModel l = LoraModel.apply(model, lora(dropout), manager)) {
            List<Double> losses = new ArrayList<>();
            SftTrainer.Builder b = SftTrainer.builder(l, enc()).config(config()).listener(new TrainingListener() {
                @Override
                public void onStep(StepMetrics m) {
                    losses.add(m.loss());
                }
            });
            if (checkpoints != null) {
                b.checkpoints(checkpoints, 2);
            }
            if (extra != null) {
                b.listener(extra);
            }
            SftTrainer trainer = b.build();
            trainer.train(SftFixtures.examples(10, 8)); // 5 micro-batches per epoch: steps of 2, 2, 1
            return new Run(SftFixtures.snapshot(l.parameters()), losses, trainer.graphCaptures());
        }
    }

    @Test
    void aResumedGraphRunMakesTheUninterruptedRunsSteps() throws Exception {
        Run whole = train(0.3, null, null);
        assertThat(whole.captures()).as("graphs captured").isPositive();
        assertThat(whole.losses()).hasSize(6);

        Path ckpt = tmp.resolve("ckpt");
        assertThatThrownBy(() -> train(0.3, ckpt, SftTrainerTest.crashAfter(3)))
                .isInstanceOf(SftTrainerTest.Crash.class);
        Run resumed = train(0.3, ckpt, null);
        assertThat(resumed.losses()).hasSize(4); // steps 3..6
        for (int i = 0; i < 4; i++) {
            assertThat(resumed.losses().get(i)).as("loss of step %d", i + 3)
                    .isCloseTo(whole.losses().get(i + 2), org.assertj.core.data.Offset.offset(
                            1e-5 * Math.abs(whole.losses().get(i + 2))));
        }
        // the same masks replayed: equal up to the GPU's summation order
        assertThat(SftFixtures.maxRelDiff(resumed.params(), whole.params())).isLessThan(2e-3);
    }

    @Test
    void dropoutIsAppliedInTheReplayedPasses() throws Exception {
        Run dropped = train(0.3, null, null);
        Run plain = train(0.0, null, null);
        assertThat(dropped.captures()).isPositive();
        assertThat(plain.captures()).isPositive();
        // 30% of the adapters' inputs dropped: the first step's loss is the same forward up to the LoRA term, the
        // parameters after six steps are clearly not
        assertThat(SftFixtures.maxRelDiff(dropped.params(), plain.params())).isGreaterThan(1e-2);
        // and the draws follow the seed: a second run draws the same masks
        Run again = train(0.3, null, null);
        assertThat(SftFixtures.maxRelDiff(again.params(), dropped.params())).isLessThan(2e-3);
    }
}
