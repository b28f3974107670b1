package ai.lorapar.examples.pipeline;

import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The paper's claims checked on a run's numbers, over its seeds: each comparison is a per-seed difference of
 * accuracy (A − B, in percentage points, on the same test items), summarised as mean ± sample standard deviation
 * over the seeds, with a 95% Student-t interval for the mean. A claim <em>holds</em> when the interval lies above
 * 0, is <em>reversed</em> when it lies below 0, and is <em>not shown</em> otherwise. Everything here is computed
 * from {@link SeedResult}s and {@link RunResult}s; nothing is typed in.
 */
public final class Findings {

    /** Where a model was evaluated: before training, after stage 1, after stage 2. */
    public enum Point {
        BEFORE("before training"), AFTER_SFT("after SFT"), AFTER_GRPO("after SFT → GRPO");

        private final String title;

        Point(String title) {
            this.title = title;
        }

        public String title() {
            return title;
        }
    }

    /** What a comparison's outcome is. */
    public enum Verdict {
        HOLDS("holds"), NOT_SHOWN("not shown"), REVERSED("reversed"), ONE_SEED("one seed, no spread");

        private final String text;

        Verdict(String text) {
            this.text = text;
        }

        public String text() {
            return text;
        }
    }

    /**
     * Mean and sample standard deviation (n − 1) of n values (std NaN for n = 1), the 95% Student-t interval of
     * the mean ({@code low}, {@code high}) and the smallest and largest value.
     */
    public record Spread(double mean, double std, int n, double low, double high, double min, double max) {
        public static Spread of(List<Double> values) {
            int n = values.size();
            if (n == 0) {
                throw new IllegalArgumentException("spread of no values");
            }
            double mean = 0;
            double min = Double.POSITIVE_INFINITY;
            double max = Double.NEGATIVE_INFINITY;
            for (double v : values) {
                mean += v;
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
            mean /= n;
            if (n < 2) {
                return new Spread(mean, Double.NaN, n, Double.NaN, Double.NaN, min, max);
            }
            double ss = 0;
            for (double v : values) {
                ss += (v - mean) * (v - mean);
            }
            double std = Math.sqrt(ss / (n - 1));
            double half = tQuantile975(n - 1) * std / Math.sqrt(n);
            return new Spread(mean, std, n, mean - half, mean + half, min, max);
        }

        /** {@code [-1.0, +3.5]}: the range over the seeds (signed). */
        public String range() {
            return String.format(Locale.ROOT, "[%+.1f, %+.1f]", min, max);
        }

        /** {@code +1.3 ± 2.1} (signed), or {@code +1.3} for one value. */
        public String signed() {
            return Double.isNaN(std) ? String.format(Locale.ROOT, "%+.1f", mean)
                    : String.format(Locale.ROOT, "%+.1f ± %.1f", mean, std);
        }

        /** {@code 51.3 ± 2.1}, or {@code 51.3} for one value. */
        public String plain() {
            return Double.isNaN(std) ? String.format(Locale.ROOT, "%.1f", mean)
                    : String.format(Locale.ROOT, "%.1f ± %.1f", mean, std);
        }

        public Verdict verdict() {
            if (n < 2) {
                return Verdict.ONE_SEED;
            }
            return low > 0 ? Verdict.HOLDS : high < 0 ? Verdict.REVERSED : Verdict.NOT_SHOWN;
        }
    }

    /**
     * One claim: recipe {@code a} at point {@code pointA} against recipe {@code b} at {@code pointB}, in an answer
     * format, judged on one group.
     *
     * @param key short name ("a", "b", ...)
     * @param title what is compared
     * @param deltas per group (and "all"): the spread of the per-seed differences, in points
     * @param verdictGroup the group the verdict is about
     */
    public record Comparison(String key, String title, String format, Recipe a, Point pointA, Recipe b, Point pointB,
            Map<String, Spread> deltas, String verdictGroup) {

        public Spread judged() {
            return deltas.get(verdictGroup);
        }

        public Verdict verdict() {
            return judged().verdict();
        }

        /** The automatically phrased sentence of the report. */
        public String sentence(String groupTitle) {
            Spread s = judged();
            String interval = Double.isNaN(s.low()) ? "" : String.format(Locale.ROOT, "; 95%% interval %+.1f to %+.1f",
                    s.low(), s.high());
            String verdict = switch (s.verdict()) {
                case HOLDS -> "holds at this size";
                case REVERSED -> "reversed at this size (the compared setting is better)";
                case NOT_SHOWN -> "does not hold at this size (the difference is within the spread over seeds)";
                case ONE_SEED -> "not judged (one seed: no spread)";
            };
            return String.format(Locale.ROOT, "(%s) %s: %s points on %s (%s format; mean ± std over %d seed%s%s): %s.",
                    key, title, s.signed(), groupTitle, format, s.n(), s.n() == 1 ? "" : "s", interval, verdict);
        }
    }

    private final Map<Long, SeedResult> seeds;
    private final Map<Long, Map<Recipe, RunResult>> runs;
    private final List<String> groups;

    public Findings(Map<Long, SeedResult> seeds, Map<Long, Map<Recipe, RunResult>> runs, List<String> groups) {
        this.seeds = seeds;
        this.runs = runs;
        this.groups = groups;
    }

    /** Accuracy (in points) of a recipe at a point, in a format and group, at one seed. */
    public double accuracy(long seed, Recipe r, Point p, String format, String group) {
        Accuracy a = switch (p) {
            case BEFORE -> seeds.get(seed).before();
            case AFTER_SFT -> runs.get(seed).get(r).afterSft();
            case AFTER_GRPO -> runs.get(seed).get(r).afterGrpo();
        };
        return a == null || !a.has(format) ? Double.NaN : 100 * a.accuracy(format, group);
    }

    /** Mean ± std over seeds of a recipe's accuracy at a point. */
    public Spread accuracy(Recipe r, Point p, String format, String group) {
        List<Double> v = new ArrayList<>();
        for (long seed : seeds.keySet()) {
            v.add(accuracy(seed, r, p, format, group));
        }
        return Spread.of(v);
    }

    /** The per-seed difference a − b (points), per group and for all items. */
    public Comparison compare(String key, String title, String format, Recipe a, Point pa, Recipe b, Point pb,
            String verdictGroup) {
        Map<String, Spread> deltas = new LinkedHashMap<>();
        List<String> all = new ArrayList<>(groups);
        all.add("all");
        for (String g : all) {
            List<Double> d = new ArrayList<>();
            for (long seed : seeds.keySet()) {
                d.add(accuracy(seed, a, pa, format, g) - accuracy(seed, b, pb, format, g));
            }
            deltas.put(g, Spread.of(d));
        }
        return new Comparison(key, title, format, a, pa, b, pb, deltas, verdictGroup);
    }

    /**
     * The comparisons the run's recipes allow: (a) importance vs a random subset of the same size, (b) SFT → GRPO
     * vs SFT alone (same format, and the paper's protocol: each asked in the format it was trained last), (c) α =
     * β = 1 vs the compared share, and plain LoRA as a reference.
     *
     * @param secondGroup the group of multi-step (System-2) items, which (b) is judged on
     */
    public List<Comparison> comparisons(PipelineSettings s, String secondGroup) {
        List<Recipe> rs = s.recipeList();
        List<Comparison> out = new ArrayList<>();
        if (rs.contains(Recipe.RANDOM)) {
            out.add(compare("a", "importance-selected elements vs a random subset of the same size, after SFT → GRPO",
                    "tags", Recipe.LORA_PAR, Point.AFTER_GRPO, Recipe.RANDOM, Point.AFTER_GRPO, "all"));
        }
        out.add(compare("b", "SFT → GRPO vs SFT alone (LoRA-PAR, both asked in GRPO's format)", "tags", Recipe.LORA_PAR,
                Point.AFTER_GRPO, Recipe.LORA_PAR, Point.AFTER_SFT, secondGroup));
        Comparison paper = compare("b'", "SFT → GRPO (asked in GRPO's tag format) vs SFT alone (asked in GSM8K's ####"
                + " format), the paper's protocol", "tags", Recipe.LORA_PAR, Point.AFTER_GRPO, Recipe.LORA_PAR,
                Point.AFTER_SFT, secondGroup);
        // the paper's protocol mixes formats: recompute a per seed from each side's own format
        Map<String, Spread> mixed = new LinkedHashMap<>();
        for (String g : paper.deltas().keySet()) {
            List<Double> d = new ArrayList<>();
            for (long seed : seeds.keySet()) {
                d.add(accuracy(seed, Recipe.LORA_PAR, Point.AFTER_GRPO, "tags", g)
                        - accuracy(seed, Recipe.LORA_PAR, Point.AFTER_SFT, "hash", g));
            }
            mixed.put(g, Spread.of(d));
        }
        out.add(new Comparison(paper.key(), paper.title(), "tags vs ####", paper.a(), paper.pointA(), paper.b(),
                paper.pointB(), mixed, secondGroup));
        if (rs.contains(Recipe.LORA_PAR_SHARED)) {
            out.add(compare("c", String.format(Locale.ROOT, "α = β = %s vs α = β = %s, after SFT → GRPO",
                    PipelineSettings.number(s.alpha), PipelineSettings.number(s.compareShare)), "tags", Recipe.LORA_PAR,
                    Point.AFTER_GRPO, Recipe.LORA_PAR_SHARED, Point.AFTER_GRPO, "all"));
        }
        if (rs.contains(Recipe.PLAIN_LORA)) {
            out.add(compare("ref", "LoRA-PAR vs plain LoRA (every element trained in both stages), after SFT → GRPO",
                    "tags", Recipe.LORA_PAR, Point.AFTER_GRPO, Recipe.PLAIN_LORA, Point.AFTER_GRPO, "all"));
        }
        return out;
    }

    /** The 97.5% quantile of Student's t with {@code dof} degrees of freedom (table to 30, then the normal's 1.96). */
    static double tQuantile975(int dof) {
        double[] t = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
            2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
            2.042};
        if (dof < 1) {
            throw new IllegalArgumentException("degrees of freedom must be >= 1, was " + dof);
        }
        return dof <= t.length ? t[dof - 1] : 1.96;
    }
}
