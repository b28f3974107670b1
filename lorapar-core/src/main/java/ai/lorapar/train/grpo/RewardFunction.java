package ai.lorapar.train.grpo;

import ai.lorapar.data.Example;

import java.util.Objects;
import java.util.OptionalDouble;

/**
 * A GRPO reward: a score of one completion of an example's prompt, or "no score" (empty) when the
 * function does not apply to it. A completion that no function scores gets 0 (a warning is logged), as
 * TRL's GRPOTrainer does with {@code None} rewards.
 *
 * <p>Implementations must be side-effect free (they may be called in any order) and cheap: they run on
 * the host for every completion of every step.
 */
@FunctionalInterface
public interface RewardFunction {

    /**
     * @param example the example whose prompt was completed (its answer holds the reference)
     * @param completion the completion's text, decoded without special tokens
     * @param completionIds the completion's token ids, up to and including an end-of-sequence token
     * @return the score, or empty for "no score"
     */
    OptionalDouble score(Example example, String completion, long[] completionIds);

    /** The name under which the reward is logged (unique within a {@link RewardSet}). */
    default String name() {
        return getClass().getSimpleName();
    }

    /** {@code function} under {@code name}. */
    static RewardFunction named(String name, RewardFunction function) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(function, "function");
        if (name.isBlank()) {
            throw new IllegalArgumentException("a reward function's name must not be blank");
        }
        return new RewardFunction() {
            @Override
            public OptionalDouble score(Example example, String completion, long[] completionIds) {
                return function.score(example, completion, completionIds);
            }

            @Override
            public String name() {
                return name;
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }
}
