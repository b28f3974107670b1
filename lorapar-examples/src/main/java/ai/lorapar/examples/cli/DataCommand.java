package ai.lorapar.examples.cli;

import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.examples.embedded.WordProblem;
import ai.lorapar.examples.embedded.WordProblems;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code lorapar data}: writes a seeded train/test split of arithmetic word problems in GSM8K's format. */
@Command(name = "data", aliases = "generate-data", mixinStandardHelpOptions = true,
        description = {"Generate seeded arithmetic word problems (GSM8K format, one-step and multi-step items).",
            "Writes arithmetic word problems in GSM8K's format ({\"question\", \"answer\": \"...\\n#### N\"}, "
                + "plus \"kind\": one-step / multi-step and \"operations\") to OUT/train.jsonl and OUT/test.jsonl, "
                + "with OUT/making.json (seed and settings). Train and test share no question.",
            "With the defaults it writes the split shipped under lorapar-examples' resources (embedded/word-problems)."})
final class DataCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = {"-o", "--out"}, paramLabel = "PATH", required = true, description = "output folder")
    Path out;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "" + EmbeddedDefault.SEED, description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--train", paramLabel = "N", defaultValue = "" + EmbeddedDefault.TRAIN_SIZE, description = "training items (default: ${DEFAULT-VALUE})")
    int train;

    @Option(names = "--test", paramLabel = "N", defaultValue = "" + EmbeddedDefault.TEST_SIZE, description = "test items (default: ${DEFAULT-VALUE})")
    int test;

    @Option(names = "--multi-step-ops", defaultValue = "3-4", paramLabel = "MIN-MAX",
            description = "operations of a multi-step item, within 2-4 (default: ${DEFAULT-VALUE}; two-operation chains "
                    + "are System 1 for the heuristic teachers, like GSM8K's two-step problems)")
    String multiStepOps;

    @Option(names = "--max-value", paramLabel = "N", defaultValue = "999", description = "largest value along a chain (default: ${DEFAULT-VALUE})")
    int maxValue;

    @Override
    public Integer call() throws Exception {
        String[] range = multiStepOps.split("-");
        if (range.length != 2) {
            throw new IllegalArgumentException("--multi-step-ops must look like 3-4, was " + multiStepOps);
        }
        WordProblems generator = WordProblems.builder().seed(seed)
                .multiStepOperations(Integer.parseInt(range[0].strip()), Integer.parseInt(range[1].strip()))
                .maxValue(maxValue).build();
        WordProblems.Split split = EmbeddedDefault.writeData(out, generator, train, test);
        PrintWriter w = spec.commandLine().getOut();
        w.printf("Wrote %s/train.jsonl (%d items) and %s/test.jsonl (%d items), seed %d%n", out, split.train().size(), out,
                split.test().size(), seed);
        w.println("  split  kind        operations: count");
        describe(w, "train", split.train());
        describe(w, "test", split.test());
        return 0;
    }

    private static void describe(PrintWriter w, String name, List<WordProblem> items) {
        Map<String, Integer> counts = new TreeMap<>();
        for (WordProblem p : items) {
            counts.merge(String.format("%-11s %d", p.kind().text(), p.operations()), 1, Integer::sum);
        }
        counts.forEach((k, v) -> w.printf("  %-6s %s: %d%n", name, k, v));
    }
}
