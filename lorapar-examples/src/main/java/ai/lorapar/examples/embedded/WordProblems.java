package ai.lorapar.examples.embedded;

import ai.lorapar.examples.embedded.WordProblem.Kind;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;

/**
 * A seeded generator of arithmetic word problems in GSM8K's format, over a small closed vocabulary (24
 * names, 14 objects, 5 containers and a few dozen other words), with integers only.
 *
 * <ul>
 *   <li><b>One-step items</b>: a single operation ("Tom has 3 boxes with 4 apples in each box. How many
 *       apples does Tom have?" → {@code Tom has 3 * 4 = <<3*4=12>>12 apples.\n#### 12}) or a fact read off
 *       the question ("Ann is 7 years old. Tom is 9 years old. How old is Tom?").</li>
 *   <li><b>Multi-step items</b>: a chain of {@link Builder#multiStepOperations} operations (buying, giving,
 *       halving, "twice as many as", boxes of things, sharing among friends, totals), one answer line per
 *       operation with GSM8K's calculator annotation {@code <<a*b=c>>}.</li>
 * </ul>
 *
 * Every value along the way is an integer from 2 to {@link Builder#maxValue} (so answers are non-negative
 * and small), and the same seed gives the same items on every JVM ({@link java.util.Random} is specified).
 * Defaults: seed 42, multi-step items of 3 or 4 operations, values up to 999. The default leaves out
 * two-operation chains because, like GSM8K's two-step problems, the heuristic teachers' vote calls them
 * System 1 (two answer lines, two operations); {@code multiStepOperations(2, 4)} gives the full range.
 */
public final class WordProblems {

    private record Person(String name, boolean female) {
        String pronoun() {
            return female ? "she" : "he";
        }

        String possessive() {
            return female ? "her" : "his";
        }
    }

    private record Thing(String singular, String plural, boolean food) {
    }

    private record Container(String singular, String plural) {
    }

    private static final List<Person> PEOPLE = List.of(
            new Person("Tom", false), new Person("Ben", false), new Person("Sam", false), new Person("Jack", false),
            new Person("Max", false), new Person("Leo", false), new Person("Noah", false), new Person("Liam", false),
            new Person("Omar", false), new Person("Paul", false), new Person("Dan", false), new Person("Finn", false),
            new Person("Ann", true), new Person("Mia", true), new Person("Lily", true), new Person("Emma", true),
            new Person("Zoe", true), new Person("Ella", true), new Person("Ava", true), new Person("Nina", true),
            new Person("Rosa", true), new Person("Kate", true), new Person("Eve", true), new Person("Iris", true));

    private static final List<Thing> THINGS = List.of(
            new Thing("apple", "apples", true), new Thing("cookie", "cookies", true), new Thing("egg", "eggs", true),
            new Thing("orange", "oranges", true), new Thing("cupcake", "cupcakes", true),
            new Thing("book", "books", false), new Thing("pencil", "pencils", false), new Thing("marble", "marbles", false),
            new Thing("card", "cards", false), new Thing("sticker", "stickers", false), new Thing("coin", "coins", false),
            new Thing("flower", "flowers", false), new Thing("shell", "shells", false), new Thing("stamp", "stamps", false));

    private static final List<Container> CONTAINERS = List.of(
            new Container("box", "boxes"), new Container("bag", "bags"), new Container("jar", "jars"),
            new Container("basket", "baskets"), new Container("pack", "packs"));

    private static final List<String> GAIN_VERBS = List.of("buys", "finds", "gets");
    private static final List<String> LOSS_VERBS = List.of("loses", "sells");

    private final long seed;
    private final int minOperations;
    private final int maxOperations;
    private final int maxValue;

    private WordProblems(Builder b) {
        this.seed = b.seed;
        this.minOperations = b.minOperations;
        this.maxOperations = b.maxOperations;
        this.maxValue = b.maxValue;
    }

    /** A builder with the defaults: seed 42, multi-step items of 3–4 operations, values up to 999. */
    public static Builder builder() {
        return new Builder();
    }

    public long seed() {
        return seed;
    }

    public int minOperations() {
        return minOperations;
    }

    public int maxOperations() {
        return maxOperations;
    }

    public int maxValue() {
        return maxValue;
    }

    /** Train and test items with no question in both. */
    public record Split(List<WordProblem> train, List<WordProblem> test) {
    }

    /**
     * {@code testSize} test items, then {@code trainSize} train items whose questions are not among the
     * test questions; each split is half one-step and half multi-step (one more multi-step item when odd),
     * the kinds interleaved. The test items depend only on the seed and {@code testSize}, so a larger
     * training set keeps the same test set.
     */
    public Split split(int trainSize, int testSize) {
        if (trainSize < 0 || testSize < 0) {
            throw new IllegalArgumentException("sizes must be >= 0, were train " + trainSize + ", test " + testSize);
        }
        Set<String> seen = new HashSet<>();
        List<WordProblem> test = distinct(new Random(seed ^ 0x7E57L), testSize, seen);
        List<WordProblem> train = distinct(new Random(seed), trainSize, seen);
        return new Split(train, test);
    }

    /** {@code count} items with distinct questions, half of each kind, interleaved (seeded by this generator). */
    public List<WordProblem> generate(int count) {
        return distinct(new Random(seed), count, new HashSet<>());
    }

    private List<WordProblem> distinct(Random random, int count, Set<String> seen) {
        int oneStep = count / 2;
        List<WordProblem> ones = distinctOfKind(random, Kind.ONE_STEP, oneStep, seen);
        List<WordProblem> multis = distinctOfKind(random, Kind.MULTI_STEP, count - oneStep, seen);
        List<WordProblem> out = new ArrayList<>(count);
        for (int i = 0; i < Math.max(ones.size(), multis.size()); i++) {
            if (i < multis.size()) {
                out.add(multis.get(i));
            }
            if (i < ones.size()) {
                out.add(ones.get(i));
            }
        }
        return out;
    }

    private List<WordProblem> distinctOfKind(Random random, Kind kind, int count, Set<String> seen) {
        List<WordProblem> out = new ArrayList<>(count);
        int attempts = 0;
        while (out.size() < count) {
            if (++attempts > 50L * count + 1000) {
                throw new IllegalStateException("could not find " + count + " distinct " + kind.text()
                        + " questions (found " + out.size() + "); ask for fewer");
            }
            WordProblem p = kind == Kind.ONE_STEP ? oneStep(random) : multiStep(random);
            if (seen.add(p.question())) {
                out.add(p);
            }
        }
        return out;
    }

    /** One random one-step item (not checked for duplicates). */
    public WordProblem oneStep(Random r) {
        Person a = pick(r, PEOPLE);
        Person b = other(r, a);
        Thing t = pick(r, THINGS);
        Container c = pick(r, CONTAINERS);
        String A = a.name();
        String B = b.name();
        String objs = t.plural();
        Text q = new Text();
        Text s = new Text();
        int result;
        int ops = 1;
        switch (r.nextInt(9)) {
            case 0 -> { // add
                int x = between(r, 2, 20);
                int n = between(r, 2, 12);
                result = x + n;
                q.sentence(A + " has " + x + " " + objs + ".")
                        .sentence(cap(a.pronoun()) + " " + pick(r, GAIN_VERBS) + " " + n + " more " + objs + ".")
                        .sentence("How many " + objs + " does " + A + " have now?");
                s.line(A + " has " + calc(x, '+', n) + " " + objs + " now.");
            }
            case 1 -> { // subtract: give away
                int x = between(r, 6, 30);
                int n = between(r, 2, x - 2);
                result = x - n;
                q.sentence(A + " has " + x + " " + objs + ".")
                        .sentence(cap(a.pronoun()) + " gives " + n + " " + objs + " to " + B + ".")
                        .sentence("How many " + objs + " does " + A + " have left?");
                s.line(A + " has " + calc(x, '-', n) + " " + objs + " left.");
            }
            case 2 -> { // subtract: lose, sell or eat
                int x = between(r, 6, 30);
                int n = between(r, 2, x - 2);
                result = x - n;
                String verb = t.food() && r.nextBoolean() ? "eats" : pick(r, LOSS_VERBS);
                q.sentence(A + " has " + x + " " + objs + ".")
                        .sentence(cap(a.pronoun()) + " " + verb + " " + n + " of them.")
                        .sentence("How many " + objs + " does " + A + " have left?");
                s.line(A + " has " + calc(x, '-', n) + " " + objs + " left.");
            }
            case 3 -> { // multiply: containers
                int k = between(r, 2, 9);
                int m = between(r, 2, 12);
                result = k * m;
                q.sentence(A + " has " + k + " " + c.plural() + " with " + m + " " + objs + " in each " + c.singular() + ".")
                        .sentence("How many " + objs + " does " + A + " have?");
                s.line(A + " has " + calc(k, '*', m) + " " + objs + ".");
            }
            case 4 -> { // divide: fill containers
                int k = between(r, 2, 9);
                int m = between(r, 2, 12);
                int x = k * m;
                result = m;
                q.sentence(A + " has " + x + " " + objs + ".")
                        .sentence(cap(a.pronoun()) + " puts them into " + k + " " + c.plural()
                                + " with the same number in each " + c.singular() + ".")
                        .sentence("How many " + objs + " are in each " + c.singular() + "?");
                s.line("Each " + c.singular() + " has " + calc(x, '/', k) + " " + objs + ".");
            }
            case 5 -> { // comparison: more / fewer than
                int x = between(r, 6, 30);
                int n = between(r, 2, x - 2);
                boolean more = r.nextBoolean();
                result = more ? x + n : x - n;
                q.sentence(B + " has " + x + " " + objs + ".")
                        .sentence(A + " has " + n + (more ? " more " : " fewer ") + objs + " than " + B + ".")
                        .sentence("How many " + objs + " does " + A + " have?");
                s.line(A + " has " + calc(x, more ? '+' : '-', n) + " " + objs + ".");
            }
            case 6 -> { // comparison: times as many
                int x = between(r, 2, 25);
                int k = between(r, 2, 5);
                result = x * k;
                q.sentence(B + " has " + x + " " + objs + ".")
                        .sentence(A + " has " + times(k) + " as many " + objs + " as " + B + ".")
                        .sentence("How many " + objs + " does " + A + " have?");
                s.line(A + " has " + calc(x, '*', k) + " " + objs + ".");
            }
            case 7 -> { // read off the question: ages
                int x = between(r, 3, 15);
                int y = between(r, 3, 15);
                boolean first = r.nextBoolean();
                result = first ? x : y;
                q.sentence(A + " is " + x + " years old.")
                        .sentence(B + " is " + y + " years old.")
                        .sentence("How old is " + (first ? A : B) + "?");
                s.line((first ? A : B) + " is " + result + " years old.");
                ops = 0;
            }
            default -> { // read off the question: two kinds of things
                Thing u = otherThing(r, t);
                int x = between(r, 2, 20);
                int y = between(r, 2, 20);
                boolean first = r.nextBoolean();
                result = first ? x : y;
                q.sentence(A + " has " + x + " " + objs + " and " + y + " " + u.plural() + ".")
                        .sentence("How many " + (first ? objs : u.plural()) + " does " + A + " have?");
                s.line(A + " has " + result + " " + (first ? objs : u.plural()) + ".");
                ops = 0;
            }
        }
        return new WordProblem(q.text(), s.answer(result), Kind.ONE_STEP, ops, result);
    }

    /** One random multi-step item of {@code minOperations..maxOperations} operations (not checked for duplicates). */
    public WordProblem multiStep(Random r) {
        for (int attempt = 0; ; attempt++) {
            WordProblem p = tryChain(r, between(r, minOperations, maxOperations));
            if (p != null) {
                return p;
            }
            if (attempt > 10_000) {
                throw new IllegalStateException("no chain found within the value limit " + maxValue);
            }
        }
    }

    /** A chain of exactly {@code target} operations, or null when the random choices led nowhere. */
    private WordProblem tryChain(Random r, int target) {
        List<Person> people = new ArrayList<>(PEOPLE);
        Collections.shuffle(people, r);
        int nextPerson = 0;
        Thing t = pick(r, THINGS);
        Container c = pick(r, CONTAINERS);
        String objs = t.plural();
        Text q = new Text();
        Text s = new Text();
        int ops = 0;

        Person subject = people.get(nextPerson++);
        Person previous = null; // the subject before the last switch, for "together"
        int previousValue = 0;
        boolean acted = false; // whether the subject did something since it became the subject ("now?")
        boolean justNamed = false; // a new subject is named once more before "he"/"she" can refer to it
        int x;
        if (target >= 3 && r.nextInt(3) == 0) {
            int k = between(r, 2, 6);
            int m = between(r, 2, 9);
            x = k * m;
            q.sentence(subject.name() + " has " + k + " " + c.plural() + " with " + m + " " + objs + " in each "
                    + c.singular() + ".");
            s.line(subject.name() + " has " + calc(k, '*', m) + " " + objs + ".");
            ops++;
        } else {
            x = between(r, 2, 20);
            q.sentence(subject.name() + " has " + x + " " + objs + ".");
        }

        while (ops < target) {
            int left = target - ops;
            String he = subject.pronoun();
            String name = subject.name();
            if (left == 1 && r.nextInt(4) == 0) {
                // a closing operation that is also the question
                List<Integer> divisors = new ArrayList<>();
                for (int d = 2; d <= 5; d++) {
                    if (x % d == 0 && x / d >= 2) {
                        divisors.add(d);
                    }
                }
                if (previous != null && r.nextBoolean() && x + previousValue <= maxValue) {
                    int total = previousValue + x;
                    q.sentence("How many " + objs + " do " + previous.name() + " and " + name + " have together?");
                    s.line("Together they have " + calc(previousValue, '+', x) + " " + objs + ".");
                    return new WordProblem(q.text(), s.answer(total), Kind.MULTI_STEP, ops + 1, total);
                }
                if (!divisors.isEmpty()) {
                    int d = pick(r, divisors);
                    q.sentence((justNamed ? name : cap(he)) + " shares the " + objs + " equally among " + d + " friends.")
                            .sentence("How many " + objs + " does each friend get?");
                    s.line("Each friend gets " + calc(x, '/', d) + " " + objs + ".");
                    return new WordProblem(q.text(), s.answer(x / d), Kind.MULTI_STEP, ops + 1, x / d);
                }
            }
            String who = justNamed ? name : cap(he);
            int step = r.nextInt(left >= 2 ? 7 : 6);
            int y;
            boolean switched = false;
            switch (step) {
                case 0 -> { // gain
                    int n = between(r, 2, 12);
                    y = x + n;
                    if (y > maxValue) {
                        return null;
                    }
                    q.sentence(who + " " + pick(r, GAIN_VERBS) + " " + n + " more " + objs + ".");
                    s.line(name + " has " + calc(x, '+', n) + " " + objs + ".");
                    acted = true;
                }
                case 1 -> { // loss
                    if (x < 4) {
                        continue;
                    }
                    int n = between(r, 2, Math.min(12, x - 2));
                    y = x - n;
                    if (r.nextBoolean()) {
                        q.sentence(who + " gives " + n + " " + objs + " to " + people.get(nextPerson++).name() + ".");
                    } else {
                        String verb = t.food() && r.nextBoolean() ? "eats" : pick(r, LOSS_VERBS);
                        q.sentence(who + " " + verb + " " + n + " " + objs + ".");
                    }
                    s.line(name + " has " + calc(x, '-', n) + " " + objs + ".");
                    acted = true;
                }
                case 2 -> { // halve
                    if (x % 2 != 0 || x < 4) {
                        continue;
                    }
                    y = x / 2;
                    q.sentence(who + " gives half of " + subject.possessive() + " " + objs + " to "
                            + people.get(nextPerson++).name() + ".");
                    s.line(name + " has " + calc(x, '/', 2) + " " + objs + " left.");
                    acted = true;
                }
                case 3, 4, 5 -> { // a new subject compared with the current one
                    Person next = people.get(nextPerson++);
                    String sentence;
                    String line;
                    if (step == 3) {
                        int k = between(r, 2, 4);
                        y = x * k;
                        sentence = next.name() + " has " + times(k) + " as many " + objs + " as " + name + ".";
                        line = next.name() + " has " + calc(x, '*', k) + " " + objs + ".";
                    } else if (step == 4) {
                        int n = between(r, 2, 12);
                        y = x + n;
                        sentence = next.name() + " has " + n + " more " + objs + " than " + name + ".";
                        line = next.name() + " has " + calc(x, '+', n) + " " + objs + ".";
                    } else {
                        if (x < 4) {
                            continue;
                        }
                        int n = between(r, 2, Math.min(12, x - 2));
                        y = x - n;
                        sentence = next.name() + " has " + n + " fewer " + objs + " than " + name + ".";
                        line = next.name() + " has " + calc(x, '-', n) + " " + objs + ".";
                    }
                    if (y > maxValue) {
                        return null;
                    }
                    q.sentence(sentence);
                    s.line(line);
                    previous = subject;
                    previousValue = x;
                    subject = next;
                    acted = false;
                    switched = true;
                }
                default -> { // buy containers: two operations
                    int k = between(r, 2, 5);
                    int m = between(r, 2, 9);
                    int bought = k * m;
                    y = x + bought;
                    if (y > maxValue) {
                        return null;
                    }
                    q.sentence(who + " buys " + k + " " + c.plural() + " with " + m + " " + objs + " in each "
                            + c.singular() + ".");
                    s.line("The " + c.plural() + " have " + calc(k, '*', m) + " " + objs + ".");
                    s.line(name + " has " + calc(x, '+', bought) + " " + objs + ".");
                    ops++;
                    acted = true;
                }
            }
            x = y;
            ops++;
            justNamed = switched;
        }
        q.sentence("How many " + objs + " does " + subject.name() + " have" + (acted ? " now?" : "?"));
        return new WordProblem(q.text(), s.answer(x), Kind.MULTI_STEP, ops, x);
    }

    /** Writes {@code problems} as JSONL (one {@link WordProblem#toJson()} per line), replacing {@code file} whole. */
    public static void writeJsonl(List<WordProblem> problems, Path file) throws IOException {
        Gson gson = new GsonBuilder().disableHtmlEscaping().create();
        StringBuilder sb = new StringBuilder();
        for (WordProblem p : problems) {
            sb.append(gson.toJson(p.toJson())).append('\n');
        }
        TextFiles.writeAtomically(file, sb.toString());
    }

    /** Reads a JSONL file of {@link WordProblem#toJson()} records (blank lines skipped). */
    public static List<WordProblem> readJsonl(Path file) throws IOException {
        return parseJsonl(java.nio.file.Files.readString(file), file.toString());
    }

    /** Parses JSONL text of {@link WordProblem#toJson()} records; {@code source} names it in errors. */
    public static List<WordProblem> parseJsonl(String text, String source) {
        List<WordProblem> out = new ArrayList<>();
        String[] lines = text.split("\n");
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) {
                continue;
            }
            try {
                out.add(WordProblem.fromJson(com.google.gson.JsonParser.parseString(lines[i]).getAsJsonObject()));
            } catch (RuntimeException e) {
                throw new IllegalArgumentException(source + " line " + (i + 1) + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    /**
     * Every word, number word and punctuation mark the generator can write (names, objects, containers and
     * the template words), so that a tokenizer can be closed over it.
     */
    public static Set<String> lexicon() {
        Set<String> words = new LinkedHashSet<>();
        PEOPLE.forEach(p -> words.add(p.name()));
        for (String w : List.of("he", "she", "his", "her", "He", "She")) {
            words.add(w);
        }
        THINGS.forEach(t -> {
            words.add(t.singular());
            words.add(t.plural());
        });
        CONTAINERS.forEach(c -> {
            words.add(c.singular());
            words.add(c.plural());
        });
        words.addAll(GAIN_VERBS);
        words.addAll(LOSS_VERBS);
        for (String w : ("has have does gives to eats of them with in each puts into the same number are more fewer than "
                + "as many twice times is years old How Each Together they do and together shares equally among "
                + "friends friend gets get half left now The").split(" ")) {
            words.add(w);
        }
        return words;
    }

    // --- helpers -------------------------------------------------------------------------------------------

    /** "a op b = <<a op b=c>>c", GSM8K's calculator annotation. */
    private static String calc(int a, char op, int b) {
        int c = switch (op) {
            case '+' -> a + b;
            case '-' -> a - b;
            case '*' -> a * b;
            case '/' -> {
                if (a % b != 0) {
                    throw new IllegalStateException(a + " / " + b + " is not a whole number");
                }
                yield a / b;
            }
            default -> throw new IllegalArgumentException("operator " + op);
        };
        return String.format(Locale.ROOT, "%d %c %d = <<%d%c%d=%d>>%d", a, op, b, a, op, b, c, c);
    }

    private static String times(int k) {
        return k == 2 ? "twice" : k + " times";
    }

    private static String cap(String s) {
        return Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    private static int between(Random r, int lo, int hi) {
        return lo + r.nextInt(hi - lo + 1);
    }

    private static <T> T pick(Random r, List<T> list) {
        return list.get(r.nextInt(list.size()));
    }

    private static Person other(Random r, Person not) {
        Person p;
        do {
            p = pick(r, PEOPLE);
        } while (p.equals(not));
        return p;
    }

    private static Thing otherThing(Random r, Thing not) {
        Thing t;
        do {
            t = pick(r, THINGS);
        } while (t.equals(not));
        return t;
    }

    /** Sentences of a question joined by spaces, or lines of a solution. */
    private static final class Text {
        private final StringBuilder sb = new StringBuilder();

        Text sentence(String s) {
            if (sb.length() > 0) {
                sb.append(' ');
            }
            sb.append(s);
            return this;
        }

        Text line(String s) {
            sb.append(s).append('\n');
            return this;
        }

        String text() {
            return sb.toString();
        }

        String answer(int result) {
            return sb + "#### " + result;
        }
    }

    /** Builder of {@link WordProblems}. */
    public static final class Builder {
        private long seed = 42;
        private int minOperations = 3;
        private int maxOperations = 4;
        private int maxValue = 999;

        private Builder() {
        }

        /** The seed of every random choice (default 42). */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Operations of a multi-step item, uniformly from {@code min} to {@code max}, within 2..4 (default 3..4). */
        public Builder multiStepOperations(int min, int max) {
            if (min < 2 || max > 4 || min > max) {
                throw new IllegalArgumentException("multi-step operations must satisfy 2 <= min <= max <= 4, were "
                        + min + ".." + max);
            }
            this.minOperations = min;
            this.maxOperations = max;
            return this;
        }

        /** The largest value a multi-step chain may reach (default 999; at least 100). */
        public Builder maxValue(int maxValue) {
            if (maxValue < 100) {
                throw new IllegalArgumentException("maxValue must be >= 100, was " + maxValue);
            }
            this.maxValue = maxValue;
            return this;
        }

        public WordProblems build() {
            return new WordProblems(this);
        }
    }
}
