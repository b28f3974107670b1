package ai.lorapar.examples.pipeline;

import ai.lorapar.data.Example;
import ai.lorapar.eval.EvalReport;
import ai.lorapar.eval.Gsm8kEvaluator;
import ai.lorapar.examples.embedded.AnswerFormat;
import ai.lorapar.model.generate.Generator;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Greedy exact-match accuracy of one model state on the test examples, per answer format and per group: the
 * library's {@link Gsm8kEvaluator} (greedy decoding, the number in {@code <answer>}, after {@code ####}, or
 * the last number) run once per format and group, with the share of well-formed answers beside it
 * ({@link AnswerFormat#isWellFormed}).
 *
 * <p>Formats: {@code hash} asks without a system prompt (GSM8K's worked lines and {@code #### N}, what SFT
 * trains); {@code tags} asks with GRPO's system prompt ({@code <reasoning>…</reasoning><answer>…</answer>},
 * what GRPO rewards).
 *
 * @param byFormat format key ({@link AnswerFormat#key()}) → group → tally
 * @param seconds wall time of the evaluation
 */
public record Accuracy(Map<String, Map<String, Tally>> byFormat, double seconds) {

    /** Counts of one group in one format. */
    public record Tally(int total, int correct, int wellFormed) {
        public double accuracy() {
            return total == 0 ? Double.NaN : (double) correct / total;
        }

        public double wellFormedShare() {
            return total == 0 ? Double.NaN : (double) wellFormed / total;
        }

        Tally plus(Tally o) {
            return new Tally(total + o.total, correct + o.correct, wellFormed + o.wellFormed);
        }
    }

    /** The formats evaluated, in report order. */
    public static final List<AnswerFormat> FORMATS = List.of(AnswerFormat.HASH, AnswerFormat.TAGS);

    /** Whether this evaluation asked in {@code format}. */
    public boolean has(String format) {
        return byFormat.containsKey(format);
    }

    /** The tally of a group in a format ({@code all}: every group together). */
    public Tally tally(String format, String group) {
        Map<String, Tally> g = byFormat.get(format);
        if (g == null) {
            throw new IllegalArgumentException("no format '" + format + "' in " + byFormat.keySet());
        }
        if (group.equals("all")) {
            Tally t = new Tally(0, 0, 0);
            for (Tally x : g.values()) {
                t = t.plus(x);
            }
            return t;
        }
        Tally t = g.get(group);
        if (t == null) {
            throw new IllegalArgumentException("no group '" + group + "' in " + g.keySet());
        }
        return t;
    }

    /** Accuracy of a group in a format, in [0, 1]. */
    public double accuracy(String format, String group) {
        return tally(format, group).accuracy();
    }

    /**
     * Evaluates the model behind {@code generator} on {@code context}'s test examples in both formats.
     *
     * @param recordsPrefix when not null, each format's per-example records (reference, extracted answer,
     *     output) are written to {@code recordsPrefix + "-" + format + ".jsonl"}
     */
    public static Accuracy evaluate(Generator generator, ModelHandle handle, PipelineContext context, Path recordsPrefix)
            throws IOException {
        return evaluate(generator, handle, context, recordsPrefix, FORMATS);
    }

    /** As {@link #evaluate(Generator, ModelHandle, PipelineContext, Path)}, in {@code formats} only (may be none). */
    public static Accuracy evaluate(Generator generator, ModelHandle handle, PipelineContext context, Path recordsPrefix,
            List<AnswerFormat> formats) throws IOException {
        long t0 = System.nanoTime();
        Map<String, Map<String, Tally>> byFormat = new LinkedHashMap<>();
        for (AnswerFormat format : formats) {
            Gsm8kEvaluator evaluator = Gsm8kEvaluator.builder().encoder(handle.encoder(format.systemPrompt()))
                    .maxNewTokens(context.settings().evalMaxNew).batchSize(context.settings().evalBatch).build();
            Map<String, Tally> groups = new LinkedHashMap<>();
            List<EvalReport.Record> records = new java.util.ArrayList<>();
            // one group at a time: items of a kind have answers of similar length, so no batch waits long for one row
            for (String group : context.groups()) {
                List<Example> items = context.testGroup(group);
                EvalReport r = evaluator.evaluate(generator, items);
                int formed = 0;
                for (EvalReport.Record rec : r.records()) {
                    formed += format.isWellFormed(rec.prediction()) ? 1 : 0;
                }
                groups.put(group, new Tally(r.total(), r.correct(), formed));
                records.addAll(r.records());
            }
            byFormat.put(format.key(), groups);
            if (recordsPrefix != null) {
                EvalReport.of(records).writeJsonl(recordsPrefix.resolveSibling(recordsPrefix.getFileName() + "-"
                        + format.key() + ".jsonl"));
            }
        }
        return new Accuracy(byFormat, (System.nanoTime() - t0) / 1e9);
    }

    /** Metrics for a {@code TrainingListener}: {@code hash/one-step} = accuracy, {@code .../well_formed} = share. */
    public Map<String, Double> metrics() {
        Map<String, Double> m = new LinkedHashMap<>();
        byFormat.forEach((f, groups) -> groups.forEach((g, t) -> {
            m.put(f + "/" + g, t.accuracy());
            m.put(f + "/" + g + "/well_formed", t.wellFormedShare());
        }));
        return m;
    }

    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        JsonObject formats = new JsonObject();
        byFormat.forEach((f, groups) -> {
            JsonObject g = new JsonObject();
            groups.forEach((name, t) -> {
                JsonObject x = new JsonObject();
                x.addProperty("total", t.total());
                x.addProperty("correct", t.correct());
                x.addProperty("well_formed", t.wellFormed());
                g.add(name, x);
            });
            formats.add(f, g);
        });
        o.add("formats", formats);
        o.addProperty("seconds", seconds);
        return o;
    }

    public static Accuracy fromJson(JsonObject o) {
        Map<String, Map<String, Tally>> byFormat = new LinkedHashMap<>();
        for (Map.Entry<String, com.google.gson.JsonElement> f : o.getAsJsonObject("formats").entrySet()) {
            Map<String, Tally> groups = new LinkedHashMap<>();
            for (Map.Entry<String, com.google.gson.JsonElement> g : f.getValue().getAsJsonObject().entrySet()) {
                JsonObject x = g.getValue().getAsJsonObject();
                groups.put(g.getKey(), new Tally(x.get("total").getAsInt(), x.get("correct").getAsInt(),
                        x.get("well_formed").getAsInt()));
            }
            byFormat.put(f.getKey(), groups);
        }
        return new Accuracy(byFormat, o.get("seconds").getAsDouble());
    }
}
