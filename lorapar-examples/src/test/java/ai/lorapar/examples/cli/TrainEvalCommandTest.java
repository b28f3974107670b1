package ai.lorapar.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.examples.embedded.RandomTinyModel;
import ai.lorapar.examples.embedded.TinyModelConfig;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code lorapar train} and {@code lorapar eval} on a random-weight model of the embedded shape: both stages
 * with a few steps, the adapter, metrics and checkpoints they write, refusal to overwrite a run without
 * --resume, a resume that finds both stages done, option errors, and eval of the trained adapter.
 */
class TrainEvalCommandTest {

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

    /** LoRA-PAR masks of random importance over the adapters 'train' makes by default (QKVGUD, r = 8). */
    private static void writeMasks(Path model, Path masks, Path random) throws Exception {
        try (NDManager m = NDManager.newBaseManager();
                DecoderModel dm = DecoderModel.load(model, m);
                LoraModel lora = LoraModel.apply(dm, LoraConfig.builder().seed(42).build(), m)) {
            m.getEngine().setRandomSeed(2);
            Map<String, NDArray> a = new LinkedHashMap<>();
            Map<String, NDArray> b = new LinkedHashMap<>();
            lora.parameters().forEach((name, p) -> {
                a.put(name, m.randomUniform(0f, 1f, p.getShape(), DataType.FLOAT32).pow(4));
                b.put(name, m.randomUniform(0f, 1f, p.getShape(), DataType.FLOAT32).pow(4));
            });
            try (ImportanceMap i1 = ImportanceMap.of(m, a, 4); ImportanceMap i2 = ImportanceMap.of(m, b, 4);
                    SubregionPartition p = SubregionPartition.builder().system1(i1).system2(i2).build();
                    StageMasks r = p.randomBaseline(3)) {
                p.stageMasks().save(masks);
                r.save(random);
            }
        }
    }

    private static List<JsonObject> jsonl(Path file) throws Exception {
        List<JsonObject> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            out.add(JsonParser.parseString(line).getAsJsonObject());
        }
        return out;
    }

    @Test
    void trainBothStagesResumeAndEvaluate() throws Exception {
        Path model = RandomTinyModel.write(dir.resolve("model"), new TinyModelConfig(32, 2, 2, 1, 64, 256, true), 1);
        Path data = dir.resolve("data");
        assertThat(run("data", "-o", data.toString(), "--train", "16", "--test", "4").code()).isZero();
        Path labelled = dir.resolve("labelled.jsonl");
        assertThat(run("label", data.resolve("train.jsonl").toString(), "-o", labelled.toString()).code()).isZero();
        Path masks = dir.resolve("masks.safetensors");
        Path random = dir.resolve("masks-random.safetensors");
        writeMasks(model, masks, random);

        Path out = dir.resolve("run");
        List<String> train = new ArrayList<>(List.of("train", labelled.toString(), "--model", model.toString(), "-o",
                out.toString(), "--masks", masks.toString(), "--sft-steps", "2", "--micro-batch", "4", "--accumulation",
                "1", "--grpo-steps", "1", "--group", "2", "--prompts-per-step", "2", "--max-completion", "4",
                "--max-length", "200", "--checkpoint-every", "1", "--completion-log-every", "1", "--device", "cpu"));
        Result r = run(train.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("8 System1 and 8 System2 examples", "recipe lora-par", "sft: 2/2 steps",
                "grpo: 1/1 steps", "last reward");
        assertThat(out.resolve("adapter/adapter_config.json")).exists();
        assertThat(out.resolve("checkpoints/sft/step-000002/trainer_state.json")).exists();
        assertThat(out.resolve("checkpoints/grpo/step-000001/trainer_state.json")).exists();
        assertThat(Files.readAllLines(out.resolve("completions.jsonl"))).hasSize(4);
        List<JsonObject> metrics = jsonl(out.resolve("metrics.jsonl"));
        assertThat(metrics).filteredOn(o -> o.get("event").getAsString().equals("stage_end"))
                .extracting(o -> o.get("stage").getAsString()).containsExactly("sft", "grpo");
        assertThat(metrics).filteredOn(o -> o.get("event").getAsString().equals("step")
                && o.get("stage").getAsString().equals("grpo")).singleElement()
                .satisfies(o -> assertThat(o.has("rewards/correctness_reward_func/mean")).isTrue());

        // the same command again would overwrite the run: refused without --resume
        Result again = run(train.toArray(String[]::new));
        assertThat(again.code()).isEqualTo(1);
        assertThat(again.err()).contains("--resume");
        train.add("--resume");
        Result resumed = run(train.toArray(String[]::new));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.out()).contains("sft: 2/2 steps (resumed after step 2)", "grpo: 1/1 steps (resumed after step 1)");

        // option errors name the option
        Result noMasks = run("train", labelled.toString(), "--model", model.toString(), "-o", dir.resolve("x").toString());
        assertThat(noMasks.code()).isEqualTo(1);
        assertThat(noMasks.err()).contains("needs --masks");
        Result plainWithMasks = run("train", labelled.toString(), "--model", model.toString(), "--recipe", "plain-lora",
                "--masks", random.toString(), "-o", dir.resolve("x").toString());
        assertThat(plainWithMasks.err()).contains("takes no --masks");
        Result grpoFirst = run("train", labelled.toString(), "--model", model.toString(), "--masks", random.toString(),
                "--recipe", "random", "--stage", "grpo", "-o", dir.resolve("y").toString());
        assertThat(grpoFirst.code()).isEqualTo(1);
        assertThat(grpoFirst.err()).contains("--stage sft first");

        // eval of the trained adapter, per system with the labels
        Path report = dir.resolve("eval.jsonl");
        Result e = run("eval", data.resolve("test.jsonl").toString(), "--model", model.toString(), "--adapter",
                out.resolve("adapter").toString(), "--labels", labelled.toString(), "--limit", "3", "--max-new", "4",
                "--batch", "2", "--device", "cpu", "-o", report.toString());
        assertThat(e.code()).as(e.err()).isZero();
        assertThat(e.out()).contains("model + adapter adapter on test.jsonl: exact match", "0 of 3 examples found");
        assertThat(Files.readAllLines(report)).hasSize(3);
    }
}
