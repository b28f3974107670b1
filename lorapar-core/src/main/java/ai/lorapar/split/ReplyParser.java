package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a System 1 / System 2 vote out of a teacher's free-text reply.
 *
 * <p>Accepted spellings: {@code System1}, {@code System 2}, {@code system-1}, {@code system_2}, {@code System
 * One}, {@code System II}, {@code S1}/{@code S2}, inside markdown emphasis, quotes or backticks, and a bare
 * {@code 1}/{@code 2} when that is the whole reply. {@code <think>…</think>} blocks of reasoning models are
 * ignored. Among the mentions, these are <em>not decisive</em>:
 * <ul>
 *   <li>negated ones: "not System 2", "rather than System 1", "isn't System 1";</li>
 *   <li>alternatives: "System 1 or System 2", "between System1 and System2", "System1/System2";</li>
 *   <li>generic statements about a class: "System 1 tasks rely on…", "System 2 requires…";</li>
 *   <li>questions and conditionals: "Is it System 1?", "if it were System 2";</li>
 *   <li>a definition list restating the criteria: lines "System1: …" and "System2: …" (one such line alone
 *       counts as a verdict).</li>
 * </ul>
 * The vote is the first decisive mention introduced by a verdict phrase ("Answer:", "Classification:",
 * "belongs to", "classified as", …) if there is one, otherwise the first decisive mention. A reply without a
 * decisive mention is an abstention whose note says why (empty, refusal, truncated reasoning, no mention).
 */
public final class ReplyParser {

    /** Result of parsing one reply: a label, or null with the reason for abstaining. */
    public record ParsedReply(SystemLabel label, String note) {
        /**
         * Whether the reply names no system.
         *
         * @return true for an abstention
         */
        public boolean isAbstention() {
            return label == null;
        }
    }

    private static final Pattern THINK_BLOCK = Pattern.compile("(?is)<think>.*?</think>");
    private static final Pattern MENTION = Pattern.compile(
            "(?<![A-Za-z0-9])(?:(?i:system|sys\\.?)\\s*[-_\u2013\u2014:]?\\s*((?i:1|2|one|two)|II|I)|S([12]))(?![A-Za-z0-9])");
    // Negation and condition only count within a few words of the mention: "not System 2", "isn't a System 1
    // task", "I don't think it's System 1", "if it were System 2"; further away they are about something else.
    private static final Pattern NEGATION = Pattern.compile(
            "(?i)(?:\\bnot\\b|n't\\b|\\bnever\\b|\\bnor\\b|\\bneither\\b|\\brather than\\b|\\binstead of\\b"
                    + "|\\bunlike\\b|\\bexcept\\b)(?:\\W+\\w+){0,3}\\W*$");
    private static final Pattern CONDITIONAL = Pattern.compile("(?i)\\b(?:if|whether)\\b(?:\\W+\\w+){0,4}\\W*$");
    private static final Pattern VERDICT = Pattern.compile(
            "(?i)(?:final answer|answer|label|classification|classified as|category|verdict|decision|conclusion"
                    + "|belongs to|belongs in|falls into|falls under|falls in)\\W*(?:is|would be|:|=|->|\u2192)?\\W*"
                    + "(?:an?\\s+|the\\s+)?$");
    private static final Pattern ALTERNATIVE_AFTER = Pattern.compile(
            "(?i)^\\s*(?:,|\\bor\\b|\\bvs\\.?|\\bversus\\b|\\band\\b|/|\\|)\\s*(?:a\\s+)?(?:system|sys\\b|S[12]\\b)");
    private static final Pattern ALTERNATIVE_BEFORE = Pattern.compile(
            "(?i)(?:\\bor\\b|\\bvs\\.?|\\bversus\\b|\\band\\b|/|\\||,)\\s*$");
    private static final Pattern GENERIC_AFTER = Pattern.compile(
            "(?i)^\\s*(?:tasks|questions|problems|rel(?:y|ies)\\b|requires?\\b|involves?\\b|is characterized"
                    + "|are\\b|means\\b|refers\\b|would\\b|could\\b|includes?\\b|deals?\\b|is about|is for|is used|covers\\b)");
    private static final Pattern REFUSAL = Pattern.compile(
            "(?i)(?:I'm sorry|I am sorry|sorry,|I can(?:no|')t\\b|I cannot|I won't|I will not|unable to|as an AI"
                    + "|I'm not able|I am not able|not comfortable|against (?:my|the) (?:guidelines|policy))");
    private static final Pattern BARE_DIGIT = Pattern.compile("^\\W*([12])\\W*$");
    private static final int WINDOW = 40;

    private ReplyParser() {
    }

    /**
     * Reads a vote from a teacher's reply.
     *
     * @param reply the raw reply
     * @return the label or an abstention, with a note saying why
     */
    public static ParsedReply parse(String reply) {
        if (reply == null || reply.isBlank()) {
            return new ParsedReply(null, "empty reply");
        }
        String text = THINK_BLOCK.matcher(reply).replaceAll(" ");
        if (text.toLowerCase(Locale.ROOT).contains("<think>")) {
            return new ParsedReply(null, "reply is an unterminated <think> block (reasoning cut off: raise max tokens)");
        }
        text = normalise(text);
        Matcher bare = BARE_DIGIT.matcher(text);
        if (bare.matches()) {
            return new ParsedReply(label(bare.group(1)), "bare digit reply");
        }

        List<int[]> mentions = new ArrayList<>(); // {start, end, labelOrdinal}
        Matcher m = MENTION.matcher(text);
        while (m.find()) {
            String numeral = m.group(1) != null ? m.group(1) : m.group(2);
            mentions.add(new int[] {m.start(), m.end(), label(numeral).ordinal()});
        }
        // "System1: ...\nSystem2: ..." lines restate the criteria; one such line alone is a verdict
        boolean[] headerLabels = new boolean[2];
        for (int[] cur : mentions) {
            if (isHeader(text, cur)) {
                headerLabels[cur[2]] = true;
            }
        }
        boolean definitionList = headerLabels[0] && headerLabels[1];
        SystemLabel firstDecisive = null;
        int nonDecisive = 0;
        for (int i = 0; i < mentions.size(); i++) {
            int[] cur = mentions.get(i);
            int prevEnd = i == 0 ? 0 : mentions.get(i - 1)[1];
            int nextStart = i + 1 < mentions.size() ? mentions.get(i + 1)[0] : text.length();
            String before = text.substring(windowStart(text, cur[0], prevEnd, ".!?;:,\u2013\u2014\n"), cur[0]);
            String sentenceBefore = text.substring(windowStart(text, cur[0], prevEnd, ".!?\n"), cur[0]);
            String after = text.substring(cur[1], nextStart);
            String nearBefore = text.substring(Math.max(prevEnd, cur[0] - 15), cur[0]);
            boolean alternative = ALTERNATIVE_AFTER.matcher(text.substring(cur[1])).find()
                    || (i > 0 && cur[0] - prevEnd <= 15 && ALTERNATIVE_BEFORE.matcher(nearBefore).find());
            boolean decisive = !alternative
                    && !(definitionList && isHeader(text, cur))
                    && !NEGATION.matcher(before).find()
                    && !CONDITIONAL.matcher(before).find()
                    && !GENERIC_AFTER.matcher(after).find()
                    && !endsSentenceWithQuestion(after);
            if (!decisive) {
                nonDecisive++;
                continue;
            }
            SystemLabel label = SystemLabel.values()[cur[2]];
            if (VERDICT.matcher(sentenceBefore).find()) {
                return new ParsedReply(label, "verdict phrase");
            }
            if (firstDecisive == null) {
                firstDecisive = label;
            }
        }
        if (firstDecisive != null) {
            return new ParsedReply(firstDecisive, "first decisive mention");
        }
        if (REFUSAL.matcher(text).find()) {
            return new ParsedReply(null, "refusal");
        }
        if (nonDecisive > 0) {
            return new ParsedReply(null, "no decisive mention (" + nonDecisive
                    + " negated, alternative, generic or hypothetical mentions)");
        }
        return new ParsedReply(null, "no System1/System2 mention");
    }

    /** Markdown emphasis, backticks and quotes carry no meaning here; curly apostrophes become straight. */
    private static String normalise(String text) {
        String t = text.replace('\u2019', '\'').replace('\u2018', '\'');
        t = t.replaceAll("[*`\"\u201c\u201d\u00ab\u00bb#]", " ");
        t = t.replaceAll("(?<![A-Za-z])'|'(?![A-Za-z])", " ");
        return t;
    }

    private static final Pattern LINE_PREFIX = Pattern.compile("^\\s*(?:[-*\u2022]|\\d+[.)])?\\s*$");
    private static final Pattern HEADER_SUFFIX = Pattern.compile("^\\s*[:\\-\u2013\u2014]\\s*\\S");

    /** A mention that opens its line and is followed by a colon or dash and more text: "System1: recall...". */
    private static boolean isHeader(String text, int[] mention) {
        int lineStart = text.lastIndexOf('\n', mention[0] - 1) + 1;
        int lineEnd = text.indexOf('\n', mention[1]);
        String rest = text.substring(mention[1], lineEnd < 0 ? text.length() : lineEnd);
        return LINE_PREFIX.matcher(text.substring(lineStart, mention[0])).matches() && HEADER_SUFFIX.matcher(rest).find();
    }

    private static int windowStart(String text, int mentionStart, int prevEnd, String boundaries) {
        int start = Math.max(prevEnd, mentionStart - WINDOW);
        for (int j = mentionStart - 1; j >= start; j--) {
            if (boundaries.indexOf(text.charAt(j)) >= 0) {
                return j + 1;
            }
        }
        return start;
    }

    private static boolean endsSentenceWithQuestion(String after) {
        for (int j = 0; j < after.length(); j++) {
            char c = after.charAt(j);
            if (c == '?') {
                return true;
            }
            if (c == '.' || c == '!' || c == '\n') {
                return false;
            }
        }
        return false;
    }

    private static SystemLabel label(String numeral) {
        return switch (numeral.toLowerCase(Locale.ROOT)) {
            case "1", "one", "i" -> SystemLabel.SYSTEM_1;
            default -> SystemLabel.SYSTEM_2;
        };
    }
}
