package ai.lorapar.examples.embedded;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.Linear;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.train.Gradients;
import ai.lorapar.engine.EngineSupport;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Per-stage cost of the embedded tiny model (random weights of its shape, {@link DecoderModel#random}): the
 * figures that size the main job. Prints one {@code BENCH} line per figure:
 *
 * <ul>
 *   <li>a full-parameter forward + backward of a batch of 8×128 tokens (pretraining),</li>
 *   <li>the same with LoRA QKVGUD r = 8 (importance, SFT, GRPO's training pass),</li>
 *   <li>a greedy generation of 32 prompts × 64 new tokens (evaluation, GRPO rollouts).</li>
 * </ul>
 *
 * <pre>
 * TinyModelTiming [--shape HIDDEN,LAYERS,HEADS,KV_HEADS,INTERMEDIATE] [--batch 8] [--tokens 128]
 *                 [--prompts 32] [--new 64] [--runs 5] [--device cpu|gpu]
 * </pre>
 *
 * On a machine shared with other busy processes, run it with {@code -Dai.djl.pytorch.num_threads=1}: with more
 * torch threads than free cores, OpenMP's spinning threads slow every op down many times over.
 */
public final class TinyModelTiming {

    private TinyModelTiming() {
    }

    public static void main(String[] args) throws Exception {
        TinyModelConfig shape = TinyModelConfig.DEFAULT;
        int batch = 8;
        int tokens = 128;
        int prompts = 32;
        int fresh = 64;
        int runs = 5;
        double dropout = 0.05;
        Device device = Device.cpu();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shape" -> {
                    int[] s = Arrays.stream(args[++i].split(",")).mapToInt(Integer::parseInt).toArray();
                    shape = new TinyModelConfig(s[0], s[1], s[2], s[3], s[4], 512, true);
                }
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--prompts" -> prompts = Integer.parseInt(args[++i]);
                case "--new" -> fresh = Integer.parseInt(args[++i]);
                case "--runs" -> runs = Integer.parseInt(args[++i]);
                case "--dropout" -> dropout = Double.parseDouble(args[++i]);
                case "--device" -> device = "gpu".equals(args[++i]) ? Device.gpu() : Device.cpu();
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        int vocab = EmbeddedTokenizer.defaultVocabulary().size();
        ModelConfig config = ModelConfig.fromJson(shape.configJson(vocab), "tiny-arith " + shape);
        System.out.printf(Locale.ROOT, "BENCH tiny model %s: %,d parameters (%.2f MB fp32), vocab %d, %d cores, torch threads: %s%n",
                shape, shape.parameters(vocab), shape.parameters(vocab) * 4 / 1e6, vocab,
                Runtime.getRuntime().availableProcessors(), System.getProperty("ai.djl.pytorch.num_threads", "default"));
        try (NDManager manager = EngineSupport.newBaseManager(device);
                DecoderModel model = DecoderModel.random(config, manager, DataType.FLOAT32, 1)) {
            Random rnd = new Random(1);
            long[] flat = new long[batch * tokens];
            for (int i = 0; i < flat.length; i++) {
                flat[i] = 8 + rnd.nextInt(vocab - 8);
            }

            // full-parameter training pass: gradients on every linear weight and the embeddings
            List<NDArray> weights = new ArrayList<>();
            for (Linear l : model.linears().values()) {
                if (!weights.contains(l.weight())) {
                    weights.add(l.weight());
                }
            }
            if (!weights.contains(model.embedTokens())) {
                weights.add(model.embedTokens());
            }
            weights.forEach(w -> w.setRequiresGradient(true));
            double[] full = timeTrainingPass(manager, model, flat, batch, tokens, runs, weights);
            weights.forEach(w -> w.setRequiresGradient(false));
            System.out.printf(Locale.ROOT, "BENCH full-parameter forward+backward %dx%d: %.1f ms wall, %.1f ms process CPU (%.0f tokens/s)%n",
                    batch, tokens, full[0] * 1e3, full[1] * 1e3, batch * tokens / full[0]);

            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(8)
                    .alpha(64).dropout(dropout).init(LoraInit.GAUSSIAN).seed(1).build(), manager)) {
                double[] loraPass = timeTrainingPass(manager, model, flat, batch, tokens, runs, lora.parameters().values());
                System.out.printf(Locale.ROOT, "BENCH LoRA QKVGUD r=8 (dropout %.2f) forward+backward %dx%d: %.1f ms wall, %.1f ms process CPU (%.0f tokens/s)%n",
                        dropout, batch, tokens, loraPass[0] * 1e3, loraPass[1] * 1e3, batch * tokens / loraPass[0]);

                List<long[]> ps = new ArrayList<>();
                for (int b = 0; b < prompts; b++) {
                    long[] p = new long[48];
                    p[0] = 1;
                    for (int t = 1; t < p.length; t++) {
                        p[t] = 8 + rnd.nextInt(vocab - 8);
                    }
                    ps.add(p);
                }
                Generator generator = new Generator(model);
                SamplingConfig greedy = SamplingConfig.greedy(fresh).withStopTokenIds(List.of()).withPadTokenId(3);
                generator.generate(ps, SamplingConfig.greedy(4).withStopTokenIds(List.of()).withPadTokenId(3));
                double[] wall = new double[Math.max(1, runs / 2)];
                double[] cpu = new double[wall.length];
                for (int r = 0; r < wall.length; r++) {
                    long t0 = System.nanoTime();
                    long c0 = processCpuNanos();
                    generator.generate(ps, greedy);
                    wall[r] = (System.nanoTime() - t0) / 1e9;
                    cpu[r] = (processCpuNanos() - c0) / 1e9;
                }
                double gen = median(wall);
                System.out.printf(Locale.ROOT, "BENCH greedy generation %d prompts x 48 + %d new tokens (with LoRA): "
                        + "%.2f s wall, %.2f s process CPU (%.0f new tokens/s)%n", prompts, fresh, gen, median(cpu),
                        prompts * fresh / gen);
            }
        }
    }

    /** Median wall and process-CPU seconds of a training pass (CPU time is the figure that survives a busy machine). */
    private static double[] timeTrainingPass(NDManager manager, DecoderModel model, long[] flat, int batch, int tokens,
            int runs, Iterable<NDArray> params) {
        double[] times = new double[runs];
        double[] cpu = new double[runs];
        for (int r = -1; r < runs; r++) {
            try (NDManager step = manager.newSubManager()) {
                long t0 = System.nanoTime();
                long c0 = processCpuNanos();
                NDArray ids = step.create(flat, new Shape(batch, tokens));
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                    NDArray logits = model.forward(ids, null, true);
                    NDArray loss = CausalLmLoss.mean(logits, ids);
                    gc.backward(loss);
                }
                for (NDArray p : params) {
                    p.getGradient().sum().getFloat(); // wait for the backward pass
                    break;
                }
                if (r >= 0) {
                    times[r] = (System.nanoTime() - t0) / 1e9;
                    cpu[r] = (processCpuNanos() - c0) / 1e9;
                }
                Gradients.zero(params);
            }
        }
        return new double[] {median(times), median(cpu)};
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                .getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
