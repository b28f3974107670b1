package ai.lorapar.model;

import ai.lorapar.model.tokenizer.ChatMessage;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class TokenizerTest {
    /** The real tokenizers of the workplace (not shipped with the project); tests using them skip without. */
    static final Path REAL = Path.of(System.getProperty("lorapar.tokenizers", "/work/shared/tokenizers"));

    static JsonObject encodings() throws Exception {
        return JsonParser.parseString(Files.readString(Fixtures.root().resolve("tokenizers/encodings.json"),
                StandardCharsets.UTF_8)).getAsJsonObject();
    }

    static long[] ids(JsonArray a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).getAsLong();
        }
        return out;
    }

    @Test
    void byteTokenizerWithSpecialTokensFromConfig() throws Exception {
        try (TextTokenizer tk = TextTokenizer.load(Fixtures.root().resolve("byte-tokenizer"))) {
            assertThat(tk.bosId()).isEqualTo(256);
            assertThat(tk.eosIds()).containsExactly(257);
            assertThat(tk.padId()).isEqualTo(258);
            assertThat(tk.encode("hi", true)).containsExactly(256, 'h', 'i');
            assertThat(tk.encode("hi", false)).containsExactly('h', 'i');
            assertThat(tk.encode("<|im_start|>a<|im_end|>", false)).containsExactly(259, 'a', 260);
            assertThat(tk.tokenId("<|im_end|>")).isEqualTo(260);
            assertThat(tk.decode(new long[] {256, 'h', 'i', 257}, true)).isEqualTo("hi");
            String s = "naïve café 123";
            assertThat(tk.decode(tk.encode(s, false), true)).isEqualTo(s);
        }
    }

    @Test
    void missingTokenizerJsonIsAClearError() {
        assertThatThrownBy(() -> TextTokenizer.load(Fixtures.model("llama")))
                .hasMessageContaining("no tokenizer.json");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2", "qwen3"})
    void realTokenizersMatchTheTokenizersLibrary(String name) throws Exception {
        Path dir = REAL.resolve(name);
        assumeTrue(Files.isRegularFile(dir.resolve("tokenizer.json")), "real tokenizers not present at " + dir);
        JsonObject enc = encodings();
        JsonArray texts = enc.getAsJsonArray("texts");
        JsonObject rec = enc.getAsJsonObject(name);
        try (TextTokenizer tk = TextTokenizer.load(dir)) {
            for (int i = 0; i < texts.size(); i++) {
                String text = texts.get(i).getAsString();
                assertThat(tk.encode(text, true)).as("%s with special tokens: %s", name, text)
                        .containsExactly(ids(rec.getAsJsonArray("raw_with_special").get(i).getAsJsonArray()));
                long[] plain = ids(rec.getAsJsonArray("raw_without_special").get(i).getAsJsonArray());
                assertThat(tk.encode(text, false)).as("%s: %s", name, text).containsExactly(plain);
                assertThat(tk.decode(plain, true)).isEqualTo(rec.getAsJsonArray("raw_decoded").get(i).getAsString());
            }
            if ("llama2".equals(name)) {
                assertThat(tk.bosId()).isEqualTo(1);
                assertThat(tk.eosIds()).containsExactly(2);
            } else {
                assertThat(tk.bosId()).isNull();
                assertThat(tk.eosIds()).containsExactly(151645); // <|im_end|>
                assertThat(tk.padId()).isEqualTo(151643); // <|endoftext|>
            }
        }
    }

    @Test
    void chatMlMatchesQwenChatTemplate() throws Exception {
        JsonObject enc = encodings();
        String expected = enc.getAsJsonObject("qwen3").get("chat_text").getAsString();
        List<ChatMessage> msgs = List.of(ChatMessage.system("Be brief."), ChatMessage.user("What is 2+2?"));
        assertThat(PromptTemplate.chatMl().render(msgs, true)).isEqualTo(expected);
        assertThat(PromptTemplate.named("chatml").prompt("Be brief.", "What is 2+2?")).isEqualTo(expected);
        assertThat(PromptTemplate.chatMl("You are Qwen.").prompt("Hi"))
                .isEqualTo("<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void llama2ChatPlainAndCustomTemplates() {
        List<ChatMessage> msgs = List.of(ChatMessage.system("Be brief."), ChatMessage.user("What is 2+2?"),
                ChatMessage.assistant("4"), ChatMessage.user("And 3+3?"));
        assertThat(PromptTemplate.llama2Chat().render(msgs, true)).isEqualTo(
                "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]");
        assertThat(PromptTemplate.llama2Chat().prompt("Hi")).isEqualTo("[INST] Hi [/INST]");
        assertThat(PromptTemplate.plain().prompt("Q: 2+2?")).isEqualTo("Q: 2+2?");
        PromptTemplate qa = PromptTemplate.custom(Map.of("user", "Question: {content}\n", "assistant", "Answer: {content}\n"),
                "Answer:");
        assertThat(qa.prompt("2+2?")).isEqualTo("Question: 2+2?\nAnswer:");
        assertThatThrownBy(() -> qa.prompt("sys", "2+2?")).hasMessageContaining("no format for role 'system'");
        assertThatThrownBy(() -> PromptTemplate.custom(Map.of("user", "no placeholder"), ""))
                .hasMessageContaining("{content}");
        assertThatThrownBy(() -> PromptTemplate.named("vicuna")).hasMessageContaining("unknown prompt template");
    }
}
