package ai.lorapar.examples.cli;

import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.TieRule;
import ai.lorapar.data.Vote;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.split.HeuristicTeacher;
import ai.lorapar.split.ModelTeacher;
import ai.lorapar.split.OpenAiChatTeacher;
import ai.lorapar.split.SplitListener;
import ai.lorapar.split.Splitter;
import ai.lorapar.split.Teacher;
import ai.lorapar.split.TeacherException;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import ai.lorapar.engine.EngineSupport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code lorapar label}: System 1 / System 2 labels by teacher vote. Offline by default with the three
 * heuristic teachers; OpenAI-compatible LLM teachers with {@code --endpoint} and {@code --model}.
 */
@Command(name = "label", mixinStandardHelpOptions = true,
        description = {"Label examples System 1 / System 2 by teacher vote (offline heuristic teachers, or LLMs).",
            "Labels each example of a JSONL file (GSM8K {question, answer}, Alpaca or Dolly records) System 1 "
                + "or System 2 by the vote of several teachers that role-play the target model (the paper's prompt), and "
                + "writes the labelled JSONL (each record keeps its fields and gains the label and the votes).",
            "Without --endpoint or --local-model it runs offline with three heuristic teachers (reasoning lines, arithmetic "
                + "operations, question quantities): a rule-based fallback, not the paper's role-playing LLMs.",
            "When the records have a \"kind\" field (the generated word problems), the teachers never see it; the "
                + "command prints the table of kind against label afterwards."})
final class LabelCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "INPUT.jsonl",
            description = "examples to label (default: the shipped word-problem training split)")
    Path input;

    @Option(names = {"-o", "--out"}, paramLabel = "PATH", defaultValue = "labelled.jsonl", description = "labelled JSONL (default: ${DEFAULT-VALUE})")
    Path output;

    @Option(names = "--endpoint", paramLabel = "URL",
            description = "OpenAI-compatible API root, e.g. http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama)")
    String endpoint;

    @Option(names = "--model", split = ",", paramLabel = "MODEL",
            description = "one teacher per model served at --endpoint (use an odd number)")
    List<String> models;

    @Option(names = "--api-key-env", paramLabel = "VAR",
            description = "environment variable holding the endpoint's API key (the key itself is never printed)")
    String apiKeyEnv;

    @Option(names = "--local-model", paramLabel = "DIR", description = "add an in-process teacher: a Hugging Face model folder")
    Path localModel;

    @Option(names = "--local-template", paramLabel = "T", defaultValue = "chatml", description = "its chat template: chatml, llama2 or plain (default: ${DEFAULT-VALUE})")
    String localTemplate;

    @Option(names = "--teachers", split = ",", paramLabel = "TEACHER",
            description = "heuristic teachers to add: heuristic:steps, heuristic:arithmetic, heuristic:question "
                    + "(default: all three when no LLM teacher is configured)")
    List<String> heuristics;

    @Option(names = "--target-model", paramLabel = "NAME", defaultValue = "LLaMA2 7B", description = "the model the teachers role-play (default: ${DEFAULT-VALUE})")
    String targetModel;

    @Option(names = "--tie", paramLabel = "RULE", defaultValue = "prefer-system2", description = "tie rule: prefer-system2, prefer-system1 or drop (default: ${DEFAULT-VALUE})")
    String tie;

    @Option(names = "--cache", paramLabel = "FILE", description = "label cache (default: OUTPUT.cache.jsonl when an LLM teacher is used)")
    Path cache;

    @Option(names = "--limit", paramLabel = "N", description = "only the first N examples")
    Integer limit;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "256", description = "reply cap for LLM teachers (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--concurrency", paramLabel = "N", defaultValue = "4", description = "requests in flight per LLM teacher (default: ${DEFAULT-VALUE})")
    int concurrency;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (endpoint != null && (models == null || models.isEmpty())) {
            throw new IllegalArgumentException("--endpoint needs --model");
        }
        if (endpoint == null && models != null) {
            throw new IllegalArgumentException("--model needs --endpoint");
        }
        Path source = input;
        if (source == null) {
            Path tmp = Files.createTempDirectory("lorapar-data");
            source = EmbeddedDefault.extractData(tmp).resolve("train.jsonl");
            tmp.toFile().deleteOnExit(); // registered first, deleted last
            for (String f : EmbeddedDefault.DATA_FILES) {
                tmp.resolve(f).toFile().deleteOnExit();
            }
            out.println("No INPUT given: labelling the shipped word-problem training split");
        }
        List<Teacher> teachers = new ArrayList<>();
        if (endpoint != null) {
            for (String model : models) {
                OpenAiChatTeacher.Builder b = OpenAiChatTeacher.builder().baseUrl(endpoint).model(model.strip())
                        .maxTokens(maxTokens).maxConcurrency(concurrency).requestTimeout(Duration.ofMinutes(5));
                if (apiKeyEnv != null) {
                    b.apiKeyEnv(apiKeyEnv);
                }
                teachers.add(b.build());
            }
        }
        NDManager localManager = null;
        CausalLM local = null;
        try {
            if (localModel != null) {
                localManager = EngineSupport.newBaseManager();
                local = CausalLM.load(localModel, localManager);
                if (!local.hasTokenizer()) {
                    throw new IllegalArgumentException("--local-model " + localModel + " has no tokenizer.json");
                }
                teachers.add(ModelTeacher.builder(local.generator(), localModel.getFileName().toString())
                        .template(PromptTemplate.named(localTemplate)).build());
            }
            List<String> names = heuristics;
            if (names == null && teachers.isEmpty()) {
                names = List.of("heuristic:steps", "heuristic:arithmetic", "heuristic:question");
            }
            if (names != null) {
                for (String name : names) {
                    teachers.add(switch (name.strip()) {
                        case "heuristic:steps" -> HeuristicTeacher.steps();
                        case "heuristic:arithmetic" -> HeuristicTeacher.arithmetic();
                        case "heuristic:question" -> HeuristicTeacher.question();
                        default -> throw new IllegalArgumentException("unknown teacher " + name
                                + " (heuristic:steps, heuristic:arithmetic, heuristic:question)");
                    });
                }
            }

            List<Example> examples = JsonlExamples.read(source, limit == null ? Integer.MAX_VALUE : limit);
            if (examples.isEmpty()) {
                throw new IllegalArgumentException(source + " has no examples (it is empty or holds only blank lines); "
                        + output + " was not written");
            }
            out.printf("Labelling %d examples from %s with %d teacher(s):%n", examples.size(), source, teachers.size());
            teachers.forEach(t -> out.println("  " + t.id()));
            if (teachers.stream().allMatch(t -> t instanceof HeuristicTeacher)) {
                out.println("  (heuristic teachers only: an offline fallback, not role-playing LLMs)");
            }
            out.flush();
            Splitter.Builder splitter = Splitter.vote(teachers).targetModel(targetModel).tieRule(tieRule(tie));
            if (cache != null) {
                splitter.cache(cache);
            } else if (endpoint != null || localModel != null) {
                splitter.cache(Path.of(output + ".cache.jsonl"));
            }
            LabelledDataset labelled;
            try (ProgressBar bar = new ProgressBar("label", examples.size())) {
                splitter.listener(new SplitListener() {
                    @Override
                    public void onExampleLabelled(LabelledExample example, int done, int total) {
                        bar.update(done);
                    }
                });
                labelled = splitter.build().label(examples);
            } catch (TeacherException e) {
                throw new IllegalStateException("teacher configuration error, run aborted (answers so far are cached): "
                        + e.getMessage(), e);
            }
            // writeJsonl refuses (exit 1, the existing output untouched) when no example got a label
            labelled.writeJsonl(output);
            report(out, labelled);
            kindTable(out, labelled);
            out.println("Wrote " + output);
            return 0;
        } finally {
            if (local != null) {
                local.close();
            }
            if (localManager != null) {
                localManager.close();
            }
        }
    }

    private static void report(PrintWriter out, LabelledDataset labelled) {
        LabelStatistics s = labelled.statistics();
        int n = Math.max(1, s.examples());
        out.printf(Locale.ROOT, "System1: %d (%.1f%%)   System2: %d (%.1f%%)   dropped: %d (ties %d, no votes %d); by tie rule: %d%n",
                s.system1(), 100.0 * s.system1() / n, s.system2(), 100.0 * s.system2() / n, s.dropped(), s.droppedTies(),
                s.droppedNoVotes(), s.tiesBroken());
        out.println("Votes per teacher (System1 / System2 / abstained):");
        for (int t = 0; t < labelled.teacherIds().size(); t++) {
            int[] c = new int[3];
            for (LabelledExample e : labelled.examples()) {
                Vote v = e.votes().get(t);
                c[v.label() == SystemLabel.SYSTEM_1 ? 0 : v.label() == SystemLabel.SYSTEM_2 ? 1 : 2]++;
            }
            out.printf("  %-40s %6d %6d %6d%n", labelled.teacherIds().get(t), c[0], c[1], c[2]);
        }
        if (Double.isNaN(s.fleissKappa())) {
            out.printf("Fleiss' kappa: undefined (needs two or more teachers and both labels among the %d examples "
                    + "where every teacher voted)%n", s.kappaExamples());
        } else {
            out.printf(Locale.ROOT, "Fleiss' kappa: %.3f over %d examples where every teacher voted%n", s.fleissKappa(),
                    s.kappaExamples());
        }
        if (s.cachedReplies() > 0) {
            out.println("Replies reused from the label cache: " + s.cachedReplies());
        }
    }

    /** Kind (from the source record, never shown to a teacher) against label, when the records have a kind. */
    static void kindTable(PrintWriter out, LabelledDataset labelled) {
        Map<String, int[]> table = new TreeMap<>();
        for (LabelledExample e : labelled.examples()) {
            String kind = kindOf(e.example());
            if (kind == null) {
                return;
            }
            int column = e.label().map(l -> l == SystemLabel.SYSTEM_1 ? 0 : 1).orElse(2);
            table.computeIfAbsent(kind, k -> new int[3])[column]++;
        }
        if (table.isEmpty()) {
            return;
        }
        out.println("Kind of item (not seen by the teachers) against label:");
        out.printf("  %-12s %8s %8s %8s%n", "kind", "System1", "System2", "dropped");
        table.forEach((k, c) -> out.printf("  %-12s %8d %8d %8d%n", k, c[0], c[1], c[2]));
    }

    private static String kindOf(Example e) {
        if (e.sourceJson() == null) {
            return null;
        }
        JsonElement j = JsonParser.parseString(e.sourceJson());
        if (!j.isJsonObject()) {
            return null;
        }
        JsonObject o = j.getAsJsonObject();
        return o.has("kind") && o.get("kind").isJsonPrimitive() ? o.get("kind").getAsString() : null;
    }

    private static TieRule tieRule(String value) {
        return switch (value) {
            case "prefer-system2" -> TieRule.PREFER_SYSTEM_2;
            case "prefer-system1" -> TieRule.PREFER_SYSTEM_1;
            case "drop" -> TieRule.DROP;
            default -> throw new IllegalArgumentException("--tie must be prefer-system2, prefer-system1 or drop, was " + value);
        };
    }
}
