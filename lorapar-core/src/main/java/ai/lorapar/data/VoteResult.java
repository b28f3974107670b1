package ai.lorapar.data;

import java.util.List;
import java.util.Optional;

/**
 * The outcome of the vote on one example.
 *
 * @param label       the final label, null when the example was dropped
 * @param system1Votes votes for System 1
 * @param system2Votes votes for System 2
 * @param abstentions  teachers that gave no usable vote
 * @param decision    how the label was reached
 */
public record VoteResult(SystemLabel label, int system1Votes, int system2Votes, int abstentions, Decision decision) {

    /** How a {@link VoteResult} came about. */
    public enum Decision {
        /** One label had strictly more votes. */
        MAJORITY,
        /** Equal votes, settled by {@link TieRule#PREFER_SYSTEM_1} or {@link TieRule#PREFER_SYSTEM_2}. */
        TIE_BROKEN,
        /** Equal votes and {@link TieRule#DROP}: no label. */
        DROPPED_TIE,
        /** Every teacher abstained: no label. */
        DROPPED_NO_VOTES
    }

    /**
     * The label, if the example got one.
     *
     * @return the label or empty
     */
    public Optional<SystemLabel> labelIfAny() {
        return Optional.ofNullable(label);
    }

    /** Majority over the non-abstaining votes; {@code tieRule} settles draws. */
    public static VoteResult tally(List<Vote> votes, TieRule tieRule) {
        int s1 = 0;
        int s2 = 0;
        int abstain = 0;
        for (Vote v : votes) {
            if (v.label() == SystemLabel.SYSTEM_1) {
                s1++;
            } else if (v.label() == SystemLabel.SYSTEM_2) {
                s2++;
            } else {
                abstain++;
            }
        }
        if (s1 + s2 == 0) {
            return new VoteResult(null, 0, 0, abstain, Decision.DROPPED_NO_VOTES);
        }
        if (s1 != s2) {
            return new VoteResult(s1 > s2 ? SystemLabel.SYSTEM_1 : SystemLabel.SYSTEM_2, s1, s2, abstain, Decision.MAJORITY);
        }
        return switch (tieRule) {
            case PREFER_SYSTEM_1 -> new VoteResult(SystemLabel.SYSTEM_1, s1, s2, abstain, Decision.TIE_BROKEN);
            case PREFER_SYSTEM_2 -> new VoteResult(SystemLabel.SYSTEM_2, s1, s2, abstain, Decision.TIE_BROKEN);
            case DROP -> new VoteResult(null, s1, s2, abstain, Decision.DROPPED_TIE);
        };
    }
}
