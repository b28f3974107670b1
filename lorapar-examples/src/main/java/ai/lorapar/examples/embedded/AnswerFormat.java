package ai.lorapar.examples.embedded;

import ai.lorapar.data.Example;
import java.util.regex.Pattern;

/**
 * The two ways the tiny model is asked and answers: GSM8K's worked lines ending in {@code #### N} (what
 * SFT teaches, no system prompt) and GRPO's tags under the reference's system prompt.
 */
public enum AnswerFormat {
    /** No system prompt; the answer is the worked solution whose last line is {@code #### N}. */
    HASH("hash", null, Pattern.compile("(?s).*\\n#### \\d+\\s*")),
    /**
     * {@link EmbeddedTokenizer#GRPO_SYSTEM_PROMPT}; the answer is {@link WordProblem#tagAnswer()}.
     * Well-formed means the reference's strict format: {@code ^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$}
     * (no DOTALL; {@code $} also before a final newline) with digits as the answer.
     */
    TAGS("tags", EmbeddedTokenizer.GRPO_SYSTEM_PROMPT,
            Pattern.compile("<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n\\d+\\n</answer>\\n\\n?", Pattern.UNIX_LINES));

    private final String key;
    private final String systemPrompt;
    private final Pattern wellFormed;

    AnswerFormat(String key, String systemPrompt, Pattern wellFormed) {
        this.key = key;
        this.systemPrompt = systemPrompt;
        this.wellFormed = wellFormed;
    }

    /** The name in {@code training.json} and reports: {@code hash} or {@code tags}. */
    public String key() {
        return key;
    }

    /** The system prompt this format is asked with, or null. */
    public String systemPrompt() {
        return systemPrompt;
    }

    /** The answer of {@code p} in this format. */
    public String answer(WordProblem p) {
        return this == HASH ? p.answer() : p.tagAnswer();
    }

    /**
     * {@code p} as a training example in this format. The system prompt goes into the question text
     * ({@code system + "\n" + question}), which {@link EmbeddedDefault#promptTemplate()} renders exactly as a
     * system turn, so both formats can share one encoder (and one training run).
     */
    public Example example(String id, WordProblem p) {
        String question = systemPrompt == null ? p.question() : systemPrompt + "\n" + p.question();
        return Example.of(id, question, answer(p));
    }

    /** Whether a completion (decoded, special tokens skipped) has this format's shape. */
    public boolean isWellFormed(String completion) {
        return wellFormed.matcher(completion).matches();
    }
}
