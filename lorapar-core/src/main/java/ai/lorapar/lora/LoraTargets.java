package ai.lorapar.lora;

import ai.lorapar.model.DecoderModel;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which linear layers get a LoRA adapter. Presets name the projections of every decoder layer (the
 * paper's QKVGUD is the default); {@link #modules} takes an explicit list. Matching follows PEFT's
 * {@code target_modules}: a module is targeted when its name equals an entry or ends with
 * {@code "." + entry}, so {@code q_proj} targets every layer's query projection and
 * {@code model.layers.0.self_attn.q_proj} only the first one. A PEFT config may also give a single
 * regular expression, matched against the whole module name ({@link #regex}).
 *
 * <p>Only the decoder's projections can be targeted ({@code lm_head} is refused: it may be tied to
 * the embeddings, which residual initialisations and merging would change too).
 */
public final class LoraTargets {
    /** Query, key and value projections. */
    public static final LoraTargets QKV = new LoraTargets("QKV", List.of("q_proj", "k_proj", "v_proj"), null);
    /** Gate, up and down projections of the MLP. */
    public static final LoraTargets GUD = new LoraTargets("GUD", List.of("gate_proj", "up_proj", "down_proj"), null);
    /** Q, K, V, gate, up, down: the paper's default. */
    public static final LoraTargets QKVGUD = new LoraTargets("QKVGUD",
            List.of("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"), null);
    /** Every projection, the attention output included. */
    public static final LoraTargets QKVOGUD = new LoraTargets("QKVOGUD",
            List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), null);

    /** PEFT's shorthand for every linear layer except the output layer. */
    public static final String ALL_LINEAR = "all-linear";

    private final String label;
    private final List<String> entries;
    private final Pattern regex;

    private LoraTargets(String label, List<String> entries, Pattern regex) {
        this.label = label;
        this.entries = entries;
        this.regex = regex;
    }

    /**
     * An explicit list: projection names ({@code "q_proj"}) or full module names
     * ({@code "model.layers.3.mlp.down_proj"}), in any mix.
     */
    public static LoraTargets modules(String... names) {
        return modules(List.of(names));
    }

    /** As {@link #modules(String...)}. */
    public static LoraTargets modules(List<String> names) {
        if (names.isEmpty()) {
            throw new IllegalArgumentException("target modules: the list is empty");
        }
        for (String n : names) {
            if (n == null || n.isBlank() || n.startsWith(".") || n.endsWith(".")) {
                throw new IllegalArgumentException("target modules: '" + n + "' is not a module name");
            }
        }
        List<String> copy = List.copyOf(names);
        for (LoraTargets preset : List.of(QKV, GUD, QKVGUD, QKVOGUD)) {
            if (preset.entries.size() == copy.size() && preset.entries.containsAll(copy)) {
                return preset;
            }
        }
        return new LoraTargets(String.join(",", copy), copy, null);
    }

    /**
     * PEFT's string form of {@code target_modules}: a regular expression the whole module name must match,
     * or PEFT's shorthand {@code "all-linear"} (any case): every linear layer but the output layer, which for
     * these decoders is {@link #QKVOGUD}.
     *
     * @param pattern the regular expression, or {@code all-linear}
     * @return the targets
     * @throws IllegalArgumentException for an invalid regular expression
     */
    public static LoraTargets regex(String pattern) {
        if (ALL_LINEAR.equalsIgnoreCase(pattern)) {
            return QKVOGUD;
        }
        try {
            return new LoraTargets("regex " + pattern, null, Pattern.compile(pattern));
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("target modules: invalid regular expression '" + pattern + "': "
                    + e.getDescription(), e);
        }
    }

    /** Whether {@code module} (a full Hugging Face module name) is targeted. */
    public boolean matches(String module) {
        if (regex != null) {
            return regex.matcher(module).matches();
        }
        for (String e : entries) {
            if (module.equals(e) || module.endsWith("." + e)) {
                return true;
            }
        }
        return false;
    }

    /** The entries as written to PEFT's {@code target_modules} list, or null for a regex. */
    public List<String> entries() {
        return entries;
    }

    /** The regular expression, or null for a list. */
    public String pattern() {
        return regex == null ? null : regex.pattern();
    }

    /**
     * The targeted modules of {@code model}, in the model's order (layer by layer, q k v o gate up down).
     *
     * @throws IllegalArgumentException when nothing matches, when a list entry matches no module, or
     *     when {@code lm_head} would be targeted
     */
    public List<String> resolve(DecoderModel model) {
        List<String> out = new ArrayList<>();
        for (String name : model.linears().keySet()) {
            if (matches(name)) {
                if (name.equals("lm_head")) {
                    throw new IllegalArgumentException("target modules " + this + " match lm_head; only the decoder's "
                            + "projections (q/k/v/o_proj, gate/up/down_proj) can carry LoRA adapters here");
                }
                out.add(name);
            }
        }
        if (entries != null) {
            for (String e : entries) {
                boolean hit = out.stream().anyMatch(n -> n.equals(e) || n.endsWith("." + e));
                if (!hit) {
                    throw new IllegalArgumentException("target module '" + e + "' matches no linear layer of the model; "
                            + "names look like q_proj, mlp.down_proj or model.layers.0.self_attn.q_proj");
                }
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("target modules " + this + " match no linear layer of the model");
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoraTargets t && Objects.equals(entries, t.entries)
                && Objects.equals(pattern(), t.pattern());
    }

    @Override
    public int hashCode() {
        return Objects.hash(entries, pattern());
    }

    @Override
    public String toString() {
        return label;
    }
}
