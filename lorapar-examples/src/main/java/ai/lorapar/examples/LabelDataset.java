package ai.lorapar.examples;

import ai.lorapar.engine.EngineSupport;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.Vote;
import ai.lorapar.data.TieRule;
import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.CausalLM;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.split.HeuristicTeacher;
import ai.lorapar.split.ModelTeacher;
import ai.lorapar.split.OpenAiChatTeacher;
import ai.lorapar.split.SplitListener;
import ai.lorapar.split.Splitter;
import ai.lorapar.split.Teacher;
import ai.lorapar.split.TeacherException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Labels a JSONL dataset System 1 / System 2 by multi-teacher voting and prints the counts and Fleiss' kappa.
 *
 * <pre>
 * LabelDataset INPUT.jsonl OUTPUT.jsonl [options]
 *   --endpoint URL        OpenAI-compatible API root, e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama)
 *   --model M1,M2,...     one teacher per model served at --endpoint (use an odd number)
 *   --api-key-env VAR     environment variable holding the API key (the key itself is never printed)
 *   --local-model DIR     add an in-process teacher: a Hugging Face model folder loaded by this library
 *   --local-template T    its chat template: chatml (default), llama2 or plain
 *   --teachers H1,H2,...  heuristic teachers to add: heuristic:steps, heuristic:arithmetic, heuristic:question
 *   --target-model NAME   the model the teachers role-play (default "LLaMA2 7B")
 *   --tie RULE            prefer-system2 (default), prefer-system1 or drop
 *   --cache FILE          label cache (default OUTPUT.cache.jsonl when an endpoint is used)
 *   --limit N             only the first N examples
 *   --max-tokens N        reply cap for LLM teachers (default 256)
 *   --concurrency N       requests in flight per LLM teacher (default 4)
 * </pre>
 *
 * Exit status: 0 when labelled examples were written; 1 when no example got a label (every request failed,
 * every teacher abstained), in which case OUTPUT is not written, so an earlier run's output survives; 2 on a
 * teacher configuration error (HTTP 401/404...); 64 for a usage error; 65 for an input without examples.
 *
 * <p>Without {@code --endpoint} it runs offline with the three heuristic teachers. They are a rule-based fallback
 * (reasoning lines, arithmetic operations, question quantities), not the paper's role-playing LLMs; their
 * kappa measures how much three related rules agree, not label quality.
 */
public final class LabelDataset {

    private LabelDataset() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args[0].startsWith("--") || args[1].startsWith("--")) {
            usage("INPUT.jsonl and OUTPUT.jsonl are required");
            return;
        }
        Path input = Path.of(args[0]);
        Path output = Path.of(args[1]);
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 2; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                usage("option " + args[i] + " needs a value");
                return;
            }
            opts.put(args[i].substring(2), args[++i]);
        }

        List<Teacher> teachers = new ArrayList<>();
        String endpoint = opts.remove("endpoint");
        String models = opts.remove("model");
        String apiKeyEnv = opts.remove("api-key-env");
        int maxTokens = intOption(opts, "max-tokens", 256);
        int concurrency = intOption(opts, "concurrency", 4);
        opts.remove("max-tokens");
        opts.remove("concurrency");
        if (endpoint != null) {
            if (models == null) {
                usage("--endpoint needs --model");
                return;
            }
            for (String model : models.split(",")) {
                OpenAiChatTeacher.Builder b = OpenAiChatTeacher.builder().baseUrl(endpoint).model(model.strip())
                        .maxTokens(maxTokens).maxConcurrency(concurrency).requestTimeout(Duration.ofMinutes(5));
                if (apiKeyEnv != null) {
                    b.apiKeyEnv(apiKeyEnv);
                }
                teachers.add(b.build());
            }
        } else if (models != null) {
            usage("--model needs --endpoint");
            return;
        }
        // An in-process teacher: a model folder loaded by this library, asked greedily.
        String localModel = opts.remove("local-model");
        String localTemplate = opts.remove("local-template");
        NDManager localManager = null;
        CausalLM local = null;
        if (localModel != null) {
            localManager = EngineSupport.newBaseManager();
            local = CausalLM.load(Path.of(localModel), localManager);
            if (!local.hasTokenizer()) {
                usage("--local-model " + localModel + " has no tokenizer.json");
                return;
            }
            teachers.add(ModelTeacher.builder(local.generator(), Path.of(localModel).getFileName().toString())
                    .template(PromptTemplate.named(localTemplate == null ? "chatml" : localTemplate)).build());
        }
        String heuristics = opts.remove("teachers");
        if (heuristics == null && endpoint == null && localModel == null) {
            heuristics = "heuristic:steps,heuristic:arithmetic,heuristic:question";
        }
        if (heuristics != null) {
            for (String name : heuristics.split(",")) {
                switch (name.strip()) {
                    case "heuristic:steps" -> teachers.add(HeuristicTeacher.steps());
                    case "heuristic:arithmetic" -> teachers.add(HeuristicTeacher.arithmetic());
                    case "heuristic:question" -> teachers.add(HeuristicTeacher.question());
                    default -> {
                        usage("unknown teacher " + name + " (heuristic:steps, heuristic:arithmetic, heuristic:question)");
                        return;
                    }
                }
            }
        }

        Splitter.Builder splitter = Splitter.vote(teachers)
                .targetModel(opts.getOrDefault("target-model", "LLaMA2 7B"))
                .tieRule(tieRule(opts.getOrDefault("tie", "prefer-system2")));
        opts.remove("target-model");
        opts.remove("tie");
        String cache = opts.remove("cache");
        if (cache != null) {
            splitter.cache(Path.of(cache));
        } else if (endpoint != null || localModel != null) {
            splitter.cache(Path.of(output + ".cache.jsonl"));
        }
        int limit = intOption(opts, "limit", Integer.MAX_VALUE);
        opts.remove("limit");
        if (!opts.isEmpty()) {
            usage("unknown option(s) " + opts.keySet());
            return;
        }

        List<Example> examples = JsonlExamples.read(input, limit);
        if (examples.isEmpty()) {
            System.err.println(input + " has no examples (it is empty or holds only blank lines); " + output
                    + " was not written");
            System.exit(65);
            return;
        }
        System.out.printf("Labelling %d examples from %s with %d teacher(s):%n", examples.size(), input, teachers.size());
        teachers.forEach(t -> System.out.println("  " + t.id()));
        if (teachers.stream().allMatch(t -> t instanceof HeuristicTeacher)) {
            System.out.println("  (heuristic teachers only: an offline fallback, not role-playing LLMs)");
        }
        splitter.listener(new SplitListener() {
            @Override
            public void onExampleLabelled(LabelledExample example, int done, int total) {
                if (done % 500 == 0 || done == total) {
                    System.out.printf("  %d/%d%n", done, total);
                }
            }
        });
        LabelledDataset labelled;
        try {
            labelled = splitter.build().label(examples);
        } catch (TeacherException e) {
            System.err.println("Teacher configuration error, run aborted (answers so far are cached): " + e.getMessage());
            System.exit(2);
            return;
        }
        if (local != null) {
            local.close();
            localManager.close();
        }
        LabelStatistics s = labelled.statistics();
        if (s.system1() + s.system2() == 0) {
            // never replace an earlier output with an empty one
            report(labelled, null);
            System.err.println("Nothing was labelled: " + labelled.whyNothingLabelled() + "; " + output
                    + " was not written" + (java.nio.file.Files.exists(output) ? " (the existing file is unchanged)" : ""));
            System.exit(1);
            return;
        }
        labelled.writeJsonl(output);
        report(labelled, output);
    }

    private static void report(LabelledDataset labelled, Path output) {
        LabelStatistics s = labelled.statistics();
        System.out.printf(Locale.ROOT, "System1: %d (%.1f%%)%n", s.system1(), 100.0 * s.system1() / Math.max(1, s.examples()));
        System.out.printf(Locale.ROOT, "System2: %d (%.1f%%)%n", s.system2(), 100.0 * s.system2() / Math.max(1, s.examples()));
        System.out.printf("Dropped: %d (ties %d, no votes %d); labelled by tie rule: %d%n",
                s.dropped(), s.droppedTies(), s.droppedNoVotes(), s.tiesBroken());
        System.out.println("Votes per teacher (System1 / System2 / abstained):");
        for (int t = 0; t < labelled.teacherIds().size(); t++) {
            int s1 = 0;
            int s2 = 0;
            int none = 0;
            for (LabelledExample e : labelled.examples()) {
                Vote v = e.votes().get(t);
                if (v.label() == SystemLabel.SYSTEM_1) {
                    s1++;
                } else if (v.label() == SystemLabel.SYSTEM_2) {
                    s2++;
                } else {
                    none++;
                }
            }
            System.out.printf("  %-40s %6d %6d %6d%n", labelled.teacherIds().get(t), s1, s2, none);
        }
        if (Double.isNaN(s.fleissKappa())) {
            System.out.printf("Fleiss' kappa: undefined (needs two or more teachers and both labels among the %d "
                    + "examples where every teacher voted)%n", s.kappaExamples());
        } else {
            System.out.printf(Locale.ROOT, "Fleiss' kappa: %.3f over %d examples where every teacher voted%n",
                    s.fleissKappa(), s.kappaExamples());
        }
        if (s.cachedReplies() > 0) {
            System.out.println("Replies reused from the label cache: " + s.cachedReplies());
        }
        if (output != null) {
            System.out.println("Wrote " + (s.system1() + s.system2()) + " labelled examples to " + output);
        }
    }

    private static int intOption(Map<String, String> opts, String name, int fallback) {
        String value = opts.get(name);
        try {
            return value == null ? fallback : Integer.parseInt(value);
        } catch (NumberFormatException e) {
            usage("--" + name + " must be a whole number, was " + value);
            return fallback;
        }
    }

    private static TieRule tieRule(String value) {
        return switch (value) {
            case "prefer-system2" -> TieRule.PREFER_SYSTEM_2;
            case "prefer-system1" -> TieRule.PREFER_SYSTEM_1;
            case "drop" -> TieRule.DROP;
            default -> {
                usage("--tie must be prefer-system2, prefer-system1 or drop, was " + value);
                yield TieRule.PREFER_SYSTEM_2;
            }
        };
    }

    private static void usage(String problem) {
        System.err.println(problem);
        System.err.println("usage: LabelDataset INPUT.jsonl OUTPUT.jsonl [--endpoint URL --model M1,M2,M3 [--api-key-env VAR]]"
                + " [--local-model DIR [--local-template chatml|llama2|plain]] [--teachers heuristic:steps,heuristic:arithmetic,heuristic:question] [--target-model NAME]"
                + " [--tie prefer-system2|prefer-system1|drop] [--cache FILE] [--limit N] [--max-tokens N] [--concurrency N]");
        System.exit(64);
    }
}
