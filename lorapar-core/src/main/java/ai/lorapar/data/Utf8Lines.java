package ai.lorapar.data;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads a text file line by line as strict UTF-8, so that a byte sequence that is not UTF-8 is an error
 * naming the file, the line and the byte ({@link MalformedJsonlException}), where a {@code BufferedReader}
 * throws a bare {@code MalformedInputException: Input length = 1} with neither. Lines end at {@code \n}; a
 * {@code \r} before it is dropped.
 */
public final class Utf8Lines {

    /** Receives each line. */
    @FunctionalInterface
    public interface LineConsumer {
        /**
         * Takes one line.
         *
         * @param lineNo the 1-based line number
         * @param text the line, without its line end
         * @return whether to go on reading
         * @throws IOException to stop with an error
         */
        boolean accept(int lineNo, String text) throws IOException;
    }

    private Utf8Lines() {
    }

    /**
     * Reads every line of {@code file}.
     *
     * @param file the file
     * @param consumer receives the lines
     * @throws MalformedJsonlException naming the file, line and byte of invalid UTF-8
     * @throws IOException when the file cannot be read
     */
    public static void read(Path file, LineConsumer consumer) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            read(file, in, consumer);
        }
    }

    /**
     * Reads every line of {@code in}, which holds the content of {@code file}.
     *
     * @param file names the content in errors
     * @param in the content; not closed
     * @param consumer receives the lines
     * @throws MalformedJsonlException naming the file, line and byte of invalid UTF-8
     * @throws IOException when the content cannot be read
     */
    public static void read(Path file, InputStream in, LineConsumer consumer) throws IOException {
        BufferedInputStream buffered = new BufferedInputStream(in, 1 << 16);
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteArrayOutputStream line = new ByteArrayOutputStream(256);
        int lineNo = 0;
        int b;
        boolean pending = false;
        while ((b = buffered.read()) >= 0) {
            pending = true;
            if (b != '\n') {
                line.write(b);
                continue;
            }
            lineNo++;
            if (!consumer.accept(lineNo, decode(decoder, line, file, lineNo))) {
                return;
            }
            line.reset();
            pending = false;
        }
        if (pending) {
            lineNo++;
            consumer.accept(lineNo, decode(decoder, line, file, lineNo));
        }
    }

    private static String decode(CharsetDecoder decoder, ByteArrayOutputStream line, Path file, int lineNo)
            throws MalformedJsonlException {
        byte[] bytes = line.toByteArray();
        int length = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
        ByteBuffer in = ByteBuffer.wrap(bytes, 0, length);
        CharBuffer out = CharBuffer.allocate(length);
        decoder.reset();
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) {
            r = decoder.flush(out);
        }
        if (r.isError()) {
            int at = in.position();
            StringBuilder hex = new StringBuilder();
            for (int i = at; i < Math.min(length, at + Math.max(1, r.length())); i++) {
                hex.append(String.format("%s0x%02X", hex.length() == 0 ? "" : " ", bytes[i] & 0xFF));
            }
            throw new MalformedJsonlException(file, lineNo, "not valid UTF-8 at byte " + (at + 1) + " of the line ("
                    + hex + "); save the file as UTF-8");
        }
        out.flip();
        return out.toString();
    }
}
