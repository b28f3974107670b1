package ai.lorapar.examples;

import ai.lorapar.engine.EngineSupport;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Generates continuations with a local Hugging Face model folder (LLaMA/Qwen2/Mistral, safetensors +
 * tokenizer.json), in one left-padded batch.
 *
 * <pre>
 * mvn -q -o -pl lorapar-examples exec:java -Dexec.mainClass=ai.lorapar.examples.Generate \
 *   -Dexec.args="/models/Qwen2.5-0.5B-Instruct --template chatml --max-new 64 'What is 7*6?' 'Name a prime.'"
 * </pre>
 * Options: --template plain|llama2-chat|chatml, --system TEXT, --tokenizer DIR (default: the model
 * folder), --max-new N, --temperature T (0 = greedy), --top-k K, --top-p P, --seed S.
 */
public final class Generate {
    private Generate() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Generate MODEL_DIR [options] PROMPT...");
            System.exit(2);
        }
        Path model = Path.of(args[0]);
        Path tokenizerDir = model;
        String template = "plain";
        String system = null;
        int maxNew = 64;
        double temperature = 0;
        int topK = 0;
        double topP = 1;
        Long seed = null;
        List<String> prompts = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--template" -> template = args[++i];
                case "--system" -> system = args[++i];
                case "--tokenizer" -> tokenizerDir = Path.of(args[++i]);
                case "--max-new" -> maxNew = Integer.parseInt(args[++i]);
                case "--temperature" -> temperature = Double.parseDouble(args[++i]);
                case "--top-k" -> topK = Integer.parseInt(args[++i]);
                case "--top-p" -> topP = Double.parseDouble(args[++i]);
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> prompts.add(args[i]);
            }
        }
        PromptTemplate t = PromptTemplate.named(template);
        List<String> texts = new ArrayList<>();
        for (String p : prompts) {
            texts.add(system == null ? t.prompt(p) : t.prompt(system, p));
        }
        SamplingConfig cfg = new SamplingConfig(maxNew, temperature, topK, topP, seed, null, null);
        try (NDManager manager = EngineSupport.newBaseManager();
                DecoderModel m = DecoderModel.load(model, manager);
                TextTokenizer tk = TextTokenizer.load(tokenizerDir)) {
            long start = System.nanoTime();
            GenerationResult r = new Generator(m, tk).generateText(texts, cfg);
            double s = (System.nanoTime() - start) / 1e9;
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult.Sequence seq = r.sequences().get(i);
                System.out.printf("=== %s%n%s%n[%d tokens, %s, log-prob %.3f]%n", prompts.get(i), seq.text(),
                        seq.tokens().length, seq.finishReason(), seq.totalLogProb());
            }
            System.out.printf("%d new tokens in %.2f s (%.1f tokens/s) on %s, %s%n", r.newTokens(), s, r.newTokens() / s,
                    m.device(), m.dtype());
        }
    }
}
