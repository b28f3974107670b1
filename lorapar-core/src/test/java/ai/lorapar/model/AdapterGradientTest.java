package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Gradients reach an adapter's own parameters through the whole decoder and the masked loss (the
 * per-layer freeing of temporaries does not cut the graph), and they agree with finite differences.
 */
class AdapterGradientTest {
    @Test
    void adapterParameterGradientMatchesFiniteDifferences() throws Exception {
        String name = "qwen2";
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m)) {
            NDArray ids = Fixtures.ref(name, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(name, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(name, "loss.labels", m);
            Linear target = model.linear("model.layers.0.mlp.down_proj");
            NDArray p = m.randomNormal(0, 0.02f, target.weight().getShape(), DataType.FLOAT32);
            p.setRequiresGradient(true);
            target.setAdapter((layer, x, training) -> x.matMul(p.transpose()));

            float[] grad;
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = CausalLmLoss.mean(model.forward(ids, mask, true), labels);
                gc.backward(loss);
            }
            grad = p.getGradient().toFloatArray();
            assertThat(model.linear("model.layers.0.mlp.up_proj").weight().hasGradient()).isFalse();

            // central differences on the three largest gradient entries
            Integer[] order = new Integer[grad.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            java.util.Arrays.sort(order, (a, b) -> Float.compare(Math.abs(grad[b]), Math.abs(grad[a])));
            float eps = 1e-2f;
            long cols = p.getShape().get(1);
            for (int n = 0; n < 3; n++) {
                int i = order[n];
                float[] at = new float[2];
                for (int s = 0; s < 2; s++) {
                    float delta = s == 0 ? eps : -eps;
                    p.set(new ai.djl.ndarray.index.NDIndex(i / cols + ", " + i % cols), p.getFloat(i / cols, i % cols) + delta);
                    try (NDArray logits = model.forward(ids, mask, false)) {
                        at[s] = CausalLmLoss.mean(logits, labels).getFloat();
                    }
                    p.set(new ai.djl.ndarray.index.NDIndex(i / cols + ", " + i % cols), p.getFloat(i / cols, i % cols) - delta);
                }
                float numeric = (at[0] - at[1]) / (2 * eps);
                System.err.printf("adapter grad[%d] analytic %s numeric %s%n", i, grad[i], numeric);
                assertThat(numeric).isCloseTo(grad[i], org.assertj.core.data.Offset.offset(2e-2f * Math.abs(grad[i]) + 1e-4f));
            }
        }
    }
}
