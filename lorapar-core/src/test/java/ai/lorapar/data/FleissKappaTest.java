package ai.lorapar.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.junit.jupiter.api.Test;

class FleissKappaTest {

    /**
     * The worked example of Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa"): 10 subjects, 14 raters,
     * 5 categories. By hand: p_j = 0.143, 0.200, 0.279, 0.150, 0.229; P̄ = 0.378, P̄e = 0.213, κ = 0.210.
     */
    @Test
    void textbookExample() {
        List<int[]> table = List.of(
                new int[] {0, 0, 0, 0, 14},
                new int[] {0, 2, 6, 4, 2},
                new int[] {0, 0, 3, 5, 6},
                new int[] {0, 3, 9, 2, 0},
                new int[] {2, 2, 8, 1, 1},
                new int[] {7, 7, 0, 0, 0},
                new int[] {3, 2, 6, 3, 0},
                new int[] {2, 5, 3, 2, 2},
                new int[] {6, 5, 2, 1, 0},
                new int[] {0, 2, 2, 3, 7});
        assertThat(FleissKappa.compute(table)).isCloseTo(0.20993, within(1e-4));
    }

    @Test
    void perfectAgreementIsOneAndDegenerateCasesAreNaN() {
        assertThat(FleissKappa.compute(List.of(new int[] {3, 0}, new int[] {0, 3}))).isEqualTo(1.0);
        assertThat(FleissKappa.compute(List.of(new int[] {3, 0}, new int[] {3, 0}))).isNaN(); // one category only
        assertThat(FleissKappa.compute(List.of())).isNaN();
        assertThat(FleissKappa.compute(List.of(new int[] {1, 0}))).isNaN(); // one rater
    }

    @Test
    void systematicDisagreementIsNegative() {
        // Two raters who always disagree: P̄ = 0, P̄e = 0.5, κ = -1.
        assertThat(FleissKappa.compute(List.of(new int[] {1, 1}, new int[] {1, 1}))).isEqualTo(-1.0);
    }

    @Test
    void rowsWithADifferentRaterCountAreRejected() {
        assertThatThrownBy(() -> FleissKappa.compute(List.of(new int[] {2, 1}, new int[] {1, 1})))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("subject 1 has 2 ratings");
    }

    @Test
    void teacherKappaSkipsExamplesWithAnAbstention() {
        Example ex = Example.of("1", "q", "a");
        Vote s1 = new Vote("a", SystemLabel.SYSTEM_1, "System1", "n", false);
        Vote s2 = new Vote("b", SystemLabel.SYSTEM_2, "System2", "n", false);
        Vote s2b = new Vote("a", SystemLabel.SYSTEM_2, "System2", "n", false);
        Vote s1b = new Vote("b", SystemLabel.SYSTEM_1, "System1", "n", false);
        Vote none = new Vote("b", null, "", "empty reply", false);
        List<LabelledExample> labelled = List.of(
                new LabelledExample(ex, List.of(s1, s1b), VoteResult.tally(List.of(s1, s1b), TieRule.DROP)),
                new LabelledExample(ex, List.of(s2b, s2), VoteResult.tally(List.of(s2b, s2), TieRule.DROP)),
                new LabelledExample(ex, List.of(s1, none), VoteResult.tally(List.of(s1, none), TieRule.DROP)));
        // Only the first two count, and there the teachers agree perfectly.
        assertThat(FleissKappa.ofTeachers(labelled)).isEqualTo(1.0);
    }
}
