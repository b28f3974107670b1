package ai.lorapar.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Writes a folder of files as one unit: the files go into a hidden temporary sibling, are forced to disk
 * together with the folder, and the folder is then renamed into place, so readers see the whole folder or
 * nothing (a checkpoint, a saved model).
 */
public final class AtomicFolder {
    /** Fills the temporary folder. */
    @FunctionalInterface
    public interface Content {
        void writeTo(Path folder) throws IOException;
    }

    private AtomicFolder() {}

    /**
     * Creates {@code target} with {@code content}. An existing {@code target} is replaced: it is moved
     * aside, the new folder is renamed into place and the old one deleted; a crash between those two
     * renames leaves the old folder as a hidden sibling ({@code .NAME.old-*}) and no {@code target}.
     *
     * @throws IOException when {@code target} exists and is not a folder, or writing fails (the temporary
     *     folder is deleted)
     */
    public static void write(Path target, Content content) throws IOException {
        Path abs = target.toAbsolutePath();
        Path parent = abs.getParent();
        Files.createDirectories(parent);
        if (Files.exists(abs) && !Files.isDirectory(abs)) {
            throw new IOException(abs + " exists and is not a folder");
        }
        Path tmp = Files.createTempDirectory(parent, "." + abs.getFileName() + ".tmp-");
        boolean moved = false;
        try {
            content.writeTo(tmp);
            fsyncTree(tmp);
            if (Files.exists(abs)) {
                Path old = Files.createTempDirectory(parent, "." + abs.getFileName() + ".old-");
                Files.delete(old);
                move(abs, old);
                move(tmp, abs);
                moved = true;
                deleteTree(old);
            } else {
                move(tmp, abs);
                moved = true;
            }
            fsync(parent);
        } finally {
            if (!moved) {
                deleteTree(tmp);
            }
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to);
        }
    }

    /** Forces every file under {@code folder}, and the folders themselves, to disk. */
    public static void fsyncTree(Path folder) throws IOException {
        List<Path> paths;
        try (Stream<Path> walk = Files.walk(folder)) {
            paths = walk.sorted(Comparator.reverseOrder()).toList(); // files before their folder
        }
        for (Path p : paths) {
            fsync(p);
        }
    }

    /**
     * Forces a file or folder to disk. Folders are forced where the platform can open them (Linux, macOS);
     * elsewhere this is a no-op for folders.
     */
    public static void fsync(Path p) throws IOException {
        boolean dir = Files.isDirectory(p);
        try (FileChannel ch = FileChannel.open(p, dir ? StandardOpenOption.READ : StandardOpenOption.WRITE)) {
            ch.force(true);
        } catch (IOException e) {
            if (!dir) {
                throw e;
            }
            // some platforms cannot open a directory: the rename's durability is then the file system's
        }
    }

    /** Deletes {@code dir} and everything under it; nothing when it does not exist. */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
