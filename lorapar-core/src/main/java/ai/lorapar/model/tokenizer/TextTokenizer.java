package ai.lorapar.model.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import ai.lorapar.io.StrictJson;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A Hugging Face tokenizer ({@code tokenizer.json}, through DJL's {@link HuggingFaceTokenizer}) with
 * the special tokens of its folder: bos/eos/pad from {@code tokenizer_config.json}, completed by the
 * ids in {@code generation_config.json} and {@code config.json}. Whether a bos token is prepended is
 * up to {@code tokenizer.json}'s post-processor (as in transformers' fast tokenizers).
 */
public final class TextTokenizer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(TextTokenizer.class);

    private final HuggingFaceTokenizer tokenizer;
    private final Path folder;
    private final Integer bosId;
    private final List<Integer> eosIds;
    private final Integer padId;
    private volatile boolean closed;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Path folder, Integer bosId, List<Integer> eosIds, Integer padId) {
        this.tokenizer = tokenizer;
        this.folder = folder;
        this.bosId = bosId;
        this.eosIds = Collections.unmodifiableList(eosIds);
        this.padId = padId;
    }

    /** Loads {@code folder/tokenizer.json} and the special tokens of the folder's config files. */
    public static TextTokenizer load(Path folder) throws IOException {
        Path json = folder.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            throw new IOException(folder + ": no tokenizer.json (only fast tokenizers are supported; convert a "
                    + "tokenizer.model with transformers' save_pretrained)");
        }
        HuggingFaceTokenizer tk;
        try {
            tk = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(json)
                    .optAddSpecialTokens(true)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
        } catch (RuntimeException e) {
            // the tokenizers library says what is wrong ("key must be a string at line 1 column 2") but not where
            throw new IOException(json + ": not a Hugging Face tokenizer file: " + e.getMessage(), e);
        }
        try {
            JsonObject tc = readOptional(folder.resolve("tokenizer_config.json"));
            JsonObject gen = readOptional(folder.resolve("generation_config.json"));
            JsonObject cfg = readOptional(folder.resolve("config.json"));
            Integer bos = tokenId(tk, tc, "bos_token", folder);
            Integer pad = tokenId(tk, tc, "pad_token", folder);
            Set<Integer> eos = new LinkedHashSet<>();
            Integer tcEos = tokenId(tk, tc, "eos_token", folder);
            if (tcEos != null) {
                eos.add(tcEos);
            }
            for (JsonObject o : new JsonObject[] {gen, cfg}) {
                if (o == null) {
                    continue;
                }
                eos.addAll(ids(o.get("eos_token_id")));
                if (bos == null && !ids(o.get("bos_token_id")).isEmpty()) {
                    bos = ids(o.get("bos_token_id")).get(0);
                }
                if (pad == null && !ids(o.get("pad_token_id")).isEmpty()) {
                    pad = ids(o.get("pad_token_id")).get(0);
                }
            }
            LOG.debug("tokenizer {}: bos={}, eos={}, pad={}", folder, bos, eos, pad);
            return new TextTokenizer(tk, folder, bos, new ArrayList<>(eos), pad);
        } catch (IOException | RuntimeException e) {
            tk.close();
            throw e;
        }
    }

    private static JsonObject readOptional(Path p) throws IOException {
        if (!Files.isRegularFile(p)) {
            return null;
        }
        try (Reader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
            JsonElement e = StrictJson.parse(r);
            return e.isJsonObject() ? e.getAsJsonObject() : null;
        } catch (JsonParseException e) {
            throw new IOException(p + ": not valid JSON: " + e.getMessage(), e);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException(p + ": not valid UTF-8 (" + e + ")", e);
        }
    }

    private static List<Integer> ids(JsonElement e) {
        List<Integer> out = new ArrayList<>();
        if (e == null || e.isJsonNull()) {
            return out;
        }
        if (e.isJsonArray()) {
            e.getAsJsonArray().forEach(x -> out.add(x.getAsInt()));
        } else if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
            out.add(e.getAsInt());
        }
        return out;
    }

    /** The id of tokenizer_config.json's {@code key} token (a string or an AddedToken object), or null. */
    private static Integer tokenId(HuggingFaceTokenizer tk, JsonObject tc, String key, Path folder) throws IOException {
        if (tc == null || !tc.has(key) || tc.get(key).isJsonNull()) {
            return null;
        }
        JsonElement e = tc.get(key);
        String content = e.isJsonObject() ? e.getAsJsonObject().get("content").getAsString() : e.getAsString();
        long[] ids = tk.encode(content, false, false).getIds();
        if (ids.length != 1) {
            throw new IOException(folder.resolve("tokenizer_config.json") + ": " + key + " \"" + content
                    + "\" is not a single token of tokenizer.json (encodes to " + ids.length + " ids)");
        }
        return (int) ids[0];
    }

    /** The folder it was loaded from. */
    public Path folder() {
        return folder;
    }

    /** Token ids of {@code text}; with {@code addSpecialTokens} the post-processor's (e.g. bos) are added. */
    public long[] encode(String text, boolean addSpecialTokens) {
        checkOpen();
        Encoding enc = tokenizer.encode(text, addSpecialTokens, false);
        return enc.getIds();
    }

    /** {@link #encode(String, boolean)} with special tokens. */
    public long[] encode(String text) {
        return encode(text, true);
    }

    /** Text of {@code ids}, optionally without special tokens. */
    public String decode(long[] ids, boolean skipSpecialTokens) {
        checkOpen();
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    /** The id of a single-token string such as {@code <|im_end|>}, or null when it is not one token. */
    public Integer tokenId(String token) {
        checkOpen();
        long[] ids = tokenizer.encode(token, false, false).getIds();
        return ids.length == 1 ? (int) ids[0] : null;
    }

    /** Begin-of-sequence id, or null. */
    public Integer bosId() {
        return bosId;
    }

    /** End-of-sequence ids (tokenizer_config's eos first, then generation_config's / config's). */
    public List<Integer> eosIds() {
        return eosIds;
    }

    /** Padding id, or null when the folder names none. */
    public Integer padId() {
        return padId;
    }

    /** The wrapped DJL tokenizer. */
    public HuggingFaceTokenizer delegate() {
        return tokenizer;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("TextTokenizer (" + folder + ") is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            tokenizer.close();
        }
    }

    @Override
    public String toString() {
        return "TextTokenizer[" + folder + ", bos=" + bosId + ", eos=" + eosIds + ", pad=" + padId + "]";
    }
}
