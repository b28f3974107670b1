package ai.lorapar.data;

import java.util.List;

/**
 * Fleiss' kappa: chance-corrected agreement of a fixed number of raters over categorical ratings.
 *
 * <p>With N subjects, n raters per subject, n_ij the raters putting subject i in category j:
 * P_i = (Σ_j n_ij² − n) / (n(n−1)), P̄ = mean P_i, p_j = Σ_i n_ij / (N n), P̄_e = Σ_j p_j², κ = (P̄ − P̄_e) / (1 − P̄_e).
 * κ = 1 is perfect agreement, 0 is what chance gives, negative is worse than chance. It is undefined (NaN
 * here) without subjects, with fewer than two raters, or when every rating falls in one category (P̄_e = 1).
 */
public final class FleissKappa {

    private FleissKappa() {
    }

    /**
     * @param counts one row per subject, one column per category; every row must sum to the same rater count
     * @return κ, or NaN where it is undefined
     */
    public static double compute(List<int[]> counts) {
        if (counts.isEmpty()) {
            return Double.NaN;
        }
        int categories = counts.get(0).length;
        int raters = sum(counts.get(0));
        if (raters < 2) {
            return Double.NaN;
        }
        double[] categoryTotals = new double[categories];
        double agreementSum = 0;
        for (int i = 0; i < counts.size(); i++) {
            int[] row = counts.get(i);
            if (row.length != categories || sum(row) != raters) {
                throw new IllegalArgumentException("subject " + i + " has " + sum(row) + " ratings over " + row.length
                        + " categories; Fleiss' kappa needs " + raters + " ratings over " + categories + " for every subject");
            }
            double squares = 0;
            for (int j = 0; j < categories; j++) {
                if (row[j] < 0) {
                    throw new IllegalArgumentException("subject " + i + " has a negative count");
                }
                squares += (double) row[j] * row[j];
                categoryTotals[j] += row[j];
            }
            agreementSum += (squares - raters) / ((double) raters * (raters - 1));
        }
        double observed = agreementSum / counts.size();
        double expected = 0;
        for (double total : categoryTotals) {
            double p = total / ((double) counts.size() * raters);
            expected += p * p;
        }
        if (expected >= 1.0 - 1e-12) {
            return Double.NaN;
        }
        return (observed - expected) / (1 - expected);
    }

    /**
     * κ between the teachers of a labelled set, over the examples on which every teacher voted (abstentions
     * would make the rater count vary, which Fleiss' kappa does not allow).
     */
    public static double ofTeachers(List<LabelledExample> examples) {
        List<int[]> rows = examples.stream()
                .filter(e -> !e.votes().isEmpty() && e.votes().stream().noneMatch(Vote::isAbstention))
                .map(e -> {
                    int[] row = new int[2];
                    e.votes().forEach(v -> row[v.label().ordinal()]++);
                    return row;
                })
                .toList();
        return compute(rows);
    }

    private static int sum(int[] row) {
        int s = 0;
        for (int v : row) {
            s += v;
        }
        return s;
    }
}
