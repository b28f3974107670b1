package ai.lorapar.examples.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.examples.embedded.WordProblem.Kind;
import ai.lorapar.split.HeuristicTeacher;
import ai.lorapar.split.Splitter;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WordProblemsTest {

    private static final Pattern ANNOTATION = Pattern.compile("(\\d+) ([-+*/]) (\\d+) = <<(\\d+)([-+*/])(\\d+)=(\\d+)>>(\\d+)");

    @TempDir
    Path dir;

    @Test
    void theSameSeedGivesTheSameItemsAndAnotherSeedOthers() {
        List<WordProblem> a = WordProblems.builder().seed(7).build().generate(200);
        List<WordProblem> b = WordProblems.builder().seed(7).build().generate(200);
        List<WordProblem> c = WordProblems.builder().seed(8).build().generate(200);
        assertThat(a).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
    }

    @Test
    void everyCalculationIsRightAndTheLastLineIsTheResult() {
        for (int min = 2; min <= 4; min++) {
            WordProblems gen = WordProblems.builder().seed(min).multiStepOperations(min, 4).build();
            for (WordProblem p : gen.generate(1000)) {
                List<String> lines = p.answer().lines().toList();
                String last = lines.get(lines.size() - 1);
                assertThat(last).isEqualTo("#### " + p.result());
                assertThat(p.result()).isBetween(0, 999);
                int annotations = 0;
                for (String line : lines.subList(0, lines.size() - 1)) {
                    Matcher m = ANNOTATION.matcher(line);
                    while (m.find()) {
                        annotations++;
                        long x = Long.parseLong(m.group(1));
                        long y = Long.parseLong(m.group(3));
                        // the written expression and the annotation agree, and the annotation is right
                        assertThat(m.group(4)).isEqualTo(m.group(1));
                        assertThat(m.group(5)).isEqualTo(m.group(2));
                        assertThat(m.group(6)).isEqualTo(m.group(3));
                        assertThat(m.group(8)).isEqualTo(m.group(7));
                        long z = switch (m.group(2)) {
                            case "+" -> x + y;
                            case "-" -> x - y;
                            case "*" -> x * y;
                            default -> {
                                assertThat(x % y).as("division of %d by %d in %s", x, y, p).isZero();
                                yield x / y;
                            }
                        };
                        assertThat(Long.parseLong(m.group(7))).as(line).isEqualTo(z);
                        assertThat(z).as("every value along the way of %s", p).isBetween(2L, 999L);
                    }
                }
                assertThat(annotations).as(p.toString()).isEqualTo(p.operations());
                if (p.kind() == Kind.ONE_STEP) {
                    assertThat(p.operations()).isBetween(0, 1);
                    assertThat(lines).hasSize(2);
                } else {
                    assertThat(p.operations()).isBetween(min, 4);
                    assertThat(lines).hasSize(p.operations() + 1); // one line per operation
                    // the last calculation is the answer
                    Matcher m = ANNOTATION.matcher(lines.get(lines.size() - 2));
                    assertThat(m.find()).isTrue();
                    assertThat(Integer.parseInt(m.group(7))).isEqualTo(p.result());
                }
                if (p.operations() == 0) {
                    // read off the question: the number is in the question
                    assertThat(p.question()).containsPattern("\\b" + p.result() + "\\b");
                }
                assertThat(p.question()).endsWith("?").doesNotContain("\n");
            }
        }
    }

    @Test
    void theDefaultMultiStepItemsHaveThreeOrFourOperations() {
        List<WordProblem> items = WordProblems.builder().build().generate(400);
        assertThat(items.stream().filter(p -> p.kind() == Kind.MULTI_STEP).map(WordProblem::operations))
                .containsOnly(3, 4).contains(3, 4);
        assertThat(items.stream().filter(p -> p.kind() == Kind.ONE_STEP).map(WordProblem::operations))
                .containsOnly(0, 1).contains(0, 1);
        assertThat(items.stream().filter(p -> p.kind() == Kind.ONE_STEP)).hasSize(200);
    }

    @Test
    void trainAndTestShareNoQuestionAndTheTestSetDoesNotDependOnTheTrainSize() {
        WordProblems gen = WordProblems.builder().seed(3).build();
        WordProblems.Split small = gen.split(300, 60);
        WordProblems.Split large = gen.split(900, 60);
        assertThat(small.test()).isEqualTo(large.test());
        Set<String> test = new HashSet<>();
        small.test().forEach(p -> test.add(p.question()));
        assertThat(test).hasSize(60);
        for (WordProblem p : large.train()) {
            assertThat(test).doesNotContain(p.question());
        }
        assertThat(large.train().stream().map(WordProblem::question).distinct()).hasSize(900);
        assertThat(small.train().stream().filter(p -> p.kind() == Kind.MULTI_STEP)).hasSize(150);
        assertThat(small.test().stream().filter(p -> p.kind() == Kind.ONE_STEP)).hasSize(30);
    }

    @Test
    void badSettingsAreRefused() {
        assertThatThrownBy(() -> WordProblems.builder().multiStepOperations(1, 4))
                .hasMessageContaining("2 <= min <= max <= 4");
        assertThatThrownBy(() -> WordProblems.builder().multiStepOperations(3, 5))
                .hasMessageContaining("were 3..5");
        assertThatThrownBy(() -> WordProblems.builder().build().split(-1, 3)).hasMessageContaining("train -1");
    }

    @Test
    void jsonlRecordsHaveTheKindAndReadAsGsm8kExamples() throws Exception {
        List<WordProblem> items = WordProblems.builder().build().generate(10);
        Path file = dir.resolve("items.jsonl");
        WordProblems.writeJsonl(items, file);
        List<String> lines = Files.readAllLines(file);
        assertThat(lines).hasSize(10);
        JsonObject first = JsonParser.parseString(lines.get(0)).getAsJsonObject();
        assertThat(first.get("kind").getAsString()).isEqualTo(items.get(0).kind().text());
        assertThat(first.get("operations").getAsInt()).isEqualTo(items.get(0).operations());
        assertThat(lines.get(0)).contains("<<").doesNotContain("\\u003c"); // no HTML escaping
        List<Example> examples = JsonlExamples.read(file);
        assertThat(examples.get(0).question()).isEqualTo(items.get(0).question());
        assertThat(examples.get(0).answer()).isEqualTo(items.get(0).answer());
    }

    /**
     * The labelling stage's offline teachers (as {@code LabelDataset} configures them) see question and answer
     * only; their vote must separate the two kinds.
     */
    @Test
    void theHeuristicVoteSeparatesTheKinds() throws Exception {
        int[][] confusion = confusion(WordProblems.builder().build().generate(600), new TreeMap<>());
        System.out.printf(Locale.ROOT, "heuristic vote on 600 default items (rows: kind; columns: System1 System2)%n"
                + "  one-step   %4d %4d%n  multi-step %4d %4d%n", confusion[0][0], confusion[0][1], confusion[1][0],
                confusion[1][1]);
        assertThat(confusion[0][0]).isEqualTo(300);
        assertThat(confusion[1][1]).isEqualTo(300);

        // with two-operation chains included, those are System 1 for the heuristic teachers (as GSM8K's are)
        TreeMap<Integer, int[]> byOperations = new TreeMap<>();
        confusion(WordProblems.builder().multiStepOperations(2, 4).build().generate(600), byOperations);
        byOperations.forEach((ops, c) -> System.out.printf(Locale.ROOT, "  %d operations: System1 %d, System2 %d%n",
                ops, c[0], c[1]));
        assertThat(byOperations.get(2)[1]).isZero();
        assertThat(byOperations.get(3)[0] + byOperations.get(4)[0]).isZero();
    }

    private static int[][] confusion(List<WordProblem> items, TreeMap<Integer, int[]> byOperations) throws Exception {
        List<Example> examples = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            examples.add(items.get(i).toExample(String.valueOf(i)));
        }
        LabelledDataset labelled = Splitter.vote(HeuristicTeacher.steps(), HeuristicTeacher.arithmetic(),
                HeuristicTeacher.question()).build().label(examples);
        int[][] confusion = new int[2][2];
        for (int i = 0; i < items.size(); i++) {
            int label = labelled.examples().get(i).result().label() == SystemLabel.SYSTEM_1 ? 0 : 1;
            confusion[items.get(i).kind() == Kind.ONE_STEP ? 0 : 1][label]++;
            byOperations.computeIfAbsent(items.get(i).operations(), k -> new int[2])[label]++;
        }
        return confusion;
    }
}
