package ai.lorapar.train.grpo;

import ai.lorapar.data.Example;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalDouble;

/**
 * Reward functions with their weights, in order. A completion's reward is the weighted sum of the
 * functions' scores, "no score" left out (TRL's {@code nansum} over {@code reward_weights}); each function
 * is logged on its own.
 *
 * <pre>{@code
 * RewardSet rewards = GsmRewards.reference().toBuilder()
 *         .weight(GsmRewards.CORRECTNESS, 2.0)           // change a weight
 *         .add(RewardFunction.named("short", (e, text, ids) -> OptionalDouble.of(ids.length < 200 ? 0.1 : 0)))
 *         .build();
 * }</pre>
 */
public final class RewardSet {

    /** A function and its weight. */
    public record Entry(RewardFunction function, double weight) {
        public Entry {
            Objects.requireNonNull(function, "function");
            if (!Double.isFinite(weight)) {
                throw new IllegalArgumentException("weight of reward '" + function.name() + "' must be finite, got "
                        + weight);
            }
        }

        public String name() {
            return function.name();
        }
    }

    private final List<Entry> entries;

    private RewardSet(List<Entry> entries) {
        this.entries = List.copyOf(entries);
    }

    /** An empty builder. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these functions and weights. */
    public Builder toBuilder() {
        Builder b = new Builder();
        for (Entry e : entries) {
            b.entries.put(e.name(), e);
        }
        return b;
    }

    public List<Entry> entries() {
        return entries;
    }

    /** The functions' names, in order. */
    public List<String> names() {
        return entries.stream().map(Entry::name).toList();
    }

    public int size() {
        return entries.size();
    }

    /**
     * Every function's score of every completion: {@code [completion][function]}, NaN for "no score".
     *
     * @throws IllegalArgumentException for lists of different sizes, or a function returning NaN/Inf (named)
     */
    public double[][] scores(List<Example> examples, List<String> completions, List<long[]> completionIds) {
        if (examples.size() != completions.size() || examples.size() != completionIds.size()) {
            throw new IllegalArgumentException("examples (" + examples.size() + "), completions (" + completions.size()
                    + ") and completion ids (" + completionIds.size() + ") differ in number");
        }
        double[][] out = new double[examples.size()][entries.size()];
        for (int i = 0; i < examples.size(); i++) {
            for (int f = 0; f < entries.size(); f++) {
                RewardFunction fn = entries.get(f).function();
                OptionalDouble s = fn.score(examples.get(i), completions.get(i), completionIds.get(i));
                if (s.isPresent() && !Double.isFinite(s.getAsDouble())) {
                    throw new IllegalArgumentException("reward '" + fn.name() + "' returned " + s.getAsDouble()
                            + " for example '" + examples.get(i).id() + "'; return a finite score or empty");
                }
                out[i][f] = s.isPresent() ? s.getAsDouble() : Double.NaN;
            }
        }
        return out;
    }

    /** The weighted sum per completion, "no score" (NaN) left out; 0 for a completion no function scored. */
    public double[] total(double[][] scores) {
        double[] out = new double[scores.length];
        for (int i = 0; i < scores.length; i++) {
            double s = 0;
            for (int f = 0; f < entries.size(); f++) {
                if (!Double.isNaN(scores[i][f])) {
                    s += scores[i][f] * entries.get(f).weight();
                }
            }
            out[i] = s;
        }
        return out;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("RewardSet[");
        for (int i = 0; i < entries.size(); i++) {
            sb.append(i > 0 ? ", " : "").append(entries.get(i).name()).append('×').append(entries.get(i).weight());
        }
        return sb.append(']').toString();
    }

    /** Functions by name, in insertion order. */
    public static final class Builder {
        private final Map<String, Entry> entries = new LinkedHashMap<>();

        private Builder() {}

        /** Adds {@code function} with weight 1. */
        public Builder add(RewardFunction function) {
            return add(function, 1.0);
        }

        /** Adds {@code function} with {@code weight}; its name must be new. */
        public Builder add(RewardFunction function, double weight) {
            Entry e = new Entry(function, weight);
            if (entries.containsKey(e.name())) {
                throw new IllegalArgumentException("a reward named '" + e.name() + "' is already in the set; use "
                        + "RewardFunction.named to give another name");
            }
            entries.put(e.name(), e);
            return this;
        }

        /** Sets the weight of the function named {@code name}. */
        public Builder weight(String name, double weight) {
            Entry e = entries.get(name);
            if (e == null) {
                throw new IllegalArgumentException("no reward named '" + name + "' (have " + entries.keySet() + ")");
            }
            entries.put(name, new Entry(e.function(), weight));
            return this;
        }

        /** Removes the function named {@code name}. */
        public Builder remove(String name) {
            if (entries.remove(name) == null) {
                throw new IllegalArgumentException("no reward named '" + name + "' (have " + entries.keySet() + ")");
            }
            return this;
        }

        public RewardSet build() {
            if (entries.isEmpty()) {
                throw new IllegalStateException("a reward set needs at least one reward function");
            }
            return new RewardSet(Collections.unmodifiableList(new ArrayList<>(entries.values())));
        }
    }
}
