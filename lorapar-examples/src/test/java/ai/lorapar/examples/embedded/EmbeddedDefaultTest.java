package ai.lorapar.examples.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The committed embedded files are exactly what {@link MakeEmbeddedDefault} writes with its defaults. */
class EmbeddedDefaultTest {

    @TempDir
    Path dir;

    @Test
    void theShippedFilesAreReproducible() throws Exception {
        MakeEmbeddedDefault.main(new String[] {dir.toString()});
        Path shippedModel = EmbeddedDefault.extractModel(dir.resolve("shipped-model"));
        Path shippedData = EmbeddedDefault.extractData(dir.resolve("shipped-data"));
        for (String f : EmbeddedDefault.MODEL_FILES) {
            assertThat(Files.readString(shippedModel.resolve(f))).as(f)
                    .isEqualTo(Files.readString(dir.resolve("tiny-arith").resolve(f)));
        }
        for (String f : EmbeddedDefault.DATA_FILES) {
            assertThat(Files.readString(shippedData.resolve(f))).as(f)
                    .isEqualTo(Files.readString(dir.resolve("word-problems").resolve(f)));
        }
        List<String> train = Files.readAllLines(shippedData.resolve("train.jsonl"));
        assertThat(train).hasSize(EmbeddedDefault.TRAIN_SIZE);
        assertThat(Files.readAllLines(shippedData.resolve("test.jsonl"))).hasSize(EmbeddedDefault.TEST_SIZE);
    }
}
