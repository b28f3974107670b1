package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link LoraModel#disabled()}: the one switch to the base model (GRPO's reference policy). Inside the
 * scope the logits are the original model's for every initialisation (PiSSA and OLoRA included, whose
 * installed weights are the residual W − scaling·B₀·A₀); afterwards the adapters are as they were, also
 * after an exception.
 */
class LoraDisabledScopeTest {

    /** Device of the model (CPU; a GPU subclass may re-run on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    private static NDArray ids(NDManager m) {
        return LoraFixtures.ref("input_ids", m);
    }

    private static NDArray mask(NDManager m) {
        return LoraFixtures.ref("attention_mask", m);
    }

    @ParameterizedTest
    @EnumSource(LoraInit.class)
    void theScopeIsTheOriginalBaseModelAndRestoresTheAdapters(LoraInit init) throws Exception {
        try (NDManager m = NDManager.newBaseManager(device()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            NDArray base = model.forward(ids(m).toDevice(device(), false), mask(m).toDevice(device(), false), false);
            NDArray x = ids(m).toDevice(device(), false);
            NDArray mk = mask(m).toDevice(device(), false);
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(4).alpha(8).init(init).seed(1).build(),
                    m)) {
                PeftExportForDeviceTest.perturb(lora, m, 3); // trained adapters: the adapted model differs
                NDArray adapted = model.forward(x, mk, false);
                assertThat(LoraFixtures.maxAbsDiff(adapted, base)).as("%s adapted", init).isGreaterThan(1e-2f);

                try (LoraModel.Scope ref = lora.disabled()) {
                    assertThat(lora.isEnabled()).isFalse();
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, false), base)).as("%s reference", init)
                            .isLessThan(1e-4f);
                    // training passes (dropout on) of the reference are the base model too
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, true), base)).as("%s reference, training", init)
                            .isLessThan(1e-4f);
                }
                assertThat(lora.isEnabled()).isTrue();
                assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, false), adapted)).isZero();

                // an exception inside the scope still restores the adapters
                assertThatThrownBy(() -> {
                    try (LoraModel.Scope ref = lora.disabled()) {
                        throw new IllegalStateException("boom");
                    }
                }).hasMessage("boom");
                assertThat(lora.isEnabled()).isTrue();
                assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, false), adapted)).isZero();
            }
        }
    }

    /** The deprecated DecoderModel switch is not the base model for a residual init; the scope is. */
    @Test
    void theLayerSwitchLeavesPissasResidualWeights() throws Exception {
        try (NDManager m = NDManager.newBaseManager(device()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            NDArray x = ids(m).toDevice(device(), false);
            NDArray mk = mask(m).toDevice(device(), false);
            NDArray base = model.forward(x, mk, false);
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(4).alpha(8).init(LoraInit.PISSA)
                    .seed(1).build(), m)) {
                model.setAdaptersEnabled(false);
                assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, false), base)).as("residual model")
                        .isGreaterThan(1e-3f);
                model.setAdaptersEnabled(true);
                try (LoraModel.Scope ref = lora.disabled()) {
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(x, mk, false), base)).isLessThan(1e-4f);
                }
            }
        }
    }

    @Test
    void scopesNestAndRestoreThePreviousState() throws Exception {
        try (NDManager m = NDManager.newBaseManager(device()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(2).alpha(4).init(LoraInit.GAUSSIAN)
                        .build(), m)) {
            try (LoraModel.Scope outer = lora.disabled()) {
                try (LoraModel.Scope inner = lora.disabled()) {
                    assertThat(lora.isEnabled()).isFalse();
                }
                assertThat(lora.isEnabled()).as("still inside the outer scope").isFalse();
                outer.close();
                outer.close(); // idempotent
                assertThat(lora.isEnabled()).isTrue();
            }
            assertThat(lora.isEnabled()).isTrue();

            lora.setEnabled(false);
            try (LoraModel.Scope s = lora.disabled()) {
                assertThat(lora.isEnabled()).isFalse();
            }
            assertThat(lora.isEnabled()).as("was disabled before the scope").isFalse();
            lora.setEnabled(true);

            lora.merge();
            assertThatThrownBy(lora::disabled).isInstanceOf(IllegalStateException.class).hasMessageContaining("unmerge");
            assertThat(lora.isEnabled()).isTrue();
            lora.unmerge();
        }
    }
}
