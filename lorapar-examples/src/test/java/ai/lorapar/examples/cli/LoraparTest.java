package ai.lorapar.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.examples.embedded.RandomTinyModel;
import ai.lorapar.examples.embedded.TinyModelConfig;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import com.google.gson.JsonParser;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LoraparTest {

    @TempDir
    Path dir;

    private record Result(int code, String out, String err) {
    }

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Lorapar.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void helpListsEveryStage() {
        Result r = run("--help");
        assertThat(r.code()).isZero();
        assertThat(r.out()).contains("data, generate-data", "label", "score", "partition", "train", "eval", "run");
        for (String command : List.of("data", "label", "score", "partition", "train", "eval", "run")) {
            Result h = run(command, "--help");
            assertThat(h.code()).as(command).isZero();
            assertThat(h.out()).as(command).startsWith("Usage: lorapar " + command);
        }
    }

    @Test
    void runRejectsBadInputNamingTheOptionOrFile() throws Exception {
        Result theta = run("run", "-o", dir.resolve("r").toString(), "--theta", "1.5");
        assertThat(theta.code()).isEqualTo(1);
        assertThat(theta.err()).contains("--theta must be in (0, 1], was 1.5");
        Result zero = run("run", "-o", dir.resolve("r").toString(), "--theta", "0");
        assertThat(zero.err()).contains("--theta");
        java.nio.file.Files.createDirectories(dir.resolve("empty"));
        Result data = run("run", "-o", dir.resolve("r").toString(), "--data", dir.resolve("empty").toString());
        assertThat(data.code()).isEqualTo(1);
        assertThat(data.err()).contains("--data " + dir.resolve("empty"), "has no train.jsonl");
        Result random = run("run", "-o", dir.resolve("r").toString(), "--model", "random:qwen2.5-0.5b", "--data",
                dir.toString());
        assertThat(random.err()).contains("needs --tokenizer");
        Result recipes = run("run", "-o", dir.resolve("r").toString(), "--recipes", "random,lora-par");
        assertThat(recipes.err()).contains("--recipes must start with lora-par");
        Result seeds = run("run", "-o", dir.resolve("r").toString(), "--seeds", "1,1");
        assertThat(seeds.err()).contains("--seeds has a seed twice");
        assertThat(java.nio.file.Files.exists(dir.resolve("r"))).isFalse();
    }

    @Test
    void badOptionsAreUsageErrors() {
        Result r = run("data", "--seed", "x", "-o", dir.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("--seed");
        Result ops = run("data", "-o", dir.toString(), "--multi-step-ops", "1-4");
        assertThat(ops.code()).isEqualTo(1);
        assertThat(ops.err()).contains("2 <= min <= max <= 4");
        Result noModel = run("label", "--endpoint", "http://localhost:1/v1", "-o", dir.resolve("l.jsonl").toString());
        assertThat(noModel.code()).isEqualTo(1);
        assertThat(noModel.err()).contains("--endpoint needs --model");
    }

    @Test
    void dataThenLabelOffline() throws Exception {
        Path data = dir.resolve("data");
        Result d = run("data", "-o", data.toString(), "--train", "40", "--test", "10", "--seed", "5");
        assertThat(d.code()).isZero();
        assertThat(Files.readAllLines(data.resolve("train.jsonl"))).hasSize(40);
        assertThat(Files.readAllLines(data.resolve("test.jsonl"))).hasSize(10);
        assertThat(d.out()).contains("train  one-step");

        Path labelled = dir.resolve("labelled.jsonl");
        Result l = run("label", data.resolve("train.jsonl").toString(), "-o", labelled.toString());
        assertThat(l.code()).as(l.err()).isZero();
        assertThat(l.out()).contains("heuristic:steps", "Fleiss' kappa: 1.000", "Kind of item");
        assertThat(l.out()).containsPattern("multi-step\\s+0\\s+20\\s+0").containsPattern("one-step\\s+20\\s+0\\s+0");
        List<String> lines = Files.readAllLines(labelled);
        assertThat(lines).hasSize(40);
        // the source fields (kind included) survive next to the label
        assertThat(JsonParser.parseString(lines.get(0)).getAsJsonObject().has("kind")).isTrue();
    }

    @Test
    void partitionWritesMasksTheRandomBaselineAndTheScatter() throws Exception {
        Path i1 = dir.resolve("i1.safetensors");
        Path i2 = dir.resolve("i2.safetensors");
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed(3);
            Map<String, NDArray> a = new LinkedHashMap<>();
            Map<String, NDArray> b = new LinkedHashMap<>();
            for (String name : List.of("model.layers.0.self_attn.q_proj.lora_A", "model.layers.0.self_attn.q_proj.lora_B",
                    "model.layers.1.mlp.up_proj.lora_A")) {
                a.put(name, m.randomUniform(0f, 1f, new Shape(8, 32), DataType.FLOAT32).pow(4));
                b.put(name, m.randomUniform(0f, 1f, new Shape(8, 32), DataType.FLOAT32).pow(4));
            }
            try (ImportanceMap s1 = ImportanceMap.of(m, a, 10); ImportanceMap s2 = ImportanceMap.of(m, b, 10)) {
                s1.save(i1);
                s2.save(i2);
            }
        }
        Path out = dir.resolve("partition");
        Result r = run("partition", "--system1", i1.toString(), "--system2", i2.toString(), "-o", out.toString(),
                "--theta", "0.8", "--plot-points", "500");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("Partition of 768 LoRA elements in 3 tensors", "stage 1 trains");
        assertThat(out.resolve("partition.txt")).exists();
        assertThat(Files.size(out.resolve("importance-scatter.png"))).isGreaterThan(1000);
        // the saved masks are the library's own partition of the same maps
        try (NDManager m = NDManager.newBaseManager();
                ImportanceMap s1 = ImportanceMap.load(i1, m);
                ImportanceMap s2 = ImportanceMap.load(i2, m);
                SubregionPartition p = SubregionPartition.builder().system1(s1).system2(s2).theta(0.8).build();
                StageMasks saved = StageMasks.load(out.resolve("masks.safetensors"), m);
                StageMasks random = StageMasks.load(out.resolve("masks-random.safetensors"), m)) {
            assertThat(saved.stage1Count()).isEqualTo(p.stageMasks().stage1Count());
            assertThat(saved.stage2Count()).isEqualTo(p.stageMasks().stage2Count());
            for (String name : p.names()) {
                assertThat(saved.stage1().get(name).toBooleanArray()).isEqualTo(p.stageMasks().stage1().get(name).toBooleanArray());
            }
            assertThat(random.stage1Count()).isEqualTo(saved.stage1Count());
        }
    }

    /** label → score → partition through the command line, on a random-weight model of the embedded shape. */
    @Test
    void labelScorePartitionChain() throws Exception {
        Path model = RandomTinyModel.write(dir.resolve("model"), new TinyModelConfig(32, 2, 2, 1, 64, 256, true), 1);
        Path data = dir.resolve("data");
        assertThat(run("data", "-o", data.toString(), "--train", "24", "--test", "4").code()).isZero();
        Path labelled = dir.resolve("labelled.jsonl");
        assertThat(run("label", data.resolve("train.jsonl").toString(), "-o", labelled.toString()).code()).isZero();

        Path importance = dir.resolve("importance");
        Result s = run("score", labelled.toString(), "--model", model.toString(), "-o", importance.toString(),
                "--examples", "6", "--batch", "4", "--device", "cpu");
        assertThat(s.code()).as(s.err()).isZero();
        assertThat(s.out()).contains("12 System1 and 12 System2 examples", "System1: 6 examples", "System2: 6 examples");
        assertThat(importance.resolve("adapter_init/adapter_config.json")).exists();
        try (NDManager m = NDManager.newBaseManager();
                ImportanceMap i1 = ImportanceMap.load(importance.resolve("importance_system1.safetensors"), m)) {
            assertThat(i1.numExamples()).isEqualTo(6);
            // QKVGUD r=8 on 2 layers of hidden 32, KV 16, MLP 64
            long perLayer = 8L * ((32 + 32) + (32 + 16) * 2 + (32 + 64) * 2 + (64 + 32));
            assertThat(i1.elementCount()).isEqualTo(2 * perLayer);
        }
        Path partition = dir.resolve("partition");
        Result p = run("partition", "--system1", importance.resolve("importance_system1.safetensors").toString(),
                "--system2", importance.resolve("importance_system2.safetensors").toString(), "-o", partition.toString());
        assertThat(p.code()).as(p.err()).isZero();
        assertThat(partition.resolve("masks.safetensors")).exists();
        assertThat(partition.resolve("importance-scatter.png")).exists();

        Result bad = run("score", labelled.toString(), "--model", model.toString(), "-o", importance.toString(),
                "--init", "standard");
        assertThat(bad.code()).isEqualTo(1);
        assertThat(bad.err()).contains("zero importance");

        // PiSSA: the importance is of rank-r adapters; 'train --adapter-init' must start from those (PEFT's export
        // in the same folder is the equivalent rank-2r plain LoRA, whose shapes the masks do not fit)
        Path pissa = dir.resolve("importance-pissa");
        Result sp = run("score", labelled.toString(), "--model", model.toString(), "-o", pissa.toString(),
                "--examples", "4", "--batch", "4", "--init", "pissa", "--rank", "4", "--device", "cpu");
        assertThat(sp.code()).as(sp.err()).isZero();
        assertThat(pissa.resolve("adapter_init/lorapar_lora.json")).exists();
        Path pissaPartition = dir.resolve("partition-pissa");
        Result pp = run("partition", "--system1", pissa.resolve("importance_system1.safetensors").toString(),
                "--system2", pissa.resolve("importance_system2.safetensors").toString(), "-o", pissaPartition.toString());
        assertThat(pp.code()).as(pp.err()).isZero();
        Result t = run("train", labelled.toString(), "--model", model.toString(), "-o", dir.resolve("train-pissa")
                .toString(), "--masks", pissaPartition.resolve("masks.safetensors").toString(), "--adapter-init",
                pissa.resolve("adapter_init").toString(), "--stage", "sft", "--sft-steps", "1", "--micro-batch", "2",
                "--accumulation", "1", "--max-length", "200", "--device", "cpu");
        assertThat(t.code()).as(t.err()).isZero();
        assertThat(t.out()).contains("sft: 1/1 steps");
    }
}
