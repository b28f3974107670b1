package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.lora.LoraTensorName;
import ai.lorapar.model.DecoderModel;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Fingerprints of what determines a training run, recorded in checkpoints ({@link TrainerState#fingerprints()})
 * and compared on resume, so that a run never continues from another run's checkpoint.
 */
public final class Fingerprints {
    /** Keys of {@link TrainerState#fingerprints()}. */
    public static final String MODEL = "model";
    public static final String TARGET = "target";
    public static final String TRAINING = "training";
    public static final String MASKS = "masks";
    public static final String DATA = "data";

    private Fingerprints() {}

    /** The model's architecture and compute dtype (its weights are in {@link ModelDigest}). */
    public static String model(DecoderModel model) {
        return model.config() + " " + model.dtype();
    }

    /** A stage mask and how many elements it lets train (read to the host once). */
    public record MaskSummary(String fingerprint, long activeElements) {}

    /**
     * SHA-256 of the masks' names, shapes and values, and their count of active elements; for null masks
     * (all trainable) "all trainable" and the parameters' element count.
     */
    public static MaskSummary masks(Map<String, NDArray> masks, Map<String, NDArray> params) {
        if (masks == null) {
            long n = 0;
            for (NDArray p : params.values()) {
                n += p.size();
            }
            return new MaskSummary("all trainable", n);
        }
        MessageDigest sha = sha256();
        long active = 0;
        Map<String, NDArray> sorted = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        sorted.putAll(masks);
        for (Map.Entry<String, NDArray> e : sorted.entrySet()) {
            sha.update((e.getKey() + e.getValue().getShape() + "\n").getBytes(StandardCharsets.UTF_8));
            try (NDArray b = e.getValue().toType(DataType.BOOLEAN, true)) {
                byte[] bytes = b.toByteArray();
                sha.update(bytes);
                for (byte x : bytes) {
                    if (x != 0) {
                        active++;
                    }
                }
            }
        }
        return new MaskSummary("sha256:" + HexFormat.of().formatHex(sha.digest()), active);
    }

    /** SHA-256 of the encoded examples in order (ids and prompt lengths): the data, template and truncation. */
    public static String examples(List<EncodedExample> examples) {
        MessageDigest sha = sha256();
        ByteBuffer buf = ByteBuffer.allocate(8);
        for (EncodedExample e : examples) {
            buf.clear();
            sha.update(buf.putInt(0, e.length()).putInt(4, e.promptLength()).array());
            ByteBuffer ids = ByteBuffer.allocate(8 * e.length());
            for (long id : e.ids()) {
                ids.putLong(id);
            }
            sha.update(ids.array());
        }
        return examples.size() + " examples, sha256:" + HexFormat.of().formatHex(sha.digest());
    }

    /**
     * The differences between a checkpoint's state and this run, one readable line each (empty when it
     * may resume): the stage, each fingerprint, and the model digest.
     */
    public static List<String> differences(TrainerState checkpoint, String stage, Map<String, String> current,
            ModelDigest digest) {
        List<String> out = new ArrayList<>();
        if (!checkpoint.stage().equals(stage)) {
            out.add("it is a checkpoint of stage '" + checkpoint.stage() + "', not '" + stage + "'");
        }
        for (Map.Entry<String, String> e : current.entrySet()) {
            String theirs = checkpoint.fingerprints().get(e.getKey());
            if (!Objects.equals(theirs, e.getValue())) {
                out.add(label(e.getKey()) + " differs: " + describeDifference(theirs, e.getValue()));
            }
        }
        if (!checkpoint.modelDigest().matches(digest)) {
            out.add("the model's weights differ (checkpoint: " + checkpoint.modelDigest() + "; this run: " + digest + ")");
        }
        return out;
    }

    /**
     * "lr is 2.0E-4 in the checkpoint, 0.001 in this run" when both are {@code name(key=value, ...)} (or
     * {@code name[...]}) with the same keys; else both strings in full.
     */
    static String describeDifference(String checkpoint, String current) {
        Map<String, String> a = fields(checkpoint);
        Map<String, String> b = fields(current);
        if (a != null && b != null && a.keySet().equals(b.keySet())) {
            List<String> parts = new ArrayList<>();
            for (String k : a.keySet()) {
                if (!a.get(k).equals(b.get(k))) {
                    parts.add(k + " is " + a.get(k) + " in the checkpoint, " + b.get(k) + " in this run");
                }
            }
            if (!parts.isEmpty()) {
                return String.join(", ", parts);
            }
        }
        return "checkpoint: " + checkpoint + "; this run: " + current;
    }

    /** The top-level key=value fields inside the first bracket pair of {@code s}, or null. */
    private static Map<String, String> fields(String s) {
        if (s == null) {
            return null;
        }
        int open = -1;
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) == '(' || s.charAt(i) == '[') {
                open = i;
                break;
            }
        }
        if (open < 0) {
            return null;
        }
        Map<String, String> out = new java.util.LinkedHashMap<>();
        int depth = 0;
        int start = open + 1;
        for (int i = open + 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '(' || c == '[') {
                depth++;
            } else if ((c == ')' || c == ']') && depth > 0) {
                depth--;
            } else if (c == ',' && depth == 0 || (c == ')' || c == ']') && depth == 0) {
                String part = s.substring(start, i).trim();
                int eq = part.indexOf('=');
                if (eq <= 0) {
                    return null;
                }
                out.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim());
                start = i + 1;
                if (c != ',') {
                    return out;
                }
            }
        }
        return null;
    }

    private static String label(String key) {
        return switch (key) {
            case MODEL -> "the model";
            case TARGET -> "the trained parameters (LoRA config)";
            case TRAINING -> "the training config";
            case MASKS -> "the stage mask";
            case DATA -> "the training data";
            default -> "'" + key + "'";
        };
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
