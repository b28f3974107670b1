package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import ai.lorapar.train.Gradients;
import ai.lorapar.train.MaskedAdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Parameters, enable/disable, merge/unmerge, dropout, masked updates and the file format's edges. */
class LoraModelTest {
    @TempDir
    Path tmp;

    private static NDArray ids(NDManager m) {
        return LoraFixtures.ref("input_ids", m);
    }

    private static NDArray mask(NDManager m) {
        return LoraFixtures.ref("attention_mask", m);
    }

    @Test
    void parametersAreNamedFp32LeavesOfTheRightShapes() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(3)
                        .build(), m)) {
            assertThat(lora.modules()).hasSize(14).startsWith("model.layers.0.self_attn.q_proj");
            assertThat(lora.parameters()).hasSize(28);
            assertThat(lora.parameters().keySet()).startsWith("model.layers.0.mlp.down_proj.lora_A",
                    "model.layers.0.mlp.down_proj.lora_B");
            for (String module : lora.modules()) {
                Linear l = model.linear(module);
                NDArray a = lora.parameters().get(module + ".lora_A");
                NDArray b = lora.parameters().get(module + ".lora_B");
                assertThat(a.getShape()).isEqualTo(new Shape(3, l.inFeatures()));
                assertThat(b.getShape()).isEqualTo(new Shape(l.outFeatures(), 3));
                assertThat(a.getDataType()).isEqualTo(DataType.FLOAT32);
                assertThat(a.hasGradient()).isTrue();
                assertThat(b.hasGradient()).isTrue();
                assertThat(l.adapter()).isSameAs(lora.layers().get(module));
                assertThat(LoraTensorName.parse(module + ".lora_B").matrix()).isEqualTo("B");
            }
            assertThat(lora.parameterCount()).isEqualTo(2L * 3 * (64 + 64) + 2L * 2 * 3 * (64 + 32)
                    + 2L * 3 * (64 + 64) + 2L * 2 * 3 * (64 + 128) + 2L * 3 * (128 + 64));
        }
        // closing removed the adapters: a second LoraModel can be applied to a fresh model
    }

    @Test
    void disabledIsTheBaseModelAndMergeEqualsTheAdapterPath() throws Exception {
        for (LoraInit init : LoraInit.values()) {
            try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
                NDArray base = model.forward(ids(m), mask(m), false);
                Map<String, NDArray> w0 = new LinkedHashMap<>();
                for (Linear l : model.linears().values()) {
                    NDArray c = l.weight().duplicate();
                    c.attach(m);
                    w0.put(l.name(), c);
                }
                try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(4).alpha(8).init(init).seed(1)
                        .build(), m)) {
                    PeftExportForDeviceTest.perturb(lora, m, 3);
                    NDArray adapted = model.forward(ids(m), mask(m), false);
                    assertThat(LoraFixtures.maxAbsDiff(adapted, base)).as(init + " moved").isGreaterThan(1e-2f);

                    lora.setEnabled(false);
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), base)).as(init + " disabled")
                            .isLessThan(1e-4f);
                    assertThatThrownBy(lora::merge).isInstanceOf(IllegalStateException.class);
                    lora.setEnabled(true);
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), adapted)).isZero();

                    lora.merge();
                    assertThat(lora.isMerged()).isTrue();
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), adapted)).as(init + " merged")
                            .isLessThan(1e-4f);
                    assertThatThrownBy(() -> lora.setEnabled(false)).isInstanceOf(IllegalStateException.class)
                            .hasMessageContaining("unmerge");
                    lora.unmerge();
                    assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), adapted)).as(init + " unmerged")
                            .isLessThan(1e-4f);
                }
                for (Linear l : model.linears().values()) {
                    assertThat(l.adapter()).isNull();
                    assertThat(LoraFixtures.maxAbsDiff(l.weight(), w0.get(l.name()))).as(l.name()).isLessThan(1e-5f);
                }
            }
        }
    }

    @Test
    void closingMergedAdaptersKeepsTheFineTunedModel() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            NDArray adapted;
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().init(LoraInit.PISSA).rank(4).build(), m)) {
                PeftExportForDeviceTest.perturb(lora, m, 4);
                adapted = model.forward(ids(m), mask(m), false);
                lora.merge();
            }
            assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), adapted)).isLessThan(1e-4f);
        }
    }

    @Test
    void dropoutOnlyInTrainingSeededAndReproducible() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            LoraConfig c = LoraConfig.builder().rank(4).alpha(8).dropout(0.3).seed(8).build();
            try (LoraModel lora = LoraModel.apply(model, c, m)) {
                PeftExportForDeviceTest.perturb(lora, m, 5);
                NDArray eval = model.forward(ids(m), mask(m), false);
                assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), false), eval)).isZero();
                lora.reseedDropout(99);
                NDArray t1 = model.forward(ids(m), mask(m), true);
                NDArray t2 = model.forward(ids(m), mask(m), true);
                assertThat(LoraFixtures.maxAbsDiff(t1, eval)).isGreaterThan(1e-3f);
                assertThat(LoraFixtures.maxAbsDiff(t1, t2)).as("a new mask per pass").isGreaterThan(1e-3f);
                m.getEngine().setRandomSeed(12345); // the global generator does not matter
                lora.reseedDropout(99);
                assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), true), t1)).isZero();
                assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), true), t2)).isZero();
            }
            try (LoraModel lora = LoraModel.apply(model, c.toBuilder().dropout(0).build(), m)) {
                PeftExportForDeviceTest.perturb(lora, m, 5);
                assertThat(LoraFixtures.maxAbsDiff(model.forward(ids(m), mask(m), true),
                        model.forward(ids(m), mask(m), false))).isZero();
            }
        }
    }

    @Test
    void dropoutMasksKeepTheRightShareAndScale() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            Shape shape = new Shape(4, 100, 250);
            NDArray k1 = DropoutMasks.scaledKeepMask(m, shape, 0.3, DropoutMasks.mixKey(1, 0, 0));
            NDArray k2 = DropoutMasks.scaledKeepMask(m, shape, 0.3, DropoutMasks.mixKey(1, 0, 1));
            assertThat(k1.getShape()).isEqualTo(shape);
            float[] v = k1.toFloatArray();
            long kept = 0;
            for (float x : v) {
                assertThat(x == 0f || Math.abs(x - 1 / 0.7f) < 1e-6f).isTrue();
                kept += x != 0f ? 1 : 0;
            }
            assertThat((double) kept / v.length).isCloseTo(0.7, within(0.005));
            // neighbouring elements and consecutive calls are not correlated
            NDArray both = k1.gt(0).logicalAnd(k2.gt(0)).toType(DataType.FLOAT32, false).mean();
            assertThat((double) both.getFloat()).isCloseTo(0.49, within(0.006));
            NDArray flat = k1.gt(0).toType(DataType.FLOAT32, false).reshape(-1);
            NDArray pairs = flat.get("1:").mul(flat.get(":-1")).mean();
            assertThat((double) pairs.getFloat()).isCloseTo(0.49, within(0.006));
        }
    }

    @Test
    void masksFromThePartitionGateTheOptimizer() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(4).alpha(8).dropout(0).build(), m)) {
            Map<String, NDArray> masks = new LinkedHashMap<>();
            Map<String, NDArray> before = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                masks.put(e.getKey(), m.randomUniform(0f, 1f, e.getValue().getShape()).lt(0.3f));
                NDArray c = e.getValue().duplicate();
                c.attach(m);
                before.put(e.getKey(), c);
            }
            try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(1e-2).weightDecay(0.1).build(lora.parameters(),
                    masks)) {
                Gradients.zero(lora.parameters().values());
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    gc.backward(CausalLmLoss.mean(model.forward(ids(m), mask(m), true), LoraFixtures.ref("labels", m)));
                }
                opt.step();
            }
            for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                NDArray frozen = masks.get(e.getKey()).logicalNot();
                NDArray changed = e.getValue().neq(before.get(e.getKey()));
                assertThat(changed.logicalAnd(frozen).any().getBoolean()).as(e.getKey() + " frozen moved").isFalse();
                assertThat(changed.any().getBoolean()).as(e.getKey() + " trainable moved").isTrue();
            }
        }
    }

    @Test
    void configAndTargetErrorsNameTheProblem() throws Exception {
        assertThatThrownBy(() -> LoraConfig.builder().rank(0).build()).hasMessageContaining("'rank'");
        assertThatThrownBy(() -> LoraConfig.builder().alpha(-1).build()).hasMessageContaining("'alpha'");
        assertThatThrownBy(() -> LoraConfig.builder().dropout(1).build()).hasMessageContaining("'dropout'");
        assertThatThrownBy(() -> LoraConfig.builder().gaussianStd(0).build()).hasMessageContaining("'gaussianStd'");
        assertThatThrownBy(() -> LoraTargets.modules()).hasMessageContaining("empty");
        assertThat(LoraTargets.modules("up_proj", "gate_proj", "down_proj")).isSameAs(LoraTargets.GUD);
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            assertThat(LoraTargets.QKV.resolve(model)).hasSize(6);
            assertThat(LoraTargets.modules("model.layers.1.mlp.up_proj", "k_proj").resolve(model)).containsExactly(
                    "model.layers.0.self_attn.k_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.mlp.up_proj");
            assertThat(LoraTargets.regex("model\\.layers\\.1\\..*_proj").resolve(model)).hasSize(7);
            assertThatThrownBy(() -> LoraTargets.modules("q_proj", "qkv_proj").resolve(model))
                    .hasMessageContaining("'qkv_proj' matches no linear layer");
            assertThatThrownBy(() -> LoraTargets.modules("lm_head").resolve(model)).hasMessageContaining("lm_head");
            assertThatThrownBy(() -> LoraModel.apply(model, LoraConfig.builder().init(LoraInit.PISSA).rank(65).build(), m))
                    .hasMessageContaining("exceeds min(out, in)").hasMessageContaining("model.layers.0.self_attn.q_proj");
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKV).build(), m)) {
                assertThatThrownBy(() -> LoraModel.apply(model, LoraConfig.builder().build(), m))
                        .hasMessageContaining("already has an adapter");
            }
        }
    }

    @Test
    void loadingChecksNamesShapesAndConfigKeys() throws Exception {
        Path good = tmp.resolve("good");
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKV).rank(4).build(), m)) {
                lora.save(good);
            }
            String config = Files.readString(good.resolve("adapter_config.json"));
            // a model with other sizes: q_proj's A has the wrong shape
            Path wrongRank = copy(good, "wrongRank");
            Files.writeString(wrongRank.resolve("adapter_config.json"), config.replace("\"r\": 4", "\"r\": 5"));
            assertThatThrownBy(() -> LoraModel.load(wrongRank, model, m)).isInstanceOf(AdapterFormatException.class)
                    .hasMessageContaining("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape (4, 64)")
                    .hasMessageContaining("expected (5, 64)");
            Path more = copy(good, "moreTargets");
            Files.writeString(more.resolve("adapter_config.json"), config.replace("\"v_proj\"", "\"v_proj\", \"o_proj\""));
            assertThatThrownBy(() -> LoraModel.load(more, model, m)).isInstanceOf(AdapterFormatException.class)
                    .hasMessageContaining("missing tensor 'base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight'");
            Path fewer = copy(good, "fewerTargets");
            Files.writeString(fewer.resolve("adapter_config.json"), config.replace(",\n    \"v_proj\"", ""));
            assertThatThrownBy(() -> LoraModel.load(fewer, model, m)).isInstanceOf(AdapterFormatException.class)
                    .hasMessageContaining("tensor 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight' belongs to no target");
            Path dora = copy(good, "dora");
            Files.writeString(dora.resolve("adapter_config.json"), config.replace("\"use_dora\": false", "\"use_dora\": true"));
            assertThatThrownBy(() -> LoraModel.load(dora, model, m)).hasMessageContaining("use_dora");
            Path ia3 = copy(good, "ia3");
            Files.writeString(ia3.resolve("adapter_config.json"), config.replace("\"LORA\"", "\"IA3\""));
            assertThatThrownBy(() -> LoraModel.load(ia3, model, m)).hasMessageContaining("peft_type is 'IA3'");
            assertThatThrownBy(() -> LoraModel.load(tmp.resolve("nothing"), model, m))
                    .hasMessageContaining("no adapter_config.json");
            // nothing is left installed after a failed load
            for (Linear l : model.linears().values()) {
                assertThat(l.adapter()).isNull();
            }
            try (LoraModel ok = LoraModel.load(good, model, m)) {
                assertThat(ok.modules()).hasSize(6);
            }
        }
    }

    /** Variants PEFT saves in a LoRA config that used to load as a plain LoRA; PEFT's all-linear shorthand. */
    @Test
    void variantsTheLoaderDoesNotComputeAreRefusedAndAllLinearWorks() throws Exception {
        Path good = tmp.resolve("variants");
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m)) {
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(2)
                    .init(LoraInit.GAUSSIAN).build(), m)) {
                lora.save(good);
            }
            String config = Files.readString(good.resolve("adapter_config.json"));
            String[][] refused = {
                {"\"use_qalora\": true, \"qalora_group_size\": 16", "use_qalora is true"},
                {"\"alora_invocation_tokens\": [27, 882]", "alora_invocation_tokens is set ([27,882])"},
                {"\"arrow_config\": {\"top_k\": 3}", "arrow_config is set"},
            };
            for (String[] r : refused) {
                Path p = copy(good, "variant" + r[1].hashCode());
                Files.writeString(p.resolve("adapter_config.json"), config.replace("\"peft_type\"", r[0] + ",\n  \"peft_type\""));
                assertThatThrownBy(() -> LoraModel.load(p, model, m)).as(r[0]).isInstanceOf(AdapterFormatException.class)
                        .hasMessageContaining("adapter_config.json").hasMessageContaining(r[1])
                        .hasMessageContaining("not supported");
            }
            // off or empty is a plain LoRA
            Path off = copy(good, "variantsOff");
            Files.writeString(off.resolve("adapter_config.json"), config.replace("\"peft_type\"",
                    "\"use_qalora\": false, \"alora_invocation_tokens\": null, \"arrow_config\": null,\n  \"peft_type\""));
            try (LoraModel ok = LoraModel.load(off, model, m)) {
                assertThat(ok.modules()).hasSize(14);
            }
            // a repeated key is an error, not the last value
            Path twice = copy(good, "twice");
            Files.writeString(twice.resolve("adapter_config.json"), config.replace("\"r\": 2,", "\"r\": 2, \"r\": 4,"));
            assertThatThrownBy(() -> LoraModel.load(twice, model, m)).hasMessageContaining("duplicate key \"r\"");
            // PEFT's "all-linear": every linear layer but the output layer
            Path allLinear = copy(good, "allLinear");
            String list = config.substring(config.indexOf("\"target_modules\""), config.indexOf("]", config.indexOf(
                    "\"target_modules\"")) + 1);
            Files.writeString(allLinear.resolve("adapter_config.json"), config.replace(list,
                    "\"target_modules\": \"all-linear\""));
            try (LoraModel ok = LoraModel.load(allLinear, model, m)) {
                assertThat(ok.config().targets()).isEqualTo(LoraTargets.QKVOGUD);
                assertThat(ok.modules()).hasSize(14).doesNotContain("lm_head");
            }
        }
    }

    @Test
    void saveWritesBothFilesAndLeavesNoTemporaries() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); DecoderModel model = LoraFixtures.loadLlama(m);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.GUD).rank(2).alpha(5)
                        .baseModelNameOrPath("meta-llama/Llama-2-7b-hf").build(), m)) {
            Path dir = tmp.resolve("out").resolve("adapter");
            lora.save(dir);
            PeftExportForDeviceTest.perturb(lora, m, 1);
            lora.save(dir); // over an existing folder
            try (Stream<Path> s = Files.list(dir)) {
                assertThat(s.map(p -> p.getFileName().toString()).sorted().toList())
                        .containsExactly("adapter_config.json", "adapter_model.safetensors");
            }
            try (Stream<Path> s = Files.list(dir.getParent())) {
                assertThat(s.map(p -> p.getFileName().toString()).toList()).containsExactly("adapter");
            }
            String json = Files.readString(dir.resolve("adapter_config.json"));
            assertThat(json).contains("\"peft_type\": \"LORA\"", "\"task_type\": \"CAUSAL_LM\"", "\"r\": 2",
                    "\"lora_alpha\": 5", "\"bias\": \"none\"", "\"lora_dropout\": 0.05",
                    "\"base_model_name_or_path\": \"meta-llama/Llama-2-7b-hf\"", "\"gate_proj\"");
            try (ai.lorapar.io.SafetensorsFile f = ai.lorapar.io.SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
                assertThat(f.names()).hasSize(12).contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
                assertThat(f.metadata()).containsEntry("format", "pt");
                NDArray saved = f.load("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", m);
                assertThat(LoraFixtures.maxAbsDiff(saved, lora.parameters().get("model.layers.0.mlp.up_proj.lora_A"))).isZero();
            }
        }
    }

    private Path copy(Path from, String name) throws Exception {
        Path to = tmp.resolve(name);
        Files.createDirectories(to);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors")) {
            Files.copy(from.resolve(f), to.resolve(f));
        }
        return to;
    }
}
