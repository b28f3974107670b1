package ai.lorapar.lora;

import java.util.Objects;

/**
 * The settings of a LoRA adapter set: {@code y = W·x + (alpha / rank)·B·A·dropout(x)} on every
 * targeted linear layer. Built with {@link #builder()}; immutable.
 *
 * <pre>{@code
 * LoraConfig config = LoraConfig.builder()
 *         .targets(LoraTargets.QKVGUD).rank(8).alpha(64).dropout(0.05)
 *         .init(LoraInit.GAUSSIAN).seed(42)
 *         .build();
 * }</pre>
 */
public final class LoraConfig {
    private final LoraTargets targets;
    private final int rank;
    private final double alpha;
    private final double dropout;
    private final LoraInit init;
    private final double gaussianStd;
    private final long seed;
    private final int svdOversample;
    private final int svdIterations;
    private final String baseModelNameOrPath;

    private LoraConfig(Builder b) {
        this.targets = b.targets;
        this.rank = b.rank;
        this.alpha = b.alpha;
        this.dropout = b.dropout;
        this.init = b.init;
        this.gaussianStd = b.gaussianStd;
        this.seed = b.seed;
        this.svdOversample = b.svdOversample;
        this.svdIterations = b.svdIterations;
        this.baseModelNameOrPath = b.baseModelNameOrPath;
    }

    /** Defaults: QKVGUD, rank 8, alpha 64, dropout 0.05, {@link LoraInit#GAUSSIAN} with σ 0.01, seed 0. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding this config's values. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.targets = targets;
        b.rank = rank;
        b.alpha = alpha;
        b.dropout = dropout;
        b.init = init;
        b.gaussianStd = gaussianStd;
        b.seed = seed;
        b.svdOversample = svdOversample;
        b.svdIterations = svdIterations;
        b.baseModelNameOrPath = baseModelNameOrPath;
        return b;
    }

    /**
     * The targeted layers.
     *
     * @return the targets
     */
    public LoraTargets targets() {
        return targets;
    }

    /** r, the inner dimension of B·A. */
    public int rank() {
        return rank;
    }

    /** lora_alpha. */
    public double alpha() {
        return alpha;
    }

    /** alpha / rank, the factor of B·A. */
    public double scaling() {
        return alpha / rank;
    }

    /** The dropout probability on the adapter's input, applied in training passes only. */
    public double dropout() {
        return dropout;
    }

    /**
     * The initialisation.
     *
     * @return the init
     */
    public LoraInit init() {
        return init;
    }

    /** σ of {@link LoraInit#GAUSSIAN}. */
    public double gaussianStd() {
        return gaussianStd;
    }

    /** Seed of the random initialisation, the PiSSA sketch and the dropout masks. */
    public long seed() {
        return seed;
    }

    /** Extra sketch columns of PiSSA's randomised SVD. */
    public int svdOversample() {
        return svdOversample;
    }

    /** Subspace iterations of PiSSA's randomised SVD. */
    public int svdIterations() {
        return svdIterations;
    }

    /** Written to adapter_config.json's {@code base_model_name_or_path}; may be null. */
    public String baseModelNameOrPath() {
        return baseModelNameOrPath;
    }

    @Override
    public String toString() {
        return "LoraConfig[targets=" + targets + ", r=" + rank + ", alpha=" + alpha + ", dropout=" + dropout + ", init="
                + init + (init == LoraInit.GAUSSIAN ? " σ=" + gaussianStd : "") + ", seed=" + seed + "]";
    }

    /** Builds a {@link LoraConfig}; {@link #build()} checks every value and names the bad one. */
    public static final class Builder {
        private LoraTargets targets = LoraTargets.QKVGUD;
        private int rank = 8;
        private double alpha = 64;
        private double dropout = 0.05;
        private LoraInit init = LoraInit.GAUSSIAN;
        private double gaussianStd = 0.01;
        private long seed;
        private int svdOversample = 10;
        private int svdIterations = 4;
        private String baseModelNameOrPath;

        private Builder() {}

        /**
         * The layers that get adapters.
         *
         * @param targets the targets
         * @return this builder
         */
        public Builder targets(LoraTargets targets) {
            this.targets = Objects.requireNonNull(targets, "targets");
            return this;
        }

        /** Explicit module list, as {@link LoraTargets#modules(String...)}. */
        public Builder targets(String... modules) {
            this.targets = LoraTargets.modules(modules);
            return this;
        }

        /**
         * The rank r of A and B.
         *
         * @param rank positive
         * @return this builder
         */
        public Builder rank(int rank) {
            this.rank = rank;
            return this;
        }

        /**
         * The scaling numerator: updates are scaled by alpha / r.
         *
         * @param alpha alpha, positive
         * @return this builder
         */
        public Builder alpha(double alpha) {
            this.alpha = alpha;
            return this;
        }

        /**
         * Dropout on the adapter input in training passes.
         *
         * @param dropout the probability, in [0, 1)
         * @return this builder
         */
        public Builder dropout(double dropout) {
            this.dropout = dropout;
            return this;
        }

        /**
         * The initialisation of A and B.
         *
         * @param init the init
         * @return this builder
         */
        public Builder init(LoraInit init) {
            this.init = Objects.requireNonNull(init, "init");
            return this;
        }

        /**
         * Standard deviation of the Gaussian initialisation.
         *
         * @param std positive
         * @return this builder
         */
        public Builder gaussianStd(double std) {
            this.gaussianStd = std;
            return this;
        }

        /**
         * The seed of random initialisations and dropout masks.
         *
         * @param seed the seed
         * @return this builder
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** PiSSA's randomised SVD: oversampling columns and subspace iterations (defaults 10 and 4). */
        public Builder svd(int oversample, int iterations) {
            this.svdOversample = oversample;
            this.svdIterations = iterations;
            return this;
        }

        /**
         * The base model recorded in adapter_config.json.
         *
         * @param nameOrPath a Hugging Face name or path
         * @return this builder
         */
        public Builder baseModelNameOrPath(String nameOrPath) {
            this.baseModelNameOrPath = nameOrPath;
            return this;
        }

        /**
         * Builds the config.
         *
         * @return the config
         */
        public LoraConfig build() {
            if (rank < 1) {
                throw new IllegalArgumentException("LoRA config 'rank' must be >= 1, got " + rank);
            }
            if (!(alpha > 0) || Double.isInfinite(alpha)) {
                throw new IllegalArgumentException("LoRA config 'alpha' must be a positive number, got " + alpha);
            }
            if (!(dropout >= 0 && dropout < 1)) {
                throw new IllegalArgumentException("LoRA config 'dropout' must be in [0, 1), got " + dropout);
            }
            if (!(gaussianStd > 0) || Double.isInfinite(gaussianStd)) {
                throw new IllegalArgumentException("LoRA config 'gaussianStd' must be positive, got " + gaussianStd);
            }
            if (svdOversample < 0 || svdIterations < 0) {
                throw new IllegalArgumentException("LoRA config 'svd' oversample and iterations must be >= 0, got "
                        + svdOversample + ", " + svdIterations);
            }
            return new LoraConfig(this);
        }
    }
}
