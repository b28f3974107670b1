package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.train.Gradients;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Training passes with dropout, disabled passes, merge/unmerge and saving leave no array behind. */
class LoraNoLeakTest {
    @TempDir
    Path tmp;

    @Test
    void noArraysAccumulate() throws Exception {
        try (NDManager root = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(root);
                NDManager caller = root.newSubManager();
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().init(LoraInit.PISSA).rank(4).dropout(0.1)
                        .build(), root)) {
            NDArray ids = LoraFixtures.ref("input_ids", caller);
            NDArray mask = LoraFixtures.ref("attention_mask", caller);
            NDArray labels = LoraFixtures.ref("labels", caller);
            int modelArrays = model.manager().getManagedArrays().size();
            int callerArrays = caller.getManagedArrays().size();
            int rootArrays = root.getManagedArrays().size();
            for (int i = 0; i < 3; i++) {
                Gradients.zero(lora.parameters().values());
                // backward() puts its seed gradient in the loss's manager: a step scope holds it
                try (NDManager step = caller.newSubManager();
                        GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray logits = model.forward(ids, mask, true);
                    logits.attach(step);
                    gc.backward(CausalLmLoss.mean(logits, labels));
                }
                lora.setEnabled(false);
                model.forward(ids, mask, false).close();
                lora.setEnabled(true);
                lora.merge();
                model.forward(ids, mask, false).close();
                lora.unmerge();
                lora.save(tmp.resolve("a" + i));
            }
            assertThat(model.manager().getManagedArrays()).hasSize(modelArrays);
            assertThat(caller.getManagedArrays()).hasSize(callerArrays);
            assertThat(root.getManagedArrays()).hasSize(rootArrays);
        }
    }
}
