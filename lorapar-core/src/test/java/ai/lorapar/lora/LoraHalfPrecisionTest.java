package ai.lorapar.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * With fp16 base weights (the compute dtype of engines without bf16) the LoRA parameters stay fp32,
 * the adapter term is computed in fp32, and the residual/merge updates of the fp16 weights are
 * rounded once.
 */
class LoraHalfPrecisionTest {
    @Test
    void fp16BaseWithFp32Adapters() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel half = DecoderModel.load(LoraFixtures.llama(), m, DataType.FLOAT16);
                DecoderModel full = LoraFixtures.loadLlama(m)) {
            NDArray ids = LoraFixtures.ref("input_ids", m);
            NDArray mask = LoraFixtures.ref("attention_mask", m);
            NDArray base = half.forward(ids, mask, false);
            Map<String, NDArray> w0 = new LinkedHashMap<>();
            for (Linear l : half.linears().values()) {
                NDArray c = l.weight().duplicate();
                c.attach(m);
                w0.put(l.name(), c);
            }
            LoraConfig c = LoraConfig.builder().init(LoraInit.PISSA).rank(4).alpha(8).seed(2).build();
            try (LoraModel lora = LoraModel.apply(half, c, m); LoraModel ref = LoraModel.apply(full, c, m)) {
                for (NDArray p : lora.parameters().values()) {
                    assertThat(p.getDataType()).isEqualTo(DataType.FLOAT32);
                }
                assertThat(half.linear("model.layers.0.self_attn.q_proj").weight().getDataType())
                        .isEqualTo(DataType.FLOAT16);
                // at init: the fp16 base model, up to fp16 rounding of W_res
                assertThat(LoraFixtures.maxAbsDiff(half.forward(ids, mask, false), base)).isLessThan(2e-2f);
                PeftExportForDeviceTest.perturb(lora, m, 6);
                PeftExportForDeviceTest.perturb(ref, m, 6);
                NDArray adapted = half.forward(ids, mask, false);
                assertThat(LoraFixtures.maxAbsDiff(adapted, full.forward(ids, mask, false))).isLessThan(5e-2f);
                lora.merge();
                assertThat(LoraFixtures.maxAbsDiff(half.forward(ids, mask, false), adapted)).isLessThan(5e-2f);
                lora.unmerge();
            }
            for (Linear l : half.linears().values()) {
                // back to W within a few fp16 ulps (|W| < 1 here)
                assertThat(LoraFixtures.maxAbsDiff(l.weight(), w0.get(l.name()))).as(l.name()).isLessThan(4e-3f);
            }
        }
    }
}
