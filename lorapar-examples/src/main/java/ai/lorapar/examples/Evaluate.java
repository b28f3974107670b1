package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.eval.EvalReport;
import ai.lorapar.eval.Gsm8kEvaluator;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.tokenizer.PromptTemplate;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * GSM8K exact match of a local model folder (optionally with a PEFT LoRA adapter) on a JSONL file of
 * {@code {question, answer}} records: batched greedy decoding, the final number of each output against the
 * number after {@code ####}, accuracy overall and, with {@code --labels}, per system.
 *
 * <pre>
 * Evaluate MODEL_DIR DATA.jsonl [--adapter DIR] [--labels LABELLED.jsonl] [--max-new 256] [--batch 64]
 *          [--template plain|llama2-chat|chatml] [--system-prompt TEXT] [--limit N] [--out report.jsonl]
 * </pre>
 * {@code --labels} takes a file written by {@code LabelDataset}; its labels are matched to the examples by
 * question text. {@code --out} writes one JSON record per example (reference, extracted answer, output).
 */
public final class Evaluate {
    private Evaluate() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Evaluate MODEL_DIR DATA.jsonl [--adapter DIR] [--labels LABELLED.jsonl] "
                    + "[--max-new 256] [--batch 64] [--template plain] [--system-prompt TEXT] [--limit N] [--out FILE]");
            System.exit(2);
        }
        Path modelDir = Path.of(args[0]);
        Path data = Path.of(args[1]);
        Path adapter = null;
        Path labelsFile = null;
        Path out = null;
        int maxNew = 256;
        int batch = 64;
        int limit = Integer.MAX_VALUE;
        String template = "plain";
        String systemPrompt = null;
        for (int i = 2; i < args.length; i++) {
            switch (args[i]) {
                case "--adapter" -> adapter = Path.of(args[++i]);
                case "--labels" -> labelsFile = Path.of(args[++i]);
                case "--max-new" -> maxNew = Integer.parseInt(args[++i]);
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--template" -> template = args[++i];
                case "--system-prompt" -> systemPrompt = args[++i];
                case "--limit" -> limit = Integer.parseInt(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                default -> {
                    System.err.println("unknown option " + args[i]);
                    System.exit(2);
                }
            }
        }
        List<Example> examples = JsonlExamples.read(data, limit);
        Map<String, SystemLabel> labels = new HashMap<>();
        if (labelsFile != null) {
            Map<String, SystemLabel> byQuestion = new HashMap<>();
            LabelledJsonl.readByLabel(labelsFile).forEach((label, list) -> list.forEach(e -> byQuestion.put(e.question(), label)));
            for (Example e : examples) {
                SystemLabel l = byQuestion.get(e.question());
                if (l != null) {
                    labels.put(e.id(), l);
                }
            }
            System.out.printf(Locale.ROOT, "labels: %d of %d examples found in %s%n", labels.size(), examples.size(),
                    labelsFile);
        }
        Device device = Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        try (NDManager manager = NDManager.newBaseManager(device);
                CausalLM lm = CausalLM.load(modelDir, manager);
                LoraModel lora = adapter == null ? null : LoraModel.load(adapter, lm.model(), manager)) {
            if (lm.tokenizer() == null) {
                System.err.println(modelDir + " has no tokenizer.json");
                System.exit(2);
            }
            ExampleEncoder encoder = ExampleEncoder.builder(lm.tokenizer()).template(PromptTemplate.named(template))
                    .systemPrompt(systemPrompt).vocabSize(lm.model().config().vocabSize()).build();
            Gsm8kEvaluator evaluator = Gsm8kEvaluator.builder().encoder(encoder).maxNewTokens(maxNew).batchSize(batch)
                    .build();
            Generator generator = lm.generator();
            long t0 = System.nanoTime();
            EvalReport report = evaluator.evaluate(generator, examples, labels);
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "%s%s on %s: %s%n", modelDir.getFileName(),
                    lora == null ? "" : " + adapter " + adapter.getFileName(), data.getFileName(), report.format());
            System.out.printf(Locale.ROOT, "answers found by: %s; %d examples in %.1f s on %s (%s), decode steps: %s%n",
                    report.methodCounts(), report.total(), s, device, lm.model().dtype(), generator.lastDecodePath());
            if (out != null) {
                report.writeJsonl(out);
                System.out.println("records written to " + out);
            }
        }
    }
}
