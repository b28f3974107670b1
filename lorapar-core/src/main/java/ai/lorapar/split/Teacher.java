package ai.lorapar.split;

/**
 * A voter of the Sample Splitter: given the role-play prompt for one example it returns its raw reply text,
 * which the {@link Splitter} parses into a System 1 / System 2 vote with {@link ReplyParser}.
 *
 * <p>Returning text rather than a label keeps every teacher comparable and auditable: the raw reply is stored
 * with each vote and in the label cache. A teacher backed by a model loaded in this JVM only has to apply its
 * chat template to {@link TeacherPrompt#messages()} and decode greedily.
 *
 * <p>Implementations must be safe to call from several threads; {@link #maxConcurrency()} tells the
 * splitter how many calls it may have in flight at once.
 */
public interface Teacher extends AutoCloseable {

    /**
     * A stable identifier, part of the label-cache key and of every recorded vote, e.g.
     * {@code openai:qwen2.5-72b@http://localhost:8000/v1} or {@code heuristic:steps}.
     */
    String id();

    /** The model that answers ({@code heuristic} for rule-based teachers); part of the label-cache key. */
    String model();

    /** Asks for a classification. Transient failures may be retried inside; what is left is thrown. */
    String ask(TeacherPrompt prompt) throws TeacherException, InterruptedException;

    /** How many {@link #ask} calls this teacher accepts at once. */
    default int maxConcurrency() {
        return 1;
    }

    /**
     * What, besides the prompt, determines this teacher's reply; the label cache keys replies on it and on the
     * prompt, so a cached reply is reused exactly when asking again would give the same reply. The default,
     * {@link #id()} and {@link #model()}, suits teachers whose id says everything; {@link OpenAiChatTeacher}
     * gives its model and sampling parameters, but not its URL (one server spelled {@code localhost} or
     * {@code 127.0.0.1} gives the same replies).
     *
     * @return a stable text (it is hashed into the cache key)
     */
    default String cacheIdentity() {
        return id() + '\u0000' + model();
    }

    /** Whether replies are worth caching (false for teachers that answer instantly and deterministically). */
    default boolean cacheable() {
        return true;
    }

    /** Releases what the teacher owns; the splitter never closes teachers, their creator does. */
    @Override
    default void close() {
    }
}
