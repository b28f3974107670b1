package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import static ai.lorapar.split.HeuristicTeacher.Feature.ARITHMETIC_OPERATIONS;
import static ai.lorapar.split.HeuristicTeacher.Feature.CALCULATOR_ANNOTATIONS;
import static ai.lorapar.split.HeuristicTeacher.Feature.QUESTION_QUANTITIES;
import static ai.lorapar.split.HeuristicTeacher.Feature.QUESTION_SENTENCES;
import static ai.lorapar.split.HeuristicTeacher.Feature.QUESTION_WORDS;
import static ai.lorapar.split.HeuristicTeacher.Feature.REASONING_STEPS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.Example;
import java.util.List;
import org.junit.jupiter.api.Test;

class HeuristicTeacherTest {

    static final Example NATALIA = Example.of("1",
            "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                    + "How many clips did Natalia sell altogether in April and May?",
            "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                    + "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72");
    static final Example BETTY = Example.of("3",
            "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. "
                    + "Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her "
                    + "parents. How much more money does Betty need to buy the wallet?",
            "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\n"
                    + "Betty's grandparents gave her 15 * 2 = $<<15*2=30>>30.\n"
                    + "This means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.\n#### 5");
    static final Example DATABASES = Example.of("db", "What are the top graph databases?",
            "1. Neo4j; 2. Microsoft Azure Cosmos DB; 3. Virtuoso; 4. ArangoDB; 5. Amazon Neptune");

    @Test
    void measuresSurfaceFeatures() {
        assertThat(HeuristicTeacher.measure(REASONING_STEPS, NATALIA)).isEqualTo(2);
        assertThat(HeuristicTeacher.measure(CALCULATOR_ANNOTATIONS, NATALIA)).isEqualTo(2);
        assertThat(HeuristicTeacher.measure(ARITHMETIC_OPERATIONS, NATALIA)).isEqualTo(2);
        assertThat(HeuristicTeacher.measure(QUESTION_QUANTITIES, NATALIA)).isEqualTo(2); // 48, half
        assertThat(HeuristicTeacher.measure(QUESTION_SENTENCES, NATALIA)).isEqualTo(2);
        assertThat(HeuristicTeacher.measure(QUESTION_WORDS, NATALIA)).isEqualTo(20 + 11);
        assertThat(HeuristicTeacher.measure(ARITHMETIC_OPERATIONS, BETTY)).isEqualTo(5); // 1 + 1 + 3
        assertThat(HeuristicTeacher.measure(QUESTION_QUANTITIES, BETTY)).isEqualTo(4); // $100, half, $15, twice
        assertThat(HeuristicTeacher.measure(REASONING_STEPS, DATABASES)).isEqualTo(1);
    }

    @Test
    void presetsSplitAOneLookupFromAMultiStepProblem() throws Exception {
        for (HeuristicTeacher t : List.of(HeuristicTeacher.steps(), HeuristicTeacher.arithmetic(), HeuristicTeacher.question())) {
            assertThat(label(t, DATABASES)).as(t.id()).isEqualTo(SystemLabel.SYSTEM_1);
        }
        assertThat(label(HeuristicTeacher.steps(), BETTY)).isEqualTo(SystemLabel.SYSTEM_2);
        assertThat(label(HeuristicTeacher.arithmetic(), BETTY)).isEqualTo(SystemLabel.SYSTEM_2);
        assertThat(label(HeuristicTeacher.steps(), NATALIA)).isEqualTo(SystemLabel.SYSTEM_1);
    }

    @Test
    void replyIsParseableAndNamesItselfHeuristic() throws Exception {
        HeuristicTeacher t = HeuristicTeacher.steps();
        String reply = t.ask(new TeacherPrompt(BETTY, RolePlayPrompt.defaults().render(BETTY)));
        assertThat(reply).isEqualTo("System2 (heuristic:steps score 3.00 >= 3.00; reasoning_steps=3)");
        assertThat(t.id()).isEqualTo("heuristic:steps");
        assertThat(t.model()).isEqualTo("heuristic");
        assertThat(t.cacheable()).isFalse();
    }

    @Test
    void builderValidates() {
        assertThatThrownBy(() -> HeuristicTeacher.builder("x").build()).hasMessageContaining("at least one feature weight");
        assertThatThrownBy(() -> HeuristicTeacher.builder("bad name")).hasMessageContaining("must match");
        assertThatThrownBy(() -> HeuristicTeacher.builder("x").threshold(Double.NaN)).hasMessageContaining("threshold must be finite");
    }

    private static SystemLabel label(Teacher t, Example e) throws Exception {
        return ReplyParser.parse(t.ask(new TeacherPrompt(e, RolePlayPrompt.defaults().render(e)))).label();
    }
}
