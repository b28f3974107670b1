package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.FusedOps;

/**
 * Keys and values of every layer for incremental decoding, preallocated for {@code capacity}
 * positions ({@code [batch, kvHeads, capacity, headDim]} per layer, written in place), plus the
 * attention mask of the positions seen so far. Create it with {@link DecoderModel#newCache}; it owns
 * its arrays and must be closed.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final int batch;
    private final int capacity;
    private NDArray mask; // [batch, length] int64, 1 = real token
    private final NDArray oneF;
    private final NDArray maxF;
    private final NDArray keyBias; // [batch, capacity] fp32: 0 for a real position, fp32's minimum for padding
    private int length;

    KvCache(NDManager parent, int layers, int batch, int kvHeads, int capacity, int headDim, DataType dtype) {
        this.manager = parent.newSubManager();
        this.batch = batch;
        this.capacity = capacity;
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        Shape s = new Shape(batch, kvHeads, capacity, headDim);
        for (int i = 0; i < layers; i++) {
            keys[i] = manager.zeros(s, dtype);
            values[i] = manager.zeros(s, dtype);
        }
        this.keyBias = manager.zeros(new Shape(batch, capacity), DataType.FLOAT32);
        // scalars made once (a scalar made per call is a synchronous host-to-device copy on a GPU)
        this.oneF = manager.create(1f);
        this.maxF = manager.create(Float.MAX_VALUE);
    }

    /** Positions held so far. */
    public int length() {
        return length;
    }

    /** The most positions this cache can hold. */
    public int capacity() {
        return capacity;
    }

    public int batchSize() {
        return batch;
    }

    /** The mask of the positions so far ({@code [batch, length]}, int64), or null when empty. Do not close it. */
    public NDArray mask() {
        return mask;
    }

    /**
     * Extends the mask by {@code stepMask} ({@code [batch, T]}) and returns the full mask; called once
     * per forward pass, before the layers append their keys and values.
     */
    NDArray extendMask(NDArray stepMask) {
        int t = (int) stepMask.getShape().get(1);
        if (length + t > capacity) {
            throw new IllegalStateException("KV cache full: " + length + " + " + t + " positions exceed its capacity "
                    + capacity + "; create it with a larger capacity");
        }
        NDArray m = stepMask.toType(DataType.INT64, true);
        m.attach(manager);
        try (NDManager tmp = manager.newSubManager()) {
            // 1 -> 0, 0 -> -max (the additive bias attention uses for a padded key)
            NDArray mf = m.toType(DataType.FLOAT32, true);
            mf.attach(tmp);
            NDArray add = mf.sub(oneF).mul(maxF);
            keyBias.set(new NDIndex(":, {}:{}", length, length + t), add);
        }
        if (mask == null) {
            mask = m;
        } else {
            NDArray joined = NDArrays.concat(new NDList(mask, m), 1);
            joined.attach(manager);
            mask.close();
            m.close();
            mask = joined;
        }
        return mask;
    }

    /**
     * The additive fp32 attention bias of the first {@code total} positions' keys ({@code [batch, total]}
     * view: 0 for a real token, fp32's minimum for padding), kept up to date by {@link #extendMask}. The
     * caller closes the view.
     */
    NDArray keyBias(int total) {
        return keyBias.get(new NDIndex().addAllDim().addSliceDim(0, total));
    }

    /**
     * Writes layer {@code layer}'s new keys/values ({@code [batch, kvHeads, T, headDim]}) after the
     * {@code past} positions and returns views of all positions so far; the caller closes the views.
     * With {@code fused}, through the JNI's one-call slice write ({@link FusedOps#writeSlice}).
     */
    NDList append(int layer, int past, NDArray k, NDArray v, boolean fused) {
        int t = (int) k.getShape().get(2);
        if (fused) {
            FusedOps.writeSlice(keys[layer], k, 2, past);
            FusedOps.writeSlice(values[layer], v, 2, past);
        } else {
            NDIndex slot = new NDIndex().addAllDim(2).addSliceDim(past, past + t);
            keys[layer].set(slot, k);
            values[layer].set(slot, v);
        }
        NDIndex upTo = new NDIndex().addAllDim(2).addSliceDim(0, past + t);
        return new NDList(keys[layer].get(upTo), values[layer].get(upTo));
    }

    /** Layer {@code layer}'s whole key buffer {@code [batch, kvHeads, capacity, headDim]} (for in-place writes). */
    NDArray keyBuffer(int layer) {
        return keys[layer];
    }

    /** Layer {@code layer}'s whole value buffer {@code [batch, kvHeads, capacity, headDim]}. */
    NDArray valueBuffer(int layer) {
        return values[layer];
    }

    /** Arrays held by the cache's manager (tests: decode steps must leave nothing behind here). */
    int arrayCount() {
        return manager.getManagedArrays().size();
    }

    /** Called once the layers have appended a forward pass of {@code t} positions. */
    void advance(int t) {
        length += t;
    }

    @Override
    public void close() {
        manager.close();
    }
}
