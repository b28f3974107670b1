package ai.lorapar.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonlExamplesTest {

    @TempDir
    Path dir;

    private Path write(String name, String... lines) throws IOException {
        Path file = dir.resolve(name);
        Files.writeString(file, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
        return file;
    }

    @Test
    void readsGsm8kAlpacaAndDollyShapes() throws IOException {
        Path file = write("mixed.jsonl",
                "{\"question\": \"What is 2+3?\", \"answer\": \"2+3=<<2+3=5>>5\\n#### 5\"}",
                "",
                "{\"instruction\": \"Translate\", \"input\": \"Hallo\", \"output\": \"Hello\"}",
                "{\"instruction\": \"Name a colour\", \"input\": \"\", \"output\": \"Red\"}",
                "{\"id\": 77, \"instruction\": \"Summarise\", \"context\": \"Long text.\", \"response\": \"Short.\", \"category\": \"summarization\"}");
        List<Example> examples = JsonlExamples.read(file);
        assertThat(examples).hasSize(4);
        assertThat(examples.get(0)).extracting(Example::id, Example::line, Example::format, Example::question)
                .containsExactly("1", 1, ExampleFormat.QUESTION_ANSWER, "What is 2+3?");
        assertThat(examples.get(0).answer()).endsWith("#### 5");
        assertThat(examples.get(1).line()).isEqualTo(3);
        assertThat(examples.get(1).question()).isEqualTo("Translate\n\nHallo");
        assertThat(examples.get(1).format()).isEqualTo(ExampleFormat.INSTRUCTION_INPUT_OUTPUT);
        assertThat(examples.get(2).question()).isEqualTo("Name a colour");
        assertThat(examples.get(3)).extracting(Example::id, Example::format, Example::question, Example::answer)
                .containsExactly("77", ExampleFormat.INSTRUCTION_CONTEXT_RESPONSE, "Summarise\n\nLong text.", "Short.");
        assertThat(examples.get(3).sourceJson()).contains("\"category\"");
    }

    @Test
    void limitCountsExamplesNotLines() throws IOException {
        Path file = write("gsm.jsonl", "", "{\"question\":\"a\",\"answer\":\"1\"}", "{\"question\":\"b\",\"answer\":\"2\"}",
                "this line is never reached");
        assertThat(JsonlExamples.read(file, 2)).extracting(Example::question).containsExactly("a", "b");
    }

    @Test
    void skipsByteOrderMark() throws IOException {
        Path file = write("bom.jsonl", "\uFEFF{\"question\":\"q\",\"answer\":\"a\"}");
        assertThat(JsonlExamples.read(file)).singleElement().extracting(Example::question).isEqualTo("q");
    }

    @Test
    void invalidJsonNamesFileAndLine() throws IOException {
        Path file = write("broken.jsonl", "{\"question\":\"a\",\"answer\":\"1\"}", "{\"question\": \"unterminated");
        assertThatThrownBy(() -> JsonlExamples.read(file))
                .isInstanceOf(MalformedJsonlException.class)
                .hasMessageStartingWith(file + ":2: not valid JSON")
                .satisfies(e -> assertThat(((MalformedJsonlException) e).line()).isEqualTo(2));
    }

    @Test
    void unknownShapeListsExpectedAndFoundFields() throws IOException {
        Path file = write("shape.jsonl", "{\"prompt\":\"a\",\"completion\":\"b\"}");
        assertThatThrownBy(() -> JsonlExamples.read(file))
                .isInstanceOf(MalformedJsonlException.class)
                .hasMessageContaining(":1: expected fields {question, answer}")
                .hasMessageContaining("[prompt, completion]");
    }

    @Test
    void nonObjectAndNonStringFieldsAreRejected() throws IOException {
        Path array = write("array.jsonl", "[1,2]");
        assertThatThrownBy(() -> JsonlExamples.read(array)).hasMessageContaining(":1: expected a JSON object, found an array");
        Path nested = write("nested.jsonl", "{\"question\":{\"text\":\"q\"},\"answer\":\"a\"}");
        assertThatThrownBy(() -> JsonlExamples.read(nested))
                .hasMessageContaining(":1: field \"question\" must be a string, found an object");
    }

    @Test
    void atomicWriteReplacesWholeFileAndLeavesNoTemporaryFile() throws IOException {
        Path target = dir.resolve("out/labels.jsonl");
        AtomicFiles.writeUtf8(target, w -> w.write("first\n"));
        AtomicFiles.writeUtf8(target, w -> w.write("second\n"));
        assertThat(Files.readString(target)).isEqualTo("second\n");
        assertThatThrownBy(() -> AtomicFiles.writeUtf8(target, w -> {
            w.write("half");
            throw new IOException("disk full");
        })).hasMessageContaining("disk full").hasMessageContaining(target.toString());
        assertThat(Files.readString(target)).isEqualTo("second\n");
        try (var files = Files.list(target.getParent())) {
            assertThat(files).containsExactly(target);
        }
    }
}
