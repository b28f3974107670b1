package ai.lorapar.eval;

import java.math.BigDecimal;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The final number of a GSM8K-style answer, for exact-match evaluation.
 *
 * <p><b>Where the answer is taken from</b> ({@link #extract}), in this order:
 * <ol>
 *   <li>{@link Method#ANSWER_TAG}: the text after the last {@code <answer>} up to the next
 *       {@code </answer>} (or the end), as the reference's {@code extract_xml_answer} cuts it — the format
 *       GRPO trains for; the last number in it;</li>
 *   <li>{@link Method#HASH}: the text after the first {@code ####} up to the next one (GSM8K's own
 *       format, what SFT teaches); the first number in it;</li>
 *   <li>{@link Method#LAST_NUMBER}: the last number anywhere in the text.</li>
 * </ol>
 * A marker without a number in its segment falls through to the next rule.
 *
 * <p><b>What a number is</b>: an optional sign ({@code -} or {@code −}, not directly after a letter, digit
 * or dot, so {@code 5-3} is 5 and 3), an optional {@code $} before or after the sign, digits with
 * optional thousands separators ({@code 1,200}; {@code 12,34} is two numbers), and optional decimals
 * ({@code 3.5}; a dot not followed by a digit, as at the end of a sentence, is not part of it).
 *
 * <p><b>Normalisation</b>: commas and {@code $} are dropped, trailing decimal zeros are removed
 * ({@code 18.00} → {@code 18}, {@code 0.50} → {@code 0.5}), {@code -0} is {@code 0}. Two answers match when
 * their normalised strings are equal, i.e. when they are the same decimal number.
 */
public final class AnswerExtraction {

    /** Which rule found the answer. */
    public enum Method {
        /** The last number inside the last {@code <answer>…</answer>}. */
        ANSWER_TAG,
        /** The first number after {@code ####}. */
        HASH,
        /** The last number of the whole text. */
        LAST_NUMBER,
        /** No number anywhere. */
        NONE
    }

    /**
     * An extraction result.
     *
     * @param answer the normalised number, or null when none was found
     * @param method the rule that found it ({@link Method#NONE} when none did)
     */
    public record Extracted(String answer, Method method) {
        public Extracted {
            Objects.requireNonNull(method, "method");
        }

        /** Whether a number was found. */
        public boolean found() {
            return answer != null;
        }
    }

    private static final String ANSWER_OPEN = "<answer>";
    private static final String ANSWER_CLOSE = "</answer>";
    private static final String HASH_MARK = "####";

    /** Groups: 1 sign before $, 2 sign after $, 3 integer part, 4 decimals (with the dot). */
    private static final Pattern NUMBER = Pattern.compile(
            "(?<![\\p{L}\\p{N}_.])([-\u2212])?\\$?([-\u2212])?(\\d{1,3}(?:,\\d{3})+|\\d+)(\\.\\d+)?(?!\\d)");
    /** A string that is one number and nothing else (after trimming): also accepts a leading + or a trailing '.'. */
    private static final Pattern WHOLE_NUMBER = Pattern.compile(
            "\\s*\\+?([-\u2212])?\\s*\\$?\\s*([-\u2212])?(\\d{1,3}(?:,\\d{3})+|\\d+|(?=\\.\\d))(\\.\\d+)?\\.?\\s*");

    private AnswerExtraction() {}

    /** The answer of a model's output by the rules in the class comment. */
    public static Extracted extract(String text) {
        Objects.requireNonNull(text, "text");
        int open = text.lastIndexOf(ANSWER_OPEN);
        if (open >= 0) {
            String inside = text.substring(open + ANSWER_OPEN.length());
            int close = inside.indexOf(ANSWER_CLOSE);
            if (close >= 0) {
                inside = inside.substring(0, close);
            }
            Optional<String> n = lastNumber(inside);
            if (n.isPresent()) {
                return new Extracted(n.get(), Method.ANSWER_TAG);
            }
        }
        Optional<String> hash = hashSegment(text).flatMap(AnswerExtraction::firstNumber);
        if (hash.isPresent()) {
            return new Extracted(hash.get(), Method.HASH);
        }
        Optional<String> last = lastNumber(text);
        return last.map(s -> new Extracted(s, Method.LAST_NUMBER)).orElseGet(() -> new Extracted(null, Method.NONE));
    }

    /**
     * The reference answer of a GSM8K answer text: the number after {@code ####}, normalised
     * ({@code "… #### 1,200"} → {@code "1200"}); empty when the text has no {@code ####} followed by a number.
     */
    public static Optional<String> referenceAnswer(String gsm8kAnswer) {
        Objects.requireNonNull(gsm8kAnswer, "gsm8kAnswer");
        return hashSegment(gsm8kAnswer).flatMap(s -> normalize(s).or(() -> firstNumber(s)));
    }

    /**
     * The text after the first {@code ####} up to the next one, as Python's {@code text.split("####")[1]}
     * (the reference's {@code extract_hash_answer}, before its {@code strip()}); empty without a marker.
     */
    public static Optional<String> hashSegment(String text) {
        int at = text.indexOf(HASH_MARK);
        if (at < 0) {
            return Optional.empty();
        }
        String rest = text.substring(at + HASH_MARK.length());
        int next = rest.indexOf(HASH_MARK);
        return Optional.of(next >= 0 ? rest.substring(0, next) : rest);
    }

    /** The first number of {@code text}, normalised. */
    public static Optional<String> firstNumber(String text) {
        Matcher m = NUMBER.matcher(text);
        return m.find() ? Optional.of(canonical(m.group(1) != null || m.group(2) != null, m.group(3), m.group(4)))
                : Optional.empty();
    }

    /** The last number of {@code text}, normalised. */
    public static Optional<String> lastNumber(String text) {
        Matcher m = NUMBER.matcher(text);
        String found = null;
        while (m.find()) {
            found = canonical(m.group(1) != null || m.group(2) != null, m.group(3), m.group(4));
        }
        return Optional.ofNullable(found);
    }

    /**
     * {@code text} as one normalised number when it is nothing but a number (surrounding whitespace, a
     * leading {@code +} or {@code $}, thousands separators and a final sentence dot allowed):
     * {@code " $1,200.50 "} → {@code "1200.5"}; empty otherwise ({@code "12 apples"}).
     */
    public static Optional<String> normalize(String text) {
        Matcher m = WHOLE_NUMBER.matcher(text);
        if (!m.matches()) {
            return Optional.empty();
        }
        String integer = m.group(3).isEmpty() ? "0" : m.group(3);
        return Optional.of(canonical(m.group(1) != null || m.group(2) != null, integer, m.group(4)));
    }

    /** Whether a prediction's normalised answer equals the reference's (null never matches). */
    public static boolean matches(String extracted, String reference) {
        return extracted != null && extracted.equals(reference);
    }

    private static String canonical(boolean negative, String integer, String decimals) {
        String digits = integer.replace(",", "") + (decimals == null ? "" : decimals);
        BigDecimal value = new BigDecimal(digits);
        if (negative) {
            value = value.negate();
        }
        if (value.signum() == 0) {
            return "0";
        }
        return value.stripTrailingZeros().toPlainString();
    }
}
