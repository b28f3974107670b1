package ai.lorapar.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Checkpoint folders appear whole, {@code latest} names the newest, the last M are kept. */
class CheckpointStoreTest {
    @TempDir
    Path tmp;

    private static TrainerState state(long step) {
        return new TrainerState("sft", step, 10, 0, step, step, step, step, step, false, 1.5,
                Map.of("training", "x"), new ModelDigest(1, 2, 3), null);
    }

    private static void content(Path folder, long step) throws IOException {
        Files.writeString(folder.resolve("payload.txt"), "step " + step);
        state(step).write(folder);
    }

    @Test
    void latestNamesTheNewestCompleteCheckpointAndOldOnesArePruned() throws Exception {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ck"), 2);
        assertThat(store.latest()).isEmpty();
        for (long s : new long[] {5, 10, 15}) {
            Path p = store.write(s, f -> content(f, s));
            assertThat(p.getFileName().toString()).isEqualTo(CheckpointStore.name(s));
            assertThat(store.latest()).contains(p);
        }
        try (var l = Files.list(tmp.resolve("ck"))) {
            assertThat(l.map(p -> p.getFileName().toString()).sorted().toList())
                    .containsExactly("latest", "step-000010", "step-000015");
        }
        TrainerState back = TrainerState.read(store.latest().orElseThrow());
        assertThat(back).usingRecursiveComparison().isEqualTo(state(15));
    }

    @Test
    void aFailedWriteLeavesThePreviousCheckpointAndNoDebris() throws Exception {
        CheckpointStore store = new CheckpointStore(tmp.resolve("ck"), 3);
        Path first = store.write(1, f -> content(f, 1));
        assertThatThrownBy(() -> store.write(2, f -> {
            Files.writeString(f.resolve("half.bin"), "partial");
            throw new IOException("disk full");
        })).hasMessageContaining("disk full");
        assertThat(store.latest()).contains(first);
        try (var l = Files.list(tmp.resolve("ck"))) {
            assertThat(l.map(p -> p.getFileName().toString()).sorted().toList()).containsExactly("latest", "step-000001");
        }
    }

    @Test
    void withoutAPointerTheHighestCompleteFolderIsTheLatestAndABrokenPointerIsAnError() throws Exception {
        Path dir = tmp.resolve("ck");
        CheckpointStore store = new CheckpointStore(dir, 3);
        store.write(3, f -> content(f, 3));
        store.write(7, f -> content(f, 7));
        Files.delete(dir.resolve(CheckpointStore.LATEST)); // a crash before the first pointer was written
        Files.createDirectories(dir.resolve("step-000009")); // a folder without state is not a checkpoint
        assertThat(store.latest()).contains(dir.resolve("step-000007"));
        Files.writeString(dir.resolve(CheckpointStore.LATEST), "step-000009\n");
        assertThatThrownBy(store::latest).isInstanceOf(IOException.class).hasMessageContaining("step-000009")
                .hasMessageContaining("not a complete checkpoint");
    }

    @Test
    void aStateFileWithAMissingKeyIsNamed() throws Exception {
        Path dir = tmp.resolve("s");
        Files.createDirectories(dir);
        state(4).write(dir);
        String json = Files.readString(dir.resolve(TrainerState.FILE)).replace("\"total_steps\"", "\"total\"");
        Files.writeString(dir.resolve(TrainerState.FILE), json);
        assertThatThrownBy(() -> TrainerState.read(dir)).isInstanceOf(IOException.class)
                .hasMessageContaining(TrainerState.FILE);
        assertThatThrownBy(() -> TrainerState.read(tmp)).hasMessageContaining("not a training checkpoint");
    }
}
