package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.io.SafetensorsFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.nio.file.Paths;

/** The model fixtures made by src/test/python/make_model_fixtures.py. */
final class Fixtures {
    private Fixtures() {}

    static Path root() {
        try {
            return Paths.get(Fixtures.class.getResource("/fixtures/models").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path model(String name) {
        return root().resolve(name).resolve("model");
    }

    /** Reference tensors of fixture {@code name}, loaded into {@code m}. */
    static NDArray ref(String name, String tensor, NDManager m) {
        try (SafetensorsFile f = SafetensorsFile.open(root().resolve(name).resolve("reference.safetensors"))) {
            return f.load(tensor, m);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** transformers' own bf16 CUDA logits of fixture {@code name} (make_bf16_references.py), or null when absent. */
    static NDArray refBf16(String name, String tensor, NDManager m) {
        Path file = root().resolve(name).resolve("reference_bf16.safetensors");
        if (!java.nio.file.Files.exists(file)) {
            return null;
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.load(tensor, m);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static boolean hasRef(String name, String tensor) {
        try (SafetensorsFile f = SafetensorsFile.open(root().resolve(name).resolve("reference.safetensors"))) {
            return f.contains(tensor);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float maxAbsDiff(NDArray a, NDArray b) {
        try (NDArray d = a.toType(ai.djl.ndarray.types.DataType.FLOAT32, true).sub(b.toType(ai.djl.ndarray.types.DataType.FLOAT32, true)).abs().max()) {
            return d.getFloat();
        }
    }
}
