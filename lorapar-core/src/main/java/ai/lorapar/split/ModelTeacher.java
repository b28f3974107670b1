package ai.lorapar.split;

import ai.lorapar.data.LabelledDataset;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.ChatMessage;
import ai.lorapar.model.tokenizer.PromptTemplate;

import java.util.List;
import java.util.Objects;

/**
 * A teacher backed by a model loaded in this JVM ({@link ai.lorapar.model.CausalLM}): it renders the
 * role-play prompt with the model's chat template and decodes greedily, so its replies are
 * deterministic for a given model and prompt and are cached like an endpoint's.
 *
 * <p>Calls are serialised (one generation at a time): the model's forward pass is not meant to be
 * shared between threads.
 *
 * <pre>{@code
 * try (CausalLM lm = CausalLM.load(Path.of("/models/Qwen2.5-7B-Instruct"), manager)) {
 *     Teacher local = ModelTeacher.builder(lm.generator(), "qwen2.5-7b-instruct")
 *             .template(PromptTemplate.chatMl()).maxNewTokens(32).build();
 *     LabelledDataset ds = Splitter.vote(local, remoteA, remoteB).build().label(examples);
 * }
 * }</pre>
 */
public final class ModelTeacher implements Teacher {
    private final Generator generator;
    private final String name;
    private final PromptTemplate template;
    private final int maxNewTokens;

    private ModelTeacher(Builder b) {
        this.generator = b.generator;
        this.name = b.name;
        this.template = b.template;
        this.maxNewTokens = b.maxNewTokens;
    }

    /**
     * A builder for a teacher that asks {@code generator} (which must have a tokenizer, e.g.
     * {@code CausalLM.generator()}), identified as {@code local:<name>}.
     */
    public static Builder builder(Generator generator, String name) {
        return new Builder(generator, name);
    }

    @Override
    public String id() {
        return "local:" + name;
    }

    @Override
    public String model() {
        return name;
    }

    /**
     * The id, the model name, the reply budget and the chat template's markup (its rendering of a probe
     * conversation): a reply cached under one template is not reused for another, since the model saw a
     * different prompt.
     */
    @Override
    public String cacheIdentity() {
        return id() + '\u0000' + name + "\u0000max_new_tokens=" + maxNewTokens + "\u0000template=" + templateMarkup(template);
    }

    /** A template has no name (it is a function): what it makes of a fixed conversation stands for it. */
    static String templateMarkup(PromptTemplate template) {
        try {
            return template.render(List.of(ChatMessage.system("{system}"), ChatMessage.user("{user}")), true);
        } catch (IllegalArgumentException noSystemRole) {
            return template.render(List.of(ChatMessage.user("{user}")), true);
        }
    }

    @Override
    public synchronized String ask(TeacherPrompt prompt) throws TeacherException {
        String text = template.render(prompt.messages(), true);
        GenerationResult result;
        try {
            result = generator.generateText(List.of(text), SamplingConfig.greedy(maxNewTokens));
        } catch (RuntimeException e) {
            throw new TeacherException(TeacherException.Kind.CONFIGURATION,
                    id() + " could not generate a reply: " + e.getMessage(), null, e);
        }
        return result.texts().get(0);
    }

    /** Options of a {@link ModelTeacher}. */
    public static final class Builder {
        private final Generator generator;
        private final String name;
        private PromptTemplate template = PromptTemplate.chatMl();
        private int maxNewTokens = 32;

        private Builder(Generator generator, String name) {
            this.generator = Objects.requireNonNull(generator, "generator");
            if (name == null || name.isBlank()) {
                throw new IllegalArgumentException("a model teacher needs a name (it is part of the label-cache key)");
            }
            this.name = name;
        }

        /** The chat template of the model (default ChatML, as Qwen's). */
        public Builder template(PromptTemplate template) {
            this.template = Objects.requireNonNull(template, "template");
            return this;
        }

        /** Reply budget in tokens (default 32: the reply only has to name a system). */
        public Builder maxNewTokens(int maxNewTokens) {
            if (maxNewTokens < 1) {
                throw new IllegalArgumentException("maxNewTokens must be at least 1, got " + maxNewTokens);
            }
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        /**
         * Builds the teacher.
         *
         * @return the teacher
         */
        public ModelTeacher build() {
            return new ModelTeacher(this);
        }
    }
}
