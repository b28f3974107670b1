package ai.lorapar.examples.embedded;

import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;

/**
 * The embedded default of the main job, shipped as class-path resources under {@code embedded/}: the tiny
 * model's folder ({@code embedded/tiny-arith/}: tokenizer and config written by {@link MakeEmbeddedDefault},
 * weights and {@code training.json} by {@link TrainEmbeddedModel}) and a train/test split of word problems
 * ({@code embedded/word-problems/}, written by {@link MakeEmbeddedDefault}).
 *
 * <p><b>How the tiny model reads examples</b> ({@link #promptTemplate()}, {@link #encoder}): each turn is
 * its text followed by a newline, and the answer follows the question's newline directly:
 * <pre>
 * &lt;s&gt;[system prompt\n]question\nanswer&lt;/s&gt;
 * </pre>
 * With GRPO's system prompt ({@link EmbeddedTokenizer#GRPO_SYSTEM_PROMPT}) the completion therefore starts
 * with {@code <reasoning>}, as the reference's format rewards require (a template that put a newline at
 * the start of the completion, such as {@link PromptTemplate#plain()}, would fail the strict format).
 * Every stage that runs the tiny model (SFT, GRPO, evaluation) must use this template.
 */
public final class EmbeddedDefault {

    /** Resource folder of the tiny model. */
    public static final String MODEL_RESOURCE = "embedded/tiny-arith/";
    /** Resource folder of the word problems. */
    public static final String DATA_RESOURCE = "embedded/word-problems/";
    /** Files of the model folder (weights, when present, are {@code model.safetensors}). */
    public static final List<String> MODEL_FILES = List.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "making.json");
    /** Optional files of the model folder: the weights and what made them (written by {@link TrainEmbeddedModel}). */
    public static final List<String> OPTIONAL_MODEL_FILES = List.of("model.safetensors", "training.json");
    /** Files of the data folder. */
    public static final List<String> DATA_FILES = List.of("train.jsonl", "test.jsonl", "making.json");

    /** Default seed of the shipped data. */
    public static final long SEED = 42;
    /** Default sizes of the shipped split. */
    public static final int TRAIN_SIZE = 1000;
    public static final int TEST_SIZE = 200;

    private EmbeddedDefault() {
    }

    /**
     * Writes the model folder's tokenizer and config files: {@code tokenizer.json}, {@code
     * tokenizer_config.json}, {@code config.json}, {@code generation_config.json} and {@code making.json}
     * (what made them).
     */
    public static void writeModelFiles(Path folder, TinyModelConfig shape) throws IOException {
        List<String> vocabulary = EmbeddedTokenizer.defaultVocabulary();
        EmbeddedTokenizer.write(folder, vocabulary, shape.maxPositions());
        shape.write(folder, vocabulary.size());
        JsonObject making = new JsonObject();
        making.addProperty("program", MakeEmbeddedDefault.class.getName());
        making.addProperty("vocabulary", vocabulary.size());
        making.addProperty("parameters", shape.parameters(vocabulary.size()));
        making.addProperty("weights", "model.safetensors and training.json are written by "
                + TrainEmbeddedModel.class.getName());
        EmbeddedTokenizer.writeJson(folder.resolve("making.json"), making);
    }

    /**
     * The tiny model's prompt template: system turn (if any) and question each followed by a newline, the
     * answer right after (see the class comment).
     */
    public static PromptTemplate promptTemplate() {
        return PromptTemplate.custom(Map.of("system", "{content}\n", "user", "{content}\n", "assistant", "{content}"),
                "");
    }

    /**
     * The encoder every stage uses on the tiny model: {@link #promptTemplate()}, {@code systemPrompt} (null
     * for none; {@link EmbeddedTokenizer#GRPO_SYSTEM_PROMPT} for GRPO), the model's 512 positions, the
     * vocabulary checked.
     */
    public static ExampleEncoder encoder(TextTokenizer tokenizer, String systemPrompt) {
        return ExampleEncoder.builder(tokenizer).template(promptTemplate()).systemPrompt(systemPrompt)
                .maxLength(TinyModelConfig.DEFAULT.maxPositions())
                .vocabSize(EmbeddedTokenizer.defaultVocabulary().size()).build();
    }

    /** The shipped {@code train.jsonl} or {@code test.jsonl}, read from the class path. */
    public static List<WordProblem> shippedProblems(String file) throws IOException {
        try (InputStream in = EmbeddedDefault.class.getClassLoader().getResourceAsStream(DATA_RESOURCE + file)) {
            if (in == null) {
                throw new IOException("resource " + DATA_RESOURCE + file + " is not on the class path (rebuild "
                        + "lorapar-examples; the files are written by " + MakeEmbeddedDefault.class.getName() + ")");
            }
            return WordProblems.parseJsonl(new String(in.readAllBytes(), StandardCharsets.UTF_8), DATA_RESOURCE + file);
        }
    }

    /** Writes {@code train.jsonl}, {@code test.jsonl} and {@code making.json} (seed and settings) into {@code folder}. */
    public static WordProblems.Split writeData(Path folder, WordProblems generator, int trainSize, int testSize)
            throws IOException {
        WordProblems.Split split = generator.split(trainSize, testSize);
        WordProblems.writeJsonl(split.train(), folder.resolve("train.jsonl"));
        WordProblems.writeJsonl(split.test(), folder.resolve("test.jsonl"));
        JsonObject making = new JsonObject();
        making.addProperty("program", MakeEmbeddedDefault.class.getName());
        making.addProperty("generator", WordProblems.class.getName());
        making.addProperty("seed", generator.seed());
        making.addProperty("multi_step_operations", generator.minOperations() + ".." + generator.maxOperations());
        making.addProperty("max_value", generator.maxValue());
        making.addProperty("train", trainSize);
        making.addProperty("test", testSize);
        EmbeddedTokenizer.writeJson(folder.resolve("making.json"), making);
        return split;
    }

    /**
     * Copies the shipped model folder out of the class path into {@code target} (a model must be a folder to
     * load); returns {@code target}. Optional files that are not shipped are skipped.
     */
    public static Path extractModel(Path target) throws IOException {
        extract(MODEL_RESOURCE, MODEL_FILES, true, target);
        extract(MODEL_RESOURCE, OPTIONAL_MODEL_FILES, false, target);
        return target;
    }

    /** Copies the shipped {@code train.jsonl}, {@code test.jsonl} and {@code making.json} into {@code target}. */
    public static Path extractData(Path target) throws IOException {
        extract(DATA_RESOURCE, DATA_FILES, true, target);
        return target;
    }

    /** Whether the shipped model folder has weights. */
    public static boolean hasWeights() {
        return EmbeddedDefault.class.getClassLoader().getResource(MODEL_RESOURCE + "model.safetensors") != null;
    }

    private static void extract(String resource, List<String> files, boolean required, Path target) throws IOException {
        Files.createDirectories(target);
        for (String f : files) {
            try (InputStream in = EmbeddedDefault.class.getClassLoader().getResourceAsStream(resource + f)) {
                if (in == null) {
                    if (required) {
                        throw new IOException("resource " + resource + f + " is not on the class path (rebuild "
                                + "lorapar-examples; the files are written by " + MakeEmbeddedDefault.class.getName() + ")");
                    }
                    continue;
                }
                Files.copy(in, target.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }
}
