package ai.lorapar.split;

import ai.lorapar.model.tokenizer.ChatMessage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.Example;
import java.util.List;
import org.junit.jupiter.api.Test;

class RolePlayPromptTest {

    private static final Example EXAMPLE = Example.of("1", "How much is {answer} in {x}?", "It is 5.");

    @Test
    void defaultPromptCarriesCriteriaBothExamplesAndTheTask() {
        List<ChatMessage> messages = RolePlayPrompt.defaults().render(EXAMPLE);
        assertThat(messages).extracting(ChatMessage::role).containsExactly("system", "user");
        String system = messages.get(0).content();
        assertThat(system).startsWith("Act as LLaMA2 7B \u2014 concise, efficient, and reasoning step by step like it would.")
                .contains("1. System1 tasks rely on immediate recall")
                .contains("2. System2 tasks require multi-step logical reasoning")
                .contains("Question: What are the top graph databases?")
                .contains("5. Amazon Neptune\nClassification: System1")
                .contains("What went wrong here?\nClassification: System2");
        // braces inside the example are text, not placeholders
        assertThat(messages.get(1).content()).startsWith("Question: How much is {answer} in {x}?\nAnswer: It is 5.");
    }

    @Test
    void userTemplatesReplaceBothParts() {
        RolePlayPrompt prompt = RolePlayPrompt.builder().targetModel("Qwen2.5 7B")
                .instructions("")
                .task("You are {target_model}. Q: {question} A: {answer} -> System1 or System2?")
                .build();
        assertThat(prompt.render(EXAMPLE)).containsExactly(
                ChatMessage.user("You are Qwen2.5 7B. Q: How much is {answer} in {x}? A: It is 5. -> System1 or System2?"));
        assertThatThrownBy(() -> RolePlayPrompt.builder().task("no placeholder")).hasMessageContaining("{question}");
    }
}
