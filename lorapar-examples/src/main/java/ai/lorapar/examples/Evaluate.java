package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.eval.EvalReport;
import ai.lorapar.eval.Gsm8kEvaluator;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.tokenizer.PromptTemplate;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * GSM8K exact match of a local model folder (optionally with a PEFT LoRA adapter) on a JSONL file of
 * {@code {question, answer}} records: batched greedy decoding, the final number of each output against the
 * number after {@code ####}, accuracy overall and, with {@code --labels}, per system. {@code lorapar eval}
 * runs the same code ({@link #run}).
 *
 * <pre>
 * Evaluate MODEL_DIR DATA.jsonl [--adapter DIR] [--labels LABELLED.jsonl] [--max-new 256] [--batch 64]
 *          [--template plain|llama2-chat|chatml|embedded] [--system-prompt TEXT] [--limit N] [--out report.jsonl]
 * </pre>
 * {@code --labels} takes a file written by {@code LabelDataset} (or {@code lorapar label}); its labels are
 * matched to the examples by question text. {@code --out} writes one JSON record per example (reference,
 * extracted answer, output).
 */
public final class Evaluate {
    private Evaluate() {}

    /**
     * What to evaluate.
     *
     * @param model a Hugging Face model folder with its tokenizer.json
     * @param data GSM8K-format JSONL ({@code question}, {@code answer} with {@code #### N})
     * @param adapter a PEFT adapter folder to apply, or null
     * @param labels a labelled JSONL whose labels are matched to the examples by question text, or null
     * @param maxNewTokens the answer budget
     * @param batchSize prompts decoded together
     * @param template the prompt template's name ({@link PromptTemplate#named}, or {@code embedded}: the embedded tiny
     *     model's, {@code EmbeddedDefault.promptTemplate()})
     * @param systemPrompt a system prompt, or null
     * @param limit the first examples evaluated
     * @param out a JSONL file for one record per example, or null
     * @param device where the model runs, or null (a GPU when there is one)
     */
    public record Options(Path model, Path data, Path adapter, Path labels, int maxNewTokens, int batchSize,
            String template, String systemPrompt, int limit, Path out, Device device) {
        public Options {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(data, "data");
            Objects.requireNonNull(template, "template");
        }
    }

    /**
     * Evaluates as {@code options} say, printing what it found and the accuracy to {@code out}.
     *
     * @param progress told after every batch, or null
     * @throws IllegalArgumentException for a model folder without tokenizer.json or an example without {@code ####}
     */
    public static EvalReport run(Options options, PrintWriter out, Gsm8kEvaluator.Progress progress) throws IOException {
        List<Example> examples = JsonlExamples.read(options.data(), options.limit());
        Map<String, SystemLabel> labels = new HashMap<>();
        if (options.labels() != null) {
            Map<String, SystemLabel> byQuestion = new HashMap<>();
            LabelledJsonl.readByLabel(options.labels())
                    .forEach((label, list) -> list.forEach(e -> byQuestion.put(e.question(), label)));
            for (Example e : examples) {
                SystemLabel l = byQuestion.get(e.question());
                if (l != null) {
                    labels.put(e.id(), l);
                }
            }
            out.printf(Locale.ROOT, "labels: %d of %d examples found in %s%n", labels.size(), examples.size(),
                    options.labels());
        }
        Device device = options.device() != null ? options.device()
                : EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        try (NDManager manager = EngineSupport.newBaseManager(device);
                CausalLM lm = CausalLM.load(options.model(), manager);
                LoraModel lora = options.adapter() == null ? null : LoraModel.load(options.adapter(), lm.model(), manager)) {
            if (!lm.hasTokenizer()) {
                throw new IllegalArgumentException(options.model() + " has no tokenizer.json");
            }
            ExampleEncoder encoder = ExampleEncoder.builder(lm.tokenizer()).template(ai.lorapar.examples.pipeline.ModelHandle.template(options.template()))
                    .systemPrompt(options.systemPrompt()).vocabSize(lm.model().config().vocabSize()).build();
            Gsm8kEvaluator evaluator = Gsm8kEvaluator.builder().encoder(encoder).maxNewTokens(options.maxNewTokens())
                    .batchSize(options.batchSize()).progress(progress).build();
            Generator generator = lm.generator();
            long t0 = System.nanoTime();
            EvalReport report = evaluator.evaluate(generator, examples, labels);
            double s = (System.nanoTime() - t0) / 1e9;
            out.printf(Locale.ROOT, "%s%s on %s: %s%n", options.model().getFileName(),
                    lora == null ? "" : " + adapter " + options.adapter().getFileName(), options.data().getFileName(),
                    report.format());
            out.printf(Locale.ROOT, "answers found by: %s; %d examples in %.1f s on %s (%s), decode steps: %s%n",
                    report.methodCounts(), report.total(), s, device, lm.model().dtype(), generator.lastDecodePath());
            if (options.out() != null) {
                report.writeJsonl(options.out());
                out.println("records written to " + options.out());
            }
            out.flush();
            return report;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Evaluate MODEL_DIR DATA.jsonl [--adapter DIR] [--labels LABELLED.jsonl] "
                    + "[--max-new 256] [--batch 64] [--template plain|embedded] [--system-prompt TEXT] [--limit N] [--out FILE]");
            System.exit(2);
        }
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
        run(new Options(Path.of(args[0]), Path.of(args[1]), adapter, labelsFile, maxNew, batch, template, systemPrompt,
                limit, out, null), new PrintWriter(System.out, true), null);
    }
}
