package ai.lorapar.examples.cli;

import ai.lorapar.engine.Collective;
import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.train.CheckpointStore;
import ai.lorapar.train.MetricsJsonl;
import ai.lorapar.train.SftConfig;
import ai.lorapar.train.SftTrainer;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainerState;
import ai.lorapar.train.TrainingListener;
import ai.lorapar.train.TrainingReport;
import ai.lorapar.train.TwoStageTrainer;
import ai.lorapar.train.grpo.GrpoConfig;
import ai.lorapar.train.grpo.GrpoTrainer;
import ai.lorapar.train.grpo.GsmRewards;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code lorapar train}: LoRA-PAR's two stages (or a baseline) from a labelled JSONL, a masks file and a model
 * folder, through {@link TwoStageTrainer}: SFT on System 1, then GRPO on System 2, with checkpoints and resume.
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train LoRA adapters in two stages: SFT on the System-1 examples under the stage-1 mask, then GRPO "
                + "on the System-2 examples under the stage-2 mask, from the stage-1 weights.",
            "Recipes: lora-par (the masks of 'partition'), random (masks-random.safetensors of 'partition': a random "
                + "subset of the same size), plain-lora (every element in both stages), pissa-rl (PiSSA-initialised "
                + "adapters, every element).",
            "Writes OUT/adapter (PEFT), OUT/metrics.jsonl, OUT/completions.jsonl (GRPO's completions and rewards) and "
                + "checkpoints under OUT/checkpoints; an interrupted run continues with --resume."})
final class TrainCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "LABELLED.jsonl", description = "labelled examples (from 'lorapar label')")
    Path labelled;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "Hugging Face model folder (default: the embedded tiny model, once it has weights)")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "folder of tokenizer.json (default: the model folder)")
    Path tokenizerDir;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", defaultValue = "train", description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--recipe", paramLabel = "R", defaultValue = "lora-par",
            description = "lora-par, random, plain-lora or pissa-rl (default: ${DEFAULT-VALUE})")
    String recipe;

    @Option(names = "--masks", paramLabel = "FILE",
            description = "stage masks (masks.safetensors of 'partition'; masks-random.safetensors for --recipe random)")
    Path masksFile;

    @Option(names = "--stage", paramLabel = "S", defaultValue = "both",
            description = "both, sft or grpo (grpo alone continues a finished sft stage in the checkpoints, or starts "
                    + "from --adapter) (default: ${DEFAULT-VALUE})")
    String stage;

    @Option(names = "--checkpoints", paramLabel = "DIR", description = "checkpoint folder (default: OUT/checkpoints)")
    Path checkpoints;

    @Option(names = "--checkpoint-every", paramLabel = "N", defaultValue = "50",
            description = "optimizer steps between checkpoints of each stage (default: ${DEFAULT-VALUE})")
    int checkpointEvery;

    @Option(names = "--resume", description = "continue from the checkpoints of an earlier run of the same command")
    boolean resume;

    @Option(names = "--adapter-init", paramLabel = "DIR",
            description = "start from this PEFT adapter (e.g. adapter_init of 'score': the adapters the importance was "
                    + "scored on) instead of fresh adapters")
    Path adapterInit;

    @Option(names = "--adapter", paramLabel = "DIR", description = "--stage grpo: start GRPO from this PEFT adapter")
    Path adapter;

    @Option(names = "--rank", paramLabel = "R", defaultValue = "8", description = "LoRA rank (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--lora-alpha", paramLabel = "A", defaultValue = "64", description = "LoRA alpha (default: ${DEFAULT-VALUE})")
    double loraAlpha;

    @Option(names = "--dropout", paramLabel = "P", defaultValue = "0.05", description = "LoRA dropout (default: ${DEFAULT-VALUE})")
    double dropout;

    @Option(names = "--init", paramLabel = "INIT",
            description = "LoRA init: gaussian, standard, pissa or olora (default: gaussian, as 'score'; pissa for "
                    + "--recipe pissa-rl)")
    String init;

    @Option(names = "--targets", paramLabel = "T", defaultValue = "QKVGUD",
            description = "adapted projections: QKVGUD, QKV, GUD or QKVOGUD (default: ${DEFAULT-VALUE})")
    String targets;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "42",
            description = "seed of the adapters' init (as 'score') and of both stages (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--template", paramLabel = "T", 
            description = "prompt template: plain, chatml, llama2-chat, or embedded (the embedded tiny model's, which it "
                    + "was trained on); default: embedded without --model, else plain")
    String template;

    @Option(names = "--max-length", paramLabel = "N", defaultValue = "512", description = "SFT tokens per example (default: ${DEFAULT-VALUE})")
    int maxLength;

    @Option(names = "--sft-lr", paramLabel = "X", defaultValue = "2e-4", description = "SFT learning rate (default: ${DEFAULT-VALUE})")
    double sftLr;

    @Option(names = "--sft-epochs", paramLabel = "N", defaultValue = "1", description = "SFT epochs (default: ${DEFAULT-VALUE})")
    int sftEpochs;

    @Option(names = "--sft-steps", paramLabel = "N", defaultValue = "0", description = "SFT optimizer steps, overriding epochs (default: whole epochs)")
    long sftSteps;

    @Option(names = "--micro-batch", paramLabel = "N", defaultValue = "8", description = "SFT examples per pass (default: ${DEFAULT-VALUE})")
    int microBatch;

    @Option(names = "--accumulation", paramLabel = "N", defaultValue = "4", description = "SFT passes per step (default: ${DEFAULT-VALUE})")
    int accumulation;

    @Option(names = "--cuda-graphs", description = "replay the SFT passes from CUDA graphs, one per padded batch shape"
            + " (GPU with this project's JNI; ignored elsewhere)")
    boolean cudaGraphs;

    @Option(names = "--grpo-lr", paramLabel = "X", defaultValue = "5e-6", description = "GRPO learning rate (default: ${DEFAULT-VALUE})")
    double grpoLr;

    @Option(names = "--grpo-epochs", paramLabel = "N", defaultValue = "1", description = "GRPO epochs (default: ${DEFAULT-VALUE})")
    int grpoEpochs;

    @Option(names = "--grpo-steps", paramLabel = "N", defaultValue = "0", description = "GRPO optimizer steps, overriding epochs (default: whole epochs)")
    long grpoSteps;

    @Option(names = "--group", paramLabel = "G", defaultValue = "8", description = "GRPO completions per prompt (default: ${DEFAULT-VALUE})")
    int group;

    @Option(names = "--prompts-per-step", paramLabel = "N", defaultValue = "4", description = "GRPO prompts per step (default: ${DEFAULT-VALUE}, TRL's 8 x 4 completions)")
    int promptsPerStep;

    @Option(names = "--grpo-micro-batch", paramLabel = "N", defaultValue = "16", description = "GRPO sequences per pass (default: ${DEFAULT-VALUE})")
    int grpoMicroBatch;

    @Option(names = "--max-prompt", paramLabel = "N", defaultValue = "128", description = "GRPO prompt tokens (default: ${DEFAULT-VALUE})")
    int maxPrompt;

    @Option(names = "--max-completion", paramLabel = "N", defaultValue = "256", description = "GRPO completion tokens (default: ${DEFAULT-VALUE})")
    int maxCompletion;

    @Option(names = "--beta", paramLabel = "X", defaultValue = "0.04", description = "GRPO KL coefficient; 0 skips the reference pass (default: ${DEFAULT-VALUE})")
    double beta;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "1.0", description = "GRPO sampling temperature (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--system-prompt", paramLabel = "TEXT",
            description = "GRPO's system prompt (default: the reference's, asking for <reasoning>…</reasoning><answer>…</answer>)")
    String systemPrompt;

    @Option(names = "--completion-log-every", paramLabel = "N", defaultValue = "10",
            description = "GRPO steps between completion logs (default: ${DEFAULT-VALUE})")
    int completionLogEvery;

    @Option(names = "--device", paramLabel = "D", description = "cpu or gpu (default: gpu when there is one)")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        TwoStageTrainer.Recipe r = switch (recipe.toLowerCase(Locale.ROOT)) {
            case "lora-par" -> TwoStageTrainer.Recipe.LORA_PAR;
            case "random" -> TwoStageTrainer.Recipe.RANDOM_SUBSET;
            case "plain-lora" -> TwoStageTrainer.Recipe.PLAIN_LORA;
            case "pissa-rl" -> TwoStageTrainer.Recipe.PISSA_RL;
            default -> throw new IllegalArgumentException("--recipe must be lora-par, random, plain-lora or pissa-rl, was "
                    + recipe);
        };
        boolean masked = r == TwoStageTrainer.Recipe.LORA_PAR || r == TwoStageTrainer.Recipe.RANDOM_SUBSET;
        if (masked && masksFile == null) {
            throw new IllegalArgumentException("--recipe " + recipe + " needs --masks (" + (r == TwoStageTrainer.Recipe.LORA_PAR
                    ? "masks.safetensors" : "masks-random.safetensors") + " of 'lorapar partition')");
        }
        if (!masked && masksFile != null) {
            throw new IllegalArgumentException("--recipe " + recipe + " trains every element: it takes no --masks");
        }
        LoraInit loraInit = CliOptions.init(init != null ? init : r == TwoStageTrainer.Recipe.PISSA_RL ? "pissa" : "gaussian");
        if (!List.of("both", "sft", "grpo").contains(stage)) {
            throw new IllegalArgumentException("--stage must be both, sft or grpo, was " + stage);
        }
        if (adapter != null && !stage.equals("grpo")) {
            throw new IllegalArgumentException("--adapter is for --stage grpo (use --adapter-init to start both stages "
                    + "from an adapter)");
        }
        Files.createDirectories(out);
        Path ckpt = checkpoints != null ? checkpoints : out.resolve("checkpoints");
        checkResume(ckpt);
        if (stage.equals("grpo") && adapter == null) {
            requireFinishedSft(ckpt);
        }
        // started by `lorapar launch`: this rank's GPU and the job's collective (data parallel); else one process
        Device dev = CliOptions.rankDevice(CliOptions.device(device));
        try (Collective collective = CliOptions.collective(dev)) {
            return train(w, r, ckpt, dev, collective, loraInit);
        }
    }

    private Integer train(PrintWriter w, TwoStageTrainer.Recipe r, Path ckpt, Device dev, Collective collective,
            LoraInit loraInit) throws IOException {
        boolean leader = collective.isLeader();
        Path modelDir = CliOptions.modelFolder(model, out, collective);

        Map<SystemLabel, List<Example>> bySystem = LabelledJsonl.readByLabel(labelled);
        List<Example> system1 = bySystem.getOrDefault(SystemLabel.SYSTEM_1, List.of());
        List<Example> system2 = bySystem.getOrDefault(SystemLabel.SYSTEM_2, List.of());
        w.printf(Locale.ROOT, "%s: %d System1 and %d System2 examples%n", labelled, system1.size(), system2.size());

        SftConfig sft = SftConfig.builder().learningRate(sftLr).epochs(sftEpochs).maxSteps(sftSteps)
                .microBatchSize(microBatch).gradientAccumulation(accumulation).maxLength(maxLength).seed(seed)
                .loggingSteps(1).cudaGraphs(cudaGraphs).build();
        GrpoConfig grpo = GrpoConfig.builder().learningRate(grpoLr).epochs(grpoEpochs).maxSteps(grpoSteps)
                .groupSize(group).promptsPerStep(promptsPerStep).microBatchSize(grpoMicroBatch).maxPromptTokens(maxPrompt)
                .maxCompletionTokens(maxCompletion).klBeta(beta).temperature(temperature).seed(seed)
                .completionLogEvery(completionLogEvery).systemPrompt(systemPrompt != null ? systemPrompt
                        : GsmRewards.SYSTEM_PROMPT).build();

        try (NDManager manager = EngineSupport.newBaseManager(dev);
                TextTokenizer tokenizer = TextTokenizer.load(tokenizerDir == null ? modelDir : tokenizerDir);
                DecoderModel m = DecoderModel.load(modelDir, manager);
                LoraModel lora = loadAdapters(m, manager, modelDir, loraInit);
                StageMasks masks = masksFile == null ? null : StageMasks.load(masksFile, manager);
                MetricsJsonl metrics = leader ? MetricsJsonl.open(out.resolve("metrics.jsonl")) : null; // leader writes
                Progress progress = new Progress(w)) {
            w.printf(Locale.ROOT, "model %s on %s (%s), LoRA %s: %,d elements; recipe %s%s%n", modelDir, m.device(),
                    m.dtype(), lora.config(), lora.parameterCount(), recipe, masks == null ? ""
                            : String.format(Locale.ROOT, ", masks %s (%s): stage 1 %,d, stage 2 %,d", masksFile,
                                    masks.origin(), masks.stage1Count(), masks.stage2Count()));
            w.flush();
            ExampleEncoder encoder = ExampleEncoder.builder(tokenizer).template(ai.lorapar.examples.pipeline.ModelHandle.template(
                    template != null ? template : model == null ? "embedded" : "plain"))
                    .maxLength(maxLength).vocabSize(m.config().vocabSize()).build();
            Path completions = out.resolve("completions.jsonl");
            List<StageReport> reports = new ArrayList<>();
            if (stage.equals("grpo") && adapter != null) {
                // stage 2 alone from a given adapter
                try (GrpoTrainer trainer = GrpoTrainer.builder(lora).encoder(encoder).config(grpo)
                        .masks(masks == null ? null : masks.stage2()).checkpoints(ckpt.resolve(GrpoTrainer.STAGE),
                                checkpointEvery).listeners(listeners(metrics, progress)).completionLog(completions)
                        .collective(collective).build()) {
                    reports.add(trainer.train(system2).stage());
                }
            } else {
                TwoStageTrainer.Builder b = TwoStageTrainer.recipe(r, lora, encoder, masks).sft(sft)
                        .checkpoints(ckpt, checkpointEvery).collective(collective);
                listeners(metrics, progress).forEach(b::listener);
                if (!stage.equals("sft")) {
                    b.grpo(grpo).completionLog(completions);
                }
                TrainingReport report = b.build().run(system1, system2);
                reports.addAll(report.stages());
            }
            Path adapterOut = out.resolve("adapter");
            if (leader) {
                lora.save(adapterOut);
            }
            collective.barrier(); // the adapter is complete before any rank returns
            if (!leader) {
                return 0; // the leader reports for the job
            }
            for (StageReport s : reports) {
                w.printf(Locale.ROOT, "%s: %d/%d steps%s, final loss %.4f, %,d tokens, %.1f s%s%n", s.stage(), s.steps(),
                        s.totalSteps(), s.resumedFromStep() > 0 ? " (resumed after step " + s.resumedFromStep() + ")" : "",
                        s.finalLoss(), s.tokens(), s.time().toMillis() / 1e3,
                        s.stage().equals(GrpoTrainer.STAGE) && progress.lastReward != null
                                ? String.format(Locale.ROOT, ", last reward %.3f", progress.lastReward) : "");
            }
            w.printf("adapter in %s, metrics in %s, checkpoints in %s%n", adapterOut, metrics.file(), ckpt);
        }
        return 0;
    }

    /** The metrics file (the leader's only) and the progress lines. */
    private static List<TrainingListener> listeners(MetricsJsonl metrics, TrainingListener progress) {
        return metrics == null ? List.of(progress) : List.of(metrics, progress);
    }

    /** The adapters: from --adapter (stage 2 alone), --adapter-init, or fresh as 'score' makes them. */
    private LoraModel loadAdapters(DecoderModel m, NDManager manager, Path modelDir, LoraInit loraInit) throws IOException {
        if (adapter != null) {
            return LoraModel.load(adapter, m, manager);
        }
        if (adapterInit != null) {
            // 'score' also writes the native form: PiSSA/OLoRA adapters at their rank r (the importance maps'
            // shapes), where PEFT's files hold the equivalent rank-2r plain LoRA
            return LoraModel.isNative(adapterInit)
                    ? LoraModel.loadNative(adapterInit, m, manager, c -> c.toBuilder().dropout(dropout).build())
                    : LoraModel.load(adapterInit, m, manager);
        }
        return LoraModel.apply(m, LoraConfig.builder().targets(CliOptions.targets(targets)).rank(rank).alpha(loraAlpha)
                .dropout(dropout).init(loraInit).seed(seed).build(), manager);
    }

    /** Refuses to continue an earlier run's checkpoints unless --resume says so. */
    private void checkResume(Path ckpt) throws IOException {
        if (resume) {
            return;
        }
        List<String> stages = switch (stage) {
            case "sft" -> List.of(SftTrainer.STAGE);
            case "grpo" -> List.of(GrpoTrainer.STAGE);
            default -> List.of(SftTrainer.STAGE, GrpoTrainer.STAGE);
        };
        for (String s : stages) {
            Optional<Path> latest = new CheckpointStore(ckpt.resolve(s), 1).latest();
            if (latest.isPresent()) {
                throw new IllegalArgumentException(ckpt + " holds a checkpoint of stage " + s + " (" + latest.get()
                        .getFileName() + "): pass --resume to continue that run, or choose another --checkpoints folder");
            }
        }
    }

    private static void requireFinishedSft(Path ckpt) throws IOException {
        Optional<Path> latest = new CheckpointStore(ckpt.resolve(SftTrainer.STAGE), 1).latest();
        if (latest.isEmpty() || !TrainerState.read(latest.get()).completed()) {
            throw new IllegalArgumentException("--stage grpo continues a finished sft stage, and " + ckpt.resolve(
                    SftTrainer.STAGE) + " has " + (latest.isEmpty() ? "no checkpoint" : "an unfinished one") + ": run "
                    + "--stage sft first (same options), or start GRPO from an adapter with --adapter");
        }
    }

    /** A progress bar per stage, fed by the trainers' listener calls. */
    private static final class Progress implements TrainingListener, AutoCloseable {
        private final PrintWriter out;
        private final Map<String, ProgressBar> bars = new HashMap<>();
        private final Map<String, Long> startSteps = new HashMap<>();
        Double lastReward;

        Progress(PrintWriter out) {
            this.out = out;
        }

        @Override
        public void onStageStart(StageStart s) {
            out.printf(Locale.ROOT, "%s: %d steps over %d examples, %,d of %,d elements trained%s%n", s.stage(),
                    s.totalSteps(), s.examples(), s.activeElements(), s.trainableElements(),
                    s.startStep() > 0 ? ", resuming after step " + s.startStep() : "");
            out.flush();
            // the steps of this run only (after a resume the rate and ETA would count the earlier ones)
            ProgressBar bar = new ProgressBar(s.stage(), s.totalSteps() - s.startStep());
            bars.put(s.stage(), bar);
            startSteps.put(s.stage(), s.startStep());
        }

        @Override
        public void onStep(StepMetrics m) {
            ProgressBar bar = bars.get(m.stage());
            if (bar != null) {
                bar.update(m.step() - startSteps.getOrDefault(m.stage(), 0L));
            }
            if (m.details().containsKey("reward")) {
                lastReward = m.detail("reward");
            }
        }

        @Override
        public void onStageEnd(StageReport r) {
            ProgressBar bar = bars.remove(r.stage());
            if (bar != null) {
                bar.close();
            }
        }

        @Override
        public void close() {
            bars.values().forEach(ProgressBar::close);
        }
    }
}
