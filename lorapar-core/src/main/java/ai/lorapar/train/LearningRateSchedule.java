package ai.lorapar.train;

import java.util.Locale;

/**
 * A learning-rate multiplier per optimizer step, as Hugging Face's schedulers define it
 * ({@code transformers.get_scheduler}): a linear warm-up from 0 over ⌈warmupRatio·totalSteps⌉ steps,
 * then constant, linear decay to 0, or a half-cosine decay to 0.
 *
 * <p>{@code step} is the 0-based index of the optimizer step about to run. As in Hugging Face's
 * Trainer, the scheduler advances after each optimizer step, so with a warm-up the first step runs at
 * a learning rate of 0.
 */
public final class LearningRateSchedule {
    /** The decay after warm-up. */
    public enum Kind {
        /** Hugging Face "constant": no warm-up, multiplier 1 throughout. */
        CONSTANT,
        /** Hugging Face "constant_with_warmup". */
        CONSTANT_WITH_WARMUP,
        /** Hugging Face "linear". */
        LINEAR,
        /** Hugging Face "cosine" (half a cosine period, num_cycles = 0.5). */
        COSINE
    }

    private final Kind kind;
    private final double warmupRatio;

    private LearningRateSchedule(Kind kind, double warmupRatio) {
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
            throw new IllegalArgumentException("warmup ratio must be in [0, 1], got " + warmupRatio);
        }
        this.kind = kind;
        this.warmupRatio = kind == Kind.CONSTANT ? 0 : warmupRatio;
    }

    /** Multiplier 1 at every step. */
    public static LearningRateSchedule constant() {
        return new LearningRateSchedule(Kind.CONSTANT, 0);
    }

    /** Linear warm-up, then 1. */
    public static LearningRateSchedule constantWithWarmup(double warmupRatio) {
        return new LearningRateSchedule(Kind.CONSTANT_WITH_WARMUP, warmupRatio);
    }

    /** Linear warm-up, then linear decay to 0 at the last step. */
    public static LearningRateSchedule linear(double warmupRatio) {
        return new LearningRateSchedule(Kind.LINEAR, warmupRatio);
    }

    /** Linear warm-up, then half-cosine decay to 0 (the paper's schedule in both stages). */
    public static LearningRateSchedule cosine(double warmupRatio) {
        return new LearningRateSchedule(Kind.COSINE, warmupRatio);
    }

    /** By Hugging Face's name: constant, constant_with_warmup, linear, cosine. */
    public static LearningRateSchedule named(String name, double warmupRatio) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "constant":
                return constant();
            case "constant_with_warmup":
                return constantWithWarmup(warmupRatio);
            case "linear":
                return linear(warmupRatio);
            case "cosine":
                return cosine(warmupRatio);
            default:
                throw new IllegalArgumentException("unknown lr_scheduler_type '" + name
                        + "'; expected constant, constant_with_warmup, linear or cosine");
        }
    }

    /** The schedule's kind. */
    public Kind kind() {
        return kind;
    }

    /** The warm-up share of all steps. */
    public double warmupRatio() {
        return warmupRatio;
    }

    /** Warm-up steps for a run of {@code totalSteps}: ⌈ratio·total⌉, as Hugging Face's TrainingArguments. */
    public long warmupSteps(long totalSteps) {
        return (long) Math.ceil(warmupRatio * totalSteps);
    }

    /** The multiplier of the base learning rate at 0-based optimizer step {@code step} of {@code totalSteps}. */
    public double multiplier(long step, long totalSteps) {
        if (totalSteps <= 0) {
            throw new IllegalArgumentException("totalSteps must be positive, got " + totalSteps);
        }
        long warmup = warmupSteps(totalSteps);
        if (kind == Kind.CONSTANT) {
            return 1.0;
        }
        if (step < warmup) {
            return (double) step / Math.max(1, warmup);
        }
        switch (kind) {
            case CONSTANT_WITH_WARMUP:
                return 1.0;
            case LINEAR:
                return Math.max(0.0, (double) (totalSteps - step) / Math.max(1, totalSteps - warmup));
            default:
                double progress = (double) (step - warmup) / Math.max(1, totalSteps - warmup);
                return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
        }
    }

    @Override
    public String toString() {
        return kind.name().toLowerCase(Locale.ROOT) + "(warmup_ratio=" + warmupRatio + ")";
    }
}
