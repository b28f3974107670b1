package ai.lorapar.examples.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.examples.embedded.WordProblem.Kind;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.train.grpo.GsmRewards;
import ai.lorapar.train.grpo.RewardSet;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The pieces of {@link TrainEmbeddedModel} (formats and their rewards, corpus) and a two-step run of the program. */
class TrainEmbeddedModelTest {

    @TempDir
    Path dir;

    private static final WordProblem ONE = new WordProblem("Sam has 17 pencils. He gets 3 more pencils. How many pencils does Sam have now?",
            "Sam has 17 + 3 = <<17+3=20>>20 pencils now.\n#### 20", Kind.ONE_STEP, 1, 20);
    private static final WordProblem MULTI = new WordProblem("Rosa has 4 pencils. Eve has 2 fewer pencils than Rosa. Eve gets 10 more pencils. How many pencils does Eve have now?",
            "Eve has 4 - 2 = <<4-2=2>>2 pencils.\nEve has 2 + 10 = <<2+10=12>>12 pencils.\n#### 12", Kind.MULTI_STEP, 2, 12);

    @Test
    void theTagAnswerIsTheReferenceStrictFormatWithOneReasoningLine() {
        assertThat(MULTI.tagAnswer()).isEqualTo("<reasoning>\nEve has 4 - 2 = <<4-2=2>>2 pencils. Eve has 2 + 10 = "
                + "<<2+10=12>>12 pencils.\n</reasoning>\n<answer>\n12\n</answer>\n");
        // the reference's strict_format_reward_func regex, as Python's re.match applies it (no DOTALL)
        java.util.regex.Pattern strict = java.util.regex.Pattern.compile(
                "^<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n.*?\\n</answer>\\n$", java.util.regex.Pattern.UNIX_LINES);
        assertThat(strict.matcher(MULTI.tagAnswer()).lookingAt()).isTrue();
        assertThat(AnswerFormat.TAGS.isWellFormed(MULTI.tagAnswer())).isTrue();
        assertThat(AnswerFormat.TAGS.isWellFormed("\n" + MULTI.tagAnswer())).isFalse();
        assertThat(AnswerFormat.TAGS.isWellFormed(MULTI.tagAnswer().replace(" Eve has 2", "\nEve has 2"))).isFalse();
        assertThat(AnswerFormat.HASH.isWellFormed(MULTI.answer())).isTrue();
        assertThat(AnswerFormat.HASH.isWellFormed("Eve has 12 pencils.\n#### twelve")).isFalse();
    }

    @Test
    void theTagAnswerEarnsTheReferenceRewardsUnderTheReferenceSystemPrompt() {
        assertThat(EmbeddedTokenizer.GRPO_SYSTEM_PROMPT).isEqualTo(GsmRewards.SYSTEM_PROMPT);
        assertThat(AnswerFormat.TAGS.systemPrompt()).isEqualTo(GsmRewards.SYSTEM_PROMPT);
        RewardSet rewards = GsmRewards.reference();
        Example e = ONE.toExample("r");
        double[][] scores = rewards.scores(List.of(e, e), List.of(ONE.tagAnswer(), MULTI.tagAnswer()),
                List.of(new long[0], new long[0]));
        // xmlcount 4 x 0.125; soft format 0 (its regex has no DOTALL and the tags' contents sit on their own
        // lines, as in the reference); strict format 0.5; integer 0.5; correctness 2 for the right number only
        assertThat(scores[0]).containsExactly(0.5, 0.0, 0.5, 0.5, 2.0);
        assertThat(scores[1]).containsExactly(0.5, 0.0, 0.5, 0.5, 0.0);
        assertThat(rewards.names()).containsExactly(GsmRewards.XML_COUNT, GsmRewards.SOFT_FORMAT,
                GsmRewards.STRICT_FORMAT, GsmRewards.INTEGER, GsmRewards.CORRECTNESS);
    }

    @Test
    void aSystemPromptInTheQuestionEncodesAsTheSystemTurn() throws Exception {
        Path folder = dir.resolve("tok");
        EmbeddedDefault.writeModelFiles(folder, TinyModelConfig.DEFAULT);
        try (TextTokenizer tk = TextTokenizer.load(folder)) {
            ExampleEncoder plain = EmbeddedDefault.encoder(tk, null);
            ExampleEncoder grpo = EmbeddedDefault.encoder(tk, AnswerFormat.TAGS.systemPrompt());
            Example inQuestion = AnswerFormat.TAGS.example("a", ONE);
            Example bare = Example.of("b", ONE.question(), ONE.tagAnswer());
            assertThat(plain.encodePrompt(inQuestion)).containsExactly(grpo.encodePrompt(bare));
            assertThat(plain.encode(inQuestion).ids()).containsExactly(grpo.encode(bare).ids());
            // the completion starts with <reasoning> (no newline first) and ends with the eos id
            long[] ids = grpo.encode(bare).ids();
            int promptLength = grpo.encodePrompt(bare).length;
            assertThat(ids[promptLength]).isEqualTo((long) tk.tokenId("<reasoning>"));
            assertThat(ids[ids.length - 1]).isEqualTo(2L);
            assertThat(tk.decode(java.util.Arrays.copyOfRange(ids, promptLength, ids.length), true))
                    .isEqualTo(ONE.tagAnswer());
            // the hash format: the prompt ends with the question's newline, the answer follows
            long[] h = plain.encode(ONE.toExample("c")).ids();
            int hp = plain.encodePrompt(ONE.toExample("c")).length;
            assertThat(tk.decode(java.util.Arrays.copyOfRange(h, hp, h.length), true)).isEqualTo(ONE.answer());
            assertThat(tk.decode(plain.encodePrompt(ONE.toExample("c")), true)).isEqualTo(ONE.question() + "\n");
        }
    }

    @Test
    void theCorpusIsSeededAndAvoidsTheShippedQuestions() throws Exception {
        TrainEmbeddedModel.Settings s = TrainEmbeddedModel.Settings.parse(new String[] {"--one-step", "30",
                "--one-step-tags", "20", "--multi-step", "10", "--multi-step-tags", "5", "--validation", "8"});
        Set<String> exclude = new HashSet<>();
        EmbeddedDefault.shippedProblems("train.jsonl").forEach(p -> exclude.add(p.question()));
        EmbeddedDefault.shippedProblems("test.jsonl").forEach(p -> exclude.add(p.question()));
        TrainEmbeddedModel.Corpus a = TrainEmbeddedModel.corpus(s, exclude);
        TrainEmbeddedModel.Corpus b = TrainEmbeddedModel.corpus(s, exclude);
        assertThat(a.training()).isEqualTo(b.training());
        assertThat(a.counts()).containsExactly(java.util.Map.entry("one_step_hash", 30),
                java.util.Map.entry("one_step_tags", 20), java.util.Map.entry("multi_step_hash", 10),
                java.util.Map.entry("multi_step_tags", 5));
        assertThat(a.training()).hasSize(65);
        assertThat(a.validation()).hasSize(8);
        assertThat(a.validation().stream().filter(p -> p.kind() == Kind.ONE_STEP)).hasSize(4);
        Set<String> questions = new HashSet<>();
        for (Example e : a.training()) {
            String q = e.question().startsWith(EmbeddedTokenizer.GRPO_SYSTEM_PROMPT)
                    ? e.question().substring(EmbeddedTokenizer.GRPO_SYSTEM_PROMPT.length() + 1) : e.question();
            assertThat(exclude).doesNotContain(q);
            assertThat(questions.add(q)).as("repeated question %s", q).isTrue();
            assertThat(e.answer().endsWith("\n</answer>\n")).isEqualTo(e.id().contains("tags"));
        }
        for (WordProblem p : a.validation()) {
            assertThat(questions).doesNotContain(p.question());
            assertThat(exclude).doesNotContain(p.question());
        }
        TrainEmbeddedModel.Settings other = TrainEmbeddedModel.Settings.parse(new String[] {"--seed", "7",
                "--one-step", "30", "--one-step-tags", "20", "--multi-step", "10", "--multi-step-tags", "5"});
        assertThat(TrainEmbeddedModel.corpus(other, exclude).training()).isNotEqualTo(a.training());
    }

    @Test
    void wordProblemsReadBackFromJsonl() throws Exception {
        List<WordProblem> problems = WordProblems.builder().build().generate(20);
        Path f = dir.resolve("p.jsonl");
        WordProblems.writeJsonl(problems, f);
        assertThat(WordProblems.readJsonl(f)).isEqualTo(problems);
        assertThat(EmbeddedDefault.shippedProblems("test.jsonl")).hasSize(EmbeddedDefault.TEST_SIZE);
        assertThat(WordProblems.builder().build().oneStep(new Random(3)).tagAnswer()).startsWith("<reasoning>\n");
    }

    @Test
    void aShortRunWritesTheFolderAndARecordThatMatchesIt() throws Exception {
        Path out = dir.resolve("tiny");
        TrainEmbeddedModel.Settings s = TrainEmbeddedModel.Settings.parse(new String[] {out.toString(),
                "--one-step", "16", "--one-step-tags", "8", "--multi-step", "4", "--multi-step-tags", "4",
                "--validation", "2", "--steps", "2", "--batch", "8", "--micro-batch", "8", "--test-items", "4", "--max-new-tokens", "8", "--probe-groups", "1"});
        JsonObject json = TrainEmbeddedModel.run(s);
        for (String f : EmbeddedDefault.MODEL_FILES) {
            assertThat(out.resolve(f)).exists();
        }
        assertThat(Files.readString(out.resolve("config.json"))).isEqualTo(
                Files.readString(EmbeddedDefault.extractModel(dir.resolve("shipped")).resolve("config.json")));
        JsonObject written = JsonParser.parseString(Files.readString(out.resolve("training.json"))).getAsJsonObject();
        assertThat(written).isEqualTo(json);
        assertThat(written.get("steps").getAsInt()).isEqualTo(2);
        assertThat(written.getAsJsonObject("files").getAsJsonObject("model.safetensors").get("sha256").getAsString())
                .isEqualTo(TrainEmbeddedModel.sha256(out.resolve("model.safetensors")));
        JsonObject acc = written.getAsJsonObject("accuracy");
        for (AnswerFormat f : AnswerFormat.values()) {
            int total = 0;
            for (Kind k : Kind.values()) {
                total += acc.getAsJsonObject(f.key()).getAsJsonObject(k.text()).get("total").getAsInt();
            }
            assertThat(total).isEqualTo(4);
        }
        JsonObject probe = written.getAsJsonObject("grpo_reward_probe");
        assertThat(probe.get("groups").getAsInt()).isEqualTo(1);
        assertThat(probe.getAsJsonObject("mean_by_function").keySet()).containsExactlyElementsOf(
                GsmRewards.reference().names());
    }
}
