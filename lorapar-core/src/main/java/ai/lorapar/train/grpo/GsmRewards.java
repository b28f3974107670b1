package ai.lorapar.train.grpo;

import ai.lorapar.data.Example;

import java.util.OptionalDouble;
import java.util.regex.Pattern;

/**
 * The reference's GSM8K rewards and system prompt: the five reward functions of the widely used
 * "GRPO on GSM8K" recipe (Will Brown's {@code grpo_demo.py} gist, which LoRA-PAR's {@code example.py}
 * uses with TRL's GRPOTrainer), reproduced exactly, Python semantics included:
 *
 * <pre>
 * xmlcount_reward_func       count_xml(text): +0.125 for each of "&lt;reasoning&gt;\n", "\n&lt;/reasoning&gt;\n",
 *                            "\n&lt;answer&gt;\n", "\n&lt;/answer&gt;" occurring exactly once; with "\n&lt;answer&gt;\n"
 *                            −0.001·len(text after the last "\n&lt;/answer&gt;\n", or all of it without one);
 *                            with "\n&lt;/answer&gt;" −0.001·(len(text after the last "\n&lt;/answer&gt;") − 1)
 * soft_format_reward_func    0.5 if re.match(r"&lt;reasoning&gt;.*?&lt;/reasoning&gt;\s*&lt;answer&gt;.*?&lt;/answer&gt;", text)
 * strict_format_reward_func  0.5 if re.match(r"^&lt;reasoning&gt;\n.*?\n&lt;/reasoning&gt;\n&lt;answer&gt;\n.*?\n&lt;/answer&gt;\n$", text)
 * int_reward_func            0.5 if extract_xml_answer(text).isdigit()
 * correctness_reward_func    2.0 if extract_xml_answer(text) == extract_hash_answer(example answer)
 *
 * extract_xml_answer(t) = t.split("&lt;answer&gt;")[-1].split("&lt;/answer&gt;")[0].strip()
 * extract_hash_answer(t) = t.split("####")[1].strip() if "####" in t else None
 * </pre>
 *
 * (The regular expressions have no {@code re.DOTALL}: {@code .} does not match a newline, so the strict
 * format needs the reasoning and the answer on one line each, and the soft format needs both tags'
 * contents on one line; {@code re.match} anchors at the start only, and Python's {@code $} also matches
 * before a final newline. Lengths are counted in code points, as Python's {@code len}; {@code strip()} and
 * {@code \s} use Python's notion of whitespace; {@code isdigit()} accepts Unicode digits.) Each function
 * always returns a score (never "no score"); in {@link #reference()} every weight is 1, TRL's default.
 * The completion text is the decoded completion without special tokens, as TRL passes it.
 */
public final class GsmRewards {

    /**
     * The reference's system prompt (from the same recipe; leading and trailing newline included), which
     * asks for the format the rewards score.
     */
    public static final String SYSTEM_PROMPT =
            "\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n";

    /** Log names: the reference's Python function names, so logs compare with TRL's {@code rewards/<name>}. */
    public static final String XML_COUNT = "xmlcount_reward_func";
    public static final String SOFT_FORMAT = "soft_format_reward_func";
    public static final String STRICT_FORMAT = "strict_format_reward_func";
    public static final String INTEGER = "int_reward_func";
    public static final String CORRECTNESS = "correctness_reward_func";

    /** Python's {@code \s} on str patterns, as a Java character class body. */
    private static final String PY_SPACE = "\\s\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
    /** UNIX_LINES: '.' excludes only '\n' and '$' considers only '\n', as in Python. */
    private static final Pattern STRICT = Pattern.compile(
            "^<reasoning>\\n.*?\\n</reasoning>\\n<answer>\\n.*?\\n</answer>\\n$", Pattern.UNIX_LINES);
    private static final Pattern SOFT = Pattern.compile(
            "<reasoning>.*?</reasoning>[" + PY_SPACE + "]*<answer>.*?</answer>", Pattern.UNIX_LINES);

    private GsmRewards() {}

    /**
     * The five in the reference's order (xmlcount, soft format, strict format, integer, correctness), each
     * with weight 1: a completion in the format with the right integer answer scores 0.5 + 0.5 + 0.5 + 0.5
     * + 2.0 = 4.0.
     */
    public static RewardSet reference() {
        return RewardSet.builder().add(xmlCount()).add(softFormat()).add(strictFormat()).add(integer())
                .add(correctness()).build();
    }

    /** 2.0 when the {@code <answer>} content equals the text after {@code ####} of the example's answer, else 0. */
    public static RewardFunction correctness() {
        return RewardFunction.named(CORRECTNESS, (example, text, ids) -> {
            String reference = extractHashAnswer(example.answer());
            return OptionalDouble.of(extractXmlAnswer(text).equals(reference) ? 2.0 : 0.0);
        });
    }

    /** 0.5 when the {@code <answer>} content is a non-empty string of digits, else 0. */
    public static RewardFunction integer() {
        return RewardFunction.named(INTEGER, (example, text, ids) ->
                OptionalDouble.of(isDigit(extractXmlAnswer(text)) ? 0.5 : 0.0));
    }

    /** 0.5 when the whole text is the strict format, else 0. */
    public static RewardFunction strictFormat() {
        return RewardFunction.named(STRICT_FORMAT, (example, text, ids) ->
                OptionalDouble.of(STRICT.matcher(text).lookingAt() ? 0.5 : 0.0));
    }

    /** 0.5 when the text starts with the soft format, else 0. */
    public static RewardFunction softFormat() {
        return RewardFunction.named(SOFT_FORMAT, (example, text, ids) ->
                OptionalDouble.of(SOFT.matcher(text).lookingAt() ? 0.5 : 0.0));
    }

    /** {@link #countXml} of the text. */
    public static RewardFunction xmlCount() {
        return RewardFunction.named(XML_COUNT, (example, text, ids) -> OptionalDouble.of(countXml(text)));
    }

    /** The reference's {@code count_xml}, operation for operation (so the doubles are the same). */
    public static double countXml(String text) {
        double count = 0.0;
        if (occurrences(text, "<reasoning>\n") == 1) {
            count += 0.125;
        }
        if (occurrences(text, "\n</reasoning>\n") == 1) {
            count += 0.125;
        }
        if (occurrences(text, "\n<answer>\n") == 1) {
            count += 0.125;
            count -= pyLen(afterLast(text, "\n</answer>\n")) * 0.001;
        }
        if (occurrences(text, "\n</answer>") == 1) {
            count += 0.125;
            count -= (pyLen(afterLast(text, "\n</answer>")) - 1) * 0.001;
        }
        return count;
    }

    /** {@code text.split("<answer>")[-1].split("</answer>")[0].strip()}. */
    public static String extractXmlAnswer(String text) {
        String s = afterLast(text, "<answer>");
        int close = s.indexOf("</answer>");
        if (close >= 0) {
            s = s.substring(0, close);
        }
        return pyStrip(s);
    }

    /** {@code text.split("####")[1].strip()} when {@code "####"} occurs, else null. */
    public static String extractHashAnswer(String text) {
        int at = text.indexOf("####");
        if (at < 0) {
            return null;
        }
        String rest = text.substring(at + 4);
        int next = rest.indexOf("####");
        return pyStrip(next >= 0 ? rest.substring(0, next) : rest);
    }

    /** Python's {@code str.count}: non-overlapping occurrences. */
    static int occurrences(String text, String sub) {
        int n = 0;
        int from = 0;
        while (true) {
            int at = text.indexOf(sub, from);
            if (at < 0) {
                return n;
            }
            n++;
            from = at + sub.length();
        }
    }

    /** Python's {@code text.split(sep)[-1]}: the text after the last {@code sep}, or all of it. */
    static String afterLast(String text, String sep) {
        int at = text.lastIndexOf(sep);
        return at < 0 ? text : text.substring(at + sep.length());
    }

    /** Python's {@code len} of a str: code points. */
    static int pyLen(String s) {
        return s.codePointCount(0, s.length());
    }

    /** Python's {@code str.isspace} for one character. */
    static boolean pyIsSpace(int c) {
        return Character.isWhitespace(c) || c == 0x85 || c == 0xa0 || c == 0x2007 || c == 0x202f;
    }

    /** Python's {@code str.strip()} (no argument). */
    static String pyStrip(String s) {
        int begin = 0;
        int end = s.length();
        while (begin < end && pyIsSpace(s.codePointAt(begin))) {
            begin += Character.charCount(s.codePointAt(begin));
        }
        while (end > begin && pyIsSpace(s.codePointBefore(end))) {
            end -= Character.charCount(s.codePointBefore(end));
        }
        return s.substring(begin, end);
    }

    /**
     * Python's {@code str.isdigit()}: non-empty and every character a digit (Unicode decimal digits, and
     * digit-valued other numbers such as superscripts; Java has no Numeric_Type, so this is the nearest rule).
     */
    static boolean isDigit(String s) {
        if (s.isEmpty()) {
            return false;
        }
        return s.codePoints().allMatch(c -> Character.getType(c) == Character.DECIMAL_DIGIT_NUMBER
                || (Character.getType(c) == Character.OTHER_NUMBER && Character.getNumericValue(c) >= 0
                        && Character.getNumericValue(c) <= 9));
    }

    /** The reference answer of an example as the correctness reward compares it (null without {@code ####}). */
    public static String referenceOf(Example example) {
        return extractHashAnswer(example.answer());
    }
}
