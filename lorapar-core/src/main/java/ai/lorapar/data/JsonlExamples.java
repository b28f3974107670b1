package ai.lorapar.data;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import ai.lorapar.io.StrictJson;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads training examples from JSONL: GSM8K {@code {question, answer}}, Alpaca {@code {instruction, input,
 * output}} and Dolly {@code {instruction, context, response}}, detected per line. For the instruction formats
 * the question is the instruction followed, after a blank line, by the input/context when that is non-empty.
 *
 * <p>An optional {@code "id"} field (string or number) becomes {@link Example#id()}; otherwise the id is the
 * 1-based line number. Blank lines are skipped. Anything else that is not a usable record fails with a
 * {@link MalformedJsonlException} naming the file and line.
 */
public final class JsonlExamples {

    private JsonlExamples() {
    }

    /** Reads every example of {@code file}. */
    public static List<Example> read(Path file) throws IOException {
        return read(file, Integer.MAX_VALUE);
    }

    /** Reads at most {@code limit} examples (blank lines do not count) from the start of {@code file}. */
    public static List<Example> read(Path file, int limit) throws IOException {
        if (limit < 0) {
            throw new IllegalArgumentException("limit must be >= 0, was " + limit);
        }
        List<Example> examples = new ArrayList<>();
        if (limit == 0) {
            return examples;
        }
        Utf8Lines.read(file, (lineNo, text) -> {
            if (lineNo == 1 && text.startsWith("\uFEFF")) {
                text = text.substring(1); // UTF-8 byte-order mark written by some editors
            }
            if (!text.isBlank()) {
                examples.add(parse(file, lineNo, text));
            }
            return examples.size() < limit;
        });
        return examples;
    }

    /** Parses one JSONL line; {@code file} and {@code lineNo} only serve error messages and provenance. */
    public static Example parse(Path file, int lineNo, String text) throws MalformedJsonlException {
        JsonObject obj;
        try {
            JsonElement element = StrictJson.parse(text);
            if (!element.isJsonObject()) {
                throw new MalformedJsonlException(file, lineNo, "expected a JSON object, found " + kind(element));
            }
            obj = element.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new MalformedJsonlException(file, lineNo, "not valid JSON (" + rootMessage(e) + ")", e);
        }
        String id = obj.has("id") ? string(file, lineNo, obj, "id") : Integer.toString(lineNo);
        if (obj.has("question") && obj.has("answer")) {
            return new Example(id, lineNo, ExampleFormat.QUESTION_ANSWER,
                    string(file, lineNo, obj, "question"), string(file, lineNo, obj, "answer"), text);
        }
        if (obj.has("instruction") && obj.has("output")) {
            String prompt = join(string(file, lineNo, obj, "instruction"), optional(file, lineNo, obj, "input"));
            return new Example(id, lineNo, ExampleFormat.INSTRUCTION_INPUT_OUTPUT,
                    prompt, string(file, lineNo, obj, "output"), text);
        }
        if (obj.has("instruction") && obj.has("response")) {
            String prompt = join(string(file, lineNo, obj, "instruction"), optional(file, lineNo, obj, "context"));
            return new Example(id, lineNo, ExampleFormat.INSTRUCTION_CONTEXT_RESPONSE,
                    prompt, string(file, lineNo, obj, "response"), text);
        }
        throw new MalformedJsonlException(file, lineNo, "expected fields {question, answer}, "
                + "{instruction, input, output} or {instruction, context, response}; found " + obj.keySet());
    }

    private static String join(String instruction, String extra) {
        return extra.isBlank() ? instruction : instruction + "\n\n" + extra;
    }

    private static String optional(Path file, int lineNo, JsonObject obj, String key) throws MalformedJsonlException {
        return obj.has(key) && !obj.get(key).isJsonNull() ? string(file, lineNo, obj, key) : "";
    }

    private static String string(Path file, int lineNo, JsonObject obj, String key) throws MalformedJsonlException {
        JsonElement value = obj.get(key);
        if (value == null || !value.isJsonPrimitive()) {
            throw new MalformedJsonlException(file, lineNo,
                    "field \"" + key + "\" must be a string, found " + kind(value));
        }
        return value.getAsString();
    }

    private static String kind(JsonElement e) {
        if (e == null || e.isJsonNull()) {
            return "null";
        }
        return e.isJsonArray() ? "an array" : e.isJsonObject() ? "an object" : "a " + e.getAsJsonPrimitive().getClass().getSimpleName();
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage();
    }
}
