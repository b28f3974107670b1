package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.LabelledJsonl;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.lorapar.data.Example;
import ai.lorapar.data.JsonlExamples;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Labels the first 500 GSM8K training problems with the three heuristic teachers (skipped without the data). */
class Gsm8kHeuristicLabellingTest {

    static final Path GSM8K = Path.of(System.getProperty("lorapar.gsm8k", "/work/shared/data/gsm8k/train.jsonl"));

    @TempDir
    Path dir;

    @Test
    void labelsTheFirst500Problems() throws Exception {
        assumeTrue(Files.isRegularFile(GSM8K), "GSM8K not found at " + GSM8K + " (set -Dlorapar.gsm8k=...)");
        List<Example> examples = JsonlExamples.read(GSM8K, 500);
        assertThat(examples).hasSize(500);

        LabelledDataset ds = Splitter.vote(HeuristicTeacher.steps(), HeuristicTeacher.arithmetic(), HeuristicTeacher.question())
                .build().label(examples);
        LabelStatistics stats = ds.statistics();
        System.out.println("GSM8K first 500, heuristic teachers: " + stats);

        // three teachers, none abstains: every example gets a strict majority
        assertThat(stats.system1() + stats.system2()).isEqualTo(500);
        assertThat(stats.tiesBroken()).isZero();
        assertThat(stats.kappaExamples()).isEqualTo(500);
        // GSM8K is mostly multi-step, but its 2-step problems should land in System 1
        assertThat(stats.system2()).isGreaterThan(stats.system1());
        assertThat(stats.system1()).isGreaterThan(50);
        // the heuristics look at related features, so they agree clearly better than chance
        assertThat(stats.fleissKappa()).isBetween(0.2, 1.0);
        // Natalia (line 1: two calculator steps, two quantities) is System 1 for all three
        assertThat(ds.examples().get(0).result().system1Votes()).isEqualTo(3);

        Path out = dir.resolve("gsm8k-labelled.jsonl");
        ds.writeJsonl(out);
        Map<SystemLabel, List<Example>> back = LabelledJsonl.readByLabel(out);
        assertThat(back.get(SystemLabel.SYSTEM_1)).hasSize(stats.system1());
        assertThat(back.get(SystemLabel.SYSTEM_2)).hasSize(stats.system2());
    }
}
