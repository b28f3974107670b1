package ai.lorapar.train.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.engine.Collective;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.CheckpointMismatchException;
import ai.lorapar.train.CheckpointStore;
import ai.lorapar.train.DataParallel;
import ai.lorapar.train.Evaluator;
import ai.lorapar.train.Fingerprints;
import ai.lorapar.train.MaskedAdamW;
import ai.lorapar.train.ModelDigest;
import ai.lorapar.train.NonFiniteGuard;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.StageStart;
import ai.lorapar.train.StepMetrics;
import ai.lorapar.train.TrainerState;
import ai.lorapar.train.TrainingCheckpoint;
import ai.lorapar.train.TrainingDivergedException;
import ai.lorapar.train.StageBuilder;
import ai.lorapar.train.StepLogs;
import ai.lorapar.train.TrainingListener;
import ai.lorapar.train.TrainingTarget;
import ai.lorapar.train.TwoStageTrainer;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * GRPO on a {@link LoraModel}: LoRA-PAR's stage 2, usable alone. Per optimizer step:
 *
 * <ol>
 *   <li><b>rollout</b>: each prompt repeated G times in one batch, sampled by the batched {@link Generator}
 *       from the current policy (adapters on; CUDA graphs where the engine has them), stopping at end of
 *       sequence; seeded from (seed, rollout index);</li>
 *   <li><b>rewards</b>: every function of {@link GrpoConfig#rewards()} on every completion's text (host), their
 *       weighted sum, group-normalised advantages ({@link GroupAdvantages});</li>
 *   <li><b>reference</b> (β_KL &gt; 0 only): log-probabilities of the completions under the base model, inside
 *       {@link LoraModel#disabled()} (the original model for every init), in micro-batches;</li>
 *   <li><b>policy</b>: log-probabilities recomputed in a training pass (logits / T, {@link GrpoLogProbs}), the
 *       {@link GrpoLoss} of each micro-batch, backward; gradients accumulate over the micro-batches;</li>
 *   <li><b>optimizer</b>: one {@link MaskedAdamW} step under the element masks (stage 2's in LoRA-PAR): frozen
 *       elements stay bit-identical, weight decay included.</li>
 * </ol>
 *
 * <pre>{@code
 * try (GrpoTrainer grpo = GrpoTrainer.builder(lora).encoder(enc).config(GrpoConfig.builder().build())
 *         .masks(partition.stageMasks().stage2()).listener(TrainingListener.logging(10))
 *         .checkpoints(Path.of("run/grpo"), 50)            // resumes from the latest checkpoint there
 *         .completionLog(Path.of("run/completions.jsonl")).build()) {
 *     GrpoReport report = grpo.train(labelled.system2());
 * }
 * }</pre>
 *
 * <p>Prompts are the encoder's prompts with {@link GrpoConfig#systemPrompt()} (by default the reference's,
 * asking for {@code <reasoning>…</reasoning><answer>…</answer>}), the last {@link GrpoConfig#maxPromptTokens()}
 * tokens kept. The prompt order of each epoch is a shuffle seeded by (seed, epoch); the last step of an
 * epoch takes the prompts that are left. Reward functions receive the decoded completion (no special
 * tokens); without a tokenizer (ids-only use, e.g. benchmarks) they receive null text.
 *
 * <p><b>NaN guard.</b> The policy pass's one host read also carries the sum of every gradient
 * ({@link NonFiniteGuard}, as {@link ai.lorapar.train.SftTrainer}): a NaN or infinite loss or gradient stops
 * the run with a {@link TrainingDivergedException} before the optimizer step, gradients zeroed, so no
 * parameter or optimizer state changes.
 *
 * <p><b>Checkpoints and resume.</b> With {@link Builder#checkpoints} a checkpoint ({@link TrainingCheckpoint}:
 * the PEFT adapter, A/B (and PiSSA/OLoRA's A₀/B₀) exactly, AdamW's state, the mask, and a {@link TrainerState}
 * with the step, the epoch and the prompts done in it, the rollout counter and the run's fingerprints) is
 * written after every update that reaches a multiple of k optimizer steps, and after the last. {@link #train}
 * resumes from the latest one: every random choice is a function of (seed, counter) only — the prompt order
 * of (seed, epoch), a rollout's sampling seed of (seed, rollout index), the LoRA dropout masks of (seed,
 * optimizer step) — so on the CPU a resumed run ends with bit for bit the weights of an uninterrupted one.
 * A checkpoint of another model, LoRA config, {@link GrpoConfig#fingerprint() config}, mask or prompt set is
 * refused ({@link CheckpointMismatchException}); a checkpoint of a completed stage is restored and nothing is
 * trained. With μ &gt; 1 checkpoints fall on update boundaries (a rollout's μ steps are never split).
 *
 * <p><b>Metrics.</b> Every optimizer step's {@link GrpoStepMetrics} go to the {@link GrpoListener}; every
 * {@link GrpoConfig#loggingSteps()} steps the {@link TrainingListener}s get a {@link StepMetrics} (loss
 * averaged since the last report, learning rate, gradient norm, real prompt + completion tokens per second;
 * {@code answerTokens} counts completion tokens) whose {@link StepMetrics#details() details} are the
 * averages since the last report of: {@code reward}, {@code reward_std}, {@code rewards/<function>/mean} and
 * {@code /std}, {@code kl}, {@code clip_ratio}, {@code completion_length}, {@code truncated_ratio},
 * {@code grad_clipped}, {@code completion_tokens_per_second} and {@code seconds_rollout|rewards|reference|policy|optimizer}.
 *
 * <p><b>Several processes (data parallel).</b> With {@link StageBuilder#collective} every rank runs this
 * loop on its own copy of the model with the same prompts and config: the prompt order and every update's
 * prompts are the global ones; of each rollout's {@link GrpoConfig#promptsPerStep()} prompts rank r of W
 * samples prompts r, r + W, … ({@link DataParallel}), G completions each, so a group never spans ranks and
 * its advantages are the same as in one process. The completions' rewards, lengths and truncation flags are
 * gathered (one all-reduce per update) in the global order, so the loss normaliser (completions or
 * completion tokens of the whole update) and every reported metric equal one process's on the same
 * completions; the gradients, loss and KL/clip sums are summed across ranks in one all-reduce after the
 * step's backward passes (the NaN guard and the optimizer see the sums). Sampling: the seed of a rollout
 * is (seed, rollout index) on every rank, and each completion takes the random draws of its row in the whole
 * rollout ({@link Generator#generate(List, SamplingConfig, int, long[])}), so W ranks sample the completions
 * one process samples (the same tokens up to the logits' rounding, which depends on the batch's shape: on
 * the CPU in fp32 a 2-rank run equals a 1-rank run, tested; on a GPU in bf16 a near-tie can tip), at the
 * cost of drawing the whole rollout's noise on every rank. {@link GrpoConfig#promptsPerStep()} must be a
 * multiple of the world size. Only the leader writes checkpoints (the others wait for it), calls the
 * listeners and the evaluator, and writes the completion log (its own share of the completions); a
 * checkpoint records global positions, so a run resumes on any world size that divides the prompts per
 * rollout.
 *
 * <p>Not thread-safe; one trainer per model at a time. Close it to free the optimizer state.
 */
public final class GrpoTrainer implements AutoCloseable {
    /** The stage name of GRPO in checkpoints, reports and listener events. */
    public static final String STAGE = "grpo";
    private static final Logger LOG = LoggerFactory.getLogger(GrpoTrainer.class);
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeSpecialFloatingPointValues()
            .create();

    private final LoraModel lora;
    private final DecoderModel model;
    private final ExampleEncoder promptEncoder;
    /** The prompt encoder without its length limit. */
    private final ExampleEncoder wholePromptEncoder;
    private final TextTokenizer tokenizer;
    private final GrpoConfig config;
    private final Map<String, NDArray> masks;
    private final GrpoListener listener;
    private final Path completionLog;
    private final List<TrainingListener> trainingListeners;
    private final CheckpointStore store;
    private final int checkpointEvery;
    private final Evaluator evaluator;
    private final int evaluateEvery;
    private final String stage;
    private final Generator generator;
    private final long[] eosIds;
    private final long padId;
    private final Collective collective;

    private MaskedAdamW optimizer;
    private long totalSteps;
    /** Rollouts sampled so far (seeds the next one). */
    private long rollouts;
    /** Optimizer steps taken so far. */
    private long steps;
    /** Tests: micro-batches of the reference pass run so far. */
    private long referencePasses;
    /** Tests: sees the accumulated gradients before each optimizer step. */
    private Consumer<Map<String, NDArray>> gradientProbe;

    private GrpoTrainer(Builder b) {
        this.lora = b.lora;
        this.model = b.lora.model();
        this.config = b.config;
        this.masks = b.masks;
        StageBuilder.StageOptions o = b.stageOptions();
        this.collective = o.collective();
        boolean leader = collective.isLeader(); // the leader reports, evaluates and logs for the job
        this.listener = leader ? b.listener : GrpoListener.none();
        this.completionLog = leader ? b.completionLog : null;
        this.trainingListeners = leader ? o.listeners() : List.of();
        this.store = o.store();
        this.checkpointEvery = o.checkpointEvery();
        this.evaluator = leader ? o.evaluator() : null;
        this.evaluateEvery = o.evaluateEvery();
        this.stage = o.stage();
        if (b.encoder != null) {
            ExampleEncoder.Builder eb = b.encoder.toBuilder().maxPromptLength(config.maxPromptTokens());
            if (!config.keepEncoderSystemPrompt()) {
                eb.systemPrompt(config.systemPrompt());
            }
            this.promptEncoder = eb.build();
            this.wholePromptEncoder = eb.maxPromptLength(Integer.MAX_VALUE).build();
            this.tokenizer = b.encoder.tokenizer();
        } else {
            this.promptEncoder = null;
            this.wholePromptEncoder = null;
            this.tokenizer = null;
        }
        this.generator = new Generator(model, tokenizer);
        Set<Long> eos = new LinkedHashSet<>();
        model.config().eosTokenIds().forEach(i -> eos.add((long) i));
        if (tokenizer != null) {
            tokenizer.eosIds().forEach(i -> eos.add((long) i));
        }
        this.eosIds = config.stopAtEos() ? eos.stream().mapToLong(Long::longValue).toArray() : new long[0];
        if (model.config().padTokenId() != null) {
            this.padId = model.config().padTokenId();
        } else if (b.encoder != null) {
            this.padId = b.encoder.padId();
        } else {
            this.padId = eos.isEmpty() ? 0 : eos.iterator().next();
        }
    }

    /** A trainer of {@code lora}'s parameters; set the encoder (for {@link #train}) and the config. */
    public static Builder builder(LoraModel lora) {
        return new Builder(lora);
    }

    /**
     * GRPO as the second stage of a {@link TwoStageTrainer} ({@code TwoStageTrainer.Builder#grpo} uses it):
     * on the context's adapters, encoder and stage-2 masks, with its checkpoint folder, listeners and
     * evaluator; completions logged to {@code completionLog} (null: none).
     */
    public static TwoStageTrainer.SecondStage secondStage(GrpoConfig config, Path completionLog) {
        Objects.requireNonNull(config, "config");
        return (ctx, system2) -> {
            Builder b = builder(ctx.lora()).encoder(ctx.encoder()).config(config).masks(ctx.masks())
                    .stageName(ctx.stage()).listeners(ctx.listeners()).completionLog(completionLog)
                    .collective(ctx.collective());
            if (ctx.checkpointFolder() != null) {
                b.checkpoints(ctx.checkpointFolder(), ctx.checkpointEvery()).keepCheckpoints(ctx.keepCheckpoints());
            }
            if (ctx.evaluator() != null) {
                b.evaluator(ctx.evaluator(), ctx.evaluateEvery());
            }
            try (GrpoTrainer trainer = b.build()) {
                return trainer.train(system2).stage();
            }
        };
    }

    public GrpoConfig config() {
        return config;
    }

    /** The optimizer (null before {@link #start}); its state is what a checkpoint saves. */
    public MaskedAdamW optimizer() {
        return optimizer;
    }

    /** Optimizer steps taken so far. */
    public long stepCount() {
        return steps;
    }

    /** Rollouts sampled so far. */
    public long rolloutCount() {
        return rollouts;
    }

    /** How the last rollout's decode steps ran ({@link Generator#lastDecodePath()}): "cuda-graph", "eager", ... */
    public String lastDecodePath() {
        return generator.lastDecodePath();
    }

    /** The encoder GRPO's prompts go through (system prompt and prompt length of the config), or null. */
    public ExampleEncoder promptEncoder() {
        return promptEncoder;
    }

    /** Where the prompts are and what the stage has done so far (what a checkpoint records). */
    private static final class Position {
        int epoch;
        /** Prompts of the current epoch's order already trained on. */
        int promptInEpoch;
        long promptsSeen;
        long completions;
        long tokens;
        long completionTokens;
        double lastLoss = Double.NaN;
    }

    /**
     * GRPO over {@code examples} for {@link GrpoConfig#epochs()} epochs (or {@link GrpoConfig#maxSteps()}),
     * or what is left of it: with {@link Builder#checkpoints} the run resumes from the latest checkpoint
     * there (a completed stage is restored, not redone); see the class comment.
     *
     * @throws IllegalStateException without an encoder
     * @throws IllegalArgumentException for no examples
     * @throws TrainingDivergedException when a loss or gradient is NaN or infinite (that step not taken)
     * @throws CheckpointMismatchException when the checkpoint folder holds another run's checkpoint
     * @throws IOException when a checkpoint cannot be written or read
     */
    public GrpoReport train(List<Example> examples) throws IOException {
        if (promptEncoder == null) {
            throw new IllegalStateException("train(examples) needs an encoder: GrpoTrainer.builder(lora).encoder(...)");
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("no prompts to train on");
        }
        long started = System.nanoTime();
        List<GrpoPrompt> prompts = new ArrayList<>(examples.size());
        int truncatedPrompts = 0;
        for (Example e : examples) {
            // whole prompts: each rollout keeps their last maxPromptTokens (truncated), so they are counted here
            GrpoPrompt p = new GrpoPrompt(e, wholePromptEncoder.encodePrompt(e));
            truncatedPrompts += p.length() > config.maxPromptTokens() ? 1 : 0;
            prompts.add(p);
        }
        if (truncatedPrompts > 0) {
            LOG.warn("{}: {} of {} prompts are longer than {} tokens; their last {} tokens are kept", stage,
                    truncatedPrompts, prompts.size(), config.maxPromptTokens(), config.maxPromptTokens());
        }
        long total = config.totalSteps(prompts.size());
        start(total);
        rollouts = 0;

        TrainingTarget target = TrainingTarget.lora(lora);
        Fingerprints.MaskSummary maskSummary = Fingerprints.masks(masks, lora.parameters());
        ModelDigest digest = ModelDigest.of(model);
        Map<String, String> fingerprints = new LinkedHashMap<>();
        fingerprints.put(Fingerprints.MODEL, Fingerprints.model(model));
        fingerprints.put(Fingerprints.TARGET, target.description());
        fingerprints.put(Fingerprints.TRAINING, config.fingerprint());
        fingerprints.put(Fingerprints.MASKS, maskSummary.fingerprint());
        fingerprints.put(Fingerprints.DATA, promptFingerprint(prompts));

        Position pos = new Position();
        long resumedFrom = 0;
        Path lastCheckpoint = null;
        if (store != null) {
            Optional<Path> latest = store.latest();
            if (latest.isPresent()) {
                TrainerState st = TrainingCheckpoint.restore(latest.get(), stage, fingerprints, digest, target, optimizer);
                JsonObject x = st.extra();
                steps = st.step();
                rollouts = x.get(ROLLOUTS).getAsLong();
                pos.epoch = st.epoch();
                pos.promptInEpoch = (int) st.microBatchInEpoch();
                pos.promptsSeen = st.examplesSeen();
                pos.completions = x.get(COMPLETIONS).getAsLong();
                pos.tokens = st.tokens();
                pos.completionTokens = st.answerTokens();
                pos.lastLoss = st.lastLoss();
                resumedFrom = steps;
                lastCheckpoint = latest.get();
                if (completionLog != null) {
                    // the stopped run may have logged steps after its last checkpoint: they are logged again
                    try {
                        StepLogs.dropStepsAfter(completionLog, null, steps);
                    } catch (IOException e) {
                        throw new UncheckedIOException(completionLog + ": cannot drop the completions after step "
                                + steps + " on resume: " + e.getMessage(), e);
                    }
                }
                LOG.info("{}: resuming from {} (step {} of {}, rollout {}{})", stage, latest.get(), steps, total, rollouts,
                        st.completed() ? ", stage complete" : "");
            }
        }
        long trainable = lora.parameterCount();
        StageStart start = new StageStart(stage, total, steps, prompts.size(), 0, trainable,
                maskSummary.activeElements(), target.description());
        trainingListeners.forEach(l -> l.onStageStart(start));

        List<GrpoStepMetrics> all = new ArrayList<>();
        double lossSum = 0;
        Window window = new Window();
        int perUpdate = config.promptsPerUpdate();
        List<GrpoPrompt> order = steps < total ? epochOrder(prompts, pos.epoch) : null;
        while (steps < total) {
            long stepsBefore = steps;
            List<GrpoPrompt> batch = order.subList(pos.promptInEpoch, Math.min(order.size(), pos.promptInEpoch + perUpdate));
            long promptTokens = 0;
            for (GrpoPrompt p : batch) {
                promptTokens += (long) Math.min(p.length(), config.maxPromptTokens()) * config.groupSize();
            }
            List<GrpoStepMetrics> done = step(batch);
            all.addAll(done);

            pos.promptInEpoch += batch.size();
            pos.promptsSeen += batch.size();
            if (pos.promptInEpoch >= order.size()) {
                pos.epoch++;
                pos.promptInEpoch = 0;
                if (steps < total) {
                    order = epochOrder(prompts, pos.epoch);
                }
            }
            GrpoStepMetrics first = done.get(0);
            pos.completions += first.completions();
            pos.completionTokens += first.completionTokens();
            pos.tokens += first.completionTokens() + promptTokens;
            pos.lastLoss = done.get(done.size() - 1).loss();

            if (store != null && (steps / checkpointEvery > stepsBefore / checkpointEvery || steps == total)) {
                JsonObject extra = new JsonObject();
                extra.addProperty(ROLLOUTS, rollouts);
                extra.addProperty(COMPLETIONS, pos.completions);
                TrainerState st = new TrainerState(stage, steps, total, pos.epoch, pos.promptInEpoch, rollouts,
                        pos.promptsSeen, pos.tokens, pos.completionTokens, steps == total, pos.lastLoss, fingerprints,
                        digest, extra);
                Path written = store.write(steps, tmp -> TrainingCheckpoint.write(tmp, target, optimizer, masks, st),
                        collective);
                lastCheckpoint = written;
                long s = steps;
                trainingListeners.forEach(l -> l.onCheckpoint(stage, s, written)); // the leader's listeners only
            }
            for (int i = 0; i < done.size(); i++) {
                GrpoStepMetrics m = done.get(i);
                lossSum += m.loss();
                // the rollout's prompt and completion tokens count once, with the first of its μ steps
                window.add(m, i == 0 ? first.completionTokens() + promptTokens : 0);
                if (m.step() % config.loggingSteps() == 0 || m.step() == total) {
                    double epoch = pos.epoch + (double) pos.promptInEpoch / prompts.size();
                    StepMetrics sm = window.report(stage, m, total, epoch, maskSummary.activeElements(), pos.tokens,
                            pos.completionTokens);
                    trainingListeners.forEach(l -> l.onStep(sm));
                }
            }
            if (evaluator != null && (steps / evaluateEvery > stepsBefore / evaluateEvery || steps == total)) {
                Map<String, Double> metrics = evaluator.evaluate(model, steps);
                long s = steps;
                trainingListeners.forEach(l -> l.onEvaluation(stage, s, metrics));
            }
        }
        StageReport report = new StageReport(stage, steps, total, resumedFrom, prompts.size(), 0, truncatedPrompts,
                pos.tokens, pos.completionTokens, pos.lastLoss, all.isEmpty() ? Double.NaN : lossSum / all.size(),
                Duration.ofNanos(System.nanoTime() - started), lastCheckpoint);
        trainingListeners.forEach(l -> l.onStageEnd(report));
        return new GrpoReport(report, all);
    }

    /** Keys of GRPO's {@link TrainerState#extra()}. */
    private static final String ROLLOUTS = "rollouts";
    private static final String COMPLETIONS = "completions";

    /**
     * SHA-256 of the prompts in order (their ids: template, system prompt, truncation) and of the examples'
     * ids and answers (what rewards compare with).
     */
    static String promptFingerprint(List<GrpoPrompt> prompts) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
        for (GrpoPrompt p : prompts) {
            ByteBuffer ids = ByteBuffer.allocate(4 + 8 * p.length());
            ids.putInt(p.length());
            for (long id : p.idsUnsafe()) {
                ids.putLong(id);
            }
            sha.update(ids.array());
            sha.update((p.example().id() + "\u0000" + p.example().answer() + "\u0000").getBytes(StandardCharsets.UTF_8));
        }
        return prompts.size() + " prompts, sha256:" + HexFormat.of().formatHex(sha.digest());
    }

    /** The steps since the last listener report, averaged into one {@link StepMetrics}. */
    private final class Window {
        int steps;
        double loss;
        long tokens;
        double seconds;
        final Map<String, double[]> details = new LinkedHashMap<>(); // name -> {sum, count}

        void add(GrpoStepMetrics m, long realTokens) {
            steps++;
            loss += m.loss();
            tokens += realTokens;
            seconds += m.seconds();
            put("reward", m.reward().mean());
            put("reward_std", m.reward().std());
            m.rewardsByFunction().forEach((name, ms) -> {
                put("rewards/" + name + "/mean", ms.mean());
                put("rewards/" + name + "/std", ms.std());
            });
            put("kl", m.kl());
            put("clip_ratio", m.clipFraction());
            put("completion_length", m.completionLength());
            put("truncated_ratio", m.truncatedFraction());
            put("grad_clipped", m.gradClipped() ? 1 : 0);
            put("completion_tokens_per_second", m.tokensPerSecond());
            put("seconds_rollout", m.rolloutSeconds());
            put("seconds_rewards", m.rewardSeconds());
            put("seconds_reference", m.referenceSeconds());
            put("seconds_policy", m.policySeconds());
            put("seconds_optimizer", m.optimizerSeconds());
        }

        private void put(String name, double v) {
            double[] acc = details.computeIfAbsent(name, k -> new double[2]);
            if (!Double.isNaN(v)) {
                acc[0] += v;
                acc[1]++;
            }
        }

        StepMetrics report(String stageName, GrpoStepMetrics last, long total, double epoch, long active, long allTokens,
                long completionTokens) {
            Map<String, Double> d = new LinkedHashMap<>();
            details.forEach((k, acc) -> d.put(k, acc[1] > 0 ? acc[0] / acc[1] : Double.NaN));
            StepMetrics sm = new StepMetrics(stageName, last.step(), total, epoch, loss / steps, last.learningRate(),
                    last.gradNorm(), seconds > 0 ? tokens / seconds : Double.NaN, active, allTokens, completionTokens, d);
            steps = 0;
            loss = 0;
            tokens = 0;
            seconds = 0;
            details.clear();
            return sm;
        }
    }

    /** The prompts of {@code epoch} in their shuffled order (seeded by the config's seed and the epoch). */
    List<GrpoPrompt> epochOrder(List<GrpoPrompt> prompts, int epoch) {
        List<GrpoPrompt> order = new ArrayList<>(prompts);
        Collections.shuffle(order, new Random(mix(config.seed(), 0x5EED_0000L + epoch)));
        return order;
    }

    /**
     * Creates the optimizer for a run of {@code totalSteps} optimizer steps (the learning-rate schedule
     * spans them). {@link #train} calls it; call it yourself before {@link #step}.
     */
    public void start(long totalSteps) {
        if (totalSteps <= 0) {
            throw new IllegalArgumentException("totalSteps must be positive, got " + totalSteps);
        }
        if (optimizer != null) {
            optimizer.close();
        }
        this.optimizer = MaskedAdamW.builder().learningRate(config.learningRate()).betas(config.beta1(), config.beta2())
                .epsilon(config.adamEpsilon()).weightDecay(config.weightDecay()).maxGradNorm(config.maxGradNorm())
                .schedule(config.schedule(), totalSteps).build(lora.parameters(), masks);
        this.totalSteps = totalSteps;
        this.steps = 0;
        optimizer.zeroGradients();
    }

    /**
     * One update on {@code prompts} (at most {@link GrpoConfig#promptsPerUpdate()}): sampled in
     * {@link GrpoConfig#gradientAccumulation()} rollouts of {@link GrpoConfig#promptsPerStep()} prompts, then μ
     * optimizer steps. Returns their metrics (μ entries). In a data-parallel run {@code prompts} are the
     * update's global prompts, the same on every rank; each rank samples its share.
     */
    public List<GrpoStepMetrics> step(List<GrpoPrompt> prompts) {
        checkStarted();
        List<Rollout> group = new ArrayList<>();
        try {
            for (int from = 0; from < prompts.size(); from += config.promptsPerStep()) {
                List<GrpoPrompt> chunk = prompts.subList(from, Math.min(prompts.size(), from + config.promptsPerStep()));
                // data parallel: this rank's groups of the rollout (all of them in a world of one)
                int[] idx = DataParallel.shareIndices(chunk.size(), collective.rank(), collective.worldSize());
                if (idx.length == 0) {
                    rollouts++; // the rollout counter stays global
                    continue;
                }
                List<GrpoPrompt> mine = new ArrayList<>(idx.length);
                int[] global = new int[idx.length];
                for (int k = 0; k < idx.length; k++) {
                    mine.add(chunk.get(idx[k]));
                    global[k] = from + idx[k];
                }
                Rollout r = sample(truncated(mine), chunk.size(), idx);
                r.globalPrompts = global;
                group.add(r);
            }
            return update(group, prompts.size());
        } finally {
            group.forEach(Rollout::close);
        }
    }

    /**
     * Tests: one update on given completions instead of sampled ones ({@code completions.get(i·G + j)} is the
     * j-th completion of prompt i; each is cut after its first end-of-sequence token), as one rollout. In a
     * data-parallel run {@code prompts} and {@code completions} are the global ones; each rank takes its share.
     */
    List<GrpoStepMetrics> stepWithCompletions(List<GrpoPrompt> prompts, List<long[]> completions) {
        checkStarted();
        int g = config.groupSize();
        if (completions.size() != prompts.size() * g) {
            throw new IllegalArgumentException(prompts.size() + " prompts × G=" + g + " need " + prompts.size() * g
                    + " completions, got " + completions.size());
        }
        int[] global = DataParallel.shareIndices(prompts.size(), collective.rank(), collective.worldSize());
        if (global.length == 0) {
            return update(List.of(), prompts.size());
        }
        List<GrpoPrompt> ps = new ArrayList<>();
        List<long[]> mine = new ArrayList<>();
        for (int k : global) {
            ps.add(prompts.get(k));
            for (int j = 0; j < g; j++) {
                mine.add(completions.get(k * g + j));
            }
        }
        ps = truncated(ps);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < mine.size(); i++) {
            long[] c = mine.get(i);
            int len = c.length;
            boolean stopped = false;
            for (int t = 0; t < c.length; t++) {
                if (isEos(c[t])) {
                    len = t + 1;
                    stopped = true;
                    break;
                }
            }
            long[] cut = Arrays.copyOf(c, len);
            String text = tokenizer == null ? null : tokenizer.decode(cut, true);
            rows.add(new Row(ps.get(i / g), cut, text, !stopped));
        }
        try (Rollout r = new Rollout(ps, rows, 0)) {
            r.globalPrompts = global;
            prepare(r);
            return update(List.of(r), prompts.size());
        }
    }

    void setGradientProbe(Consumer<Map<String, NDArray>> probe) {
        this.gradientProbe = probe;
    }

    long referencePasses() {
        return referencePasses;
    }

    private void checkStarted() {
        if (optimizer == null) {
            throw new IllegalStateException("call start(totalSteps) (or train) before step");
        }
    }

    private boolean isEos(long id) {
        for (long e : eosIds) {
            if (e == id) {
                return true;
            }
        }
        return false;
    }

    private List<GrpoPrompt> truncated(List<GrpoPrompt> prompts) {
        List<GrpoPrompt> out = new ArrayList<>(prompts.size());
        for (GrpoPrompt p : prompts) {
            if (p.length() > config.maxPromptTokens()) {
                long[] ids = p.idsUnsafe();
                out.add(new GrpoPrompt(p.example(), Arrays.copyOfRange(ids, ids.length - config.maxPromptTokens(),
                        ids.length)));
            } else {
                out.add(p);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ rollout

    /** One completion of a prompt, cut after its first end-of-sequence token. */
    private record Row(GrpoPrompt prompt, long[] completion, String text, boolean truncated) {}

    /** A micro-batch of a rollout: host arrays (made into device arrays per pass) and device results. */
    private static final class MicroBatch {
        final int from;
        final int to;
        final int promptWidth;
        final int completionWidth;
        final long[] ids;
        final long[] attention;
        final float[] mask;
        /** The ids, attention mask and completion mask on the device, made once (host-to-device copies). */
        NDArray deviceIds;
        NDArray deviceAttention;
        NDArray deviceMask;
        NDArray reference;
        NDArray old;

        MicroBatch(int from, int to, int promptWidth, int completionWidth, long[] ids, long[] attention, float[] mask) {
            this.from = from;
            this.to = to;
            this.promptWidth = promptWidth;
            this.completionWidth = completionWidth;
            this.ids = ids;
            this.attention = attention;
            this.mask = mask;
        }

        int rows() {
            return to - from;
        }

        void upload(NDManager manager) {
            Shape shape = new Shape(rows(), promptWidth + completionWidth);
            deviceIds = manager.create(ids, shape);
            deviceAttention = manager.create(attention, shape);
            deviceMask = manager.create(mask, new Shape(rows(), completionWidth));
        }
    }

    /** A new handle on {@code a} (a view) owned by {@code scope}, so results of ops on it land there. */
    private static NDArray view(NDArray a, NDManager scope) {
        NDArray v = a.reshape(a.getShape());
        v.attach(scope);
        return v;
    }

    /** The completions of some prompts, their rewards and advantages, and the passes' inputs. */
    private final class Rollout implements AutoCloseable {
        final List<GrpoPrompt> prompts;
        final List<Row> rows;
        final NDManager manager;
        final List<MicroBatch> micro = new ArrayList<>();
        final double rolloutSeconds;
        double rewardSeconds;
        double referenceSeconds;
        double[][] scores;
        double[] totals;
        NDArray advantages;
        long tokens;
        int truncatedCount;
        /** The index of each of its prompts among the update's global prompts (data parallel). */
        int[] globalPrompts;

        Rollout(List<GrpoPrompt> prompts, List<Row> rows, double rolloutSeconds) {
            this.prompts = prompts;
            this.rows = rows;
            this.rolloutSeconds = rolloutSeconds;
            this.manager = model.manager().newSubManager();
            for (Row r : rows) {
                tokens += r.completion().length;
                truncatedCount += r.truncated() ? 1 : 0;
            }
            try {
                for (int from = 0; from < rows.size(); from += config.microBatchSize()) {
                    MicroBatch mb = microBatch(rows, from, Math.min(rows.size(), from + config.microBatchSize()));
                    mb.upload(manager); // once per rollout, before any pass: no copy inside the passes
                    micro.add(mb);
                }
            } catch (RuntimeException e) {
                manager.close();
                throw e;
            }
        }

        @Override
        public void close() {
            manager.close();
        }
    }

    /** Left-padded prompts then right-padded completions of rows [from, to), trimmed to the widest row. */
    private MicroBatch microBatch(List<Row> rows, int from, int to) {
        int p = 0;
        int c = 0;
        for (int i = from; i < to; i++) {
            p = Math.max(p, rows.get(i).prompt().length());
            c = Math.max(c, rows.get(i).completion().length);
        }
        int n = to - from;
        int w = p + c;
        long[] ids = new long[n * w];
        long[] att = new long[n * w];
        float[] mask = new float[n * c];
        Arrays.fill(ids, padId);
        for (int i = 0; i < n; i++) {
            Row r = rows.get(from + i);
            long[] prompt = r.prompt().idsUnsafe();
            int off = i * w + p - prompt.length;
            System.arraycopy(prompt, 0, ids, off, prompt.length);
            Arrays.fill(att, off, off + prompt.length, 1L);
            System.arraycopy(r.completion(), 0, ids, i * w + p, r.completion().length);
            Arrays.fill(att, i * w + p, i * w + p + r.completion().length, 1L);
            Arrays.fill(mask, i * c, i * c + r.completion().length, 1f);
        }
        if (w > model.config().maxPositions()) {
            LOG.warn("prompt ({}) + completion ({}) tokens exceed max_position_embeddings {}", p, c,
                    model.config().maxPositions());
        }
        return new MicroBatch(from, to, p, c, ids, att, mask);
    }

    /**
     * Samples G completions of every prompt in one batch, then rewards and the reference pass. The prompts are
     * {@code chunkIndices} of the rollout's {@code chunkSize} (all of them in a world of one): each completion
     * gets the random draws of its row in the whole rollout, so W ranks sample what one process samples.
     */
    private Rollout sample(List<GrpoPrompt> prompts, int chunkSize, int[] chunkIndices) {
        int g = config.groupSize();
        List<long[]> batch = new ArrayList<>(prompts.size() * g);
        for (GrpoPrompt p : prompts) {
            for (int j = 0; j < g; j++) {
                batch.add(p.idsUnsafe());
            }
        }
        SamplingConfig sc = new SamplingConfig(config.maxCompletionTokens(), config.temperature(), 0, 1.0,
                rolloutSeed(config.seed(), rollouts), config.stopAtEos() ? null : List.of(), null);
        long t0 = System.nanoTime();
        GenerationResult result;
        if (chunkIndices.length == chunkSize) {
            result = generator.generate(batch, sc); // the whole rollout: its own draws
        } else {
            long[] rows = new long[batch.size()];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = (long) chunkIndices[i / g] * g + i % g;
            }
            result = generator.generate(batch, sc, chunkSize * g, rows);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        rollouts++;
        List<Row> rows = new ArrayList<>(batch.size());
        for (int i = 0; i < batch.size(); i++) {
            GenerationResult.Sequence s = result.sequences().get(i);
            rows.add(new Row(prompts.get(i / g), s.tokens(), s.text(),
                    s.finishReason() == GenerationResult.FinishReason.LENGTH));
        }
        Rollout r = new Rollout(prompts, rows, seconds);
        try {
            prepare(r);
            return r;
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /** Rewards, advantages, and the reference (and, for μ &gt; 1, old-policy) log-probabilities. */
    private void prepare(Rollout r) {
        long t0 = System.nanoTime();
        List<Example> examples = new ArrayList<>(r.rows.size());
        List<String> texts = new ArrayList<>(r.rows.size());
        List<long[]> ids = new ArrayList<>(r.rows.size());
        for (Row row : r.rows) {
            examples.add(row.prompt().example());
            texts.add(row.text());
            ids.add(row.completion());
        }
        r.scores = config.rewards().scores(examples, texts, ids);
        r.totals = config.rewards().total(r.scores);
        for (int i = 0; i < r.scores.length; i++) {
            if (Arrays.stream(r.scores[i]).allMatch(Double::isNaN)) {
                LOG.warn("no reward function scored completion {} of example '{}'; its reward is 0", i % config.groupSize(),
                        examples.get(i).id());
            }
        }
        float[] totals = new float[r.totals.length];
        for (int i = 0; i < totals.length; i++) {
            totals[i] = (float) r.totals[i];
        }
        try (NDArray rewards = r.manager.create(totals)) {
            r.advantages = GroupAdvantages.compute(rewards, config.groupSize(), config.advantageScaling());
        }
        r.rewardSeconds = (System.nanoTime() - t0) / 1e9;

        long t1 = System.nanoTime();
        NDArray last = null;
        if (config.klBeta() > 0) {
            try (LoraModel.Scope base = lora.disabled()) {
                for (MicroBatch mb : r.micro) {
                    mb.reference = logProbs(r.manager, mb, false);
                    last = mb.reference;
                    referencePasses++;
                }
            }
        }
        if (config.updatesPerGeneration() > 1) {
            for (MicroBatch mb : r.micro) {
                mb.old = logProbs(r.manager, mb, false); // the policy that sampled, deterministic (dropout off)
                last = mb.old;
            }
        }
        if (last != null) {
            try (NDArray s = last.sum()) {
                s.getFloat(); // wait for the device, so the seconds are the passes'
            }
        }
        r.referenceSeconds = (System.nanoTime() - t1) / 1e9;
    }

    /** Log-probabilities of a micro-batch's completion tokens without gradient, attached to {@code manager}. */
    private NDArray logProbs(NDManager manager, MicroBatch mb, boolean training) {
        try (NDManager s = manager.newSubManager()) {
            NDArray lp = GrpoLogProbs.ofCompletions(model, view(mb.deviceIds, s), view(mb.deviceAttention, s),
                    mb.promptWidth, config.temperature(), training).stopGradient();
            lp.attach(manager);
            return lp;
        }
    }

    // ------------------------------------------------------------------ update

    /**
     * What metrics and the loss normaliser need of every completion of an update, in the global order
     * (prompt-major, the order of one process): total reward, each function's, length, truncated or not.
     */
    private record Gathered(double[] totals, double[][] byFunction, long tokens, int truncated) {}

    /**
     * The rewards, lengths and truncation flags of the update's {@code globalPrompts × G} completions: this
     * rank's written at their global indices, the others' summed in by one all-reduce (every slot is written
     * by exactly one rank, so the sums are exact).
     */
    private Gathered gather(List<Rollout> group, int globalPrompts) {
        int g = config.groupSize();
        int n = globalPrompts * g;
        int f = config.rewards().names().size();
        int width = f + 3; // total, length, truncated, functions
        double[] table = new double[n * width];
        for (Rollout r : group) {
            for (int i = 0; i < r.rows.size(); i++) {
                int at = (r.globalPrompts[i / g] * g + i % g) * width;
                Row row = r.rows.get(i);
                table[at] = r.totals[i];
                table[at + 1] = row.completion().length;
                table[at + 2] = row.truncated() ? 1 : 0;
                for (int k = 0; k < f; k++) {
                    table[at + 3 + k] = r.scores[i][k];
                }
            }
        }
        if (collective.worldSize() > 1) {
            try (NDManager s = model.manager().newSubManager()) {
                NDArray a = s.create(table);
                collective.allReduceSum(new NDList(a));
                table = a.toDoubleArray();
            }
        }
        double[] totals = new double[n];
        double[][] byFunction = new double[f][n];
        long tokens = 0;
        int truncated = 0;
        for (int i = 0; i < n; i++) {
            totals[i] = table[i * width];
            tokens += (long) table[i * width + 1];
            truncated += (int) table[i * width + 2];
            for (int k = 0; k < f; k++) {
                byFunction[k][i] = table[i * width + 3 + k];
            }
        }
        return new Gathered(totals, byFunction, tokens, truncated);
    }

    /** μ optimizer steps on the rollouts (this rank's share of an update of {@code globalPrompts} prompts). */
    private List<GrpoStepMetrics> update(List<Rollout> group, int globalPrompts) {
        Gathered gathered = gather(group, globalPrompts);
        int completions = gathered.totals().length;
        long tokens = gathered.tokens();
        double normaliser = config.lossAggregation() == LossAggregation.PER_SEQUENCE ? completions : Math.max(1, tokens);
        List<GrpoStepMetrics> out = new ArrayList<>(config.updatesPerGeneration());
        for (int it = 0; it < config.updatesPerGeneration(); it++) {
            if (steps >= totalSteps) {
                throw new IllegalStateException("step " + (steps + 1) + " exceeds the " + totalSteps
                        + " optimizer steps the run was started with");
            }
            lora.reseedDropout(mix(config.seed(), 0xD809_0000_0000L + steps)); // a resumed run draws the same masks
            long t0 = System.nanoTime();
            float lossSum = 0;
            float[] metricSum = new float[4];
            try (NDManager stepScope = model.manager().newSubManager()) {
                NDArray loss = stepScope.zeros(new Shape(), DataType.FLOAT32);
                NDArray metrics = stepScope.zeros(new Shape(4), DataType.FLOAT32);
                for (Rollout r : group) {
                    for (MicroBatch mb : r.micro) {
                        try (NDManager s = stepScope.newSubManager();
                                GradientCollector gc = model.manager().getEngine().newGradientCollector()) {
                            NDArray ids = view(mb.deviceIds, s);
                            NDArray att = view(mb.deviceAttention, s);
                            NDArray mask = view(mb.deviceMask, s);
                            NDArray adv = r.advantages.get(new NDIndex("{}:{}", mb.from, mb.to));
                            adv.attach(s);
                            NDArray logp = GrpoLogProbs.ofCompletions(model, ids, att, mb.promptWidth,
                                    config.temperature(), true);
                            GrpoLoss.Parts parts = GrpoLoss.compute(logp, mb.old, mb.reference, adv, mask,
                                    config.clipEpsilon(), config.klBeta(), config.lossAggregation(), normaliser);
                            gc.backward(parts.loss());
                            loss.addi(parts.loss().stopGradient());
                            metrics.addi(parts.metrics());
                        }
                    }
                }
                if (group.isEmpty()) { // no completion on this rank: zero gradients for the all-reduce
                    DataParallel.defineGradients(lora.parameters().values(), stepScope);
                }
                // data parallel: the ranks' gradients, losses and metric sums summed in one all-reduce
                NDList reduced = DataParallel.allReduce(collective, lora.parameters().values(),
                        new NDList(loss, metrics), stepScope);
                loss = reduced.get(0);
                metrics = reduced.get(1);
                // the one read-back of the policy pass, with the NaN guard (gradients zeroed and nothing
                // stepped when the loss or a gradient is not finite)
                float[] read = NonFiniteGuard.check(stage, steps + 1, lora.parameters(), loss, metrics, stepScope);
                lossSum = read[0];
                metricSum = Arrays.copyOfRange(read, 1, read.length);
            }
            double policySeconds = (System.nanoTime() - t0) / 1e9;
            if (gradientProbe != null) {
                Map<String, NDArray> grads = new LinkedHashMap<>();
                lora.parameters().forEach((name, p) -> grads.put(name, p.getGradient()));
                try {
                    gradientProbe.accept(grads);
                } finally {
                    grads.values().forEach(NDArray::close);
                }
            }
            long t1 = System.nanoTime();
            MaskedAdamW.StepResult sr = optimizer.step();
            optimizer.zeroGradients();
            double optimizerSeconds = (System.nanoTime() - t1) / 1e9;
            steps++;
            GrpoStepMetrics m = metrics(group, gathered, it, sr, lossSum, metricSum, policySeconds, optimizerSeconds);
            if (config.completionLogEvery() > 0 && completionLog != null && it == 0
                    && steps % config.completionLogEvery() == 0) {
                logCompletions(group);
            }
            listener.onStep(m);
            out.add(m);
        }
        return out;
    }

    /** An update's metrics: the gathered completions' figures (global), this rank's seconds. */
    private GrpoStepMetrics metrics(List<Rollout> group, Gathered gathered, int iteration, MaskedAdamW.StepResult sr,
            float loss, float[] sums, double policySeconds, double optimizerSeconds) {
        List<String> names = config.rewards().names();
        int completions = gathered.totals().length;
        long tokens = gathered.tokens();
        int truncated = gathered.truncated();
        double[] totals = gathered.totals();
        List<double[]> perFunction = List.of(gathered.byFunction());
        double rollout = 0;
        double rewardSec = 0;
        double reference = 0;
        for (Rollout r : group) {
            rollout += r.rolloutSeconds;
            rewardSec += r.rewardSeconds;
            reference += r.referenceSeconds;
        }
        Map<String, MeanStd> byFunction = new LinkedHashMap<>();
        for (int f = 0; f < names.size(); f++) {
            byFunction.put(names.get(f), MeanStd.of(perFunction.get(f)));
        }
        double kl = Double.NaN;
        if (config.klBeta() > 0) {
            kl = config.lossAggregation() == LossAggregation.PER_SEQUENCE
                    ? sums[GrpoLoss.Parts.KL_SEQUENCE_MEAN_SUM] / completions
                    : sums[GrpoLoss.Parts.KL_TOKEN_SUM] / Math.max(1, sums[GrpoLoss.Parts.TOKENS]);
        }
        double clipFraction = sums[GrpoLoss.Parts.CLIPPED_TOKENS] / Math.max(1, sums[GrpoLoss.Parts.TOKENS]);
        boolean first = iteration == 0;
        return new GrpoStepMetrics(sr.step(), totalSteps, sr.learningRate(), loss, sr.gradNorm(), sr.clipped(),
                MeanStd.of(totals), byFunction, kl, clipFraction, (double) tokens / completions,
                (double) truncated / completions, completions, tokens, first ? rollout : 0, first ? rewardSec : 0,
                first ? reference : 0, policySeconds, optimizerSeconds);
    }

    /** Appends the step's completions with their rewards to the completion log (one JSON object per line). */
    private void logCompletions(List<Rollout> group) {
        try {
            if (completionLog.getParent() != null) {
                Files.createDirectories(completionLog.getParent());
            }
            try (BufferedWriter w = Files.newBufferedWriter(completionLog, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
                List<String> names = config.rewards().names();
                for (Rollout r : group) {
                    float[] adv = r.advantages.toFloatArray();
                    for (int i = 0; i < r.rows.size(); i++) {
                        Row row = r.rows.get(i);
                        JsonObject o = new JsonObject();
                        o.addProperty("step", steps);
                        o.addProperty("example", row.prompt().example().id());
                        o.addProperty("completion_index", i % config.groupSize());
                        o.addProperty("question", row.prompt().example().question());
                        o.addProperty("completion", row.text());
                        o.addProperty("tokens", row.completion().length);
                        o.addProperty("truncated", row.truncated());
                        JsonObject rewards = new JsonObject();
                        for (int f = 0; f < names.size(); f++) {
                            double v = r.scores[i][f];
                            if (Double.isNaN(v)) {
                                rewards.add(names.get(f), com.google.gson.JsonNull.INSTANCE);
                            } else {
                                rewards.addProperty(names.get(f), v);
                            }
                        }
                        o.add("rewards", rewards);
                        o.addProperty("reward", r.totals[i]);
                        o.addProperty("advantage", adv[i]);
                        w.write(GSON.toJson(o));
                        w.write('\n');
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the completion log " + completionLog, e);
        }
    }

    /** The sampling seed of rollout {@code index} of a run seeded {@code seed}. */
    static long rolloutSeed(long seed, long index) {
        return mix(seed, index) & 0x7fff_ffffL; // the engine takes an int seed
    }

    /** SplitMix64 of (a, b): well-spread seeds from a run seed and a counter. */
    static long mix(long a, long b) {
        long z = a * 0x9E3779B97F4A7C15L + b + 0x632BE59BD9B4E019L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public void close() {
        if (optimizer != null) {
            optimizer.close();
            optimizer = null;
        }
    }

    /**
     * Settings of a trainer. Besides GRPO's own ({@link GrpoConfig}, masks, the per-step
     * {@link GrpoListener}, the completion log) it takes what every stage does ({@link StageBuilder}):
     * {@link TrainingListener}s get the stage's start and end, a report every
     * {@link GrpoConfig#loggingSteps()} steps (GRPO's figures in {@link StepMetrics#details()}), checkpoints
     * and evaluations; a checkpoint is written after each update that reaches a multiple of the interval
     * (with μ &gt; 1, between rollouts only) and after the last.
     */
    public static final class Builder extends StageBuilder<Builder> {
        private final LoraModel lora;
        private ExampleEncoder encoder;
        private GrpoConfig config = GrpoConfig.builder().build();
        private Map<String, NDArray> masks;
        private GrpoListener listener = GrpoListener.none();
        private Path completionLog;

        private Builder(LoraModel lora) {
            super(STAGE);
            this.lora = Objects.requireNonNull(lora, "lora");
        }

        /** How examples become prompts (template, tokenizer); required for {@link GrpoTrainer#train}. */
        public Builder encoder(ExampleEncoder encoder) {
            this.encoder = encoder;
            return this;
        }

        /** Default: {@link GrpoConfig#builder()}'s paper defaults. */
        public Builder config(GrpoConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        /** Element masks (true = trainable) by parameter name, e.g. {@code StageMasks.stage2()}; null trains all. */
        public Builder masks(Map<String, NDArray> masks) {
            this.masks = masks;
            return this;
        }

        /** Gets every optimizer step's full metrics (one listener; default none). */
        public Builder listener(GrpoListener listener) {
            this.listener = Objects.requireNonNull(listener, "listener");
            return this;
        }

        @Override
        protected Builder self() {
            return this;
        }

        /** {@link #options()}, for the trainer (in another package than this builder's base). */
        private StageBuilder.StageOptions stageOptions() {
            return options();
        }

        /** A JSONL file the completions and their rewards are appended to every k steps (null: none). */
        public Builder completionLog(Path file) {
            this.completionLog = file;
            return this;
        }

        /**
         * @throws IllegalArgumentException when a mask names no parameter, a parameter has no mask, or shapes
         *     differ (naming the tensor)
         * @throws IllegalStateException when the adapters are merged or disabled
         */
        public GrpoTrainer build() {
            DataParallel.requireDivides(options().collective(),
                    "the prompts per rollout (promptsPerStep, each rank sampling an equal share of their groups)",
                    config.promptsPerStep());
            if (lora.isMerged()) {
                throw new IllegalStateException("cannot train merged LoRA adapters: unmerge() first");
            }
            if (!lora.isEnabled()) {
                throw new IllegalStateException("cannot train disabled LoRA adapters: setEnabled(true) first");
            }
            if (masks != null) {
                Map<String, NDArray> params = lora.parameters();
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    NDArray m = masks.get(e.getKey());
                    if (m == null) {
                        throw new IllegalArgumentException("no mask for parameter '" + e.getKey() + "'");
                    }
                    if (!m.getShape().equals(e.getValue().getShape())) {
                        throw new IllegalArgumentException("mask of '" + e.getKey() + "' has shape " + m.getShape()
                                + ", the parameter has " + e.getValue().getShape());
                    }
                }
                for (String name : masks.keySet()) {
                    if (!params.containsKey(name)) {
                        throw new IllegalArgumentException("mask '" + name + "' names no trained parameter");
                    }
                }
            }
            return new GrpoTrainer(this);
        }
    }
}
