package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** {@link DecoderModel#random}: a model of a config's shape without a checkpoint, reproducible by seed. */
class RandomModelTest {
    @Test
    void randomModelHasTheConfigsShapesAndIsReproducible() throws Exception {
        ModelConfig config = ModelConfig.load(Fixtures.model("qwen2"));
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel a = DecoderModel.random(config, m, DataType.FLOAT32, 7);
                DecoderModel b = DecoderModel.random(config, m, DataType.FLOAT32, 7);
                DecoderModel c = DecoderModel.random(config, m, DataType.FLOAT32, 8)) {
            assertThat(a.linears()).hasSize(config.numLayers() * 7 + 1);
            Linear q = a.linear("model.layers.0.self_attn.q_proj");
            assertThat(q.weight().getShape()).isEqualTo(new Shape((long) config.numHeads() * config.headDim(),
                    config.hiddenSize()));
            assertThat(q.bias()).isNotNull(); // qwen2: q/k/v bias
            assertThat(a.linear("model.layers.0.self_attn.o_proj").bias()).isNull();
            float std = a.linear("model.layers.0.mlp.up_proj").weight().flatten().toFloatArray().length > 0
                    ? (float) Math.sqrt(a.linear("model.layers.0.mlp.up_proj").weight().square().mean().getFloat()) : 0;
            assertThat(std).isBetween(0.018f, 0.022f);
            NDArray ids = m.create(new long[] {1, 2, 3, 4}, new Shape(1, 4));
            float[] la = a.forward(ids, null, false).toFloatArray();
            assertThat(la).containsExactly(b.forward(ids, null, false).toFloatArray());
            assertThat(la).isNotEqualTo(c.forward(ids, null, false).toFloatArray());
        }
    }
}
