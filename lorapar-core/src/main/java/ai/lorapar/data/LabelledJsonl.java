package ai.lorapar.data;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The labelled JSONL format: each line is the example's original JSON object (so GSM8K, Alpaca or Dolly
 * readers still read it) with three fields added:
 * <pre>
 * "lorapar_label":    "System1" | "System2"
 * "lorapar_decision": "MAJORITY" | "TIE_BROKEN"
 * "lorapar_votes":    [{"teacher": id, "vote": "System2" | null, "note": why, "reply": raw reply}, ...]
 * </pre>
 * Examples built in code (no source line) are written as {@code {"id", "question", "answer"}}.
 */
public final class LabelledJsonl {

    /** The field holding the label. */
    public static final String LABEL_FIELD = "lorapar_label";
    /** The field holding how the label was reached. */
    public static final String DECISION_FIELD = "lorapar_decision";
    /** The field holding every teacher's vote. */
    public static final String VOTES_FIELD = "lorapar_votes";

    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    private LabelledJsonl() {
    }

    /** Writes the labelled examples of {@code examples} (dropped ones are skipped) atomically. */
    public static void write(Path file, List<LabelledExample> examples) throws IOException {
        AtomicFiles.writeUtf8(file, writer -> {
            for (LabelledExample e : examples) {
                if (e.label().isEmpty()) {
                    continue;
                }
                writer.write(GSON.toJson(toJson(e)));
                writer.write('\n');
            }
        });
    }

    static JsonObject toJson(LabelledExample e) {
        JsonObject obj;
        if (e.example().sourceJson() != null) {
            obj = JsonParser.parseString(e.example().sourceJson()).getAsJsonObject();
        } else {
            obj = new JsonObject();
            obj.addProperty("id", e.example().id());
            obj.addProperty("question", e.example().question());
            obj.addProperty("answer", e.example().answer());
        }
        obj.addProperty(LABEL_FIELD, e.label().map(SystemLabel::text).orElse(null));
        obj.addProperty(DECISION_FIELD, e.result().decision().name());
        JsonArray votes = new JsonArray();
        for (Vote v : e.votes()) {
            JsonObject vote = new JsonObject();
            vote.addProperty("teacher", v.teacherId());
            vote.addProperty("vote", v.label() == null ? null : v.label().text());
            vote.addProperty("note", v.note());
            vote.addProperty("reply", v.rawReply());
            votes.add(vote);
        }
        obj.add(VOTES_FIELD, votes);
        return obj;
    }

    /** Reads a labelled file back, grouped by label; the examples keep their lines and original fields. */
    public static Map<SystemLabel, List<Example>> readByLabel(Path file) throws IOException {
        Map<SystemLabel, List<Example>> byLabel = new EnumMap<>(SystemLabel.class);
        for (SystemLabel l : SystemLabel.values()) {
            byLabel.put(l, new ArrayList<>());
        }
        Utf8Lines.read(file, (lineNo, line) -> {
            if (line.isBlank()) {
                return true;
            }
            Example example = JsonlExamples.parse(file, lineNo, line);
            JsonElement label = JsonParser.parseString(line).getAsJsonObject().get(LABEL_FIELD);
            if (label == null || !label.isJsonPrimitive()) {
                throw new MalformedJsonlException(file, lineNo, "no \"" + LABEL_FIELD
                        + "\" field; is this a file written by LabelledDataset.writeJsonl?");
            }
            try {
                byLabel.get(SystemLabel.fromText(label.getAsString())).add(example);
            } catch (IllegalArgumentException e) {
                throw new MalformedJsonlException(file, lineNo, e.getMessage(), e);
            }
            return true;
        });
        return byLabel;
    }
}
