package ai.lorapar.lora;

import java.util.Comparator;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a LoRA tensor's name says about it: its decoder layer, the projection it adapts and whether it
 * is the A (down, {@code r × in}) or the B (up, {@code out × r}) matrix.
 *
 * <p>Names follow Hugging Face module paths with a LoRA suffix, as this library keys adapters
 * ({@code model.layers.3.mlp.up_proj.lora_A}) or as PEFT saves them
 * ({@code base_model.model.model.layers.3.mlp.up_proj.lora_A.weight}); parts that cannot be read are
 * reported as unknown ({@code layer = -1}, module {@code "other"}, matrix {@code "?"}) rather than
 * rejected, so statistics still cover every element.
 *
 * @param name the full tensor name
 * @param layer the decoder layer index, or -1
 * @param module the projection: q, k, v, o, gate, up, down, or "other"
 * @param matrix "A", "B", or "?"
 */
public record LoraTensorName(String name, int layer, String module, String matrix) {
    private static final Pattern LAYER = Pattern.compile("(?:^|\\.)(?:layers|h|blocks)\\.(\\d+)\\.");
    private static final Pattern MODULE = Pattern.compile("(?:^|\\.)(q|k|v|o|gate|up|down)_proj(?:\\.|$)");
    private static final Pattern MATRIX = Pattern.compile("(?:^|\\.)lora_([AB])(?:\\.|$)");

    /**
     * Tensor order used wherever a deterministic order is needed (flattening, tie-breaking): names
     * compared piecewise, runs of digits by numeric value, so {@code layers.2} sorts before
     * {@code layers.10}.
     */
    public static final Comparator<String> NATURAL_ORDER = LoraTensorName::compareNatural;

    /** Reads {@code name}. */
    public static LoraTensorName parse(String name) {
        Matcher l = LAYER.matcher(name);
        int layer = l.find() ? Integer.parseInt(l.group(1)) : -1;
        Matcher m = MODULE.matcher(name);
        String module = m.find() ? m.group(1) : "other";
        Matcher ab = MATRIX.matcher(name);
        String matrix = ab.find() ? ab.group(1).toUpperCase(Locale.ROOT) : "?";
        return new LoraTensorName(name, layer, module, matrix);
    }

    static int compareNatural(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            char ca = a.charAt(i);
            char cb = b.charAt(j);
            if (Character.isDigit(ca) && Character.isDigit(cb)) {
                int si = i;
                int sj = j;
                while (i < a.length() && Character.isDigit(a.charAt(i))) {
                    i++;
                }
                while (j < b.length() && Character.isDigit(b.charAt(j))) {
                    j++;
                }
                String da = a.substring(si, i).replaceFirst("^0+(?=.)", "");
                String db = b.substring(sj, j).replaceFirst("^0+(?=.)", "");
                int c = da.length() != db.length() ? Integer.compare(da.length(), db.length()) : da.compareTo(db);
                if (c != 0) {
                    return c;
                }
            } else {
                if (ca != cb) {
                    return Character.compare(ca, cb);
                }
                i++;
                j++;
            }
        }
        int c = Integer.compare(a.length() - i, b.length() - j);
        return c != 0 ? c : a.compareTo(b);
    }
}
