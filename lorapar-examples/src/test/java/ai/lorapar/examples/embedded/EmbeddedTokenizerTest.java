package ai.lorapar.examples.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedTokenizerTest {

    @TempDir
    static Path dir;

    static List<String> vocabulary;
    static TextTokenizer tokenizer;

    @BeforeAll
    static void write() throws Exception {
        EmbeddedDefault.writeModelFiles(dir, TinyModelConfig.DEFAULT);
        vocabulary = EmbeddedTokenizer.defaultVocabulary();
        tokenizer = TextTokenizer.load(dir); // DJL's HuggingFaceTokenizer reads tokenizer.json
    }

    @Test
    void specialIdsAndTheVocabularySize() {
        assertThat(tokenizer.bosId()).isEqualTo(1);
        assertThat(tokenizer.eosIds()).containsExactly(2);
        assertThat(tokenizer.padId()).isEqualTo(3);
        assertThat(tokenizer.tokenId("<unk>")).isZero();
        assertThat(vocabulary.size()).isBetween(200, 400);
        assertThat(vocabulary).doesNotHaveDuplicates();
        // the post-processor prepends bos, as LLaMA's does
        long[] ids = tokenizer.encode("Tom has 3 apples.", true);
        assertThat(ids[0]).isEqualTo(1);
        assertThat(ids).hasSize(1 + 5);
        assertThat(tokenizer.encode("Tom has 3 apples.", false)).hasSize(5);
    }

    @Test
    void theFormatTagsAreSingleTokensThatSurviveDecoding() {
        assertThat(tokenizer.tokenId("<reasoning>")).isEqualTo(4);
        assertThat(tokenizer.tokenId("</reasoning>")).isEqualTo(5);
        assertThat(tokenizer.tokenId("<answer>")).isEqualTo(6);
        assertThat(tokenizer.tokenId("</answer>")).isEqualTo(7);
        String text = "<reasoning>\nTom has 3 * 4 = 12 apples.\n</reasoning>\n<answer>\n12\n</answer>";
        long[] ids = tokenizer.encode(text, true);
        assertThat(ids).contains(4, 5, 6, 7);
        // skipping special tokens drops bos/eos but keeps the tags
        assertThat(tokenizer.decode(ids, true)).isEqualTo(text);
        long[] withEos = java.util.Arrays.copyOf(ids, ids.length + 1);
        withEos[ids.length] = 2;
        assertThat(tokenizer.decode(withEos, false)).isEqualTo("<s>" + text + "</s>");
        assertThat(tokenizer.encode(EmbeddedTokenizer.GRPO_SYSTEM_PROMPT, false)).doesNotContain(0L);
    }

    @Test
    void numbersAreDigitSequencesAndNewlinesAreTokens() {
        long[] ids = tokenizer.encode("has 123\n#### 45", false);
        List<String> tokens = new ArrayList<>();
        for (long id : ids) {
            tokens.add(vocabulary.get((int) id));
        }
        assertThat(tokens).containsExactly("has", " 1", "2", "3", "\n", "#", "#", "#", "#", " 4", "5");
    }

    /** The Rust pre-tokenizer and {@link EmbeddedTokenizer#pieces} agree: ids are the vocabulary's ids of our pieces. */
    @Test
    void generatedItemsRoundTripExactlyWithoutUnknownTokens() {
        int checked = 0;
        for (long seed = 1; seed <= 2; seed++) {
            for (WordProblem p : WordProblems.builder().seed(seed).multiStepOperations(2, 4).build().generate(400)) {
                String text = p.question() + "\n" + p.answer();
                long[] ids = tokenizer.encode(text, false);
                List<String> pieces = EmbeddedTokenizer.pieces(text);
                long[] expected = pieces.stream().mapToLong(vocabulary::indexOf).toArray();
                assertThat(expected).as("pieces of %s", text).doesNotContain(-1L);
                assertThat(ids).as(text).containsExactly(expected);
                assertThat(ids).doesNotContain(0L);
                assertThat(tokenizer.decode(ids, false)).isEqualTo(text);
                checked++;
            }
        }
        assertThat(checked).isEqualTo(800);
    }

    @Test
    void unknownWordsBecomeUnkAndSpacesAndPunctuationRoundTrip() {
        long[] ids = tokenizer.encode("Tom has 3 zebras.", false);
        assertThat(ids).contains(0L);
        String odd = "  Tom  has (3+4)*2 = 14 apples; ok?\n\n  ";
        long[] oddIds = tokenizer.encode(odd.replace("ok", "has"), false);
        assertThat(oddIds).doesNotContain(0L);
        assertThat(tokenizer.decode(oddIds, false)).isEqualTo(odd.replace("ok", "has"));
    }

    /** The config matches the tokenizer, the library reads it, and a random model of its shape runs an encoded item. */
    @Test
    void theModelConfigFitsTheTokenizerAndTheLibrary() throws Exception {
        ModelConfig config = ModelConfig.load(dir);
        assertThat(config.vocabSize()).isEqualTo(vocabulary.size());
        assertThat(config.modelType()).isEqualTo("llama");
        assertThat(config.bosTokenId()).isEqualTo(1);
        long params = TinyModelConfig.DEFAULT.parameters(vocabulary.size());
        assertThat(params * 4).isLessThan(10_000_000L);

        WordProblem p = WordProblems.builder().build().generate(1).get(0);
        ExampleEncoder encoder = ExampleEncoder.builder(tokenizer).maxLength(512).vocabSize(config.vocabSize()).build();
        EncodedExample e = encoder.encode(p.toExample("0"));
        assertThat(e.ids()[0]).isEqualTo(1);
        assertThat(e.ids()[e.ids().length - 1]).isEqualTo(2);
        try (NDManager manager = NDManager.newBaseManager();
                DecoderModel model = DecoderModel.random(config, manager, DataType.FLOAT32, 1)) {
            NDArray ids = manager.create(e.ids(), new Shape(1, e.ids().length));
            NDArray logits = model.forward(ids, null, false);
            assertThat(logits.getShape()).isEqualTo(new Shape(1, e.ids().length, vocabulary.size()));
            // parameter count as TinyModelConfig computes it (tied embeddings: no separate lm_head)
            long counted = model.embedTokens().size();
            for (var l : model.linears().values()) {
                if (l.weight() != model.embedTokens()) {
                    counted += l.weight().size();
                }
            }
            long norms = (2L * config.numLayers() + 1) * config.hiddenSize();
            assertThat(counted + norms).isEqualTo(params);
        }
    }
}
