package ai.lorapar.train;

import java.util.Locale;
import java.util.Objects;

/**
 * The settings of supervised fine-tuning (LoRA-PAR's stage 1). Built with {@link #builder()}; immutable.
 * Every setter checks its value and names the setting in its error.
 *
 * <p>Defaults are the paper's stage 1 ({@code design.md} §1), which used Hugging Face's defaults
 * otherwise: learning rate 2e-4, cosine schedule with warm-up ratio 0.03, AdamW β = (0.9, 0.999),
 * ε = 1e-8, weight decay 0, max grad norm 1.0, one epoch, maximum length 512 (the encoder's), seed 42.
 * The paper used micro-batches of 1 example with 32 accumulated per optimizer step; the default here
 * is 8 × 4, the same 32 examples per step: with the default {@link LossNormalization#PER_TOKEN
 * per-token} normalisation and no dropout the update is the same whatever the split (padding does not
 * change a row's logits), and 8 rows per pass are far faster. With LoRA dropout the masks of the two
 * splits differ, as they would between any two seeds.
 *
 * <pre>{@code
 * SftConfig cfg = SftConfig.builder().learningRate(2e-4).schedule(LearningRateSchedule.cosine(0.03))
 *         .microBatchSize(8).gradientAccumulation(4).epochs(1).build();
 * }</pre>
 */
public final class SftConfig {
    /** How token losses are averaged into the loss of one optimizer step. */
    public enum LossNormalization {
        /**
         * The sum of the answer tokens' NLL over all micro-batches of the optimizer step, divided by the
         * number of answer tokens of the step (transformers' Trainer with {@code num_items_in_batch}):
         * every answer token weighs the same. The default.
         */
        PER_TOKEN,
        /** The mean over the step's examples of each example's mean token NLL: every example weighs the same. */
        PER_EXAMPLE
    }

    private final double learningRate;
    private final LearningRateSchedule schedule;
    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final double maxGradNorm;
    private final int microBatchSize;
    private final int gradientAccumulation;
    private final int epochs;
    private final long maxSteps;
    private final int maxLength;
    private final boolean groupByLength;
    private final LossNormalization lossNormalization;
    private final long seed;
    private final int loggingSteps;
    private final boolean cudaGraphs;

    private SftConfig(Builder b) {
        this.learningRate = b.learningRate;
        this.schedule = b.schedule;
        this.beta1 = b.beta1;
        this.beta2 = b.beta2;
        this.epsilon = b.epsilon;
        this.weightDecay = b.weightDecay;
        this.maxGradNorm = b.maxGradNorm;
        this.microBatchSize = b.microBatchSize;
        this.gradientAccumulation = b.gradientAccumulation;
        this.epochs = b.epochs;
        this.maxSteps = b.maxSteps;
        this.maxLength = b.maxLength;
        this.groupByLength = b.groupByLength;
        this.lossNormalization = b.lossNormalization;
        this.seed = b.seed;
        this.loggingSteps = b.loggingSteps;
        this.cudaGraphs = b.cudaGraphs;
    }

    /** A builder with the paper's stage-1 defaults (see the class comment). */
    public static Builder builder() {
        return new Builder();
    }

    /** The paper's stage-1 settings. */
    public static SftConfig defaults() {
        return builder().build();
    }

    /** A builder holding this config's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.learningRate = learningRate;
        b.schedule = schedule;
        b.beta1 = beta1;
        b.beta2 = beta2;
        b.epsilon = epsilon;
        b.weightDecay = weightDecay;
        b.maxGradNorm = maxGradNorm;
        b.microBatchSize = microBatchSize;
        b.gradientAccumulation = gradientAccumulation;
        b.epochs = epochs;
        b.maxSteps = maxSteps;
        b.maxLength = maxLength;
        b.groupByLength = groupByLength;
        b.lossNormalization = lossNormalization;
        b.seed = seed;
        b.loggingSteps = loggingSteps;
        b.cudaGraphs = cudaGraphs;
        return b;
    }

    /** Peak learning rate. */
    public double learningRate() {
        return learningRate;
    }

    public LearningRateSchedule schedule() {
        return schedule;
    }

    public double beta1() {
        return beta1;
    }

    public double beta2() {
        return beta2;
    }

    public double epsilon() {
        return epsilon;
    }

    public double weightDecay() {
        return weightDecay;
    }

    /** Global gradient-norm clipping threshold over active elements; 0 = no clipping. */
    public double maxGradNorm() {
        return maxGradNorm;
    }

    /** Examples per forward/backward pass (Hugging Face's {@code per_device_train_batch_size}). */
    public int microBatchSize() {
        return microBatchSize;
    }

    /** Micro-batches per optimizer step. */
    public int gradientAccumulation() {
        return gradientAccumulation;
    }

    /** Examples per optimizer step: micro-batch size × accumulation (the last step of an epoch may have fewer). */
    public int examplesPerStep() {
        return microBatchSize * gradientAccumulation;
    }

    public int epochs() {
        return epochs;
    }

    /** Optimizer steps to run, overriding {@link #epochs()} when positive (Hugging Face's {@code max_steps}); 0 = by epochs. */
    public long maxSteps() {
        return maxSteps;
    }

    /** The maximum tokens per example, or 0 to use the encoder's own maximum. */
    public int maxLength() {
        return maxLength;
    }

    /** Whether micro-batches are made of examples of similar length (less padding). */
    public boolean groupByLength() {
        return groupByLength;
    }

    public LossNormalization lossNormalization() {
        return lossNormalization;
    }

    /** Seed of the data order and of the LoRA dropout masks. */
    public long seed() {
        return seed;
    }

    /** Optimizer steps between reports to listeners (and the last step). */
    public int loggingSteps() {
        return loggingSteps;
    }

    /**
     * Whether each micro-batch's forward and backward pass is replayed from a CUDA graph captured once per
     * batch shape (see {@link SftTrainer}, "CUDA graphs"). Off by default.
     */
    public boolean cudaGraphs() {
        return cudaGraphs;
    }

    /**
     * What determines the trained weights, as text: every setting except {@link #loggingSteps()}.
     * Checkpoints record it, and a run resumes only from a checkpoint with the same one.
     */
    public String fingerprint() {
        return String.format(Locale.ROOT, "sft(lr=%s, schedule=%s, betas=(%s, %s), eps=%s, weight_decay=%s, "
                + "max_grad_norm=%s, micro_batch=%d, accumulation=%d, epochs=%d, max_steps=%d, max_length=%d, "
                + "group_by_length=%s, loss=%s, seed=%d%s)", learningRate, schedule, beta1, beta2, epsilon, weightDecay,
                maxGradNorm, microBatchSize, gradientAccumulation, epochs, maxSteps, maxLength, groupByLength,
                lossNormalization, seed, cudaGraphs ? ", cuda_graphs=true" : ""); // its dropout masks are other draws
    }

    @Override
    public String toString() {
        return fingerprint().replaceFirst("\\)$", ", logging_steps=" + loggingSteps + ")");
    }

    /** Settings of an {@link SftConfig}; each setter checks its value. */
    public static final class Builder {
        private double learningRate = 2e-4;
        private LearningRateSchedule schedule = LearningRateSchedule.cosine(0.03);
        private double beta1 = 0.9;
        private double beta2 = 0.999;
        private double epsilon = 1e-8;
        private double weightDecay = 0.0;
        private double maxGradNorm = 1.0;
        private int microBatchSize = 8;
        private int gradientAccumulation = 4;
        private int epochs = 1;
        private long maxSteps;
        private int maxLength;
        private boolean groupByLength;
        private LossNormalization lossNormalization = LossNormalization.PER_TOKEN;
        private long seed = 42;
        private int loggingSteps = 10;
        private boolean cudaGraphs;

        private Builder() {}

        /** Peak learning rate, finite and ≥ 0 (default 2e-4). */
        public Builder learningRate(double lr) {
            this.learningRate = finiteNonNegative("learningRate", lr);
            return this;
        }

        /** Learning-rate schedule (default cosine with warm-up ratio 0.03). */
        public Builder schedule(LearningRateSchedule schedule) {
            this.schedule = Objects.requireNonNull(schedule, "SFT config 'schedule' must not be null");
            return this;
        }

        /** Adam's β1, β2 ∈ [0, 1) (defaults 0.9, 0.999). */
        public Builder betas(double beta1, double beta2) {
            if (!(beta1 >= 0 && beta1 < 1)) {
                throw new IllegalArgumentException("SFT config 'beta1' must be in [0, 1), got " + beta1);
            }
            if (!(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("SFT config 'beta2' must be in [0, 1), got " + beta2);
            }
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        /** Adam's ε > 0 (default 1e-8). */
        public Builder epsilon(double epsilon) {
            if (!(epsilon > 0) || Double.isInfinite(epsilon)) {
                throw new IllegalArgumentException("SFT config 'epsilon' must be a finite positive number, got "
                        + epsilon);
            }
            this.epsilon = epsilon;
            return this;
        }

        /** Decoupled weight decay ≥ 0 (default 0; applied to active elements only). */
        public Builder weightDecay(double weightDecay) {
            this.weightDecay = finiteNonNegative("weightDecay", weightDecay);
            return this;
        }

        /** Gradient-norm clipping threshold ≥ 0; 0 disables (default 1.0). */
        public Builder maxGradNorm(double maxGradNorm) {
            this.maxGradNorm = finiteNonNegative("maxGradNorm", maxGradNorm);
            return this;
        }

        /** Examples per forward/backward pass, ≥ 1 (default 8). */
        public Builder microBatchSize(int n) {
            this.microBatchSize = atLeastOne("microBatchSize", n);
            return this;
        }

        /** Micro-batches accumulated per optimizer step, ≥ 1 (default 4). */
        public Builder gradientAccumulation(int n) {
            this.gradientAccumulation = atLeastOne("gradientAccumulation", n);
            return this;
        }

        /** Passes over the data, ≥ 1 (default 1). */
        public Builder epochs(int n) {
            this.epochs = atLeastOne("epochs", n);
            return this;
        }

        /** Optimizer steps to run instead of whole epochs, ≥ 0; 0 (the default) = {@link #epochs}. */
        public Builder maxSteps(long n) {
            if (n < 0) {
                throw new IllegalArgumentException("SFT config 'maxSteps' must be >= 0 (0 = by epochs), got " + n);
            }
            this.maxSteps = n;
            return this;
        }

        /** The maximum tokens per example (≥ 2), or 0 (the default) for the encoder's own (512 by default). */
        public Builder maxLength(int n) {
            if (n != 0 && n < 2) {
                throw new IllegalArgumentException("SFT config 'maxLength' must be >= 2 (or 0 for the encoder's), got "
                        + n);
            }
            this.maxLength = n;
            return this;
        }

        /** Whether micro-batches group examples of similar length (default false). */
        public Builder groupByLength(boolean on) {
            this.groupByLength = on;
            return this;
        }

        /** How token losses are averaged (default {@link LossNormalization#PER_TOKEN}). */
        public Builder lossNormalization(LossNormalization n) {
            this.lossNormalization = Objects.requireNonNull(n, "SFT config 'lossNormalization' must not be null");
            return this;
        }

        /** Seed of the data order and the dropout masks (default 42, Hugging Face's). */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Optimizer steps between reports to listeners, ≥ 1 (default 10). */
        public Builder loggingSteps(int n) {
            this.loggingSteps = atLeastOne("loggingSteps", n);
            return this;
        }

        /**
         * Replays each micro-batch's forward and backward pass from a CUDA graph, one captured per batch shape
         * (rows padded to a multiple of {@value SftTrainer#GRAPH_LENGTH_MULTIPLE} tokens, answer positions to a
         * multiple of {@value SftTrainer#GRAPH_POSITIONS_MULTIPLE} or of a quarter of the batch's positions; a new
         * shape costs a capture, about two passes, once), on engines that can capture them (this
         * project's JNI on a GPU; elsewhere the passes run op by op and this is ignored). A pass then costs one
         * launch instead of thousands of op calls: faster where the host, not the GPU, bounds a step (small models
         * or small batches). LoRA dropout masks come from torch's CUDA generator, seeded per micro-batch, instead
         * of the adapters' keys: same distribution, other draws. Default false.
         */
        public Builder cudaGraphs(boolean on) {
            this.cudaGraphs = on;
            return this;
        }

        public SftConfig build() {
            return new SftConfig(this);
        }

        private static double finiteNonNegative(String key, double v) {
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new IllegalArgumentException("SFT config '" + key + "' must be a finite number >= 0, got " + v);
            }
            return v;
        }

        private static int atLeastOne(String key, int n) {
            if (n < 1) {
                throw new IllegalArgumentException("SFT config '" + key + "' must be >= 1, got " + n);
            }
            return n;
        }
    }
}
