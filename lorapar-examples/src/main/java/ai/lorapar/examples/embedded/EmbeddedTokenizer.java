package ai.lorapar.examples.embedded;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes the tiny model's Hugging Face tokenizer ({@code tokenizer.json} + {@code tokenizer_config.json}):
 * a {@code WordLevel} model over a closed vocabulary, loadable by DJL's {@code HuggingFaceTokenizer} and
 * by transformers' {@code PreTrainedTokenizerFast}.
 *
 * <p>Pieces come from one {@code Split} pre-tokenizer regex ({@link #PIECE}), GPT-2 style: a word, a single
 * digit or a single other character, each with the space before it attached; a newline is a piece of its
 * own, and so is a lone space. So numbers are digit sequences ("12" after a space is {@code " 1"}, {@code
 * "2"}), the vocabulary holds each word twice ({@code "apples"}, {@code " apples"}), and the {@code Fuse}
 * decoder (plain concatenation) gives back the exact text: {@code decode(encode(t)) == t} for any text
 * made of vocabulary words, digits, printable ASCII punctuation, single spaces and newlines. Anything else
 * becomes {@code <unk>}.
 *
 * <p>Ids: {@code <unk>} 0, {@code <s>} 1 (bos, prepended by the post-processor), {@code </s>} 2 (eos),
 * {@code <pad>} 3, then the GRPO format tags {@code <reasoning>}, {@code </reasoning>}, {@code <answer>},
 * {@code </answer>} (4–7, added tokens that are not special, so they survive decoding without special
 * tokens), then newline, space, digits, punctuation and words.
 */
public final class EmbeddedTokenizer {

    /** The pre-tokenizer's pieces: a word, a digit or another character with an optional leading space; a newline; a space. */
    public static final String PIECE_REGEX = " ?[A-Za-z]+| ?[0-9]| ?[^ A-Za-z0-9\\n]|\\n| ";

    private static final Pattern PIECE = Pattern.compile(PIECE_REGEX);

    public static final String UNK = "<unk>";
    public static final String BOS = "<s>";
    public static final String EOS = "</s>";
    public static final String PAD = "<pad>";
    /** The special tokens, in id order from 0. */
    public static final List<String> SPECIALS = List.of(UNK, BOS, EOS, PAD);
    /** The format tags of GRPO's system prompt, ids 4–7. */
    public static final List<String> TAGS = List.of("<reasoning>", "</reasoning>", "<answer>", "</answer>");

    /**
     * The system prompt of the reference's GRPO stage (TRL recipe), character for character, leading and
     * trailing newline included (the library's {@code GsmRewards.SYSTEM_PROMPT}); its words are in the
     * vocabulary.
     */
    public static final String GRPO_SYSTEM_PROMPT =
            "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n";

    /** Words beyond the generator's that prompts may use. */
    private static final List<String> EXTRA_WORDS = List.of("Respond", "in", "the", "following", "format",
            "Question", "Answer", "So", "answer", "is", "reasoning");

    private EmbeddedTokenizer() {
    }

    /** The pre-tokenizer's pieces of {@code text}, as the Rust tokenizer splits it (outside added tokens). */
    public static List<String> pieces(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = PIECE.matcher(text);
        int end = 0;
        while (m.find()) {
            if (m.start() > end) {
                out.add(text.substring(end, m.start())); // Split(Isolated) keeps what no match covers as a piece
            }
            out.add(m.group());
            end = m.end();
        }
        if (end < text.length()) {
            out.add(text.substring(end));
        }
        return out;
    }

    /**
     * The default vocabulary: specials, tags, newline, space, digits and printable ASCII punctuation with and
     * without a leading space, then every word of {@link WordProblems#lexicon()} and of GRPO's system prompt
     * with and without a leading space, each group sorted.
     */
    public static List<String> defaultVocabulary() {
        Set<String> words = new TreeSet<>(WordProblems.lexicon());
        words.addAll(EXTRA_WORDS);
        return vocabulary(words);
    }

    /** A vocabulary over {@code words} (letters only) plus digits, punctuation, newline and space. */
    public static List<String> vocabulary(Collection<String> words) {
        Set<String> vocab = new LinkedHashSet<>(SPECIALS);
        vocab.addAll(TAGS);
        vocab.add("\n");
        vocab.add(" ");
        for (char d = '0'; d <= '9'; d++) {
            vocab.add(String.valueOf(d));
            vocab.add(" " + d);
        }
        for (char c = 33; c < 127; c++) {
            if (!Character.isLetterOrDigit(c)) {
                vocab.add(String.valueOf(c));
                vocab.add(" " + c);
            }
        }
        for (String w : new TreeSet<>(words)) {
            if (!w.matches("[A-Za-z]+")) {
                throw new IllegalArgumentException("vocabulary word \"" + w + "\" must be letters only");
            }
            vocab.add(w);
            vocab.add(" " + w);
        }
        return List.copyOf(vocab);
    }

    /** The {@code tokenizer.json} of {@code vocabulary} (which starts with {@link #SPECIALS} then {@link #TAGS}). */
    public static JsonObject tokenizerJson(List<String> vocabulary) {
        for (int i = 0; i < SPECIALS.size() + TAGS.size(); i++) {
            String want = i < SPECIALS.size() ? SPECIALS.get(i) : TAGS.get(i - SPECIALS.size());
            if (!want.equals(vocabulary.get(i))) {
                throw new IllegalArgumentException("vocabulary id " + i + " must be " + want + ", was " + vocabulary.get(i));
            }
        }
        JsonObject root = new JsonObject();
        root.addProperty("version", "1.0");
        root.add("truncation", null);
        root.add("padding", null);
        JsonArray added = new JsonArray();
        for (int i = 0; i < SPECIALS.size() + TAGS.size(); i++) {
            JsonObject t = new JsonObject();
            t.addProperty("id", i);
            t.addProperty("content", vocabulary.get(i));
            t.addProperty("single_word", false);
            t.addProperty("lstrip", false);
            t.addProperty("rstrip", false);
            t.addProperty("normalized", false);
            t.addProperty("special", i < SPECIALS.size());
            added.add(t);
        }
        root.add("added_tokens", added);
        root.add("normalizer", null);

        JsonObject pre = new JsonObject();
        pre.addProperty("type", "Split");
        JsonObject pattern = new JsonObject();
        pattern.addProperty("Regex", PIECE_REGEX);
        pre.add("pattern", pattern);
        pre.addProperty("behavior", "Isolated");
        pre.addProperty("invert", false);
        root.add("pre_tokenizer", pre);

        root.add("post_processor", bosTemplate());

        JsonObject decoder = new JsonObject();
        decoder.addProperty("type", "Fuse");
        root.add("decoder", decoder);

        JsonObject model = new JsonObject();
        model.addProperty("type", "WordLevel");
        JsonObject vocab = new JsonObject();
        for (int i = 0; i < vocabulary.size(); i++) {
            if (vocab.has(vocabulary.get(i))) {
                throw new IllegalArgumentException("vocabulary lists \"" + vocabulary.get(i) + "\" twice");
            }
            vocab.addProperty(vocabulary.get(i), i);
        }
        model.add("vocab", vocab);
        model.addProperty("unk_token", UNK);
        root.add("model", model);
        return root;
    }

    /** LLaMA's post-processor: {@code <s> $A} (and {@code <s> $A <s> $B} for pairs). */
    private static JsonObject bosTemplate() {
        JsonObject p = new JsonObject();
        p.addProperty("type", "TemplateProcessing");
        JsonArray single = new JsonArray();
        single.add(special(BOS, 0));
        single.add(sequence("A", 0));
        JsonArray pair = new JsonArray();
        pair.add(special(BOS, 0));
        pair.add(sequence("A", 0));
        pair.add(special(BOS, 1));
        pair.add(sequence("B", 1));
        p.add("single", single);
        p.add("pair", pair);
        JsonObject specials = new JsonObject();
        JsonObject bos = new JsonObject();
        bos.addProperty("id", BOS);
        JsonArray ids = new JsonArray();
        ids.add(SPECIALS.indexOf(BOS));
        bos.add("ids", ids);
        JsonArray tokens = new JsonArray();
        tokens.add(BOS);
        bos.add("tokens", tokens);
        specials.add(BOS, bos);
        p.add("special_tokens", specials);
        return p;
    }

    private static JsonObject special(String id, int typeId) {
        JsonObject inner = new JsonObject();
        inner.addProperty("id", id);
        inner.addProperty("type_id", typeId);
        JsonObject o = new JsonObject();
        o.add("SpecialToken", inner);
        return o;
    }

    private static JsonObject sequence(String id, int typeId) {
        JsonObject inner = new JsonObject();
        inner.addProperty("id", id);
        inner.addProperty("type_id", typeId);
        JsonObject o = new JsonObject();
        o.add("Sequence", inner);
        return o;
    }

    /** {@code tokenizer_config.json}: bos/eos/pad/unk for transformers and for {@code TextTokenizer}. */
    public static JsonObject tokenizerConfigJson(int modelMaxLength) {
        JsonObject c = new JsonObject();
        c.addProperty("tokenizer_class", "PreTrainedTokenizerFast");
        c.addProperty("bos_token", BOS);
        c.addProperty("eos_token", EOS);
        c.addProperty("pad_token", PAD);
        c.addProperty("unk_token", UNK);
        c.addProperty("add_bos_token", true);
        c.addProperty("add_eos_token", false);
        c.addProperty("clean_up_tokenization_spaces", false); // spaces belong to tokens: nothing to clean
        c.addProperty("model_max_length", modelMaxLength);
        return c;
    }

    /** Writes {@code tokenizer.json} and {@code tokenizer_config.json} of {@code vocabulary} into {@code folder}. */
    public static void write(Path folder, List<String> vocabulary, int modelMaxLength) throws IOException {
        writeJson(folder.resolve("tokenizer.json"), tokenizerJson(vocabulary));
        writeJson(folder.resolve("tokenizer_config.json"), tokenizerConfigJson(modelMaxLength));
    }

    static void writeJson(Path file, JsonObject json) throws IOException {
        Gson gson = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls().create();
        TextFiles.writeAtomically(file, gson.toJson(json) + "\n");
    }
}
