package ai.lorapar.data;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes several files of one folder all-or-nothing, even if the process is killed (kill -9, power
 * loss) at any point: readers that call {@link #recover} first see either every old file or every new
 * one, never a mix (an adapter's config from one save and its weights from another).
 *
 * <p>The protocol, a redo journal:
 * <ol>
 *   <li>a folder that does not exist yet is written as a hidden sibling and renamed into place in one
 *       step (it appears complete or not at all);</li>
 *   <li>in an existing folder, any interrupted earlier write is completed first ({@link #recover});</li>
 *   <li>each new file is written completely beside its final name ({@code .<name>.lorapar-tmp-<pid>-<n>})
 *       and forced to disk; a kill here leaves the old files untouched and the temporary ones are
 *       removed by the next write once the killed process is gone;</li>
 *   <li>the journal {@value #JOURNAL}, listing final name → temporary name for every file, is written
 *       atomically: this rename is the commit point;</li>
 *   <li>each temporary file is renamed over its final name, then the journal is deleted.</li>
 * </ol>
 * {@link #recover} (run by the next write and by loaders before they read) finds a journal only when a
 * write was killed after its commit point, and finishes its renames: the folder then holds the new
 * files. Other files in the folder are left alone. Between a kill in step 5 and the next
 * {@code recover}, a reader that does not recover (another tool) can see a mix; one writer at a time
 * per folder.
 */
public final class AtomicFileSet {
    private static final Logger LOG = LoggerFactory.getLogger(AtomicFileSet.class);

    /** The name of the journal of a committed, not yet completed write. */
    public static final String JOURNAL = ".lorapar-commit.json";

    /** Test hook: called at each step of a write with the step's name (a test halts the JVM there). */
    static volatile java.util.function.Consumer<String> stepHook = step -> { };

    private AtomicFileSet() {
    }

    /**
     * Replaces (or creates) the files {@code files} in {@code folder}, all-or-nothing.
     *
     * @param folder the folder; created (atomically, with all the files) when missing
     * @param files file name (no separator) → content, in writing order
     * @throws IOException naming the file or folder when anything fails; the old files are then unchanged
     */
    public static void write(Path folder, Map<String, AtomicFiles.Bytes> files) throws IOException {
        Path target = folder.toAbsolutePath().normalize();
        for (String name : files.keySet()) {
            if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.startsWith(".")) {
                throw new IllegalArgumentException("not a plain file name: '" + name + "'");
            }
        }
        Path parent = target.getParent();
        Files.createDirectories(parent);
        if (Files.exists(target) && !Files.isDirectory(target)) {
            throw new IOException("cannot write into " + target + ": it exists and is not a folder");
        }
        if (!Files.exists(target)) {
            writeFreshFolder(target, files);
            return;
        }
        recover(target);
        AtomicFiles.removeStaleTemporaries(target);
        Map<String, Path> staged = new LinkedHashMap<>();
        boolean committed = false;
        try {
            for (Map.Entry<String, AtomicFiles.Bytes> e : files.entrySet()) {
                staged.put(e.getKey(), AtomicFiles.writeTemporary(target.resolve(e.getKey()), e.getValue()));
                stepHook.accept("staged " + e.getKey());
            }
            JsonObject journal = new JsonObject();
            JsonObject entries = new JsonObject();
            staged.forEach((name, temp) -> entries.addProperty(name, temp.getFileName().toString()));
            journal.add("files", entries);
            AtomicFiles.syncDirectory(target);
            AtomicFiles.writeUtf8(target.resolve(JOURNAL), w -> w.write(journal + "\n"));
            committed = true;
            stepHook.accept("committed");
        } finally {
            if (!committed) {
                for (Path p : staged.values()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        complete(target, readJournal(target));
    }

    /**
     * Completes a write into {@code folder} that was interrupted after its commit point (see the class
     * comment); does nothing when there is none. Loaders call this before reading.
     *
     * @param folder the folder
     * @throws IOException naming the folder and the journal when the write cannot be completed (e.g. a
     *     read-only folder: open it once with write access)
     */
    public static void recover(Path folder) throws IOException {
        Path journalPath = folder.resolve(JOURNAL);
        if (!Files.exists(journalPath)) {
            return;
        }
        Map<String, String> journal = readJournal(folder);
        LOG.warn("{}: completing a write that was interrupted after it was committed ({})", folder, journal.keySet());
        try {
            complete(folder, journal);
        } catch (IOException e) {
            throw new IOException(folder + ": an interrupted write (journal " + JOURNAL + ") cannot be completed: "
                    + e.getMessage(), e);
        }
    }

    private static Map<String, String> readJournal(Path folder) throws IOException {
        Path journalPath = folder.resolve(JOURNAL);
        try {
            JsonElement root = JsonParser.parseString(Files.readString(journalPath, StandardCharsets.UTF_8));
            JsonObject files = root.getAsJsonObject().getAsJsonObject("files");
            Map<String, String> out = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> e : files.entrySet()) {
                String name = e.getKey();
                String temp = e.getValue().getAsString();
                if (name.contains("/") || temp.contains("/") || !temp.contains(AtomicFiles.TEMP_MARKER)) {
                    throw new IllegalStateException("entry " + name + " -> " + temp + " is not a journal entry");
                }
                out.put(name, temp);
            }
            return out;
        } catch (NoSuchFileException e) {
            return Map.of();
        } catch (JsonParseException | IllegalStateException | ClassCastException | NullPointerException
                | UnsupportedOperationException e) {
            throw new IOException(journalPath + ": not a journal written by this library (" + e.getMessage()
                    + "); if no save was running, delete it", e);
        }
    }

    private static void complete(Path folder, Map<String, String> journal) throws IOException {
        for (Map.Entry<String, String> e : journal.entrySet()) {
            Path temp = folder.resolve(e.getValue());
            if (Files.exists(temp)) { // absent: renamed before the interruption
                AtomicFiles.moveReplacing(temp, folder.resolve(e.getKey()));
                stepHook.accept("renamed " + e.getKey());
            }
        }
        AtomicFiles.syncDirectory(folder);
        Files.deleteIfExists(folder.resolve(JOURNAL));
        AtomicFiles.syncDirectory(folder);
        stepHook.accept("done");
    }

    private static void writeFreshFolder(Path target, Map<String, AtomicFiles.Bytes> files) throws IOException {
        Path parent = target.getParent();
        AtomicFiles.removeStaleTemporaries(parent);
        Path tmp = AtomicFiles.temporarySibling(target);
        Files.createDirectory(tmp); // follows the umask, unlike createTempDirectory's 0700
        boolean moved = false;
        try {
            for (Map.Entry<String, AtomicFiles.Bytes> e : files.entrySet()) {
                Path temp = AtomicFiles.writeTemporary(tmp.resolve(e.getKey()), e.getValue(), target.resolve(e.getKey()));
                AtomicFiles.moveReplacing(temp, tmp.resolve(e.getKey()));
            }
            AtomicFiles.syncDirectory(tmp);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target);
            }
            moved = true;
            AtomicFiles.syncDirectory(parent);
        } catch (FileSystemException e) {
            throw AtomicFiles.failure(target, e); // the moves; writeTemporary's errors already name the file
        } finally {
            if (!moved) {
                AtomicFiles.deleteTree(tmp);
            }
        }
    }
}
