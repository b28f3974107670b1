package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.importance.ImportanceListener;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.importance.ImportanceScorer;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.engine.EngineSupport;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Scores the element-wise LoRA importance of both systems of a labelled JSONL file (written by
 * {@code LabelDataset} / {@code LabelledDataset.writeJsonl}) and writes the two maps, the input of
 * the partition stage.
 *
 * <pre>
 * ScoreImportance MODEL_DIR LABELLED.jsonl OUT_DIR [--examples 100] [--seed 42] [--batch 16]
 *     [--rank 8] [--alpha 64] [--init gaussian|pissa|olora] [--targets QKVGUD|QKV|GUD|QKVOGUD]
 *     [--template plain|chatml|llama2-chat] [--max-length 512] [--tokenizer DIR] [--device cpu|gpu]
 * </pre>
 *
 * Writes {@code OUT_DIR/importance_system1.safetensors}, {@code OUT_DIR/importance_system2.safetensors}
 * ({@link ImportanceMap#save}) and {@code OUT_DIR/adapter_init} (the adapters the maps were scored on,
 * in PEFT's format, so that the maps can be related to them), and prints a summary per system. The
 * tokenizer is the model folder's {@code tokenizer.json} unless {@code --tokenizer} names another
 * folder. LoRA is initialised with {@code --seed} too.
 */
public final class ScoreImportance {
    private ScoreImportance() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ScoreImportance MODEL_DIR LABELLED.jsonl OUT_DIR [--examples 100] [--seed 42]"
                    + " [--batch 16] [--rank 8] [--alpha 64] [--init gaussian|pissa|olora] [--targets QKVGUD]"
                    + " [--template plain|chatml|llama2-chat] [--max-length 512] [--tokenizer DIR] [--device cpu|gpu]");
            System.exit(2);
        }
        Path modelDir = Path.of(args[0]);
        Path labelled = Path.of(args[1]);
        Path out = Path.of(args[2]);
        Path tokenizerDir = modelDir;
        int examples = ImportanceScorer.DEFAULT_EXAMPLES;
        long seed = ImportanceScorer.DEFAULT_SEED;
        int batch = ImportanceScorer.DEFAULT_BATCH_SIZE;
        int rank = 8;
        double alpha = 64;
        LoraInit init = LoraInit.GAUSSIAN;
        LoraTargets targets = LoraTargets.QKVGUD;
        String template = "plain";
        int maxLength = 512;
        Device device = EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        for (int i = 3; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            if (value == null) {
                throw new IllegalArgumentException("option " + args[i] + " needs a value");
            }
            switch (args[i]) {
                case "--examples" -> examples = Integer.parseInt(value);
                case "--seed" -> seed = Long.parseLong(value);
                case "--batch" -> batch = Integer.parseInt(value);
                case "--rank" -> rank = Integer.parseInt(value);
                case "--alpha" -> alpha = Double.parseDouble(value);
                case "--init" -> init = LoraInit.valueOf(value.toUpperCase(Locale.ROOT));
                case "--targets" -> targets = targets(value);
                case "--template" -> template = value;
                case "--max-length" -> maxLength = Integer.parseInt(value);
                case "--tokenizer" -> tokenizerDir = Path.of(value);
                case "--device" -> device = "gpu".equals(value) ? Device.gpu() : Device.cpu();
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
            i++;
        }
        if (init == LoraInit.STANDARD) {
            System.err.println("note: standard init (B = 0) gives zero importance everywhere; the scorer will refuse it");
        }
        Map<SystemLabel, List<Example>> bySystem = LabelledJsonl.readByLabel(labelled);
        System.out.printf(Locale.ROOT, "%s: %d System1 and %d System2 examples%n", labelled,
                bySystem.get(SystemLabel.SYSTEM_1).size(), bySystem.get(SystemLabel.SYSTEM_2).size());
        Files.createDirectories(out);
        try (NDManager manager = EngineSupport.newBaseManager(device);
                DecoderModel model = DecoderModel.load(modelDir, manager);
                TextTokenizer tokenizer = TextTokenizer.load(tokenizerDir);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(targets).rank(rank).alpha(alpha)
                        .init(init).seed(seed).build(), manager)) {
            System.out.printf(Locale.ROOT, "model %s on %s (%s), LoRA %s r=%d alpha=%s init=%s: %,d elements%n",
                    modelDir, model.device(), model.dtype(), targets, rank, alpha, init, lora.parameterCount());
            Path adapterInit = out.resolve("adapter_init");
            lora.save(adapterInit);       // PEFT's files, for other tools (PiSSA/OLoRA exported as rank 2r)
            lora.saveNative(adapterInit); // the same adapters at rank r, for --adapter-init
            ExampleEncoder encoder = ExampleEncoder.builder(tokenizer).template(PromptTemplate.named(template))
                    .maxLength(maxLength).vocabSize(model.config().vocabSize()).build();
            ImportanceScorer scorer = ImportanceScorer.builder().encoder(encoder).examples(examples, seed)
                    .batchSize(batch).listener(progress()).build();
            for (SystemLabel system : SystemLabel.values()) {
                long t0 = System.nanoTime();
                try (ImportanceMap map = scorer.score(lora, system, bySystem.get(system))) {
                    Path file = out.resolve("importance_" + system.text().toLowerCase(Locale.ROOT) + ".safetensors");
                    map.save(file);
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    double sum = 0;
                    double max = 0;
                    for (NDArray a : map.tensors().values()) {
                        sum += a.sum().getFloat();
                        max = Math.max(max, a.max().getFloat());
                    }
                    System.out.printf(Locale.ROOT, "%s: %d examples, %,d elements, sum %.6g, max %.6g, %.2f s"
                            + " (%.3f s per example) -> %s%n", system.text(), map.numExamples(), map.elementCount(), sum,
                            max, seconds, seconds / map.numExamples(), file);
                }
            }
            System.out.println("adapter the maps were scored on: " + adapterInit);
        }
    }

    private static LoraTargets targets(String name) {
        return switch (name.toUpperCase(Locale.ROOT)) {
            case "QKV" -> LoraTargets.QKV;
            case "GUD" -> LoraTargets.GUD;
            case "QKVGUD" -> LoraTargets.QKVGUD;
            case "QKVOGUD" -> LoraTargets.QKVOGUD;
            default -> throw new IllegalArgumentException("unknown --targets " + name + " (QKV, GUD, QKVGUD, QKVOGUD)");
        };
    }

    /** One line per system, updated in place after each batch. */
    private static ImportanceListener progress() {
        return (source, done, total) -> {
            System.out.printf(Locale.ROOT, "\r%s: %d/%d examples scored", source, done, total);
            if (done == total) {
                System.out.println();
            }
            System.out.flush();
        };
    }
}
