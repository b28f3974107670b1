package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.engine.Collective;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.train.grpo.GrpoConfig;
import ai.lorapar.train.grpo.GrpoTrainer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * LoRA-PAR's two-stage training of one set of LoRA adapters: stage 1, SFT on System-1 examples under
 * {@code stageMasks.stage1()} ({@link SftTrainer}); then stage 2, GRPO on System-2 examples under
 * {@code stageMasks.stage2()} ({@link GrpoTrainer}), starting from the stage-1 weights.
 *
 * <pre>{@code
 * TrainingReport report = TwoStageTrainer.loraPar(lora, encoder, partition.stageMasks())
 *         .sft(SftConfig.builder().learningRate(2e-4).build())
 *         .grpo(GrpoConfig.builder().build())             // the paper's stage-2 defaults
 *         .checkpoints(Path.of("run/ckpt"), 100)          // resumes when present
 *         .listener(TrainingListener.logging(10))
 *         .build()
 *         .run(labelled.system1(), labelled.system2());
 * lora.save(Path.of("run/adapter"));                      // PEFT format
 * }</pre>
 *
 * <p><b>Recipes.</b> The paper's method and the baselines it compares with ({@link Recipe}) are the same
 * two stages with other masks or another adapter init: {@link #loraPar} (importance masks),
 * {@link #plainLora} (every element in both stages), {@link #randomSubset} (random masks of the importance
 * masks' sizes, {@code partition.randomBaseline(seed)}), {@link #pissaRl} (PiSSA-initialised adapters,
 * every element). {@link #builder} leaves the masks to {@link Builder#masks}.
 *
 * <p><b>Resume per stage.</b> With checkpoints, each stage keeps its own folder ({@code <dir>/sft},
 * {@code <dir>/grpo}). Run again after an interruption, a finished stage 1 is not redone: its final
 * checkpoint is restored (the adapters as stage 1 left them) and the run goes on with stage 2, which
 * resumes from its own latest checkpoint (mid-stage included); a finished stage 2 is restored likewise.
 *
 * <p>Another second stage can be plugged in with {@link Builder#stage2}; without one only stage 1 runs.
 */
public final class TwoStageTrainer {
    private static final Logger LOG = LoggerFactory.getLogger(TwoStageTrainer.class);

    /** What is trained in each stage: LoRA-PAR or one of the baselines of the paper's tables. */
    public enum Recipe {
        /** LoRA-PAR: stage 1 under the importance partition's stage-1 mask, stage 2 under its stage-2 mask. */
        LORA_PAR,
        /** Plain LoRA: every element in both stages. */
        PLAIN_LORA,
        /** A random subset of the same size per stage (Table 3's "Rand."): {@code partition.randomBaseline(seed)}. */
        RANDOM_SUBSET,
        /** PiSSA + RL: PiSSA-initialised adapters, every element in both stages (SFT, then GRPO). */
        PISSA_RL,
        /** Masks set by hand through {@link Builder#masks} (or none). */
        CUSTOM
    }

    /**
     * Stage 2 of a run: trains {@link StageContext#lora()} on the System-2 examples under
     * {@link StageContext#masks()}, from the weights stage 1 left, checkpointing into
     * {@link StageContext#checkpointFolder()} (resuming from it when it holds a checkpoint), and reports
     * to {@link StageContext#listeners()}. The GRPO trainer implements this.
     */
    @FunctionalInterface
    public interface SecondStage {
        StageReport run(StageContext context, List<Example> system2) throws IOException;
    }

    /**
     * What a stage is given.
     *
     * @param stage the stage's name
     * @param lora the adapters, as the previous stage left them
     * @param encoder the shared example encoder
     * @param masks the stage's element masks, or null (every element trains)
     * @param checkpointFolder the stage's own checkpoint folder, or null (no checkpoints)
     * @param checkpointEvery optimizer steps between checkpoints (0 without checkpoints)
     * @param keepCheckpoints how many checkpoints to keep
     * @param listeners the run's listeners
     * @param evaluator the run's evaluator, or null
     * @param evaluateEvery optimizer steps between evaluations (0 without an evaluator)
     * @param collective the ranks of a data-parallel run ({@link Collective#single()} for one process)
     */
    public record StageContext(String stage, LoraModel lora, ExampleEncoder encoder, Map<String, NDArray> masks,
            Path checkpointFolder, int checkpointEvery, int keepCheckpoints, List<TrainingListener> listeners,
            Evaluator evaluator, int evaluateEvery, Collective collective) {
        /** A context of one process. */
        public StageContext(String stage, LoraModel lora, ExampleEncoder encoder, Map<String, NDArray> masks,
                Path checkpointFolder, int checkpointEvery, int keepCheckpoints, List<TrainingListener> listeners,
                Evaluator evaluator, int evaluateEvery) {
            this(stage, lora, encoder, masks, checkpointFolder, checkpointEvery, keepCheckpoints, listeners, evaluator,
                    evaluateEvery, Collective.single());
        }
    }

    private final LoraModel lora;
    private final ExampleEncoder encoder;
    private final Recipe recipe;
    private final StageMasks masks;
    private final SftConfig sft;
    private final String stage2Name;
    private final SecondStage stage2;
    private final Path checkpointFolder;
    private final int checkpointEvery;
    private final int keepCheckpoints;
    private final List<TrainingListener> listeners;
    private final Evaluator evaluator;
    private final int evaluateEvery;
    private final Collective collective;

    private TwoStageTrainer(Builder b) {
        this.lora = b.lora;
        this.encoder = b.encoder;
        this.recipe = b.recipe;
        this.masks = b.masks;
        this.sft = b.sft;
        this.stage2Name = b.stage2Name;
        this.stage2 = b.grpo != null ? GrpoTrainer.secondStage(b.grpo, b.completionLog) : b.stage2;
        this.checkpointFolder = b.checkpointFolder;
        this.checkpointEvery = b.checkpointEvery;
        this.keepCheckpoints = b.keepCheckpoints;
        this.listeners = List.copyOf(b.listeners);
        this.evaluator = b.evaluator;
        this.evaluateEvery = b.evaluateEvery;
        this.collective = b.collective;
    }

    /**
     * A run training {@code lora}'s adapters on examples encoded by {@code encoder} ({@link Recipe#CUSTOM}:
     * set the masks with {@link Builder#masks}; without masks every element trains).
     */
    public static Builder builder(LoraModel lora, ExampleEncoder encoder) {
        return new Builder(lora, encoder, Recipe.CUSTOM);
    }

    /** LoRA-PAR ({@link Recipe#LORA_PAR}): each stage under its mask of {@code importanceMasks} ({@code partition.stageMasks()}). */
    public static Builder loraPar(LoraModel lora, ExampleEncoder encoder, StageMasks importanceMasks) {
        return new Builder(lora, encoder, Recipe.LORA_PAR).masks(Objects.requireNonNull(importanceMasks,
                "LoRA-PAR needs the partition's stage masks"));
    }

    /** Plain LoRA ({@link Recipe#PLAIN_LORA}): every element of the adapters trains in both stages. */
    public static Builder plainLora(LoraModel lora, ExampleEncoder encoder) {
        return new Builder(lora, encoder, Recipe.PLAIN_LORA);
    }

    /**
     * The random-subset baseline ({@link Recipe#RANDOM_SUBSET}): each stage under random masks with the
     * importance masks' element counts, e.g. {@code partition.randomBaseline(seed)} or the
     * {@code masks-random.safetensors} that {@code lorapar partition} writes.
     */
    public static Builder randomSubset(LoraModel lora, ExampleEncoder encoder, StageMasks randomMasks) {
        Objects.requireNonNull(randomMasks, "the random baseline needs its masks (partition.randomBaseline(seed))");
        if (!randomMasks.origin().startsWith("random")) {
            LOG.warn("random-subset recipe with masks of origin '{}' (expected partition.randomBaseline's 'random(...)')",
                    randomMasks.origin());
        }
        return new Builder(lora, encoder, Recipe.RANDOM_SUBSET).masks(randomMasks);
    }

    /**
     * PiSSA + RL ({@link Recipe#PISSA_RL}): PiSSA-initialised adapters, every element trained in both stages.
     *
     * @throws IllegalArgumentException when {@code lora} is not PiSSA-initialised
     */
    public static Builder pissaRl(LoraModel lora, ExampleEncoder encoder) {
        if (lora.config().init() != LoraInit.PISSA) {
            throw new IllegalArgumentException("PiSSA + RL needs PiSSA-initialised adapters, these are "
                    + lora.config().init() + " (LoraConfig.builder().init(LoraInit.PISSA))");
        }
        return new Builder(lora, encoder, Recipe.PISSA_RL);
    }

    /**
     * The builder of {@code recipe}: {@code masks} are the importance masks for {@link Recipe#LORA_PAR}, the
     * random masks for {@link Recipe#RANDOM_SUBSET}, ignored (may be null) for the recipes without masks,
     * and taken as they are for {@link Recipe#CUSTOM}.
     */
    public static Builder recipe(Recipe recipe, LoraModel lora, ExampleEncoder encoder, StageMasks masks) {
        return switch (recipe) {
            case LORA_PAR -> loraPar(lora, encoder, masks);
            case PLAIN_LORA -> plainLora(lora, encoder);
            case RANDOM_SUBSET -> randomSubset(lora, encoder, masks);
            case PISSA_RL -> pissaRl(lora, encoder);
            case CUSTOM -> builder(lora, encoder).masks(masks);
        };
    }

    /** The recipe this run follows. */
    public Recipe recipe() {
        return recipe;
    }

    /**
     * Runs stage 1 on {@code system1}, then stage 2 (when configured) on {@code system2}.
     *
     * @throws IOException when a checkpoint cannot be written or read
     */
    public TrainingReport run(List<Example> system1, List<Example> system2) throws IOException {
        List<StageReport> reports = new ArrayList<>();
        LOG.info("{}: stage 1 on {} System-1 examples{}, {}", recipe, system1.size(),
                stage2 == null ? "" : ", stage 2 (" + stage2Name + ") on " + system2.size() + " System-2 examples",
                masks == null ? "every element in both stages" : "stage masks of " + masks.stage1Count() + " and "
                        + masks.stage2Count() + " of " + masks.elementCount() + " elements (" + masks.origin() + ")");

        // ---- stage 1: SFT on System 1 under the stage-1 mask
        SftTrainer.Builder s1 = SftTrainer.builder(lora, encoder).config(sft)
                .masks(masks == null ? null : masks.stage1()).listeners(listeners).collective(collective);
        if (checkpointFolder != null) {
            s1.checkpoints(checkpointFolder.resolve(SftTrainer.STAGE), checkpointEvery).keepCheckpoints(keepCheckpoints);
        }
        if (evaluator != null) {
            s1.evaluator(evaluator, evaluateEvery);
        }
        reports.add(s1.build().train(system1));

        // ---- stage 2 plugs in here: on System 2 under the stage-2 mask, from the stage-1 weights
        if (stage2 == null) {
            LOG.info("no second stage configured: {} System-2 examples not used", system2.size());
        } else {
            StageContext ctx = new StageContext(stage2Name, lora, encoder, masks == null ? null : masks.stage2(),
                    checkpointFolder == null ? null : checkpointFolder.resolve(stage2Name),
                    checkpointFolder == null ? 0 : checkpointEvery, keepCheckpoints, listeners, evaluator,
                    evaluator == null ? 0 : evaluateEvery, collective);
            reports.add(stage2.run(ctx, system2));
        }
        return new TrainingReport(reports);
    }

    /** Settings of a {@link TwoStageTrainer}. */
    public static final class Builder {
        private final LoraModel lora;
        private final ExampleEncoder encoder;
        private final Recipe recipe;
        private StageMasks masks;
        private SftConfig sft = SftConfig.defaults();
        private String stage2Name;
        private SecondStage stage2;
        private GrpoConfig grpo;
        private Path completionLog;
        private Path checkpointFolder;
        private int checkpointEvery;
        private int keepCheckpoints = 3;
        private final List<TrainingListener> listeners = new ArrayList<>();
        private Evaluator evaluator;
        private int evaluateEvery;
        private Collective collective = Collective.single();

        private Builder(LoraModel lora, ExampleEncoder encoder, Recipe recipe) {
            this.lora = Objects.requireNonNull(lora, "lora");
            this.encoder = Objects.requireNonNull(encoder, "encoder");
            this.recipe = recipe;
        }

        /**
         * The two stages' masks (e.g. {@code partition.stageMasks()}); null (the default) trains every element.
         *
         * @throws IllegalStateException for the recipes without masks ({@link Recipe#PLAIN_LORA}, {@link Recipe#PISSA_RL})
         */
        public Builder masks(StageMasks masks) {
            if (masks != null && (recipe == Recipe.PLAIN_LORA || recipe == Recipe.PISSA_RL)) {
                throw new IllegalStateException(recipe + " trains every element: it takes no masks");
            }
            this.masks = masks;
            return this;
        }

        /**
         * Stage 2 is GRPO ({@link GrpoTrainer}) with {@code config} (e.g. {@code GrpoConfig.builder().build()},
         * the paper's stage 2), named {@value GrpoTrainer#STAGE}.
         */
        public Builder grpo(GrpoConfig config) {
            this.grpo = Objects.requireNonNull(config, "grpo config");
            this.stage2Name = GrpoTrainer.STAGE;
            this.stage2 = null;
            return this;
        }

        /** GRPO's completions with their rewards are appended to {@code file} (JSONL) every k steps of its config. */
        public Builder completionLog(Path file) {
            this.completionLog = file;
            return this;
        }

        /** Stage 1's settings (default {@link SftConfig#defaults()}, the paper's). */
        public Builder sft(SftConfig config) {
            this.sft = Objects.requireNonNull(config, "sft config");
            return this;
        }

        /** Stage 2, named {@code name} (its checkpoint folder and report name): another second stage than {@link #grpo}. */
        public Builder stage2(String name, SecondStage stage) {
            if (name == null || name.isBlank() || name.equals(SftTrainer.STAGE)) {
                throw new IllegalArgumentException("stage 2 needs a name other than '" + SftTrainer.STAGE + "', got "
                        + name);
            }
            this.stage2Name = name;
            this.stage2 = Objects.requireNonNull(stage, "stage");
            this.grpo = null;
            return this;
        }

        /**
         * Checkpoints every {@code everySteps} optimizer steps of each stage into {@code folder/<stage>};
         * a run resumes from what is there.
         */
        public Builder checkpoints(Path folder, int everySteps) {
            if (everySteps < 1) {
                throw new IllegalArgumentException("checkpoint interval must be >= 1 step, got " + everySteps);
            }
            this.checkpointFolder = Objects.requireNonNull(folder, "folder");
            this.checkpointEvery = everySteps;
            return this;
        }

        /** How many checkpoints each stage keeps (default 3). */
        public Builder keepCheckpoints(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("checkpoints to keep must be >= 1, got " + n);
            }
            this.keepCheckpoints = n;
            return this;
        }

        /** Adds a listener for both stages. */
        public Builder listener(TrainingListener listener) {
            this.listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /** Runs {@code evaluator} every {@code everySteps} steps of each stage and at its end. */
        public Builder evaluator(Evaluator evaluator, int everySteps) {
            if (everySteps < 1) {
                throw new IllegalArgumentException("evaluation interval must be >= 1 step, got " + everySteps);
            }
            this.evaluator = Objects.requireNonNull(evaluator, "evaluator");
            this.evaluateEvery = everySteps;
            return this;
        }

        /**
         * Trains both stages data-parallel with the ranks of {@code collective} (default
         * {@link Collective#single()}); see {@link StageBuilder#collective}.
         */
        public Builder collective(Collective collective) {
            this.collective = Objects.requireNonNull(collective, "collective");
            return this;
        }

        public TwoStageTrainer build() {
            return new TwoStageTrainer(this);
        }
    }
}
