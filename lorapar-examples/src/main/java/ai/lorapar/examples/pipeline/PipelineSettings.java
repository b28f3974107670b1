package ai.lorapar.examples.pipeline;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Everything a pipeline run ({@link Pipeline}) is set to: data, model, teachers, LoRA, importance, partition,
 * both training stages, evaluation, seeds and recipes of the findings. Plain fields, so that the whole run is
 * one JSON object ({@link #toJson()}) that worker processes read back ({@link #fromJson}) and the report
 * records.
 *
 * <p>The defaults ({@link #embeddedDefault()}) are what README command 1 runs on the embedded tiny model on a
 * CPU within its time budget; {@link #deviationsFromPaper()} lists, with the reason, every setting that
 * differs from the paper's (design.md §1), and {@link #paper()} gives the paper's values for a real model.
 */
public final class PipelineSettings {

    /** The recipes the findings compare (see {@link Recipe}); the first is the main run. */
    public enum Recipe {
        /** LoRA-PAR at the run's α, β (the main run). */
        LORA_PAR("lora-par", "LoRA-PAR"),
        /** A random subset with the LoRA-PAR masks' element counts per stage ({@code partition.randomBaseline(seed)}). */
        RANDOM("random", "random subset"),
        /** LoRA-PAR at α = β = {@link #compareShare} (the paper's Table 2 row). */
        LORA_PAR_SHARED("lora-par-shared", "LoRA-PAR α=β=%s"),
        /** Plain LoRA: every element in both stages (a reference row). */
        PLAIN_LORA("plain-lora", "plain LoRA");

        private final String key;
        private final String title;

        Recipe(String key, String title) {
            this.key = key;
            this.title = title;
        }

        /** The spelling on the command line and in folder names. */
        public String key() {
            return key;
        }

        /** A human title, α filled in for {@link #LORA_PAR_SHARED}. */
        public String title(PipelineSettings s) {
            return this == LORA_PAR ? String.format(Locale.ROOT, "LoRA-PAR α=β=%s", number(s.alpha))
                    : this == LORA_PAR_SHARED ? String.format(Locale.ROOT, title, number(s.compareShare)) : title;
        }

        public static Recipe parse(String key) {
            for (Recipe r : values()) {
                if (r.key.equals(key.strip().toLowerCase(Locale.ROOT))) {
                    return r;
                }
            }
            throw new IllegalArgumentException("unknown recipe '" + key + "' (lora-par, random, lora-par-shared, plain-lora)");
        }
    }

    // ---- data and model
    /** Hugging Face model folder; null: the embedded tiny model. {@code random:SHAPE} (qwen2.5-0.5b, llama2-7b): random weights of a benchmark shape, for timing. */
    public String model;
    /** Folder of tokenizer.json (default: the model folder). */
    public String tokenizer;
    /** Prompt template: embedded, plain, chatml, llama2-chat; null: embedded for the embedded model, else plain. */
    public String template;
    /** Training JSONL; null: the shipped word-problem training split. */
    public String train;
    /** Seed of the generated word problems when {@link #train} is null (the shipped split's: 42). */
    public long dataSeed = 42;
    /** Test JSONL; null: the shipped test split. */
    public String test;
    /** First N training / test examples only (0: all). */
    public int limitTrain;
    public int limitTest;
    /** cpu, gpu, or null (a GPU when there is one). */
    public String device;
    /** Parallel worker processes for the units of work (1: everything in this process). */
    public int workers = 1;

    // ---- labelling
    /** OpenAI-compatible endpoint of LLM teachers; null: the three heuristic teachers offline. */
    public String endpoint;
    /** One teacher per model served at {@link #endpoint}. */
    public List<String> teacherModels = new ArrayList<>();
    /** Environment variable holding the endpoint's API key (never logged). */
    public String apiKeyEnv;
    /** The model the teachers role-play. */
    public String targetModel = "LLaMA2 7B";

    // ---- LoRA and importance
    public int rank = 8;
    public double loraAlpha = 64;
    public double dropout = 0.05;
    public String targets = "QKVGUD";
    /** gaussian (the reference's N(0, 0.01) for A and B), pissa or olora: importance needs a non-zero init. */
    public String init = "gaussian";
    public int importanceExamples = 100;
    public int importanceBatch = 16;

    // ---- partition
    public double theta = 0.9;
    public double alpha = 1.0;
    public double beta = 1.0;
    /** α = β of the {@link Recipe#LORA_PAR_SHARED} comparison. */
    public double compareShare = 0.5;
    /** θ values of the active-share sweep (from the importance maps; no training). */
    public List<Double> thetaSweep = new ArrayList<>(List.of(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0));
    /**
     * θ values at which the main seed also trains LoRA-PAR (both stages, evaluated after GRPO), besides {@link #theta}:
     * the accuracy points of the θ plot. Empty: accuracy at {@link #theta} only.
     */
    public List<Double> thetaTrained = new ArrayList<>(List.of(0.5, 0.7));

    // ---- stage 1: SFT
    public double sftLr = 2e-4;
    public int sftEpochs = 1;
    /** Optimizer steps, overriding epochs (0: whole epochs). */
    public long sftSteps = 8;
    public int sftMicroBatch = 16;
    public int sftAccumulation = 2;
    public int maxLength = 512;

    // ---- stage 2: GRPO
    public double grpoLr = 2e-3;
    public int grpoEpochs = 1;
    /** Optimizer steps, overriding epochs (0: whole epochs). */
    public long grpoSteps = 5;
    public int group = 8;
    public int promptsPerStep = 2;
    public int grpoMicroBatch = 16;
    public int maxPrompt = 128;
    public int maxCompletion = 160;
    public double klBeta = 0.04;
    public double temperature = 1.0;
    public int completionLogEvery = 1;

    // ---- evaluation
    public int evalMaxNew = 160;
    public int evalBatch = 64;

    /** Draw the PNG plots (needs the java.desktop module; the GPU machine's trimmed runtime has none). */
    public boolean plots = true;
    /** Print one {@code BENCH pipeline stage=NAME seconds=S} line per stage at the end (for .ci/gpu/bench). */
    public boolean benchLines;
    /** SFT passes replayed from CUDA graphs ({@code SftConfig.cudaGraphs}; a GPU with the project's JNI). */
    public boolean cudaGraphs;

    // ---- findings
    public List<Long> seeds = new ArrayList<>(List.of(1L, 2L, 3L));
    public List<String> recipes = new ArrayList<>(List.of("lora-par", "random", "lora-par-shared"));

    /** The settings of README command 1 (the embedded tiny model on a CPU; see {@link #deviationsFromPaper()}). */
    public static PipelineSettings embeddedDefault() {
        return new PipelineSettings();
    }

    /**
     * The paper's settings (design.md §1) for a real model: stage 1 lr 2e-4, 32 examples per step, 1 epoch;
     * stage 2 lr 5e-6, 4 prompts × 8 per step, 1 epoch, 256 completion tokens; evaluation up to 256 tokens.
     */
    public static PipelineSettings paper() {
        PipelineSettings s = new PipelineSettings();
        s.sftLr = 2e-4;
        s.sftMicroBatch = 8;
        s.sftAccumulation = 4;
        s.grpoLr = 5e-6;
        s.grpoSteps = 0;
        s.sftSteps = 0;
        s.promptsPerStep = 4;
        s.maxCompletion = 256;
        s.evalMaxNew = 256;
        s.completionLogEvery = 10;
        return s;
    }

    /** Each setting that differs from the paper's, with the paper's value and why. Empty for {@link #paper()}. */
    public List<String> deviationsFromPaper() {
        PipelineSettings p = paper();
        List<String> d = new ArrayList<>();
        if (grpoLr != p.grpoLr) {
            d.add(String.format(Locale.ROOT, "GRPO learning rate %s (paper 5e-6): at 5e-6 Adam moves each element by about "
                    + "5e-6 per step (about 1e-4 over a few dozen steps, against elements of about 1e-2), which leaves the "
                    + "policy where it started; the report shows how far it moved (mean KL from the reference, first and "
                    + "last step)",
                    number(grpoLr)));
        }
        if (grpoSteps != p.grpoSteps || grpoEpochs != p.grpoEpochs) {
            d.add(String.format(Locale.ROOT, "GRPO %s (paper: 1 epoch over the System-2 examples): the time budget",
                    grpoSteps > 0 ? grpoSteps + " optimizer steps" : grpoEpochs + " epoch(s)"));
        }
        if (promptsPerStep != p.promptsPerStep) {
            d.add(String.format(Locale.ROOT, "GRPO %d prompts x %d completions per step (paper 4 x 8): the time budget",
                    promptsPerStep, group));
        }
        if (group != 8) {
            d.add("GRPO group size " + group + " (paper 8)");
        }
        if (maxCompletion != p.maxCompletion) {
            d.add(String.format(Locale.ROOT, "GRPO completions of at most %d tokens (paper 256): the tiny model's worked "
                    + "answers are shorter (about 90 tokens), and a runaway completion costs its whole budget", maxCompletion));
        }
        if (evalMaxNew != p.evalMaxNew) {
            d.add(String.format(Locale.ROOT, "evaluation answers of at most %d tokens (256 elsewhere): as above",
                    evalMaxNew));
        }
        if (sftLr != p.sftLr) {
            d.add(String.format(Locale.ROOT, "SFT learning rate %s (paper 2e-4)", number(sftLr)));
        }
        if (sftMicroBatch * sftAccumulation != 32) {
            d.add(String.format(Locale.ROOT, "SFT %d examples per step (paper 32)", sftMicroBatch * sftAccumulation));
        }
        if (sftSteps > 0 || sftEpochs != 1) {
            d.add(sftSteps > 0 ? "SFT " + sftSteps + " optimizer steps (paper: 1 epoch): the time budget"
                    : "SFT " + sftEpochs + " epochs (paper 1)");
        }
        if (importanceExamples != 100) {
            d.add("importance from " + importanceExamples + " examples per system (paper 100)");
        }
        if (rank != 8 || loraAlpha != 64 || dropout != 0.05 || !targets.equalsIgnoreCase("QKVGUD")) {
            d.add(String.format(Locale.ROOT, "LoRA %s r=%d alpha=%s dropout %s (paper QKVGUD r=8 alpha=64 dropout 0.05)",
                    targets, rank, number(loraAlpha), number(dropout)));
        }
        if (klBeta != 0.04 || temperature != 1.0) {
            d.add(String.format(Locale.ROOT, "GRPO β_KL %s, temperature %s (reference 0.04, 1.0)", number(klBeta),
                    number(temperature)));
        }
        if (theta != 0.9 || alpha != 1 || beta != 1) {
            d.add(String.format(Locale.ROOT, "θ = %s, α = %s, β = %s (paper's best 0.9, 1, 1)", number(theta), number(alpha),
                    number(beta)));
        }
        return d;
    }

    /** Checks every value, naming the option that is wrong. */
    public void validate() {
        positive("--limit-train", limitTrain, true);
        positive("--limit-test", limitTest, true);
        positive("--workers", workers, false);
        positive("--rank", rank, false);
        positive("--importance-examples", importanceExamples, false);
        positive("--importance-batch", importanceBatch, false);
        share("--theta", theta, false);
        share("--alpha", alpha, true);
        share("--beta", beta, true);
        share("--compare-share", compareShare, true);
        for (double t : thetaSweep) {
            share("--theta-sweep", t, false);
        }
        for (double t : thetaTrained) {
            share("--theta-trained", t, false);
        }
        if (dropout < 0 || dropout >= 1) {
            throw new IllegalArgumentException("--dropout must be in [0, 1), was " + dropout);
        }
        if (!(sftLr > 0) || !(grpoLr > 0)) {
            throw new IllegalArgumentException("--sft-lr and --grpo-lr must be positive, were " + sftLr + " and " + grpoLr);
        }
        positive("--sft-micro-batch", sftMicroBatch, false);
        positive("--sft-accumulation", sftAccumulation, false);
        positive("--group", group, false);
        positive("--prompts-per-step", promptsPerStep, false);
        positive("--grpo-micro-batch", grpoMicroBatch, false);
        positive("--max-completion", maxCompletion, false);
        positive("--max-prompt", maxPrompt, false);
        positive("--eval-max-new", evalMaxNew, false);
        positive("--eval-batch", evalBatch, false);
        if (seeds.isEmpty()) {
            throw new IllegalArgumentException("--seeds needs at least one seed");
        }
        if (seeds.stream().distinct().count() != seeds.size()) {
            throw new IllegalArgumentException("--seeds has a seed twice: " + seeds);
        }
        if (recipes.isEmpty()) {
            throw new IllegalArgumentException("--recipes needs at least one recipe");
        }
        List<Recipe> rs = recipeList();
        if (rs.get(0) != Recipe.LORA_PAR) {
            throw new IllegalArgumentException("--recipes must start with lora-par (the main run), was " + recipes);
        }
        if (rs.stream().distinct().count() != rs.size()) {
            throw new IllegalArgumentException("--recipes names a recipe twice: " + recipes);
        }
        if (endpoint != null && teacherModels.isEmpty()) {
            throw new IllegalArgumentException("--endpoint needs --teacher-model");
        }
        if (endpoint == null && !teacherModels.isEmpty()) {
            throw new IllegalArgumentException("--teacher-model needs --endpoint");
        }
    }

    /** {@link #recipes} parsed. */
    public List<Recipe> recipeList() {
        List<Recipe> out = new ArrayList<>();
        for (String r : recipes) {
            out.add(Recipe.parse(r));
        }
        return out;
    }

    /** Whether the run uses the embedded tiny model. */
    public boolean embeddedModel() {
        return model == null;
    }

    /** The template's name: {@link #template}, else embedded for the embedded model, else plain. */
    public String templateName() {
        return template != null ? template : embeddedModel() ? "embedded" : "plain";
    }

    private static final Gson GSON = new GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues().create();

    public String toJson() {
        return GSON.toJson(this);
    }

    public static PipelineSettings fromJson(String json) {
        return GSON.fromJson(json, PipelineSettings.class);
    }

    /** A copy (through JSON). */
    public PipelineSettings copy() {
        return fromJson(toJson());
    }

    /** {@code 0.5}, {@code 1}, {@code 2e-3}: a setting as one writes it. */
    static String number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e6) {
            return String.valueOf((long) v);
        }
        if (Math.abs(v) < 1e-2) {
            String s = String.format(Locale.ROOT, "%.0e", v);
            if (Double.parseDouble(s) == v) {
                return s.replace("e-0", "e-");
            }
            return String.valueOf(v);
        }
        return String.valueOf(v);
    }

    private static void positive(String option, long v, boolean zeroAllowed) {
        if (v < 0 || (!zeroAllowed && v == 0)) {
            throw new IllegalArgumentException(option + " must be " + (zeroAllowed ? ">= 0" : "> 0") + ", was " + v);
        }
    }

    private static void share(String option, double v, boolean zeroAllowed) {
        if (!(v <= 1) || v < 0 || (!zeroAllowed && v == 0)) {
            throw new IllegalArgumentException(option + " must be in " + (zeroAllowed ? "[0, 1]" : "(0, 1]") + ", was " + v);
        }
    }
}
