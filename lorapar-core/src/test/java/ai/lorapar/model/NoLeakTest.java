package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Forward passes, losses and generation leave no array behind in the model's or the caller's manager. */
class NoLeakTest {
    @Test
    void noArraysAccumulate() throws Exception {
        try (NDManager root = NDManager.newBaseManager(Device.cpu()); DecoderModel model = DecoderModel.load(Fixtures.model("qwen2"), root);
                NDManager caller = root.newSubManager()) {
            NDArray ids = Fixtures.ref("qwen2", "loss.input_ids", caller);
            NDArray mask = Fixtures.ref("qwen2", "loss.attention_mask", caller);
            NDArray labels = Fixtures.ref("qwen2", "loss.labels", caller);
            int modelArrays = model.manager().getManagedArrays().size();
            int callerArrays = caller.getManagedArrays().size();
            for (int i = 0; i < 3; i++) {
                try (NDArray logits = model.forward(ids, mask, true); NDArray loss = CausalLmLoss.perExample(logits, labels)) {
                    assertThat(loss.getShape().get(0)).isEqualTo(3);
                }
                new Generator(model).generate(List.of(new long[] {256, 1, 2}, new long[] {256, 5}),
                        SamplingConfig.sample(4, 0.8, i).withTopK(20).withTopP(0.9));
            }
            // decode steps leave nothing behind in the KV cache's manager either
            try (KvCache cache = model.newCache(caller, 2, 12)) {
                NDArray prompt = caller.create(new long[] {256, 1, 2, 3, 256, 5, 6, 7}, new ai.djl.ndarray.types.Shape(2, 4));
                model.forward(prompt, null, cache, false, true).close();
                NDArray step = caller.create(new long[] {9, 10}, new ai.djl.ndarray.types.Shape(2, 1));
                model.forward(step, null, cache, false, true).close();
                int cacheArrays = cache.arrayCount();
                for (int i = 0; i < 4; i++) {
                    model.forward(step, null, cache, false, true).close();
                }
                assertThat(cache.arrayCount()).isEqualTo(cacheArrays);
                prompt.close();
                step.close();
            }
            assertThat(model.manager().getManagedArrays()).hasSize(modelArrays);
            assertThat(caller.getManagedArrays()).hasSize(callerArrays);
        }
    }
}
