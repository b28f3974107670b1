package ai.lorapar.examples.embedded;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The embedded default of the main job, shipped as class-path resources under {@code embedded/}: the tiny
 * model's folder ({@code embedded/tiny-arith/}: tokenizer and config, later the weights) and a train/test
 * split of word problems ({@code embedded/word-problems/}), both written by {@link MakeEmbeddedDefault}.
 */
public final class EmbeddedDefault {

    /** Resource folder of the tiny model. */
    public static final String MODEL_RESOURCE = "embedded/tiny-arith/";
    /** Resource folder of the word problems. */
    public static final String DATA_RESOURCE = "embedded/word-problems/";
    /** Files of the model folder (weights, when present, are {@code model.safetensors}). */
    public static final List<String> MODEL_FILES = List.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "making.json");
    /** Optional files of the model folder. */
    public static final List<String> OPTIONAL_MODEL_FILES = List.of("model.safetensors");
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
        making.addProperty("weights", "not trained yet: model.safetensors is written by the pretraining program");
        EmbeddedTokenizer.writeJson(folder.resolve("making.json"), making);
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
