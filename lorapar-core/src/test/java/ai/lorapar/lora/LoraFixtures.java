package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.model.DecoderModel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.nio.file.Paths;

/** The tiny llama model fixture and the LoRA fixtures made by src/test/python/make_lora_fixtures.py. */
final class LoraFixtures {
    private LoraFixtures() {}

    static Path resource(String path) {
        URL url = LoraFixtures.class.getResource(path);
        if (url == null) {
            throw new IllegalStateException("missing test resource " + path);
        }
        try {
            return Paths.get(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path llama() {
        return resource("/fixtures/models/llama/model");
    }

    static Path lora() {
        return resource("/fixtures/lora");
    }

    static DecoderModel loadLlama(NDManager m) throws IOException {
        return DecoderModel.load(llama(), m, DataType.FLOAT32);
    }

    /** A tensor of fixtures/lora/reference.safetensors. */
    static NDArray ref(String tensor, NDManager m) {
        return load(lora().resolve("reference.safetensors"), tensor, m);
    }

    static NDArray load(Path file, String tensor, NDManager m) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.load(tensor, m);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float maxAbsDiff(NDArray a, NDArray b) {
        try (NDManager s = a.getManager().newSubManager()) {
            NDArray d = a.toType(DataType.FLOAT32, true).sub(b.toType(DataType.FLOAT32, true)).abs().max();
            d.attach(s);
            return d.getFloat();
        }
    }

    static float maxAbs(NDArray a) {
        try (NDManager s = a.getManager().newSubManager()) {
            NDArray d = a.toType(DataType.FLOAT32, true).abs().max();
            d.attach(s);
            return d.getFloat();
        }
    }
}
