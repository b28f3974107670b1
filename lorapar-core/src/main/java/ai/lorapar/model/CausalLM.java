package ai.lorapar.model;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.tokenizer.TextTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model folder opened as a whole: the {@link DecoderModel} and, when the folder has a
 * {@code tokenizer.json}, its {@link TextTokenizer}. Closing it closes both.
 *
 * <p>A folder without {@code tokenizer.json} still opens (token-id generation and training need no
 * tokenizer); {@link #tokenizer()} then fails naming the missing file, and {@link #hasTokenizer()} tells
 * beforehand.
 */
public final class CausalLM implements AutoCloseable {
    private final DecoderModel model;
    private final TextTokenizer tokenizer;
    private final Path folder;

    private CausalLM(DecoderModel model, TextTokenizer tokenizer, Path folder) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.folder = folder;
    }

    /**
     * Opens {@code folder} with the default compute dtype.
     *
     * @param folder a Hugging Face model folder
     * @param manager the parent manager of the weights
     * @return the model and tokenizer; close it
     * @throws IOException naming the file, key or tensor at fault
     */
    public static CausalLM load(Path folder, NDManager manager) throws IOException {
        return load(folder, manager, null);
    }

    /**
     * Opens {@code folder}; {@code dtype} as in {@link DecoderModel#load(Path, NDManager, DataType)}.
     *
     * @param folder a Hugging Face model folder
     * @param manager the parent manager of the weights
     * @param dtype the compute dtype, or null for the default
     * @return the model and tokenizer; close it
     * @throws IOException naming the file, key or tensor at fault
     */
    public static CausalLM load(Path folder, NDManager manager, DataType dtype) throws IOException {
        DecoderModel model = DecoderModel.load(folder, manager, dtype);
        try {
            TextTokenizer tk = Files.isRegularFile(folder.resolve("tokenizer.json")) ? TextTokenizer.load(folder) : null;
            return new CausalLM(model, tk, folder);
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * The model.
     *
     * @return the decoder (closed by {@link #close()})
     */
    public DecoderModel model() {
        return model;
    }

    /**
     * The tokenizer of the folder.
     *
     * @return the tokenizer (closed by {@link #close()})
     * @throws IllegalStateException naming the missing {@code tokenizer.json} when the folder has none
     */
    public TextTokenizer tokenizer() {
        if (tokenizer == null) {
            throw new IllegalStateException(folder.resolve("tokenizer.json") + " is missing: this model folder has no "
                    + "tokenizer (only fast tokenizers are read; convert a tokenizer.model with transformers' "
                    + "save_pretrained), so texts cannot be encoded or decoded");
        }
        return tokenizer;
    }

    /**
     * Whether the folder has a {@code tokenizer.json}.
     *
     * @return true when {@link #tokenizer()} can be called
     */
    public boolean hasTokenizer() {
        return tokenizer != null;
    }

    /**
     * A generator over this model and, when there is one, its tokenizer (without one, only token ids can
     * be generated).
     *
     * @return a new generator
     */
    public Generator generator() {
        return new Generator(model, tokenizer);
    }

    @Override
    public void close() {
        try {
            model.close();
        } finally {
            if (tokenizer != null) {
                tokenizer.close();
            }
        }
    }
}
