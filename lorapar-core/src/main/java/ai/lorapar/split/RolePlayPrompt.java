package ai.lorapar.split;

import ai.lorapar.model.tokenizer.ChatMessage;

import ai.lorapar.data.Example;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The role-play prompt of the LoRA-PAR Sample Splitter (paper, Figure 3): the teacher acts as the target model
 * and decides whether a question with its reference answer is System1 or System2, given the criteria and one
 * example of each class. It is sent as a system message (instructions and examples) and a user message (the
 * example to classify).
 *
 * <p>Both parts are templates with the placeholders {@code {target_model}}, {@code {question}} and
 * {@code {answer}}; {@link Builder#instructions(String)} and {@link Builder#task(String)} replace them. The
 * default task message ends with a one-line reply format request, our addition to the paper's prompt, so that
 * replies are short and parse reliably. The paper's figure shows no reference answer for its System2 example,
 * so none is given here either.
 */
public final class RolePlayPrompt {

    /** The paper's target model. */
    public static final String DEFAULT_TARGET_MODEL = "LLaMA2 7B";

    /** The paper's role-play instructions (system message); {@code {target_model}} is replaced. */
    public static final String DEFAULT_INSTRUCTIONS = """
            Act as {target_model} \u2014 concise, efficient, and reasoning step by step like it would. Given a task or \
            question and its answer, decide whether it belongs to 'System1' or 'System2' based on the following criteria:
            1. System1 tasks rely on immediate recall, straightforward reading comprehension, or simple inferences \
            that do not require multi-step reasoning.
            2. System2 tasks require multi-step logical reasoning, chaining information, or complex inferential processes.

            Example of System1:
            Question: What are the top graph databases?
            Answer: 1. Neo4j; 2. Microsoft Azure Cosmos DB; 3. Virtuoso; 4. ArangoDB; 5. Amazon Neptune
            Classification: System1

            Example of System2:
            Question: Ram was asked to repeat after the speaker. Speaker: Red, Ram: Red. Speaker: Blue, Ram: Blue. \
            Speaker: Green, Ram: Green. Speaker: What's your name? , Ram: Ram. What went wrong here?
            Classification: System2""";

    /** The task of one example (user message). */
    public static final String DEFAULT_TASK = """
            Question: {question}
            Answer: {answer}

            Reply with the classification only: System1 or System2.""";

    private final String targetModel;
    private final String instructions;
    private final String task;

    private RolePlayPrompt(Builder b) {
        this.targetModel = b.targetModel;
        this.instructions = b.instructions;
        this.task = b.task;
    }

    /** The paper's prompt with the default target model. */
    public static RolePlayPrompt defaults() {
        return builder().build();
    }

    /** The paper's prompt role-playing {@code targetModel}, e.g. "Qwen2.5 0.5B". */
    public static RolePlayPrompt forTarget(String targetModel) {
        return builder().targetModel(targetModel).build();
    }

    /**
     * A builder starting from the defaults.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The model the teachers role-play.
     *
     * @return its name
     */
    public String targetModel() {
        return targetModel;
    }

    /** The chat messages for one example. */
    public List<ChatMessage> render(Example example) {
        List<ChatMessage> messages = new ArrayList<>(2);
        if (!instructions.isBlank()) {
            messages.add(ChatMessage.system(fill(instructions, example)));
        }
        messages.add(ChatMessage.user(fill(task, example)));
        return messages;
    }

    private String fill(String template, Example example) {
        // {question}/{answer} last, so that braces inside the example text are never taken for placeholders
        String withModel = template.replace("{target_model}", targetModel);
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < withModel.length()) {
            if (withModel.startsWith("{question}", i)) {
                out.append(example.question());
                i += "{question}".length();
            } else if (withModel.startsWith("{answer}", i)) {
                out.append(example.answer());
                i += "{answer}".length();
            } else {
                out.append(withModel.charAt(i++));
            }
        }
        return out.toString();
    }

    /** Builder of {@link RolePlayPrompt}. */
    public static final class Builder {
        private String targetModel = DEFAULT_TARGET_MODEL;
        private String instructions = DEFAULT_INSTRUCTIONS;
        private String task = DEFAULT_TASK;

        private Builder() {
        }

        /** The model the teachers role-play, substituted for {@code {target_model}}. */
        public Builder targetModel(String targetModel) {
            this.targetModel = Objects.requireNonNull(targetModel, "targetModel");
            if (targetModel.isBlank()) {
                throw new IllegalArgumentException("targetModel must not be blank");
            }
            return this;
        }

        /** Replaces the system message template; blank sends no system message. */
        public Builder instructions(String template) {
            this.instructions = Objects.requireNonNull(template, "instructions");
            return this;
        }

        /** Replaces the user message template; it must contain {@code {question}}. */
        public Builder task(String template) {
            Objects.requireNonNull(template, "task");
            if (!template.contains("{question}")) {
                throw new IllegalArgumentException("task template must contain the {question} placeholder");
            }
            this.task = template;
            return this;
        }

        /**
         * Builds the prompt.
         *
         * @return the prompt
         */
        public RolePlayPrompt build() {
            return new RolePlayPrompt(this);
        }
    }
}
