package ai.lorapar.examples.cli;

import ai.lorapar.examples.pipeline.Pipeline;
import ai.lorapar.examples.pipeline.PipelineSettings;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code lorapar run}: the whole pipeline ({@link Pipeline}) with the embedded default's settings unless told
 * otherwise; every option left out keeps {@link PipelineSettings#embeddedDefault()}'s value.
 */
@Command(name = "run", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"The whole pipeline: data, labels by teacher vote, importance of both systems, partition, "
                + "SFT on System 1, GRPO on System 2, evaluation before and after each stage, findings over seeds "
                + "(importance vs random subset, SFT→GRPO vs SFT alone, α=β=1 vs 0.5), plots and report.md.",
            "Without --model: the embedded tiny model on generated word problems (README command 1). With --model "
                + "DIR --data DIR (train.jsonl, test.jsonl; e.g. ../shared/data/gsm8k): a Hugging Face model; "
                + "--model random:qwen2.5-0.5b --tokenizer DIR: random weights of that shape, for timing."})
public final class RunCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", defaultValue = "lorapar-run", description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model folder, or random:qwen2.5-0.5b / random:llama2-7b (default: the embedded tiny model)")
    String model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "folder of tokenizer.json (default: the model folder; needed for random:)")
    Path tokenizer;

    @Option(names = "--template", paramLabel = "NAME", description = "prompt template: embedded, plain, chatml, llama2-chat (default: embedded for the embedded model, else plain)")
    String template;

    @Option(names = "--data", paramLabel = "DIR", description = "folder with train.jsonl and test.jsonl (GSM8K format; default: generated word problems)")
    Path data;

    @Option(names = "--limit-train", paramLabel = "N", description = "first N training examples only")
    Integer limitTrain;

    @Option(names = "--limit-test", paramLabel = "N", description = "first N test examples only")
    Integer limitTest;

    @Option(names = "--device", paramLabel = "cpu|gpu", description = "default: a GPU when there is one")
    String device;

    @Option(names = "--workers", paramLabel = "N", description = "worker processes for the seeds and recipes (default 1: all in this process)")
    Integer workers;

    @Option(names = "--endpoint", paramLabel = "URL", description = "OpenAI-compatible endpoint of LLM teachers (default: three heuristic teachers, offline)")
    String endpoint;

    @Option(names = "--teacher-model", split = ",", paramLabel = "MODEL", description = "one LLM teacher per model at --endpoint")
    List<String> teacherModels;

    @Option(names = "--api-key-env", paramLabel = "VAR", description = "environment variable holding the endpoint's API key")
    String apiKeyEnv;

    @Option(names = "--seeds", split = ",", paramLabel = "N", description = "seeds of the findings; the first is the main run (default 1,2,3)")
    List<Long> seeds;

    @Option(names = "--recipes", split = ",", paramLabel = "R", description = "lora-par (first), random, lora-par-shared, plain-lora (default: lora-par,random,lora-par-shared)")
    List<String> recipes;

    @Option(names = "--theta", paramLabel = "θ", description = "share of importance kept per system, in (0, 1] (default 0.9)")
    Double theta;

    @Option(names = "--theta-trained", paramLabel = "θ,...", description = "other θ values at which the main seed also "
            + "trains LoRA-PAR, for the accuracy-against-θ plot (default 0.5,0.7; 'none': accuracy at --theta only)")
    String thetaTrained;

    @Option(names = "--alpha", paramLabel = "α", description = "share of the shared region trained in stage 1, [0, 1] (default 1)")
    Double alpha;

    @Option(names = "--beta", paramLabel = "β", description = "share of the shared region trained in stage 2, [0, 1] (default 1)")
    Double beta;

    @Option(names = "--compare-share", paramLabel = "S", description = "α = β of the lora-par-shared recipe (default 0.5)")
    Double compareShare;

    @Option(names = "--importance-examples", paramLabel = "N", description = "examples per system for the importance (paper 100)")
    Integer importanceExamples;

    @Option(names = "--sft-lr", paramLabel = "LR")
    Double sftLr;

    @Option(names = "--sft-steps", paramLabel = "N", description = "SFT optimizer steps (0: one epoch)")
    Long sftSteps;

    @Option(names = "--sft-batch", paramLabel = "N", description = "SFT examples per micro-batch")
    Integer sftBatch;

    @Option(names = "--sft-accumulation", paramLabel = "N", description = "SFT micro-batches per step")
    Integer sftAccumulation;

    @Option(names = "--grpo-lr", paramLabel = "LR")
    Double grpoLr;

    @Option(names = "--grpo-steps", paramLabel = "N", description = "GRPO optimizer steps (0: one epoch)")
    Long grpoSteps;

    @Option(names = "--prompts-per-step", paramLabel = "N", description = "GRPO prompts per step")
    Integer promptsPerStep;

    @Option(names = "--group", paramLabel = "N", description = "GRPO completions per prompt (paper 8)")
    Integer group;

    @Option(names = "--max-completion", paramLabel = "N", description = "GRPO completion tokens at most")
    Integer maxCompletion;

    @Option(names = "--eval-max-new", paramLabel = "N", description = "evaluation answer tokens at most")
    Integer evalMaxNew;

    @Option(names = "--paper", description = "start from the paper's settings (lr 2e-4 / 5e-6, 1 epoch per stage, 4 prompts × 8) instead of the embedded default's")
    boolean paper;

    @Option(names = "--bench-lines", description = "print BENCH pipeline stage=NAME seconds=S lines at the end")
    boolean benchLines;

    @Option(names = "--cuda-graphs", description = "replay the SFT passes from CUDA graphs (GPU with this project's JNI)")
    boolean cudaGraphs;

    @Option(names = "--no-plots", description = "no PNG plots (for a Java runtime without the java.desktop module)")
    boolean noPlots;

    @Option(names = "--no-progress", description = "no progress bars")
    boolean noProgress;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PipelineSettings s = settings();
        Pipeline.run(s, this.out, out, !noProgress);
        return 0;
    }

    /** The settings: the defaults (embedded or paper), then every option given. */
    PipelineSettings settings() {
        PipelineSettings s = paper ? PipelineSettings.paper() : PipelineSettings.embeddedDefault();
        if (model != null) {
            s.model = model;
            if (!model.startsWith("random:") && !Files.isDirectory(Path.of(model))) {
                throw new IllegalArgumentException("--model " + model + " is not a folder (a Hugging Face model folder, "
                        + "or random:qwen2.5-0.5b / random:llama2-7b)");
            }
            if (model.startsWith("random:") && tokenizer == null) {
                throw new IllegalArgumentException("--model " + model + " (random weights) needs --tokenizer DIR");
            }
        }
        if (tokenizer != null) {
            if (!Files.isRegularFile(tokenizer.resolve("tokenizer.json"))) {
                throw new IllegalArgumentException("--tokenizer " + tokenizer + " has no tokenizer.json");
            }
            s.tokenizer = tokenizer.toString();
        }
        if (template != null) {
            s.template = template;
        }
        if (data != null) {
            Path train = data.resolve("train.jsonl");
            Path test = data.resolve("test.jsonl");
            if (!Files.isDirectory(data)) {
                throw new IllegalArgumentException("--data " + data + " is not a folder (it must hold train.jsonl and "
                        + "test.jsonl)");
            }
            for (Path f : List.of(train, test)) {
                if (!Files.isRegularFile(f)) {
                    throw new IllegalArgumentException("--data " + data + " has no " + f.getFileName()
                            + " (it must hold train.jsonl and test.jsonl, GSM8K records {question, answer})");
                }
            }
            s.train = train.toString();
            s.test = test.toString();
        } else if (model != null) {
            throw new IllegalArgumentException("--model needs --data DIR (train.jsonl, test.jsonl): the generated word "
                    + "problems are written in the embedded model's vocabulary only");
        }
        if (limitTrain != null) {
            s.limitTrain = limitTrain;
        }
        if (limitTest != null) {
            s.limitTest = limitTest;
        }
        s.device = device;
        if (workers != null) {
            s.workers = workers;
        }
        s.endpoint = endpoint;
        if (teacherModels != null) {
            s.teacherModels = teacherModels;
        }
        s.apiKeyEnv = apiKeyEnv;
        if (seeds != null) {
            s.seeds = seeds;
        }
        if (recipes != null) {
            s.recipes = recipes;
        }
        if (thetaTrained != null) {
            s.thetaTrained = new java.util.ArrayList<>();
            if (!thetaTrained.strip().equalsIgnoreCase("none")) {
                for (String t : thetaTrained.split(",")) {
                    try {
                        s.thetaTrained.add(Double.parseDouble(t.strip()));
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException("--theta-trained takes θ values separated by commas, or none; "
                                + "not a number: '" + t.strip() + "'");
                    }
                }
            }
        }
        if (theta != null) {
            s.theta = theta;
        }
        if (alpha != null) {
            s.alpha = alpha;
        }
        if (beta != null) {
            s.beta = beta;
        }
        if (compareShare != null) {
            s.compareShare = compareShare;
        }
        if (importanceExamples != null) {
            s.importanceExamples = importanceExamples;
        }
        if (sftLr != null) {
            s.sftLr = sftLr;
        }
        if (sftSteps != null) {
            s.sftSteps = sftSteps;
        }
        if (sftBatch != null) {
            s.sftMicroBatch = sftBatch;
        }
        if (sftAccumulation != null) {
            s.sftAccumulation = sftAccumulation;
        }
        if (grpoLr != null) {
            s.grpoLr = grpoLr;
        }
        if (grpoSteps != null) {
            s.grpoSteps = grpoSteps;
        }
        if (promptsPerStep != null) {
            s.promptsPerStep = promptsPerStep;
        }
        if (group != null) {
            s.group = group;
        }
        if (maxCompletion != null) {
            s.maxCompletion = maxCompletion;
        }
        if (evalMaxNew != null) {
            s.evalMaxNew = evalMaxNew;
        }
        s.benchLines = benchLines;
        s.cudaGraphs = cudaGraphs;
        s.plots = !noPlots;
        if (s.plots && ModuleLayer.boot().findModule("java.desktop").isEmpty()) {
            throw new IllegalArgumentException("this Java runtime has no java.desktop module, which the plots need: "
                    + "run with --no-plots");
        }
        s.validate();
        return s;
    }
}
