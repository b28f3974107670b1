package ai.lorapar.split;

import ai.lorapar.model.tokenizer.ChatMessage;

import ai.lorapar.data.Example;
import java.util.List;
import java.util.Objects;

/**
 * What a {@link Teacher} is asked: the rendered role-play chat for one example, plus the example itself for
 * teachers that do not read text prompts (the heuristic teachers).
 */
public record TeacherPrompt(Example example, List<ChatMessage> messages) {

    /** Checks the fields. */
    public TeacherPrompt {
        Objects.requireNonNull(example, "example");
        messages = List.copyOf(messages);
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("a prompt needs at least one message");
        }
    }

    /** A canonical text of the messages; the label cache hashes it, so any change to the prompt re-asks. */
    public String canonicalText() {
        StringBuilder sb = new StringBuilder();
        for (ChatMessage m : messages) {
            sb.append('<').append(m.role()).append(">\n").append(m.content()).append("\n</").append(m.role()).append(">\n");
        }
        return sb.toString();
    }
}
