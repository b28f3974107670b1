package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.partition.StageMasks;
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
 * {@code stageMasks.stage1()} ({@link SftTrainer}); then stage 2 on System-2 examples under
 * {@code stageMasks.stage2()}, starting from the stage-1 weights (GRPO in the paper; plugged in with
 * {@link Builder#stage2}).
 *
 * <pre>{@code
 * TrainingReport report = TwoStageTrainer.builder(lora, encoder)
 *         .masks(partition.stageMasks())
 *         .sft(SftConfig.builder().learningRate(2e-4).build())
 *         .checkpoints(Path.of("run/ckpt"), 100)          // resumes when present
 *         .listener(TrainingListener.logging(10))
 *         .build()
 *         .run(labelled.system1(), labelled.system2());
 * lora.save(Path.of("run/adapter"));                      // PEFT format
 * }</pre>
 *
 * <p><b>Resume per stage.</b> With checkpoints, each stage keeps its own folder ({@code <dir>/sft},
 * {@code <dir>/<stage-2 name>}). Run again after an interruption, a finished stage 1 is not redone: its
 * final checkpoint is restored (the adapters as stage 1 left them) and the run goes on with stage 2, which
 * resumes from its own latest checkpoint.
 *
 * <p>Without masks ({@code masks(null)}) every element trains in both stages: plain LoRA, the paper's
 * baseline.
 */
public final class TwoStageTrainer {
    private static final Logger LOG = LoggerFactory.getLogger(TwoStageTrainer.class);

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
     */
    public record StageContext(String stage, LoraModel lora, ExampleEncoder encoder, Map<String, NDArray> masks,
            Path checkpointFolder, int checkpointEvery, int keepCheckpoints, List<TrainingListener> listeners,
            Evaluator evaluator, int evaluateEvery) {}

    private final LoraModel lora;
    private final ExampleEncoder encoder;
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

    private TwoStageTrainer(Builder b) {
        this.lora = b.lora;
        this.encoder = b.encoder;
        this.masks = b.masks;
        this.sft = b.sft;
        this.stage2Name = b.stage2Name;
        this.stage2 = b.stage2;
        this.checkpointFolder = b.checkpointFolder;
        this.checkpointEvery = b.checkpointEvery;
        this.keepCheckpoints = b.keepCheckpoints;
        this.listeners = List.copyOf(b.listeners);
        this.evaluator = b.evaluator;
        this.evaluateEvery = b.evaluateEvery;
    }

    /** A run training {@code lora}'s adapters on examples encoded by {@code encoder}. */
    public static Builder builder(LoraModel lora, ExampleEncoder encoder) {
        return new Builder(lora, encoder);
    }

    /**
     * Runs stage 1 on {@code system1}, then stage 2 (when configured) on {@code system2}.
     *
     * @throws IOException when a checkpoint cannot be written or read
     */
    public TrainingReport run(List<Example> system1, List<Example> system2) throws IOException {
        List<StageReport> reports = new ArrayList<>();

        // ---- stage 1: SFT on System 1 under the stage-1 mask
        SftTrainer.Builder s1 = SftTrainer.builder(lora, encoder).config(sft)
                .masks(masks == null ? null : masks.stage1()).listeners(listeners);
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
                    evaluator == null ? 0 : evaluateEvery);
            reports.add(stage2.run(ctx, system2));
        }
        return new TrainingReport(reports);
    }

    /** Settings of a {@link TwoStageTrainer}. */
    public static final class Builder {
        private final LoraModel lora;
        private final ExampleEncoder encoder;
        private StageMasks masks;
        private SftConfig sft = SftConfig.defaults();
        private String stage2Name;
        private SecondStage stage2;
        private Path checkpointFolder;
        private int checkpointEvery;
        private int keepCheckpoints = 3;
        private final List<TrainingListener> listeners = new ArrayList<>();
        private Evaluator evaluator;
        private int evaluateEvery;

        private Builder(LoraModel lora, ExampleEncoder encoder) {
            this.lora = Objects.requireNonNull(lora, "lora");
            this.encoder = Objects.requireNonNull(encoder, "encoder");
        }

        /** The two stages' masks (e.g. {@code partition.stageMasks()}); null (the default) trains every element. */
        public Builder masks(StageMasks masks) {
            this.masks = masks;
            return this;
        }

        /** Stage 1's settings (default {@link SftConfig#defaults()}, the paper's). */
        public Builder sft(SftConfig config) {
            this.sft = Objects.requireNonNull(config, "sft config");
            return this;
        }

        /** Stage 2, named {@code name} (its checkpoint folder and report name), e.g. GRPO. */
        public Builder stage2(String name, SecondStage stage) {
            if (name == null || name.isBlank() || name.equals(SftTrainer.STAGE)) {
                throw new IllegalArgumentException("stage 2 needs a name other than '" + SftTrainer.STAGE + "', got "
                        + name);
            }
            this.stage2Name = name;
            this.stage2 = Objects.requireNonNull(stage, "stage");
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

        public TwoStageTrainer build() {
            return new TwoStageTrainer(this);
        }
    }
}
