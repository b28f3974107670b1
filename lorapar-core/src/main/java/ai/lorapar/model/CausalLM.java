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
 */
public final class CausalLM implements AutoCloseable {
    private final DecoderModel model;
    private final TextTokenizer tokenizer;

    private CausalLM(DecoderModel model, TextTokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Opens {@code folder} with the default compute dtype. */
    public static CausalLM load(Path folder, NDManager manager) throws IOException {
        return load(folder, manager, null);
    }

    /** Opens {@code folder}; {@code dtype} as in {@link DecoderModel#load(Path, NDManager, DataType)}. */
    public static CausalLM load(Path folder, NDManager manager, DataType dtype) throws IOException {
        DecoderModel model = DecoderModel.load(folder, manager, dtype);
        try {
            TextTokenizer tk = Files.isRegularFile(folder.resolve("tokenizer.json")) ? TextTokenizer.load(folder) : null;
            return new CausalLM(model, tk);
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    public DecoderModel model() {
        return model;
    }

    /** The tokenizer, or null when the folder has no tokenizer.json. */
    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    /** A generator over this model (and tokenizer, when there is one). */
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
