package ai.lorapar.eval;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class Gsm8kEvaluatorTest {

    private static List<Example> examples() {
        return List.of(
                Example.of("a", "Q1?", "3 + 4 = 7\n#### 7"),
                Example.of("b", "Q2?", "#### 1,200"),
                Example.of("c", "Q3?", "#### -2"),
                Example.of("d", "Q4?", "#### 0.5"),
                Example.of("e", "Q5?", "#### 10"));
    }

    /** The accuracy of canned outputs, counted by hand. */
    @Test
    void scoresCannedCompletions() {
        List<String> predictions = List.of(
                "3 + 4 = 7\n#### 7",                                      // right (####)
                "<reasoning>\n...\n</reasoning>\n<answer>\n1200\n</answer>", // right (tag, commas normalised)
                "the answer is 2",                                        // wrong sign
                "half: $0.50.",                                           // right (last number, trailing zero)
                "#### 11 and later 10");                                  // wrong (#### wins over the last number)
        Map<String, SystemLabel> labels = Map.of("a", SystemLabel.SYSTEM_1, "b", SystemLabel.SYSTEM_1,
                "c", SystemLabel.SYSTEM_2, "d", SystemLabel.SYSTEM_2);   // e unlabelled
        EvalReport r = Gsm8kEvaluator.score(examples(), predictions, labels);
        assertThat(r.records()).extracting(EvalReport.Record::correct).containsExactly(true, true, false, true, false);
        assertThat(r.records()).extracting(EvalReport.Record::extracted).containsExactly("7", "1200", "2", "0.5", "11");
        assertThat(r.records()).extracting(EvalReport.Record::reference).containsExactly("7", "1200", "-2", "0.5", "10");
        assertThat(r.correct()).isEqualTo(3);
        assertThat(r.total()).isEqualTo(5);
        assertThat(r.accuracy()).isEqualTo(0.6);
        assertThat(r.byLabel()).containsOnlyKeys(SystemLabel.SYSTEM_1, SystemLabel.SYSTEM_2);
        assertThat(r.byLabel().get(SystemLabel.SYSTEM_1)).isEqualTo(new EvalReport.Accuracy(2, 2));
        assertThat(r.byLabel().get(SystemLabel.SYSTEM_2)).isEqualTo(new EvalReport.Accuracy(1, 2));
        assertThat(r.methodCounts()).containsEntry(AnswerExtraction.Method.HASH, 2)
                .containsEntry(AnswerExtraction.Method.ANSWER_TAG, 1).containsEntry(AnswerExtraction.Method.LAST_NUMBER, 2);
        assertThat(r.format()).isEqualTo("exact match 3/5 = 60.00%, System1 2/2 = 100.00%, System2 1/2 = 50.00%");
        assertThat(Gsm8kEvaluator.score(List.of(), List.of(), Map.of()).accuracy()).isNaN();
    }

    @Test
    void badInputNamesTheProblem() {
        assertThatThrownBy(() -> Gsm8kEvaluator.score(examples(), List.of("x"), Map.of()))
                .hasMessageContaining("5 examples but 1 predictions");
        assertThatThrownBy(() -> Gsm8kEvaluator.score(List.of(Example.of("q9", "Q", "no marker")), List.of("1"), Map.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'q9'").hasMessageContaining("####");
        assertThatThrownBy(() -> Gsm8kEvaluator.builder().build()).hasMessageContaining("encoder");
    }

    /**
     * On a fixture model the evaluator's outputs are the generator's own greedy outputs for the encoder's
     * prompts, batch by batch, and the report scores them.
     */
    @Test
    void evaluatesWithBatchedGreedyDecoding(@TempDir Path tmp) throws Exception {
        try (NDManager m = NDManager.newBaseManager();
                DecoderModel model = DecoderModel.load(EvalFixtures.model("qwen2"), m, DataType.FLOAT32);
                TextTokenizer tk = TextTokenizer.load(EvalFixtures.byteTokenizer())) {
            ExampleEncoder enc = ExampleEncoder.builder(tk).maxLength(64).build();
            List<String> progress = new ArrayList<>();
            Gsm8kEvaluator ev = Gsm8kEvaluator.builder().encoder(enc).maxNewTokens(6).batchSize(2)
                    .progress((done, total) -> progress.add(done + "/" + total)).build();
            List<Example> ex = examples();
            EvalReport r = ev.evaluate(model, ex);
            assertThat(progress).as("after every batch").containsExactly("2/5", "4/5", "5/5");

            Generator g = new Generator(model, tk);
            List<String> direct = new ArrayList<>();
            for (int from = 0; from < ex.size(); from += 2) {
                List<long[]> prompts = new ArrayList<>();
                for (Example e : ex.subList(from, Math.min(ex.size(), from + 2))) {
                    prompts.add(enc.encodePrompt(e));
                }
                GenerationResult gr = g.generate(prompts, SamplingConfig.greedy(6));
                direct.addAll(gr.texts());
            }
            assertThat(r.records()).extracting(EvalReport.Record::prediction).containsExactlyElementsOf(direct);
            EvalReport canned = Gsm8kEvaluator.score(ex, direct, Map.of());
            assertThat(r.records()).isEqualTo(canned.records());

            // labelled: the same outputs, split by system
            EvalReport labelled = ev.evaluate(g, Map.of(SystemLabel.SYSTEM_2, ex.subList(2, 5),
                    SystemLabel.SYSTEM_1, ex.subList(0, 2)));
            assertThat(labelled.records()).extracting(EvalReport.Record::label).containsExactly(SystemLabel.SYSTEM_1,
                    SystemLabel.SYSTEM_1, SystemLabel.SYSTEM_2, SystemLabel.SYSTEM_2, SystemLabel.SYSTEM_2);
            assertThat(labelled.byLabel().get(SystemLabel.SYSTEM_1).total()).isEqualTo(2);
            assertThat(labelled.byLabel().get(SystemLabel.SYSTEM_2).total()).isEqualTo(3);

            Path out = tmp.resolve("report.jsonl");
            r.writeJsonl(out);
            List<String> lines = Files.readAllLines(out);
            assertThat(lines).hasSize(5);
            assertThat(lines.get(0)).startsWith("{\"id\":\"a\",\"label\":null,\"reference\":\"7\"");
        }
    }
}
