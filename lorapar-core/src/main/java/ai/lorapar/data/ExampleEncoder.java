package ai.lorapar.data;

import ai.lorapar.model.tokenizer.ChatMessage;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Turns {@link Example}s into token ids, in one place, so that importance scoring, SFT, GRPO and
 * evaluation agree on what the model sees.
 *
 * <p>An example is rendered as a conversation: an optional system turn, the question as the user turn
 * and the answer as the assistant turn, through a {@link PromptTemplate}. The prompt is the text up to
 * where the answer begins ({@link PromptTemplate#render} with the generation prompt); the completion is
 * the rest of the full conversation's text. The prompt is encoded with the tokenizer's special tokens
 * (a LLaMA bos, say), the completion without, and the end-of-sequence id is appended unless the
 * completion already holds one (ChatML's {@code <|im_end|>}), so that a trained model learns to stop.
 * Labels are the ids with {@value #IGNORE_INDEX} on the prompt, so only answer tokens count in a loss.
 *
 * <p><b>Truncation</b> ({@link Truncation}): with the default {@link Truncation#CUT_ANSWER_END} an
 * example longer than {@link Builder#maxLength} keeps its whole prompt and loses the end of its answer
 * (transformers' right-side truncation); an example whose prompt alone fills the maximum (no answer
 * token would remain) is skipped and counted, never trained on with an empty answer.
 * {@link Truncation#SKIP} skips every example that does not fit. {@link #encodeAll} reports both counts.
 *
 * <pre>{@code
 * ExampleEncoder enc = ExampleEncoder.builder(lm.tokenizer()).template(PromptTemplate.chatMl())
 *         .maxLength(512).vocabSize(lm.model().config().vocabSize()).build();
 * EncodedDataset data = enc.encodeAll(examples);
 * try (TokenBatch batch = TokenBatch.of(data.examples().subList(0, 8), enc.padId(), manager)) { ... }
 * }</pre>
 *
 * <p>Immutable and thread-safe (the tokenizer is only read).
 */
public final class ExampleEncoder {
    private static final Logger LOG = LoggerFactory.getLogger(ExampleEncoder.class);

    /** The label of a position that does not count in the loss (transformers' convention). */
    public static final int IGNORE_INDEX = -100;

    /** What to do with an example longer than the maximum length. */
    public enum Truncation {
        /** Keep the prompt, cut the end of the answer; skip an example left without answer tokens. */
        CUT_ANSWER_END,
        /** Skip every example longer than the maximum. */
        SKIP
    }

    private final TextTokenizer tokenizer;
    private final PromptTemplate template;
    private final String systemPrompt;
    private final int maxLength;
    private final int maxPromptLength;
    private final Truncation truncation;
    private final boolean appendEos;
    private final int vocabSize;
    private final long padId;
    private final long[] eosIds;

    private ExampleEncoder(Builder b) {
        this.tokenizer = b.tokenizer;
        this.template = b.template;
        this.systemPrompt = b.systemPrompt;
        this.maxLength = b.maxLength;
        this.maxPromptLength = b.maxPromptLength > 0 ? b.maxPromptLength : b.maxLength;
        this.truncation = b.truncation;
        this.appendEos = b.appendEos;
        this.vocabSize = b.vocabSize;
        this.eosIds = tokenizer.eosIds().stream().mapToLong(Integer::longValue).toArray();
        if (tokenizer.padId() != null) {
            this.padId = tokenizer.padId();
        } else if (eosIds.length > 0) {
            this.padId = eosIds[0];
        } else {
            this.padId = 0;
        }
    }

    /**
     * A builder over {@code tokenizer}. Defaults: {@link PromptTemplate#plain()}, no system prompt,
     * maximum length 512 (the paper's), prompts at most as long, {@link Truncation#CUT_ANSWER_END}, eos
     * appended, no vocabulary check.
     */
    public static Builder builder(TextTokenizer tokenizer) {
        return new Builder(tokenizer);
    }

    /** A builder holding this encoder's settings (e.g. to change the system prompt for GRPO). */
    public Builder toBuilder() {
        Builder b = new Builder(tokenizer);
        b.template = template;
        b.systemPrompt = systemPrompt;
        b.maxLength = maxLength;
        b.maxPromptLength = maxPromptLength;
        b.truncation = truncation;
        b.appendEos = appendEos;
        b.vocabSize = vocabSize;
        return b;
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public PromptTemplate template() {
        return template;
    }

    /** The system prompt put before every question, or null. */
    public String systemPrompt() {
        return systemPrompt;
    }

    /** The maximum number of tokens of an encoded example (prompt + answer). */
    public int maxLength() {
        return maxLength;
    }

    /** The maximum number of tokens of a prompt encoded alone ({@link #encodePrompt}). */
    public int maxPromptLength() {
        return maxPromptLength;
    }

    public Truncation truncation() {
        return truncation;
    }

    /** The id that pads batches: the tokenizer's pad id, else its first eos id, else 0. */
    public long padId() {
        return padId;
    }

    /** The end-of-sequence ids of the tokenizer (generation stops at any of them). */
    public long[] eosIds() {
        return eosIds.clone();
    }

    /** The vocabulary size ids are checked against, or 0 when unchecked. */
    public int vocabSize() {
        return vocabSize;
    }

    /** The prompt text of {@code example}: system turn (if any) and question, ending where the answer begins. */
    public String promptText(Example example) {
        return template.render(messages(example, false), true);
    }

    /**
     * The ids of {@code example}'s prompt alone (for sampling and evaluation), with special tokens. A
     * prompt longer than {@link #maxPromptLength()} keeps its last tokens (TRL's left truncation of
     * prompts), and a warning is logged.
     *
     * @throws IllegalArgumentException when an id is outside the vocabulary (see {@link Builder#vocabSize})
     */
    public long[] encodePrompt(Example example) {
        long[] ids = tokenizer.encode(promptText(example), true);
        if (ids.length > maxPromptLength) {
            LOG.warn("prompt of example {} has {} tokens; keeping its last {}", describe(example), ids.length,
                    maxPromptLength);
            ids = Arrays.copyOfRange(ids, ids.length - maxPromptLength, ids.length);
        }
        checkVocabulary(example, ids);
        return ids;
    }

    /**
     * Encodes one example.
     *
     * @return the encoded example, or null when it is skipped under the truncation policy (see
     *     {@link #encodeAll} for counted skips)
     * @throws IllegalArgumentException when the template's prompt is not a prefix of the full
     *     conversation, or an id is outside the vocabulary, naming the example
     */
    public EncodedExample encode(Example example) {
        String prompt = promptText(example);
        String full = template.render(messages(example, true), false);
        if (!full.startsWith(prompt)) {
            throw new IllegalArgumentException("example " + describe(example) + ": the template's prompt (with the "
                    + "generation prompt) is not a prefix of the rendered conversation, so the answer cannot be "
                    + "located; use a template whose generation prompt starts the assistant turn");
        }
        long[] promptIds = tokenizer.encode(prompt, true);
        long[] answerIds = tokenizer.encode(full.substring(prompt.length()), false);
        if (appendEos && eosIds.length > 0 && !containsAny(answerIds, eosIds)) {
            answerIds = Arrays.copyOf(answerIds, answerIds.length + 1);
            answerIds[answerIds.length - 1] = eosIds[0];
        }
        if (answerIds.length == 0) {
            throw new IllegalArgumentException("example " + describe(example) + " has an empty answer after encoding");
        }
        long[] ids = new long[promptIds.length + answerIds.length];
        System.arraycopy(promptIds, 0, ids, 0, promptIds.length);
        System.arraycopy(answerIds, 0, ids, promptIds.length, answerIds.length);
        boolean truncated = false;
        if (ids.length > maxLength) {
            if (truncation == Truncation.SKIP || promptIds.length >= maxLength) {
                return null;
            }
            ids = Arrays.copyOf(ids, maxLength);
            truncated = true;
        }
        checkVocabulary(example, ids);
        return new EncodedExample(example, ids, promptIds.length, truncated);
    }

    /**
     * Encodes every example; skipped ones are counted (and their ids listed) in the result, and a
     * warning is logged when there are any.
     */
    public EncodedDataset encodeAll(List<Example> examples) {
        List<EncodedExample> kept = new ArrayList<>(examples.size());
        List<Example> skipped = new ArrayList<>();
        int truncated = 0;
        for (Example e : examples) {
            EncodedExample enc = encode(e);
            if (enc == null) {
                skipped.add(e);
            } else {
                kept.add(enc);
                if (enc.truncated()) {
                    truncated++;
                }
            }
        }
        if (!skipped.isEmpty() || truncated > 0) {
            LOG.warn("{} of {} examples skipped as longer than {} tokens ({}), {} truncated at the end of the answer",
                    skipped.size(), examples.size(), maxLength, truncation, truncated);
        }
        return new EncodedDataset(kept, skipped, truncated);
    }

    private List<ChatMessage> messages(Example example, boolean withAnswer) {
        List<ChatMessage> m = new ArrayList<>(3);
        if (systemPrompt != null) {
            m.add(ChatMessage.system(systemPrompt));
        }
        m.add(ChatMessage.user(example.question()));
        if (withAnswer) {
            m.add(ChatMessage.assistant(example.answer()));
        }
        return m;
    }

    private void checkVocabulary(Example example, long[] ids) {
        if (vocabSize <= 0) {
            return;
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocabSize) {
                throw new IllegalArgumentException("example " + describe(example) + ": token id " + ids[i]
                        + " at position " + i + " is outside the model's vocabulary of " + vocabSize
                        + " ids; is " + tokenizer.folder() + " the model's tokenizer?");
            }
        }
    }

    private static boolean containsAny(long[] ids, long[] wanted) {
        for (long id : ids) {
            for (long w : wanted) {
                if (id == w) {
                    return true;
                }
            }
        }
        return false;
    }

    /** "id" or "id (line n)" for messages. */
    static String describe(Example e) {
        return "'" + e.id() + "'" + (e.line() > 0 ? " (line " + e.line() + ")" : "");
    }

    /** Settings of an {@link ExampleEncoder}; {@link #build()} checks them and names a bad one. */
    public static final class Builder {
        private final TextTokenizer tokenizer;
        private PromptTemplate template = PromptTemplate.plain();
        private String systemPrompt;
        private int maxLength = 512;
        private int maxPromptLength;
        private Truncation truncation = Truncation.CUT_ANSWER_END;
        private boolean appendEos = true;
        private int vocabSize;

        private Builder(TextTokenizer tokenizer) {
            this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        }

        /** How a conversation becomes text (default {@link PromptTemplate#plain()}). */
        public Builder template(PromptTemplate template) {
            this.template = Objects.requireNonNull(template, "template");
            return this;
        }

        /** A system turn put before every question (null for none, the default). */
        public Builder systemPrompt(String systemPrompt) {
            this.systemPrompt = systemPrompt;
            return this;
        }

        /** The maximum tokens of prompt + answer (default 512). */
        public Builder maxLength(int maxLength) {
            this.maxLength = maxLength;
            return this;
        }

        /** The maximum tokens of a prompt encoded alone (default: {@link #maxLength}). */
        public Builder maxPromptLength(int maxPromptLength) {
            this.maxPromptLength = maxPromptLength;
            return this;
        }

        public Builder truncation(Truncation truncation) {
            this.truncation = Objects.requireNonNull(truncation, "truncation");
            return this;
        }

        /** Whether an eos id is appended to answers that hold none (default true). */
        public Builder appendEos(boolean appendEos) {
            this.appendEos = appendEos;
            return this;
        }

        /**
         * The model's vocabulary size: an id at or above it (a tokenizer that is not the model's) is an
         * error naming the example. 0 (the default) checks nothing.
         */
        public Builder vocabSize(int vocabSize) {
            this.vocabSize = vocabSize;
            return this;
        }

        public ExampleEncoder build() {
            if (maxLength < 2) {
                throw new IllegalArgumentException("encoder 'maxLength' must be >= 2, got " + maxLength);
            }
            if (maxPromptLength < 0) {
                throw new IllegalArgumentException("encoder 'maxPromptLength' must be >= 1, got " + maxPromptLength);
            }
            if (vocabSize < 0) {
                throw new IllegalArgumentException("encoder 'vocabSize' must be >= 0, got " + vocabSize);
            }
            return new ExampleEncoder(this);
        }
    }
}
