package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.engine.CudaGraph;
import ai.lorapar.engine.CudaMemory;
import ai.lorapar.engine.FusedAdamW;
import ai.lorapar.engine.Profiler;
import ai.lorapar.engine.FusedOps;
import ai.lorapar.engine.TrainingOps;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraLayer;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.AnswerPositions;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.CausalLmObjective;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.TrainingPath;
import ai.lorapar.train.MaskedAdamW;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * LoRA SFT step throughput and peak memory, the shape of {@code peer_anchor.py sft}: a random-weight model
 * (bf16 on a GPU), LoRA QKVGUD r = 8, α = 64, dropout 0.05 (active: training mode), Gaussian init, random
 * ids without padding, labels with the first T/4 positions -100, and per step forward + backward +
 * {@link MaskedAdamW} step (lr 2e-4, weight decay 0.01 and no clipping as the peer's {@code torch.optim.AdamW},
 * no masks) + zeroed gradients.
 *
 * <p>Usage: {@code SftBenchmark [--shape qwen2.5-0.5b|llama2-7b|CONFIG_DIR] [--batch 8] [--tokens 512]
 * [--steps 8] [--warmup 3] [--breakdown 3] [--device gpu|cpu] [--variant NAME]...}. Variants (default:
 * {@code default}; {@code all} runs the list below) switch the training path of one model ({@link TrainingPath}):
 *
 * <ul>
 *   <li>{@code default}: the library's defaults (on a GPU with the project's JNI: fused attention, fused
 *       LoRA projections in fp32, lean norm/SiLU, fused loss at answer positions);
 *   <li>{@code baseline}: before this work: explicit attention, each adapter's NDArray path with hash
 *       dropout masks, NDArray norms, full [B,T,V] logits and {@link CausalLmLoss#mean};
 *   <li>{@code no-sdpa}, {@code no-fused-lora}, {@code no-lean}, {@code chunked-loss}, {@code full-logits}:
 *       the default with one part switched back; {@code hash-dropout}: no-fused-lora with hash masks;
 *   <li>{@code lora-bf16}: the LoRA product in the compute dtype (the default on a GPU); {@code lora-fp32}: in fp32, as PEFT;
 *   <li>{@code fused-adamw}: the optimizer step as one {@link FusedAdamW} call instead of MaskedAdamW's
 *       NDArray ops (same update), and the gradients zeroed in one call;
 *   <li>{@code graph}: forward and backward captured once as a CUDA graph ({@link CudaGraph}) and replayed
 *       every step (one launch instead of tens of thousands of op calls; dropout masks from the default CUDA
 *       generator, seeded before each replay); the optimizer step stays eager. Breakdown: fwd_s is forward
 *       and backward together.
 * </ul>
 * Parts join with '+', e.g. {@code lora-bf16+fused-adamw}.
 *
 * <p>Prints per variant {@code BENCH sft <shape> <variant> tokens_per_s=... step_s=... peak_gib=... fwd_s=...
 * bwd_s=... opt_s=...}: tokens/s from {@code --steps} unsynchronised steps (one device sync at the end),
 * peak memory over those steps (torch's allocator, as the peer's {@code max_memory_allocated}), and the
 * breakdown from {@code --breakdown} further steps with a device sync after forward, backward and the
 * optimizer step (mean seconds each).
 */
public final class SftBenchmark {
    /** The variant parts; a variant is one of them or several joined by '+', applied in order. */
    static final List<String> PARTS = List.of("default", "baseline", "no-sdpa", "no-fused-lora", "hash-dropout",
            "no-lean", "chunked-loss", "full-logits", "lora-bf16", "lora-fp32", "fused-adamw", "graph");
    /** What {@code --variant all} runs. */
    static final List<String> ALL_VARIANTS = List.of("default", "baseline", "no-sdpa", "no-fused-lora", "hash-dropout",
            "no-lean", "chunked-loss", "full-logits", "lora-fp32", "fused-adamw");

    private SftBenchmark() {}

    public static void main(String[] args) throws Exception {
        String shape = BenchmarkModels.QWEN25_05B;
        int batch = 8;
        int tokens = 512;
        int steps = 8;
        int warmup = 3;
        int breakdown = 3;
        Path profileDir = null;
        Device device = Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        List<String> variants = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + a + " needs a value");
            }
            switch (a) {
                case "--shape" -> shape = args[++i];
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--breakdown" -> breakdown = Integer.parseInt(args[++i]);
                case "--profile" -> profileDir = Path.of(args[++i]);
                case "--device" -> device = "gpu".equals(args[++i]) ? Device.gpu() : Device.cpu();
                case "--variant" -> {
                    String v = args[++i];
                    if (v.equals("all")) {
                        variants.addAll(ALL_VARIANTS);
                    } else {
                        for (String part : v.split("\\+")) {
                            if (!PARTS.contains(part)) {
                                throw new IllegalArgumentException("unknown variant part '" + part + "' in '" + v
                                        + "' (known: " + PARTS + ", joined by '+'; or all)");
                            }
                        }
                        variants.add(v);
                    }
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (variants.isEmpty()) {
            variants.add("default");
        }
        if (tokens < 2 || batch < 1 || steps < 1) {
            throw new IllegalArgumentException("need --tokens >= 2, --batch >= 1, --steps >= 1");
        }
        Engine engine = Engine.getInstance();
        System.out.printf(Locale.ROOT, "sft benchmark: %s, batch %d x %d tokens, %d steps after %d warm-up, on %s;"
                + " engine %s: %s %s, %s %s, %s %s, %s %s, %s %s, %s %s, %s %s%n", shape, batch, tokens, steps, warmup, device,
                engine.getEngineName(), TrainingOps.ATTENTION, yes(TrainingOps.has(engine, TrainingOps.ATTENTION)),
                TrainingOps.LORA, yes(TrainingOps.has(engine, TrainingOps.LORA)), TrainingOps.LOSS,
                yes(TrainingOps.has(engine, TrainingOps.LOSS)), TrainingOps.NORM,
                yes(TrainingOps.has(engine, TrainingOps.NORM)), FusedOps.CAPABILITY, yes(FusedOps.isAvailable(engine)),
                CudaMemory.CAPABILITY, yes(CudaMemory.isAvailable(engine)), FusedAdamW.CAPABILITY,
                yes(FusedAdamW.isAvailable(engine)));
        try (NDManager manager = NDManager.newBaseManager(device); DecoderModel model = model(shape, manager)) {
            System.out.printf(Locale.ROOT, "model %s as %s on %s; default path: %s%n", model.config(), model.dtype(),
                    model.device(), model.trainingPath());
            Defaults defaults = new Defaults(model.trainingPath());
            String label = shape.contains("/") ? Path.of(shape).getFileName().toString() : shape;
            for (String v : variants) {
                try {
                    // only the first variant is profiled (the trace of one is what tells where the time goes)
                    run(model, manager, label, v, defaults, batch, tokens, steps, warmup, breakdown,
                            v.equals(variants.get(0)) ? profileDir : null);
                } catch (Throwable e) { // an OOM or a missing native must not cost the other variants
                    System.out.printf(Locale.ROOT, "BENCH sft %s %s FAILED %s%n", label, v, e.toString().replace('\n',
                            ' '));
                } finally {
                    defaults.restore(model.trainingPath());
                    System.clearProperty(LoraLayer.DROPOUT_PROPERTY);
                    System.clearProperty(LoraLayer.COMPUTE_PROPERTY);
                }
            }
        }
    }

    private static String yes(boolean b) {
        return b ? "yes" : "no";
    }

    private static DecoderModel model(String shape, NDManager manager) throws Exception {
        if (shape.equals(BenchmarkModels.QWEN25_05B) || shape.equals(BenchmarkModels.LLAMA2_7B)) {
            return BenchmarkModels.random(shape, manager, 0);
        }
        return DecoderModel.random(ModelConfig.load(Path.of(shape)), manager, null, 0);
    }

    /** The model's training path as made (the library's defaults), to restore between variants. */
    private record Defaults(boolean sdpa, boolean fusedLora, boolean loraFp32, boolean lean, boolean fusedLoss) {
        Defaults(TrainingPath p) {
            this(p.sdpa(), p.fusedLora(), p.loraFp32(), p.lean(), p.fusedLoss());
        }

        void restore(TrainingPath p) {
            p.setSdpa(sdpa);
            p.setFusedLora(fusedLora);
            p.setLoraFp32(loraFp32);
            p.setLean(lean);
            p.setFusedLoss(fusedLoss);
        }
    }

    private static boolean has(String variant, String part) {
        return List.of(variant.split("\\+")).contains(part);
    }

    /** Whether a variant computes the loss from full logits ({@link CausalLmLoss#mean}) instead of answer positions. */
    private static boolean fullLogits(String variant) {
        return has(variant, "baseline") || has(variant, "full-logits");
    }

    private static void configure(String variant, TrainingPath p) {
        for (String part : variant.split("\\+")) {
            configurePart(part, p);
        }
    }

    private static void configurePart(String part, TrainingPath p) {
        switch (part) {
            case "default" -> { }
            case "baseline" -> {
                p.setSdpa(false);
                p.setFusedLora(false);
                p.setLean(false);
                p.setFusedLoss(false);
                p.setLoraFp32(true);
                System.setProperty(LoraLayer.DROPOUT_PROPERTY, "hash");
                System.setProperty(LoraLayer.COMPUTE_PROPERTY, "fp32");
            }
            case "no-sdpa" -> p.setSdpa(false);
            case "no-fused-lora" -> p.setFusedLora(false);
            case "hash-dropout" -> {
                p.setFusedLora(false);
                System.setProperty(LoraLayer.DROPOUT_PROPERTY, "hash");
            }
            case "no-lean" -> p.setLean(false);
            case "chunked-loss" -> p.setFusedLoss(false);
            case "full-logits" -> { }
            case "lora-bf16" -> {
                p.setLoraFp32(false);
                System.setProperty(LoraLayer.COMPUTE_PROPERTY, "compute");
            }
            case "lora-fp32" -> { // LoRA products in fp32, as PEFT computes them
                p.setLoraFp32(true);
                System.setProperty(LoraLayer.COMPUTE_PROPERTY, "fp32");
            }
            case "fused-adamw" -> { } // the optimizer, see run
            case "graph" -> { } // forward + backward captured as a CUDA graph, see run
            default -> throw new IllegalArgumentException("unknown variant part " + part);
        }
    }

    private static void run(DecoderModel model, NDManager manager, String shape, String variant, Defaults defaults,
            int batch, int tokens, int steps, int warmup, int breakdownSteps, Path profileDir) throws java.io.IOException {
        configure(variant, model.trainingPath());
        int vocab = model.config().vocabSize();
        Random rnd = new Random(0);
        long[] ids = new long[batch * tokens];
        long[] labels = new long[batch * tokens];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rnd.nextInt(vocab);
            labels[i] = i % tokens < tokens / 4 ? CausalLmLoss.IGNORE_INDEX : ids[i];
        }
        LoraConfig loraConfig = LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(8).alpha(64).dropout(0.05)
                .init(LoraInit.GAUSSIAN).seed(0).build();
        Device device = model.device();
        boolean gpu = device.isGpu() && CudaMemory.isAvailable(manager.getEngine());
        try (NDManager m = manager.newSubManager(); LoraModel lora = LoraModel.apply(model, loraConfig, m)) {
            NDArray idArr = m.create(ids, new Shape(batch, tokens));
            NDArray labelArr = m.create(labels, new Shape(batch, tokens));
            AnswerPositions answers = AnswerPositions.fromLabels(labels, batch, tokens, m);
            Map<String, NDArray> params = new LinkedHashMap<>(lora.parameters());
            boolean fusedOpt = has(variant, "fused-adamw");
            if (fusedOpt && !FusedAdamW.isAvailable(manager.getEngine())) {
                throw new IllegalStateException("the engine has no " + FusedAdamW.CAPABILITY);
            }
            // the fused variant makes no MaskedAdamW (its state would count in the peak memory)
            try (MaskedAdamW masked = fusedOpt ? null : MaskedAdamW.builder().learningRate(2e-4).weightDecay(0.01)
                    .maxGradNorm(0).build(params, null)) {
                Optimizer opt = fusedOpt ? new Fused(List.copyOf(params.values()), m) : new Optimizer() {
                    @Override
                    public void step() {
                        masked.step();
                    }

                    @Override
                    public void zeroGradients() {
                        masked.zeroGradients();
                    }
                };
                Step step = new Step(model, m, idArr, labelArr, answers, opt, fullLogits(variant));
                for (int i = 0; i < warmup; i++) {
                    step.run(null);
                }
                if (has(variant, "graph")) {
                    if (!CudaGraph.isAvailable(manager.getEngine(), device)) {
                        throw new IllegalStateException("the engine cannot capture CUDA graphs on " + device);
                    }
                    step.captureGraph(device);
                }
                sync(m);
                if (gpu) {
                    CudaMemory.resetPeak(device);
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    step.run(null);
                }
                sync(m);
                double seconds = (System.nanoTime() - t0) / 1e9;
                double peak = gpu ? CudaMemory.peakAllocatedBytes(device) / (double) (1L << 30) : Double.NaN;
                float loss = step.lastLoss();
                double[] parts = new double[3];
                for (int i = 0; i < breakdownSteps; i++) {
                    step.run(parts);
                }
                if (profileDir != null && Profiler.isAvailable(manager.getEngine())) {
                    // two more steps under torch's profiler: every op and kernel, as a Chrome trace
                    java.nio.file.Files.createDirectories(profileDir);
                    Path trace = profileDir.resolve("sft-" + shape + "-" + variant.replace('+', '_') + ".json");
                    Profiler.start(device.isGpu());
                    for (int i = 0; i < 2; i++) {
                        step.run(null);
                    }
                    sync(m);
                    Profiler.stop(trace);
                    System.out.printf(Locale.ROOT, "profile of 2 steps: %s%n", trace);
                }
                int nb = Math.max(breakdownSteps, 1);
                System.out.printf(Locale.ROOT, "BENCH sft %s %s tokens_per_s=%.0f step_s=%.4f peak_gib=%.2f fwd_s=%.4f"
                        + " bwd_s=%.4f opt_s=%.4f loss=%.4f lora_params=%d path=[%s]%n", shape, variant,
                        (double) steps * batch * tokens / seconds, seconds / steps, peak, parts[0] / nb, parts[1] / nb,
                        parts[2] / nb, loss, lora.parameterCount(), model.trainingPath().toString().replace(' ', ','));
            }
        }
    }

    /** What a step needs of an optimizer. */
    private interface Optimizer {
        void step();

        void zeroGradients();
    }

    /** {@link FusedAdamW} with the same hyper-parameters as the MaskedAdamW of the other variants. */
    private static final class Fused implements Optimizer {
        private final List<NDArray> params;
        private final List<NDArray> expAvg = new ArrayList<>();
        private final List<NDArray> expAvgSq = new ArrayList<>();
        private long steps;

        Fused(List<NDArray> params, NDManager m) {
            this.params = params;
            for (NDArray p : params) {
                expAvg.add(m.zeros(p.getShape(), DataType.FLOAT32));
                expAvgSq.add(m.zeros(p.getShape(), DataType.FLOAT32));
            }
        }

        @Override
        public void step() {
            FusedAdamW.step(params, expAvg, expAvgSq, null, ++steps, 2e-4, 0.9, 0.999, 1e-8, 0.01, 0).close();
        }

        @Override
        public void zeroGradients() {
            FusedAdamW.zeroGradients(params);
        }
    }

    /** Waits for all queued device work: reads a fresh scalar back (a stream-ordered copy). */
    private static void sync(NDManager m) {
        try (NDArray z = m.zeros(new Shape(1), DataType.FLOAT32)) {
            z.getFloat(0);
        }
    }

    /** One SFT step: forward, backward, optimizer step, zeroed gradients. */
    private static final class Step {
        private final DecoderModel model;
        private final NDManager manager;
        private final NDArray ids;
        private final NDArray labels;
        private final AnswerPositions answers;
        private final Optimizer opt;
        private final boolean fullLogits;
        private NDArray lastLoss;
        /** Forward + backward captured (variant graph), and the loss it writes, made before the capture. */
        private CudaGraph graph;
        private NDArray graphLoss;
        private long replays;

        Step(DecoderModel model, NDManager manager, NDArray ids, NDArray labels, AnswerPositions answers,
                Optimizer opt, boolean fullLogits) {
            this.model = model;
            this.manager = manager;
            this.ids = ids;
            this.labels = labels;
            this.answers = answers;
            this.opt = opt;
            this.fullLogits = fullLogits;
        }

        /**
         * Captures forward + backward as a CUDA graph: the inputs are the same arrays at every step, the loss is
         * written into an array made before the capture, dropout masks come from the default CUDA generator
         * (seeded before every replay). The capture's warm-up pass adds gradients, which are zeroed.
         */
        void captureGraph(Device device) {
            graphLoss = manager.zeros(new Shape(1), DataType.FLOAT32);
            graph = CudaGraph.capture(device, 1, () -> {
                try (NDManager s = manager.newSubManager();
                        GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray nll = CausalLmObjective.tokenNll(model, ids, null, answers, true, true);
                    nll.attach(s);
                    NDArray loss = nll.mean();
                    loss.attach(s);
                    gc.backward(loss);
                    NDArray flat = loss.stopGradient().reshape(1);
                    flat.attach(s);
                    FusedOps.writeSlice(graphLoss, flat, 0, 0);
                }
            });
            opt.zeroGradients();
        }

        /** The last step's loss (reading it waits for the device). */
        float lastLoss() {
            return lastLoss.getFloat();
        }

        /**
         * Runs a step; with {@code times} non-null, syncs after each phase and adds its seconds to
         * times[0..2] (forward, backward, optimizer).
         */
        void run(double[] times) {
            if (graph != null) {
                long t0 = System.nanoTime();
                CudaGraph.seed(model.device(), ++replays);
                graph.replay();
                if (times != null) {
                    sync(manager);
                    long t1 = System.nanoTime();
                    times[0] += (t1 - t0) / 1e9; // forward and backward together
                    t0 = t1;
                }
                if (lastLoss != null) {
                    lastLoss.close();
                }
                lastLoss = graphLoss.get(0);
                opt.step();
                opt.zeroGradients();
                if (times != null) {
                    sync(manager);
                    times[2] += (System.nanoTime() - t0) / 1e9;
                }
                return;
            }
            try (NDManager s = manager.newSubManager()) {
                long t0 = System.nanoTime();
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray loss;
                    if (fullLogits) {
                        NDArray logits = model.forward(ids, null, true);
                        logits.attach(s);
                        loss = CausalLmLoss.mean(logits, labels);
                    } else {
                        // transformers' loss: the mean over all counted tokens
                        NDArray nll = CausalLmObjective.tokenNll(model, ids, null, answers, true, true);
                        nll.attach(s);
                        loss = nll.mean();
                    }
                    loss.attach(s);
                    long t1 = 0;
                    if (times != null) {
                        sync(s);
                        t1 = System.nanoTime();
                        times[0] += (t1 - t0) / 1e9;
                    }
                    gc.backward(loss);
                    if (times != null) {
                        sync(s);
                        long t2 = System.nanoTime();
                        times[1] += (t2 - t1) / 1e9;
                        t0 = t2;
                    }
                    if (lastLoss != null) {
                        lastLoss.close();
                    }
                    lastLoss = loss.stopGradient(); // no copy, no sync
                    lastLoss.attach(manager);
                }
                opt.step();
                opt.zeroGradients();
                if (times != null) {
                    sync(s);
                    times[2] += (System.nanoTime() - t0) / 1e9;
                }
            }
        }
    }
}
