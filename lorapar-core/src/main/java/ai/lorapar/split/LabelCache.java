package ai.lorapar.split;

import ai.lorapar.data.MalformedJsonlException;
import ai.lorapar.data.Utf8Lines;
import com.google.common.io.ByteStreams;
import com.google.common.hash.Hashing;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Teacher replies on disk, so that a rerun or a run resumed after a crash never asks a teacher the same
 * question twice. One JSONL record per reply: {@code {"key", "teacher", "model", "reply"}}, where the key is
 * the SHA-256 of what determines the reply ({@link Teacher#cacheIdentity()}: the model and its sampling
 * parameters, not an endpoint's URL) and the full prompt text, so a changed prompt, target model, model or
 * reply budget asks again. Only replies that are a vote are stored (see {@link Splitter}).
 *
 * <p>Files of earlier versions stay readable: their keys hashed the teacher id (an endpoint's URL
 * included) instead; {@link Splitter} still looks them up under {@link #key(String, String, String)}, so
 * a rerun with the same teacher ids reuses them, and a stored reply that is not a vote (an empty reply
 * cut off by the token budget) is asked again.
 *
 * <p>Each reply is appended and handed to the operating system before {@link #put} returns, so a killed JVM
 * loses nothing already answered. A crash in the middle of a write can leave a torn last line: it is
 * dropped with a warning when the cache is opened (it never held a complete answer). A malformed line
 * anywhere else means the file was edited or mixed up, and opening fails naming the line. One run at a
 * time: the file is locked while open.
 */
public final class LabelCache implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LabelCache.class);

    private final Path file;
    private final Map<String, String> replies = new ConcurrentHashMap<>();
    private final FileChannel channel;

    private LabelCache(Path file, FileChannel channel) {
        this.file = file;
        this.channel = channel;
    }

    /** Opens (creating if needed) the cache file and loads what earlier runs stored. */
    public static LabelCache open(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        try {
            // two runs appending to one cache would interleave records; the lock ends with the channel
            FileLock lock;
            try {
                lock = channel.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw new IOException("label cache " + file + " is in use by another labelling run; "
                        + "wait for it to finish or give this run its own cache file");
            }
            LabelCache cache = new LabelCache(file, channel);
            cache.load();
            channel.position(channel.size());
            return cache;
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * The cache key of one question to one teacher: the SHA-256 of {@link Teacher#cacheIdentity()} (what
     * determines the reply besides the prompt: model and parameters, not an endpoint's URL) and the prompt.
     *
     * @param teacher the teacher
     * @param promptText the full prompt text
     * @return the key
     */
    public static String key(Teacher teacher, String promptText) {
        return Hashing.sha256().hashString(teacher.cacheIdentity() + '\u0000' + promptText, StandardCharsets.UTF_8)
                .toString();
    }

    /**
     * The key of earlier versions (teacher id, which held an endpoint's URL, model and prompt). Replies stored
     * under it are still found when the teacher id is the same as then; for teachers whose
     * {@link Teacher#cacheIdentity()} is the default it equals {@link #key(Teacher, String)}.
     *
     * @param teacherId the teacher id
     * @param model the model
     * @param promptText the full prompt text
     * @return the key
     */
    public static String key(String teacherId, String model, String promptText) {
        return Hashing.sha256()
                .hashString(teacherId + '\u0000' + model + '\u0000' + promptText, StandardCharsets.UTF_8)
                .toString();
    }

    /**
     * A stored reply.
     *
     * @param key the key ({@link #key(Teacher, String)})
     * @return the reply, or empty
     */
    public Optional<String> get(String key) {
        return Optional.ofNullable(replies.get(key));
    }

    /** Stores a reply: appended to the file and handed to the OS before this returns. */
    public synchronized void put(String key, String teacherId, String model, String reply) throws IOException {
        JsonObject record = new JsonObject();
        record.addProperty("key", key);
        record.addProperty("teacher", teacherId);
        record.addProperty("model", model);
        record.addProperty("reply", reply);
        ByteBuffer bytes = ByteBuffer.wrap((record + "\n").getBytes(StandardCharsets.UTF_8));
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
        replies.put(key, reply);
    }

    /**
     * Stored replies.
     *
     * @return their number
     */
    public int size() {
        return replies.size();
    }

    /**
     * The cache file.
     *
     * @return its path
     */
    public Path file() {
        return file;
    }

    @Override
    public synchronized void close() throws IOException {
        channel.close();
    }

    private void load() throws IOException {
        long size = channel.size();
        if (size == 0) {
            return;
        }
        long completeEnd = size;
        ByteBuffer last = ByteBuffer.allocate(1);
        channel.read(last, size - 1);
        if (last.get(0) != '\n') {
            completeEnd = lastNewlineBefore(size) + 1; // 0 when the torn line is the only one
        }
        channel.position(0);
        int[] lines = {0};
        Utf8Lines.read(file, ByteStreams.limit(Channels.newInputStream(channel), completeEnd), (lineNo, line) -> {
            lines[0] = lineNo;
            if (!line.isBlank()) {
                loadRecord(line, lineNo);
            }
            return true;
        });
        int lineNo = lines[0];
        if (completeEnd < size) {
            LOG.warn("Label cache {}: line {} is torn (an interrupted write, {} bytes without a newline); "
                    + "dropping it, that one reply will be asked again", file, lineNo + 1, size - completeEnd);
            channel.truncate(completeEnd);
        }
        LOG.info("Label cache {}: {} stored replies", file, replies.size());
    }

    private void loadRecord(String line, int lineNo) throws MalformedJsonlException {
        try {
            JsonObject obj = JsonParser.parseString(line).getAsJsonObject();
            replies.put(obj.get("key").getAsString(), obj.get("reply").getAsString());
        } catch (JsonParseException | IllegalStateException | NullPointerException | UnsupportedOperationException e) {
            throw new MalformedJsonlException(file, lineNo, "not a label-cache record {key, teacher, model, reply}; "
                    + "fix or delete this line (its reply will be asked again)", e);
        }
    }

    private long lastNewlineBefore(long size) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(8192);
        long end = size;
        while (end > 0) {
            long start = Math.max(0, end - buf.capacity());
            buf.clear().limit((int) (end - start));
            channel.read(buf, start);
            for (int i = (int) (end - start) - 1; i >= 0; i--) {
                if (buf.get(i) == '\n') {
                    return start + i;
                }
            }
            end = start;
        }
        return -1;
    }
}
