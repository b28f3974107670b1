package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.train.LearningRateSchedule;
import ai.lorapar.train.MetricsJsonl;
import ai.lorapar.train.SftConfig;
import ai.lorapar.train.SftTrainer;
import ai.lorapar.train.StageReport;
import ai.lorapar.train.TrainingListener;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * LoRA-PAR's stage 1 alone: SFT of LoRA adapters on the System-1 examples of a labelled JSONL file
 * (written by {@code LabelDataset}), under the stage-1 mask of a partition when given.
 *
 * <pre>
 * TrainSft MODEL_DIR LABELLED.jsonl OUT_DIR [--masks masks.safetensors] [--adapter-init DIR] [--steps N] ...
 * </pre>
 * Writes {@code OUT_DIR/adapter} (PEFT), {@code OUT_DIR/metrics.jsonl} and checkpoints under
 * {@code OUT_DIR/checkpoints} (a rerun with the same arguments resumes from them).
 *
 * <p>Options: --masks FILE (StageMasks; stage 1 is used), --adapter-init DIR (start from a PEFT adapter,
 * e.g. the one importance was scored with, instead of a fresh one), --label System1|System2|all
 * (default System1), --tokenizer DIR (default MODEL_DIR), --template plain|chatml|llama2-chat, --system
 * TEXT, --max-length N (512), --steps N (default: whole epochs), --epochs N (1), --lr X (2e-4), --warmup R
 * (0.03), --micro-batch N (8), --accumulation N (4), --weight-decay X (0), --max-grad-norm X (1),
 * --per-example-loss, --group-by-length, --rank R (8), --alpha A (64), --dropout P (0.05), --init
 * gaussian|standard|pissa|olora, --targets QKVGUD|QKV|GUD|QKVOGUD, --seed S (42), --checkpoint-every N
 * (100), --log-every N (10), --device cpu|gpu, --dtype fp32|bf16|fp16.
 */
public final class TrainSft {
    private TrainSft() {}

    private static void usage(String problem) {
        System.err.println("TrainSft: " + problem);
        System.err.println("usage: TrainSft MODEL_DIR LABELLED.jsonl OUT_DIR [--masks FILE] [--adapter-init DIR] "
                + "[--steps N] [options; see the class comment]");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        List<String> positional = new ArrayList<>();
        Map<String, String> opt = new java.util.HashMap<>();
        List<String> flags = List.of("--per-example-loss", "--group-by-length");
        for (int i = 0; i < args.length; i++) {
            if (flags.contains(args[i])) {
                opt.put(args[i], "true");
            } else if (args[i].startsWith("--")) {
                if (i + 1 >= args.length) {
                    usage(args[i] + " needs a value");
                }
                opt.put(args[i], args[++i]);
            } else {
                positional.add(args[i]);
            }
        }
        if (positional.size() != 3) {
            usage("MODEL_DIR, LABELLED.jsonl and OUT_DIR are required");
        }
        Path modelDir = Path.of(positional.get(0));
        Path labelled = Path.of(positional.get(1));
        Path out = Path.of(positional.get(2));

        String label = opt.getOrDefault("--label", "System1");
        Map<SystemLabel, List<Example>> byLabel = LabelledJsonl.readByLabel(labelled);
        List<Example> examples = new ArrayList<>();
        if (label.equalsIgnoreCase("all")) {
            byLabel.values().forEach(examples::addAll);
        } else {
            examples.addAll(byLabel.get(SystemLabel.fromText(label)));
        }
        if (examples.isEmpty()) {
            usage(labelled + " has no " + label + " examples");
        }

        SftConfig.Builder cfg = SftConfig.builder()
                .learningRate(Double.parseDouble(opt.getOrDefault("--lr", "2e-4")))
                .schedule(LearningRateSchedule.cosine(Double.parseDouble(opt.getOrDefault("--warmup", "0.03"))))
                .microBatchSize(Integer.parseInt(opt.getOrDefault("--micro-batch", "8")))
                .gradientAccumulation(Integer.parseInt(opt.getOrDefault("--accumulation", "4")))
                .epochs(Integer.parseInt(opt.getOrDefault("--epochs", "1")))
                .maxSteps(Long.parseLong(opt.getOrDefault("--steps", "0")))
                .weightDecay(Double.parseDouble(opt.getOrDefault("--weight-decay", "0")))
                .maxGradNorm(Double.parseDouble(opt.getOrDefault("--max-grad-norm", "1")))
                .seed(Long.parseLong(opt.getOrDefault("--seed", "42")))
                .loggingSteps(Integer.parseInt(opt.getOrDefault("--log-every", "10")))
                .groupByLength(opt.containsKey("--group-by-length"))
                .lossNormalization(opt.containsKey("--per-example-loss") ? SftConfig.LossNormalization.PER_EXAMPLE
                        : SftConfig.LossNormalization.PER_TOKEN);
        int checkpointEvery = Integer.parseInt(opt.getOrDefault("--checkpoint-every", "100"));
        Device device = Device.fromName(opt.getOrDefault("--device", "cpu"));

        try (NDManager manager = NDManager.newBaseManager(device);
                TextTokenizer tokenizer = TextTokenizer.load(Path.of(opt.getOrDefault("--tokenizer", modelDir.toString())))) {
            DataType dtype = switch (opt.getOrDefault("--dtype", "").toLowerCase(Locale.ROOT)) {
                case "" -> null;
                case "fp32", "float32" -> DataType.FLOAT32;
                case "bf16", "bfloat16" -> DataType.BFLOAT16;
                case "fp16", "float16" -> DataType.FLOAT16;
                default -> throw new IllegalArgumentException("--dtype must be fp32, bf16 or fp16");
            };
            try (DecoderModel model = DecoderModel.load(modelDir, manager, dtype);
                    LoraModel lora = opt.containsKey("--adapter-init")
                            ? (LoraModel.isNative(Path.of(opt.get("--adapter-init")))
                                    ? LoraModel.loadNative(Path.of(opt.get("--adapter-init")), model, manager,
                                            c -> c.toBuilder().dropout(Double.parseDouble(
                                                    opt.getOrDefault("--dropout", "0.05"))).build())
                                    : LoraModel.load(Path.of(opt.get("--adapter-init")), model, manager))
                            : LoraModel.apply(model, LoraConfig.builder()
                                    .targets(targets(opt.getOrDefault("--targets", "QKVGUD")))
                                    .rank(Integer.parseInt(opt.getOrDefault("--rank", "8")))
                                    .alpha(Double.parseDouble(opt.getOrDefault("--alpha", "64")))
                                    .dropout(Double.parseDouble(opt.getOrDefault("--dropout", "0.05")))
                                    .init(LoraInit.valueOf(opt.getOrDefault("--init", "gaussian").toUpperCase(Locale.ROOT)))
                                    .seed(Long.parseLong(opt.getOrDefault("--seed", "42")))
                                    .baseModelNameOrPath(modelDir.toString()).build(), manager);
                    StageMasks masks = opt.containsKey("--masks") ? StageMasks.load(Path.of(opt.get("--masks")), manager)
                            : null;
                    MetricsJsonl metrics = MetricsJsonl.open(out.resolve("metrics.jsonl"))) {
                ExampleEncoder.Builder enc = ExampleEncoder.builder(tokenizer)
                        .template(PromptTemplate.named(opt.getOrDefault("--template", "plain")))
                        .maxLength(Integer.parseInt(opt.getOrDefault("--max-length", "512")))
                        .vocabSize(model.config().vocabSize());
                if (opt.containsKey("--system")) {
                    enc.systemPrompt(opt.get("--system"));
                }
                Map<String, NDArray> stage1 = masks == null ? null : masks.stage1();
                System.out.printf("TrainSft: %d %s examples, %s on %s %s, %s trainable of %d%n", examples.size(), label,
                        lora.config(), model.device(), model.dtype(),
                        masks == null ? "all" : Long.toString(masks.stage1Count()), lora.parameterCount());
                StageReport r = SftTrainer.builder(lora, enc.build()).masks(stage1).config(cfg.build())
                        .checkpoints(out.resolve("checkpoints"), checkpointEvery)
                        .listener(TrainingListener.logging()).listener(metrics)
                        .listener(new TrainingListener() {
                            @Override
                            public void onStep(ai.lorapar.train.StepMetrics m) {
                                System.out.printf(Locale.ROOT, "step %d/%d  epoch %.2f  loss %.4f  lr %.3e  grad norm %.3f"
                                        + "  %.0f tokens/s%n", m.step(), m.totalSteps(), m.epoch(), m.loss(),
                                        m.learningRate(), m.gradNorm(), m.tokensPerSecond());
                            }
                        })
                        .build().train(examples);
                lora.save(out.resolve("adapter"));
                System.out.printf(Locale.ROOT, "TrainSft: %d/%d steps%s, final loss %.4f, %d tokens (%d answer), "
                        + "%d skipped, %.1f s; adapter in %s, metrics in %s%n", r.steps(), r.totalSteps(),
                        r.resumedFromStep() > 0 ? " (resumed after step " + r.resumedFromStep() + ")" : "", r.finalLoss(),
                        r.tokens(), r.answerTokens(), r.skippedExamples(), r.time().toMillis() / 1e3,
                        out.resolve("adapter"), metrics.file());
            }
        }
    }

    private static LoraTargets targets(String name) {
        return switch (name.toUpperCase(Locale.ROOT)) {
            case "QKV" -> LoraTargets.QKV;
            case "GUD" -> LoraTargets.GUD;
            case "QKVGUD" -> LoraTargets.QKVGUD;
            case "QKVOGUD" -> LoraTargets.QKVOGUD;
            default -> LoraTargets.modules(name.split(","));
        };
    }
}
