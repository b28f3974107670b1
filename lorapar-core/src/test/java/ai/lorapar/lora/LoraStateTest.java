package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.model.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link LoraModel#saveState} / {@link LoraModel#loadState}: A, B (and PiSSA's A₀, B₀) come back bit for
 * bit into the same arrays; a file of other adapters is refused before anything changes.
 */
class LoraStateTest {
    @TempDir
    Path tmp;

    private static LoraConfig cfg(LoraInit init, int rank, long seed) {
        return LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(rank).alpha(2 * rank).init(init).seed(seed).build();
    }

    @Test
    void stateRoundTripsExactlyIntoTheSameArrays() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            Path file = tmp.resolve("state.safetensors");
            float[] a;
            float[] b;
            String name = "model.layers.1.mlp.up_proj";
            try (LoraModel lora = LoraModel.apply(model, cfg(LoraInit.GAUSSIAN, 4, 1), m)) {
                lora.parameters().get(name + ".lora_B").muli(3f).addi(0.125f); // as if trained
                a = lora.parameters().get(name + ".lora_A").toFloatArray();
                b = lora.parameters().get(name + ".lora_B").toFloatArray();
                lora.saveState(file);
            }
            try (LoraModel lora = LoraModel.apply(model, cfg(LoraInit.GAUSSIAN, 4, 99), m)) {
                NDArray bArray = lora.parameters().get(name + ".lora_B");
                lora.loadState(file);
                assertThat(lora.parameters().get(name + ".lora_B")).isSameAs(bArray);
                assertThat(bArray.hasGradient()).isTrue();
                assertThat(lora.parameters().get(name + ".lora_A").toFloatArray()).containsExactly(a);
                assertThat(bArray.toFloatArray()).containsExactly(b);
            }
            try (LoraModel lora = LoraModel.apply(model, cfg(LoraInit.GAUSSIAN, 2, 1), m)) {
                assertThatThrownBy(() -> lora.loadState(file)).isInstanceOf(AdapterFormatException.class)
                        .hasMessageContaining("model.layers.0.self_attn.q_proj.lora_A").hasMessageContaining("shape");
            }
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKV).rank(4).build(),
                    m)) {
                assertThatThrownBy(() -> lora.loadState(file)).isInstanceOf(AdapterFormatException.class)
                        .hasMessageContaining("belongs to no adapter");
            }
            try (LoraModel lora = LoraModel.apply(model, cfg(LoraInit.PISSA, 4, 1), m)) {
                assertThatThrownBy(() -> lora.loadState(file)).isInstanceOf(AdapterFormatException.class)
                        .hasMessageContaining("has no lora_A0/lora_B0");
            }
        }
    }

    @Test
    void pissaStateKeepsTheInitialFactorsAndTheResidualBase() throws Exception {
        String name = "model.layers.0.self_attn.k_proj";
        Path file = tmp.resolve("pissa.safetensors");
        float[] residual;
        float[] a0;
        float[] original;
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, cfg(LoraInit.PISSA, 2, 4), m)) {
            lora.parameters().get(name + ".lora_A").addi(0.01f);
            residual = model.linear(name).weight().toFloatArray();
            a0 = lora.layers().get(name).initialA().toFloatArray();
            lora.saveState(file);
        }
        // a fresh model with the same init: A0/B0 equal, the residual base stays exactly as apply() made it
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, cfg(LoraInit.PISSA, 2, 4), m)) {
            lora.loadState(file);
            assertThat(model.linear(name).weight().toFloatArray()).containsExactly(residual);
            assertThat(lora.layers().get(name).initialA().toFloatArray()).containsExactly(a0);
        }
        // another sketch (other A0/B0 at first): loading moves the residual base with the file's A0/B0
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            original = model.linear(name).weight().toFloatArray();
            try (LoraModel lora = LoraModel.apply(model, cfg(LoraInit.PISSA, 2, 5).toBuilder().svd(0, 0).build(), m)) {
                lora.loadState(file);
                assertThat(lora.layers().get(name).initialA().toFloatArray()).containsExactly(a0);
                float[] w = model.linear(name).weight().toFloatArray();
                for (int i = 0; i < w.length; i++) {
                    assertThat(w[i]).isCloseTo(residual[i], org.assertj.core.data.Offset.offset(1e-5f));
                }
            }
            float[] after = model.linear(name).weight().toFloatArray(); // closing puts the original base back
            for (int i = 0; i < after.length; i++) {
                assertThat(after[i]).isCloseTo(original[i], org.assertj.core.data.Offset.offset(1e-5f));
            }
        }
    }

    /**
     * {@link LoraModel#saveNative} / {@link LoraModel#loadNative}: PiSSA adapters come back at their rank r
     * with A, B, A₀, B₀ and the residual base bit for bit (PEFT's files in the same folder hold the rank-2r
     * export, which {@link LoraModel#load} reads as a plain LoRA); the dropout may change, the rank may not;
     * a broken config names the file and key.
     */
    @Test
    void theNativeFolderMakesPissaAdaptersAgainAtTheirRank() throws Exception {
        String name = "model.layers.1.self_attn.v_proj";
        Path folder = tmp.resolve("adapter_init");
        float[] a;
        float[] a0;
        float[] residual;
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, cfg(LoraInit.PISSA, 2, 4).toBuilder().svd(0, 0).build(), m)) {
            lora.parameters().get(name + ".lora_A").addi(0.01f); // as if trained
            a = lora.parameters().get(name + ".lora_A").toFloatArray();
            a0 = lora.layers().get(name).initialA().toFloatArray();
            residual = model.linear(name).weight().toFloatArray();
            lora.save(folder);
            lora.saveNative(folder);
        }
        assertThat(LoraModel.isNative(folder)).isTrue();
        assertThat(LoraModel.isNative(tmp)).isFalse();
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            try (LoraModel peft = LoraModel.load(folder, model, m)) {
                assertThat(peft.config().rank()).as("PEFT's export of PiSSA r=2").isEqualTo(4);
            }
            try (LoraModel lora = LoraModel.loadNative(folder, model, m, c -> c.toBuilder().dropout(0.1).build())) {
                assertThat(lora.config().rank()).isEqualTo(2);
                assertThat(lora.config().init()).isEqualTo(LoraInit.PISSA);
                assertThat(lora.config().dropout()).isEqualTo(0.1);
                assertThat(lora.parameters().get(name + ".lora_A").toFloatArray()).containsExactly(a);
                assertThat(lora.layers().get(name).initialA().toFloatArray()).containsExactly(a0);
                assertThat(model.linear(name).weight().toFloatArray()).containsExactly(residual);
            }
            assertThatThrownBy(() -> LoraModel.loadNative(folder, model, m, c -> c.toBuilder().rank(4).build()))
                    .isInstanceOf(AdapterFormatException.class).hasMessageContaining("cannot change");
            java.nio.file.Files.writeString(folder.resolve(LoraModel.NATIVE_CONFIG),
                    "{\"format\": \"lorapar-lora-config\", \"target_modules\": [\"q_proj\"]}");
            assertThatThrownBy(() -> LoraModel.loadNative(folder, model, m, null))
                    .isInstanceOf(AdapterFormatException.class).hasMessageContaining(LoraModel.NATIVE_CONFIG)
                    .hasMessageContaining("\"r\"");
        }
    }

    @Test
    void aFileOfAnotherKindIsRefused() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, cfg(LoraInit.GAUSSIAN, 2, 1), m)) {
            Path file = tmp.resolve("x.safetensors");
            ai.lorapar.io.SafetensorsWriter.write(file, java.util.Map.of("x", m.zeros(new ai.djl.ndarray.types.Shape(1),
                    DataType.FLOAT32)), java.util.Map.of("format", "other"));
            assertThatThrownBy(() -> lora.loadState(file)).isInstanceOf(AdapterFormatException.class)
                    .hasMessageContaining("not a LoRA state file");
        }
    }
}
