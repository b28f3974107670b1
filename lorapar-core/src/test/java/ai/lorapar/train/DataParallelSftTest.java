package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.InProcessCollective;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Data-parallel SFT (issue 15) with the ranks as threads ({@link InProcessCollective}), CPU, fp32, the
 * fixture LLaMA: W ranks on the same global batches give one process's parameters and losses; a
 * checkpoint written at one world size resumes at another; a world size that does not divide the
 * micro-batch is refused.
 */
class DataParallelSftTest {
    private static TextTokenizer tokenizer;
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

    /** Device of the ranks' models (CPU; the GPU subclass re-runs on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    /** Scales the fp32 tolerances (GPU kernels sum in other orders). */
    protected double slack() {
        return device().isGpu() ? 10 : 1;
    }

    private static LoraConfig lora() {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8).dropout(0)
                .init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(3).build();
    }

    /**
     * 13 examples, micro-batches of 4, two per step: the last micro-batch of each epoch has one row, so
     * rank 1 of 2 has an empty share there (its whole second step has 4 + 1 rows: rank 1 gets 2 + 0).
     */
    private static SftConfig config() {
        return SftConfig.builder().learningRate(5e-3).schedule(LearningRateSchedule.cosine(0.1)).weightDecay(0.01)
                .maxGradNorm(0.5).microBatchSize(4).gradientAccumulation(2).epochs(2).seed(9).loggingSteps(1)
                .build();
    }

    private static final List<Example> DATA = SftFixtures.examples(13, 21);

    /** One rank's run: its own model copy, masks, the given listeners; returns its final parameters. */
    private Result train(Collective c, Path checkpoints, TrainingListener... listeners) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device())) {
            DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32);
            try (LoraModel l = LoraModel.apply(model, lora(), m)) {
                Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.5, 17, m);
                SftTrainerTest.Steps steps = new SftTrainerTest.Steps();
                SftTrainer.Builder b = SftTrainer.builder(l, SftFixtures.encoder(tokenizer)).masks(masks)
                        .config(config()).listener(steps).collective(c);
                for (TrainingListener t : listeners) {
                    b.listener(t);
                }
                if (checkpoints != null) {
                    b.checkpoints(checkpoints, 1);
                }
                StageReport r = b.build().train(DATA);
                return new Result(SftFixtures.snapshot(l.parameters()), steps, r);
            }
        }
    }

    private record Result(Map<String, float[]> params, SftTrainerTest.Steps steps, StageReport report) {}

    /**
     * The SFT run of the two-process test ({@code DataParallelProcessGpuTest}): this rank's part of the fixture
     * run of {@link #config()} with masks, on {@code device}; its final parameters.
     */
    static Map<String, float[]> trainOn(Collective c, Device device) throws Exception {
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(device)) {
            DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32);
            try (LoraModel l = LoraModel.apply(model, lora(), m)) {
                Map<String, NDArray> masks = SftFixtures.randomMasks(l.parameters(), 0.5, 17, m);
                SftTrainer.builder(l, SftFixtures.encoder(tk)).masks(masks).config(config()).collective(c).build()
                        .train(DATA);
                return SftFixtures.snapshot(l.parameters());
            }
        }
    }

    private void assertClose(Map<String, float[]> actual, Map<String, float[]> expected) {
        assertThat(actual.keySet()).isEqualTo(expected.keySet());
        double maxRel = 0;
        for (String k : expected.keySet()) {
            float[] a = actual.get(k);
            float[] e = expected.get(k);
            for (int i = 0; i < e.length; i++) {
                // fp32 with other summation orders: relative 1e-4 of the value, or 1e-6 absolute near 0
                assertThat(a[i]).as("%s[%d]", k, i).isCloseTo(e[i], within((float) ((1e-4 * Math.abs(e[i]) + 1e-6) * slack())));
                maxRel = Math.max(maxRel, Math.abs(a[i] - e[i]) / Math.max(1e-6, Math.abs(e[i])));
            }
        }
    }

    @Test
    void twoRanksGiveOneProcessParametersAndLosses() throws Exception {
        Result single = InProcessCollective.run(1, c -> train(c, null)).get(0);
        List<Result> ranks = InProcessCollective.run(2, c -> train(c, null));
        Result leader = ranks.get(0);
        assertThat(single.report().steps()).isEqualTo(4);
        assertThat(leader.report().steps()).isEqualTo(4);
        assertClose(leader.params(), single.params());
        assertClose(ranks.get(1).params(), single.params());
        // the leader reports the global step: the same loss, gradient norm and token counts as one process
        assertThat(leader.steps().steps).hasSize(4);
        for (int i = 0; i < 4; i++) {
            StepMetrics a = leader.steps().steps.get(i);
            StepMetrics e = single.steps().steps.get(i);
            assertThat(a.loss()).isCloseTo(e.loss(), within(1e-5 * Math.abs(e.loss()) * slack()));
            assertThat(a.gradNorm()).isCloseTo(e.gradNorm(), within(1e-5 * e.gradNorm() * slack()));
            assertThat(a.tokens()).isEqualTo(e.tokens());
            assertThat(a.answerTokens()).isEqualTo(e.answerTokens());
        }
        assertThat(single.steps().steps.get(0).gradNorm()).as("clipping is exercised").isGreaterThan(0.5);
        assertThat(ranks.get(1).steps().steps).as("only the leader reports").isEmpty();
        assertThat(ranks.get(1).steps().starts).isEmpty();
    }

    @Test
    void threeRanksWithGradientAccumulationToo() throws Exception {
        // 3 does not divide 4: refused; with micro-batches of 6 (13 rows: 6, 6, 1) ranks get 2, 2, 1 / 0 rows
        Result single;
        List<Result> ranks;
        SftConfig cfg = SftConfig.builder().learningRate(5e-3).microBatchSize(6).gradientAccumulation(2).epochs(1)
                .seed(4).loggingSteps(1).build();
        single = InProcessCollective.run(1, c -> trainWith(c, cfg)).get(0);
        ranks = InProcessCollective.run(3, c -> trainWith(c, cfg));
        assertClose(ranks.get(0).params(), single.params());
        assertClose(ranks.get(2).params(), single.params());
    }

    private Result trainWith(Collective c, SftConfig cfg) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device())) {
            DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32);
            try (LoraModel l = LoraModel.apply(model, lora(), m)) {
                SftTrainerTest.Steps steps = new SftTrainerTest.Steps();
                StageReport r = SftTrainer.builder(l, SftFixtures.encoder(tokenizer)).config(cfg).listener(steps)
                        .collective(c).build().train(DATA);
                return new Result(SftFixtures.snapshot(l.parameters()), steps, r);
            }
        }
    }

    @Test
    void checkpointOfTwoRanksResumesOnOneAndViceVersa() throws Exception {
        Result uninterrupted = InProcessCollective.run(1, c -> train(c, null)).get(0);

        Path a = tmp.resolve("two-then-one");
        assertThatThrownBy(() -> InProcessCollective.run(2, c -> train(c, a, SftTrainerTest.crashAfter(2))))
                .isInstanceOf(SftTrainerTest.Crash.class);
        Result resumedOnOne = InProcessCollective.run(1, c -> train(c, a)).get(0);
        assertThat(resumedOnOne.report().resumedFromStep()).isEqualTo(2);
        assertClose(resumedOnOne.params(), uninterrupted.params());

        Path b = tmp.resolve("one-then-two");
        assertThatThrownBy(() -> InProcessCollective.run(1, c -> train(c, b, SftTrainerTest.crashAfter(2))))
                .isInstanceOf(SftTrainerTest.Crash.class);
        List<Result> resumedOnTwo = InProcessCollective.run(2, c -> train(c, b));
        assertThat(resumedOnTwo.get(0).report().resumedFromStep()).isEqualTo(2);
        assertThat(resumedOnTwo.get(1).report().resumedFromStep()).isEqualTo(2);
        assertClose(resumedOnTwo.get(0).params(), uninterrupted.params());
        assertClose(resumedOnTwo.get(1).params(), uninterrupted.params());
        assertThat(resumedOnTwo.get(1).report().lastCheckpoint()).isEqualTo(resumedOnTwo.get(0).report().lastCheckpoint());
    }

    @Test
    void aWorldSizeThatDoesNotDivideTheMicroBatchIsRefused() throws Exception {
        Collective three = new FakeWorld(3);
        try (NDManager m = NDManager.newBaseManager(device())) {
            DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32);
            try (LoraModel l = LoraModel.apply(model, lora(), m)) {
                assertThatThrownBy(() -> SftTrainer.builder(l, SftFixtures.encoder(tokenizer)).config(config())
                        .collective(three).build())
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("world size 3").hasMessageContaining("micro-batch size").hasMessageContaining(" 4");
            }
        }
    }

    /** A world of n ranks that is never run (for the builders' checks). */
    record FakeWorld(int worldSize) implements Collective {
        @Override
        public int rank() {
            return 0;
        }

        @Override
        public void allReduceSum(NDList arrays) {
            throw new UnsupportedOperationException("FakeWorld only feeds the builders' world-size checks; it never runs a step");
        }

        @Override
        public void broadcast(NDList arrays, int root) {
            throw new UnsupportedOperationException("FakeWorld only feeds the builders' world-size checks; it never runs a step");
        }

        @Override
        public void barrier() {
            throw new UnsupportedOperationException("FakeWorld only feeds the builders' world-size checks; it never runs a step");
        }

        @Override
        public void close() {}
    }
}
