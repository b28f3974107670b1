package ai.lorapar.data;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Temporary files, permissions and write errors of {@link AtomicFiles} and {@link AtomicFileSet}. */
class AtomicFilesTest {
    @TempDir
    Path dir;

    @AfterEach
    void restoreChannel() {
        AtomicFiles.channelDecorator = c -> c;
    }

    private static AtomicFiles.Bytes text(String s) {
        return out -> AtomicFiles.writeFully(out, ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8)));
    }

    /** The pid of a process that has exited. */
    private static long deadPid() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        return p.pid();
    }

    @Test
    void savedFilesAndFoldersFollowTheUmaskNotCreateTempFilesOwnerOnlyMode() throws Exception {
        Path file = dir.resolve("a.txt");
        AtomicFiles.writeUtf8(file, w -> w.write("x"));
        Path folder = dir.resolve("adapter");
        AtomicFileSet.write(folder, Map.of("f.json", text("{}")));
        // the umask of this JVM: what a plain new file gets
        Path plain = Files.createFile(dir.resolve("plain"));
        Path plainDir = Files.createDirectory(dir.resolve("plainDir"));
        assertThat(Files.getPosixFilePermissions(file)).isEqualTo(Files.getPosixFilePermissions(plain));
        assertThat(Files.getPosixFilePermissions(folder.resolve("f.json"))).isEqualTo(Files.getPosixFilePermissions(plain));
        assertThat(Files.getPosixFilePermissions(folder)).isEqualTo(Files.getPosixFilePermissions(plainDir));
        assertThat(Files.getPosixFilePermissions(plain)).contains(PosixFilePermission.GROUP_READ); // not 0600

        // a replaced file keeps the permissions it had
        Set<PosixFilePermission> custom = PosixFilePermissions.fromString("rw-r-----");
        Files.setPosixFilePermissions(file, custom);
        AtomicFiles.writeUtf8(file, w -> w.write("y"));
        assertThat(Files.getPosixFilePermissions(file)).isEqualTo(custom);
    }

    @Test
    void temporaryFilesOfAKilledSaveAreRemovedByTheNextSaveIntoTheSameFolder() throws Exception {
        long dead = deadPid();
        Path staleFile = dir.resolve(".labels.jsonl.lorapar-tmp-" + dead + "-abc");
        Files.writeString(staleFile, "half");
        Path staleFolder = dir.resolve(".adapter.lorapar-tmp-" + dead + "-def");
        Files.createDirectories(staleFolder);
        Files.writeString(staleFolder.resolve("adapter_model.safetensors"), "half");
        Path live = dir.resolve(".other.lorapar-tmp-" + ProcessHandle.current().pid() + "-ghi"); // this process's
        Files.writeString(live, "in progress");
        Path recent = dir.resolve(".new.lorapar-tmp-" + dead + "-jkl"); // written after this JVM started
        Files.writeString(recent, "x");
        Path unrelated = dir.resolve(".hidden");
        Files.writeString(unrelated, "keep");
        FileTime old = FileTime.from(Instant.now().minusSeconds(86_400));
        for (Path p : new Path[] {staleFile, staleFolder, live, unrelated}) {
            Files.setLastModifiedTime(p, old);
        }

        AtomicFiles.writeUtf8(dir.resolve("labels.jsonl"), w -> w.write("{}\n"));

        assertThat(staleFile).doesNotExist();
        assertThat(staleFolder).doesNotExist();
        assertThat(live).exists();
        assertThat(recent).exists();
        assertThat(unrelated).exists();
        assertThat(dir.resolve("labels.jsonl")).hasContent("{}");
    }

    @Test
    void aFullDiskNamesThePathAndLeavesTheOldFileAndNoTemporaryFile() throws Exception {
        Path target = dir.resolve("out").resolve("importance.safetensors");
        AtomicFiles.writeUtf8(target, w -> w.write("old"));
        AtomicFiles.channelDecorator = c -> new WritableByteChannel() {
            @Override
            public int write(ByteBuffer src) throws IOException {
                throw new IOException("No space left on device"); // what the JDK says, without a path
            }

            @Override
            public boolean isOpen() {
                return true;
            }

            @Override
            public void close() {
            }
        };
        assertThatThrownBy(() -> AtomicFiles.writeUtf8(target, w -> w.write("x".repeat(10_000))))
                .isInstanceOf(IOException.class)
                .hasMessageContaining(target.toString())
                .hasMessageContaining("No space left on device")
                .hasMessageContaining("disk is full");
        Map<String, AtomicFiles.Bytes> files = new LinkedHashMap<>();
        files.put("adapter_model.safetensors", text("new weights"));
        files.put("adapter_config.json", text("{}"));
        Path adapter = dir.resolve("adapter");
        assertThatThrownBy(() -> AtomicFileSet.write(adapter, files))
                .hasMessageContaining(adapter.resolve("adapter_model.safetensors").toString());
        assertThat(adapter).doesNotExist();
        assertThat(target).hasContent("old");
        try (var list = Files.list(target.getParent())) {
            assertThat(list).containsExactly(target);
        }
        try (var list = Files.list(dir)) {
            assertThat(list).containsExactly(dir.resolve("out"));
        }
    }

    @Test
    void aFileSetReplacesOnlyItsFilesAndRejectsPaths() throws Exception {
        Path folder = dir.resolve("adapter");
        AtomicFileSet.write(folder, Map.of("a", text("1"), "b", text("1")));
        Files.writeString(folder.resolve("README.md"), "mine");
        AtomicFileSet.write(folder, Map.of("a", text("2"), "b", text("2")));
        assertThat(folder.resolve("a")).hasContent("2");
        assertThat(folder.resolve("b")).hasContent("2");
        assertThat(folder.resolve("README.md")).hasContent("mine");
        try (var list = Files.list(folder)) {
            assertThat(list).hasSize(3);
        }
        assertThatThrownBy(() -> AtomicFileSet.write(folder, Map.of("../x", text("1"))))
                .isInstanceOf(IllegalArgumentException.class);
        Path file = Files.writeString(dir.resolve("file"), "");
        assertThatThrownBy(() -> AtomicFileSet.write(file, Map.of("a", text("1"))))
                .hasMessageContaining(file.toString()).hasMessageContaining("not a folder");
    }
}
