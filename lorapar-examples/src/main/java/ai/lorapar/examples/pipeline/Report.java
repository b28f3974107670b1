package ai.lorapar.examples.pipeline;

import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.examples.pipeline.Findings.Comparison;
import ai.lorapar.examples.pipeline.Findings.Point;
import ai.lorapar.examples.pipeline.Findings.Spread;
import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import ai.lorapar.partition.PartitionStatistics;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The summary of a run as tables: labels and κ, regions and active elements, accuracy per kind of item after
 * each stage, time per stage, the findings over the seeds, the settings that differ from the paper's. The same
 * tables go to the console (plain text) and to {@code report.md} (Markdown).
 */
final class Report {
    private final PipelineSettings s;
    private final PipelineContext c;
    private final LabelledDataset labelled;
    private final Map<Long, SeedResult> seeds;
    private final Map<Long, Map<Recipe, RunResult>> runs;
    /** LoRA-PAR's main-seed runs by θ (the run's θ and the other trained ones). */
    private final Map<Double, RunResult> byTheta;
    private final Findings findings;
    private final List<Comparison> comparisons;
    private final Map<String, Double> seconds;

    Report(PipelineSettings s, PipelineContext c, LabelledDataset labelled, Map<Long, SeedResult> seeds,
            Map<Long, Map<Recipe, RunResult>> runs, Map<Double, RunResult> byTheta, Findings findings,
            List<Comparison> comparisons, Map<String, Double> seconds) {
        this.s = s;
        this.c = c;
        this.labelled = labelled;
        this.seeds = seeds;
        this.runs = runs;
        this.byTheta = byTheta;
        this.findings = findings;
        this.comparisons = comparisons;
        this.seconds = seconds;
    }

    TextTable labels() {
        LabelStatistics st = labelled.statistics();
        TextTable t = new TextTable("labels", "System 1", "System 2", "dropped", "Fleiss' κ");
        t.row("all training examples", String.valueOf(st.system1()), String.valueOf(st.system2()),
                String.valueOf(st.dropped()), Double.isNaN(st.fleissKappa()) ? "undefined"
                        : String.format(Locale.ROOT, "%.3f (%d examples)", st.fleissKappa(), st.kappaExamples()));
        Map<String, int[]> byKind = new TreeMap<>();
        for (LabelledExample e : labelled.examples()) {
            String kind = Pipeline.kindOf(e.example());
            if (kind != null) {
                int col = e.label().map(l -> l == SystemLabel.SYSTEM_1 ? 0 : 1).orElse(2);
                byKind.computeIfAbsent(kind, k -> new int[3])[col]++;
            }
        }
        byKind.forEach((k, n) -> t.row("  kind " + k + " (not seen by the teachers)", String.valueOf(n[0]),
                String.valueOf(n[1]), String.valueOf(n[2]), ""));
        return t;
    }

    TextTable regions() {
        TextTable t = new TextTable("regions (seed " + c.mainSeed() + ", θ " + PipelineSettings.number(s.theta)
                + ", α = β = " + PipelineSettings.number(s.alpha) + ")", "elements", "share");
        PartitionStatistics.Row r = seeds.get(c.mainSeed()).partition();
        double n = r.elements();
        String[][] rows = {
            {"LoRA elements", String.valueOf(r.elements())},
            {"kept by System 1 (top θ)", String.valueOf(r.system1Kept())},
            {"kept by System 2 (top θ)", String.valueOf(r.system2Kept())},
            {"System-1 only", String.valueOf(r.system1Only())},
            {"System-2 only", String.valueOf(r.system2Only())},
            {"shared", String.valueOf(r.shared())},
            {"active in stage 1 (SFT)", String.valueOf(r.stage1())},
            {"active in stage 2 (GRPO)", String.valueOf(r.stage2())},
        };
        for (String[] row : rows) {
            t.row(row[0], row[1], String.format(Locale.ROOT, "%.1f%%", 100 * Long.parseLong(row[1]) / n));
        }
        return t;
    }

    TextTable accuracy() {
        List<String> header = new ArrayList<>();
        header.add("accuracy (seed " + c.mainSeed() + ", LoRA-PAR)");
        for (String f : List.of("hash", "tags")) {
            for (String g : c.groups()) {
                header.add(g + " (" + (f.equals("hash") ? "####" : "tags") + ")");
            }
        }
        TextTable t = new TextTable(header.toArray(String[]::new));
        SeedResult seed = seeds.get(c.mainSeed());
        RunResult run = runs.get(c.mainSeed()).get(Recipe.LORA_PAR);
        accuracyRow(t, "before training", seed.before());
        accuracyRow(t, "after SFT (System 1)", run.afterSft());
        accuracyRow(t, "after SFT → GRPO (System 2)", run.afterGrpo());
        return t;
    }

    private void accuracyRow(TextTable t, String name, Accuracy a) {
        List<String> cells = new ArrayList<>();
        cells.add(name);
        for (String f : List.of("hash", "tags")) {
            for (String g : c.groups()) {
                Accuracy.Tally x = a.tally(f, g);
                cells.add(String.format(Locale.ROOT, "%d/%d = %.0f%%", x.correct(), x.total(), 100 * x.accuracy()));
            }
        }
        t.row(cells.toArray(String[]::new));
    }

    /** Accuracy after SFT → GRPO against θ (main seed, LoRA-PAR at α, β; tags format), with each θ's active elements. */
    TextTable thetaAccuracy() {
        List<String> header = new ArrayList<>();
        header.add("θ (seed " + c.mainSeed() + ", LoRA-PAR α=β=" + PipelineSettings.number(s.alpha) + ")");
        header.add("stage 1 / 2 elements");
        for (String g : c.groups()) {
            header.add(g + " after GRPO (tags)");
        }
        TextTable t = new TextTable(header.toArray(String[]::new));
        byTheta.forEach((theta, run) -> {
            List<String> cells = new ArrayList<>();
            cells.add(PipelineSettings.number(theta) + (theta == s.theta ? " (the run's)" : ""));
            cells.add(run.stage1Elements() + " / " + run.stage2Elements());
            for (String g : c.groups()) {
                Accuracy.Tally x = run.afterGrpo().tally("tags", g);
                cells.add(String.format(Locale.ROOT, "%d/%d = %.0f%%", x.correct(), x.total(), 100 * x.accuracy()));
            }
            t.row(cells.toArray(String[]::new));
        });
        return t;
    }

    /** What each stage of the main run did: steps, loss, and for GRPO the reward and the KL from the reference. */
    TextTable training() {
        TextTable t = new TextTable("stage (main run)", "steps", "stage data", "first loss", "last loss", "first reward",
                "last reward", "first KL", "last KL");
        RunResult run = runs.get(c.mainSeed()).get(Recipe.LORA_PAR);
        stageRow(t, "SFT (System 1)", run.sft());
        stageRow(t, "GRPO (System 2)", run.grpo());
        return t;
    }

    private static void stageRow(TextTable t, String name, RunResult.Stage st) {
        t.row(name, String.valueOf(st.steps()), String.valueOf(st.examples()), fmt(st.firstLoss()), fmt(st.finalLoss()),
                fmt(st.firstReward()), fmt(st.lastReward()), fmt(st.firstKl()), fmt(st.lastKl()));
    }

    private static String fmt(double v) {
        return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%.4g", v);
    }

    TextTable times() {
        TextTable t = new TextTable("stage (main run)", "seconds");
        seconds.forEach((k, v) -> t.row(k, String.format(Locale.ROOT, "%.1f", v)));
        return t;
    }

    /** Accuracy after each stage per recipe, mean ± sd over the seeds (tags format, which GRPO trains). */
    TextTable recipes() {
        List<String> header = new ArrayList<>();
        header.add("recipe (mean ± sd over " + seeds.size() + " seeds, tags format)");
        header.add("stage 1 / 2 elements");
        for (String g : c.groups()) {
            header.add(g + " after SFT");
            header.add(g + " after GRPO");
        }
        TextTable t = new TextTable(header.toArray(String[]::new));
        for (Recipe r : s.recipeList()) {
            List<String> cells = new ArrayList<>();
            cells.add(r.title(s));
            RunResult first = runs.get(c.mainSeed()).get(r);
            cells.add(first.stage1Elements() + " / " + first.stage2Elements());
            for (String g : c.groups()) {
                Spread sft = findings.accuracy(r, Point.AFTER_SFT, "tags", g);
                cells.add(Double.isNaN(sft.mean()) ? "–" : sft.plain());
                cells.add(findings.accuracy(r, Point.AFTER_GRPO, "tags", g).plain());
            }
            t.row(cells.toArray(String[]::new));
        }
        return t;
    }

    TextTable findingsTable() {
        List<String> header = new ArrayList<>();
        header.add("finding (A − B, points)");
        List<String> all = new ArrayList<>(c.groups());
        all.add("all");
        for (String g : all) {
            header.add(g + " mean ± sd [min, max]");
        }
        header.add("verdict");
        TextTable t = new TextTable(header.toArray(String[]::new));
        for (Comparison cmp : comparisons) {
            List<String> cells = new ArrayList<>();
            cells.add("(" + cmp.key() + ") " + shortTitle(cmp));
            for (String g : all) {
                Spread sp = cmp.deltas().get(g);
                cells.add(sp.signed() + " " + sp.range());
            }
            cells.add(cmp.verdict().text() + " (on " + cmp.verdictGroup() + ")");
            t.row(cells.toArray(String[]::new));
        }
        return t;
    }

    private static String shortTitle(Comparison cmp) {
        return switch (cmp.key()) {
            case "a" -> "importance vs random subset";
            case "b" -> "SFT→GRPO vs SFT alone";
            case "b'" -> "SFT→GRPO (tags) vs SFT alone (####)";
            case "c" -> "α=β=1 vs compared α=β";
            default -> "LoRA-PAR vs plain LoRA";
        };
    }

    String console() {
        StringBuilder sb = new StringBuilder();
        sb.append('\n').append(labels().plain("  ")).append('\n').append(regions().plain("  ")).append('\n')
                .append(accuracy().plain("  ")).append('\n')
                .append(byTheta.size() > 1 ? thetaAccuracy().plain("  ") + "\n" : "")
                .append(training().plain("  ")).append('\n')
                .append(times().plain("  ")).append('\n')
                .append("Findings, computed over seeds ").append(s.seeds).append(":\n").append(recipes().plain("  "))
                .append('\n').append(findingsTable().plain("  "));
        for (Comparison cmp : comparisons) {
            sb.append("  ").append(cmp.sentence(cmp.verdictGroup())).append('\n');
        }
        return sb.toString();
    }

    String markdown() {
        StringBuilder sb = new StringBuilder();
        sb.append("# LoRA-PAR run\n\n");
        sb.append("Model: ").append(s.model == null ? "the embedded tiny model (1.03 M parameters)" : "`" + s.model + "`")
                .append("; template `").append(s.templateName()).append("`; training data: ")
                .append(s.train == null ? "generated word problems (seed " + s.dataSeed + ")" : "`" + s.train + "`")
                .append(", test: ").append(s.test == null ? "generated word problems" : "`" + s.test + "`")
                .append(" (").append(c.test().size()).append(" items, grouped by ").append(c.groupedBy()).append(").\n\n");
        sb.append("Every number below is computed by the program from this run's files.\n\n");
        sb.append("## Labels\n\n").append(labels().markdown()).append('\n');
        sb.append("## Partition\n\n").append(regions().markdown()).append('\n');
        sb.append("## Accuracy per kind of item after each stage\n\n")
                .append("Greedy decoding, exact match of the final number; `####`: asked without a system prompt "
                        + "(GSM8K's format, what SFT trains); tags: asked with GRPO's system prompt (what GRPO rewards).\n\n")
                .append(accuracy().markdown()).append('\n');
        if (byTheta.size() > 1) {
            sb.append("## Accuracy against θ\n\n").append("LoRA-PAR trained at each θ from the same adapters (main seed), "
                    + "evaluated after SFT → GRPO; one seed, so no spread (`plots/theta-sweep.png`).\n\n")
                    .append(thetaAccuracy().markdown()).append('\n');
        }
        sb.append("## Training\n\n").append(training().markdown()).append('\n');
        sb.append("## Time per stage\n\n").append(times().markdown()).append('\n');
        sb.append("## Findings over seeds ").append(s.seeds).append("\n\n")
                .append("Each seed draws its own LoRA init, importance sample, random baseline and training order; all "
                        + "recipes of a seed share its labels, importance maps and adapters' init. Differences are per "
                        + "seed on the same test items, then mean ± sample sd [min, max] over the seeds; a claim holds "
                        + "when the 95% t interval of the mean lies above 0.\n\n")
                .append(recipes().markdown()).append('\n').append(findingsTable().markdown()).append('\n');
        for (Comparison cmp : comparisons) {
            sb.append("- ").append(cmp.sentence(cmp.verdictGroup())).append('\n');
        }
        sb.append('\n');
        List<String> dev = s.deviationsFromPaper();
        sb.append("## Settings that differ from the paper's\n\n");
        if (dev.isEmpty()) {
            sb.append("None.\n");
        }
        for (String d : dev) {
            sb.append("- ").append(d).append('\n');
        }
        sb.append("\nAll settings: `settings.json`.\n\n");
        sb.append("## Files\n\n")
                .append("- `adapter/`: the PEFT adapter after both stages (main run); `adapter_init/`: as initialised\n")
                .append("- `masks.safetensors` (stage masks), `masks-random.safetensors` (random baseline), "
                        + "`importance_system1.safetensors`, `importance_system2.safetensors`, `partition.txt`\n")
                .append("- `metrics-sft.jsonl`, `metrics-grpo.jsonl`, `completions.jsonl` (GRPO samples), "
                        + "`eval-*.jsonl` (per test item)\n")
                .append("- `plots/importance-scatter.png` (paper Fig. 4), `plots/theta-sweep.png`, "
                        + "`plots/loss-curves.png`, `plots/reward-curves.png`\n")
                .append("- `labelled.jsonl`, `settings.json`, `seeds/seed-N/...`: every seed and recipe\n");
        return sb.toString();
    }
}
