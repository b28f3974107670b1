package ai.lorapar.examples.embedded;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.examples.embedded.WordProblem.Kind;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.LearningRateSchedule;
import ai.lorapar.train.SftConfig;
import ai.lorapar.train.SftTrainer;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainingListener;
import ai.lorapar.train.TrainingTarget;
import ai.lorapar.train.grpo.GsmRewards;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Trains the embedded tiny model ({@link TinyModelConfig#DEFAULT}) from scratch with the library's
 * full-parameter path ({@link SftTrainer} on {@link TrainingTarget#fullParameters}, plain AdamW, no masks)
 * on generated word problems, and writes its folder: the tokenizer and config files of {@link
 * EmbeddedDefault#writeModelFiles}, {@code model.safetensors}, and {@code training.json} (seed, curriculum,
 * settings, data sizes, steps, time, losses, greedy accuracy per kind and format on the shipped test split,
 * a {@link RewardProbe} of what GRPO's first rollouts on System-2 items would score, and the SHA-256 of the
 * weights).
 *
 * <pre>
 * TrainEmbeddedModel [OUT_DIR] [--device cpu|gpu] [--seed 42] [--epochs 2 | --steps N]
 *     [--one-step 16000] [--one-step-tags 6000] [--multi-step 3600] [--multi-step-tags 900]
 *     [--multi-step-ops 2-4] [--lr 2e-3] [--batch 16] [--micro-batch 16] [--warmup 0.05]
 *     [--weight-decay 0.1] [--max-grad-norm 1] [--loss-on answer|text] [--validate-every N]
 *     [--checkpoints DIR] [--checkpoint-every 100] [--test-items N] [--max-new-tokens 160]
 *     [--completions FILE.jsonl] [--probe-groups 32]
 *   OUT_DIR defaults to lorapar-examples/src/main/resources/embedded/tiny-arith
 * </pre>
 *
 * <p><b>Curriculum</b> (one seeded mix of 26,500 items, shuffled every epoch by the trainer; the defaults
 * above): 22,000 one-step items, 16,000 in GSM8K's {@code #### N} format and 6,000 under GRPO's system
 * prompt in the tag format; 4,500 multi-step items of 2–4 operations (the shipped split's have 3–4),
 * 3,600 in the {@code ####} format and 900 in the tag format. So the model learns both formats and the
 * arithmetic on one-step items, and meets chains only often enough to try them: it should be decent at
 * one-step items, weak at multi-step ones, and answer GRPO's prompt in the tag format (so that the
 * reference rewards are not all zero), leaving the two LoRA-PAR stages something to improve. Items are
 * drawn from the generator with their own seed stream and never repeat a question of the shipped train
 * or test split or of the validation items. The loss counts answer tokens only ({@code --loss-on text}
 * counts the question too: no better in a trial of the same length). Two epochs of 16 examples per
 * step at 2e-3 beat 32 per step at 3e-3 for the same compute (twice the updates: 57% instead of 31% of
 * the one-step test items in trials on the same 3–4-operation mix); adding 2-operation chains and more
 * multi-step items then gave the defaults' figures (README).
 *
 * <p>Progress goes to stdout every 10 steps; with {@code --validate-every N} the greedy accuracy on 100
 * generated validation items (never the test split) is printed too. On a CPU shared with other processes
 * run it with {@code -Dai.djl.pytorch.num_threads=1}.
 */
public final class TrainEmbeddedModel {

    /** Where the model folder is written by default (run from the repository root). */
    public static final Path DEFAULT_OUT = Path.of("lorapar-examples/src/main/resources/embedded/tiny-arith");
    /** The reward probe: GRPO's group size (G = 8), rollouts of 4 prompts (its default step), its 256-token budget. */
    static final int PROBE_GROUP_SIZE = 8;
    static final int PROBE_PROMPTS_PER_CALL = 4;
    static final int PROBE_MAX_NEW_TOKENS = 256;
    /** Tokens the greedy evaluation may generate by default: the longest 4-operation answer is about 110. */
    static final int MAX_NEW_TOKENS = 160;
    /** Separates the pretraining items' random stream from the shipped split's. */
    private static final long CORPUS_STREAM = 0x9E3779B97F4A7C15L;

    private TrainEmbeddedModel() {
    }

    /** The settings of a run, with the defaults that made the committed weights. */
    static final class Settings {
        Path out = DEFAULT_OUT;
        Device device = Device.cpu();
        long seed = EmbeddedDefault.SEED;
        int epochs = 2;
        long steps;
        int oneStepHash = 16000;
        int oneStepTags = 6000;
        int multiStepHash = 3600;
        int multiStepTags = 900;
        int minOperations = 2;
        int maxOperations = 4;
        int validation = 100;
        double lr = 2e-3;
        int batch = 16;
        int microBatch = 16;
        double warmup = 0.05;
        double weightDecay = 0.1;
        double maxGradNorm = 1.0;
        int validateEvery;
        Path checkpoints;
        int checkpointEvery = 100;
        int evalBatch = 50;
        int maxNewTokens = MAX_NEW_TOKENS;
        /** Test items evaluated at the end: 0 for the whole shipped test split (smoke tests use a few). */
        int testItems;
        /** Whether the loss counts every token of the text (question too) or only the answer's. */
        boolean wholeTextLoss;
        /** System-2 (multi-step) items of the shipped train split sampled for the reward probe (0: none). */
        int probeGroups = 32;
        /** Where to write every test completion as JSONL (for reading the model's mistakes), or null. */
        Path completions;

        /** The command line, recorded in {@code training.json}. */
        List<String> arguments = List.of();

        static Settings parse(String[] args) {
            Settings s = new Settings();
            s.arguments = List.of(args);
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (!a.startsWith("--")) {
                    s.out = Path.of(a);
                    continue;
                }
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--device" -> s.device = switch (v) {
                        case "cpu" -> Device.cpu();
                        case "gpu" -> Device.gpu();
                        default -> throw new IllegalArgumentException("--device must be cpu or gpu, was " + v);
                    };
                    case "--seed" -> s.seed = Long.parseLong(v);
                    case "--epochs" -> s.epochs = Integer.parseInt(v);
                    case "--steps" -> s.steps = Long.parseLong(v);
                    case "--one-step" -> s.oneStepHash = Integer.parseInt(v);
                    case "--one-step-tags" -> s.oneStepTags = Integer.parseInt(v);
                    case "--multi-step" -> s.multiStepHash = Integer.parseInt(v);
                    case "--multi-step-tags" -> s.multiStepTags = Integer.parseInt(v);
                    case "--multi-step-ops" -> {
                        String[] r = v.split("-");
                        s.minOperations = Integer.parseInt(r[0]);
                        s.maxOperations = Integer.parseInt(r[r.length - 1]);
                    }
                    case "--validation" -> s.validation = Integer.parseInt(v);
                    case "--lr" -> s.lr = Double.parseDouble(v);
                    case "--batch" -> s.batch = Integer.parseInt(v);
                    case "--micro-batch" -> s.microBatch = Integer.parseInt(v);
                    case "--warmup" -> s.warmup = Double.parseDouble(v);
                    case "--weight-decay" -> s.weightDecay = Double.parseDouble(v);
                    case "--max-grad-norm" -> s.maxGradNorm = Double.parseDouble(v);
                    case "--validate-every" -> s.validateEvery = Integer.parseInt(v);
                    case "--checkpoints" -> s.checkpoints = Path.of(v);
                    case "--checkpoint-every" -> s.checkpointEvery = Integer.parseInt(v);
                    case "--eval-batch" -> s.evalBatch = Integer.parseInt(v);
                    case "--max-new-tokens" -> s.maxNewTokens = Integer.parseInt(v);
                    case "--test-items" -> s.testItems = Integer.parseInt(v);
                    case "--completions" -> s.completions = Path.of(v);
                    case "--probe-groups" -> s.probeGroups = Integer.parseInt(v);
                    case "--loss-on" -> s.wholeTextLoss = switch (v) {
                        case "text" -> true;
                        case "answer" -> false;
                        default -> throw new IllegalArgumentException("--loss-on must be text or answer, was " + v);
                    };
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (s.batch % s.microBatch != 0) {
                throw new IllegalArgumentException("--batch " + s.batch + " must be a multiple of --micro-batch "
                        + s.microBatch);
            }
            if (Stream.of(s.oneStepHash, s.oneStepTags, s.multiStepHash, s.multiStepTags).anyMatch(n -> n < 0)) {
                throw new IllegalArgumentException("item counts must be >= 0");
            }
            return s;
        }

        SftConfig sftConfig() {
            return SftConfig.builder().learningRate(lr).schedule(LearningRateSchedule.cosine(warmup))
                    .betas(0.9, 0.95).weightDecay(weightDecay).maxGradNorm(maxGradNorm).microBatchSize(microBatch)
                    .gradientAccumulation(batch / microBatch).epochs(epochs).maxSteps(steps).groupByLength(true)
                    .seed(seed).loggingSteps(10).build();
        }
    }

    /** The pretraining items: the mix of the curriculum, the validation items, and their counts. */
    record Corpus(List<Example> training, List<WordProblem> validation, Map<String, Integer> counts) {
    }

    /**
     * The seeded mix of {@code s} (see the class comment), none of whose questions is in {@code exclude}
     * or repeats another's.
     */
    static Corpus corpus(Settings s, Set<String> exclude) {
        WordProblems gen = WordProblems.builder().seed(s.seed).multiStepOperations(s.minOperations, s.maxOperations)
                .build();
        Random r = new Random(s.seed ^ CORPUS_STREAM);
        Set<String> seen = new HashSet<>(exclude);
        List<WordProblem> validation = new ArrayList<>();
        validation.addAll(draw(gen, r, Kind.ONE_STEP, s.validation / 2, seen));
        validation.addAll(draw(gen, r, Kind.MULTI_STEP, s.validation - s.validation / 2, seen));
        List<Example> training = new ArrayList<>();
        Map<String, Integer> counts = new LinkedHashMap<>();
        part(training, counts, "one_step_hash", AnswerFormat.HASH, draw(gen, r, Kind.ONE_STEP, s.oneStepHash, seen));
        part(training, counts, "one_step_tags", AnswerFormat.TAGS, draw(gen, r, Kind.ONE_STEP, s.oneStepTags, seen));
        part(training, counts, "multi_step_hash", AnswerFormat.HASH,
                draw(gen, r, Kind.MULTI_STEP, s.multiStepHash, seen));
        part(training, counts, "multi_step_tags", AnswerFormat.TAGS,
                draw(gen, r, Kind.MULTI_STEP, s.multiStepTags, seen));
        return new Corpus(training, validation, counts);
    }

    private static void part(List<Example> training, Map<String, Integer> counts, String name, AnswerFormat format,
            List<WordProblem> items) {
        for (int i = 0; i < items.size(); i++) {
            training.add(format.example(name + "-" + i, items.get(i)));
        }
        counts.put(name, items.size());
    }

    private static List<WordProblem> draw(WordProblems gen, Random r, Kind kind, int n, Set<String> seen) {
        List<WordProblem> out = new ArrayList<>(n);
        int attempts = 0;
        while (out.size() < n) {
            if (++attempts > 50 * n + 1000) {
                throw new IllegalStateException("could not draw " + n + " new " + kind.text() + " items");
            }
            WordProblem p = kind == Kind.ONE_STEP ? gen.oneStep(r) : gen.multiStep(r);
            if (seen.add(p.question())) {
                out.add(p);
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        Settings s;
        try {
            s = Settings.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("TrainEmbeddedModel: " + e.getMessage());
            System.err.println("usage: TrainEmbeddedModel [OUT_DIR] [--device cpu|gpu] [--seed N] [--epochs N | --steps N] "
                    + "[--one-step N] [--one-step-tags N] [--multi-step N] [--multi-step-tags N] [--lr X] [--batch N] "
                    + "[--validate-every N] [--checkpoints DIR] (see the class comment)");
            System.exit(2);
            return;
        }
        run(s);
    }

    /** Trains, writes the folder and {@code training.json}, prints a summary; returns {@code training.json}. */
    static JsonObject run(Settings s) throws IOException {
        long wall0 = System.nanoTime();
        long cpu0 = processCpuNanos();
        TinyModelConfig shape = TinyModelConfig.DEFAULT;
        Files.createDirectories(s.out);
        EmbeddedDefault.writeModelFiles(s.out, shape);
        Files.deleteIfExists(s.out.resolve("training.json")); // never leave a stale record beside new weights

        List<WordProblem> shippedTrain = EmbeddedDefault.shippedProblems("train.jsonl");
        List<WordProblem> shippedTest = EmbeddedDefault.shippedProblems("test.jsonl");
        Set<String> exclude = new HashSet<>();
        shippedTrain.forEach(p -> exclude.add(p.question()));
        shippedTest.forEach(p -> exclude.add(p.question()));
        List<WordProblem> test = s.testItems > 0 ? shippedTest.subList(0, Math.min(s.testItems, shippedTest.size()))
                : shippedTest;
        Corpus corpus = corpus(s, exclude);
        SftConfig cfg = s.sftConfig();
        System.out.printf(Locale.ROOT, "tiny-arith %s: %,d parameters; %d training items %s; %s; device %s, torch threads %s%n",
                shape, shape.parameters(EmbeddedTokenizer.defaultVocabulary().size()), corpus.training().size(),
                corpus.counts(), cfg, s.device, System.getProperty("ai.djl.pytorch.num_threads", "default"));

        JsonArray lossCurve = new JsonArray();
        JsonArray validationCurve = new JsonArray();
        StageReport report;
        long trainedCpu;
        try (TextTokenizer tokenizer = TextTokenizer.load(s.out);
                NDManager manager = NDManager.newBaseManager(s.device)) {
            ExampleEncoder encoder = EmbeddedDefault.encoder(tokenizer, null);
            if (s.wholeTextLoss) {
                encoder = encoder.toBuilder().template(wholeTextTemplate()).build();
            }
            ModelConfig config = ModelConfig.load(s.out);
            try (DecoderModel model = DecoderModel.random(config, manager, DataType.FLOAT32, s.seed)) {
                SftTrainer.Builder b = SftTrainer.builder(TrainingTarget.fullParameters(model), encoder).config(cfg)
                        .stageName("pretrain").listener(progress(lossCurve, wall0));
                if (s.validateEvery > 0) {
                    Map<AnswerFormat, ExampleEncoder> encoders = encoders(tokenizer);
                    b.evaluator((m, step) -> validate(m, tokenizer, encoders, corpus.validation(), s, step,
                            validationCurve), s.validateEvery);
                }
                if (s.checkpoints != null) {
                    b.checkpoints(s.checkpoints, s.checkpointEvery);
                }
                report = b.build().train(corpus.training());
                trainedCpu = processCpuNanos() - cpu0;
                Path saved = Files.createTempDirectory(s.out.toAbsolutePath().getParent(), ".tiny-arith-save");
                try {
                    model.save(saved.resolve("model"));
                    ModelConfig back = ModelConfig.load(saved.resolve("model"));
                    if (!back.toString().equals(config.toString())) {
                        throw new IllegalStateException("the saved config " + back + " differs from " + config);
                    }
                    // copied atomically (and with the umask's permissions, not the saved folder's owner-only ones)
                    Path weights = saved.resolve("model/model.safetensors");
                    AtomicFiles.write(s.out.resolve("model.safetensors"), out -> {
                        try (FileChannel in = FileChannel.open(weights)) {
                            for (long pos = 0, n = in.size(); pos < n; ) {
                                pos += in.transferTo(pos, n - pos, out);
                            }
                        }
                    });
                } finally {
                    deleteTree(saved);
                }
            }
        }
        double trainSeconds = (System.nanoTime() - wall0) / 1e9;

        // the committed files, read back: the accuracy reported is that of what ships
        long eval0 = System.nanoTime();
        Map<AnswerFormat, GreedyAccuracy.Result> results = new LinkedHashMap<>();
        RewardProbe probe = null;
        try (NDManager manager = NDManager.newBaseManager(s.device);
                CausalLM lm = CausalLM.load(s.out, manager, DataType.FLOAT32)) {
            Generator generator = lm.generator();
            for (AnswerFormat f : AnswerFormat.values()) {
                results.put(f, GreedyAccuracy.evaluate(generator, EmbeddedDefault.encoder(lm.tokenizer(), f.systemPrompt()),
                        test, f, s.maxNewTokens, s.evalBatch));
            }
            if (s.probeGroups > 0) {
                List<WordProblem> system2 = shippedTrain.stream().filter(p -> p.kind() == Kind.MULTI_STEP)
                        .limit(s.probeGroups).toList();
                probe = RewardProbe.run(generator, EmbeddedDefault.encoder(lm.tokenizer(), AnswerFormat.TAGS.systemPrompt()),
                        GsmRewards.reference(), system2, PROBE_GROUP_SIZE, PROBE_PROMPTS_PER_CALL, PROBE_MAX_NEW_TOKENS,
                        s.seed);
            }
        }
        double evalSeconds = (System.nanoTime() - eval0) / 1e9;
        if (s.completions != null) {
            writeCompletions(s.completions, results);
        }

        JsonObject json = trainingJson(s, corpus, cfg, report, lossCurve, validationCurve, results, trainSeconds,
                trainedCpu / 1e9, evalSeconds, test.size());
        if (probe != null) {
            json.add("grpo_reward_probe", probeJson(probe));
        }
        EmbeddedTokenizer.writeJson(s.out.resolve("training.json"), json);
        printSummary(results, report, trainSeconds, trainedCpu / 1e9, evalSeconds, s.out);
        if (probe != null) {
            System.out.printf(Locale.ROOT, "GRPO reward probe (%d System-2 train items x %d samples at T = 1): mean reward "
                    + "%.3f %s, right answers %.1f%%, groups with differing rewards %d/%d, with a right answer %d/%d, "
                    + "%.0f new tokens on average, %.1f s%n", probe.groups(), probe.groupSize(), probe.meanReward(),
                    probe.meanByFunction(), 100 * probe.correctShare(), probe.groupsWithSpread(), probe.groups(),
                    probe.groupsWithCorrect(), probe.groups(), probe.meanNewTokens(), probe.seconds());
        }
        return json;
    }

    /**
     * {@link EmbeddedDefault#promptTemplate()} with an empty generation prompt: the encoder's prompt is the
     * bos token alone and the whole text is the completion, so the loss counts every token after bos
     * (language-model pretraining) while the ids are exactly those of the prompted form.
     */
    static PromptTemplate wholeTextTemplate() {
        PromptTemplate base = EmbeddedDefault.promptTemplate();
        return (messages, generationPrompt) -> generationPrompt ? "" : base.render(messages, false);
    }

    private static Map<AnswerFormat, ExampleEncoder> encoders(TextTokenizer tokenizer) {
        Map<AnswerFormat, ExampleEncoder> m = new LinkedHashMap<>();
        for (AnswerFormat f : AnswerFormat.values()) {
            m.put(f, EmbeddedDefault.encoder(tokenizer, f.systemPrompt()));
        }
        return m;
    }

    private static Map<String, Double> validate(DecoderModel model, TextTokenizer tokenizer,
            Map<AnswerFormat, ExampleEncoder> encoders, List<WordProblem> items, Settings s, long step,
            JsonArray curve) {
        Map<String, Double> metrics = new LinkedHashMap<>();
        Generator generator = new Generator(model, tokenizer);
        JsonObject point = new JsonObject();
        point.addProperty("step", step);
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  validation after step %d:", step));
        for (AnswerFormat f : AnswerFormat.values()) {
            GreedyAccuracy.Result r = GreedyAccuracy.evaluate(generator, encoders.get(f), items, f, s.maxNewTokens,
                    s.evalBatch);
            for (Map.Entry<Kind, GreedyAccuracy.Tally> e : r.byKind().entrySet()) {
                String key = f.key() + "/" + e.getKey().text();
                metrics.put(key, e.getValue().accuracy());
                metrics.put(key + "/well_formed", e.getValue().wellFormedShare());
                point.addProperty(key, round(e.getValue().accuracy()));
                line.append(String.format(Locale.ROOT, " %s %.0f%% (formed %.0f%%)", key,
                        100 * e.getValue().accuracy(), 100 * e.getValue().wellFormedShare()));
            }
        }
        curve.add(point);
        System.out.println(line);
        return metrics;
    }

    private static TrainingListener progress(JsonArray lossCurve, long wall0) {
        return new TrainingListener() {
            @Override
            public void onStageStart(StageStart st) {
                System.out.printf(Locale.ROOT, "%s: %d steps over %d examples (%d skipped), %,d parameters%s%n",
                        st.stage(), st.totalSteps(), st.examples(), st.skippedExamples(), st.trainableElements(),
                        st.startStep() > 0 ? ", resuming after step " + st.startStep() : "");
            }

            @Override
            public void onStep(StepMetrics m) {
                JsonArray p = new JsonArray();
                p.add(m.step());
                p.add(round(m.loss()));
                lossCurve.add(p);
                System.out.printf(Locale.ROOT, "step %d/%d (epoch %.2f): loss %.4f, lr %.2e, grad norm %.3f, %.0f tokens/s, %.0f s%n",
                        m.step(), m.totalSteps(), m.epoch(), m.loss(), m.learningRate(), m.gradNorm(),
                        m.tokensPerSecond(), (System.nanoTime() - wall0) / 1e9);
            }
        };
    }

    private static JsonObject trainingJson(Settings s, Corpus corpus, SftConfig cfg, StageReport report,
            JsonArray lossCurve, JsonArray validationCurve, Map<AnswerFormat, GreedyAccuracy.Result> results,
            double trainSeconds, double trainCpuSeconds, double evalSeconds, int testItems) throws IOException {
        JsonObject j = new JsonObject();
        j.addProperty("program", TrainEmbeddedModel.class.getName());
        j.addProperty("arguments", String.join(" ", s.arguments));
        j.addProperty("java", System.getProperty("java.version"));
        j.addProperty("seed", s.seed);
        j.addProperty("device", s.device.toString());
        j.addProperty("torch_threads", System.getProperty("ai.djl.pytorch.num_threads", "default"));
        j.addProperty("model", TinyModelConfig.DEFAULT.toString());
        j.addProperty("parameters", TinyModelConfig.DEFAULT.parameters(EmbeddedTokenizer.defaultVocabulary().size()));

        JsonObject curriculum = new JsonObject();
        corpus.counts().forEach(curriculum::addProperty);
        curriculum.addProperty("multi_step_operations", s.minOperations + ".." + s.maxOperations);
        curriculum.addProperty("validation_items", corpus.validation().size());
        curriculum.addProperty("items", "drawn from WordProblems (seed " + s.seed + ", own random stream), no question of "
                + "the shipped train/test split or of the validation items; one mix, shuffled every epoch");
        curriculum.addProperty("hash_format", "question\\nworked lines\\n#### N (no system prompt)");
        curriculum.addProperty("tags_format", "GRPO system prompt\\nquestion\\n<reasoning>\\nworked lines on one line\\n"
                + "</reasoning>\\n<answer>\\nN\\n</answer>\\n");
        curriculum.addProperty("template", "EmbeddedDefault.promptTemplate(): [system\\n]question\\nanswer</s>");
        j.add("curriculum", curriculum);

        JsonObject settings = new JsonObject();
        settings.addProperty("trainer", "SftTrainer, TrainingTarget.fullParameters, no masks (plain AdamW), loss per "
                + "token");
        settings.addProperty("loss_on", s.wholeTextLoss ? "every token after bos (system prompt, question, answer)"
                : "answer tokens only");
        settings.addProperty("learning_rate", s.lr);
        settings.addProperty("schedule", "cosine, warm-up ratio " + s.warmup);
        settings.addProperty("betas", "0.9, 0.95");
        settings.addProperty("weight_decay", s.weightDecay);
        settings.addProperty("max_grad_norm", s.maxGradNorm);
        settings.addProperty("examples_per_step", s.batch);
        settings.addProperty("micro_batch", s.microBatch);
        settings.addProperty("epochs", s.epochs);
        settings.addProperty("max_steps", s.steps);
        settings.addProperty("group_by_length", true);
        settings.addProperty("sft_config", cfg.toString());
        j.add("settings", settings);

        JsonObject data = new JsonObject();
        data.addProperty("training_items", corpus.training().size());
        data.addProperty("examples_trained", report.examples());
        data.addProperty("skipped", report.skippedExamples());
        data.addProperty("tokens", report.tokens());
        data.addProperty("answer_tokens", report.answerTokens());
        data.addProperty("test_items", testItems);
        j.add("data", data);

        j.addProperty("steps", report.steps());
        j.addProperty("train_seconds", round(trainSeconds));
        j.addProperty("train_process_cpu_seconds", round(trainCpuSeconds));
        j.addProperty("eval_seconds", round(evalSeconds));
        j.addProperty("final_loss", round(report.finalLoss()));
        j.add("loss_curve", lossCurve);
        if (!validationCurve.isEmpty()) {
            j.add("validation_curve", validationCurve);
        }

        JsonObject accuracy = new JsonObject();
        accuracy.addProperty("split", "shipped test.jsonl (" + testItems + " items), greedy, " + s.maxNewTokens
                + " new tokens at most");
        for (Map.Entry<AnswerFormat, GreedyAccuracy.Result> e : results.entrySet()) {
            JsonObject f = new JsonObject();
            for (Map.Entry<Kind, GreedyAccuracy.Tally> k : e.getValue().byKind().entrySet()) {
                GreedyAccuracy.Tally t = k.getValue();
                JsonObject o = new JsonObject();
                o.addProperty("correct", t.correct());
                o.addProperty("total", t.total());
                o.addProperty("accuracy", round(t.accuracy()));
                o.addProperty("well_formed", round(t.wellFormedShare()));
                f.add(k.getKey().text(), o);
            }
            accuracy.add(e.getKey().key(), f);
        }
        j.add("accuracy", accuracy);

        JsonObject files = new JsonObject();
        Path weights = s.out.resolve("model.safetensors");
        JsonObject w = new JsonObject();
        w.addProperty("bytes", Files.size(weights));
        w.addProperty("sha256", sha256(weights));
        files.add("model.safetensors", w);
        j.add("files", files);
        return j;
    }

    private static JsonObject probeJson(RewardProbe p) {
        JsonObject j = new JsonObject();
        j.addProperty("what", "GsmRewards.reference() on completions sampled as GRPO samples them (GRPO system prompt, "
                + "temperature 1, " + PROBE_MAX_NEW_TOKENS + " new tokens at most) for the first " + p.groups()
                + " multi-step items of the shipped train split, " + p.groupSize() + " per item");
        j.addProperty("mean_reward", round(p.meanReward()));
        JsonObject f = new JsonObject();
        p.meanByFunction().forEach((k, v) -> f.addProperty(k, round(v)));
        j.add("mean_by_function", f);
        j.addProperty("right_answers", round(p.correctShare()));
        j.addProperty("groups", p.groups());
        j.addProperty("groups_with_differing_rewards", p.groupsWithSpread());
        j.addProperty("groups_with_a_right_answer", p.groupsWithCorrect());
        j.addProperty("mean_new_tokens", round(p.meanNewTokens()));
        j.addProperty("seconds", round(p.seconds()));
        return j;
    }

    private static void printSummary(Map<AnswerFormat, GreedyAccuracy.Result> results, StageReport report,
            double trainSeconds, double cpuSeconds, double evalSeconds, Path out) {
        System.out.printf(Locale.ROOT, "%nTrained %d steps in %.0f s (process CPU %.0f s), final loss %.4f; "
                + "evaluation %.0f s%n", report.steps(), trainSeconds, cpuSeconds, report.finalLoss(), evalSeconds);
        System.out.println("greedy accuracy on the shipped test split:");
        System.out.println("  format  kind         correct  accuracy  well-formed");
        for (Map.Entry<AnswerFormat, GreedyAccuracy.Result> e : results.entrySet()) {
            for (Map.Entry<Kind, GreedyAccuracy.Tally> k : e.getValue().byKind().entrySet()) {
                GreedyAccuracy.Tally t = k.getValue();
                System.out.printf(Locale.ROOT, "  %-6s  %-11s  %3d/%-3d  %7.1f%%  %10.1f%%%n", e.getKey().key(),
                        k.getKey().text(), t.correct(), t.total(), 100 * t.accuracy(), 100 * t.wellFormedShare());
            }
        }
        for (Map.Entry<AnswerFormat, GreedyAccuracy.Result> e : results.entrySet()) {
            for (Kind kind : Kind.values()) {
                e.getValue().outcomes().stream().filter(o -> o.problem().kind() == kind).findFirst().ifPresent(o ->
                        System.out.printf("sample (%s, %s): %s%n  -> %s%n", e.getKey().key(), kind.text(),
                                o.problem().question(), o.completion().replace("\n", "\\n")));
            }
        }
        System.out.println("wrote " + out);
    }

    private static void writeCompletions(Path file, Map<AnswerFormat, GreedyAccuracy.Result> results) throws IOException {
        com.google.gson.Gson gson = new com.google.gson.GsonBuilder().disableHtmlEscaping().create();
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<AnswerFormat, GreedyAccuracy.Result> e : results.entrySet()) {
            for (GreedyAccuracy.Outcome o : e.getValue().outcomes()) {
                JsonObject j = new JsonObject();
                j.addProperty("format", e.getKey().key());
                j.addProperty("kind", o.problem().kind().text());
                j.addProperty("operations", o.problem().operations());
                j.addProperty("question", o.problem().question());
                j.addProperty("reference", o.problem().result());
                j.addProperty("completion", o.completion());
                j.addProperty("extracted", o.extracted());
                j.addProperty("correct", o.correct());
                j.addProperty("well_formed", o.wellFormed());
                sb.append(gson.toJson(j)).append('\n');
            }
        }
        TextFiles.writeAtomically(file, sb.toString());
    }

    static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static double round(double v) {
        return Double.isFinite(v) ? Math.round(v * 1e4) / 1e4 : v;
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
