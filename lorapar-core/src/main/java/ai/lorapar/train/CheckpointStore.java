package ai.lorapar.train;

import ai.lorapar.data.AtomicFiles;
import ai.lorapar.engine.Collective;
import ai.lorapar.io.AtomicFolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A folder of numbered checkpoints of one stage: {@code step-000100/}, ... and a {@value #LATEST} file
 * naming the newest. A checkpoint is written as one unit: its files go into a hidden temporary folder,
 * are forced to disk, the folder is renamed to {@code step-NNNNNN}, and only then is {@value #LATEST}
 * replaced (atomically) to point at it; older checkpoints beyond the last {@code keepLast} are deleted
 * afterwards. A crash at any point leaves {@value #LATEST} naming a complete checkpoint (or none).
 */
public final class CheckpointStore {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointStore.class);
    /** The pointer file's name. */
    public static final String LATEST = "latest";
    private static final Pattern STEP = Pattern.compile("step-(\\d+)");

    private final Path folder;
    private final int keepLast;

    /**
     * @param folder the stage's checkpoint folder (created on the first write)
     * @param keepLast how many checkpoints to keep, ≥ 1
     */
    public CheckpointStore(Path folder, int keepLast) {
        if (keepLast < 1) {
            throw new IllegalArgumentException("checkpoints to keep must be >= 1, got " + keepLast);
        }
        this.folder = folder;
        this.keepLast = keepLast;
    }

    public Path folder() {
        return folder;
    }

    /** The folder name of the checkpoint after {@code step}. */
    public static String name(long step) {
        return String.format("step-%06d", step);
    }

    /**
     * The newest checkpoint: the one {@value #LATEST} names, or, when there is no pointer (a crash before
     * the first pointer was written), the highest-numbered complete {@code step-*} folder; empty when there
     * is none.
     *
     * @throws IOException when {@value #LATEST} names a folder that is missing or incomplete
     */
    public Optional<Path> latest() throws IOException {
        Path pointer = folder.resolve(LATEST);
        if (Files.isRegularFile(pointer)) {
            String name = Files.readString(pointer, StandardCharsets.UTF_8).trim();
            Path p = folder.resolve(name);
            if (!STEP.matcher(name).matches() || !Files.isRegularFile(p.resolve(TrainerState.FILE))) {
                throw new IOException(pointer + " names '" + name + "', which is not a complete checkpoint in " + folder);
            }
            return Optional.of(p);
        }
        List<Path> steps = steps();
        for (int i = steps.size() - 1; i >= 0; i--) {
            if (Files.isRegularFile(steps.get(i).resolve(TrainerState.FILE))) {
                return Optional.of(steps.get(i));
            }
        }
        return Optional.empty();
    }

    /**
     * Writes the checkpoint after {@code step} with {@code content} (see the class comment) and returns its
     * folder. An existing folder of that step that {@value #LATEST} does not name (left by an interrupted
     * run) is replaced.
     */
    public Path write(long step, AtomicFolder.Content content) throws IOException {
        Files.createDirectories(folder);
        Path target = folder.resolve(name(step));
        AtomicFolder.write(target, content);
        AtomicFiles.writeUtf8(folder.resolve(LATEST), w -> w.write(target.getFileName() + "\n"));
        AtomicFolder.fsync(folder);
        prune(target);
        return target;
    }

    /**
     * {@link #write} in a data-parallel job: the leader writes, every rank then waits at a barrier (so nobody
     * reads a half-written checkpoint) and gets the folder written. In a job of one process, {@link #write}.
     */
    public Path write(long step, AtomicFolder.Content content, Collective collective) throws IOException {
        Path written = collective.isLeader() ? write(step, content) : null;
        collective.barrier();
        return written != null ? written : folder.resolve(name(step));
    }

    /** The {@code step-*} folders, oldest first. */
    private List<Path> steps() throws IOException {
        if (!Files.isDirectory(folder)) {
            return List.of();
        }
        List<Path> out = new ArrayList<>();
        try (Stream<Path> list = Files.list(folder)) {
            list.filter(p -> Files.isDirectory(p) && STEP.matcher(p.getFileName().toString()).matches()).forEach(out::add);
        }
        out.sort(Comparator.comparingLong(CheckpointStore::stepOf));
        return out;
    }

    private static long stepOf(Path p) {
        Matcher m = STEP.matcher(p.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    private void prune(Path newest) throws IOException {
        List<Path> steps = steps();
        int excess = steps.size() - keepLast;
        for (int i = 0; i < steps.size() && excess > 0; i++) {
            Path p = steps.get(i);
            if (!p.equals(newest)) {
                AtomicFolder.deleteTree(p);
                excess--;
            }
        }
        try (Stream<Path> list = Files.list(folder)) {
            for (Path p : list.toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(".step-") && (n.contains(".tmp-") || n.contains(".old-"))) {
                    LOG.debug("removing leftover {}", p);
                    AtomicFolder.deleteTree(p);
                }
            }
        }
    }
}
