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
 *
 * <p>After {@link #startStaticDecoding()} the cache serves decode steps whose ops do not depend on
 * the step number, so that one step can be captured as a CUDA graph and replayed: the slot written
 * next and each row's next RoPE position live on the device and advance there, and attention runs
 * over all {@code capacity} positions with the ones not yet written masked out.
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
    private volatile boolean closed;
    private FrozenAdapters adapters; // the model's adapters as they were when the cache was made
    // static decoding (null before startStaticDecoding)
    private NDArray slot; // [1] int64: the position the next token is written to
    private NDArray positions; // [batch] int64: RoPE position of each row's next token
    private NDArray oneL;
    private NDIndex slotColumn; // [:, slot] of the key bias
    private NDIndex slotOfKv; // [:, :, slot] of a key/value buffer
    private NDIndex allOfKv; // [:, :, 0:capacity]

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

    /** Freezes the model's adapters into this cache's arrays (see {@link FrozenAdapters}). */
    void freezeAdapters(java.util.List<Linear[]> parts) {
        this.adapters = FrozenAdapters.freeze(parts, manager);
    }

    /** The frozen adapters inference passes with this cache use. */
    FrozenAdapters adapters() {
        return adapters;
    }

    /**
     * Positions held so far. In static decoding, the length when it started (the position written
     * next is then kept on the device).
     */
    public int length() {
        return length;
    }

    /** Whether {@link #startStaticDecoding()} was called. */
    public boolean isStaticDecoding() {
        return slot != null;
    }

    /**
     * Switches to static decoding (see the class comment) after the positions written so far (the
     * prompt): from now on each forward pass takes one token per row, the next slot is advanced on
     * the device, and {@link #mask()} is no longer extended. Each row's next RoPE position is its
     * count of real tokens so far, as the eager path computes it. The ops run here synchronise with
     * the host (call it before capturing a graph).
     */
    public void startStaticDecoding() {
        if (slot != null) {
            throw new IllegalStateException("static decoding already started");
        }
        if (mask == null) {
            throw new IllegalStateException("static decoding starts after a prompt: the cache is empty");
        }
        if (length >= capacity) {
            throw new IllegalStateException("KV cache full (" + length + " of " + capacity + " positions)");
        }
        // positions not yet written must not be attended to (attention now spans the whole capacity)
        keyBias.set(new NDIndex().addAllDim().addSliceDim(length, capacity), -Float.MAX_VALUE);
        this.slot = manager.create(new long[] {length});
        NDArray count = mask.sum(new int[] {1});
        count.attach(manager);
        this.positions = count.toType(DataType.INT64, false);
        this.positions.attach(manager);
        if (count != positions) {
            count.close();
        }
        this.oneL = manager.create(1L);
        this.slotColumn = new NDIndex(":, {}", slot);
        this.slotOfKv = new NDIndex(":, :, {}", slot);
        this.allOfKv = new NDIndex().addAllDim(2).addSliceDim(0, capacity);
    }

    /** Each row's RoPE position of the next token ({@code [batch]} int64) in static decoding. Do not close it. */
    NDArray staticPositions() {
        return positions;
    }

    /** The most positions this cache can hold. */
    public int capacity() {
        return capacity;
    }

    /**
     * Rows of the cache.
     *
     * @return the batch size
     */
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
        if (slot != null) {
            writeStaticStepMask(stepMask, t);
            return null;
        }
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

    /** Static decoding: the key bias of the slot about to be written, from the step's mask ({@code [batch, 1]}). */
    private void writeStaticStepMask(NDArray stepMask, int t) {
        if (t != 1) {
            throw new IllegalArgumentException("static decoding takes one token per row, got " + t);
        }
        try (NDManager tmp = manager.newSubManager()) {
            NDArray mf = stepMask.toType(DataType.FLOAT32, true);
            mf.attach(tmp);
            NDArray add = mf.sub(oneF).mul(maxF); // [batch, 1]
            keyBias.set(slotColumn, add);
        }
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
        if (slot != null) {
            // static decoding: written at the device-held slot; attention spans every position
            keys[layer].set(slotOfKv, k);
            values[layer].set(slotOfKv, v);
            return new NDList(keys[layer].get(allOfKv), values[layer].get(allOfKv));
        }
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
        if (slot != null) {
            slot.addi(oneL);
            positions.addi(oneL);
            return;
        }
        length += t;
    }

    /** Whether {@link #close()} was called. */
    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        closed = true;
        manager.close();
    }
}
