package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.engine.CudaGraph;
import ai.lorapar.engine.FusedOps;
import ai.lorapar.model.AnswerPositions;
import ai.lorapar.model.DecoderModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SFT micro-batch passes (forward and backward, gradients added to the parameters') replayed from CUDA graphs:
 * one graph per batch shape (rows, padded length, padded answer positions), captured the first time the shape
 * comes, kept in a small least-recently-used set that shares one memory pool.
 *
 * <p>A graph reads its inputs from arrays of its own (the slots): before a replay the batch's ids, mask, answer
 * positions, targets and weights are copied into them on the device, the CUDA generator is seeded with the
 * micro-batch's dropout seed, and the loss is read from an array made before the capture. The gradients are
 * added to the parameters' own gradient arrays, which must therefore stay the same arrays (zeroed in place, as
 * the optimizers here do).
 *
 * <p>Capturing runs the pass once eagerly first (a warm-up on the capture stream); the gradients it adds are
 * taken back, so every micro-batch's gradient comes from a replay with its own seed, whenever its shape's graph
 * was captured: a resumed run replays what an uninterrupted one did. A pass that cannot be captured (an engine
 * or an adapter path without capture-safe ops) turns the graphs off for the rest of the stage: {@link #run} then
 * returns null and the caller runs its passes op by op.
 */
final class CapturedPasses implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CapturedPasses.class);

    private final DecoderModel model;
    private final Collection<NDArray> params;
    private final int maxGraphs;
    private final Device device;
    private final Map<Key, Entry> graphs = new LinkedHashMap<>(16, 0.75f, true); // access order: LRU first
    private boolean broken;
    private long captures;

    private record Key(int rows, int length, int positions) {}

    /** A captured pass and the arrays it reads and writes. */
    private static final class Entry implements AutoCloseable {
        final NDManager manager;
        final NDArray ids;
        final NDArray mask;
        final AnswerPositions answers;
        final NDArray weights;
        final NDArray loss;
        CudaGraph graph;

        Entry(NDManager manager, NDArray ids, NDArray mask, AnswerPositions answers, NDArray weights, NDArray loss) {
            this.manager = manager;
            this.ids = ids;
            this.mask = mask;
            this.answers = answers;
            this.weights = weights;
            this.loss = loss;
        }

        @Override
        public void close() {
            if (graph != null) {
                graph.close();
            }
            manager.close();
        }
    }

    CapturedPasses(DecoderModel model, Collection<NDArray> params, int maxGraphs) {
        if (maxGraphs < 1) {
            throw new IllegalArgumentException("maxGraphs must be >= 1, got " + maxGraphs);
        }
        this.model = model;
        this.params = params;
        this.maxGraphs = maxGraphs;
        this.device = model.device();
    }

    /** Whether {@code model}'s engine can capture CUDA graphs on its device. */
    static boolean isAvailable(DecoderModel model) {
        return CudaGraph.isAvailable(model.manager().getEngine(), model.device());
    }

    /** Graphs captured so far (shapes seen, including evicted ones). */
    long captures() {
        return captures;
    }

    /**
     * Adds {@code batch}'s gradients (weighted by {@code targets}) to the parameters' by a replay, with dropout
     * drawn from {@code seed}; returns the pass's loss (a detached fp32 scalar in {@code scope}), or null when the
     * graphs are off (a capture failed): then the caller runs the pass op by op.
     */
    NDArray run(TokenBatch batch, SftLoss.Targets targets, long seed, NDManager scope) {
        if (broken) {
            return null;
        }
        AnswerPositions answers = targets.answers();
        Key key = new Key(batch.size(), batch.length(), answers.size());
        Entry e = graphs.get(key);
        boolean fresh = e == null;
        if (fresh) {
            e = slots(batch, targets);
        } else {
            fill(e, batch, targets);
        }
        if (fresh && !capture(key, e)) {
            return null;
        }
        CudaGraph.seed(device, seed);
        e.graph.replay();
        try (NDArray view = e.loss.reshape(new Shape())) {
            NDArray loss = view.duplicate(); // the next replay of this shape overwrites e.loss
            loss.attach(scope);
            return loss;
        }
    }

    /** New slots holding {@code batch} and {@code targets} (copies in a manager of their own). */
    private Entry slots(TokenBatch batch, SftLoss.Targets targets) {
        NDManager m = model.manager().newSubManager();
        try {
            AnswerPositions a = batch.answerPositions(m, targets.answers().size());
            NDArray ids = batch.inputIds().duplicate();
            ids.attach(m);
            NDArray mask = batch.attentionMask().duplicate();
            mask.attach(m);
            NDArray weights = targets.positionWeights().duplicate();
            weights.attach(m);
            return new Entry(m, ids, mask, a, weights, m.zeros(new Shape(1), DataType.FLOAT32));
        } catch (RuntimeException ex) {
            m.close();
            throw ex;
        }
    }

    /** Copies the batch into the slots, on the device. */
    private static void fill(Entry e, TokenBatch batch, SftLoss.Targets targets) {
        FusedOps.writeSlice(e.ids, batch.inputIds(), 0, 0);
        FusedOps.writeSlice(e.mask, batch.attentionMask(), 0, 0);
        FusedOps.writeSlice(e.answers.positions(), targets.answers().positions(), 0, 0);
        FusedOps.writeSlice(e.answers.targets(), targets.answers().targets(), 0, 0);
        FusedOps.writeSlice(e.weights, targets.positionWeights(), 0, 0);
    }

    /** Captures {@code e}'s pass (sharing a live graph's pool); false, with the graphs off, when it cannot be. */
    private boolean capture(Key key, Entry e) {
        List<NDArray> before = Gradients.snapshot(params);
        CudaGraph sharePool = graphs.isEmpty() ? null : graphs.values().iterator().next().graph;
        try {
            e.graph = CudaGraph.capture(device, 1, () -> pass(e), sharePool);
        } catch (CudaGraph.CaptureException ex) {
            LOG.warn("SFT passes cannot be captured as CUDA graphs ({}); they run op by op from here on",
                    ex.getMessage());
            broken = true;
            e.close();
            return false;
        } catch (RuntimeException ex) {
            e.close();
            throw ex;
        } finally {
            Gradients.restore(params, before); // the warm-up pass's gradients are taken back
        }
        captures++;
        graphs.put(key, e);
        LOG.debug("captured the SFT pass of shape {} as a CUDA graph ({} kept)", key, graphs.size());
        if (graphs.size() > maxGraphs) {
            Iterator<Entry> it = graphs.values().iterator();
            Entry eldest = it.next();
            it.remove();
            eldest.close(); // the pool stays while another graph holds it
        }
        return true;
    }

    /** The captured pass: forward, backward, and the loss written into the slot made before the capture. */
    private void pass(Entry e) {
        try (NDManager s = e.manager.newSubManager();
                GradientCollector gc = model.manager().getEngine().newGradientCollector()) {
            NDArray loss = SftLoss.weightedTokenNll(model, e.ids, e.mask, e.answers, e.weights, true);
            loss.attach(s);
            gc.backward(loss);
            NDArray flat = loss.stopGradient().reshape(1);
            flat.attach(s);
            FusedOps.writeSlice(e.loss, flat, 0, 0);
        }
    }

    @Override
    public void close() {
        List<RuntimeException> failures = new ArrayList<>();
        for (Entry e : graphs.values()) {
            try {
                e.close();
            } catch (RuntimeException ex) {
                failures.add(ex);
            }
        }
        graphs.clear();
        if (!failures.isEmpty()) {
            RuntimeException first = failures.get(0);
            failures.subList(1, failures.size()).forEach(first::addSuppressed);
            throw first;
        }
    }
}
