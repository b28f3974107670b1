package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedDataset;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.engine.Collective;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Supervised fine-tuning, LoRA-PAR's stage 1 (usable alone): the examples' answers are learnt under
 * masked AdamW, only the elements of the stage's mask changing.
 *
 * <pre>{@code
 * StageReport r = SftTrainer.builder(lora, encoder)
 *         .masks(stageMasks.stage1())                     // null: every element trains
 *         .config(SftConfig.builder().learningRate(2e-4).build())
 *         .checkpoints(Path.of("run/sft"), 100)           // resumes from the latest checkpoint there
 *         .listener(TrainingListener.logging(10))
 *         .build()
 *         .train(system1Examples);
 * }</pre>
 *
 * <p><b>Loop.</b> The examples are encoded once ({@link ExampleEncoder}: answer-only labels,
 * truncation; skipped examples are counted in the report). Each epoch a seeded permutation (optionally
 * grouped by length) is cut into micro-batches, which are right-padded ({@link TokenBatch}), run forward
 * in training mode (LoRA dropout on) and backward; after {@code gradientAccumulation} micro-batches one
 * optimizer step follows, and the last, shorter group of an epoch is stepped too (as transformers'
 * Trainer does). The loss of a step is normalised over the whole accumulated step, per answer token by
 * default ({@link SftConfig.LossNormalization}); the token counts are known on the host, so nothing is
 * read back for it. The number of optimizer steps is known up front, for the learning-rate schedule.
 *
 * <p><b>Masks.</b> {@link MaskedAdamW} with the stage's mask: a frozen element stays bit-identical
 * through the stage, weight decay included.
 *
 * <p><b>NaN guard.</b> Each optimizer step reads back one pair of numbers: the global gradient norm and
 * the step's loss ({@link MaskedAdamW#step(NDArray)}); when either is NaN or infinite the run stops with
 * a {@link TrainingDivergedException} naming the step (and the tensor), before any parameter or
 * optimizer state changes. That read is the step's only host synchronisation.
 *
 * <p><b>Checkpoints and resume.</b> With {@link Builder#checkpoints} a checkpoint ({@link
 * TrainingCheckpoint}) is written atomically every k steps and after the last, keeping the newest
 * {@link Builder#keepCheckpoints}. When the folder already holds one, {@link #train} resumes from it:
 * same parameters, optimizer moments and step, data position; the dropout masks are reseeded from
 * (seed, micro-batch number) before every micro-batch, so a resumed run on the CPU produces bit for bit
 * the parameters of an uninterrupted one. A checkpoint of another model, LoRA config, training config,
 * mask or data is refused ({@link CheckpointMismatchException}); a checkpoint of a completed stage is
 * restored and nothing is trained.
 *
 * <p><b>Several processes (data parallel).</b> With {@link StageBuilder#collective} every rank runs this loop on
 * its own copy of the model with the same examples and config: the batch plan above is the global one (every rank
 * computes it), each micro-batch of it is split across the ranks (rank r takes rows r, r + W, …; {@link
 * DataParallel}), each rank weights its rows' token losses by the normaliser of the global step, and the gradients
 * (with the loss) are summed across ranks in one all-reduce after the step's last backward pass; so every rank
 * steps with the gradient one process would have on the whole batch (equal up to floating-point summation order;
 * with LoRA dropout the masks are drawn per rank's rows, so they differ from one process's draw). The micro-batch
 * size must be a multiple of the world size. Only the leader writes checkpoints (the others wait for it) and calls
 * listeners and the evaluator (the others wait for it in the next all-reduce: keep it under the collective's
 * timeout); a checkpoint records positions in the global plan, so a run resumes on any world size that divides the
 * micro-batch size. Every rank must start from the same weights.
 *
 * <p><b>CUDA graphs.</b> With {@link SftConfig#cudaGraphs()} on an engine that can capture them (this project's JNI on
 * a GPU), each micro-batch's forward and backward pass is replayed from a CUDA graph: one launch instead of the
 * thousands of op calls whose host time bounds a step of a small model or a small batch. Rows are padded to a
 * multiple of {@value #GRAPH_LENGTH_MULTIPLE} tokens and the answer positions to a multiple of {@value
 * #GRAPH_POSITIONS_MULTIPLE} or of a quarter of the batch's positions (weight 0: the loss and gradients are the
 * unpadded ones), so batches of nearby sizes share a graph and a row length has at most 4 shapes; a new shape is
 * captured when it first comes (the capture runs the pass once more, and its gradients are taken back), and the
 * {@value #GRAPHS_KEPT} most recently used graphs are kept, in one memory pool.
 * LoRA dropout masks then come from torch's CUDA generator seeded per micro-batch (same distribution, other
 * draws than the adapters' keys; a resumed run replays the same masks). A pass that cannot be captured turns the
 * graphs off for the rest of the stage (logged), and the passes run op by op.
 *
 * <p>Full-parameter training of a small model runs through the same loop with
 * {@link #builder(TrainingTarget, ExampleEncoder)} and {@link TrainingTarget#fullParameters}.
 */
public final class SftTrainer {
    /** The stage name of SFT in checkpoints, reports and listener events. */
    public static final String STAGE = "sft";
    /** With {@link SftConfig#cudaGraphs()}: rows are padded to a multiple of this many tokens. */
    public static final int GRAPH_LENGTH_MULTIPLE = 64;
    /**
     * With {@link SftConfig#cudaGraphs()}: answer positions are padded to a multiple of this many, or of a quarter
     * of the padded batch's positions when that is more (at most 4 sizes per row length).
     */
    public static final int GRAPH_POSITIONS_MULTIPLE = 256;
    /**
     * With {@link SftConfig#cudaGraphs()}: the most batch shapes whose graphs are kept at a time (they share one
     * memory pool; 4 answer-position sizes for each of the 8 row lengths up to 512 tokens).
     */
    public static final int GRAPHS_KEPT = 32;
    private static final Logger LOG = LoggerFactory.getLogger(SftTrainer.class);
    /** Separates the dropout seeds' stream from the data order's. */
    private static final long DROPOUT_STREAM = 0x5DEECE66DL;

    private final TrainingTarget target;
    private final ExampleEncoder encoder;
    private final Map<String, NDArray> masks;
    private final SftConfig config;
    private final List<TrainingListener> listeners;
    private final CheckpointStore store;
    private final int checkpointEvery;
    private final Evaluator evaluator;
    private final int evaluateEvery;
    private final String stage;
    private final Collective collective;
    /** CUDA graphs captured by the last {@link #train} (tests: the graph path really ran). */
    private volatile long graphCaptures;

    private SftTrainer(Builder b) {
        this.target = b.target;
        this.encoder = b.encoder;
        this.masks = b.masks;
        this.config = b.config;
        StageBuilder.StageOptions o = b.options();
        this.collective = o.collective();
        // the leader reports and evaluates for the job
        this.listeners = collective.isLeader() ? o.listeners() : List.of();
        this.store = o.store();
        this.checkpointEvery = o.checkpointEvery();
        this.evaluator = collective.isLeader() ? o.evaluator() : null;
        this.evaluateEvery = o.evaluateEvery();
        this.stage = o.stage();
    }

    /** SFT of {@code lora}'s adapters. */
    public static Builder builder(LoraModel lora, ExampleEncoder encoder) {
        return new Builder(TrainingTarget.lora(lora), encoder);
    }

    /** SFT of {@code target}: LoRA adapters or, with {@link TrainingTarget#fullParameters}, every weight. */
    public static Builder builder(TrainingTarget target, ExampleEncoder encoder) {
        return new Builder(target, encoder);
    }

    public SftConfig config() {
        return config;
    }

    public TrainingTarget target() {
        return target;
    }

    /** Where the examples are and where the next step starts. */
    private static final class Position {
        int epoch;
        long microBatchInEpoch;
        long microBatchesDone;
        long step;
        long examplesSeen;
        long tokens;
        long answerTokens;
        double lastLoss = Double.NaN;
    }

    /**
     * Trains on {@code examples} (or resumes, see the class comment) and returns what was done.
     *
     * @throws IllegalArgumentException when no example is left to train on after encoding
     * @throws TrainingDivergedException when a loss or gradient is NaN or infinite (no parameter changed)
     * @throws CheckpointMismatchException when the checkpoint folder holds another run's checkpoint
     * @throws IOException when a checkpoint cannot be written or read
     */
    public StageReport train(List<Example> examples) throws IOException {
        long started = System.nanoTime();
        ExampleEncoder enc = config.maxLength() > 0 && config.maxLength() != encoder.maxLength()
                ? encoder.toBuilder().maxLength(config.maxLength()).build() : encoder;
        EncodedDataset data = enc.encodeAll(examples);
        if (data.size() == 0) {
            throw new IllegalArgumentException("no example to train on: " + (examples.isEmpty() ? "the list is empty"
                    : "all " + examples.size() + " were skipped as longer than " + enc.maxLength() + " tokens ("
                            + enc.truncation() + ")"));
        }
        List<EncodedExample> rows = data.examples();
        int[] lengths = rows.stream().mapToInt(EncodedExample::length).toArray();
        BatchPlan plan = new BatchPlan(lengths, config.microBatchSize(), config.gradientAccumulation(),
                config.groupByLength(), config.seed());
        long total = config.maxSteps() > 0 ? config.maxSteps() : config.epochs() * plan.stepsPerEpoch();

        DecoderModel model = target.model();
        Map<String, NDArray> params = target.parameters();
        long trainable = 0;
        for (NDArray p : params.values()) {
            trainable += p.size();
        }
        Fingerprints.MaskSummary maskSummary = Fingerprints.masks(masks, params);
        ModelDigest digest = ModelDigest.of(model);
        Map<String, String> fingerprints = new LinkedHashMap<>();
        fingerprints.put(Fingerprints.MODEL, Fingerprints.model(model));
        fingerprints.put(Fingerprints.TARGET, target.description());
        fingerprints.put(Fingerprints.TRAINING, config.fingerprint());
        fingerprints.put(Fingerprints.MASKS, maskSummary.fingerprint());
        fingerprints.put(Fingerprints.DATA, Fingerprints.examples(rows));

        Position pos = new Position();
        long resumedFrom = 0;
        Path lastCheckpoint = null;
        boolean graphs = config.cudaGraphs() && CapturedPasses.isAvailable(model);
        if (config.cudaGraphs() && !graphs) {
            LOG.info("{}: CUDA graphs were asked for, but the engine cannot capture them on {}; passes run op by op",
                    stage, model.device());
        }
        try (CapturedPasses passes = graphs ? new CapturedPasses(model, params.values(), GRAPHS_KEPT) : null;
                MaskedAdamW optimizer = MaskedAdamW.builder().learningRate(config.learningRate())
                .betas(config.beta1(), config.beta2()).epsilon(config.epsilon()).weightDecay(config.weightDecay())
                .maxGradNorm(config.maxGradNorm()).schedule(config.schedule(), total).build(params, masks)) {
            Gradients.zero(params.values());
            if (store != null) {
                Optional<Path> latest = store.latest();
                if (latest.isPresent()) {
                    TrainerState st = TrainingCheckpoint.restore(latest.get(), stage, fingerprints, digest, target,
                            optimizer);
                    pos.epoch = st.epoch();
                    pos.microBatchInEpoch = st.microBatchInEpoch();
                    pos.microBatchesDone = st.microBatchesDone();
                    pos.step = st.step();
                    pos.examplesSeen = st.examplesSeen();
                    pos.tokens = st.tokens();
                    pos.answerTokens = st.answerTokens();
                    pos.lastLoss = st.lastLoss();
                    resumedFrom = st.step();
                    lastCheckpoint = latest.get();
                    LOG.info("{}: resuming from {} (step {} of {}{})", stage, latest.get(), st.step(), total,
                            st.completed() ? ", stage complete" : "");
                }
            }
            StageStart start = new StageStart(stage, total, pos.step, rows.size(), data.skipped().size(), trainable,
                    maskSummary.activeElements(), target.description());
            listeners.forEach(l -> l.onStageStart(start));

            double lossSum = 0;
            long stepsRun = 0;
            double windowLoss = 0;
            int windowSteps = 0;
            long windowTokens = 0;
            long windowStart = System.nanoTime();
            List<int[]> epochBatches = pos.step < total ? plan.epoch(pos.epoch) : null;
            while (pos.step < total) {
                int first = (int) pos.microBatchInEpoch;
                int count = plan.stepLength(first);
                List<List<EncodedExample>> micro = new ArrayList<>(count);
                for (int i = first; i < first + count; i++) {
                    List<EncodedExample> mb = new ArrayList<>();
                    for (int idx : epochBatches.get(i)) {
                        mb.add(rows.get(idx));
                    }
                    micro.add(mb);
                }
                long stepNumber = pos.step + 1;
                StepOutcome out;
                MaskedAdamW.StepResult r;
                try (NDManager stepScope = model.manager().newSubManager()) {
                    NDArray stepLoss = forwardBackward(model, micro, pos.microBatchesDone, enc.padId(), stepScope,
                            passes);
                    out = outcome(micro);
                    // the ranks' gradients and losses summed: every rank steps with the global batch's gradient
                    stepLoss = DataParallel.allReduce(collective, params.values(), new NDList(stepLoss), stepScope)
                            .get(0);
                    r = takeStep(optimizer, stepLoss, stepNumber);
                }
                optimizer.zeroGradients();

                pos.step = stepNumber;
                pos.microBatchesDone += count;
                pos.microBatchInEpoch += count;
                if (pos.microBatchInEpoch >= plan.microBatchesPerEpoch()) {
                    pos.epoch++;
                    pos.microBatchInEpoch = 0;
                    if (pos.step < total) {
                        epochBatches = plan.epoch(pos.epoch);
                    }
                }
                pos.examplesSeen += out.examples;
                pos.tokens += out.tokens;
                pos.answerTokens += out.answerTokens;
                pos.lastLoss = r.loss();
                lossSum += r.loss();
                stepsRun++;
                windowLoss += r.loss();
                windowSteps++;
                windowTokens += out.tokens;

                if (store != null && (pos.step % checkpointEvery == 0 || pos.step == total)) {
                    TrainerState st = new TrainerState(stage, pos.step, total, pos.epoch, pos.microBatchInEpoch,
                            pos.microBatchesDone, pos.examplesSeen, pos.tokens, pos.answerTokens, pos.step == total,
                            pos.lastLoss, fingerprints, digest, null);
                    Path written = store.write(pos.step,
                            tmp -> TrainingCheckpoint.write(tmp, target, optimizer, masks, st), collective);
                    lastCheckpoint = written;
                    long s = pos.step;
                    listeners.forEach(l -> l.onCheckpoint(stage, s, written)); // the leader's listeners only
                }
                if (pos.step % config.loggingSteps() == 0 || pos.step == total) {
                    double seconds = (System.nanoTime() - windowStart) / 1e9;
                    StepMetrics m = new StepMetrics(stage, pos.step, total,
                            pos.epoch + (double) pos.microBatchInEpoch / plan.microBatchesPerEpoch(),
                            windowLoss / windowSteps, r.learningRate(), r.gradNorm(),
                            seconds > 0 ? windowTokens / seconds : Double.NaN, maskSummary.activeElements(), pos.tokens,
                            pos.answerTokens);
                    listeners.forEach(l -> l.onStep(m));
                    windowLoss = 0;
                    windowSteps = 0;
                    windowTokens = 0;
                    windowStart = System.nanoTime();
                }
                if (evaluator != null && (pos.step % evaluateEvery == 0 || pos.step == total)) {
                    Map<String, Double> metrics = evaluator.evaluate(model, pos.step);
                    long s = pos.step;
                    listeners.forEach(l -> l.onEvaluation(stage, s, metrics));
                }
            }
            graphCaptures = passes == null ? 0 : passes.captures();
            StageReport report = new StageReport(stage, pos.step, total, resumedFrom, rows.size(),
                    data.skipped().size(), data.truncatedCount(), pos.tokens, pos.answerTokens, pos.lastLoss,
                    stepsRun > 0 ? lossSum / stepsRun : Double.NaN, Duration.ofNanos(System.nanoTime() - started),
                    lastCheckpoint);
            listeners.forEach(l -> l.onStageEnd(report));
            return report;
        }
    }

    /** CUDA graphs captured by the last {@link #train} (0 without {@link SftConfig#cudaGraphs()} or where unavailable). */
    long graphCaptures() {
        return graphCaptures;
    }

    /** The sizes of one optimizer step's micro-batches. */
    private record StepOutcome(long examples, long tokens, long answerTokens) {}

    private static StepOutcome outcome(List<List<EncodedExample>> micro) {
        long counted = 0;
        long examples = 0;
        long tokens = 0;
        for (List<EncodedExample> mb : micro) {
            for (EncodedExample e : mb) {
                counted += SftLoss.countedTokens(e);
                tokens += e.length();
            }
            examples += mb.size();
        }
        return new StepOutcome(examples, tokens, counted);
    }

    /**
     * Forward and backward of the micro-batches of one optimizer step, gradients accumulating on the
     * parameters. Returns the step's loss as a device scalar in {@code scope} (nothing is read back here).
     */
    private NDArray forwardBackward(DecoderModel model, List<List<EncodedExample>> micro, long microBatchesDone,
            long padId, NDManager scope, CapturedPasses passes) {
        StepOutcome sizes = outcome(micro);
        // every input of the step goes to the device first, while it is idle: the passes below then run
        // back to back (on a GPU a host-to-device copy waits for the work queued before it)
        List<TokenBatch> batches = new ArrayList<>(micro.size());
        List<SftLoss.Targets> targets = new ArrayList<>(micro.size());
        for (List<EncodedExample> global : micro) {
            // this rank's rows, weighted by the global step's sizes
            List<EncodedExample> mb = DataParallel.share(global, collective);
            if (mb.isEmpty()) {
                batches.add(null);
                targets.add(null);
                continue;
            }
            float[] weights = rowWeights(mb, sizes.answerTokens(), sizes.examples());
            if (passes != null) {
                // shapes rounded up, so that batches of nearby lengths replay one graph
                TokenBatch batch = TokenBatch.of(mb, padId, scope, graphLength(model, mb));
                batches.add(batch);
                targets.add(SftLoss.targets(model, batch, weights, scope,
                        graphPositions(batch.size(), batch.length(), answerCount(mb))));
            } else {
                TokenBatch batch = TokenBatch.of(mb, padId, scope);
                batches.add(batch);
                targets.add(SftLoss.targets(model, batch, weights, scope));
            }
        }
        NDArray loss = null;
        for (int i = 0; i < micro.size(); i++) {
            long dropoutSeed = BatchPlan.mix(config.seed() ^ DROPOUT_STREAM, microBatchesDone + i);
            target.reseedDropout(dropoutSeed);
            if (batches.get(i) == null) {
                continue; // this rank's share of the micro-batch is empty (the last, short one of an epoch)
            }
            try (TokenBatch batch = batches.get(i)) {
                if (passes != null && targets.get(i).answers().count() > 0) {
                    NDArray replayed = passes.run(batch, targets.get(i), dropoutSeed, scope);
                    if (replayed != null) {
                        loss = loss == null ? replayed : attach(loss.add(replayed), scope);
                        continue;
                    }
                }
                NDArray part;
                try (GradientCollector gc = model.manager().getEngine().newGradientCollector()) {
                    part = SftLoss.weightedTokenNll(model, batch, targets.get(i), true);
                    gc.backward(part);
                }
                NDArray detached = part.stopGradient();
                detached.attach(scope);
                part.close();
                loss = loss == null ? detached : attach(loss.add(detached), scope);
            }
        }
        if (loss == null) { // no row on this rank in the whole step: zero gradients for the all-reduce
            DataParallel.defineGradients(target.parameters().values(), scope);
            loss = scope.zeros(new Shape(), DataType.FLOAT32);
        }
        return loss;
    }

    /** The padded length of a captured pass's rows: the longest row rounded up, within the model's positions. */
    private static int graphLength(DecoderModel model, List<EncodedExample> mb) {
        int longest = 0;
        for (EncodedExample e : mb) {
            longest = Math.max(longest, e.length());
        }
        return Math.max(longest, Math.min(roundUp(longest, GRAPH_LENGTH_MULTIPLE), model.config().maxPositions()));
    }

    /**
     * The padded answer-position count of a captured pass of {@code rows} × {@code length}: {@code count} rounded up
     * to a multiple of {@value #GRAPH_POSITIONS_MULTIPLE}, or of a quarter of the batch's positions when that is more.
     */
    static int graphPositions(int rows, int length, int count) {
        int quarter = (int) Math.min(Integer.MAX_VALUE / 2, (long) rows * length / 4);
        return roundUp(count, Math.max(GRAPH_POSITIONS_MULTIPLE, quarter));
    }

    private static int answerCount(List<EncodedExample> mb) {
        int n = 0;
        for (EncodedExample e : mb) {
            n += SftLoss.countedTokens(e);
        }
        return n;
    }

    private static int roundUp(int n, int multiple) {
        return Math.max(multiple, (n + multiple - 1) / multiple * multiple);
    }

    /** Row weights of one micro-batch: 1/N (per token) or 1/(n_r·E) (per example); see {@link SftLoss}. */
    private float[] rowWeights(List<EncodedExample> mb, long stepCounted, long stepExamples) {
        float[] w = new float[mb.size()];
        for (int r = 0; r < w.length; r++) {
            w[r] = switch (config.lossNormalization()) {
                case PER_TOKEN -> (float) (1.0 / Math.max(1, stepCounted));
                case PER_EXAMPLE -> (float) (1.0 / (Math.max(1, SftLoss.countedTokens(mb.get(r))) * (double) stepExamples));
            };
        }
        return w;
    }

    /**
     * The optimizer step with the NaN guard: {@link MaskedAdamW#step(NDArray)} reads the gradient norm and
     * the step's loss back together (the step's one host read) and refuses a non-finite one before anything
     * changes; then the gradients are zeroed exactly (NaN included) and {@link TrainingDivergedException}
     * names the stage, the step and the culprit.
     */
    private MaskedAdamW.StepResult takeStep(MaskedAdamW optimizer, NDArray loss, long stepNumber) {
        try {
            return optimizer.step(loss);
        } catch (NonFiniteGradientException | NonFiniteLossException e) {
            for (NDArray p : target.parameters().values()) {
                try (NDArray g = p.getGradient()) {
                    g.set(new NDIndex("..."), 0f); // exact zeros, NaN included
                }
            }
            String what = e instanceof NonFiniteGradientException g
                    ? "the gradient of '" + g.tensorName() + "' is not finite (" + e.getMessage() + ")"
                    : e.getMessage();
            throw new TrainingDivergedException(stage, stepNumber, what);
        }
    }

    private static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }

    /** Settings of an {@link SftTrainer}. */
    public static final class Builder extends StageBuilder<Builder> {
        private final TrainingTarget target;
        private final ExampleEncoder encoder;
        private Map<String, NDArray> masks;
        private SftConfig config = SftConfig.defaults();

        private Builder(TrainingTarget target, ExampleEncoder encoder) {
            super(STAGE);
            this.target = Objects.requireNonNull(target, "target");
            this.encoder = Objects.requireNonNull(encoder, "encoder");
        }

        /**
         * The stage's element masks by parameter name (true = trainable; boolean or 0/1 arrays of the
         * parameters' shapes, e.g. {@code StageMasks.stage1()}), or null (the default) to train every element.
         */
        public Builder masks(Map<String, NDArray> masks) {
            this.masks = masks;
            return this;
        }

        /** The training settings (default {@link SftConfig#defaults()}, the paper's stage 1). */
        public Builder config(SftConfig config) {
            this.config = Objects.requireNonNull(config, "config");
            return this;
        }

        @Override
        protected Builder self() {
            return this;
        }

        /**
         * @throws IllegalArgumentException when a mask names no parameter, a parameter has no mask, or
         *     shapes differ (naming the tensor)
         * @throws IllegalStateException when the LoRA adapters are merged or disabled
         */
        public SftTrainer build() {
            if (target instanceof TrainingTarget.Lora l) {
                if (l.lora().isMerged()) {
                    throw new IllegalStateException("cannot train merged LoRA adapters: unmerge() first");
                }
                if (!l.lora().isEnabled()) {
                    throw new IllegalStateException("cannot train disabled LoRA adapters: setEnabled(true) first");
                }
            }
            if (masks != null) {
                Map<String, NDArray> params = target.parameters();
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    NDArray m = masks.get(e.getKey());
                    if (m == null) {
                        throw new IllegalArgumentException("no mask for parameter '" + e.getKey() + "' (the masks cover "
                                + masks.size() + " tensors, the parameters are " + params.size() + ")");
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
            StageOptions o = options();
            DataParallel.requireDivides(o.collective(),
                    "the micro-batch size (the global micro-batch, split across the ranks)", config.microBatchSize());
            return new SftTrainer(this);
        }
    }
}
