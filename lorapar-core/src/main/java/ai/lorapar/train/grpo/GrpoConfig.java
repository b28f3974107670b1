package ai.lorapar.train.grpo;

import ai.lorapar.train.LearningRateSchedule;

import java.util.Locale;
import java.util.Objects;

/**
 * Settings of GRPO, LoRA-PAR's stage 2. The defaults are the paper's stage 2 (the reference's TRL
 * {@code GRPOConfig}): learning rate 5e-6, AdamW β = (0.9, 0.99), weight decay 0.1, cosine schedule with 10%
 * warm-up, max grad norm 0.1, G = 8 completions per prompt, 128 prompt and 256 completion tokens, clip
 * ε = 0.2, β_KL = 0.04, one update per generation, per-sequence loss, 1 epoch.
 *
 * <p><b>What a step is.</b> A <i>rollout</i> samples {@link #promptsPerStep()} prompts × {@link #groupSize()}
 * completions in one batched generator call; an <i>optimizer step</i> ({@link #gradientAccumulation()}
 * rollouts) backpropagates their loss in micro-batches of {@link #microBatchSize()} sequences and updates
 * the weights once. The reference ran TRL's GRPOTrainer with {@code per_device_train_batch_size=8},
 * {@code gradient_accumulation_steps=4}, {@code num_generations=8}. Since TRL 0.15
 * ({@code huggingface/trl#2776}) the per-device batch counts <i>completions</i>: one optimizer step there is
 * 8 × 4 = 32 completions = 4 prompts × 8, all sampled from the same weights and weighed equally (each
 * micro-batch's mean divided by the accumulation), which is one rollout of 4 prompts here: the default
 * ({@link Builder#trlBatch}{@code (8, 4)}). TRL 0.14 counted prompts instead (8 prompts × 8 per micro-batch,
 * 32 prompts per update): {@code promptsPerStep(8).gradientAccumulation(4)}. Micro-batching is memory only:
 * it never changes the loss.
 *
 * <p><b>Sampling.</b> Temperature 1 (TRL's default from 0.18; 0.14–0.17 used 0.9), no top-k/top-p, stop at
 * end of sequence; each rollout is seeded from ({@link #seed()}, rollout index), so a resumed run samples
 * what an uninterrupted one would. Log-probabilities for the loss are recomputed in the training pass at
 * the same temperature (logits / T), never taken from the sampler.
 *
 * <p><b>Updates per generation</b> μ ({@link #updatesPerGeneration()}, TRL's {@code num_iterations}): with
 * μ = 1 the old policy is the current one (ρ = 1 in value, the gradient of log p); with μ &gt; 1 the old
 * log-probabilities are computed once after sampling (inference pass, dropout off) and each rollout is
 * trained on for μ optimizer steps.
 */
public final class GrpoConfig {
    private final double learningRate;
    private final double beta1;
    private final double beta2;
    private final double adamEpsilon;
    private final double weightDecay;
    private final LearningRateSchedule schedule;
    private final double maxGradNorm;
    private final int groupSize;
    private final int promptsPerStep;
    private final int gradientAccumulation;
    private final int microBatchSize;
    private final int maxPromptTokens;
    private final int maxCompletionTokens;
    private final double temperature;
    private final boolean stopAtEos;
    private final double clipEpsilon;
    private final double klBeta;
    private final int updatesPerGeneration;
    private final AdvantageScaling advantageScaling;
    private final LossAggregation lossAggregation;
    private final int epochs;
    private final long seed;
    private final RewardSet rewards;
    private final String systemPrompt;
    private final boolean keepEncoderSystemPrompt;
    private final int completionLogEvery;
    private final long maxSteps;
    private final int loggingSteps;

    private GrpoConfig(Builder b) {
        this.learningRate = b.learningRate;
        this.beta1 = b.beta1;
        this.beta2 = b.beta2;
        this.adamEpsilon = b.adamEpsilon;
        this.weightDecay = b.weightDecay;
        this.schedule = b.schedule;
        this.maxGradNorm = b.maxGradNorm;
        this.groupSize = b.groupSize;
        this.promptsPerStep = b.promptsPerStep;
        this.gradientAccumulation = b.gradientAccumulation;
        this.microBatchSize = b.microBatchSize;
        this.maxPromptTokens = b.maxPromptTokens;
        this.maxCompletionTokens = b.maxCompletionTokens;
        this.temperature = b.temperature;
        this.stopAtEos = b.stopAtEos;
        this.clipEpsilon = b.clipEpsilon;
        this.klBeta = b.klBeta;
        this.updatesPerGeneration = b.updatesPerGeneration;
        this.advantageScaling = b.advantageScaling;
        this.lossAggregation = b.lossAggregation;
        this.epochs = b.epochs;
        this.seed = b.seed;
        this.rewards = b.rewards;
        this.systemPrompt = b.systemPrompt;
        this.keepEncoderSystemPrompt = b.keepEncoderSystemPrompt;
        this.completionLogEvery = b.completionLogEvery;
        this.maxSteps = b.maxSteps;
        this.loggingSteps = b.loggingSteps;
    }

    /** The paper's stage-2 defaults (see the class comment). */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these settings. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.learningRate = learningRate;
        b.beta1 = beta1;
        b.beta2 = beta2;
        b.adamEpsilon = adamEpsilon;
        b.weightDecay = weightDecay;
        b.schedule = schedule;
        b.maxGradNorm = maxGradNorm;
        b.groupSize = groupSize;
        b.promptsPerStep = promptsPerStep;
        b.gradientAccumulation = gradientAccumulation;
        b.microBatchSize = microBatchSize;
        b.maxPromptTokens = maxPromptTokens;
        b.maxCompletionTokens = maxCompletionTokens;
        b.temperature = temperature;
        b.stopAtEos = stopAtEos;
        b.clipEpsilon = clipEpsilon;
        b.klBeta = klBeta;
        b.updatesPerGeneration = updatesPerGeneration;
        b.advantageScaling = advantageScaling;
        b.lossAggregation = lossAggregation;
        b.epochs = epochs;
        b.seed = seed;
        b.rewards = rewards;
        b.systemPrompt = systemPrompt;
        b.keepEncoderSystemPrompt = keepEncoderSystemPrompt;
        b.completionLogEvery = completionLogEvery;
        b.maxSteps = maxSteps;
        b.loggingSteps = loggingSteps;
        return b;
    }

    public double learningRate() {
        return learningRate;
    }

    public double beta1() {
        return beta1;
    }

    public double beta2() {
        return beta2;
    }

    public double adamEpsilon() {
        return adamEpsilon;
    }

    public double weightDecay() {
        return weightDecay;
    }

    public LearningRateSchedule schedule() {
        return schedule;
    }

    public double maxGradNorm() {
        return maxGradNorm;
    }

    /** G, completions per prompt. */
    public int groupSize() {
        return groupSize;
    }

    /** Prompts sampled together in one rollout. */
    public int promptsPerStep() {
        return promptsPerStep;
    }

    /** Rollouts per optimizer step. */
    public int gradientAccumulation() {
        return gradientAccumulation;
    }

    /** Prompts per optimizer step: {@code promptsPerStep × gradientAccumulation}. */
    public int promptsPerUpdate() {
        return promptsPerStep * gradientAccumulation;
    }

    /** Sequences per forward(+backward) pass of the reference and the policy. */
    public int microBatchSize() {
        return microBatchSize;
    }

    public int maxPromptTokens() {
        return maxPromptTokens;
    }

    public int maxCompletionTokens() {
        return maxCompletionTokens;
    }

    public double temperature() {
        return temperature;
    }

    /** Whether a completion ends at an end-of-sequence token (else every completion has the full budget). */
    public boolean stopAtEos() {
        return stopAtEos;
    }

    public double clipEpsilon() {
        return clipEpsilon;
    }

    /** β of the KL term; 0 skips the reference pass. */
    public double klBeta() {
        return klBeta;
    }

    /** μ, optimizer steps per rollout (TRL's {@code num_iterations}). */
    public int updatesPerGeneration() {
        return updatesPerGeneration;
    }

    public AdvantageScaling advantageScaling() {
        return advantageScaling;
    }

    public LossAggregation lossAggregation() {
        return lossAggregation;
    }

    public int epochs() {
        return epochs;
    }

    public long seed() {
        return seed;
    }

    public RewardSet rewards() {
        return rewards;
    }

    /** The system prompt of GRPO's prompts (null for none); see {@link #keepEncoderSystemPrompt()}. */
    public String systemPrompt() {
        return systemPrompt;
    }

    /** Whether the encoder's own system prompt is used instead of {@link #systemPrompt()}. */
    public boolean keepEncoderSystemPrompt() {
        return keepEncoderSystemPrompt;
    }

    /** Every how many optimizer steps the completions are logged (0: never). */
    public int completionLogEvery() {
        return completionLogEvery;
    }

    /** Optimizer steps of the run when positive (overriding {@link #epochs()}); 0: whole epochs. */
    public long maxSteps() {
        return maxSteps;
    }

    /** Every how many optimizer steps {@code TrainingListener}s get a report (and after the last step). */
    public int loggingSteps() {
        return loggingSteps;
    }

    /**
     * The number of optimizer steps of a run over {@code prompts} prompts: {@link #maxSteps()} when set,
     * else whole epochs (an epoch's last update takes the prompts that are left).
     */
    public long totalSteps(int prompts) {
        if (maxSteps > 0) {
            return maxSteps;
        }
        long updatesPerEpoch = (prompts + promptsPerUpdate() - 1) / promptsPerUpdate();
        return updatesPerEpoch * epochs * updatesPerGeneration;
    }

    /**
     * What determines the trained weights, as text: every setting except {@link #completionLogEvery()} and
     * {@link #loggingSteps()}, the rewards by name and weight (the functions' code is not seen) and the
     * system prompt (whose effect the data fingerprint also sees). Checkpoints record it; a run resumes only
     * from a checkpoint with the same one.
     */
    public String fingerprint() {
        return String.format(Locale.ROOT, "grpo(lr=%s, schedule=%s, betas=(%s, %s), eps=%s, weight_decay=%s, "
                + "max_grad_norm=%s, group=%d, prompts_per_step=%d, accumulation=%d, micro_batch=%d, max_prompt=%d, "
                + "max_completion=%d, temperature=%s, stop_at_eos=%s, clip=%s, beta_kl=%s, mu=%d, advantages=%s, "
                + "loss=%s, epochs=%d, max_steps=%d, seed=%d, rewards=%s, system_prompt=%s)", learningRate, schedule,
                beta1, beta2, adamEpsilon, weightDecay, maxGradNorm, groupSize, promptsPerStep, gradientAccumulation,
                microBatchSize, maxPromptTokens, maxCompletionTokens, temperature, stopAtEos, clipEpsilon, klBeta,
                updatesPerGeneration, advantageScaling, lossAggregation, epochs, maxSteps, seed, rewards,
                keepEncoderSystemPrompt ? "<encoder's>" : systemPrompt == null ? "<none>"
                        : "sha256:" + sha256(systemPrompt));
    }

    private static String sha256(String s) {
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(
                    s.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return java.util.HexFormat.of().formatHex(d, 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "GrpoConfig[lr=%s, betas=(%s, %s), wd=%s, %s, max_grad_norm=%s, G=%d, "
                + "prompts/step=%d, accumulation=%d, micro-batch=%d, prompt<=%d, completion<=%d, T=%s, clip=%s, "
                + "beta_kl=%s, mu=%d, %s, %s, epochs=%d, seed=%d, rewards=%s]", learningRate, beta1, beta2, weightDecay,
                schedule, maxGradNorm, groupSize, promptsPerStep, gradientAccumulation, microBatchSize, maxPromptTokens,
                maxCompletionTokens, temperature, clipEpsilon, klBeta, updatesPerGeneration, advantageScaling,
                lossAggregation, epochs, seed, rewards);
    }

    /** Settings with checked setters; {@link #build()} checks the combination. */
    public static final class Builder {
        private double learningRate = 5e-6;
        private double beta1 = 0.9;
        private double beta2 = 0.99;
        private double adamEpsilon = 1e-8;
        private double weightDecay = 0.1;
        private LearningRateSchedule schedule = LearningRateSchedule.cosine(0.1);
        private double maxGradNorm = 0.1;
        private int groupSize = 8;
        private int promptsPerStep = 4;
        private int gradientAccumulation = 1;
        private int microBatchSize = 16;
        private int maxPromptTokens = 128;
        private int maxCompletionTokens = 256;
        private double temperature = 1.0;
        private boolean stopAtEos = true;
        private double clipEpsilon = 0.2;
        private double klBeta = 0.04;
        private int updatesPerGeneration = 1;
        private AdvantageScaling advantageScaling = AdvantageScaling.GROUP_STD;
        private LossAggregation lossAggregation = LossAggregation.PER_SEQUENCE;
        private int epochs = 1;
        private long seed = 42;
        private RewardSet rewards = GsmRewards.reference();
        private String systemPrompt = GsmRewards.SYSTEM_PROMPT;
        private boolean keepEncoderSystemPrompt;
        private int completionLogEvery = 10;
        private long maxSteps;
        private int loggingSteps = 1;

        private Builder() {}

        /** Peak learning rate (default 5e-6). */
        public Builder learningRate(double lr) {
            this.learningRate = finiteNonNegative("learningRate", lr);
            return this;
        }

        /** AdamW's β1, β2 (default 0.9, 0.99). */
        public Builder betas(double beta1, double beta2) {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("AdamW betas must be in [0, 1), got (" + beta1 + ", " + beta2 + ")");
            }
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        /** AdamW's ε (default 1e-8). */
        public Builder adamEpsilon(double epsilon) {
            if (!(epsilon > 0)) {
                throw new IllegalArgumentException("adamEpsilon must be positive, got " + epsilon);
            }
            this.adamEpsilon = epsilon;
            return this;
        }

        /** Decoupled weight decay, active elements only (default 0.1). */
        public Builder weightDecay(double weightDecay) {
            this.weightDecay = finiteNonNegative("weightDecay", weightDecay);
            return this;
        }

        /** Learning-rate schedule over the optimizer steps (default cosine with 10% warm-up). */
        public Builder schedule(LearningRateSchedule schedule) {
            this.schedule = Objects.requireNonNull(schedule, "schedule");
            return this;
        }

        /** Global gradient-norm clipping over active elements, 0 for none (default 0.1). */
        public Builder maxGradNorm(double maxGradNorm) {
            this.maxGradNorm = finiteNonNegative("maxGradNorm", maxGradNorm);
            return this;
        }

        /** G, completions per prompt, ≥ 2 (default 8). */
        public Builder groupSize(int g) {
            if (g < 2) {
                throw new IllegalArgumentException("groupSize must be >= 2 (advantages are relative to the group), got " + g);
            }
            this.groupSize = g;
            return this;
        }

        /** Prompts per rollout (default 4; see the class comment). */
        public Builder promptsPerStep(int n) {
            this.promptsPerStep = positive("promptsPerStep", n);
            return this;
        }

        /** Rollouts per optimizer step (default 1). */
        public Builder gradientAccumulation(int n) {
            this.gradientAccumulation = positive("gradientAccumulation", n);
            return this;
        }

        /**
         * The batch of TRL ≥ 0.15's GRPOTrainer on one device: {@code perDeviceTrainBatchSize} completions per
         * micro-batch and {@code gradientAccumulationSteps} micro-batches per optimizer step, i.e.
         * {@code perDeviceTrainBatchSize × gradientAccumulationSteps / G} prompts per optimizer step, sampled
         * here as one rollout (set {@link #groupSize} first).
         *
         * @throws IllegalArgumentException when the completions of a step are not whole groups
         */
        public Builder trlBatch(int perDeviceTrainBatchSize, int gradientAccumulationSteps) {
            long completions = (long) positive("perDeviceTrainBatchSize", perDeviceTrainBatchSize)
                    * positive("gradientAccumulationSteps", gradientAccumulationSteps);
            if (completions % groupSize != 0) {
                throw new IllegalArgumentException("TRL batch " + perDeviceTrainBatchSize + " x "
                        + gradientAccumulationSteps + " = " + completions + " completions is not a whole number of "
                        + "groups of " + groupSize + " (set groupSize first)");
            }
            this.promptsPerStep = (int) (completions / groupSize);
            this.gradientAccumulation = 1;
            return this;
        }

        /** Sequences per forward pass of the reference and the policy (default 16; memory only). */
        public Builder microBatchSize(int n) {
            this.microBatchSize = positive("microBatchSize", n);
            return this;
        }

        /** Prompt tokens kept (the last ones, as TRL; default 128). */
        public Builder maxPromptTokens(int n) {
            this.maxPromptTokens = positive("maxPromptTokens", n);
            return this;
        }

        /** Completion budget (default 256). */
        public Builder maxCompletionTokens(int n) {
            this.maxCompletionTokens = positive("maxCompletionTokens", n);
            return this;
        }

        /** Sampling temperature, &gt; 0 (default 1). */
        public Builder temperature(double t) {
            if (!(t > 0) || Double.isInfinite(t)) {
                throw new IllegalArgumentException("temperature must be positive and finite, got " + t);
            }
            this.temperature = t;
            return this;
        }

        /** Whether completions end at end of sequence (default true; false: every one the full budget). */
        public Builder stopAtEos(boolean stop) {
            this.stopAtEos = stop;
            return this;
        }

        /** ε of the clipped ratio (default 0.2). */
        public Builder clipEpsilon(double eps) {
            if (!(eps > 0 && eps < 1)) {
                throw new IllegalArgumentException("clipEpsilon must be in (0, 1), got " + eps);
            }
            this.clipEpsilon = eps;
            return this;
        }

        /** β of the k3 KL term to the reference (base) model; 0 skips the reference pass (default 0.04). */
        public Builder klBeta(double beta) {
            this.klBeta = finiteNonNegative("klBeta", beta);
            return this;
        }

        /** μ, optimizer steps per rollout (default 1). */
        public Builder updatesPerGeneration(int mu) {
            this.updatesPerGeneration = positive("updatesPerGeneration", mu);
            return this;
        }

        /** Default {@link AdvantageScaling#GROUP_STD}. */
        public Builder advantageScaling(AdvantageScaling scaling) {
            this.advantageScaling = Objects.requireNonNull(scaling, "advantageScaling");
            return this;
        }

        /** Default {@link LossAggregation#PER_SEQUENCE}. */
        public Builder lossAggregation(LossAggregation aggregation) {
            this.lossAggregation = Objects.requireNonNull(aggregation, "lossAggregation");
            return this;
        }

        /** Passes over the prompts (default 1). */
        public Builder epochs(int epochs) {
            this.epochs = positive("epochs", epochs);
            return this;
        }

        /** Seed of the prompt order, the rollouts' sampling and the dropout masks (default 42). */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** The reward functions and weights (default {@link GsmRewards#reference()}). */
        public Builder rewards(RewardSet rewards) {
            this.rewards = Objects.requireNonNull(rewards, "rewards");
            return this;
        }

        /** The system prompt of GRPO's prompts, null for none (default {@link GsmRewards#SYSTEM_PROMPT}). */
        public Builder systemPrompt(String systemPrompt) {
            this.systemPrompt = systemPrompt;
            this.keepEncoderSystemPrompt = false;
            return this;
        }

        /** Uses the encoder's own system prompt rather than {@link #systemPrompt}. */
        public Builder keepEncoderSystemPrompt() {
            this.keepEncoderSystemPrompt = true;
            return this;
        }

        /** Every how many optimizer steps completions are logged, 0 for never (default 10). */
        public Builder completionLogEvery(int k) {
            if (k < 0) {
                throw new IllegalArgumentException("completionLogEvery must be >= 0, got " + k);
            }
            this.completionLogEvery = k;
            return this;
        }

        /**
         * Optimizer steps of the run, overriding {@link #epochs} (the prompts cycle through as many shuffled
         * epochs as needed); 0 (the default) for whole epochs. A multiple of {@link #updatesPerGeneration}.
         */
        public Builder maxSteps(long steps) {
            if (steps < 0) {
                throw new IllegalArgumentException("maxSteps must be >= 0, got " + steps);
            }
            this.maxSteps = steps;
            return this;
        }

        /** Every how many optimizer steps listeners get a report (default 1: GRPO steps are long). */
        public Builder loggingSteps(int n) {
            this.loggingSteps = positive("loggingSteps", n);
            return this;
        }

        /**
         * @throws IllegalArgumentException when {@link #maxSteps} is not a multiple of μ
         */
        public GrpoConfig build() {
            if (maxSteps % updatesPerGeneration != 0) {
                throw new IllegalArgumentException("maxSteps " + maxSteps + " is not a multiple of updatesPerGeneration "
                        + updatesPerGeneration + " (a rollout is trained on for mu steps)");
            }
            return new GrpoConfig(this);
        }

        private static int positive(String key, int v) {
            if (v <= 0) {
                throw new IllegalArgumentException(key + " must be positive, got " + v);
            }
            return v;
        }

        private static double finiteNonNegative(String key, double v) {
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new IllegalArgumentException(key + " must be a finite non-negative number, got " + v);
            }
            return v;
        }
    }
}
