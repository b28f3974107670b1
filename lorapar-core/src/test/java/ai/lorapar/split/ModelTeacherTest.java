package ai.lorapar.split;

import ai.lorapar.data.Vote;
import ai.lorapar.data.LabelledDataset;
import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The in-process teacher on the tiny Qwen2 fixture (random weights: its replies are noise, parsed as such). */
class ModelTeacherTest {
    @TempDir
    Path tmp;

    private static Path fixtures() throws Exception {
        return Paths.get(ModelTeacherTest.class.getResource("/fixtures/models").toURI());
    }

    @Test
    void repliesWithTheGreedyGenerationOfTheRenderedPromptAndIsCached() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(fixtures().resolve("qwen2").resolve("model"), m);
                TextTokenizer tk = TextTokenizer.load(fixtures().resolve("byte-tokenizer"))) {
            Generator generator = new Generator(model, tk);
            ModelTeacher teacher = ModelTeacher.builder(generator, "tiny-qwen2").template(PromptTemplate.chatMl())
                    .maxNewTokens(6).build();
            assertThat(teacher.id()).isEqualTo("local:tiny-qwen2");
            assertThat(teacher.model()).isEqualTo("tiny-qwen2");
            assertThat(teacher.cacheable()).isTrue();

            Example example = Example.of("1", "What is 2+3?", "2+3=5. #### 5");
            TeacherPrompt prompt = new TeacherPrompt(example, RolePlayPrompt.defaults().render(example));
            String expected = generator.generateText(List.of(PromptTemplate.chatMl().render(prompt.messages(), true)),
                    SamplingConfig.greedy(6)).texts().get(0);
            assertThat(teacher.ask(prompt)).isEqualTo(expected);
            assertThat(teacher.ask(prompt)).isEqualTo(expected); // greedy: the same reply every time

            Path cache = tmp.resolve("labels.cache.jsonl");
            List<Example> examples = List.of(example, Example.of("2", "Name a colour.", "Red."));
            LabelledDataset first = Splitter.vote(teacher, HeuristicTeacher.steps(), HeuristicTeacher.question())
                    .cache(cache).build().label(examples);
            Vote vote = first.examples().get(0).votes().get(0);
            assertThat(vote.teacherId()).isEqualTo("local:tiny-qwen2");
            assertThat(vote.rawReply()).isEqualTo(expected);
            assertThat(vote.fromCache()).isFalse();
            LabelledDataset again = Splitter.vote(teacher, HeuristicTeacher.steps(), HeuristicTeacher.question())
                    .cache(cache).build().label(examples);
            // only a reply that is a vote is cached (the random tiny model may well answer garbage)
            boolean isVote = ReplyParser.parse(expected).label() != null;
            assertThat(again.examples().get(0).votes().get(0).fromCache()).isEqualTo(isVote);
            assertThat(again.examples().get(0).votes().get(0).rawReply()).isEqualTo(expected);
        }
    }

    @Test
    void generatorWithoutTokenizerIsAConfigurationError() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(fixtures().resolve("qwen2").resolve("model"), m)) {
            ModelTeacher teacher = ModelTeacher.builder(new Generator(model), "no-tokenizer").build();
            Example example = Example.of("1", "q", "a");
            assertThatThrownBy(() -> teacher.ask(new TeacherPrompt(example, RolePlayPrompt.defaults().render(example))))
                    .isInstanceOf(TeacherException.class).hasMessageContaining("local:no-tokenizer");
            assertThatThrownBy(() -> ModelTeacher.builder(new Generator(model), " ")).hasMessageContaining("name");
        }
    }

    @Test
    void theCacheKeyChangesWithTheTemplateAndOnlyWithIt() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu());
                DecoderModel model = DecoderModel.load(fixtures().resolve("qwen2").resolve("model"), m)) {
            Generator generator = new Generator(model);
            String chatMl = ModelTeacher.builder(generator, "t").template(PromptTemplate.chatMl()).build().cacheIdentity();
            String chatMlAgain = ModelTeacher.builder(generator, "t").template(PromptTemplate.named("qwen")).build()
                    .cacheIdentity();
            String llama = ModelTeacher.builder(generator, "t").template(PromptTemplate.llama2Chat()).build().cacheIdentity();
            // a custom template without a system role still has an identity (from a user turn alone)
            String userOnly = ModelTeacher.builder(generator, "t")
                    .template(PromptTemplate.custom(java.util.Map.of("user", "Q: {content}\n"), "A:")).build()
                    .cacheIdentity();
            assertThat(chatMlAgain).isEqualTo(chatMl);
            assertThat(llama).isNotEqualTo(chatMl);
            assertThat(userOnly).contains("Q: {user}").isNotEqualTo(chatMl);
            assertThat(LabelCache.key(ModelTeacher.builder(generator, "t").template(PromptTemplate.llama2Chat()).build(), "p"))
                    .isNotEqualTo(LabelCache.key(ModelTeacher.builder(generator, "t").build(), "p"));
        }
    }
}
