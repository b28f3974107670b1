package ai.lorapar.data;

import static ai.lorapar.data.SystemLabel.SYSTEM_1;
import static ai.lorapar.data.SystemLabel.SYSTEM_2;
import static org.assertj.core.api.Assertions.assertThat;

import ai.lorapar.data.VoteResult.Decision;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class VoteTallyTest {

    private static List<Vote> votes(SystemLabel... labels) {
        List<Vote> votes = new ArrayList<>();
        for (int i = 0; i < labels.length; i++) {
            votes.add(new Vote("t" + i, labels[i], labels[i] == null ? "I'm sorry" : labels[i].text(), "n", false));
        }
        return votes;
    }

    @Test
    void oddTeacherCountHasAStrictMajority() {
        VoteResult r = VoteResult.tally(votes(SYSTEM_1, SYSTEM_2, SYSTEM_1), TieRule.DROP);
        assertThat(r).isEqualTo(new VoteResult(SYSTEM_1, 2, 1, 0, Decision.MAJORITY));
        assertThat(VoteResult.tally(votes(SYSTEM_2, SYSTEM_2, SYSTEM_1, SYSTEM_2, SYSTEM_1), TieRule.PREFER_SYSTEM_1))
                .isEqualTo(new VoteResult(SYSTEM_2, 2, 3, 0, Decision.MAJORITY));
    }

    @Test
    void evenTeacherCountTieFollowsTheRule() {
        List<Vote> tie = votes(SYSTEM_1, SYSTEM_2, SYSTEM_2, SYSTEM_1);
        assertThat(VoteResult.tally(tie, TieRule.PREFER_SYSTEM_2)).isEqualTo(new VoteResult(SYSTEM_2, 2, 2, 0, Decision.TIE_BROKEN));
        assertThat(VoteResult.tally(tie, TieRule.PREFER_SYSTEM_1)).isEqualTo(new VoteResult(SYSTEM_1, 2, 2, 0, Decision.TIE_BROKEN));
        assertThat(VoteResult.tally(tie, TieRule.DROP)).isEqualTo(new VoteResult(null, 2, 2, 0, Decision.DROPPED_TIE));
    }

    @Test
    void abstentionsDoNotCountAndCanCreateATie() {
        assertThat(VoteResult.tally(votes(SYSTEM_1, null, SYSTEM_2), TieRule.PREFER_SYSTEM_1))
                .isEqualTo(new VoteResult(SYSTEM_1, 1, 1, 1, Decision.TIE_BROKEN));
        assertThat(VoteResult.tally(votes(null, null, SYSTEM_2), TieRule.PREFER_SYSTEM_1))
                .isEqualTo(new VoteResult(SYSTEM_2, 0, 1, 2, Decision.MAJORITY));
    }

    @Test
    void allAbstentionsAreDroppedWhateverTheTieRule() {
        for (TieRule rule : TieRule.values()) {
            assertThat(VoteResult.tally(votes(null, null), rule)).isEqualTo(new VoteResult(null, 0, 0, 2, Decision.DROPPED_NO_VOTES));
        }
    }
}
