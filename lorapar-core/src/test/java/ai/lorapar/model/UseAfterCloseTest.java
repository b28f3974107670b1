package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.importance.ImportanceAccumulator;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Using one of the library's objects after close() says which object is closed, instead of DJL's
 * "Native resource has been released already" (or a crash in native code).
 */
class UseAfterCloseTest {

    @Test
    void closedObjectsNameThemselves() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            DecoderModel model = DecoderModel.load(Fixtures.model("llama"), m, DataType.FLOAT32);
            NDArray ids = m.create(new long[] {1, 2, 3}, new Shape(1, 3));
            KvCache cache = model.newCache(m, 1, 8);
            cache.close();
            assertThatThrownBy(() -> model.forward(ids, null, cache, false, true))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("KvCache").hasMessageContaining("closed");
            LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(2).build(), m);
            lora.close();
            assertThatThrownBy(lora::parameters).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("LoraModel").hasMessageContaining("is closed");
            model.close();
            assertThatThrownBy(() -> model.forward(ids, null, false)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("DecoderModel").hasMessageContaining("config.json").hasMessageContaining("closed");
            assertThatThrownBy(() -> model.newCache(m, 1, 4)).hasMessageContaining("DecoderModel");

            TextTokenizer tk = TextTokenizer.load(Fixtures.root().resolve("byte-tokenizer"));
            tk.close();
            assertThatThrownBy(() -> tk.encode("hi")).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("TextTokenizer").hasMessageContaining("byte-tokenizer");

            SafetensorsFile f = SafetensorsFile.open(Fixtures.model("llama").resolve("model.safetensors"));
            f.close();
            assertThatThrownBy(() -> f.load("model.norm.weight", m)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("model.safetensors").hasMessageContaining("closed");

            NDArray w = m.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            ImportanceAccumulator acc = new ImportanceAccumulator(m);
            acc.add(Map.of("a.lora_A", w), Map.of("a.lora_A", w));
            ImportanceMap s1 = acc.result();
            ImportanceMap s2 = acc.result();
            acc.close();
            assertThatThrownBy(() -> acc.add(Map.of("a.lora_A", w), Map.of("a.lora_A", w)))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("ImportanceAccumulator is closed");
            SubregionPartition partition = SubregionPartition.builder().system1(s1).system2(s2).theta(0.9).build();
            StageMasks masks = partition.stageMasks();
            partition.close();
            assertThatThrownBy(partition::stageMasks).hasMessageContaining("SubregionPartition is closed");
            assertThatThrownBy(masks::stage1).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("StageMasks (importance) is closed");
            s1.close();
            assertThatThrownBy(() -> s1.get("a.lora_A")).hasMessageContaining("ImportanceMap (1 tensors) is closed");
            s2.close();
        }
    }
}
