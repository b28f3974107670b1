package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.TrainingOps;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Per-example gradients of the LoRA parameters from one batched backward pass.
 *
 * <p>While open, every adapter of the {@link LoraModel} computes row b of a batch through its own leaf
 * copy of A and B ({@code [rows, r, in]}, {@code [rows, out, r]}, values equal to A and B), with two
 * batched matrix products. Row b's output depends on copy b only, so after a backward pass of the sum
 * of per-row losses, the gradient of copy b is the gradient of row b's own loss: exactly what one
 * backward pass per example would give, from one pass over the whole batch.
 *
 * <pre>{@code
 * try (PerExampleGradients pe = lora.perExampleGradients(batch.size());
 *      GradientCollector gc = engine.newGradientCollector()) {
 *     NDArray logits = lora.model().forward(batch.inputIds(), batch.attentionMask(), false);
 *     gc.backward(CausalLmLoss.perExample(logits, batch.labels()).sum());
 *     accumulator.addBatch(lora.parameters(), pe.gradients());   // [rows, ...parameter shape]
 * }
 * }</pre>
 *
 * <p>The adapters' own A and B get no gradient from such a pass. Only forward passes without a KV
 * cache see the copies (a cache freezes the shared A and B); every pass must have exactly
 * {@link #rows()} rows. Closing restores the shared A and B and frees the copies and their gradients.
 *
 * <p>On an engine with {@link TrainingOps#LORA_ROWS} and the model's fused LoRA path on, there are no
 * copies: each projection runs as one fused node with the shared A and B whose backward adds row b's
 * gradients into row b of per-parameter buffers (in fp32 the same numbers up to summation order, from
 * plain products instead of batched ones over copies; with a bf16 base, the terms added to bf16 tensors
 * round once, as PEFT's do). System property {@value #MODE_PROPERTY}{@code =copies} keeps the copies.
 */
public final class PerExampleGradients implements AutoCloseable {
    /** System property: {@code copies} keeps per-row copies of A and B even where the fused per-example node is available. */
    public static final String MODE_PROPERTY = "lorapar.perExample";

    private final LoraModel lora;
    private final NDManager manager;
    private final int rows;
    private final Map<String, NDArray> copies;
    /** The per-example gradient buffers of the fused mode, or null with copies. */
    private final Map<String, NDArray> buffers;
    private boolean closed;

    PerExampleGradients(LoraModel lora, NDManager parent, int rows) {
        this.lora = lora;
        this.rows = rows;
        this.manager = parent.newSubManager();
        Map<String, NDArray> c = new LinkedHashMap<>();
        Map<String, NDArray> g = null;
        try {
            if (fusedRows(lora)) {
                g = new LinkedHashMap<>();
                for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                    NDArray buf = manager.zeros(new Shape(rows).addAll(e.getValue().getShape()), DataType.FLOAT32,
                            e.getValue().getDevice());
                    buf.setName(e.getKey() + ".per_example_grad");
                    g.put(e.getKey(), buf);
                }
                for (LoraLayer l : lora.layers().values()) {
                    l.setRowGradients(g.get(l.module() + ".lora_A"), g.get(l.module() + ".lora_B"));
                }
            } else {
                for (Map.Entry<String, NDArray> e : lora.parameters().entrySet()) {
                    c.put(e.getKey(), rowCopies(e.getKey(), e.getValue()));
                }
                for (LoraLayer l : lora.layers().values()) {
                    l.setRowFactors(c.get(l.module() + ".lora_A"), c.get(l.module() + ".lora_B"));
                }
            }
        } catch (RuntimeException ex) {
            uninstall();
            manager.close();
            throw ex;
        }
        this.copies = Collections.unmodifiableMap(c);
        this.buffers = g == null ? null : Collections.unmodifiableMap(g);
    }

    /** Whether the fused per-example node serves {@code lora}'s model (engine capability, fused LoRA path on). */
    private static boolean fusedRows(LoraModel lora) {
        return !"copies".equalsIgnoreCase(System.getProperty(MODE_PROPERTY))
                && TrainingOps.has(lora.model().manager().getEngine(), TrainingOps.LORA_ROWS)
                && lora.model().trainingPath().fusedLora();
    }

    /** A leaf {@code [rows, ...p's shape]} holding {@code rows} copies of p's values. */
    private NDArray rowCopies(String name, NDArray p) {
        try (NDManager s = manager.newSubManager()) {
            NDArray detached = p.stopGradient();
            detached.attach(s);
            NDArray view = detached.expandDims(0).broadcast(new Shape(rows).addAll(p.getShape()));
            view.attach(s);
            NDArray copy = view.duplicate();
            copy.attach(manager);
            copy.setName(name + ".per_example");
            copy.setRequiresGradient(true);
            return copy;
        }
    }

    /** The number of rows (examples) of the batch the copies are for. */
    public int rows() {
        return rows;
    }

    /** The per-row leaf copies by parameter name, {@code [rows, ...parameter shape]}; empty in the fused mode (see the class). */
    public Map<String, NDArray> copies() {
        checkOpen();
        return copies;
    }

    /**
     * The per-example gradients by parameter name, {@code [rows, ...parameter shape]} fp32, after a
     * backward pass: row b is the gradient of row b's loss. Owned by this object (valid until it
     * closes); zeros for a parameter the pass did not reach.
     */
    public Map<String, NDArray> gradients() {
        checkOpen();
        if (buffers != null) {
            return buffers;
        }
        Map<String, NDArray> g = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : copies.entrySet()) {
            NDArray grad = e.getValue().getGradient();
            grad.attach(manager);
            g.put(e.getKey(), grad);
        }
        return g;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("per-example gradients are closed");
        }
    }

    private void uninstall() {
        for (LoraLayer l : lora.layers().values()) {
            l.setRowFactors(null, null);
            l.setRowGradients(null, null);
        }
    }

    /** Puts the shared A and B back into the adapters and frees the copies and their gradients. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            uninstall();
        } finally {
            lora.perExampleGradientsClosed(this);
            manager.close();
        }
    }
}
