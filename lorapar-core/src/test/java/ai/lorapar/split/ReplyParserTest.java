package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import static org.assertj.core.api.Assertions.assertThat;

import ai.lorapar.split.ReplyParser.ParsedReply;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The parser on replies shaped like what chat models really send back. "-" means an abstention. */
class ReplyParserTest {

    static Stream<Arguments> corpus() {
        return Stream.of(
                // plain spellings
                Arguments.of("System1", "1"),
                Arguments.of("System2", "2"),
                Arguments.of("System 2", "2"),
                Arguments.of("system-1", "1"),
                Arguments.of("SYSTEM_2", "2"),
                Arguments.of("System One.", "1"),
                Arguments.of("This is a System II problem.", "2"),
                Arguments.of("S1", "1"),
                Arguments.of("2", "2"),
                Arguments.of(" 1.\n", "1"),
                // emphasis and quotes
                Arguments.of("**System 2**", "2"),
                Arguments.of("__System1__", "1"),
                Arguments.of("'System1'", "1"),
                Arguments.of("\u201cSystem2\u201d", "2"),
                Arguments.of("`System 1`", "1"),
                Arguments.of("**Classification:** System 2 (multi-step)", "2"),
                Arguments.of("System 2 (multi-step): the total needs two multiplications and a sum.", "2"),
                // first decisive mention, negations, alternatives
                Arguments.of("I think this is System1 because it only asks for a list, not System 2.", "1"),
                Arguments.of("This is not System 1; it is System 2.", "2"),
                Arguments.of("It isn't a System 1 task. It requires chaining three facts, so System 2.", "2"),
                Arguments.of("I don't think it's System 1. The answer needs several steps: System 2.", "2"),
                Arguments.of("Rather than System 2, this is System 1: the answer is recalled directly.", "1"),
                Arguments.of("Is this System 1 or System 2? It needs one lookup, so System 1.", "1"),
                Arguments.of("Deciding between System1 and System2 here: System2.", "2"),
                Arguments.of("Is it System 1? No \u2014 it's System 2.", "2"),
                // generic restatement of the criteria before the verdict
                Arguments.of("System 1 tasks rely on immediate recall. System 2 tasks require multi-step reasoning. "
                        + "The question needs 48/2 and then 48+24, so it belongs to System 2.", "2"),
                Arguments.of("Step 1: find May's sales. Step 2: add April. System 2 requires chaining, which this does."
                        + "\n\nFinal answer: System2", "2"),
                Arguments.of("It looks like System 1 at first, but it needs chaining. Answer: System 2", "2"),
                Arguments.of("### Classification\n**System1** \u2014 direct recall of a list of databases.", "1"),
                Arguments.of("<think>The user wants... maybe System 1? No, several steps. System 2.</think>\n\nSystem 2", "2"),
                Arguments.of("<think>It could be System 2 but the answer is a list; System 1.</think>**System1**", "1"),
                Arguments.of("Category -> System 2", "2"),
                Arguments.of("{\"classification\": \"System2\"}", "2"),
                Arguments.of("Label: System 1\nReason: plain recall; a System 2 approach is unnecessary.", "1"),
                Arguments.of("System1: immediate recall or a simple inference.\nSystem2: multi-step reasoning.\n"
                        + "This question needs three calculations, so: System2", "2"),
                Arguments.of("- System 1: no\n- System 2: yes", "-"),
                Arguments.of("**System 2**: the problem requires computing 48/2 and then adding 48.", "2"),
                Arguments.of("The classification is System 1.", "1"),
                Arguments.of("As LLaMA2 7B, I would answer this directly from memory. System1", "1"),
                // abstentions
                Arguments.of("", "-"),
                Arguments.of("   \n", "-"),
                Arguments.of("I'm sorry, but I can't help with that request.", "-"),
                Arguments.of("As an AI language model, I cannot classify this.", "-"),
                Arguments.of("<think>Let me work out 48/2 = 24, then 48 + 24 = ", "-"),
                Arguments.of("It could be either System 1 or System 2 depending on the reader.", "-"),
                Arguments.of("The answer is 72 clips.", "-"),
                Arguments.of("{\"label\": null}", "-"),
                Arguments.of("Neither System 1 nor System 2 fits well.", "-"),
                Arguments.of("System 12", "-"));
    }

    @ParameterizedTest(name = "[{index}] {0} -> {1}")
    @MethodSource("corpus")
    void parsesRealisticReplies(String reply, String expected) {
        ParsedReply parsed = ReplyParser.parse(reply);
        String actual = parsed.label() == null ? "-" : parsed.label() == SystemLabel.SYSTEM_1 ? "1" : "2";
        assertThat(actual).as("label of %s (note: %s)", reply, parsed.note()).isEqualTo(expected);
        assertThat(parsed.note()).isNotBlank();
    }

    @org.junit.jupiter.api.Test
    void abstentionNotesSayWhy() {
        assertThat(ReplyParser.parse("").note()).isEqualTo("empty reply");
        assertThat(ReplyParser.parse("I'm sorry, I cannot do that.").note()).isEqualTo("refusal");
        assertThat(ReplyParser.parse("<think>long reasoning").note()).contains("raise max tokens");
        assertThat(ReplyParser.parse("System 1 or System 2?").note()).startsWith("no decisive mention");
        assertThat(ReplyParser.parse("72").note()).isEqualTo("no System1/System2 mention");
    }
}
