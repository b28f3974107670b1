package ai.lorapar.split;

/**
 * A teacher could not give a reply. {@link #kind()} tells the splitter whether to abort the run (a
 * configuration problem that every further request would repeat) or to record an abstention for this
 * example and go on (a transient problem that retries did not cure).
 */
public class TeacherException extends Exception {

    /** Why no reply came. */
    public enum Kind {
        /** Rejected request (HTTP 4xx other than 408/429): wrong model name, bad API key, bad URL. Aborts the run. */
        CONFIGURATION,
        /** Timeouts, 408/429/5xx or connection failures that persisted through every retry. */
        TRANSIENT,
        /** The endpoint answered, but not with a chat completion (malformed JSON, no choices). */
        MALFORMED_RESPONSE
    }

    /** Why no reply came. */
    private final Kind kind;
    /** The response body, or null. */
    private final String rawResponse;

    /**
     * Creates the exception.
     *
     * @param kind why no reply came
     * @param message what happened (never an API key)
     * @param rawResponse the response body, or null
     * @param cause the underlying error, or null
     */
    public TeacherException(Kind kind, String message, String rawResponse, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.rawResponse = rawResponse;
    }

    /**
     * Creates the exception.
     *
     * @param kind why no reply came
     * @param message what happened
     */
    public TeacherException(Kind kind, String message) {
        this(kind, message, null, null);
    }

    /**
     * Why no reply came.
     *
     * @return the kind
     */
    public Kind kind() {
        return kind;
    }

    /** The response body as received (possibly shortened), or null when nothing was received. */
    public String rawResponse() {
        return rawResponse;
    }
}
