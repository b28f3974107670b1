package ai.lorapar.examples.pipeline;

import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.TieRule;
import ai.lorapar.examples.cli.ProgressBar;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.examples.embedded.WordProblems;
import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import ai.lorapar.examples.plots.Plots;
import ai.lorapar.split.HeuristicTeacher;
import ai.lorapar.split.OpenAiChatTeacher;
import ai.lorapar.split.SplitListener;
import ai.lorapar.split.Splitter;
import ai.lorapar.split.Teacher;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The whole LoRA-PAR pipeline ({@code lorapar run}, README command 1): data → labels by teacher vote →
 * per seed: adapters, accuracy before training, importance of both systems, partition, masks (and the random
 * baseline, the compared α = β) → per seed and recipe: SFT on System 1, GRPO on System 2, each evaluated →
 * findings over the seeds, plots, {@code report.md} and a summary table on the console.
 *
 * <p>The main run (first seed, recipe lora-par) has its files copied to the top of the output folder:
 * {@code adapter/} (PEFT), {@code masks.safetensors}, {@code importance_system1/2.safetensors},
 * {@code metrics-sft.jsonl}, {@code metrics-grpo.jsonl}, {@code completions.jsonl}, {@code eval-*.jsonl},
 * {@code plots/*.png}; everything of every seed and recipe stays under {@code seeds/}.
 */
public final class Pipeline {

    /** What a finished run produced. */
    public record Outcome(Path out, Path report, String summary, LabelStatistics labels,
            Map<Long, SeedResult> seeds, Map<Long, Map<Recipe, RunResult>> runs, List<Findings.Comparison> findings,
            Map<String, Double> stageSeconds) {
    }

    private Pipeline() {
    }

    /**
     * Runs the pipeline into {@code out}.
     *
     * @param console where progress and the summary go
     * @param progress whether to draw progress bars (on stderr)
     */
    public static Outcome run(PipelineSettings s, Path out, PrintWriter console, boolean progress) throws IOException {
        s.validate();
        Files.createDirectories(out);
        Path work = out.resolve("work");
        Files.createDirectories(work);
        Map<String, Double> seconds = new LinkedHashMap<>();
        long tRun = System.nanoTime();

        // ---- data
        long t = System.nanoTime();
        Path trainFile;
        Path testFile;
        if (s.train == null) {
            Path data = out.resolve("data");
            Files.createDirectories(data);
            WordProblems.Split split = EmbeddedDefault.writeData(data, WordProblems.builder().seed(s.dataSeed).build(),
                    EmbeddedDefault.TRAIN_SIZE, EmbeddedDefault.TEST_SIZE);
            console.printf("Data: %d training and %d test word problems generated (seed %d) into %s%n",
                    split.train().size(), split.test().size(), s.dataSeed, data);
            trainFile = data.resolve("train.jsonl");
            testFile = data.resolve("test.jsonl");
        } else {
            trainFile = Path.of(s.train);
            testFile = Path.of(s.test);
        }
        List<Example> train = readExamples(trainFile, s.limitTrain, "training");
        List<Example> test = readExamples(testFile, s.limitTest, "test");
        seconds.put("data", since(t));

        // ---- labels
        t = System.nanoTime();
        List<Teacher> teachers = teachers(s);
        console.printf("Labelling %d training examples by the vote of %d teacher(s): %s%s%n", train.size(),
                teachers.size(), String.join(", ", teachers.stream().map(Teacher::id).toList()),
                s.endpoint == null ? " (heuristic teachers: an offline fallback, not role-playing LLMs)" : "");
        console.flush();
        LabelledDataset labelled = label(s, teachers, train, "label train", out.resolve("labelled.jsonl"), progress);
        LabelStatistics labelStats = labelled.statistics();
        // test items are grouped by their kind when the data has one (the word problems), else by their own label
        Map<String, String> groupOf = new LinkedHashMap<>();
        boolean byKind = test.stream().allMatch(e -> kindOf(e) != null);
        if (byKind) {
            test.forEach(e -> groupOf.put(e.id(), kindOf(e)));
        } else {
            LabelledDataset testLabels = label(s, teachers, test, "label test", out.resolve("labelled-test.jsonl"),
                    progress);
            for (LabelledExample e : testLabels.examples()) {
                groupOf.put(e.example().id(), e.label().map(l -> l == SystemLabel.SYSTEM_1 ? "system1" : "system2")
                        .orElse("system2"));
            }
        }
        List<String> groups = groupOrder(groupOf);
        List<Example> orderedTest = new ArrayList<>();
        for (String g : groups) {
            test.stream().filter(e -> g.equals(groupOf.get(e.id()))).forEach(orderedTest::add);
        }
        if (labelled.system1().isEmpty() || labelled.system2().isEmpty()) {
            throw new IllegalArgumentException("the teachers labelled " + labelled.system1().size() + " System-1 and "
                    + labelled.system2().size() + " System-2 examples of " + trainFile + ": both stages need examples");
        }
        seconds.put("label", since(t));

        String modelDir = s.model != null ? s.model : EmbeddedDefault.extractModel(work.resolve("model")).toString();
        PipelineContext context = new PipelineContext(s, modelDir, out, labelled.system1(), labelled.system2(),
                orderedTest, groupOf, groups, byKind ? "kind" : "label");
        Path contextFile = work.resolve(PipelineContext.FILE);
        context.save(contextFile);
        Files.writeString(out.resolve("settings.json"), s.toJson(), StandardCharsets.UTF_8);

        // ---- the units: per seed its preparation, then its recipes
        List<Unit> units = new ArrayList<>();
        for (long seed : s.seeds) {
            units.add(Unit.prepare(seed));
        }
        for (Recipe r : s.recipeList()) {
            for (long seed : s.seeds) {
                units.add(Unit.run(seed, r));
            }
        }
        List<Double> trainedThetas = trainedThetas(s);
        for (double theta : trainedThetas) { // the θ plot's accuracy points: LoRA-PAR at other θ, main seed only
            units.add(Unit.runAtTheta(s.seeds.get(0), theta));
        }
        console.printf("Model %s; %d seed(s) %s, recipes %s: %d units of work%s%n", s.model == null ? "embedded tiny "
                + "model" : s.model, s.seeds.size(), s.seeds, s.recipes, units.size(),
                s.workers > 1 ? " on " + s.workers + " worker processes" : "");
        console.flush();
        Map<String, Double> unitSeconds = new LinkedHashMap<>();
        ModelHandle handle = s.workers > 1 ? null : ModelHandle.open(modelDir, s.tokenizer, s.templateName(),
                s.maxLength, ModelHandle.device(s.device));
        try {
            WorkerPool.run(units, s.workers, context, contextFile, handle, progress, new WorkerPool.Listener() {
                @Override
                public void onDone(Unit unit, int worker, double sec) {
                    unitSeconds.put(unit.command(), sec);
                    console.printf(Locale.ROOT, "  done: %-50s %6.1f s%n", unit, sec);
                    console.flush();
                }
            });
        } finally {
            if (handle != null) {
                handle.close();
            }
        }

        // ---- results, findings, plots, report
        t = System.nanoTime();
        Map<Long, SeedResult> seeds = new LinkedHashMap<>();
        Map<Long, Map<Recipe, RunResult>> runs = new LinkedHashMap<>();
        for (long seed : s.seeds) {
            seeds.put(seed, SeedResult.fromJson(Units.readJson(context.seedDir(seed).resolve(SeedResult.FILE))));
            Map<Recipe, RunResult> bySeed = new LinkedHashMap<>();
            for (Recipe r : s.recipeList()) {
                bySeed.put(r, RunResult.fromJson(Units.readJson(context.runDir(seed, r).resolve(RunResult.FILE))));
            }
            runs.put(seed, bySeed);
        }
        long main = context.mainSeed();
        SeedResult mainSeed = seeds.get(main);
        RunResult mainRun = runs.get(main).get(Recipe.LORA_PAR);
        Map<Double, RunResult> byTheta = new java.util.TreeMap<>();
        byTheta.put(s.theta, mainRun);
        for (double theta : trainedThetas) {
            byTheta.put(theta, RunResult.fromJson(Units.readJson(context.runDir(main, Recipe.LORA_PAR, theta)
                    .resolve(RunResult.FILE))));
        }
        seconds.put("importance", mainSeed.importanceSeconds());
        seconds.put("partition", mainSeed.partitionSeconds());
        seconds.put("eval before", mainSeed.before().seconds());
        seconds.put("SFT", mainRun.sft().trainSeconds());
        seconds.put("eval after SFT", mainRun.afterSft().seconds());
        seconds.put("GRPO", mainRun.grpo().trainSeconds());
        seconds.put("eval after GRPO", mainRun.afterGrpo().seconds());
        double units0 = unitSeconds.values().stream().mapToDouble(Double::doubleValue).sum();
        String second = groups.size() > 1 ? groups.get(groups.size() - 1) : groups.get(0);
        Findings findings = new Findings(seeds, runs, groups);
        List<Findings.Comparison> comparisons = findings.comparisons(s, second);
        copyMainFiles(context, main);
        Path plots = out.resolve("plots");
        Files.createDirectories(plots);
        if (s.plots) {
            thetaPlot(s, context, mainSeed, byTheta, plots.resolve("theta-sweep.png"));
        }
        seconds.put("findings, plots, report", since(t));
        seconds.put(s.workers > 1 ? "other seeds, recipes (summed over workers)" : "other seeds and recipes (findings)",
                Math.max(0, units0 - unitSecondsOfMain(unitSeconds, main)));
        seconds.put("total", since(tRun));

        Report report = new Report(s, context, labelled, seeds, runs, byTheta, findings, comparisons, seconds);
        String summary = report.console();
        Path reportFile = out.resolve("report.md");
        Files.writeString(reportFile, report.markdown(), StandardCharsets.UTF_8);
        console.print(summary);
        if (s.benchLines) {
            String device = ModelHandle.device(s.device).toString();
            seconds.forEach((k, v) -> console.printf(Locale.ROOT, "BENCH pipeline stage=%s seconds=%.1f model=%s device=%s%n",
                    k.replaceAll("[^A-Za-z0-9]+", "-").replaceAll("-$", ""), v, s.model == null ? "embedded" : s.model, device));
        }
        console.println("Wrote " + out + " (report.md, adapter/, masks, importance maps, metrics, plots/)");
        console.flush();
        return new Outcome(out, reportFile, summary, labelStats, seeds, runs, comparisons, seconds);
    }

    private static double unitSecondsOfMain(Map<String, Double> unitSeconds, long main) {
        return unitSeconds.getOrDefault(Unit.prepare(main).command(), 0.0)
                + unitSeconds.getOrDefault(Unit.run(main, Recipe.LORA_PAR).command(), 0.0);
    }

    private static double since(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static List<Example> readExamples(Path file, int limit, String what) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("the " + what + " file " + file + " does not exist");
        }
        List<Example> examples = JsonlExamples.read(file, limit == 0 ? Integer.MAX_VALUE : limit);
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("the " + what + " file " + file + " has no examples");
        }
        return examples;
    }

    static List<Teacher> teachers(PipelineSettings s) {
        List<Teacher> teachers = new ArrayList<>();
        if (s.endpoint != null) {
            for (String model : s.teacherModels) {
                OpenAiChatTeacher.Builder b = OpenAiChatTeacher.builder().baseUrl(s.endpoint).model(model.strip())
                        .maxTokens(256).maxConcurrency(4).requestTimeout(Duration.ofMinutes(5));
                if (s.apiKeyEnv != null) {
                    b.apiKeyEnv(s.apiKeyEnv);
                }
                teachers.add(b.build());
            }
        } else {
            teachers.add(HeuristicTeacher.steps());
            teachers.add(HeuristicTeacher.arithmetic());
            teachers.add(HeuristicTeacher.question());
        }
        return teachers;
    }

    private static LabelledDataset label(PipelineSettings s, List<Teacher> teachers, List<Example> examples, String name,
            Path file, boolean progress) throws IOException {
        Splitter.Builder splitter = Splitter.vote(teachers).targetModel(s.targetModel).tieRule(TieRule.PREFER_SYSTEM_2);
        if (s.endpoint != null) {
            splitter.cache(file.resolveSibling(file.getFileName() + ".cache.jsonl"));
        }
        LabelledDataset labelled;
        ProgressBar bar = progress ? new ProgressBar(name, examples.size()) : null;
        try {
            splitter.listener(new SplitListener() {
                @Override
                public void onExampleLabelled(LabelledExample example, int done, int total) {
                    if (bar != null) {
                        bar.update(done);
                    }
                }
            });
            labelled = splitter.build().label(examples);
        } catch (ai.lorapar.split.TeacherException e) {
            throw new IllegalStateException("teacher configuration error, run aborted: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while labelling", e);
        } finally {
            if (bar != null) {
                bar.close();
            }
        }
        labelled.writeJsonl(file);
        return labelled;
    }

    /** The {@code kind} field of an example's source record, or null. */
    static String kindOf(Example e) {
        if (e.sourceJson() == null) {
            return null;
        }
        JsonElement j = JsonParser.parseString(e.sourceJson());
        if (!j.isJsonObject()) {
            return null;
        }
        JsonObject o = j.getAsJsonObject();
        return o.has("kind") && o.get("kind").isJsonPrimitive() ? o.get("kind").getAsString() : null;
    }

    /** Groups in report order: one-step / system1 first, then the rest alphabetically. */
    private static List<String> groupOrder(Map<String, String> groupOf) {
        List<String> groups = new ArrayList<>(groupOf.values().stream().distinct().sorted().toList());
        for (String first : List.of("system1", "one-step")) {
            if (groups.remove(first)) {
                groups.add(0, first);
            }
        }
        return groups;
    }

    /** The main run's files at the top of the output folder. */
    private static void copyMainFiles(PipelineContext c, long main) throws IOException {
        Path out = c.out();
        Path seedDir = c.seedDir(main);
        Path runDir = c.runDir(main, Recipe.LORA_PAR);
        copy(seedDir.resolve("importance_system1.safetensors"), out);
        copy(seedDir.resolve("importance_system2.safetensors"), out);
        copy(seedDir.resolve(Units.masksFile(Recipe.LORA_PAR)), out);
        copy(seedDir.resolve(Units.masksFile(Recipe.RANDOM)), out);
        copy(seedDir.resolve("partition.txt"), out);
        copyTree(seedDir.resolve("adapter_init"), out.resolve("adapter_init"));
        copyTree(runDir.resolve("adapter"), out.resolve("adapter"));
        Path plots = out.resolve("plots");
        Files.createDirectories(plots);
        copy(seedDir.resolve("importance-scatter.png"), plots);
        try (Stream<Path> files = Files.list(runDir)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                if (n.endsWith(".png")) {
                    copy(f, plots);
                } else if (n.endsWith(".jsonl")) {
                    copy(f, out);
                }
            }
        }
        try (Stream<Path> files = Files.list(seedDir)) {
            for (Path f : files.toList()) {
                if (f.getFileName().toString().startsWith("eval-before")) {
                    copy(f, out);
                }
            }
        }
    }

    private static void copy(Path file, Path folder) throws IOException {
        if (Files.isRegularFile(file)) {
            Files.copy(file, folder.resolve(file.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        if (!Files.isDirectory(from)) {
            return;
        }
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) {
                copy(f, to);
            }
        }
    }

    /** The θ values LoRA-PAR is also trained at (main seed): the settings' other than the run's θ, when LoRA-PAR runs. */
    static List<Double> trainedThetas(PipelineSettings s) {
        if (!s.recipeList().contains(Recipe.LORA_PAR)) {
            return List.of();
        }
        return s.thetaTrained.stream().distinct().filter(t -> t != s.theta).sorted().toList();
    }

    /**
     * Active share against θ (from the main seed's importance maps, no training) and the accuracy after SFT → GRPO
     * at the θ values trained ({@code byTheta}: the run's θ and {@link PipelineSettings#thetaTrained}).
     */
    private static void thetaPlot(PipelineSettings s, PipelineContext c, SeedResult seed, Map<Double, RunResult> byTheta,
            Path png) throws IOException {
        int n = seed.sweep().size();
        double[] theta = new double[n];
        double[] stage1 = new double[n];
        double[] stage2 = new double[n];
        double[] union = new double[n];
        Map<String, double[]> acc = new LinkedHashMap<>();
        for (String g : c.groups()) {
            double[] a = new double[n];
            java.util.Arrays.fill(a, Double.NaN);
            acc.put("accuracy after SFT → GRPO, " + g + " (tags)", a);
        }
        for (int i = 0; i < n; i++) {
            SeedResult.SweepPoint p = seed.sweep().get(i);
            theta[i] = p.theta();
            double total = p.counts().elements();
            stage1[i] = p.counts().stage1() / total;
            stage2[i] = p.counts().stage2() / total;
            union[i] = (p.counts().system1Only() + p.counts().system2Only() + p.counts().shared()) / total;
            RunResult run = byTheta.get(p.theta());
            if (run != null) {
                for (String g : c.groups()) {
                    acc.get("accuracy after SFT → GRPO, " + g + " (tags)")[i] = run.afterGrpo().accuracy("tags", g);
                }
            }
        }
        Map<String, double[]> shares = new LinkedHashMap<>();
        shares.put("active share, stage 1", stage1);
        shares.put("active share, stage 2", stage2);
        shares.put("active share, either stage", union);
        Plots.thetaSweep(theta, shares, acc, String.format(Locale.ROOT,
                "Active LoRA elements against θ (α = β = %s); accuracy where trained, θ = %s", PipelineSettings.number(
                        s.alpha), byTheta.keySet().stream().map(PipelineSettings::number)
                        .collect(java.util.stream.Collectors.joining(", "))), png);
    }
}
