package ai.lorapar.eval;

import ai.lorapar.data.AtomicFiles;
import ai.lorapar.data.SystemLabel;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * The outcome of an exact-match evaluation ({@link Gsm8kEvaluator}): one {@link Record} per example, the
 * accuracy, and the accuracy per {@link SystemLabel} when the examples carry labels.
 */
public final class EvalReport {
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    /**
     * One evaluated example.
     *
     * @param id the example's id
     * @param reference the normalised reference answer
     * @param prediction the model's output text
     * @param extracted the normalised answer found in the output, or null
     * @param method how it was found
     * @param correct whether it equals the reference
     * @param label the example's system label, or null when unlabelled
     */
    public record Record(String id, String reference, String prediction, String extracted,
            AnswerExtraction.Method method, boolean correct, SystemLabel label) {
        public Record {
            Objects.requireNonNull(id, "id");
            Objects.requireNonNull(reference, "reference");
            Objects.requireNonNull(prediction, "prediction");
            Objects.requireNonNull(method, "method");
        }
    }

    /** Correct out of total, with the share. */
    public record Accuracy(int correct, int total) {
        /** correct / total, or NaN for no examples. */
        public double value() {
            return total == 0 ? Double.NaN : (double) correct / total;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "%d/%d = %.2f%%", correct, total, 100 * value());
        }
    }

    private final List<Record> records;
    private final Accuracy overall;
    private final Map<SystemLabel, Accuracy> byLabel;

    private EvalReport(List<Record> records) {
        this.records = List.copyOf(records);
        int correct = 0;
        int[] c = new int[SystemLabel.values().length];
        int[] n = new int[SystemLabel.values().length];
        for (Record r : this.records) {
            if (r.correct()) {
                correct++;
            }
            if (r.label() != null) {
                n[r.label().ordinal()]++;
                if (r.correct()) {
                    c[r.label().ordinal()]++;
                }
            }
        }
        this.overall = new Accuracy(correct, this.records.size());
        Map<SystemLabel, Accuracy> m = new EnumMap<>(SystemLabel.class);
        for (SystemLabel l : SystemLabel.values()) {
            if (n[l.ordinal()] > 0) {
                m.put(l, new Accuracy(c[l.ordinal()], n[l.ordinal()]));
            }
        }
        this.byLabel = Collections.unmodifiableMap(m);
    }

    /** A report of {@code records}, in their order. */
    public static EvalReport of(List<Record> records) {
        return new EvalReport(records);
    }

    /** The share of correct examples (NaN for an empty report). */
    public double accuracy() {
        return overall.value();
    }

    public int correct() {
        return overall.correct();
    }

    public int total() {
        return overall.total();
    }

    /** Accuracy over all records. */
    public Accuracy overall() {
        return overall;
    }

    /** Accuracy per label, for the labels that occur (empty without labels). */
    public Map<SystemLabel, Accuracy> byLabel() {
        return byLabel;
    }

    /** The records, in evaluation order. */
    public List<Record> records() {
        return records;
    }

    /** How many records each extraction rule produced, for diagnosing format problems. */
    public Map<AnswerExtraction.Method, Integer> methodCounts() {
        Map<AnswerExtraction.Method, Integer> m = new EnumMap<>(AnswerExtraction.Method.class);
        for (Record r : records) {
            m.merge(r.method(), 1, Integer::sum);
        }
        return m;
    }

    /** One line: overall accuracy, then per label when there are labels. */
    public String format() {
        StringBuilder sb = new StringBuilder("exact match ").append(overall);
        for (Map.Entry<SystemLabel, Accuracy> e : byLabel.entrySet()) {
            sb.append(", ").append(e.getKey().text()).append(' ').append(e.getValue());
        }
        return sb.toString();
    }

    /**
     * Writes one JSON object per record ({@code id, label, reference, extracted, method, correct,
     * prediction}), atomically.
     */
    public void writeJsonl(Path file) throws IOException {
        AtomicFiles.writeUtf8(file, w -> {
            for (Record r : records) {
                JsonObject o = new JsonObject();
                o.addProperty("id", r.id());
                o.addProperty("label", r.label() == null ? null : r.label().text());
                o.addProperty("reference", r.reference());
                o.addProperty("extracted", r.extracted());
                o.addProperty("method", r.method().name());
                o.addProperty("correct", r.correct());
                o.addProperty("prediction", r.prediction());
                w.write(GSON.toJson(o));
                w.write('\n');
            }
        });
    }

    @Override
    public String toString() {
        return "EvalReport[" + format() + "]";
    }
}
