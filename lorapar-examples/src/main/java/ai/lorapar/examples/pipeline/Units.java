package ai.lorapar.examples.pipeline;

import ai.djl.ndarray.NDArray;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.examples.cli.ProgressBar;
import ai.lorapar.examples.embedded.AnswerFormat;
import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import ai.lorapar.examples.plots.Plots;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.importance.ImportanceScorer;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.partition.PartitionStatistics;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import ai.lorapar.train.SftConfig;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainingListener;
import ai.lorapar.train.TrainingReport;
import ai.lorapar.train.TwoStageTrainer;
import ai.lorapar.train.grpo.GrpoConfig;
import ai.lorapar.train.grpo.GsmRewards;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The two kinds of work a run is made of, each a function of (context, seed[, recipe]) that writes its files
 * and a result JSON into its own folder, so that any process can run it:
 *
 * <ul>
 *   <li>{@link #prepareSeed}: LoRA adapters initialised from the seed (saved exactly, so every recipe of the seed
 *       starts from the same adapters), the accuracy before training, importance of both systems
 *       ({@link ImportanceScorer}), the partition at (θ, α, β) and at α = β = compareShare
 *       ({@link SubregionPartition}), the random baseline of the same sizes, and the active share against θ;</li>
 *   <li>{@link #trainRun}: one recipe's two stages ({@link TwoStageTrainer}: SFT on System 1 under the stage-1 mask,
 *       then GRPO on System 2 under the stage-2 mask) from the seed's adapters, evaluated after each stage.</li>
 * </ul>
 */
public final class Units {

    /** The adapters as initialised, exactly (A, B; {@link LoraModel#saveState}). */
    static final String ADAPTER_INIT_STATE = "adapter_init.safetensors";

    private Units() {
    }

    /** The masks file of a recipe in the seed's folder, or null for plain LoRA. */
    static String masksFile(Recipe r) {
        return switch (r) {
            case LORA_PAR -> "masks.safetensors";
            case RANDOM -> "masks-random.safetensors";
            case LORA_PAR_SHARED -> "masks-shared.safetensors";
            case PLAIN_LORA -> null;
        };
    }

    /** The stage masks of LoRA-PAR at {@code theta} (the run's α, β) in a seed's folder: an accuracy point of the θ plot. */
    static String thetaMasksFile(double theta) {
        return "masks-theta-" + PipelineSettings.number(theta) + ".safetensors";
    }

    static LoraConfig loraConfig(PipelineSettings s, long seed) {
        LoraInit init = switch (s.init.toLowerCase(Locale.ROOT)) {
            case "gaussian" -> LoraInit.GAUSSIAN;
            case "pissa" -> LoraInit.PISSA;
            case "olora" -> LoraInit.OLORA;
            default -> throw new IllegalArgumentException("--init must be gaussian, pissa or olora (importance needs a "
                    + "non-zero init), was " + s.init);
        };
        LoraTargets targets = switch (s.targets.toUpperCase(Locale.ROOT)) {
            case "QKV" -> LoraTargets.QKV;
            case "GUD" -> LoraTargets.GUD;
            case "QKVGUD" -> LoraTargets.QKVGUD;
            case "QKVOGUD" -> LoraTargets.QKVOGUD;
            default -> throw new IllegalArgumentException("--targets must be QKVGUD, QKV, GUD or QKVOGUD, was " + s.targets);
        };
        return LoraConfig.builder().targets(targets).rank(s.rank).alpha(s.loraAlpha).dropout(s.dropout).init(init)
                .seed(seed).build();
    }

    static SftConfig sftConfig(PipelineSettings s, long seed, int maxLength) {
        return SftConfig.builder().learningRate(s.sftLr).epochs(s.sftEpochs).maxSteps(s.sftSteps)
                .microBatchSize(s.sftMicroBatch).gradientAccumulation(s.sftAccumulation).maxLength(maxLength).seed(seed)
                .loggingSteps(1).cudaGraphs(s.cudaGraphs).build();
    }

    static GrpoConfig grpoConfig(PipelineSettings s, long seed, int maxLength) {
        // prompt + completion within the model's positions (only a small model has fewer than both together)
        int maxPrompt = Math.max(1, Math.min(s.maxPrompt, maxLength - s.maxCompletion));
        return GrpoConfig.builder().learningRate(s.grpoLr).epochs(s.grpoEpochs).maxSteps(s.grpoSteps).groupSize(s.group)
                .promptsPerStep(s.promptsPerStep).microBatchSize(s.grpoMicroBatch).maxPromptTokens(maxPrompt)
                .maxCompletionTokens(s.maxCompletion).klBeta(s.klBeta).temperature(s.temperature).seed(seed)
                .completionLogEvery(s.completionLogEvery).systemPrompt(GsmRewards.SYSTEM_PROMPT).loggingSteps(1).build();
    }

    /**
     * Prepares one seed: adapters, accuracy before training, importance maps, partitions, masks, θ sweep.
     * Writes into {@link PipelineContext#seedDir}: {@code adapter_init/} (PEFT), {@code adapter_init.safetensors},
     * {@code importance_system1/2.safetensors}, {@code masks*.safetensors}, {@code partition.txt},
     * {@code eval-before-*.jsonl} and {@link SeedResult#FILE}; the main seed also {@code importance-scatter.png}.
     */
    public static SeedResult prepareSeed(ModelHandle h, PipelineContext c, long seed, boolean progress) throws IOException {
        PipelineSettings s = c.settings();
        Path dir = c.seedDir(seed);
        Files.createDirectories(dir);
        boolean main = seed == c.mainSeed();
        long t0 = System.nanoTime();
        try (LoraModel lora = LoraModel.apply(h.model(), loraConfig(s, seed), h.manager())) {
            lora.saveState(dir.resolve(ADAPTER_INIT_STATE));
            lora.save(dir.resolve("adapter_init"));
            double initSeconds = (System.nanoTime() - t0) / 1e9;

            Accuracy before = main ? Accuracy.evaluate(new Generator(h.model(), h.tokenizer()), h, c,
                    dir.resolve("eval-before")) : null;

            ExampleEncoder encoder = h.encoder(null);
            long t1 = System.nanoTime();
            SeedResult.Importance[] info = new SeedResult.Importance[2];
            ImportanceMap[] maps = new ImportanceMap[2];
            try {
                for (SystemLabel system : SystemLabel.values()) {
                    int i = system == SystemLabel.SYSTEM_1 ? 0 : 1;
                    List<ai.lorapar.data.Example> examples = i == 0 ? c.system1() : c.system2();
                    long ts = System.nanoTime();
                    ProgressBar bar = progress ? new ProgressBar("importance " + system.text(),
                            Math.min(s.importanceExamples, examples.size())) : null;
                    try {
                        ImportanceScorer scorer = ImportanceScorer.builder().encoder(encoder)
                                .examples(s.importanceExamples, seed).batchSize(s.importanceBatch)
                                .listener((source, done, total) -> {
                                    if (bar != null) {
                                        bar.update(done);
                                    }
                                }).build();
                        maps[i] = scorer.score(lora, system, examples);
                    } finally {
                        if (bar != null) {
                            bar.close();
                        }
                    }
                    maps[i].save(dir.resolve("importance_system" + (i + 1) + ".safetensors"));
                    double sum = 0;
                    double max = 0;
                    for (NDArray a : maps[i].tensors().values()) {
                        sum += a.sum().getFloat();
                        max = Math.max(max, a.max().getFloat());
                    }
                    info[i] = new SeedResult.Importance(maps[i].numExamples(), maps[i].elementCount(), sum, max,
                            (System.nanoTime() - ts) / 1e9);
                }
                double importanceSeconds = (System.nanoTime() - t1) / 1e9;

                long t2 = System.nanoTime();
                PartitionStatistics.Row row;
                PartitionStatistics.Row shared = null;
                long random1;
                long random2;
                try (SubregionPartition p = SubregionPartition.builder().system1(maps[0]).system2(maps[1]).theta(s.theta)
                        .alpha(s.alpha).beta(s.beta).build()) {
                    row = p.statistics().total();
                    p.stageMasks().save(dir.resolve(masksFile(Recipe.LORA_PAR)));
                    try (StageMasks random = p.randomBaseline(seed)) {
                        random.save(dir.resolve(masksFile(Recipe.RANDOM)));
                        random1 = random.stage1Count();
                        random2 = random.stage2Count();
                    }
                    Files.writeString(dir.resolve("partition.txt"), String.format(Locale.ROOT,
                            "seed %d, theta %s alpha %s beta %s%n%s", seed, s.theta, s.alpha, s.beta,
                            p.statistics().format()), StandardCharsets.UTF_8);
                    if (main && s.plots) {
                        Plots.importanceScatter(p, maps[0], maps[1], h.manager(), String.format(Locale.ROOT,
                                "LoRA element importance by region, θ = %s (seed %d)", s.theta, seed), Plots.DEFAULT_SCATTER_POINTS,
                                seed, dir.resolve("importance-scatter.png"));
                    }
                }
                if (s.recipeList().contains(Recipe.LORA_PAR_SHARED)) {
                    try (SubregionPartition p = SubregionPartition.builder().system1(maps[0]).system2(maps[1])
                            .theta(s.theta).alpha(s.compareShare).beta(s.compareShare).build()) {
                        shared = p.statistics().total();
                        p.stageMasks().save(dir.resolve(masksFile(Recipe.LORA_PAR_SHARED)));
                    }
                }
                List<SeedResult.SweepPoint> sweep = new ArrayList<>();
                for (double theta : main ? sweepThetas(s) : List.<Double>of()) { // plotted for the main seed only
                    try (SubregionPartition p = SubregionPartition.builder().system1(maps[0]).system2(maps[1])
                            .theta(theta).alpha(s.alpha).beta(s.beta).build()) {
                        sweep.add(new SeedResult.SweepPoint(theta, p.statistics().total()));
                        if (s.thetaTrained.contains(theta) && theta != s.theta) { // trained too (Unit#runAtTheta)
                            p.stageMasks().save(dir.resolve(thetaMasksFile(theta)));
                        }
                    }
                }
                double partitionSeconds = (System.nanoTime() - t2) / 1e9;
                SeedResult result = new SeedResult(seed, before, info[0], info[1], row, shared, random1, random2, sweep,
                        initSeconds, importanceSeconds, partitionSeconds);
                writeJson(dir.resolve(SeedResult.FILE), result.toJson());
                return result;
            } finally {
                for (ImportanceMap m : maps) {
                    if (m != null) {
                        m.close();
                    }
                }
            }
        }
    }

    /**
     * Trains one recipe from the seed's adapters ({@link #prepareSeed} must have run): SFT on System 1 under the
     * recipe's stage-1 mask, then GRPO on System 2 under its stage-2 mask, each followed by an evaluation. Writes
     * into {@link PipelineContext#runDir}: {@code adapter/} (PEFT), {@code metrics-sft.jsonl},
     * {@code metrics-grpo.jsonl}, {@code completions.jsonl} and {@link RunResult#FILE}; the main run also the
     * per-example evaluation records.
     */
    public static RunResult trainRun(ModelHandle h, PipelineContext c, long seed, Recipe recipe, Double theta,
            boolean progress) throws IOException {
        PipelineSettings s = c.settings();
        Path seedDir = c.seedDir(seed);
        Path dir = c.runDir(seed, recipe, theta);
        Files.createDirectories(dir);
        Files.deleteIfExists(dir.resolve("completions.jsonl"));
        boolean main = seed == c.mainSeed() && recipe == Recipe.LORA_PAR && theta == null;
        String masksName = theta != null ? thetaMasksFile(theta) : masksFile(recipe);
        try (LoraModel lora = LoraModel.apply(h.model(), loraConfig(s, seed), h.manager());
                StageMasks masks = masksName == null ? null : StageMasks.load(seedDir.resolve(masksName), h.manager());
                StageMetricsFiles metrics = new StageMetricsFiles(dir)) {
            lora.loadState(seedDir.resolve(ADAPTER_INIT_STATE)); // exactly the adapters the importance was scored on
            ExampleEncoder encoder = h.encoder(null);
            Map<String, Accuracy> after = new HashMap<>();
            String[] stage = {""};
            Map<String, ProgressBar> bars = new HashMap<>();
            TrainingListener tracker = new TrainingListener() {
                @Override
                public void onStageStart(StageStart st) {
                    stage[0] = st.stage();
                    if (progress) {
                        bars.put(st.stage(), new ProgressBar(st.stage(), st.totalSteps()));
                    }
                }

                @Override
                public void onStep(StepMetrics m) {
                    ProgressBar b = bars.get(m.stage());
                    if (b != null) {
                        b.update(m.step());
                    }
                }

                @Override
                public void onStageEnd(StageReport r) {
                    ProgressBar b = bars.remove(r.stage());
                    if (b != null) {
                        b.close();
                    }
                }
            };
            TwoStageTrainer.Builder b = TwoStageTrainer.recipe(trainerRecipe(recipe), lora, encoder, masks)
                    .sft(sftConfig(s, seed, h.maxLength())).grpo(grpoConfig(s, seed, h.maxLength())).completionLog(dir.resolve("completions.jsonl"))
                    .listener(tracker).listener(metrics)
                    // evaluated at the end of each stage only (the interval is never reached)
                    .evaluator((model, step) -> {
                        Accuracy a = Accuracy.evaluate(new Generator(model, h.tokenizer()), h, c,
                                main ? dir.resolve("eval-after-" + stage[0]) : null, theta != null
                                        ? formatsToEvaluate(false, Recipe.RANDOM, stage[0]) // tags after GRPO only
                                        : formatsToEvaluate(main, recipe, stage[0]));
                        after.put(stage[0], a);
                        return a.metrics();
                    }, Integer.MAX_VALUE);
            TrainingReport report;
            try {
                report = b.build().run(c.system1(), c.system2());
            } finally {
                bars.values().forEach(ProgressBar::close);
            }
            lora.save(dir.resolve("adapter"));
            if (main && s.plots) {
                Plots.curves(metrics.curves(), "loss", "Training loss per stage (SFT on System 1, then GRPO on System 2)",
                        dir.resolve("loss-curves.png"));
                if (metrics.curves().stream().anyMatch(m -> m.name().equals("reward") && Double.isFinite(m.value()))) {
                    Plots.curves(metrics.curves(), "reward", "GRPO mean reward per step (System 2)",
                            dir.resolve("reward-curves.png"));
                }
            }
            Accuracy sft = after.get("sft");
            Accuracy grpo = after.get("grpo");
            RunResult result = new RunResult(seed, recipe.key(), masks == null ? "none" : masks.origin(),
                    masks == null ? lora.parameterCount() : masks.stage1Count(),
                    masks == null ? lora.parameterCount() : masks.stage2Count(), sft, grpo,
                    stage(report.sft(), metrics.steps("sft"), sft.seconds()),
                    stage(report.grpo(), metrics.steps("grpo"), grpo.seconds()));
            writeJson(dir.resolve(RunResult.FILE), result.toJson());
            return result;
        }
    }

    /**
     * The formats an evaluation after {@code stage} asks in: everything for the main run; for the other runs only
     * what the findings compare (LoRA-PAR: both formats after SFT, tags after GRPO; the other recipes: tags after
     * GRPO), which keeps the findings' seeds within README command 1's time budget.
     */
    static List<AnswerFormat> formatsToEvaluate(boolean main, Recipe recipe, String stage) {
        if (main) {
            return Accuracy.FORMATS;
        }
        boolean sft = stage.equals("sft");
        if (recipe == Recipe.LORA_PAR) {
            return sft ? Accuracy.FORMATS : List.of(AnswerFormat.TAGS);
        }
        return sft ? List.of() : List.of(AnswerFormat.TAGS);
    }

    private static TwoStageTrainer.Recipe trainerRecipe(Recipe r) {
        return switch (r) {
            case LORA_PAR, LORA_PAR_SHARED -> TwoStageTrainer.Recipe.LORA_PAR;
            case RANDOM -> TwoStageTrainer.Recipe.RANDOM_SUBSET;
            case PLAIN_LORA -> TwoStageTrainer.Recipe.PLAIN_LORA;
        };
    }

    private static RunResult.Stage stage(StageReport r, List<StepMetrics> steps, double evalSeconds) {
        StepMetrics first = steps.isEmpty() ? null : steps.get(0);
        StepMetrics last = steps.isEmpty() ? null : steps.get(steps.size() - 1);
        return new RunResult.Stage(r.steps(), r.examples(), r.tokens(), first == null ? Double.NaN : first.loss(),
                r.finalLoss(), r.time().toNanos() / 1e9 - evalSeconds,
                first == null ? Double.NaN : first.detail("reward"), last == null ? Double.NaN : last.detail("reward"),
                first == null ? Double.NaN : first.detail("kl"), last == null ? Double.NaN : last.detail("kl"));
    }

    /** The θ values of the main seed's active-share sweep: the sweep's, the run's θ and the trained ones, ascending. */
    static List<Double> sweepThetas(PipelineSettings s) {
        java.util.TreeSet<Double> all = new java.util.TreeSet<>(s.thetaSweep);
        all.add(s.theta);
        all.addAll(s.thetaTrained);
        return new ArrayList<>(all);
    }

    static void writeJson(Path file, JsonObject o) throws IOException {
        String json = new com.google.gson.GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create()
                .toJson(o);
        AtomicFiles.writeUtf8(file, w -> w.write(json));
    }

    static JsonObject readJson(Path file) throws IOException {
        return JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
    }
}
