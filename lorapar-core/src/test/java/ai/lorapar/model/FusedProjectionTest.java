package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The fused q/k/v and gate/up products equal one product per {@link Linear}, adapters included. */
class FusedProjectionTest {
    static final float EQ = 1e-5f;

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "llama"})
    void fusedAndUnfusedLogitsAgreeAndLateAdaptersAreHonoured(String name) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m)) {
            NDArray ids = Fixtures.ref(name, "batch.input_ids", m);
            NDArray mask = Fixtures.ref(name, "batch.attention_mask", m);
            NDArray fused = model.forward(ids, mask, false);
            model.setFusedProjections(false);
            NDArray unfused = model.forward(ids, mask, false);
            assertThat(Fixtures.maxAbsDiff(fused, unfused)).isLessThan(EQ);

            // an adapter installed after a fused forward pass takes part in the next one (k of layer 1, up of layer 0)
            model.setFusedProjections(true);
            NDArray a = m.randomNormal(0, 0.5f, new Shape(model.config().hiddenSize(), 3), DataType.FLOAT32);
            LinearAdapter adapter = (layer, x, training) -> {
                NDArray low = x.matMul(a); // [..., 3]
                return low.matMul(low.getManager().ones(new Shape(3, layer.outFeatures()))).mul(0.1f);
            };
            model.linear("model.layers.1.self_attn.k_proj").setAdapter(adapter);
            model.linear("model.layers.0.mlp.up_proj").setAdapter(adapter);
            NDArray fusedAdapted = model.forward(ids, mask, false);
            assertThat(Fixtures.maxAbsDiff(fusedAdapted, fused)).isGreaterThan(1e-3f);
            model.setFusedProjections(false);
            NDArray unfusedAdapted = model.forward(ids, mask, false);
            assertThat(Fixtures.maxAbsDiff(fusedAdapted, unfusedAdapted)).isLessThan(EQ);

            // disabled or removed adapters: the base model again, fused or not
            model.setFusedProjections(true);
            model.setAdaptersEnabled(false);
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, mask, false), fused)).isLessThan(EQ);
            model.setAdaptersEnabled(true);
            model.linear("model.layers.1.self_attn.k_proj").setAdapter(null);
            model.linear("model.layers.0.mlp.up_proj").setAdapter(null);
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, mask, false), fused)).isLessThan(EQ);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "mistral"})
    void fusedAndUnfusedGenerationAgree(String name) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m)) {
            List<long[]> prompts = GeneratorTest.prompts(name, m);
            GenerationResult fused = new Generator(model).generate(prompts, SamplingConfig.greedy(8));
            model.setFusedProjections(false);
            GenerationResult unfused = new Generator(model).generate(prompts, SamplingConfig.greedy(8));
            for (int i = 0; i < prompts.size(); i++) {
                assertThat(fused.sequences().get(i).tokens()).containsExactly(unfused.sequences().get(i).tokens());
            }
        }
    }

    @org.junit.jupiter.api.Test
    void theJniFusedOpsAreNotUsedOnACpu() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model("qwen2"), m)) {
            assertThat(model.usesFusedOps()).isFalse();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen2"})
    void linearWeightsAreViewsOfTheFusedWeight(String name) throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m)) {
            Linear v = model.linear("model.layers.0.self_attn.v_proj");
            NDArray ids = Fixtures.ref(name, "single.0.input_ids", m).expandDims(0);
            NDArray before = model.forward(ids, null, false);
            // an in-place change of a part's weight (as a merge of LoRA into the base does) reaches the fused product
            v.weight().muli(0);
            NDArray zeroed = model.forward(ids, null, false);
            model.setFusedProjections(false);
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, null, false), zeroed)).isLessThan(EQ);
            assertThat(Fixtures.maxAbsDiff(zeroed, before)).isGreaterThan(1e-3f);
            assertThat(v.weight().getShape()).isEqualTo(new Shape(v.outFeatures(), v.inFeatures()));
        }
    }
}
