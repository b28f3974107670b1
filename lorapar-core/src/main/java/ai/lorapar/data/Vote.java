package ai.lorapar.data;

import java.util.Objects;
import java.util.Optional;

/**
 * One teacher's vote on one example: the label read from its reply, or an abstention ({@code label == null})
 * with the reason. The raw reply is always kept (the error text when the teacher failed).
 *
 * @param teacherId  {@link ai.lorapar.split.Teacher#id()}
 * @param label      the parsed label, null for an abstention
 * @param rawReply   the reply exactly as the teacher gave it; for a failed request, the response body or ""
 * @param note       why this is an abstention, or which rule decided the label (for audits)
 * @param fromCache  whether the reply came from the label cache instead of the teacher
 */
public record Vote(String teacherId, SystemLabel label, String rawReply, String note, boolean fromCache) {

    /** How the note of a vote whose teacher gave no reply at all begins. */
    public static final String FAILURE_NOTE = "teacher failed";

    /**
     * The abstention recorded when a teacher gave no reply (a request that failed after its retries).
     *
     * @param teacherId the teacher
     * @param rawResponse what was received, or ""
     * @param kind the kind of failure, e.g. {@code TRANSIENT}
     * @param message what went wrong
     * @return the vote, noted {@code teacher failed (KIND): message}
     */
    public static Vote failure(String teacherId, String rawResponse, String kind, String message) {
        return new Vote(teacherId, null, rawResponse, FAILURE_NOTE + " (" + kind + "): " + message, false);
    }

    /** Checks the fields. */
    public Vote {
        Objects.requireNonNull(teacherId, "teacherId");
        Objects.requireNonNull(rawReply, "rawReply");
        Objects.requireNonNull(note, "note");
    }

    /**
     * Whether this is no vote (a refusal, an unparseable reply or a failed request).
     *
     * @return true for an abstention
     */
    public boolean isAbstention() {
        return label == null;
    }

    /**
     * Whether the teacher gave no reply at all ({@link #failure}).
     *
     * @return true for a failed request
     */
    public boolean isFailure() {
        return label == null && note.startsWith(FAILURE_NOTE);
    }

    /**
     * The label, if this is a vote.
     *
     * @return the label or empty
     */
    public Optional<SystemLabel> labelIfAny() {
        return Optional.ofNullable(label);
    }
}
