package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link DecoderModel#forward} checks token ids and sequence length at the API boundary. */
class ForwardInputChecksTest {

    @Test
    void tokenIdsOutsideTheVocabularyAreNamedWithRowAndPosition() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model("llama"), m, DataType.FLOAT32)) {
            int vocab = model.config().vocabSize(); // 320
            NDArray tooLarge = m.create(new long[] {1, 2, 3, 4, 5, vocab + 4680}, new Shape(2, 3));
            assertThatThrownBy(() -> model.forward(tooLarge, null, false)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("inputIds[1, 2] = 5000").hasMessageContaining("vocab_size 320")
                    .hasMessageContaining("config.json");
            NDArray negative = m.create(new int[] {1, -1, 3}, new Shape(1, 3));
            assertThatThrownBy(() -> model.forward(negative, null, false))
                    .hasMessageContaining("inputIds[0, 1] = -1");
            NDArray mask = m.create(new long[] {0, 1, 1}, new Shape(1, 3));
            assertThatThrownBy(() -> model.forward(negative, mask, false)).hasMessageContaining("padded positions");
            // the prefill of a cache is checked too
            try (KvCache cache = model.newCache(m, 2, 8)) {
                assertThatThrownBy(() -> model.forward(tooLarge, null, cache, false, true))
                        .hasMessageContaining("inputIds[1, 2] = 5000");
            }
            NDArray edge = m.create(new long[] {0, vocab - 1}, new Shape(1, 2));
            assertThat(model.forward(edge, null, false).getShape()).isEqualTo(new Shape(1, 2, vocab));
        }
    }

    @Test
    void sequencesLongerThanMaxPositionsAreRefusedWithoutACacheAndGenerationStillWorks() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(Fixtures.model("llama"), m, DataType.FLOAT32)) {
            int max = model.config().maxPositions(); // 128
            long[] ids = new long[max + 1];
            Arrays.fill(ids, 7);
            NDArray tooLong = m.create(ids, new Shape(1, max + 1));
            assertThatThrownBy(() -> model.forward(tooLong, null, true)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("129 positions").hasMessageContaining("max_position_embeddings 128");
            NDArray fits = m.create(Arrays.copyOf(ids, max), new Shape(1, max));
            assertThat(model.forward(fits, null, false).getShape().get(1)).isEqualTo(max);
            // with a KV cache the generator may go past it (it warns): prompt + new tokens > 128
            GenerationResult r = new Generator(model).generate(List.of(Arrays.copyOf(ids, max - 2)),
                    SamplingConfig.greedy(5));
            assertThat(r.sequences().get(0).tokens()).hasSize(5);
        }
    }
}
