package ai.lorapar.train.grpo;

import ai.lorapar.data.Example;
import ai.lorapar.eval.Gsm8kData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The reference's five GSM8K rewards against values computed by the reference's Python functions
 * (transcribed from the recipe's gist and run with CPython 3 on these strings; the expected doubles are
 * Python's reprs, so equality is exact), and on real GSM8K lines.
 */
class GsmRewardsTest {

    /** A completion and the Python values of xmlcount, soft format, strict format, integer, correctness. */
    record Case(String text, double xml, double soft, double strict, double integer, double correct) {}

    private static final Example EXAMPLE = Example.of("janet", "How much?", "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18");

    private static List<Case> cases() {
        return List.of(
                new Case("<reasoning>\n9 * 2 = 18\n</reasoning>\n<answer>\n18\n</answer>\n", 0.5, 0.0, 0.5, 0.5, 2.0),
                new Case("<reasoning>\n9 * 2 = 18\n</reasoning>\n<answer>\n18\n</answer>\n\n", 0.498, 0.0, 0.5, 0.5, 2.0),
                new Case("<reasoning>\n9 * 2 = 18\n</reasoning>\n<answer>\n18\n</answer>", 0.444, 0.0, 0.0, 0.5, 2.0),
                new Case("<reasoning>\nline one\nline two\n</reasoning>\n<answer>\n18\n</answer>\n", 0.5, 0.0, 0.0, 0.5, 2.0),
                new Case("<reasoning>9*2=18</reasoning> <answer>18</answer> trailing words", 0.0, 0.5, 0.0, 0.5, 2.0),
                new Case("<reasoning>9*2=18</reasoning>\u00a0\u3000<answer>18</answer>", 0.0, 0.5, 0.0, 0.5, 2.0),
                new Case("<reasoning>\n9 * 2 = 18\n</reasoning>\n<answer>\n 18 \n</answer>\nextra tail \ud83d\ude00", 0.476, 0.0, 0.0, 0.5, 2.0),
                new Case("<answer>\n19\n</answer>", 0.126, 0.0, 0.0, 0.5, 0.0),
                new Case("<answer>\n\u00b2\n</answer>", 0.126, 0.0, 0.0, 0.5, 0.0),
                new Case("<answer>\n\u0661\u0662\n</answer>", 0.126, 0.0, 0.0, 0.5, 0.0),
                new Case("<answer>\n-18\n</answer>", 0.126, 0.0, 0.0, 0.0, 0.0),
                new Case("<answer>\n18.0\n</answer>", 0.126, 0.0, 0.0, 0.0, 0.0),
                new Case("The answer is 18", 0.0, 0.0, 0.0, 0.0, 0.0),
                new Case("", 0.0, 0.0, 0.0, 0.0, 0.0),
                new Case("<reasoning>\n<reasoning>\nx\n</reasoning>\n<answer>\n18\n</answer>\n<answer>\n18\n</answer>\n", 0.125, 0.0, 0.0, 0.5, 2.0),
                new Case("\n</answer>", 0.126, 0.0, 0.0, 0.0, 0.0),
                new Case("<answer>\u00a018\u2003</answer>", 0.0, 0.0, 0.0, 0.5, 2.0),
                new Case("  <reasoning>\na\n</reasoning>\n<answer>\n18\n</answer>\n", 0.5, 0.0, 0.0, 0.5, 2.0),
                new Case("<reasoning>\na\n</reasoning>\n<answer>\n18\n</answer>\r\n", 0.449, 0.0, 0.0, 0.5, 2.0)
        );
    }

    private static double score(RewardFunction f, String text) {
        OptionalDouble s = f.score(EXAMPLE, text, new long[0]);
        assertThat(s).isPresent();
        return s.getAsDouble();
    }

    @Test
    void matchThePythonReferenceExactly() {
        RewardSet ref = GsmRewards.reference();
        assertThat(ref.names()).containsExactly(GsmRewards.XML_COUNT, GsmRewards.SOFT_FORMAT, GsmRewards.STRICT_FORMAT,
                GsmRewards.INTEGER, GsmRewards.CORRECTNESS);
        assertThat(ref.entries()).allMatch(e -> e.weight() == 1.0);
        for (Case c : cases()) {
            String what = c.text().replace("\n", "\\n");
            assertThat(score(GsmRewards.xmlCount(), c.text())).as("xmlcount %s", what).isEqualTo(c.xml());
            assertThat(score(GsmRewards.softFormat(), c.text())).as("soft %s", what).isEqualTo(c.soft());
            assertThat(score(GsmRewards.strictFormat(), c.text())).as("strict %s", what).isEqualTo(c.strict());
            assertThat(score(GsmRewards.integer(), c.text())).as("int %s", what).isEqualTo(c.integer());
            assertThat(score(GsmRewards.correctness(), c.text())).as("correctness %s", what).isEqualTo(c.correct());
            double[][] s = ref.scores(List.of(EXAMPLE), List.of(c.text()), List.of(new long[0]));
            assertThat(s[0]).containsExactly(c.xml(), c.soft(), c.strict(), c.integer(), c.correct());
            assertThat(ref.total(s)[0]).isEqualTo(c.xml() + c.soft() + c.strict() + c.integer() + c.correct());
        }
    }

    @Test
    void systemPromptAndReferenceAnswers() {
        assertThat(GsmRewards.SYSTEM_PROMPT).isEqualTo(
                "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n");
        assertThat(GsmRewards.extractHashAnswer("a #### 12 ")).isEqualTo("12");
        assertThat(GsmRewards.extractHashAnswer("a #### 12 #### 13")).isEqualTo("12");
        assertThat(GsmRewards.extractHashAnswer("no marker")).isNull();
        // without a reference answer nothing is correct (Python: r == None is False)
        assertThat(GsmRewards.correctness().score(Example.of("x", "q", "no marker"), "<answer>\n5\n</answer>", new long[0]))
                .hasValue(0.0);
        assertThat(GsmRewards.pyStrip("\u00a0\u2007 x \u202f\u0085")).isEqualTo("x");
    }

    /**
     * Real GSM8K answers in the RL format: with the reasoning on one line the completion scores the full
     * 4.0 (3.5 when the reference has thousands separators: not isdigit); with GSM8K's multi-line worked
     * solution, both format rewards are 0 (no re.DOTALL) while the tag count is still 0.5.
     */
    @Test
    void realGsm8kLines() {
        Assumptions.assumeTrue(Gsm8kData.folder() != null, "../shared/data/gsm8k is absent");
        RewardSet ref = GsmRewards.reference();
        List<Example> examples = new ArrayList<>(Gsm8kData.read("test.jsonl"));
        examples.addAll(Gsm8kData.read("train.jsonl").subList(0, 500));
        for (Example e : examples) {
            String answer = GsmRewards.referenceOf(e);
            String worked = e.answer().substring(0, e.answer().indexOf("####")).strip();
            String oneLine = "<reasoning>\n" + worked.replace("\n", " ") + "\n</reasoning>\n<answer>\n" + answer
                    + "\n</answer>\n";
            String multiLine = "<reasoning>\n" + worked + "\n</reasoning>\n<answer>\n" + answer + "\n</answer>\n";
            double[][] s = ref.scores(List.of(e, e), List.of(oneLine, multiLine), List.of(new long[0], new long[0]));
            boolean digits = answer.chars().allMatch(Character::isDigit);
            double intScore = digits ? 0.5 : 0.0;
            assertThat(s[0]).as("line %d", e.line()).containsExactly(0.5, 0.0, 0.5, intScore, 2.0);
            assertThat(s[1]).as("line %d", e.line()).containsExactly(0.5, 0.0, worked.contains("\n") ? 0.0 : 0.5,
                    intScore, 2.0);
            double[][] wrong = ref.scores(List.of(e), List.of(oneLine.replace("<answer>\n" + answer, "<answer>\n" + answer + "1")),
                    List.of(new long[0]));
            assertThat(wrong[0][4]).isEqualTo(0.0);
        }
    }

    @Test
    void setsChangeWeightsAndRefuseBadFunctions() {
        RewardFunction half = RewardFunction.named("half", (e, t, ids) -> OptionalDouble.of(0.5));
        RewardFunction none = RewardFunction.named("none", (e, t, ids) -> OptionalDouble.empty());
        RewardSet set = GsmRewards.reference().toBuilder().weight(GsmRewards.CORRECTNESS, 0.5)
                .remove(GsmRewards.SOFT_FORMAT).add(half, 2.0).add(none).build();
        assertThat(set.names()).containsExactly(GsmRewards.XML_COUNT, GsmRewards.STRICT_FORMAT, GsmRewards.INTEGER,
                GsmRewards.CORRECTNESS, "half", "none");
        String perfect = "<reasoning>\nx\n</reasoning>\n<answer>\n18\n</answer>\n";
        double[][] s = set.scores(List.of(EXAMPLE), List.of(perfect), List.of(new long[0]));
        assertThat(s[0][5]).isNaN();
        assertThat(set.total(s)[0]).isEqualTo(0.5 + 0.5 + 0.5 + 0.5 * 2.0 + 2.0 * 0.5);
        assertThat(RewardSet.builder().add(none).build().total(
                new double[][] {{Double.NaN}})[0]).as("no score at all counts 0").isEqualTo(0.0);
        assertThatThrownBy(() -> GsmRewards.reference().toBuilder().add(GsmRewards.integer()))
                .hasMessageContaining("int_reward_func");
        assertThatThrownBy(() -> GsmRewards.reference().toBuilder().weight("nope", 1)).hasMessageContaining("nope");
        assertThatThrownBy(() -> RewardSet.builder().build()).hasMessageContaining("at least one");
        RewardFunction bad = RewardFunction.named("bad", (e, t, ids) -> OptionalDouble.of(Double.NaN));
        assertThatThrownBy(() -> RewardSet.builder().add(bad).build().scores(List.of(EXAMPLE), List.of("x"),
                List.of(new long[0]))).hasMessageContaining("'bad'").hasMessageContaining("janet");
    }
}
