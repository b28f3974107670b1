package ai.lorapar.split;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.TieRule;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.MalformedJsonlException;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabelledJsonlTest {

    @TempDir
    Path dir;

    @Test
    void writesOriginalFieldsPlusVotesAndReadsBackByLabel() throws Exception {
        Path in = dir.resolve("in.jsonl");
        Files.writeString(in, """
                {"question": "What is the capital of France?", "answer": "Paris\\n#### Paris", "extra": 1}
                {"instruction": "Plan a trip", "context": "", "response": "Day 1 ... Day 2 ...", "category": "brainstorming"}
                {"question": "tie", "answer": "x"}
                """);
        List<Example> examples = JsonlExamples.read(in);
        SplitterTest.ScriptedTeacher a = new SplitterTest.ScriptedTeacher("a",
                q -> q.startsWith("What") ? "System1" : q.equals("tie") ? "System1" : "System 2");
        SplitterTest.ScriptedTeacher b = new SplitterTest.ScriptedTeacher("b",
                q -> q.startsWith("What") ? "System 1" : q.equals("tie") ? "System2" : "**System2**");
        LabelledDataset ds = Splitter.vote(a, b).tieRule(TieRule.DROP).build().label(examples);
        Path out = dir.resolve("out/labelled.jsonl");
        ds.writeJsonl(out);

        List<String> lines = Files.readAllLines(out);
        assertThat(lines).hasSize(2); // the tie was dropped
        JsonObject first = JsonParser.parseString(lines.get(0)).getAsJsonObject();
        assertThat(first.get("extra").getAsInt()).isEqualTo(1);
        assertThat(first.get(LabelledJsonl.LABEL_FIELD).getAsString()).isEqualTo("System1");
        assertThat(first.get(LabelledJsonl.DECISION_FIELD).getAsString()).isEqualTo("MAJORITY");
        assertThat(first.getAsJsonArray(LabelledJsonl.VOTES_FIELD)).hasSize(2);
        assertThat(first.getAsJsonArray(LabelledJsonl.VOTES_FIELD).get(1).getAsJsonObject().get("reply").getAsString())
                .isEqualTo("System 1");

        Map<SystemLabel, List<Example>> byLabel = LabelledJsonl.readByLabel(out);
        assertThat(byLabel.get(SystemLabel.SYSTEM_1)).extracting(Example::question).containsExactly("What is the capital of France?");
        assertThat(byLabel.get(SystemLabel.SYSTEM_2)).extracting(Example::question).containsExactly("Plan a trip");
        assertThat(ds.withLabel(SystemLabel.SYSTEM_2)).extracting(Example::line).containsExactly(2);
    }

    @Test
    void readingAnUnlabelledFileNamesTheLine() throws Exception {
        Path in = dir.resolve("plain.jsonl");
        Files.writeString(in, "{\"question\":\"q\",\"answer\":\"a\"}\n");
        assertThatThrownBy(() -> LabelledJsonl.readByLabel(in))
                .isInstanceOf(MalformedJsonlException.class)
                .hasMessageContaining("plain.jsonl:1: no \"lorapar_label\" field");
    }
}
