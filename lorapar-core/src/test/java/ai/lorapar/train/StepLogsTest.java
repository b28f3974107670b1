package ai.lorapar.train;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Step logs on resume: the stopped run's lines after the checkpoint go, everything else stays. */
class StepLogsTest {
    @TempDir
    Path tmp;

    private static StepMetrics step(String stage, long step) {
        return new StepMetrics(stage, step, 5, 0, 1.0 / step, 2e-4, 1, 100, 10, 64, 32, Map.of());
    }

    private static String describe(String line) {
        JsonObject o = JsonParser.parseString(line).getAsJsonObject();
        return o.get("event").getAsString() + ":" + o.get("stage").getAsString()
                + (o.has("step") ? ":" + o.get("step").getAsLong() : "")
                + (o.has("start_step") ? ":from" + o.get("start_step").getAsLong() : "");
    }

    @Test
    void aResumedStageDropsItsOwnLinesAfterTheCheckpointStepOnly() throws Exception {
        Path file = tmp.resolve("run/metrics.jsonl");
        try (MetricsJsonl m = MetricsJsonl.open(file)) {
            m.onStageStart(new StageStart("sft", 5, 0, 9, 0, 100, 100, "lora"));
            for (long s = 1; s <= 5; s++) {
                m.onStep(step("sft", s));
                if (s == 3) {
                    m.onCheckpoint("sft", 3, tmp.resolve("c/step-000003"));
                }
                if (s == 4) {
                    m.onEvaluation("sft", 4, Map.of("accuracy", 0.5));
                }
            }
            m.onStep(step("grpo", 9)); // another stage's line with a larger step: not this stage's to drop
        }
        // the run stopped after step 5 with its last checkpoint at step 3; the resumed run starts there
        try (MetricsJsonl m = MetricsJsonl.open(file)) {
            m.onStageStart(new StageStart("sft", 5, 3, 9, 0, 100, 100, "lora"));
            m.onStep(step("sft", 4));
        }
        List<String> events = Files.readAllLines(file).stream().map(StepLogsTest::describe).toList();
        assertThat(events).containsExactly("stage_start:sft:from0", "step:sft:1", "step:sft:2", "step:sft:3",
                "checkpoint:sft:3", "step:grpo:9", "stage_start:sft:from3", "step:sft:4");
        try (var files = Files.list(file.getParent())) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).as("no temporary left")
                    .containsExactly("metrics.jsonl");
        }
    }

    @Test
    void linesWithoutAStepOrNotJsonAreKeptAndAMissingFileStaysMissing() throws Exception {
        Path file = tmp.resolve("completions.jsonl");
        Files.writeString(file, String.join("\n", "{\"step\":2,\"completion\":\"a\"}", "{\"step\":4,\"completion\":\"b\"}",
                "not json", "{\"note\":\"no step\"}", "{\"step\":6,\"completion\":\"c\"}", "[1,2]") + "\n");
        assertThat(StepLogs.dropStepsAfter(file, null, 4)).isEqualTo(1);
        assertThat(Files.readAllLines(file)).containsExactly("{\"step\":2,\"completion\":\"a\"}",
                "{\"step\":4,\"completion\":\"b\"}", "not json", "{\"note\":\"no step\"}", "[1,2]");
        assertThat(StepLogs.dropStepsAfter(file, null, 4)).as("nothing more to drop").isZero();

        Path missing = tmp.resolve("none.jsonl");
        assertThat(StepLogs.dropStepsAfter(missing, null, 0)).isZero();
        assertThat(missing).doesNotExist();
    }
}
