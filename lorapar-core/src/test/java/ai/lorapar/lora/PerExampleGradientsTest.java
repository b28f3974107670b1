package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.train.Gradients;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** One batched backward pass through per-row copies gives each row the gradient of its own loss. */
class PerExampleGradientsTest {
    private static final long[] IDS = {256, 72, 105, 33, 10, 65, 66, 257, 256, 50, 43, 50, 61, 52, 10, 257};
    private static final long[] MASK = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    private static final long[] LABELS = {-100, -100, -100, -100, 10, 65, 66, 257, -100, -100, -100, -100, -100, 52, 10,
        257};

    @Test
    void rowGradientsAreEachRowsOwnGradient() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(3).alpha(12).gaussianStd(0.05).build(),
                        m)) {
            NDArray ids = m.create(IDS, new Shape(2, 8));
            NDArray mask = m.create(MASK, new Shape(2, 8));
            NDArray labels = m.create(LABELS, new Shape(2, 8));
            NDArray before = model.forward(ids, mask, false);
            Map<String, NDArray> rows = new LinkedHashMap<>();
            try (PerExampleGradients pe = lora.perExampleGradients(2)) {
                assertThatThrownBy(() -> lora.perExampleGradients(2)).hasMessageContaining("already open");
                assertThatThrownBy(lora::merge).hasMessageContaining("per-example");
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray logits = model.forward(ids, mask, false);
                    assertThat(LoraFixtures.maxAbsDiff(logits, before)).isLessThan(1e-5f);
                    gc.backward(CausalLmLoss.perExample(logits, labels).sum());
                }
                for (Map.Entry<String, NDArray> e : pe.gradients().entrySet()) {
                    NDArray kept = e.getValue().duplicate(); // the gradients go when pe closes
                    kept.attach(m);
                    rows.put(e.getKey(), kept);
                }
            }
            assertThat(rows.keySet()).containsExactlyElementsOf(lora.parameters().keySet());
            assertThat(rows.get("model.layers.0.self_attn.q_proj.lora_A").getShape()).isEqualTo(new Shape(2, 3, 64));
            for (int b = 0; b < 2; b++) {
                Gradients.zero(lora.parameters().values()); // one row through the shared A and B, as the reference does
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDIndex row = new NDIndex("{}:{}", b, b + 1);
                    gc.backward(CausalLmLoss.mean(model.forward(ids.get(row), mask.get(row), false), labels.get(row)));
                }
                for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                    NDArray own = e.getValue().getGradient();
                    NDArray batched = rows.get(e.getKey()).get(b);
                    float scale = LoraFixtures.maxAbs(own);
                    assertThat(scale).as(e.getKey()).isGreaterThan(0f);
                    assertThat(LoraFixtures.maxAbsDiff(batched, own)).as(e.getKey() + " row " + b)
                            .isLessThanOrEqualTo(1e-5f * scale);
                }
            }
            // closed: the shared A and B are used again, and they get the gradients
            Gradients.zero(lora.parameters().values());
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray logits = model.forward(ids, mask, false);
                assertThat(LoraFixtures.maxAbsDiff(logits, before)).isZero();
                gc.backward(CausalLmLoss.mean(logits, labels));
            }
            assertThat(LoraFixtures.maxAbs(lora.parameters().values().iterator().next().getGradient())).isGreaterThan(0f);
        }
    }

    @Test
    void aBatchOfAnotherSizeOrUnsuitableAdaptersAreRefused() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(2).build(), m)) {
            NDArray ids = m.create(IDS, new Shape(2, 8));
            try (PerExampleGradients pe = lora.perExampleGradients(3)) {
                assertThatThrownBy(() -> model.forward(ids, null, false))
                        .isInstanceOf(IllegalStateException.class)
                        .hasMessageContaining("open for 3 rows");
            }
            assertThatThrownBy(() -> lora.perExampleGradients(0)).isInstanceOf(IllegalArgumentException.class);
            lora.setEnabled(false);
            assertThatThrownBy(() -> lora.perExampleGradients(2)).hasMessageContaining("disabled");
            lora.setEnabled(true);
            lora.merge();
            assertThatThrownBy(() -> lora.perExampleGradients(2)).hasMessageContaining("merged");
        }
    }
}
