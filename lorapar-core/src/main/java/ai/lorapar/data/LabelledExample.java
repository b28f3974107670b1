package ai.lorapar.data;

import java.util.List;
import java.util.Objects;
import java.util.Optional;

/** An example with every teacher's vote (in teacher order) and the result of the vote. */
public record LabelledExample(Example example, List<Vote> votes, VoteResult result) {

    /** Copies the votes. */
    public LabelledExample {
        Objects.requireNonNull(example, "example");
        votes = List.copyOf(votes);
        Objects.requireNonNull(result, "result");
    }

    /** The final label; empty when the example was dropped (tie under {@link TieRule#DROP}, or no votes). */
    public Optional<SystemLabel> label() {
        return result.labelIfAny();
    }
}
