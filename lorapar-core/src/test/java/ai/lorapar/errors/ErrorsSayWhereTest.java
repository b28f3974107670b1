package ai.lorapar.errors;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.JsonlExamples;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.MalformedJsonlException;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.split.LabelCache;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Errors that used to say what but not where now name the file (and line or key). */
class ErrorsSayWhereTest {
    @TempDir
    Path dir;

    /** Good lines, one with a Latin-1 byte (0xE9) on line {@code badLine}, then 300 more lines. */
    private Path latin1OnLine(int badLine) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 1; i <= badLine + 300; i++) {
            String line = "{\"question\": \"q" + i + " " + "x".repeat(40) + "\", \"answer\": \"a\", "
                    + "\"lorapar_label\": \"System1\"}\n";
            byte[] bytes = line.getBytes(StandardCharsets.UTF_8);
            if (i == badLine) {
                String latin1 = line.replace("q" + i, "caf?");
                bytes = latin1.getBytes(StandardCharsets.ISO_8859_1);
                bytes[latin1.indexOf("caf?") + 3] = (byte) 0xE9; // "café" in Latin-1

            }
            out.write(bytes);
        }
        Path file = dir.resolve("latin1-" + badLine + ".jsonl");
        Files.write(file, out.toByteArray());
        return file;
    }

    @Test
    void invalidUtf8InAJsonlFileNamesTheFileAndLine() throws Exception {
        for (int bad : new int[] {4, 250}) {
            Path file = latin1OnLine(bad);
            assertThatThrownBy(() -> JsonlExamples.read(file)).isInstanceOf(MalformedJsonlException.class)
                    .hasMessageStartingWith(file + ":" + bad + ": not valid UTF-8")
                    .hasMessageContaining("0xE9")
                    .satisfies(e -> assertThat(((MalformedJsonlException) e).line()).isEqualTo(bad));
            assertThatThrownBy(() -> LabelledJsonl.readByLabel(file)).hasMessageStartingWith(file + ":" + bad + ":");
        }
        // the label cache reads its file the same way
        Path cache = dir.resolve("cache.jsonl");
        Files.write(cache, new byte[] {'{', '"', 'k', (byte) 0xC3, '"', '}', '\n'});
        assertThatThrownBy(() -> LabelCache.open(cache)).hasMessageStartingWith(cache + ":1: not valid UTF-8");
        // CRLF files and a BOM still read
        Path crlf = dir.resolve("crlf.jsonl");
        Files.writeString(crlf, "\uFEFF{\"question\": \"é?\", \"answer\": \"a\"}\r\n{\"question\": \"q\", \"answer\": \"b\"}");
        assertThat(JsonlExamples.read(crlf)).extracting(e -> e.question() + e.answer()).containsExactly("é?a", "qb");
        assertThat(JsonlExamples.read(crlf, 1)).hasSize(1);
    }

    @Test
    void aBrokenTokenizerJsonNamesTheFile() throws Exception {
        Path folder = Files.createDirectories(dir.resolve("tok"));
        Files.writeString(folder.resolve("tokenizer.json"), "{1: 2}");
        assertThatThrownBy(() -> TextTokenizer.load(folder)).hasMessageContaining(folder.resolve("tokenizer.json").toString())
                .hasMessageContaining("not a Hugging Face tokenizer file");
    }

    @Test
    void aNonNumericExampleCountInAnImportanceFileNamesFileAndKey() throws Exception {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.create(new float[] {1, 2});
            Path file = dir.resolve("s1.safetensors");
            SafetensorsWriter.write(file, Map.of("l.lora_A", a), Map.of("format", "lorapar-importance", "num_examples", "12k"));
            assertThatThrownBy(() -> ImportanceMap.load(file, m)).isNotInstanceOf(NumberFormatException.class)
                    .hasMessageContaining(file.toString()).hasMessageContaining("num_examples")
                    .hasMessageContaining("'12k'");
        }
    }
}
