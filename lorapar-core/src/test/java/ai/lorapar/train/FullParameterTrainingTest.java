package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Full-parameter training through the SFT loop ({@link TrainingTarget#fullParameters}): every weight of
 * the fixture LLaMA trains with plain AdamW, equal to the naive reference of {@link SftReferenceTest}
 * run on a second copy of the model; the trained model saves and loads back with identical logits; and a
 * full-parameter run resumes from its checkpoint bit for bit.
 */
class FullParameterTrainingTest {
    @TempDir
    Path tmp;

    @Test
    void fullParameterStepsEqualTheReferenceAndTheModelSavesAndLoadsBack() throws Exception {
        SftConfig cfg = SftReferenceTest.config(SftConfig.LossNormalization.PER_TOKEN).toBuilder().learningRate(1e-3)
                .build();
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel trained = SftFixtures.load("llama", m, DataType.FLOAT32);
                DecoderModel reference = SftFixtures.load("llama", m, DataType.FLOAT32)) {
            ExampleEncoder enc = SftFixtures.encoder(tk);
            List<Example> examples = SftFixtures.examples(11, 5);
            List<EncodedExample> rows = enc.encodeAll(examples).examples();

            Map<String, NDArray> refParams = reference.trainableWeights();
            Map<String, boolean[]> all = new LinkedHashMap<>();
            refParams.forEach((k, v) -> all.put(k, new boolean[(int) v.size()]));
            all.values().forEach(b -> java.util.Arrays.fill(b, true));
            SftReferenceTest.Reference ref = SftReferenceTest.reference(reference, refParams, all, rows, cfg);

            java.util.List<Double> losses = new java.util.ArrayList<>();
            StageReport r = SftTrainer.builder(TrainingTarget.fullParameters(trained), enc).config(cfg)
                    .listener(new TrainingListener() {
                        @Override
                        public void onStep(StepMetrics s) {
                            losses.add(s.loss());
                        }
                    }).build().train(examples);
            assertThat(r.steps()).isEqualTo(4);
            for (int i = 0; i < 4; i++) {
                assertThat(losses.get(i)).isCloseTo(ref.losses.get(i), within(1e-5 * ref.losses.get(i)));
            }
            Map<String, NDArray> params = trained.weights();
            int moved = 0;
            for (Map.Entry<String, double[]> e : ref.params.entrySet()) {
                float[] a = params.get(e.getKey()).toFloatArray();
                double[] b = e.getValue();
                for (int j = 0; j < a.length; j++) {
                    assertThat((double) a[j]).as("%s[%d]", e.getKey(), j)
                            .isCloseTo(b[j], within(1e-5 * Math.abs(b[j]) + 1e-3 * cfg.learningRate()));
                }
                moved++;
            }
            assertThat(moved).isEqualTo(params.size());

            Path out = tmp.resolve("trained");
            trained.save(out);
            try (DecoderModel back = DecoderModel.load(out, m, DataType.FLOAT32);
                    ai.lorapar.data.TokenBatch batch = ai.lorapar.data.TokenBatch.of(rows.subList(0, 4), enc.padId(), m)) {
                try (NDArray a = trained.forward(batch.inputIds(), batch.attentionMask(), false);
                        NDArray b = back.forward(batch.inputIds(), batch.attentionMask(), false)) {
                    assertThat(a.contentEquals(b)).as("identical logits after save and load").isTrue();
                }
            }
        }
    }

    @Test
    void aFullParameterRunResumesBitForBit() throws Exception {
        SftConfig cfg = SftConfig.builder().learningRate(1e-3).weightDecay(0.1).microBatchSize(2).gradientAccumulation(1)
                .maxSteps(4).loggingSteps(1).build();
        try (TextTokenizer tk = SftFixtures.tokenizer(); NDManager m = NDManager.newBaseManager(Device.cpu())) {
            ExampleEncoder enc = SftFixtures.encoder(tk);
            List<Example> examples = SftFixtures.examples(6, 2);
            Map<String, float[]> uninterrupted;
            try (DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
                SftTrainer.builder(TrainingTarget.fullParameters(model), enc).config(cfg).build().train(examples);
                uninterrupted = SftFixtures.snapshot(model.weights());
            }
            Path ckpt = tmp.resolve("ckpt");
            try (DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
                try {
                    SftTrainer.builder(TrainingTarget.fullParameters(model), enc).config(cfg).checkpoints(ckpt, 2)
                            .listener(SftTrainerTest.crashAfter(3)).build().train(examples);
                } catch (SftTrainerTest.Crash expected) {
                    // interrupted after step 3; the checkpoint of step 2 is the latest
                }
            }
            assertThat(ckpt.resolve("step-000002/model/config.json")).exists();
            assertThat(ckpt.resolve("step-000002/parameters.safetensors")).exists();
            try (DecoderModel model = SftFixtures.load("llama", m, DataType.FLOAT32)) {
                StageReport r = SftTrainer.builder(TrainingTarget.fullParameters(model), enc).config(cfg)
                        .checkpoints(ckpt, 2).build().train(examples);
                assertThat(r.resumedFromStep()).isEqualTo(2);
                Map<String, float[]> resumed = SftFixtures.snapshot(model.weights());
                for (String k : uninterrupted.keySet()) {
                    assertThat(resumed.get(k)).as(k).containsExactly(uninterrupted.get(k));
                }
            }
        }
    }
}
