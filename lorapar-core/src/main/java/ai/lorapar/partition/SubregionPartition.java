package ai.lorapar.partition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.lora.LoraTensorName;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * LoRA-PAR's partition of LoRA elements into System-1-only, System-2-only and shared subregions, and
 * the element masks of the two training stages (design.md §1).
 *
 * <p>For each system, all elements of all tensors are ranked together by importance (descending) and
 * the smallest prefix whose cumulative importance reaches θ·total is kept. Elements kept by one
 * system only form its own region, elements kept by both the shared region. Stage 1 trains
 * S1-only plus the top ⌊α·|shared|⌋ shared elements by System-1 importance; stage 2 trains S2-only
 * plus the top ⌊β·|shared|⌋ shared elements by System-2 importance. Everything else is frozen.
 *
 * <p><b>Tie order.</b> Tensors are flattened row-major and concatenated in
 * {@link LoraTensorName#NATURAL_ORDER}; among elements of equal importance the one earlier in that
 * flat order ranks first. The selection is exact whatever the stability of the engine's sort. The θ
 * cut compares a running fp64 sum near the cut (plus the fp32-reduced sum above it) with θ times the
 * fp32-reduced total; θ = 1 keeps exactly the elements with positive importance.
 *
 * <p>Everything runs in NDArray operations on the importance maps' device; the partition owns its
 * masks (close it when done). Build one with {@link #builder()}.
 */
public final class SubregionPartition implements AutoCloseable {
    private volatile boolean closed;
    private final NDManager manager;
    private final double theta;
    private final double alpha;
    private final double beta;
    private final List<String> names;
    private final List<Shape> shapes;
    private final NDArray keep1;
    private final NDArray keep2;
    private final NDArray shared;
    private final NDArray stage1;
    private final NDArray stage2;
    private final StageMasks stageMasks;
    private final PartitionStatistics statistics;

    private SubregionPartition(Builder b) {
        ImportanceMap s1 = b.system1;
        ImportanceMap s2 = b.system2;
        validate(s1, s2);
        this.theta = b.theta;
        this.alpha = b.alpha;
        this.beta = b.beta;
        this.names = List.copyOf(s1.names());
        this.shapes = new ArrayList<>();
        for (String n : names) {
            shapes.add(s1.shape(n));
        }
        this.manager = (b.manager != null ? b.manager : s1.manager().getParentManager()).newSubManager(s1.device());
        try (NDManager scope = manager.newSubManager()) {
            NDArray flat1 = flatten(s1, scope);
            NDArray flat2 = flatten(s2, scope);
            double total1 = checkValues(flat1, s1, "System 1", scope);
            double total2 = checkValues(flat2, s2, "System 2", scope);

            keep1 = keep(flat1, total1, theta, scope);
            keep2 = keep(flat2, total2, theta, scope);
            shared = keep1.logicalAnd(keep2);
            NDArray only1 = keep1.logicalAnd(attach(keep2.logicalNot(), scope));
            NDArray only2 = keep2.logicalAnd(attach(keep1.logicalNot(), scope));
            only1.attach(scope);
            only2.attach(scope);
            long sharedCount = TopSelection.count(shared, scope);
            stage1 = only1.logicalOr(topOfShared(flat1, shared, sharedCount, alpha, scope));
            stage2 = only2.logicalOr(topOfShared(flat2, shared, sharedCount, beta, scope));
            for (NDArray a : new NDArray[] {keep1, keep2, shared, stage1, stage2}) {
                a.attach(manager);
            }
            statistics = computeStatistics(scope);
            stageMasks = new StageMasks(manager.newSubManager(), split(stage1), split(stage2), "importance",
                    statistics.total().stage1(), statistics.total().stage2());
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** A builder with the paper's defaults θ = 0.9, α = β = 1. */
    public static Builder builder() {
        return new Builder();
    }

    // ---- construction steps -------------------------------------------------------------------

    private static void validate(ImportanceMap s1, ImportanceMap s2) {
        if (s1 == null || s2 == null) {
            throw new IllegalArgumentException("both importance maps are required: system1(...) and system2(...)");
        }
        if (!s1.names().equals(s2.names())) {
            List<String> only1 = new ArrayList<>(s1.names());
            only1.removeAll(s2.names());
            List<String> only2 = new ArrayList<>(s2.names());
            only2.removeAll(s1.names());
            throw new IllegalArgumentException("the importance maps name different tensors: only in System 1 "
                    + only1 + ", only in System 2 " + only2);
        }
        for (String n : s1.names()) {
            if (!s1.shape(n).equals(s2.shape(n))) {
                throw new IllegalArgumentException("tensor '" + n + "' has shape " + s1.shape(n) + " in System 1 and "
                        + s2.shape(n) + " in System 2");
            }
        }
        if (!s1.device().equals(s2.device())) {
            throw new IllegalArgumentException("the importance maps are on different devices: " + s1.device() + " and "
                    + s2.device());
        }
    }

    private static NDArray flatten(ImportanceMap map, NDManager scope) {
        NDList parts = new NDList();
        for (NDArray a : map.tensors().values()) {
            parts.add(attach(a.reshape(-1), scope));
        }
        return attach(NDArrays.concat(parts), scope);
    }

    /**
     * Validates one system's importance with three reductions (sum, min, max) and returns its total:
     * a NaN or infinite element makes the sum non-finite, a negative one the minimum negative, and an
     * all-zero map has maximum 0. Only on an error is the map scanned tensor by tensor to name the culprit.
     */
    private static double checkValues(NDArray flat, ImportanceMap map, String system, NDManager scope) {
        double total = attach(flat.sum(), scope).getFloat();
        if (!Double.isFinite(total)) {
            String tensor = firstTensorWhere(map, a -> a.isNaN().logicalOr(a.isInfinite()));
            if ("?".equals(tensor)) {
                throw new IllegalArgumentException(system + " importance sums beyond the fp32 range; rescale it"
                        + " (the partition depends only on ratios)");
            }
            throw new IllegalArgumentException(system + " importance has NaN or infinite values in tensor '" + tensor + "'");
        }
        if (attach(flat.min(), scope).getFloat() < 0) {
            throw new IllegalArgumentException(system + " importance has negative values in tensor '"
                    + firstTensorWhere(map, a -> a.lt(0f)) + "'; importance is an absolute value");
        }
        if (!(attach(flat.max(), scope).getFloat() > 0)) {
            throw new IllegalArgumentException(system + " importance is zero for every element, so there is nothing to"
                    + " rank. This is what standard LoRA init gives (B = 0 makes every gradient of A and every B"
                    + " element zero); score importance with a non-zero init such as Gaussian A and B ~ N(0, 0.01),"
                    + " PiSSA or OLoRA.");
        }
        return total;
    }

    private static String firstTensorWhere(ImportanceMap map, Function<NDArray, NDArray> predicate) {
        for (Map.Entry<String, NDArray> e : map.tensors().entrySet()) {
            try (NDArray hit = predicate.apply(e.getValue()); NDArray any = hit.any()) {
                if (any.getBoolean()) {
                    return e.getKey();
                }
            }
        }
        return "?";
    }

    /** The smallest prefix of the descending ranking whose cumulative importance reaches θ·total. */
    private static NDArray keep(NDArray flat, double total, double theta, NDManager scope) {
        if (theta >= 1.0) {
            // The whole total is reached exactly when every positive element is in.
            return attach(flat.gt(0f), scope);
        }
        return TopSelection.prefixReaching(flat, theta * total, scope);
    }

    /** Mask of the top ⌊fraction·|shared|⌋ shared elements by {@code importance}. */
    private static NDArray topOfShared(NDArray importance, NDArray shared, long sharedCount, double fraction,
            NDManager scope) {
        long k = (long) Math.floor(fraction * sharedCount);
        if (k >= sharedCount) {
            return shared;
        }
        if (k <= 0) {
            return scope.zeros(shared.getShape(), DataType.BOOLEAN, shared.getDevice());
        }
        // Cut on the shared elements alone, then select within the shared mask: ties among shared
        // elements still go to the lower flat index.
        NDArray at = attach(attach(shared.nonzero(), scope).reshape(-1), scope);
        NDArray sharedValues = attach(importance.take(at), scope);
        TopSelection.Cut cut = TopSelection.cut(sharedValues, k, false, scope);
        return TopSelection.selectWithin(importance, shared, cut, scope);
    }

    private Map<String, NDArray> split(NDArray flat) {
        long[] cuts = new long[names.size() - 1];
        long offset = 0;
        for (int i = 0; i < cuts.length; i++) {
            offset += shapes.get(i).size();
            cuts[i] = offset;
        }
        NDList parts = flat.split(cuts);
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            NDArray m = parts.get(i).reshape(shapes.get(i));
            m.setName(names.get(i));
            out.put(names.get(i), m);
        }
        // The parts (and views of them) stay with the flat array's manager: split or reshape may hand
        // back the very same array, so nothing here is closed early.
        return out;
    }

    // ---- statistics ---------------------------------------------------------------------------

    private PartitionStatistics computeStatistics(NDManager scope) {
        NDArray[] masks = {keep1, keep2, shared, stage1, stage2};
        long[][] perTensor = new long[masks.length][];
        for (int m = 0; m < masks.length; m++) {
            perTensor[m] = perTensorCounts(masks[m], scope);
        }
        Map<String, PartitionStatistics.Row> groups = new TreeMap<>(LoraTensorName.NATURAL_ORDER);
        PartitionStatistics.Row all = null;
        for (int i = 0; i < names.size(); i++) {
            long[] c = new long[5];
            for (int m = 0; m < 5; m++) {
                c[m] = perTensor[m][i];
            }
            PartitionStatistics.Row row = new PartitionStatistics.Row("", shapes.get(i).size(), c[0], c[1], c[0] - c[2],
                    c[1] - c[2], c[2], c[3], c[4]);
            all = all == null ? row.named("all") : all.plus(row);
            LoraTensorName parsed = LoraTensorName.parse(names.get(i));
            for (String g : new String[] {"module=" + parsed.module(), "layer=" + parsed.layer(),
                    "matrix=" + parsed.matrix()}) {
                groups.merge(g, row.named(g), PartitionStatistics.Row::plus);
            }
        }
        List<PartitionStatistics.Row> rows = new ArrayList<>();
        rows.add(all);
        // Modules in projection order, then layers, then matrices.
        for (String module : new String[] {"q", "k", "v", "o", "gate", "up", "down", "other"}) {
            PartitionStatistics.Row r = groups.remove("module=" + module);
            if (r != null) {
                rows.add(r);
            }
        }
        rows.addAll(groups.values());
        return new PartitionStatistics(rows);
    }

    /**
     * True elements of {@code flat} in each tensor's segment. Segments of equal size are stacked into
     * one matrix and reduced along rows, so the work is one pass over the mask and one read-back.
     */
    private long[] perTensorCounts(NDArray flat, NDManager scope) {
        Map<Long, List<Integer>> bySize = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            bySize.computeIfAbsent(shapes.get(i).size(), s -> new ArrayList<>()).add(i);
        }
        long[] cuts = new long[names.size() - 1];
        long offset = 0;
        for (int i = 0; i < cuts.length; i++) {
            offset += shapes.get(i).size();
            cuts[i] = offset;
        }
        NDList segments = flat.split(cuts);
        for (NDArray segment : segments) {
            if (segment != flat) { // with one tensor, split hands back the mask itself
                segment.attach(scope);
            }
        }
        NDList sums = new NDList();
        List<Integer> order = new ArrayList<>();
        for (List<Integer> group : bySize.values()) {
            NDList rows = new NDList();
            for (int i : group) {
                rows.add(segments.get(i));
            }
            NDArray stacked = attach(NDArrays.stack(rows), scope);
            sums.add(attach(attach(stacked.sum(new int[] {1}), scope).toType(DataType.INT64, false), scope));
            order.addAll(group);
        }
        long[] grouped = attach(NDArrays.concat(sums), scope).toLongArray();
        long[] counts = new long[names.size()];
        for (int j = 0; j < grouped.length; j++) {
            counts[order.get(j)] = grouped[j];
        }
        return counts;
    }

    // ---- accessors ----------------------------------------------------------------------------

    /** θ: the share of total importance each system keeps. */
    public double theta() {
        return theta;
    }

    /** α: the fraction of the shared region trained in stage 1. */
    public double alpha() {
        return alpha;
    }

    /** β: the fraction of the shared region trained in stage 2. */
    public double beta() {
        return beta;
    }

    /** Tensor names in flattening order. */
    public List<String> names() {
        return names;
    }

    /** The masks of both training stages (owned by this partition). */
    public StageMasks stageMasks() {
        checkOpen();
        return stageMasks;
    }

    /** Element counts overall and by module, layer and matrix. */
    public PartitionStatistics statistics() {
        return statistics;
    }

    /** Per-tensor masks of one region, as new arrays in {@code manager}. */
    public Map<String, NDArray> regionMasks(Region region, NDManager manager) {
        checkOpen();
        NDArray flat;
        switch (region) {
            case SYSTEM1_ONLY:
                flat = keep1.logicalAnd(keep2.logicalNot());
                break;
            case SYSTEM2_ONLY:
                flat = keep2.logicalAnd(keep1.logicalNot());
                break;
            default:
                flat = shared.duplicate();
                break;
        }
        flat.attach(manager);
        return Collections.unmodifiableMap(split(flat));
    }

    /**
     * The paper's "Rand." baseline: for each stage, a uniformly random set of elements of the same size
     * as that stage's importance-selected set, drawn over all elements. The engine's random generator is
     * seeded with {@code seed} (DJL has one generator per engine, so this also reseeds it for others).
     * The caller owns the result.
     */
    public StageMasks randomBaseline(long seed) {
        checkOpen();
        NDManager own = manager.getParentManager().newSubManager(keep1.getDevice());
        try (NDManager scope = manager.newSubManager()) {
            own.getEngine().setRandomSeed((int) (seed ^ (seed >>> 32)));
            long n = keep1.size();
            NDArray r1 = scope.randomUniform(0f, 1f, new Shape(n), DataType.FLOAT32, keep1.getDevice());
            NDArray r2 = scope.randomUniform(0f, 1f, new Shape(n), DataType.FLOAT32, keep1.getDevice());
            NDArray m1 = TopSelection.topK(r1, stageMasks.stage1Count(), scope);
            NDArray m2 = TopSelection.topK(r2, stageMasks.stage2Count(), scope);
            m1.attach(own);
            m2.attach(own);
            return new StageMasks(own, split(m1), split(m2), "random(seed=" + seed + ")", stageMasks.stage1Count(),
                    stageMasks.stage2Count());
        } catch (RuntimeException e) {
            own.close();
            throw e;
        }
    }

    @Override
    public String toString() {
        PartitionStatistics.Row t = statistics.total();
        return String.format(Locale.ROOT,
                "SubregionPartition[θ=%s α=%s β=%s: %d elements, S1-only %d, S2-only %d, shared %d, stage 1 %d, stage 2 %d]",
                theta, alpha, beta, t.elements(), t.system1Only(), t.system2Only(), t.shared(), t.stage1(), t.stage2());
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("SubregionPartition is closed; its masks are freed (save or copy them "
                    + "before closing it)");
        }
    }

    @Override
    public void close() {
        closed = true;
        stageMasks.close(); // owned by this partition
        manager.close();
    }

    private static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }

    /** Configures a partition; {@link #build()} computes it. */
    public static final class Builder {
        private ImportanceMap system1;
        private ImportanceMap system2;
        private double theta = 0.9;
        private double alpha = 1.0;
        private double beta = 1.0;
        private NDManager manager;

        private Builder() {}

        /** System-1 (fast, direct) importance. */
        public Builder system1(ImportanceMap importance) {
            this.system1 = importance;
            return this;
        }

        /** System-2 (multi-step) importance. */
        public Builder system2(ImportanceMap importance) {
            this.system2 = importance;
            return this;
        }

        /** θ ∈ (0, 1]: the share of each system's total importance to keep (default 0.9). */
        public Builder theta(double theta) {
            if (!(theta > 0 && theta <= 1)) {
                throw new IllegalArgumentException("theta must be in (0, 1], got " + theta);
            }
            this.theta = theta;
            return this;
        }

        /** α ∈ [0, 1]: the fraction of the shared region trained in stage 1 (default 1). */
        public Builder alpha(double alpha) {
            this.alpha = fraction("alpha", alpha);
            return this;
        }

        /** β ∈ [0, 1]: the fraction of the shared region trained in stage 2 (default 1). */
        public Builder beta(double beta) {
            this.beta = fraction("beta", beta);
            return this;
        }

        /** The manager under which the partition's own manager is created (default: System 1's map's parent). */
        public Builder manager(NDManager manager) {
            this.manager = manager;
            return this;
        }

        private static double fraction(String key, double v) {
            if (!(v >= 0 && v <= 1)) {
                throw new IllegalArgumentException(key + " must be in [0, 1], got " + v);
            }
            return v;
        }

        /**
         * Computes the partition.
         *
         * @throws IllegalArgumentException when the maps name different tensors or shapes, hold NaN,
         *     infinite or negative values, or are zero everywhere (each message says which)
         */
        public SubregionPartition build() {
            return new SubregionPartition(this);
        }
    }
}
