package ai.lorapar.train;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a training stage stands, as a checkpoint records it ({@value #FILE}): the stage, the step, the
 * position in the data, counters, whether the stage is complete, and the fingerprints of everything that
 * determines the run (model, trained parameters, training config, mask, data), which a resume must match.
 * Stage-specific values go into {@link #extra()}.
 *
 * @param stage the stage's name ("sft", "grpo")
 * @param step optimizer steps done
 * @param totalSteps optimizer steps of the whole stage
 * @param epoch the epoch the next step starts in
 * @param microBatchInEpoch micro-batches of that epoch already done
 * @param microBatchesDone micro-batches done in the whole stage (the dropout seeds follow it)
 * @param examplesSeen examples processed (counting repeats over epochs)
 * @param tokens real tokens processed
 * @param answerTokens answer tokens processed
 * @param completed whether the stage ran to its last step
 * @param lastLoss the loss of the last step (NaN before any)
 * @param fingerprints what the run is, by key: "model", "target", "training", "masks", "data"; compared exactly
 * @param modelDigest the weights' digest at the stage's start, compared within its tolerance
 * @param extra stage-specific values (never null)
 */
public record TrainerState(String stage, long step, long totalSteps, int epoch, long microBatchInEpoch,
        long microBatchesDone, long examplesSeen, long tokens, long answerTokens, boolean completed, double lastLoss,
        Map<String, String> fingerprints, ModelDigest modelDigest, JsonObject extra) {
    /** The file name inside a checkpoint folder. */
    public static final String FILE = "trainer_state.json";
    static final String FORMAT = "lorapar-trainer-state";
    static final int VERSION = 1;

    public TrainerState {
        fingerprints = Collections.unmodifiableMap(new LinkedHashMap<>(fingerprints));
        extra = extra == null ? new JsonObject() : extra.deepCopy();
    }

    /** Writes {@value #FILE} into {@code folder} (part of a checkpoint written as a whole). */
    public void write(Path folder) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("format", FORMAT);
        o.addProperty("version", VERSION);
        o.addProperty("stage", stage);
        o.addProperty("step", step);
        o.addProperty("total_steps", totalSteps);
        o.addProperty("epoch", epoch);
        o.addProperty("micro_batch_in_epoch", microBatchInEpoch);
        o.addProperty("micro_batches_done", microBatchesDone);
        o.addProperty("examples_seen", examplesSeen);
        o.addProperty("tokens", tokens);
        o.addProperty("answer_tokens", answerTokens);
        o.addProperty("completed", completed);
        if (Double.isFinite(lastLoss)) {
            o.addProperty("last_loss", lastLoss);
        }
        JsonObject fp = new JsonObject();
        fingerprints.forEach(fp::addProperty);
        o.add("fingerprints", fp);
        JsonObject d = new JsonObject();
        d.addProperty("sum_abs", modelDigest.sumAbs());
        d.addProperty("sum_squares", modelDigest.sumSquares());
        d.addProperty("elements", modelDigest.elements());
        o.add("model_digest", d);
        o.add("extra", extra);
        Files.writeString(folder.resolve(FILE), new GsonBuilder().setPrettyPrinting().create().toJson(o) + "\n",
                StandardCharsets.UTF_8);
    }

    /**
     * Reads {@value #FILE} from {@code folder}.
     *
     * @throws IOException naming the file and the key that is missing or malformed
     */
    public static TrainerState read(Path folder) throws IOException {
        Path file = folder.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new IOException(folder + ": no " + FILE + " (not a training checkpoint)");
        }
        JsonObject o;
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            JsonElement e = JsonParser.parseReader(r);
            if (!e.isJsonObject()) {
                throw new IOException(file + ": not a JSON object");
            }
            o = e.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new IOException(file + ": invalid JSON: " + e.getMessage(), e);
        }
        try {
            if (!FORMAT.equals(o.get("format").getAsString())) {
                throw new IOException(file + ": format is " + o.get("format") + ", expected " + FORMAT);
            }
            if (o.get("version").getAsInt() != VERSION) {
                throw new IOException(file + ": version " + o.get("version") + " is not supported (expected " + VERSION
                        + ")");
            }
            Map<String, String> fp = new LinkedHashMap<>();
            for (Map.Entry<String, JsonElement> e : o.getAsJsonObject("fingerprints").entrySet()) {
                fp.put(e.getKey(), e.getValue().getAsString());
            }
            JsonObject d = o.getAsJsonObject("model_digest");
            return new TrainerState(o.get("stage").getAsString(), o.get("step").getAsLong(),
                    o.get("total_steps").getAsLong(), o.get("epoch").getAsInt(), o.get("micro_batch_in_epoch").getAsLong(),
                    o.get("micro_batches_done").getAsLong(), o.get("examples_seen").getAsLong(),
                    o.get("tokens").getAsLong(), o.get("answer_tokens").getAsLong(), o.get("completed").getAsBoolean(),
                    o.has("last_loss") ? o.get("last_loss").getAsDouble() : Double.NaN, fp,
                    new ModelDigest(d.get("sum_abs").getAsDouble(), d.get("sum_squares").getAsDouble(),
                            d.get("elements").getAsLong()),
                    o.has("extra") && o.get("extra").isJsonObject() ? o.getAsJsonObject("extra") : new JsonObject());
        } catch (NullPointerException | ClassCastException | IllegalStateException | UnsupportedOperationException
                | NumberFormatException e) {
            throw new IOException(file + ": a key is missing or malformed (" + e + ")", e);
        }
    }
}
