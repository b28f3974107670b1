package ai.lorapar.data;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The one place where examples become ids: checked on the byte-level fixture tokenizer (one id per
 * byte, bos 256, eos 257, pad 258, {@code <|im_start|>} 259, {@code <|im_end|>} 260), so every expected
 * id sequence is written out by hand.
 */
class ExampleEncoderTest {
    private static TextTokenizer tokenizer;

    @BeforeAll
    static void load() throws Exception {
        tokenizer = TextTokenizer.load(fixture());
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    static Path fixture() throws URISyntaxException {
        return Paths.get(ExampleEncoderTest.class.getResource("/fixtures/models/byte-tokenizer").toURI());
    }

    private static long[] bytes(String s) {
        return s.chars().mapToLong(c -> c).toArray();
    }

    private static long[] concat(long[]... parts) {
        return Arrays.stream(parts).flatMapToLong(Arrays::stream).toArray();
    }

    @Test
    void plainTemplateLabelsOnlyTheAnswerAndAppendsEos() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).build();
        EncodedExample e = enc.encode(Example.of("a", "Q?", "A1"));
        // bos, "Q?" | "\nA1", eos
        assertThat(e.ids()).containsExactly(concat(new long[] {256}, bytes("Q?"), bytes("\nA1"), new long[] {257}));
        assertThat(e.promptLength()).isEqualTo(3);
        assertThat(e.answerLength()).isEqualTo(4);
        assertThat(e.labels()).containsExactly(concat(new long[] {-100, -100, -100}, bytes("\nA1"), new long[] {257}));
        assertThat(e.truncated()).isFalse();
        assertThat(enc.encodePrompt(Example.of("a", "Q?", "A1"))).containsExactly(concat(new long[] {256}, bytes("Q?")));
    }

    @Test
    void chatMlPromptEndsWhereTheAssistantTurnBegins() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).template(PromptTemplate.chatMl()).systemPrompt("S").build();
        Example ex = Example.of("c", "Q", "A");
        EncodedExample e = enc.encode(ex);
        long[] prompt = concat(new long[] {256, 259}, bytes("system\nS"), new long[] {260}, bytes("\n"),
                new long[] {259}, bytes("user\nQ"), new long[] {260}, bytes("\n"), new long[] {259}, bytes("assistant\n"));
        long[] answer = concat(bytes("A"), new long[] {260}, bytes("\n"), new long[] {257}); // this tokenizer's eos is </s>
        assertThat(e.ids()).containsExactly(concat(prompt, answer));
        assertThat(e.promptLength()).isEqualTo(prompt.length);
        assertThat(enc.encodePrompt(ex)).containsExactly(prompt);
        assertThat(enc.promptText(ex)).endsWith("<|im_start|>assistant\n");
    }

    @Test
    void anAnswerThatAlreadyHoldsAnEosGetsNoSecondOne() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).build();
        assertThat(enc.encode(Example.of("e", "Q", "A</s>")).ids())
                .containsExactly(concat(new long[] {256}, bytes("Q"), bytes("\nA"), new long[] {257}));
        assertThat(enc.toBuilder().appendEos(false).build().encode(Example.of("e", "Q", "A")).ids())
                .containsExactly(concat(new long[] {256}, bytes("Q"), bytes("\nA")));
    }

    @Test
    void overLongAnswerIsCutAtItsEndAndAnExampleWithoutAnswerRoomIsSkippedAndCounted() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).maxLength(6).build();
        // bos + "Q" = 2 prompt ids; "\nabcdef" + eos = 8 answer ids; 6 kept: 4 answer ids
        EncodedExample cut = enc.encode(Example.of("cut", "Q", "abcdef"));
        assertThat(cut.ids()).containsExactly(concat(new long[] {256}, bytes("Q"), bytes("\nabc")));
        assertThat(cut.truncated()).isTrue();
        assertThat(cut.answerLength()).isEqualTo(4);
        // bos + "QQQQQ" = 6 ids: the prompt fills the maximum, nothing of the answer would remain
        Example noRoom = Example.of("full", "QQQQQ", "x");
        assertThat(enc.encode(noRoom)).isNull();
        EncodedDataset all = enc.encodeAll(List.of(Example.of("ok", "Q", "ab"), noRoom, Example.of("cut", "Q", "abcdef")));
        assertThat(all.size()).isEqualTo(2);
        assertThat(all.skipped()).extracting(Example::id).containsExactly("full");
        assertThat(all.truncatedCount()).isEqualTo(1);
        assertThat(all.answerTokens()).isEqualTo(4 + 4);

        ExampleEncoder skip = enc.toBuilder().truncation(ExampleEncoder.Truncation.SKIP).build();
        assertThat(skip.encode(Example.of("cut", "Q", "abcdef"))).isNull();
        assertThat(skip.encode(Example.of("ok", "Q", "ab"))).isNotNull();
    }

    @Test
    void overLongPromptKeepsItsLastTokens() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).maxLength(64).maxPromptLength(3).build();
        assertThat(enc.encodePrompt(Example.of("p", "abcdef", "x"))).containsExactly(bytes("def"));
    }

    @Test
    void idsOutsideTheModelVocabularyNameTheExample() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).vocabSize(200).build();
        Example e = new Example("q7", 12, ExampleFormat.QUESTION_ANSWER, "Q", "A", null);
        assertThatThrownBy(() -> enc.encode(e)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'q7' (line 12)").hasMessageContaining("token id 256 at position 0")
                .hasMessageContaining("vocabulary of 200");
    }

    @Test
    void gsm8kAlpacaAndDollyRecordsEncodeAlike() throws Exception {
        Path f = Path.of("x.jsonl");
        Example gsm = JsonlExamples.parse(f, 1, "{\"question\": \"Q\\n\\nC\", \"answer\": \"A\"}");
        Example alpaca = JsonlExamples.parse(f, 2, "{\"instruction\": \"Q\", \"input\": \"C\", \"output\": \"A\"}");
        Example dolly = JsonlExamples.parse(f, 3, "{\"instruction\": \"Q\", \"context\": \"C\", \"response\": \"A\"}");
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).template(PromptTemplate.chatMl()).build();
        long[] ids = enc.encode(gsm).ids();
        assertThat(enc.encode(alpaca).ids()).containsExactly(ids);
        assertThat(enc.encode(dolly).ids()).containsExactly(ids);
    }

    @Test
    void batchesAreRightPaddedWithMaskAndIgnoredLabels() {
        ExampleEncoder enc = ExampleEncoder.builder(tokenizer).build();
        EncodedExample a = enc.encode(Example.of("a", "Q", "A"));      // 256 Q | \n A 257
        EncodedExample b = enc.encode(Example.of("b", "QQ", "AAA"));   // 256 Q Q | \n A A A 257
        try (NDManager m = NDManager.newBaseManager(Device.cpu()); TokenBatch batch = TokenBatch.of(List.of(a, b), enc.padId(), m)) {
            assertThat(enc.padId()).isEqualTo(258);
            assertThat(batch.length()).isEqualTo(8);
            assertThat(batch.answerTokens()).isEqualTo(3 + 5);
            assertThat(batch.tokens()).isEqualTo(5 + 8);
            long q = 'Q';
            long n = '\n';
            long x = 'A';
            assertThat(batch.inputIds().toLongArray()).containsExactly(
                    256, q, n, x, 257, 258, 258, 258,
                    256, q, q, n, x, x, x, 257);
            assertThat(batch.attentionMask().toLongArray()).containsExactly(
                    1, 1, 1, 1, 1, 0, 0, 0,
                    1, 1, 1, 1, 1, 1, 1, 1);
            assertThat(batch.labels().toLongArray()).containsExactly(
                    -100, -100, n, x, 257, -100, -100, -100,
                    -100, -100, -100, n, x, x, x, 257);
        }
    }

    @Test
    void badSettingsAreNamed() {
        assertThatThrownBy(() -> ExampleEncoder.builder(tokenizer).maxLength(1).build()).hasMessageContaining("maxLength");
        assertThatThrownBy(() -> ExampleEncoder.builder(tokenizer).vocabSize(-1).build()).hasMessageContaining("vocabSize");
        assertThatThrownBy(() -> TokenBatch.of(List.of(), 0, null)).isInstanceOf(NullPointerException.class);
    }
}
