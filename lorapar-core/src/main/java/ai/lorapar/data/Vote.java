package ai.lorapar.data;

import java.util.Objects;
import java.util.Optional;

/**
 * One teacher's vote on one example: the label read from its reply, or an abstention ({@code label == null})
 * with the reason. The raw reply is always kept (the error text when the teacher failed).
 *
 * @param teacherId  {@link Teacher#id()}
 * @param label      the parsed label, null for an abstention
 * @param rawReply   the reply exactly as the teacher gave it; for a failed request, the response body or ""
 * @param note       why this is an abstention, or which rule decided the label (for audits)
 * @param fromCache  whether the reply came from the label cache instead of the teacher
 */
public record Vote(String teacherId, SystemLabel label, String rawReply, String note, boolean fromCache) {

    public Vote {
        Objects.requireNonNull(teacherId, "teacherId");
        Objects.requireNonNull(rawReply, "rawReply");
        Objects.requireNonNull(note, "note");
    }

    public boolean isAbstention() {
        return label == null;
    }

    public Optional<SystemLabel> labelIfAny() {
        return Optional.ofNullable(label);
    }
}
