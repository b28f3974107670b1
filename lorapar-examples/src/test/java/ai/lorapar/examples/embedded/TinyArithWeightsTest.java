package ai.lorapar.examples.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.examples.embedded.WordProblem.Kind;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.ModelConfig;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed weights of the embedded tiny model: they load, have {@link TinyModelConfig#DEFAULT}'s shape,
 * fit the size limit, are the ones {@code training.json} describes, and answer one-step items in both
 * formats' shapes under greedy decoding. (Accuracy itself is recorded in {@code training.json}, not asserted.)
 */
class TinyArithWeightsTest {

    /** The limit on the shipped safetensors. */
    private static final long MAX_BYTES = 10_000_000L;

    @TempDir
    Path dir;

    @Test
    void theCommittedWeightsMatchTheirRecordAndAnswerInBothFormats() throws Exception {
        assertThat(EmbeddedDefault.hasWeights()).as("model.safetensors is shipped").isTrue();
        Path folder = EmbeddedDefault.extractModel(dir.resolve("tiny-arith"));
        Path weights = folder.resolve("model.safetensors");
        assertThat(Files.size(weights)).isLessThanOrEqualTo(MAX_BYTES);

        JsonObject record = JsonParser.parseString(Files.readString(folder.resolve("training.json"))).getAsJsonObject();
        JsonObject file = record.getAsJsonObject("files").getAsJsonObject("model.safetensors");
        assertThat(file.get("bytes").getAsLong()).isEqualTo(Files.size(weights));
        assertThat(file.get("sha256").getAsString()).isEqualTo(TrainEmbeddedModel.sha256(weights));
        assertThat(record.get("program").getAsString()).isEqualTo(TrainEmbeddedModel.class.getName());
        assertThat(record.get("model").getAsString()).isEqualTo(TinyModelConfig.DEFAULT.toString());
        for (AnswerFormat f : AnswerFormat.values()) {
            for (Kind k : Kind.values()) {
                assertThat(record.getAsJsonObject("accuracy").getAsJsonObject(f.key()).getAsJsonObject(k.text())
                        .get("total").getAsInt()).isEqualTo(EmbeddedDefault.TEST_SIZE / 2);
            }
        }

        TinyModelConfig shape = TinyModelConfig.DEFAULT;
        ModelConfig c = ModelConfig.load(folder);
        assertThat(c.modelType()).isEqualTo("llama");
        assertThat(c.hiddenSize()).isEqualTo(shape.hiddenSize());
        assertThat(c.numLayers()).isEqualTo(shape.numLayers());
        assertThat(c.numHeads()).isEqualTo(shape.numHeads());
        assertThat(c.numKeyValueHeads()).isEqualTo(shape.numKeyValueHeads());
        assertThat(c.intermediateSize()).isEqualTo(shape.intermediateSize());
        assertThat(c.maxPositions()).isEqualTo(shape.maxPositions());
        assertThat(c.tieWordEmbeddings()).isEqualTo(shape.tieWordEmbeddings());
        assertThat(c.vocabSize()).isEqualTo(EmbeddedTokenizer.defaultVocabulary().size());

        List<WordProblem> oneStep = EmbeddedDefault.shippedProblems("test.jsonl").stream()
                .filter(p -> p.kind() == Kind.ONE_STEP).limit(2).toList();
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM lm = CausalLM.load(folder, manager, DataType.FLOAT32)) {
            long parameters = 0;
            for (var w : lm.model().weights().values()) {
                parameters += w.size();
            }
            assertThat(parameters).isEqualTo(shape.parameters(c.vocabSize()));
            for (AnswerFormat f : AnswerFormat.values()) {
                GreedyAccuracy.Result r = GreedyAccuracy.evaluate(lm.generator(),
                        EmbeddedDefault.encoder(lm.tokenizer(), f.systemPrompt()), oneStep, f, 64, 2);
                for (GreedyAccuracy.Outcome o : r.outcomes()) {
                    assertThat(f.isWellFormed(o.completion())).as("%s answer to %s: %s", f, o.problem().question(),
                            o.completion()).isTrue();
                    assertThat(o.extracted()).as("%s answer", f).matches("\\d+");
                }
            }
        }
    }
}
