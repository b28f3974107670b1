package ai.lorapar.io;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonSyntaxException;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;

/**
 * JSON parsing that rejects a key repeated in one object, at any depth. Gson's own parser keeps the last
 * value of a repeated key without a word, so a file holding two {@code "r"} or two tensor entries of the
 * same name would be read as if the first were not there. Otherwise as lenient as
 * {@link JsonParser#parseReader(Reader)}.
 */
public final class StrictJson {
    private StrictJson() {}

    /**
     * Parses one JSON document.
     *
     * @param text the document
     * @return the parsed element
     * @throws JsonParseException for malformed JSON, trailing content or a repeated key (named, with its
     *     JSON path)
     */
    public static JsonElement parse(String text) {
        return parse(new StringReader(text));
    }

    /**
     * Parses one JSON document.
     *
     * @param reader the document
     * @return the parsed element
     * @throws JsonParseException for malformed JSON, trailing content or a repeated key (named, with its
     *     JSON path)
     */
    public static JsonElement parse(Reader reader) {
        try {
            JsonReader json = new JsonReader(reader);
            json.setStrictness(Strictness.LENIENT);
            JsonElement root = read(json);
            if (json.peek() != JsonToken.END_DOCUMENT) {
                throw new JsonSyntaxException("content after the JSON document at " + json.getPath());
            }
            return root;
        } catch (IOException e) {
            throw new JsonParseException(e.getMessage(), e);
        } catch (IllegalStateException | NumberFormatException e) {
            throw new JsonSyntaxException(e.getMessage(), e);
        }
    }

    private static JsonElement read(JsonReader in) throws IOException {
        JsonToken token = in.peek();
        if (token == JsonToken.BEGIN_OBJECT) {
            JsonObject object = new JsonObject();
            in.beginObject();
            while (in.hasNext()) {
                String name = in.nextName();
                if (object.has(name)) {
                    throw new JsonSyntaxException("duplicate key \"" + name + "\" (at " + in.getPath()
                            + "; a key may appear once per object)");
                }
                object.add(name, read(in));
            }
            in.endObject();
            return object;
        }
        if (token == JsonToken.BEGIN_ARRAY) {
            JsonArray array = new JsonArray();
            in.beginArray();
            while (in.hasNext()) {
                array.add(read(in));
            }
            in.endArray();
            return array;
        }
        return JsonParser.parseReader(in); // a primitive or null
    }
}
