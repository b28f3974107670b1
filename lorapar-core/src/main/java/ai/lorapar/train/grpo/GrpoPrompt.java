package ai.lorapar.train.grpo;

import ai.lorapar.data.Example;

import java.util.Arrays;
import java.util.Objects;

/**
 * A prompt for GRPO: the example (its answer is what rewards compare with) and the token ids the model is
 * given (template, system prompt and special tokens applied; no padding).
 */
public record GrpoPrompt(Example example, long[] ids) {

    public GrpoPrompt {
        Objects.requireNonNull(example, "example");
        Objects.requireNonNull(ids, "ids");
        if (ids.length == 0) {
            throw new IllegalArgumentException("prompt of example '" + example.id() + "' has no token");
        }
        ids = ids.clone();
    }

    @Override
    public long[] ids() {
        return ids.clone();
    }

    int length() {
        return ids.length;
    }

    long[] idsUnsafe() {
        return ids;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GrpoPrompt p && example.equals(p.example) && Arrays.equals(ids, p.ids);
    }

    @Override
    public int hashCode() {
        return 31 * example.hashCode() + Arrays.hashCode(ids);
    }

    @Override
    public String toString() {
        return "GrpoPrompt[" + example.id() + ", " + ids.length + " ids]";
    }
}
