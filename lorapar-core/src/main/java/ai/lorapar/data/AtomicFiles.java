package ai.lorapar.data;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Instant;
import java.util.Comparator;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a file so that readers see either the old content or the complete new one, never a half-written
 * file: the content goes to a temporary file in the same directory, is forced to disk and then moved over
 * the target (atomically where the file system allows).
 *
 * <p>Temporary files are named {@code .<target>.lorapar-tmp-<pid>-<random>} and are created like any
 * other file, so the result follows the umask (or keeps the permissions of the file it replaces). A
 * temporary file left by a process that was killed is removed by the next write into the same directory
 * once that process is gone (see {@link #removeStaleTemporaries}). Any failure, a full disk included, is
 * an {@link IOException} whose message names the target.
 */
public final class AtomicFiles {
    private static final Logger LOG = LoggerFactory.getLogger(AtomicFiles.class);

    /** The marker in the names of temporary files and folders. */
    static final String TEMP_MARKER = ".lorapar-tmp-";
    private static final Pattern TEMP_NAME = Pattern.compile("^\\..*\\.lorapar-tmp-(\\d+)-[0-9a-z]+$");
    private static final long PID = ProcessHandle.current().pid();
    private static final Instant PROCESS_START =
            ProcessHandle.current().info().startInstant().orElse(Instant.now());

    /**
     * Test hook: wraps the channel the content is written through (to inject a failing disk). Not an API.
     */
    static volatile Function<FileChannel, WritableByteChannel> channelDecorator = c -> c;

    /** Receives the writer of the temporary file. */
    @FunctionalInterface
    public interface Content {
        /**
         * Writes the content.
         *
         * @param writer UTF-8 writer of the temporary file; flushed and closed by the caller
         * @throws IOException when the content cannot be written
         */
        void writeTo(BufferedWriter writer) throws IOException;
    }

    /** Writes bytes into the temporary file. */
    @FunctionalInterface
    public interface Bytes {
        /**
         * Writes the content.
         *
         * @param out the channel of the temporary file; forced and closed by the caller
         * @throws IOException when the content cannot be written
         */
        void writeTo(WritableByteChannel out) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Replaces {@code target} with UTF-8 text, atomically.
     *
     * @param target the file to write (its folder is created when missing)
     * @param content what to write
     * @throws IOException naming {@code target} when anything fails; the old file is then unchanged
     */
    public static void writeUtf8(Path target, Content content) throws IOException {
        write(target, utf8(content));
    }

    /**
     * Replaces {@code target} with bytes, atomically.
     *
     * @param target the file to write (its folder is created when missing)
     * @param content what to write
     * @throws IOException naming {@code target} when anything fails; the old file is then unchanged
     */
    public static void write(Path target, Bytes content) throws IOException {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Files.createDirectories(dir);
        if (Files.isDirectory(absolute)) {
            throw new IOException("cannot write " + absolute + ": it is a directory");
        }
        removeStaleTemporaries(dir);
        Path temp = writeTemporary(absolute, content);
        boolean moved = false;
        try {
            moveReplacing(temp, absolute);
            moved = true;
        } catch (IOException e) {
            throw failure(absolute, e);
        } finally {
            if (!moved) {
                Files.deleteIfExists(temp);
            }
        }
        syncDirectory(dir);
    }

    /** A UTF-8 text {@link Bytes} from a {@link Content}. */
    static Bytes utf8(Content content) {
        return out -> {
            OutputStream stream = Channels.newOutputStream(out);
            BufferedWriter writer = new BufferedWriter(new OutputStreamWriter(stream, StandardCharsets.UTF_8));
            content.writeTo(writer);
            writer.flush();
        };
    }

    /**
     * Writes {@code content} to a new temporary file beside {@code target}, forced to disk, and returns it;
     * nothing is left behind when this fails.
     */
    static Path writeTemporary(Path target, Bytes content) throws IOException {
        return writeTemporary(target, content, target);
    }

    /** As {@link #writeTemporary(Path, Bytes)}; errors name {@code shownAs}. */
    static Path writeTemporary(Path target, Bytes content, Path shownAs) throws IOException {
        Path temp = temporarySibling(target);
        boolean ok = false;
        try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            copyPermissions(target, temp);
            content.writeTo(channelDecorator.apply(channel));
            channel.force(true); // the move must never publish data that is still only in a cache
            ok = true;
            return temp;
        } catch (IOException e) {
            throw failure(shownAs, e);
        } finally {
            if (!ok) {
                Files.deleteIfExists(temp);
            }
        }
    }

    /** A fresh name {@code .<name>.lorapar-tmp-<pid>-<random>} beside {@code target}. */
    static Path temporarySibling(Path target) {
        String random = Long.toString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE, 36);
        return target.resolveSibling("." + target.getFileName() + TEMP_MARKER + PID + "-" + random);
    }

    /** Moves {@code source} over {@code target}, atomically where the file system can. */
    static void moveReplacing(Path source, Path target) throws IOException {
        try {
            Files.move(source, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(source, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Forces a directory's entries (renames) to disk where the platform allows; best effort. */
    static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.trace("cannot sync directory {}: {}", dir, e.toString());
        }
    }

    /** An exception naming {@code target}, with a hint for a full disk. */
    static IOException failure(Path target, IOException e) {
        if (e instanceof FileSystemException fse && fse.getFile() != null && !(e instanceof NoSuchFileException)) {
            // already names a file; say which write it was
            return new IOException("cannot write " + target + ": " + e.getMessage(), e);
        }
        String message = String.valueOf(e.getMessage());
        String hint = message.toLowerCase(Locale.ROOT).contains("no space left") ? " (the disk is full)" : "";
        return new IOException("cannot write " + target + ": " + message + hint, e);
    }

    private static void copyPermissions(Path from, Path to) {
        try {
            PosixFileAttributeView source = Files.getFileAttributeView(from, PosixFileAttributeView.class,
                    LinkOption.NOFOLLOW_LINKS);
            if (source == null || !Files.isRegularFile(from)) {
                return; // a new file follows the umask
            }
            Set<PosixFilePermission> perms = source.readAttributes().permissions();
            Files.setPosixFilePermissions(to, perms);
        } catch (IOException | UnsupportedOperationException e) {
            LOG.debug("cannot copy the permissions of {}: {}", from, e.toString());
        }
    }

    /**
     * Removes the temporary files and folders ({@code .*.lorapar-tmp-<pid>-*}) in {@code dir} that were left
     * by an interrupted write: those of a process that no longer runs on this machine and that were last
     * modified before this process started. Failures are logged, never thrown.
     *
     * @param dir the directory to clean
     */
    public static void removeStaleTemporaries(Path dir) {
        if (!Files.isDirectory(dir) || Files.exists(dir.resolve(AtomicFileSet.JOURNAL))) {
            return; // with a journal, some temporary files are a committed write: recover it first
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, ".*" + TEMP_MARKER + "*")) {
            for (Path p : entries) {
                if (isStale(p)) {
                    LOG.info("removing {}, left by an interrupted write", p);
                    deleteTree(p);
                }
            }
        } catch (IOException e) {
            LOG.warn("cannot clean stale temporary files in {}: {}", dir, e.toString());
        }
    }

    /** Whether {@code p} is a temporary file of a process that is gone. */
    static boolean isStale(Path p) throws IOException {
        Matcher m = TEMP_NAME.matcher(p.getFileName().toString());
        if (!m.matches()) {
            return false;
        }
        long pid;
        try {
            pid = Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            return false;
        }
        if (pid == PID || ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
            return false;
        }
        FileTime modified = Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS);
        return modified.toInstant().isBefore(PROCESS_START);
    }

    /** Deletes a file or a folder with its contents; missing is fine. */
    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            Files.deleteIfExists(p);
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }

    /** Writes all of {@code buffer}. */
    public static void writeFully(WritableByteChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }
}
