package ai.lorapar.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.FusedOps;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.lora.LoraTensorName;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Accumulates LoRA-PAR's element-wise importance over a stream of per-example gradients.
 *
 * <p>For every element φ and example i with gradient g_i = ∂L_i/∂φ it keeps
 * s1 = Σ g_i·φ and s2 = Σ (g_i·φ)², and {@link #result()} returns
 * I = |s1 − ½·s2| / N: the first-order Taylor term minus half the diagonal-Fisher second-order
 * term, averaged over the N examples (design.md §1). Sums are kept in fp32 on the parameters' device;
 * lower-precision inputs are widened first.
 *
 * <p>Not thread-safe. The accumulator owns its sums; close it (or let its parent manager close).
 */
public final class ImportanceAccumulator implements AutoCloseable {
    private final NDManager manager;
    private final Map<String, NDArray> s1 = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
    private final Map<String, NDArray> s2 = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
    private long count;
    private volatile boolean closed;

    /** A new, empty accumulator whose sums live in a sub-manager of {@code parent}. */
    public ImportanceAccumulator(NDManager parent) {
        this.manager = parent.newSubManager();
    }

    /**
     * Adds one example: {@code grads} holds ∂L_i/∂φ for every tensor of {@code params}.
     *
     * @throws IllegalArgumentException when the names differ from the first call's, or a gradient's
     *     shape is not its parameter's, naming the tensor and both shapes
     */
    public void add(Map<String, NDArray> params, Map<String, NDArray> grads) {
        checkOpen();
        accumulate(params, grads, false);
        count++;
    }

    /**
     * Adds a batch of examples at once: each gradient has a leading example axis,
     * {@code [B, ...param shape]}, holding one example's gradient per row (per-example gradients,
     * e.g. from a vectorised backward pass).
     */
    public void addBatch(Map<String, NDArray> params, Map<String, NDArray> perExampleGrads) {
        checkOpen();
        long batch = -1;
        for (Map.Entry<String, NDArray> e : perExampleGrads.entrySet()) {
            long b = e.getValue().getShape().dimension() == 0 ? -1 : e.getValue().getShape().get(0);
            if (batch >= 0 && b != batch) {
                throw new IllegalArgumentException("per-example gradient '" + e.getKey() + "' has " + b
                        + " examples on its leading axis, others have " + batch);
            }
            batch = b;
        }
        accumulate(params, perExampleGrads, true);
        count += Math.max(batch, 0);
    }

    private void accumulate(Map<String, NDArray> params, Map<String, NDArray> grads, boolean batched) {
        if (!params.keySet().equals(grads.keySet())) {
            throw new IllegalArgumentException("gradients " + new TreeMap<>(grads).keySet() + " do not match parameters "
                    + new TreeMap<>(params).keySet());
        }
        if (!s1.isEmpty() && !s1.keySet().equals(params.keySet())) {
            throw new IllegalArgumentException("parameters " + new TreeMap<>(params).keySet()
                    + " differ from the first example's " + s1.keySet());
        }
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            NDArray phi = e.getValue();
            NDArray g = grads.get(e.getKey());
            Shape expected = batched ? new Shape(g.getShape().get(0)).addAll(phi.getShape()) : phi.getShape();
            if (!g.getShape().equals(expected)) {
                throw new IllegalArgumentException("gradient of '" + e.getKey() + "' has shape " + g.getShape()
                        + ", expected " + expected + (batched ? " (examples first)" : ""));
            }
        }
        for (Map.Entry<String, NDArray> e : params.entrySet()) { // all shapes checked: nothing is half-added
            NDArray phi = e.getValue();
            if (!s1.containsKey(e.getKey())) {
                s1.put(e.getKey(), manager.zeros(phi.getShape(), DataType.FLOAT32, phi.getDevice()));
                s2.put(e.getKey(), manager.zeros(phi.getShape(), DataType.FLOAT32, phi.getDevice()));
            }
        }
        if (batched && !params.isEmpty() && FusedOps.isImportanceAvailable(manager.getEngine())) {
            // one JNI call of a few large kernels instead of six small ones per tensor
            List<NDArray> p = new ArrayList<>(params.size());
            List<NDArray> g = new ArrayList<>(params.size());
            List<NDArray> a1 = new ArrayList<>(params.size());
            List<NDArray> a2 = new ArrayList<>(params.size());
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                p.add(e.getValue());
                g.add(grads.get(e.getKey()));
                a1.add(s1.get(e.getKey()));
                a2.add(s2.get(e.getKey()));
            }
            FusedOps.accumulateImportance(p, g, a1, a2);
            return;
        }
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            String name = e.getKey();
            NDArray phi = e.getValue();
            NDArray g = grads.get(name);
            try (NDManager scope = manager.newSubManager()) {
                NDArray phi32 = phi.getDataType() == DataType.FLOAT32 ? phi : widen(phi, scope);
                NDArray g32 = g.getDataType() == DataType.FLOAT32 ? g : widen(g, scope);
                NDArray gphi = g32.mul(phi32);
                gphi.attach(scope);
                NDArray sq = gphi.square();
                sq.attach(scope);
                NDArray d1 = batched ? gphi.sum(new int[] {0}) : gphi;
                NDArray d2 = batched ? sq.sum(new int[] {0}) : sq;
                d1.attach(scope);
                d2.attach(scope);
                s1.get(name).addi(d1);
                s2.get(name).addi(d2);
            }
        }
    }

    /** A copy of {@code a} as fp32 owned by {@code scope}; never closes or re-attaches the caller's array. */
    private static NDArray widen(NDArray a, NDManager scope) {
        NDArray w = a.toType(DataType.FLOAT32, true);
        w.attach(scope);
        return w;
    }

    /**
     * Sums the accumulators of every rank of {@code collective} into each of them (data-parallel scoring: each
     * rank added its share of the examples): Σ g·φ, Σ (g·φ)² and the counts, in one all-reduce of the sums' own
     * arrays in place (the c10d collective flattens them into one fp32 bucket) with the count. Afterwards every
     * rank's {@link #result()} is the map of all ranks' examples. A rank that added nothing takes part with zeros;
     * {@code params} (the tensors every rank scores, the same names and shapes) give their shapes. One host read
     * (the count). Nothing happens in a world of one.
     */
    public void allReduce(Collective collective, Map<String, NDArray> params) {
        checkOpen();
        if (collective.worldSize() == 1) {
            return;
        }
        if (s1.isEmpty()) {
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                s1.put(e.getKey(), manager.zeros(e.getValue().getShape(), DataType.FLOAT32, e.getValue().getDevice()));
                s2.put(e.getKey(), manager.zeros(e.getValue().getShape(), DataType.FLOAT32, e.getValue().getDevice()));
            }
        } else if (!s1.keySet().equals(params.keySet())) {
            throw new IllegalArgumentException("parameters " + new TreeMap<>(params).keySet()
                    + " differ from the accumulated " + s1.keySet());
        }
        try (NDManager scope = manager.newSubManager()) {
            NDList all = new NDList(s1.values());
            all.addAll(s2.values());
            NDArray n = scope.create(new double[] {count});
            all.add(n);
            collective.allReduceSum(all); // in place; c10d sums the fp32 sums in one bucket
            count = Math.round(n.getDouble());
        }
    }

    /** Number of examples added so far. */
    public long count() {
        return count;
    }

    /**
     * The importance I = |s1 − ½·s2| / N as a new map under the accumulator's parent manager; the
     * accumulator keeps its sums and can go on accumulating.
     *
     * @throws IllegalStateException when nothing was added
     */
    public ImportanceMap result() {
        checkOpen();
        if (count == 0) {
            throw new IllegalStateException("no examples were accumulated");
        }
        Map<String, NDArray> out = new LinkedHashMap<>();
        NDManager staging = manager.newSubManager();
        try {
            for (Map.Entry<String, NDArray> e : s1.entrySet()) {
                NDArray half = s2.get(e.getKey()).mul(0.5f);
                NDArray importance = e.getValue().sub(half).abs().div((float) count);
                half.close();
                importance.attach(staging);
                out.put(e.getKey(), importance);
            }
            return ImportanceMap.of(manager.getParentManager(), out, count);
        } finally {
            staging.close();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("ImportanceAccumulator is closed; its sums are freed (take result() before "
                    + "closing it)");
        }
    }

    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
