package ai.lorapar.examples.cli;

import ai.lorapar.examples.Evaluate;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code lorapar eval}: GSM8K exact match of a model (+ adapter), per system with labels; the {@code Evaluate} program's code. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Exact-match accuracy on GSM8K-format data (question, answer with '#### N').",
            "Decodes every prompt greedily in batches, takes the number in <answer>…</answer>, after '####' or the last "
                + "number of the output, and compares it with the reference's number after '####'. With --labels (a file "
                + "written by 'label'), the accuracy of each system too."})
final class EvalCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DATA.jsonl", description = "examples to evaluate (e.g. test.jsonl from 'data')")
    Path data;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "Hugging Face model folder with tokenizer.json (default: the embedded tiny model, once it has "
                    + "weights)")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT LoRA adapter to apply (e.g. OUT/adapter from 'train')")
    Path adapter;

    @Option(names = "--labels", paramLabel = "LABELLED.jsonl", description = "labels matched by question text: accuracy per system")
    Path labels;

    @Option(names = "--max-new", paramLabel = "N", defaultValue = "256", description = "answer tokens (default: ${DEFAULT-VALUE})")
    int maxNew;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "64", description = "prompts decoded together (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--template", paramLabel = "T", 
            description = "prompt template: plain, chatml, llama2-chat, or embedded (the embedded tiny model's, which it "
                    + "was trained on); default: embedded without --model, else plain")
    String template;

    @Option(names = "--system-prompt", paramLabel = "TEXT", description = "system prompt (default: none)")
    String systemPrompt;

    @Option(names = "--limit", paramLabel = "N", description = "evaluate the first N examples only")
    Integer limit;

    @Option(names = {"-o", "--out"}, paramLabel = "FILE", description = "one JSON record per example (reference, extracted, output)")
    Path out;

    @Option(names = "--device", paramLabel = "D", description = "cpu or gpu (default: gpu when there is one)")
    String device;

    @Override
    public Integer call() throws Exception {
        Path modelDir = CliOptions.modelFolder(model, out != null && out.toAbsolutePath().getParent() != null
                ? out.toAbsolutePath().getParent() : Path.of("."));
        int total = limit == null ? Integer.MAX_VALUE : limit;
        ProgressBar[] bar = new ProgressBar[1];
        try {
            Evaluate.run(new Evaluate.Options(modelDir, data, adapter, labels, maxNew, batch,
                    template != null ? template : model == null ? "embedded" : "plain", systemPrompt, total,
                    out, CliOptions.device(device)), spec.commandLine().getOut(), (done, all) -> {
                        if (bar[0] == null) {
                            bar[0] = new ProgressBar("eval", all);
                        }
                        bar[0].update(done);
                    });
        } finally {
            if (bar[0] != null) {
                bar[0].close();
            }
        }
        return 0;
    }
}
