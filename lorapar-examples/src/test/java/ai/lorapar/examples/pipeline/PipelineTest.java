package ai.lorapar.examples.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.partition.StageMasks;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole pipeline on the embedded model with a few steps (two seeds, two recipes, tiny budgets): every stage
 * wrote its files, and they load (PEFT adapter, masks, importance maps), the metrics are there, the plots are
 * PNGs and the report has its tables.
 */
class PipelineTest {

    @TempDir
    Path dir;

    static PipelineSettings quick() {
        PipelineSettings s = PipelineSettings.embeddedDefault();
        s.limitTrain = 60;
        s.limitTest = 16;
        s.importanceExamples = 8;
        s.importanceBatch = 8;
        s.sftSteps = 1;
        s.sftMicroBatch = 4;
        s.sftAccumulation = 1;
        s.grpoSteps = 1;
        s.group = 2;
        s.promptsPerStep = 1;
        s.grpoMicroBatch = 2;
        s.maxCompletion = 12;
        s.evalMaxNew = 12;
        s.seeds = new java.util.ArrayList<>(List.of(1L, 2L));
        s.recipes = new java.util.ArrayList<>(List.of("lora-par", "random"));
        s.thetaSweep = new java.util.ArrayList<>(List.of(0.5, 0.9, 1.0));
        s.thetaTrained = new java.util.ArrayList<>(List.of(0.5));
        s.device = "cpu";
        return s;
    }

    @Test
    void everyStageWritesItsFiles() throws Exception {
        PipelineSettings s = quick();
        Path out = dir.resolve("run");
        StringWriter console = new StringWriter();
        Pipeline.Outcome o = Pipeline.run(s, out, new PrintWriter(console, true), false);

        // labels: the heuristic teachers label the generated items by kind
        assertThat(o.labels().system1() + o.labels().system2()).isEqualTo(60);
        assertThat(Files.readAllLines(out.resolve("labelled.jsonl"))).hasSize(60);
        // importance maps, masks, adapter
        try (NDManager m = EngineSupport.newBaseManager()) {
            try (ImportanceMap i1 = ImportanceMap.load(out.resolve("importance_system1.safetensors"), m);
                    ImportanceMap i2 = ImportanceMap.load(out.resolve("importance_system2.safetensors"), m);
                    StageMasks masks = StageMasks.load(out.resolve("masks.safetensors"), m);
                    StageMasks random = StageMasks.load(out.resolve("masks-random.safetensors"), m)) {
                assertThat(i1.elementCount()).isEqualTo(i2.elementCount()).isPositive();
                assertThat(masks.stage1Count()).isPositive().isEqualTo(random.stage1Count());
                assertThat(masks.stage2Count()).isPositive().isEqualTo(random.stage2Count());
                assertThat(masks.stage1Count()).isEqualTo(o.seeds().get(1L).partition().stage1());
            }
            Path model = EmbeddedDefault.extractModel(dir.resolve("model"));
            try (DecoderModel base = DecoderModel.load(model, m);
                    LoraModel lora = LoraModel.load(out.resolve("adapter"), base, m)) {
                assertThat(lora.parameterCount()).isEqualTo(o.seeds().get(1L).partition().elements());
            }
        }
        assertThat(out.resolve("adapter/adapter_config.json")).isRegularFile();
        // metrics JSONL of both stages, completion samples, per-item evaluations
        for (String f : List.of("metrics-sft.jsonl", "metrics-grpo.jsonl", "completions.jsonl", "eval-before-hash.jsonl",
                "eval-after-grpo-tags.jsonl")) {
            assertThat(Files.readAllLines(out.resolve(f))).as(f).isNotEmpty();
        }
        assertThat(Files.readString(out.resolve("metrics-sft.jsonl"))).contains("\"event\":\"step\"");
        assertThat(Files.readString(out.resolve("metrics-grpo.jsonl"))).contains("\"reward\"");
        // plots are PNGs
        for (String p : List.of("importance-scatter.png", "theta-sweep.png", "loss-curves.png", "reward-curves.png")) {
            byte[] b = Files.readAllBytes(out.resolve("plots").resolve(p));
            assertThat(b.length).as(p).isGreaterThan(8);
            assertThat(new String(b, 1, 3, StandardCharsets.ISO_8859_1)).as(p).isEqualTo("PNG");
        }
        // every seed and recipe has its result; the findings are computed from them
        for (long seed : s.seeds) {
            assertThat(out.resolve("seeds/seed-" + seed + "/seed.json")).isRegularFile();
            for (String r : s.recipes) {
                assertThat(out.resolve("seeds/seed-" + seed + "/" + r + "/result.json")).isRegularFile();
            }
        }
        assertThat(o.findings()).extracting(Findings.Comparison::key).contains("a", "b", "b'");
        double acc1 = 100 * o.runs().get(1L).get(PipelineSettings.Recipe.LORA_PAR).afterGrpo().accuracy("tags", "all");
        double acc1r = 100 * o.runs().get(1L).get(PipelineSettings.Recipe.RANDOM).afterGrpo().accuracy("tags", "all");
        double acc2 = 100 * o.runs().get(2L).get(PipelineSettings.Recipe.LORA_PAR).afterGrpo().accuracy("tags", "all");
        double acc2r = 100 * o.runs().get(2L).get(PipelineSettings.Recipe.RANDOM).afterGrpo().accuracy("tags", "all");
        Findings.Spread a = o.findings().get(0).deltas().get("all");
        assertThat(a.mean()).isCloseTo(((acc1 - acc1r) + (acc2 - acc2r)) / 2, org.assertj.core.data.Offset.offset(1e-9));
        // report and console summary have the tables
        String report = Files.readString(out.resolve("report.md"));
        assertThat(report).contains("## Labels", "| labels | System 1 | System 2", "## Partition", "active in stage 1",
                "## Accuracy per kind of item", "one-step (####)", "multi-step (tags)", "## Time per stage", "| SFT |",
                "| GRPO |", "## Training", "first KL", "## Findings", "(a) importance vs random subset", "## Settings that differ from the paper's");
        assertThat(console.toString()).contains("Fleiss' κ", "after SFT → GRPO (System 2)", "(b) SFT→GRPO vs SFT alone");

        // the θ plot's other accuracy point: LoRA-PAR trained at θ = 0.5 under that θ's masks
        Path seed1 = out.resolve("seeds/seed-1");
        assertThat(seed1.resolve("lora-par-theta-0.5/result.json")).isRegularFile();
        RunResult at05 = RunResult.fromJson(Units.readJson(seed1.resolve("lora-par-theta-0.5/result.json")));
        SeedResult.SweepPoint p05 = o.seeds().get(1L).sweep().stream().filter(p -> p.theta() == 0.5).findFirst().orElseThrow();
        assertThat(at05.stage1Elements()).isEqualTo(p05.counts().stage1());
        assertThat(at05.stage2Elements()).isEqualTo(p05.counts().stage2());
        try (NDManager m = EngineSupport.newBaseManager();
                StageMasks masks05 = StageMasks.load(seed1.resolve(Units.thetaMasksFile(0.5)), m)) {
            assertThat(masks05.stage1Count()).isEqualTo(p05.counts().stage1());
        }
        assertThat(at05.afterGrpo().tally("tags", "all").total()).isEqualTo(16);
        assertThat(report).contains("## Accuracy against θ", "| 0.5 | " + at05.stage1Elements() + " / "
                + at05.stage2Elements(), "| 0.9 (the run's) |");
    }

    @Test
    void unitsRoundTripThroughTheWorkersCommandStream() {
        for (Unit u : List.of(Unit.prepare(3), Unit.run(2, PipelineSettings.Recipe.RANDOM), Unit.runAtTheta(1, 0.7))) {
            assertThat(Unit.parse(u.command())).isEqualTo(u);
        }
        assertThat(Unit.runAtTheta(1, 0.7).command()).isEqualTo("run 1 lora-par theta=0.7");
        assertThatThrownBy(() -> Unit.parse("run 1 lora-par 0.7")).hasMessageContaining("theta=T");
    }

    @Test
    void workerProcessesRunTheSeedsAndRecipes() throws Exception {
        PipelineSettings s = quick();
        s.workers = 2;
        s.recipes = new java.util.ArrayList<>(List.of("lora-par", "lora-par-shared"));
        s.thetaTrained = new java.util.ArrayList<>(List.of(0.7)); // a θ unit through a worker's command stream
        Path out = dir.resolve("workers");
        Pipeline.Outcome o = Pipeline.run(s, out, new PrintWriter(new StringWriter(), true), false);
        for (long seed : s.seeds) {
            for (String r : s.recipes) {
                assertThat(out.resolve("seeds/seed-" + seed + "/" + r + "/adapter/adapter_config.json")).isRegularFile();
            }
        }
        assertThat(out.resolve("logs/worker-1.log")).isRegularFile();
        // α = β = 0.5 trains fewer elements than α = β = 1 in each stage (the shared region's top half only)
        RunResult full = o.runs().get(1L).get(PipelineSettings.Recipe.LORA_PAR);
        RunResult half = o.runs().get(1L).get(PipelineSettings.Recipe.LORA_PAR_SHARED);
        assertThat(half.stage1Elements()).isLessThan(full.stage1Elements());
        assertThat(half.stage2Elements()).isLessThan(full.stage2Elements());
        assertThat(o.findings()).extracting(Findings.Comparison::key).contains("c");
        assertThat(out.resolve("seeds/seed-1/lora-par-theta-0.7/adapter/adapter_config.json")).isRegularFile();
    }
}
