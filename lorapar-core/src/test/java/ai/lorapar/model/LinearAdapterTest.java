package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LinearAdapterTest {

    /** An adapter adding x·Dᵀ is the same model as the base weight W + D. */
    @Test
    void adapterDeltaEqualsAModifiedBaseWeight() throws Exception {
        String name = "llama";
        String target = "model.layers.1.self_attn.v_proj";
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model(name), m)) {
            NDArray ids = Fixtures.ref(name, "single.1.input_ids", m).expandDims(0);
            NDArray base = model.forward(ids, null, false);
            Linear v = model.linear(target);
            NDArray d = m.randomNormal(0, 0.05f, v.weight().getShape(), DataType.FLOAT32);
            AtomicInteger calls = new AtomicInteger();
            v.setAdapter((layer, x, training) -> {
                calls.incrementAndGet();
                assertThat(layer).isSameAs(v);
                return x.matMul(d.transpose());
            });
            NDArray adapted = model.forward(ids, null, false);
            assertThat(calls.get()).isEqualTo(1);
            assertThat(Fixtures.maxAbsDiff(adapted, base)).isGreaterThan(1e-3f);

            // same result by changing the frozen weight in place (test only)
            NDArray original = v.weight().duplicate();
            v.setAdapter(null);
            v.weight().addi(d);
            NDArray merged = model.forward(ids, null, false);
            v.weight().subi(d);
            assertThat(Fixtures.maxAbsDiff(adapted, merged)).isLessThan(1e-4f);
            assertThat(Fixtures.maxAbsDiff(v.weight(), original)).isLessThan(1e-6f);
        }
    }

    @Test
    void adaptersCanBeDisabledAndSeeTheTrainingFlag() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model("qwen2"), m)) {
            NDArray ids = Fixtures.ref("qwen2", "single.0.input_ids", m).expandDims(0);
            NDArray base = model.forward(ids, null, false);
            AtomicInteger trainingCalls = new AtomicInteger();
            for (Linear l : model.linears().values()) {
                if (l.name().endsWith("mlp.up_proj") || l.name().endsWith("self_attn.q_proj")) {
                    l.setAdapter((layer, x, training) -> {
                        if (training) {
                            trainingCalls.incrementAndGet();
                        }
                        // a constant shift of every output, in fp64 to check the cast to the output dtype
                        return x.getManager().full(new Shape(layer.outFeatures()), 0.01f).toType(DataType.FLOAT64, false);
                    });
                }
            }
            NDArray shifted = model.forward(ids, null, true);
            assertThat(trainingCalls.get()).isEqualTo(4);
            assertThat(Fixtures.maxAbsDiff(shifted, base)).isGreaterThan(1e-4f);
            model.setAdaptersEnabled(false);
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, null, true), base)).isEqualTo(0f);
            assertThat(trainingCalls.get()).isEqualTo(4);
            model.setAdaptersEnabled(true);
            assertThat(Fixtures.maxAbsDiff(model.forward(ids, null, false), shifted)).isLessThan(1e-6f);
            assertThat(model.linear("model.layers.0.mlp.up_proj").toString()).contains("adapter");
            assertThatThrownBy(() -> model.linear("model.layers.0.mlp.up")).hasMessageContaining("mlp.{gate,up,down}_proj");
        }
    }
}
