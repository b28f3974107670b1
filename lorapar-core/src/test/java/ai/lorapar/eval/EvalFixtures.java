package ai.lorapar.eval;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Paths of the test fixtures: tiny models and the byte-level tokenizer (ids 0-255 bytes, bos 256, eos 257). */
public final class EvalFixtures {
    private EvalFixtures() {}

    public static Path resource(String path) {
        URL url = EvalFixtures.class.getResource(path);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + path);
        }
        try {
            return Paths.get(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A fixture model folder: llama, qwen2, mistral. */
    public static Path model(String name) {
        return resource("/fixtures/models/" + name + "/model");
    }

    public static Path byteTokenizer() {
        return resource("/fixtures/models/byte-tokenizer");
    }
}
