package ai.lorapar.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A multiple-choice question for {@link MultipleChoiceScorer}: the question text (the user turn of the
 * prompt), the continuations whose likelihood is compared, and the index of the right one.
 *
 * @param id an identifier for reports
 * @param question the prompt text (rendered through the encoder's template as the user turn)
 * @param choices the continuations scored after the prompt, in order
 * @param answer the index of the correct continuation
 */
public record MultipleChoiceQuestion(String id, String question, List<String> choices, int answer) {

    /** The option letters of {@link #mmlu}: A, B, C, ... */
    private static final String LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    public MultipleChoiceQuestion {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(question, "question");
        choices = List.copyOf(choices);
        if (choices.size() < 2) {
            throw new IllegalArgumentException("question '" + id + "' needs at least two choices, has " + choices.size());
        }
        for (int i = 0; i < choices.size(); i++) {
            if (choices.get(i).isEmpty()) {
                throw new IllegalArgumentException("question '" + id + "': choice " + i + " is empty");
            }
        }
        if (answer < 0 || answer >= choices.size()) {
            throw new IllegalArgumentException("question '" + id + "': answer index " + answer + " is not one of the "
                    + choices.size() + " choices");
        }
    }

    /**
     * The options themselves are the continuations (scored after the question): e.g. {@code " Paris"}.
     * Put a leading space in the options when the tokenizer attaches spaces to words.
     */
    public static MultipleChoiceQuestion of(String id, String question, List<String> options, int answer) {
        return new MultipleChoiceQuestion(id, question, options, answer);
    }

    /**
     * MMLU's prompt format (Hendrycks et al.; lm-evaluation-harness's original MMLU task): the question,
     * the options as lines {@code A. ...}, then {@code Answer:}; the continuations are the letters
     * {@code " A"}, {@code " B"}, ... so every choice is one short continuation of equal length.
     */
    public static MultipleChoiceQuestion mmlu(String id, String question, List<String> options, int answer) {
        if (options.size() > LETTERS.length()) {
            throw new IllegalArgumentException("question '" + id + "' has " + options.size() + " options; at most "
                    + LETTERS.length() + " can be lettered");
        }
        StringBuilder sb = new StringBuilder(question.strip());
        List<String> letters = new ArrayList<>(options.size());
        for (int i = 0; i < options.size(); i++) {
            sb.append('\n').append(LETTERS.charAt(i)).append(". ").append(options.get(i).strip());
            letters.add(" " + LETTERS.charAt(i));
        }
        sb.append("\nAnswer:");
        return new MultipleChoiceQuestion(id, sb.toString(), letters, answer);
    }
}
