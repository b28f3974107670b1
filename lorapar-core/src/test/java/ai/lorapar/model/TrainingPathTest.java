package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.engine.TrainingOps;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraLayer;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The training-path switches on the CPU (stock DJL: no training natives), and LoRA options that are no-ops in fp32. */
class TrainingPathTest {
    @Test
    void autoUsesNoNativeOpOnTheCpuAndForcingOneNeedsTheEngine() {
        Engine engine = Engine.getInstance();
        // the defaults, whatever -D switches this JVM runs with
        String[] keys = {TrainingPath.ATTENTION, TrainingPath.LORA, TrainingPath.LORA_COMPUTE, TrainingPath.LEAN,
            TrainingPath.LOSS};
        Map<String, String> saved = new java.util.HashMap<>();
        for (String k : keys) {
            String v = System.getProperty(k);
            if (v != null) {
                saved.put(k, v);
                System.clearProperty(k);
            }
        }
        TrainingPath p;
        try {
            p = new TrainingPath(engine, Device.cpu());
        } finally {
            saved.forEach(System::setProperty);
        }
        assertThat(p.sdpa()).isFalse();
        assertThat(p.fusedLora()).isFalse();
        assertThat(p.lean()).isFalse();
        assertThat(p.fusedLoss()).isFalse();
        assertThat(p.loraFp32()).isTrue();
        // forcing is honoured only where the engine has the op
        assertThat(p.setSdpa(true)).isEqualTo(TrainingOps.has(engine, TrainingOps.ATTENTION));
        assertThat(p.setFusedLora(true)).isEqualTo(TrainingOps.has(engine, TrainingOps.LORA));
        assertThat(p.setLean(true)).isEqualTo(TrainingOps.has(engine, TrainingOps.NORM));
        assertThat(p.setFusedLoss(true)).isEqualTo(TrainingOps.has(engine, TrainingOps.LOSS));
    }

    @Test
    void aBadPropertyValueNamesTheProperty() {
        System.setProperty(TrainingPath.ATTENTION, "flash");
        try {
            assertThatThrownBy(() -> new TrainingPath(Engine.getInstance(), Device.cpu()))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(TrainingPath.ATTENTION + "=flash")
                    .hasMessageContaining("auto, sdpa or explicit");
        } finally {
            System.clearProperty(TrainingPath.ATTENTION);
        }
    }

    /** The LoRA product in the compute dtype is the fp32 product when the compute dtype is fp32: same logits and gradients. */
    @Test
    void loraInTheComputeDtypeIsANoOpInFp32() throws Exception {
        String name = "qwen2";
        LoraConfig config = LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(4).alpha(8).dropout(0.1)
                .init(LoraInit.GAUSSIAN).gaussianStd(0.05).seed(5).build();
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model(name), m, DataType.FLOAT32)) {
            NDArray ids = Fixtures.ref(name, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(name, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(name, "loss.labels", m);
            CausalLmObjectiveTest.Result fp32;
            try (LoraModel lora = LoraModel.apply(model, config, m)) {
                fp32 = CausalLmObjectiveTest.lossAndGrads(lora,
                        () -> CausalLmLoss.mean(model.forward(ids, mask, true), labels));
            }
            System.setProperty(LoraLayer.COMPUTE_PROPERTY, "compute");
            try (LoraModel lora = LoraModel.apply(model, config, m)) {
                CausalLmObjectiveTest.Result compute = CausalLmObjectiveTest.lossAndGrads(lora,
                        () -> CausalLmLoss.mean(model.forward(ids, mask, true), labels));
                assertThat(compute.loss()).isEqualTo(fp32.loss());
                for (Map.Entry<String, float[]> e : fp32.grads().entrySet()) {
                    assertThat(compute.grads().get(e.getKey())).as(e.getKey()).containsExactly(e.getValue());
                }
            } finally {
                System.clearProperty(LoraLayer.COMPUTE_PROPERTY);
            }
        }
    }
}
