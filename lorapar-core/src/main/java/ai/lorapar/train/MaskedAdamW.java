package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.engine.FusedAdamW;
import ai.lorapar.io.SafetensorsDtype;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.lora.LoraTensorName;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * AdamW whose updates are gated by per-element masks: the optimizer of LoRA-PAR's two stages.
 *
 * <p>Per step, for each parameter p with gradient g and mask M (true = trainable), in PyTorch's
 * {@code torch.optim.AdamW} order:
 *
 * <pre>
 *   g  ← M ? g : 0                      (frozen gradients are ignored, NaN included)
 *   g  ← g · min(1, maxNorm / (‖g‖ + 1e-6))   (global norm over all active elements)
 *   p  ← p · (M ? 1 − lr·λ : 1)          (decoupled weight decay, active elements only)
 *   m  ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
 *   p  ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
 * </pre>
 *
 * <p>A frozen element is multiplied by exactly 1 and has exactly 0 subtracted, so it stays
 * bit-identical through a whole stage, weight decay included, and its moments stay exactly 0. This
 * is the fix for the reference implementation, whose gradient hook let weight decay move "frozen"
 * elements.
 *
 * <p>Parameters and optimizer state are fp32 (gradients of other float types are widened). Updates
 * are in place on the parameters' device. Run {@link #step} outside a gradient collector.
 */
public final class MaskedAdamW implements AutoCloseable {
    private final NDManager manager;
    private final Map<String, NDArray> params;
    private final Map<String, NDArray> masks;
    private final Map<String, NDArray> activeOnes;
    private final Map<String, NDArray> frozenOnes;
    private final Map<String, NDArray> firstMoment = new LinkedHashMap<>();
    private final Map<String, NDArray> secondMoment = new LinkedHashMap<>();
    private final double learningRate;
    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final double maxGradNorm;
    private final LearningRateSchedule schedule;
    private final long totalSteps;
    private long step;
    private volatile boolean closed;
    /** Whether {@link #step(NDArray)} runs as the JNI's fused multi-tensor update ({@link FusedAdamW}). */
    private final boolean fused;
    /** Whether every element trains (no masks given): the fused update then skips the masking. */
    private final boolean unmasked;

    /**
     * System property: {@code false} keeps the NDArray update even where the engine has {@link FusedAdamW}
     * ({@code -Dlorapar.fusedAdamW=false}).
     */
    public static final String FUSED_PROPERTY = "lorapar.fusedAdamW";

    private MaskedAdamW(Builder b, Map<String, NDArray> params, Map<String, NDArray> masks) {
        this.learningRate = b.learningRate;
        this.beta1 = b.beta1;
        this.beta2 = b.beta2;
        this.epsilon = b.epsilon;
        this.weightDecay = b.weightDecay;
        this.maxGradNorm = b.maxGradNorm;
        this.schedule = b.schedule;
        this.totalSteps = b.totalSteps;
        this.unmasked = masks == null;
        if (params.isEmpty()) {
            throw new IllegalArgumentException("no parameters to optimise");
        }
        Map<String, NDArray> sortedParams = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        sortedParams.putAll(params);
        this.params = Collections.unmodifiableMap(new LinkedHashMap<>(sortedParams));
        NDArray first = sortedParams.values().iterator().next();
        this.manager = first.getManager().newSubManager(first.getDevice());
        try {
            Map<String, NDArray> m = new LinkedHashMap<>();
            Map<String, NDArray> on = new LinkedHashMap<>();
            Map<String, NDArray> off = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : this.params.entrySet()) {
                String name = e.getKey();
                NDArray p = e.getValue();
                if (p.getDataType() != DataType.FLOAT32) {
                    throw new IllegalArgumentException("parameter '" + name + "' is " + p.getDataType()
                            + "; LoRA parameters and optimizer state are fp32");
                }
                NDArray mask = masks == null ? null : masks.get(name);
                NDArray bool;
                if (mask == null) {
                    if (masks != null) {
                        throw new IllegalArgumentException("no mask for parameter '" + name + "' (masks cover "
                                + masks.size() + " tensors)");
                    }
                    bool = manager.ones(p.getShape(), DataType.BOOLEAN, p.getDevice());
                } else {
                    if (!mask.getShape().equals(p.getShape())) {
                        throw new IllegalArgumentException("mask of '" + name + "' has shape " + mask.getShape()
                                + ", parameter has " + p.getShape());
                    }
                    bool = mask.toDevice(p.getDevice(), true).toType(DataType.BOOLEAN, false);
                    bool.attach(manager);
                }
                m.put(name, bool);
                NDArray onesActive = bool.toType(DataType.FLOAT32, false);
                onesActive.attach(manager);
                on.put(name, onesActive);
                NDArray onesFrozen = bool.logicalNot().toType(DataType.FLOAT32, false);
                onesFrozen.attach(manager);
                off.put(name, onesFrozen);
                firstMoment.put(name, manager.zeros(p.getShape(), DataType.FLOAT32, p.getDevice()));
                secondMoment.put(name, manager.zeros(p.getShape(), DataType.FLOAT32, p.getDevice()));
            }
            if (masks != null) {
                for (String name : masks.keySet()) {
                    if (!params.containsKey(name)) {
                        throw new IllegalArgumentException("mask '" + name + "' names no parameter");
                    }
                }
            }
            this.masks = Collections.unmodifiableMap(m);
            // the fused update: one JNI call of multi-tensor kernels instead of ~22 NDArray ops per tensor
            this.fused = FusedAdamW.isAvailable(manager.getEngine())
                    && !"false".equalsIgnoreCase(System.getProperty(FUSED_PROPERTY));
            this.activeOnes = on;
            this.frozenOnes = off;
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * A builder with Hugging Face TrainingArguments' AdamW defaults and the paper's stage-1 learning rate.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * What one step did.
     *
     * @param step the 1-based number of the step taken
     * @param learningRate the learning rate it used
     * @param gradNorm the global gradient norm over trainable elements, before clipping
     * @param clipped whether the gradients were scaled down to the maximum norm
     * @param loss the monitored loss read with the norm ({@link #step(NDArray)}), or NaN when none was given
     */
    public record StepResult(long step, double learningRate, double gradNorm, boolean clipped, double loss) {
        /** A result without a monitored loss. */
        public StepResult(long step, double learningRate, double gradNorm, boolean clipped) {
            this(step, learningRate, gradNorm, clipped, Double.NaN);
        }
    }

    /**
     * One step with the gradients DJL's autograd left on the parameters ({@link NDArray#getGradient()}).
     * Gradients accumulate across backward passes until {@link #zeroGradients()}. Call it after the
     * {@code GradientCollector} is closed. See {@link #step(Map)} for NaN/Inf gradients.
     *
     * @return what the step did
     * @throws NonFiniteGradientException naming the tensor and the step, when a trainable gradient element
     *     is NaN or ±Inf
     * @throws IllegalStateException when called inside an open {@code GradientCollector} or after {@link #close()}
     */
    public StepResult step() {
        return step((NDArray) null);
    }

    /**
     * {@link #step()} that also checks a loss: the scalar {@code loss} is read back together with the
     * gradient norm (one host read per step in all), and a NaN or infinite loss refuses the step like a
     * non-finite gradient does (nothing changes). On engines with the JNI's {@link FusedAdamW} the update
     * runs as a few multi-tensor kernels in one call; elsewhere as NDArray ops.
     *
     * @param loss a scalar whose finiteness guards the step, or null
     * @return what the step did, with {@link StepResult#loss()} the loss read
     * @throws NonFiniteGradientException naming the tensor and the step, when a trainable gradient element
     *     is NaN or ±Inf
     * @throws NonFiniteLossException when {@code loss} is NaN or ±Inf
     * @throws IllegalStateException when called inside an open {@code GradientCollector} or after {@link #close()}
     */
    public StepResult step(NDArray loss) {
        checkOpen();
        checkNoGradientRecording();
        if (fused) {
            return fusedStep(loss);
        }
        Map<String, NDArray> grads = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                grads.put(e.getKey(), e.getValue().getGradient());
            }
            if (loss != null) {
                checkLoss(loss.toType(DataType.FLOAT64, true).getDouble());
            }
            StepResult r = step(grads);
            return loss == null ? r : new StepResult(r.step(), r.learningRate(), r.gradNorm(), r.clipped(),
                    loss.toType(DataType.FLOAT64, true).getDouble());
        } finally {
            grads.values().forEach(NDArray::close);
        }
    }

    /** The fused update: norm on the device, one host read of (norm, loss), then one JNI call. */
    private StepResult fusedStep(NDArray loss) {
        if (step >= totalSteps && schedule.kind() != LearningRateSchedule.Kind.CONSTANT) {
            throw new IllegalStateException("step " + (step + 1) + " exceeds totalSteps " + totalSteps);
        }
        double lr = learningRate * schedule.multiplier(step, Math.max(totalSteps, 1));
        List<NDArray> p = new ArrayList<>(params.values());
        List<NDArray> m = new ArrayList<>(firstMoment.values());
        List<NDArray> v = new ArrayList<>(secondMoment.values());
        List<NDArray> mk = unmasked ? null : new ArrayList<>(masks.values());
        try (NDManager scope = manager.newSubManager()) {
            NDArray norm = FusedAdamW.gradNorm(p, mk);
            norm.attach(scope);
            NDArray read = norm;
            if (loss != null) {
                NDArray l = loss.toType(DataType.FLOAT32, true).reshape(new ai.djl.ndarray.types.Shape());
                l.attach(scope);
                read = NDArrays.stack(new ai.djl.ndarray.NDList(norm, l));
                read.attach(scope);
            }
            float[] values = read.toFloatArray(); // the step's one host read
            double gradNorm = values[0];
            if (!Double.isFinite(gradNorm)) {
                Map<String, NDArray> active = new LinkedHashMap<>();
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    NDArray g = e.getValue().getGradient().toType(DataType.FLOAT32, true);
                    g.attach(scope);
                    NDArray ga = NDArrays.where(masks.get(e.getKey()), g, scope.zeros(g.getShape(), DataType.FLOAT32,
                            g.getDevice()));
                    ga.attach(scope);
                    active.put(e.getKey(), ga);
                }
                throw nonFinite(active, gradNorm);
            }
            if (loss != null) {
                checkLoss(values[1]);
            }
            step++;
            NDArray n = FusedAdamW.step(p, m, v, mk, step, lr, beta1, beta2, epsilon, weightDecay, maxGradNorm, norm);
            n.attach(scope);
            boolean clipped = maxGradNorm > 0 && maxGradNorm / (gradNorm + 1e-6) < 1;
            return new StepResult(step, lr, gradNorm, clipped, loss == null ? Double.NaN : values[1]);
        }
    }

    private void checkLoss(double loss) {
        if (!Double.isFinite(loss)) {
            throw new NonFiniteLossException(step + 1, "the loss is " + loss + " at step " + (step + 1)
                    + "; the step was refused: no parameter, moment or step count changed (lower the learning rate, "
                    + "check the data of this batch)");
        }
    }

    /**
     * One step with explicit gradients, one per parameter, same shapes.
     *
     * <p>NaN or ±Inf in the gradient of a trainable element refuses the step: the global gradient norm,
     * read back once per step anyway, is then not finite, and only then are the tensors searched for the
     * culprit. Nothing changes (parameters, moments, step count), so a caller may skip the batch and go on.
     * Non-finite gradients of frozen elements are ignored.
     *
     * @param grads the gradient of every parameter, by name
     * @return what the step did
     * @throws NonFiniteGradientException naming the tensor and the step, when a trainable gradient element
     *     is NaN or ±Inf (or the global norm overflows)
     * @throws IllegalArgumentException for a missing gradient or a shape mismatch, naming the tensor
     * @throws IllegalStateException when called inside an open {@code GradientCollector}, after
     *     {@link #close()}, or past {@code totalSteps}
     */
    public StepResult step(Map<String, NDArray> grads) {
        checkOpen();
        checkNoGradientRecording();
        if (step >= totalSteps && schedule.kind() != LearningRateSchedule.Kind.CONSTANT) {
            throw new IllegalStateException("step " + (step + 1) + " exceeds totalSteps " + totalSteps);
        }
        double lr = learningRate * schedule.multiplier(step, Math.max(totalSteps, 1));
        try (NDManager scope = manager.newSubManager()) {
            Map<String, NDArray> active = new LinkedHashMap<>();
            NDArray normSq = null;
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                String name = e.getKey();
                NDArray g = grads.get(name);
                if (g == null) {
                    throw new IllegalArgumentException("no gradient for parameter '" + name + "'");
                }
                if (!g.getShape().equals(e.getValue().getShape())) {
                    throw new IllegalArgumentException("gradient of '" + name + "' has shape " + g.getShape()
                            + ", parameter has " + e.getValue().getShape());
                }
                NDArray g32 = g.toType(DataType.FLOAT32, true);
                g32.attach(scope);
                NDArray zero = scope.zeros(g32.getShape(), DataType.FLOAT32, g32.getDevice());
                NDArray ga = NDArrays.where(masks.get(name), g32, zero);
                ga.attach(scope);
                active.put(name, ga);
                NDArray sq = ga.square().sum();
                sq.attach(scope);
                normSq = normSq == null ? sq : attachTo(normSq.add(sq), scope);
            }
            double gradNorm = Math.sqrt(normSq.toType(DataType.FLOAT64, false).getDouble());
            if (!Double.isFinite(gradNorm)) {
                // the one host read per step doubles as the NaN/Inf check; only now look for the culprit
                throw nonFinite(active, gradNorm);
            }
            boolean clipped = false;
            if (maxGradNorm > 0) {
                double coef = maxGradNorm / (gradNorm + 1e-6);
                if (coef < 1) {
                    clipped = true;
                    for (NDArray ga : active.values()) {
                        ga.muli((float) coef);
                    }
                }
            }
            step++;
            double bias1 = 1 - Math.pow(beta1, step);
            double bias2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
            float stepSize = (float) (lr / bias1);
            float decay = (float) (1 - lr * weightDecay);
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                String name = e.getKey();
                NDArray p = e.getValue();
                NDArray ga = active.get(name);
                NDArray m = firstMoment.get(name);
                NDArray v = secondMoment.get(name);
                // factor = decay on active elements, exactly 1 on frozen ones.
                NDArray factor = attachTo(attachTo(activeOnes.get(name).mul(decay), scope).add(frozenOnes.get(name)), scope);
                p.muli(factor);
                m.muli((float) beta1).addi(attachTo(ga.mul((float) (1 - beta1)), scope));
                v.muli((float) beta2).addi(attachTo(attachTo(ga.square(), scope).mul((float) (1 - beta2)), scope));
                NDArray denom = attachTo(attachTo(attachTo(v.sqrt(), scope).div((float) bias2Sqrt), scope)
                        .add((float) epsilon), scope);
                NDArray update = attachTo(attachTo(m.div(denom), scope).mul(stepSize), scope);
                p.subi(update);
            }
            return new StepResult(step, lr, gradNorm, clipped);
        }
    }

    /** The error for a non-finite global norm: the first tensor with a NaN/Inf active gradient, else an overflow. */
    private NonFiniteGradientException nonFinite(Map<String, NDArray> active, double gradNorm) {
        long refused = step + 1;
        String largest = null;
        float largestAbs = -1;
        for (Map.Entry<String, NDArray> e : active.entrySet()) {
            NDArray ga = e.getValue();
            NDArray nan = ga.isNaN();
            NDArray bad = nan.logicalOr(ga.isInfinite());
            long count = bad.countNonzero().getLong();
            if (count > 0) {
                long nans = nan.countNonzero().getLong();
                long first = bad.toType(DataType.INT32, false).flatten().argMax().getLong();
                float value = ga.flatten().getFloat(first);
                return new NonFiniteGradientException(refused, e.getKey(), "gradient of '" + e.getKey() + "' has "
                        + count + " non-finite value(s) in trainable elements (" + nans + " NaN, " + (count - nans)
                        + " ±Inf; the first, " + value + ", at flat index " + first + " of shape " + ga.getShape()
                        + ") at step " + refused + "; the step was refused: no parameter, moment or step count "
                        + "changed (lower the learning rate, check the loss and the data of this batch)");
            }
            float maxAbs = ga.abs().max().getFloat();
            if (maxAbs > largestAbs) {
                largestAbs = maxAbs;
                largest = e.getKey();
            }
        }
        return new NonFiniteGradientException(refused, largest, "the global gradient norm is " + gradNorm
                + " at step " + refused + " although every trainable gradient element is finite (it overflowed fp32; "
                + "the largest |g| is " + largestAbs + " in '" + largest + "'); the step was refused: no parameter, "
                + "moment or step count changed");
    }

    private static NDArray attachTo(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }

    /**
     * PyTorch refuses in-place updates of leaves while autograd records ("a leaf Variable that requires grad
     * is being used in an in-place operation"), after the step has begun: say what to do before anything moves.
     */
    private void checkNoGradientRecording() {
        boolean recording;
        try {
            recording = "PyTorch".equals(manager.getEngine().getEngineName())
                    && ai.djl.pytorch.jni.JniUtils.isGradMode();
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            return; // cannot tell; the engine's own error follows if any
        }
        if (recording) {
            throw new IllegalStateException("MaskedAdamW.step() was called inside an open GradientCollector (autograd "
                    + "is recording); call step() after the GradientCollector is closed, e.g. after its "
                    + "try-with-resources block. Nothing was changed.");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("MaskedAdamW is closed (its moments and masks are freed); build a new "
                    + "optimizer");
        }
    }

    /** Zeroes the parameters' autograd gradients (PyTorch's {@code zero_grad}); call after each step. */
    public void zeroGradients() {
        checkOpen();
        if (fused) {
            FusedAdamW.zeroGradients(new ArrayList<>(params.values())); // one call, no scalar from the host
            return;
        }
        Gradients.zero(params.values());
    }

    /**
     * Steps taken so far.
     *
     * @return the number of steps taken
     */
    public long stepCount() {
        return step;
    }

    /**
     * The learning rate the next step will use.
     *
     * @return the learning rate
     */
    public double nextLearningRate() {
        return learningRate * schedule.multiplier(Math.min(step, Math.max(totalSteps, 1) - 1), Math.max(totalSteps, 1));
    }

    /**
     * Adam's first moment of {@code name} (read-only view; owned by the optimizer).
     *
     * @param name a parameter name
     * @return the moment, or null for an unknown name
     */
    public NDArray firstMoment(String name) {
        checkOpen();
        return firstMoment.get(name);
    }

    /**
     * Adam's second moment of {@code name} (read-only view; owned by the optimizer).
     *
     * @param name a parameter name
     * @return the moment, or null for an unknown name
     */
    public NDArray secondMoment(String name) {
        checkOpen();
        return secondMoment.get(name);
    }

    /**
     * The boolean masks in use, by parameter name.
     *
     * @return the masks (owned by the optimizer)
     */
    public Map<String, NDArray> masks() {
        checkOpen();
        return masks;
    }

    // ---------------------------------------------------------------- state for checkpoints

    /** The safetensors metadata format of {@link #saveState}. */
    static final String STATE_FORMAT = "lorapar-masked-adamw";

    /**
     * Saves the step count and both moments of every parameter ({@code exp_avg/<name>},
     * {@code exp_avg_sq/<name>}, fp32, PyTorch's names) to one safetensors file, atomically. The
     * hyper-parameters and masks are not saved: they belong to the run's configuration.
     */
    public void saveState(Path file) throws IOException {
        checkOpen();
        Map<String, NDArray> t = new LinkedHashMap<>();
        for (String name : params.keySet()) {
            t.put("exp_avg/" + name, firstMoment.get(name));
            t.put("exp_avg_sq/" + name, secondMoment.get(name));
        }
        SafetensorsWriter.write(file, t, Map.of("format", STATE_FORMAT, "step", Long.toString(step)));
    }

    /**
     * Restores the step count and moments saved by {@link #saveState}, exactly, in place. Every tensor is
     * checked (present, same shape, no extra one) before anything changes.
     *
     * @throws IOException naming the file and the tensor that is missing, extra or of another shape
     */
    public void loadState(Path file) throws IOException {
        checkOpen();
        try (SafetensorsFile f = SafetensorsFile.open(file); NDManager s = manager.newSubManager()) {
            if (!STATE_FORMAT.equals(f.metadata().get("format"))) {
                throw new IOException(file + ": not a masked AdamW state file (metadata format is "
                        + f.metadata().get("format") + ", expected " + STATE_FORMAT + ")");
            }
            long savedStep;
            try {
                savedStep = Long.parseLong(f.metadata().getOrDefault("step", ""));
            } catch (NumberFormatException e) {
                throw new IOException(file + ": metadata 'step' is not an integer: " + f.metadata().get("step"), e);
            }
            if (savedStep < 0) {
                throw new IOException(file + ": metadata 'step' is negative: " + savedStep);
            }
            // identity keys: DJL's NDArray.equals compares contents (and hashCode is 0)
            Map<NDArray, NDArray> copies = new IdentityHashMap<>();
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                for (String kind : new String[] {"exp_avg/", "exp_avg_sq/"}) {
                    String key = kind + e.getKey();
                    if (!f.contains(key)) {
                        throw new IOException(file + ": missing tensor '" + key + "'");
                    }
                    if (!f.info(key).shape().equals(e.getValue().getShape())
                            || f.info(key).dtype() != SafetensorsDtype.F32) {
                        throw new IOException(file + ": tensor '" + key + "' is " + f.info(key).dtype() + " "
                                + f.info(key).shape() + ", expected F32 " + e.getValue().getShape());
                    }
                    NDArray loaded = f.load(key, s).toDevice(e.getValue().getDevice(), false);
                    loaded.attach(s);
                    copies.put(kind.equals("exp_avg/") ? firstMoment.get(e.getKey()) : secondMoment.get(e.getKey()),
                            loaded);
                }
            }
            if (f.names().size() != 2 * params.size()) {
                for (String key : f.names()) {
                    String name = key.substring(key.indexOf('/') + 1);
                    if (!params.containsKey(name)) {
                        throw new IOException(file + ": tensor '" + key + "' names no parameter of this optimizer");
                    }
                }
            }
            for (Map.Entry<NDArray, NDArray> c : copies.entrySet()) {
                c.getKey().set(new NDIndex("..."), c.getValue());
            }
            step = savedStep;
        }
    }

    /** Frees the moments and masks; the parameters stay. Further calls fail with an {@link IllegalStateException}. */
    @Override
    public void close() {
        closed = true;
        manager.close();
    }

    /** Hyper-parameters; {@link #build} binds them to parameters and masks. */
    public static final class Builder {
        private double learningRate = 2e-4;
        private double beta1 = 0.9;
        private double beta2 = 0.999;
        private double epsilon = 1e-8;
        private double weightDecay = 0.0;
        private double maxGradNorm = 1.0;
        private LearningRateSchedule schedule = LearningRateSchedule.constant();
        private long totalSteps = 1;

        private Builder() {}

        /**
         * Peak learning rate (default 2e-4, the paper's stage 1).
         *
         * @param lr the learning rate, finite and non-negative
         * @return this builder
         */
        public Builder learningRate(double lr) {
            this.learningRate = nonNegative("learning_rate", lr);
            return this;
        }

        /**
         * Adam's β1, β2 ∈ [0, 1) (defaults 0.9, 0.999; the paper's stage 2 uses 0.9, 0.99).
         *
         * @param beta1 decay of the first moment
         * @param beta2 decay of the second moment
         * @return this builder
         */
        public Builder betas(double beta1, double beta2) {
            if (!(beta1 >= 0 && beta1 < 1)) {
                throw new IllegalArgumentException("adam_beta1 must be in [0, 1), got " + beta1);
            }
            if (!(beta2 >= 0 && beta2 < 1)) {
                throw new IllegalArgumentException("adam_beta2 must be in [0, 1), got " + beta2);
            }
            this.beta1 = beta1;
            this.beta2 = beta2;
            return this;
        }

        /**
         * Adam's ε (default 1e-8).
         *
         * @param epsilon positive
         * @return this builder
         */
        public Builder epsilon(double epsilon) {
            if (!(epsilon > 0)) {
                throw new IllegalArgumentException("adam_epsilon must be positive, got " + epsilon);
            }
            this.epsilon = epsilon;
            return this;
        }

        /**
         * Decoupled weight decay λ (default 0; the paper's stage 2 uses 0.1).
         *
         * @param weightDecay λ, finite and non-negative
         * @return this builder
         */
        public Builder weightDecay(double weightDecay) {
            this.weightDecay = nonNegative("weight_decay", weightDecay);
            return this;
        }

        /**
         * Global gradient-norm clipping threshold over active elements; 0 disables (default 1.0).
         *
         * @param maxGradNorm the threshold, or 0 for none
         * @return this builder
         */
        public Builder maxGradNorm(double maxGradNorm) {
            this.maxGradNorm = nonNegative("max_grad_norm", maxGradNorm);
            return this;
        }

        /**
         * Learning-rate schedule (default constant) over {@code totalSteps} optimizer steps.
         *
         * @param schedule the schedule
         * @param totalSteps optimizer steps of the run, positive
         * @return this builder
         */
        public Builder schedule(LearningRateSchedule schedule, long totalSteps) {
            if (totalSteps <= 0) {
                throw new IllegalArgumentException("total optimizer steps must be positive, got " + totalSteps);
            }
            this.schedule = schedule;
            this.totalSteps = totalSteps;
            return this;
        }

        private static double nonNegative(String key, double v) {
            if (!(v >= 0) || Double.isInfinite(v)) {
                throw new IllegalArgumentException(key + " must be a finite non-negative number, got " + v);
            }
            return v;
        }

        /**
         * Binds the optimizer to {@code params} (fp32, updated in place) with element {@code masks}
         * (boolean, true = trainable; null trains every element).
         *
         * @param params the parameters by name
         * @param masks the masks by parameter name, or null
         * @return the optimizer; close it
         * @throws IllegalArgumentException for a non-fp32 parameter or a missing, extra or misshapen mask, naming it
         */
        public MaskedAdamW build(Map<String, NDArray> params, Map<String, NDArray> masks) {
            return new MaskedAdamW(this, params, masks);
        }
    }
}
