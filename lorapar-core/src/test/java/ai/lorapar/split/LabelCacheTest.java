package ai.lorapar.split;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.MalformedJsonlException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LabelCacheTest {

    @TempDir
    Path dir;

    @Test
    void repliesSurviveReopening() throws IOException {
        Path file = dir.resolve("cache.jsonl");
        String k1 = LabelCache.key("openai:a", "a", "prompt 1");
        String k2 = LabelCache.key("openai:a", "a", "prompt 2");
        try (LabelCache cache = LabelCache.open(file)) {
            cache.put(k1, "openai:a", "a", "System1");
            cache.put(k2, "openai:a", "a", "**System 2**\nbecause \"steps\"");
            // written through before close: another reader sees both lines now
            assertThat(Files.readAllLines(file)).hasSize(2);
        }
        try (LabelCache cache = LabelCache.open(file)) {
            assertThat(cache.size()).isEqualTo(2);
            assertThat(cache.get(k1)).contains("System1");
            assertThat(cache.get(k2)).contains("**System 2**\nbecause \"steps\"");
        }
    }

    @Test
    void keyDependsOnTeacherModelAndPrompt() {
        String base = LabelCache.key("t", "m", "p");
        assertThat(base).hasSize(64).isEqualTo(LabelCache.key("t", "m", "p"));
        assertThat(LabelCache.key("t2", "m", "p")).isNotEqualTo(base);
        assertThat(LabelCache.key("t", "m2", "p")).isNotEqualTo(base);
        assertThat(LabelCache.key("t", "m", "p2")).isNotEqualTo(base);
        assertThat(LabelCache.key("t", "mp", "")).isNotEqualTo(LabelCache.key("t", "m", "p"));
    }

    @Test
    void tornLastLineIsDroppedAndLaterAppendsStayReadable() throws IOException {
        Path file = dir.resolve("cache.jsonl");
        try (LabelCache cache = LabelCache.open(file)) {
            cache.put("k1", "t", "m", "System1");
        }
        Files.writeString(file, "{\"key\":\"k2\",\"teacher\":\"t\",\"mod", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        try (LabelCache cache = LabelCache.open(file)) {
            assertThat(cache.size()).isEqualTo(1);
            assertThat(cache.get("k2")).isEmpty();
            cache.put("k3", "t", "m", "System2");
        }
        try (LabelCache cache = LabelCache.open(file)) {
            assertThat(cache.get("k1")).contains("System1");
            assertThat(cache.get("k3")).contains("System2");
        }
        assertThat(Files.readAllLines(file)).hasSize(2);
    }

    @Test
    void tornOnlyLineLeavesAnEmptyCache() throws IOException {
        Path file = dir.resolve("cache.jsonl");
        Files.writeString(file, "{\"key\":\"k", StandardCharsets.UTF_8);
        try (LabelCache cache = LabelCache.open(file)) {
            assertThat(cache.size()).isZero();
        }
        assertThat(Files.size(file)).isZero();
    }

    @Test
    void aSecondOpenWhileInUseIsRefused() throws IOException {
        Path file = dir.resolve("cache.jsonl");
        try (LabelCache cache = LabelCache.open(file)) {
            assertThatThrownBy(() -> LabelCache.open(file)).isInstanceOf(IOException.class)
                    .hasMessageContaining("is in use by another labelling run");
        }
        LabelCache.open(file).close(); // released on close
    }

    @Test
    void corruptMiddleLineFailsNamingFileAndLine() throws IOException {
        Path file = dir.resolve("cache.jsonl");
        Files.writeString(file, "{\"key\":\"k1\",\"reply\":\"System1\"}\nnot json\n{\"key\":\"k2\",\"reply\":\"System2\"}\n");
        assertThatThrownBy(() -> LabelCache.open(file))
                .isInstanceOf(MalformedJsonlException.class)
                .hasMessageStartingWith(file + ":2: not a label-cache record");
    }
}
