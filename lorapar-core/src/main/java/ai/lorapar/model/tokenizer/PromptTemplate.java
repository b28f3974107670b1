package ai.lorapar.model.tokenizer;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Turns a conversation into the text a model was trained on. The text is meant to be encoded with
 * special tokens on, so a tokenizer whose post-processor prepends bos (LLaMA) adds it once.
 *
 * <p>Built in: {@link #plain()}, {@link #llama2Chat()}, {@link #chatMl()} (Qwen); user-defined ones
 * with {@link #custom}.
 */
public interface PromptTemplate {

    /**
     * The text of {@code messages}; with {@code addGenerationPrompt} it ends where the assistant's
     * answer begins.
     */
    String render(List<ChatMessage> messages, boolean addGenerationPrompt);

    /** A single user turn, ready for generation. */
    default String prompt(String user) {
        return render(List.of(ChatMessage.user(user)), true);
    }

    /** A system and a user turn, ready for generation. */
    default String prompt(String system, String user) {
        return render(List.of(ChatMessage.system(system), ChatMessage.user(user)), true);
    }

    /** The contents one after another, separated by a newline; no markup. */
    static PromptTemplate plain() {
        return (messages, gen) -> {
            StringBuilder sb = new StringBuilder();
            for (ChatMessage m : messages) {
                if (sb.length() > 0) {
                    sb.append('\n');
                }
                sb.append(m.content());
            }
            return sb.toString();
        };
    }

    /**
     * LLaMA-2 chat: {@code [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...}
     * (Meta's format; the first bos comes from the tokenizer).
     */
    static PromptTemplate llama2Chat() {
        return (messages, gen) -> {
            StringBuilder sb = new StringBuilder();
            String system = null;
            boolean first = true;
            for (ChatMessage m : messages) {
                switch (m.role().toLowerCase(Locale.ROOT)) {
                    case "system":
                        system = m.content();
                        break;
                    case "user":
                        if (!first) {
                            sb.append("<s>");
                        }
                        sb.append("[INST] ");
                        if (system != null) {
                            sb.append("<<SYS>>\n").append(system).append("\n<</SYS>>\n\n");
                            system = null;
                        }
                        sb.append(m.content().strip()).append(" [/INST]");
                        first = false;
                        break;
                    case "assistant":
                        sb.append(' ').append(m.content().strip()).append(" </s>");
                        break;
                    default:
                        throw new IllegalArgumentException("LLaMA-2 chat has no role '" + m.role() + "'");
                }
            }
            return sb.toString();
        };
    }

    /** ChatML (Qwen2/2.5): {@code <|im_start|>role\ncontent<|im_end|>\n} per turn; no default system prompt. */
    static PromptTemplate chatMl() {
        return chatMl(null);
    }

    /** ChatML with a system prompt used when the conversation has none (Qwen2.5's is "You are Qwen, ..."). */
    static PromptTemplate chatMl(String defaultSystem) {
        PromptTemplate base = custom(Map.of(
                "system", "<|im_start|>system\n{content}<|im_end|>\n",
                "user", "<|im_start|>user\n{content}<|im_end|>\n",
                "assistant", "<|im_start|>assistant\n{content}<|im_end|>\n"), "<|im_start|>assistant\n");
        if (defaultSystem == null) {
            return base;
        }
        return (messages, gen) -> {
            if (!messages.isEmpty() && "system".equals(messages.get(0).role())) {
                return base.render(messages, gen);
            }
            List<ChatMessage> withSystem = new java.util.ArrayList<>();
            withSystem.add(ChatMessage.system(defaultSystem));
            withSystem.addAll(messages);
            return base.render(withSystem, gen);
        };
    }

    /**
     * A user-defined template: each role's format has a {@code {content}} placeholder; the
     * generation prompt is appended when asked for. A role without a format is an error naming it.
     */
    static PromptTemplate custom(Map<String, String> roleFormats, String generationPrompt) {
        Map<String, String> formats = Map.copyOf(roleFormats);
        Objects.requireNonNull(generationPrompt, "generationPrompt");
        formats.forEach((role, f) -> {
            if (!f.contains("{content}")) {
                throw new IllegalArgumentException("format of role '" + role + "' has no {content} placeholder: " + f);
            }
        });
        return (messages, gen) -> {
            StringBuilder sb = new StringBuilder();
            for (ChatMessage m : messages) {
                String f = formats.get(m.role());
                if (f == null) {
                    throw new IllegalArgumentException("template has no format for role '" + m.role() + "' (has "
                            + formats.keySet() + ")");
                }
                sb.append(f.replace("{content}", m.content()));
            }
            if (gen) {
                sb.append(generationPrompt);
            }
            return sb.toString();
        };
    }

    /** A built-in template by name: {@code plain}, {@code llama2} / {@code llama2-chat}, {@code chatml} / {@code qwen}. */
    static PromptTemplate named(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "plain":
                return plain();
            case "llama2":
            case "llama2-chat":
                return llama2Chat();
            case "chatml":
            case "qwen":
                return chatMl();
            default:
                throw new IllegalArgumentException("unknown prompt template '" + name
                        + "' (built in: plain, llama2-chat, chatml); use PromptTemplate.custom for others");
        }
    }
}
