package ai.lorapar.examples.pipeline;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.examples.BenchmarkModels;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The base model, its tokenizer and the encoders of one process: loaded once, shared by the units that
 * process runs (each unit installs and removes its own adapters).
 */
public final class ModelHandle implements AutoCloseable {
    /** Prefix of a model "folder" that stands for random weights of a benchmark shape. */
    public static final String RANDOM_PREFIX = "random:";

    private final NDManager manager;
    private final DecoderModel model;
    private final TextTokenizer tokenizer;
    private final PromptTemplate template;
    private final boolean embeddedTemplate;
    private final int maxLength;

    private ModelHandle(NDManager manager, DecoderModel model, TextTokenizer tokenizer, String templateName,
            int maxLength) {
        this.manager = manager;
        this.model = model;
        this.tokenizer = tokenizer;
        this.embeddedTemplate = templateName.equalsIgnoreCase("embedded");
        this.template = template(templateName);
        this.maxLength = maxLength;
    }

    /**
     * Loads the model of {@code modelDir} (a Hugging Face folder, or {@code random:SHAPE} for random weights of a
     * benchmark shape, which needs {@code tokenizerDir}) on {@code device}.
     */
    public static ModelHandle open(String modelDir, String tokenizerDir, String templateName, int maxLength,
            Device device) throws IOException {
        NDManager manager = EngineSupport.newBaseManager(device);
        try {
            DecoderModel model;
            Path tokenizerFolder;
            if (modelDir.startsWith(RANDOM_PREFIX)) {
                if (tokenizerDir == null) {
                    throw new IllegalArgumentException("--model " + modelDir + " (random weights) needs --tokenizer DIR");
                }
                model = BenchmarkModels.random(modelDir.substring(RANDOM_PREFIX.length()), manager, 0);
                tokenizerFolder = Path.of(tokenizerDir);
            } else {
                model = DecoderModel.load(Path.of(modelDir), manager);
                tokenizerFolder = Path.of(tokenizerDir != null ? tokenizerDir : modelDir);
            }
            TextTokenizer tokenizer = TextTokenizer.load(tokenizerFolder);
            // a prompt and its answer fit the model's positions (a small model may have fewer than --max-length)
            return new ModelHandle(manager, model, tokenizer, templateName, Math.min(maxLength,
                    model.config().maxPositions()));
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * A template by name: {@code embedded} ({@link EmbeddedDefault#promptTemplate()}, the tiny model's),
     * else {@link PromptTemplate#named} ({@code plain}, {@code chatml}, {@code llama2-chat}).
     */
    public static PromptTemplate template(String name) {
        return name.toLowerCase(Locale.ROOT).equals("embedded") ? EmbeddedDefault.promptTemplate()
                : PromptTemplate.named(name);
    }

    /** {@code cpu}, {@code gpu}, or null: a GPU when the engine has one. */
    public static Device device(String name) {
        if (name == null) {
            return EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        }
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "cpu" -> Device.cpu();
            case "gpu" -> Device.gpu();
            default -> throw new IllegalArgumentException("--device must be cpu or gpu, was " + name);
        };
    }

    /**
     * The encoder of every stage, with {@code systemPrompt} (null: none): for the embedded template exactly
     * {@link EmbeddedDefault#encoder}, else the named template with the run's maximum length and the model's
     * vocabulary checked.
     */
    public ExampleEncoder encoder(String systemPrompt) {
        if (embeddedTemplate && maxLength == EmbeddedDefault.encoder(tokenizer, null).maxLength()) {
            return EmbeddedDefault.encoder(tokenizer, systemPrompt);
        }
        return ExampleEncoder.builder(tokenizer).template(template).systemPrompt(systemPrompt).maxLength(maxLength)
                .vocabSize(model.config().vocabSize()).build();
    }

    /** The longest encoded example: the run's maximum length, at most the model's positions. */
    public int maxLength() {
        return maxLength;
    }

    public NDManager manager() {
        return manager;
    }

    public DecoderModel model() {
        return model;
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    @Override
    public void close() {
        try {
            tokenizer.close();
        } finally {
            try {
                model.close();
            } finally {
                manager.close();
            }
        }
    }
}
