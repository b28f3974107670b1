package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedDataset;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.engine.CudaMemory;
import ai.lorapar.engine.Profiler;
import ai.lorapar.importance.ImportanceAccumulator;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.importance.ImportanceScorer;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.train.Gradients;
import ai.lorapar.engine.EngineSupport;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Importance scoring speed, the shape of {@code peer_anchor.py imp}: a random-weight model of the peer's
 * shape, LoRA QKVGUD r = 8, α = 64 with Gaussian init, random token sequences of {@code --tokens}
 * tokens whose first half is the prompt (labels −100), as the peer's {@code labels[:, :T//2] = -100}.
 * The peer takes one backward pass per example (0.161 s per example on the Qwen2.5-0.5B shape, 0.265 s
 * on LLaMA-2-7B, H200); {@link ImportanceScorer} takes one per batch, with per-example gradients.
 *
 * <pre>
 * ImportanceBenchmark [--shape qwen2.5-0.5b|llama2-7b|MODEL_DIR[,...]] [--examples 64] [--tokens 256]
 *     [--batch 16] [--dtype bf16|fp16|fp32] [--device gpu|cpu] [--check-naive K] [--profile DIR]
 * </pre>
 *
 * Prints {@code BENCH importance <shape> s_per_example=… batch=… peak_gib=…} after one warm-up batch;
 * several shapes separated by commas run one after the other (one failing does not stop the others).
 * A folder as {@code --shape} takes the shape of its config.json (random weights; for CPU smoke runs
 * on a fixture). {@code --check-naive K} also scores K examples with a plain loop, one forward and
 * backward pass per example through the shared A and B, and prints the largest difference to the
 * batched scores relative to the largest importance ({@code BENCH importance-check …}), in the
 * compute dtype of the run: the base model in {@code --dtype} (default: bf16 on a GPU that has it,
 * else fp32), the LoRA parameters, gradients and sums in fp32. With a bf16 base, a batch and a single
 * row round differently in the base's products, so expect differences of bf16's order there;
 * {@code --dtype fp32} compares the definitions themselves.
 */
public final class ImportanceBenchmark {
    private ImportanceBenchmark() {}

    public static void main(String[] args) throws Exception {
        String shape = BenchmarkModels.QWEN25_05B;
        int examples = 64;
        int tokens = 256;
        int batch = ImportanceScorer.DEFAULT_BATCH_SIZE;
        int checkNaive = 0;
        DataType dtype = null;
        Path profileDir = null;
        Device device = EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        for (int i = 0; i < args.length; i++) {
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + args[i] + " needs a value");
            }
            String v = args[++i];
            switch (args[i - 1]) {
                case "--shape" -> shape = v;
                case "--examples" -> examples = Integer.parseInt(v);
                case "--tokens" -> tokens = Integer.parseInt(v);
                case "--batch" -> batch = Integer.parseInt(v);
                case "--check-naive" -> checkNaive = Integer.parseInt(v);
                case "--device" -> device = "gpu".equals(v) ? Device.gpu() : Device.cpu();
                case "--profile" -> profileDir = Path.of(v);
                case "--dtype" -> dtype = switch (v) {
                    case "bf16" -> DataType.BFLOAT16;
                    case "fp16" -> DataType.FLOAT16;
                    case "fp32" -> DataType.FLOAT32;
                    default -> throw new IllegalArgumentException("unknown --dtype " + v + " (bf16, fp16, fp32)");
                };
                default -> throw new IllegalArgumentException("unknown option " + args[i - 1]);
            }
        }
        if (tokens < 2 || examples < 1 || batch < 1 || checkNaive < 0) {
            throw new IllegalArgumentException("need --tokens >= 2, --examples >= 1, --batch >= 1, --check-naive >= 0");
        }
        int failed = 0;
        for (String one : shape.split(",")) {
            try {
                run(one.trim(), examples, tokens, batch, checkNaive, dtype, device, profileDir);
            } catch (Exception | OutOfMemoryError e) {
                // one shape failing (say, out of device memory) must not cost the others their figures
                failed++;
                System.out.printf(Locale.ROOT, "BENCH importance %s FAILED: %s%n", one.trim(), e);
                e.printStackTrace();
            }
        }
        if (failed > 0) {
            System.exit(1);
        }
    }

    private static void run(String shape, int examples, int tokens, int batch, int checkNaive, DataType dtype,
            Device device, Path profileDir) throws Exception {
        Path folder = Path.of(shape);
        boolean fromFolder = Files.isRegularFile(folder.resolve("config.json"));
        ModelConfig config = fromFolder ? ModelConfig.load(folder) : BenchmarkModels.config(shape);
        String label = shape;
        boolean memory = device.isGpu() && CudaMemory.isAvailable(Engine.getInstance());

        try (NDManager manager = EngineSupport.newBaseManager(device);
                DecoderModel model = DecoderModel.random(config, manager, dtype, 0);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(8)
                        .alpha(64).init(LoraInit.GAUSSIAN).seed(0).build(), manager)) {
            System.out.printf(Locale.ROOT, "importance on %s (%s base, fp32 LoRA QKVGUD r=8 alpha=64 Gaussian, %,d"
                    + " elements): %d examples x %d tokens (answer = last %d), batch %d; engine %s %s; %s %s%n", label,
                    model.dtype(), lora.parameterCount(), examples, tokens, tokens - tokens / 2, batch,
                    Engine.getInstance().getEngineName(), Engine.getInstance().getVersion(), CudaMemory.CAPABILITY,
                    memory ? "yes" : "no");
            List<EncodedExample> data = randomExamples(Math.max(examples, checkNaive), tokens, config.vocabSize(), 1);

            // warm-up: one batch (kernels, allocator pools)
            ImportanceScorer warm = ImportanceScorer.builder().examples(Math.min(batch, examples), 0).batchSize(batch)
                    .build();
            try (ImportanceMap m = warm.score(lora, dataset(data.subList(0, Math.min(batch, examples))))) {
                sync(m);
            }
            if (memory) {
                CudaMemory.resetPeak(device);
            }
            ImportanceScorer scorer = ImportanceScorer.builder().examples(examples, 0).batchSize(batch).build();
            long t0 = System.nanoTime();
            try (ImportanceMap m = scorer.score(lora, dataset(data.subList(0, examples)))) {
                sync(m);
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            String peak = memory ? String.format(Locale.ROOT, "%.2f", CudaMemory.peakAllocatedBytes(device) / 1073741824.0)
                    : "n/a";
            System.out.printf(Locale.ROOT, "BENCH importance %s s_per_example=%.4f batch=%d examples=%d tokens=%d"
                    + " base=%s peak_gib=%s total_s=%.2f%n", label, seconds / examples, batch, examples, tokens,
                    name(model.dtype()), peak, seconds);

            if (profileDir != null && Profiler.isAvailable(manager.getEngine())) {
                // one more batch under torch's profiler: every op and kernel, as a Chrome trace
                Files.createDirectories(profileDir);
                Path trace = profileDir.resolve("importance-" + folder.getFileName() + ".json");
                ImportanceScorer one = ImportanceScorer.builder().examples(Math.min(batch, examples), 0)
                        .batchSize(batch).build();
                Profiler.start(device.isGpu());
                try (ImportanceMap m = one.score(lora, dataset(data.subList(0, Math.min(batch, examples))))) {
                    sync(m);
                }
                Profiler.stop(trace);
                System.out.printf(Locale.ROOT, "profile of one batch: %s%n", trace);
            }
            if (checkNaive > 0) {
                check(lora, label, data.subList(0, checkNaive), batch);
            }
        }
    }

    /**
     * Scores {@code rows} in batches and with one backward pass per example, and prints the largest
     * difference relative to the largest importance, and Σ|difference| / Σ importance.
     */
    private static void check(LoraModel lora, String label, List<EncodedExample> rows, int batch) {
        DecoderModel model = lora.model();
        Map<String, NDArray> params = lora.parameters();
        ImportanceScorer scorer = ImportanceScorer.builder().examples(rows.size(), 0).batchSize(batch).build();
        try (ImportanceMap batched = scorer.score(lora, dataset(rows));
                ImportanceAccumulator acc = new ImportanceAccumulator(model.manager())) {
            long t0 = System.nanoTime();
            for (EncodedExample row : rows) {
                Gradients.zero(params.values());
                try (NDManager scope = model.manager().newSubManager();
                        TokenBatch one = TokenBatch.of(List.of(row), 0, scope)) {
                    try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                        NDArray logits = model.forward(one.inputIds(), one.attentionMask(), false);
                        gc.backward(CausalLmLoss.mean(logits, one.labels()));
                    }
                    Map<String, NDArray> grads = new java.util.LinkedHashMap<>();
                    for (Map.Entry<String, NDArray> e : params.entrySet()) {
                        NDArray g = e.getValue().getGradient();
                        g.attach(scope);
                        grads.put(e.getKey(), g);
                    }
                    acc.add(params, grads);
                }
            }
            Gradients.zero(params.values());
            try (ImportanceMap naive = acc.result()) {
                sync(naive);
                double naiveSeconds = (System.nanoTime() - t0) / 1e9;
                double maxDiff = 0;
                double maxImportance = 0;
                double sumDiff = 0;
                double sumImportance = 0;
                try (NDManager s = model.manager().newSubManager()) {
                    for (String name : naive.names()) {
                        NDArray n = naive.get(name);
                        NDArray d = batched.get(name).sub(n).abs();
                        d.attach(s);
                        maxDiff = Math.max(maxDiff, d.max().getFloat());
                        sumDiff += d.sum().getFloat();
                        NDArray nm = n.max();
                        NDArray ns = n.sum();
                        nm.attach(s);
                        ns.attach(s);
                        maxImportance = Math.max(maxImportance, nm.getFloat());
                        sumImportance += ns.getFloat();
                    }
                }
                System.out.printf(Locale.ROOT, "BENCH importance-check %s examples=%d batch=%d max_rel_diff=%.3g"
                        + " sum_rel_diff=%.3g naive_s_per_example=%.4f compared=%s base, fp32 LoRA/gradients/sums"
                        + " (max |batched - one backward per example| / max importance)%n", label, rows.size(), batch,
                        maxDiff / maxImportance, sumDiff / sumImportance, naiveSeconds / rows.size(),
                        name(model.dtype()));
            }
        }
    }

    /** Random ids, the first half of each row the prompt, as the peer's random batch. */
    static List<EncodedExample> randomExamples(int n, int tokens, int vocab, long seed) {
        Random rnd = new Random(seed);
        List<EncodedExample> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            long[] ids = new long[tokens];
            for (int t = 0; t < tokens; t++) {
                ids[t] = rnd.nextInt(vocab);
            }
            out.add(new EncodedExample(Example.of("random-" + i, "", ""), ids, tokens / 2, false));
        }
        return out;
    }

    private static EncodedDataset dataset(List<EncodedExample> rows) {
        return new EncodedDataset(rows, List.of(), 0);
    }

    /** Waits for the device: reads one value back. */
    private static void sync(ImportanceMap map) {
        try (NDArray s = map.tensors().values().iterator().next().sum()) {
            s.getFloat();
        }
    }

    private static String name(DataType t) {
        return switch (t) {
            case BFLOAT16 -> "bf16";
            case FLOAT16 -> "fp16";
            case FLOAT32 -> "fp32";
            default -> t.toString();
        };
    }
}
