package ai.lorapar.importance;

import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;

import java.util.List;

/**
 * Progress of an {@link ImportanceScorer}. Called on the scoring thread; keep it quick.
 * {@code source} names what is scored: {@code System1}, {@code System2}, or {@code examples}.
 */
@FunctionalInterface
public interface ImportanceListener {
    /** After each batch: {@code done} of {@code total} examples have been scored. */
    void progress(String source, int done, int total);

    /**
     * Once per scoring run, before the first batch: the examples that will be scored (the seeded sample,
     * in sample order) and those skipped because they did not fit the encoder's maximum length.
     */
    default void selected(String source, List<EncodedExample> examples, List<Example> skipped) {}

    /** A listener that ignores everything. */
    static ImportanceListener none() {
        return (source, done, total) -> {};
    }
}
