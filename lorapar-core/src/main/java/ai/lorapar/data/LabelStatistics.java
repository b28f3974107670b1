package ai.lorapar.data;

import java.util.Locale;
import java.util.Map;

/**
 * Counts of a labelling run.
 *
 * @param examples        examples voted on
 * @param system1         examples labelled System 1
 * @param system2         examples labelled System 2
 * @param tiesBroken      of those, labelled by the tie rule
 * @param droppedTies     left unlabelled because of a draw under {@link TieRule#DROP}
 * @param droppedNoVotes  left unlabelled because every teacher abstained
 * @param abstentionsByTeacher abstentions per teacher id
 * @param cachedReplies   replies taken from the label cache instead of asking
 * @param fleissKappa     agreement between teachers (see {@link FleissKappa#ofTeachers}); NaN when undefined
 * @param kappaExamples   examples on which every teacher voted, the ones κ is computed over
 */
public record LabelStatistics(int examples, int system1, int system2, int tiesBroken, int droppedTies,
                              int droppedNoVotes, Map<String, Integer> abstentionsByTeacher, int cachedReplies,
                              double fleissKappa, int kappaExamples) {

    /** Copies the map. */
    public LabelStatistics {
        abstentionsByTeacher = Map.copyOf(abstentionsByTeacher);
    }

    /**
     * Examples left unlabelled.
     *
     * @return ties dropped plus examples without votes
     */
    public int dropped() {
        return droppedTies + droppedNoVotes;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "%d examples: System1 %d, System2 %d (%d by tie rule), dropped %d (%d ties, %d without votes); "
                        + "abstentions %s; cached replies %d; Fleiss' kappa %.3f over %d examples",
                examples, system1, system2, tiesBroken, dropped(), droppedTies, droppedNoVotes,
                new java.util.TreeMap<>(abstentionsByTeacher), cachedReplies, fleissKappa, kappaExamples);
    }
}
