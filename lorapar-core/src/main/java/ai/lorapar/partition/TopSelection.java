package ai.lorapar.partition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

/**
 * Deterministic selections over a flat array of non-negative values, in NDArray ops on its device.
 *
 * <p><b>Tie order.</b> Among elements of equal value the one with the lower flat index wins. The
 * selection never depends on the stability of the engine's sort: it finds the cut value t and the
 * count k, keeps every element above t, and of the elements equal to t the first ones in index
 * order (a running count, taken only when some ties must be left out).
 *
 * <p><b>Finding the cut without sorting everything.</b> A descending walk is only needed near the
 * cut, so for large arrays a strided sample (about 64 k values) is sorted to bracket the cut value,
 * one pass sums (or counts) everything above the bracket, and only the elements inside it are sorted
 * and walked. If the bracket misses, it is widened; as a last resort the whole array is sorted. The
 * walk's cumulative sum is fp64; the sum above the bracket is the engine's fp32 reduction.
 */
final class TopSelection {
    /** Arrays up to this size are sorted whole. Package-private so tests can force the sampled path. */
    static long exactSortLimit = 1L << 18;

    private static final long SAMPLE_SIZE = 1L << 16;

    private TopSelection() {}

    /**
     * Where a descending walk reaches its target: the value t of the k-th element, k itself, and how
     * many elements lie above t and equal to it (so selecting the prefix needs no full-size count).
     */
    record Cut(float threshold, long k, long countAbove, long countEqual) {}

    /** Mask of the {@code k} largest elements of {@code values} (1-D), ties to the lower index. */
    static NDArray topK(NDArray values, long k, NDManager scope) {
        long n = values.size();
        if (k <= 0) {
            return scope.zeros(values.getShape(), DataType.BOOLEAN, values.getDevice());
        }
        if (k >= n) {
            return scope.ones(values.getShape(), DataType.BOOLEAN, values.getDevice());
        }
        return select(values, cut(values, k, false, scope), scope);
    }

    /**
     * Mask of the shortest descending prefix of {@code values} whose sum reaches {@code target}
     * (which must not exceed the total), ties to the lower index.
     */
    static NDArray prefixReaching(NDArray values, double target, NDManager scope) {
        return select(values, cut(values, target, true, scope), scope);
    }

    /**
     * The cut of a descending walk over {@code values}: the first position where the running sum of
     * values ({@code bySum}) or the running count reaches {@code target}.
     */
    static Cut cut(NDArray values, double target, boolean bySum, NDManager scope) {
        long n = values.size();
        if (n <= exactSortLimit) {
            return walk(values, 0, 0, target, bySum, scope);
        }
        long stride = (n + SAMPLE_SIZE - 1) / SAMPLE_SIZE;
        NDArray sample = attach(values.get(new NDIndex("::" + stride)), scope);
        NDArray sampleDesc = descending(sample, scope);
        long m = sampleDesc.size();
        // Estimated running total at each sample position; j = first position reaching the target.
        NDArray estimate = attach(attach(attach(bySum ? sampleDesc.toType(DataType.FLOAT64, false)
                : scope.ones(sampleDesc.getShape(), DataType.FLOAT64, sampleDesc.getDevice()), scope).cumSum(0), scope)
                .mul((double) stride), scope);
        long j = count(attach(estimate.lt(target), scope), scope);
        for (long margin = Math.max(64, m / 64); margin < 4 * m; margin *= 4) {
            long hiIdx = j - margin;
            long loIdx = j + margin;
            float hi = hiIdx < 0 ? Float.POSITIVE_INFINITY : attach(sampleDesc.get(hiIdx), scope).getFloat();
            float lo = loIdx >= m ? Float.NEGATIVE_INFINITY : attach(sampleDesc.get(loIdx), scope).getFloat();
            NDArray above = attach(values.gt(hi), scope);
            long countAbove = count(above, scope);
            double sumAbove = bySum ? sumWhere(values, above, scope) : countAbove;
            if (sumAbove >= target) {
                continue; // the cut lies above the bracket
            }
            NDArray inside = attach(attach(values.lte(hi), scope).logicalAnd(attach(values.gte(lo), scope)), scope);
            // nonzero + take: several times faster than a boolean mask when few elements are selected
            NDArray at = attach(attach(inside.nonzero(), scope).reshape(-1), scope);
            Cut cut = walkCandidates(attach(values.take(at), scope), countAbove, sumAbove, target, bySum, scope);
            if (cut != null) {
                return cut;
            }
        }
        return walk(values, 0, 0, target, bySum, scope);
    }

    private static Cut walk(NDArray values, long countBefore, double sumBefore, double target, boolean bySum,
            NDManager scope) {
        Cut cut = walkCandidates(values, countBefore, sumBefore, target, bySum, scope);
        if (cut == null) {
            // Rounding left the target a hair above the full sum: the whole array is the prefix.
            NDArray desc = descending(values, scope);
            float last = attach(desc.get(desc.size() - 1), scope).getFloat();
            long equal = TopSelection.count(attach(desc.eq(last), scope), scope);
            return new Cut(last, countBefore + desc.size(), countBefore + desc.size() - equal, equal);
        }
        return cut;
    }

    /** Sorts {@code candidates} descending and walks them after {@code countBefore} larger elements. */
    private static Cut walkCandidates(NDArray candidates, long countBefore, double sumBefore, double target, boolean bySum,
            NDManager scope) {
        long len = candidates.size();
        if (len == 0) {
            return null;
        }
        long j;
        NDArray desc = descending(candidates, scope);
        if (bySum) {
            NDArray running = attach(attach(desc.toType(DataType.FLOAT64, false), scope).cumSum(0), scope);
            j = count(attach(attach(running.add(sumBefore), scope).lt(target), scope), scope);
        } else {
            j = Math.max(0, (long) Math.ceil(target - sumBefore) - 1);
        }
        if (j >= len) {
            return null;
        }
        // Every element above the candidates is above t, and every element equal to t is a candidate.
        float t = attach(desc.get(j), scope).getFloat();
        long above = countBefore + count(attach(desc.gt(t), scope), scope);
        long equal = count(attach(desc.eq(t), scope), scope);
        return new Cut(t, countBefore + j + 1, above, equal);
    }

    private static NDArray descending(NDArray values, NDManager scope) {
        return attach(attach(attach(values.neg(), scope).sort(0), scope).neg(), scope);
    }

    private static double sumWhere(NDArray values, NDArray mask, NDManager scope) {
        NDArray zero = attach(scope.zeros(values.getShape(), values.getDataType(), values.getDevice()), scope);
        return attach(attach(NDArrays.where(mask, values, zero), scope).sum(), scope).getFloat();
    }

    /**
     * Mask of the walk's prefix: every element above the cut value t, and of the elements equal to t
     * the first {@code k − #above} in index order (all of them, in one comparison, when all are needed).
     */
    static NDArray select(NDArray values, Cut cut, NDManager scope) {
        long tiesNeeded = cut.k() - cut.countAbove();
        if (tiesNeeded >= cut.countEqual()) {
            return attach(values.gte(cut.threshold()), scope);
        }
        NDArray above = attach(values.gt(cut.threshold()), scope);
        NDArray equal = attach(values.eq(cut.threshold()), scope);
        NDArray rankAmongEqual = attach(attach(equal.toType(DataType.INT32, false), scope).cumSum(0), scope);
        NDArray tiesKept = attach(equal.logicalAnd(attach(rankAmongEqual.lte(tiesNeeded), scope)), scope);
        return attach(above.logicalOr(tiesKept), scope);
    }

    /**
     * {@link #select} restricted to the elements where {@code within} is true, for a cut computed over
     * exactly those elements (its counts are counts among them).
     */
    static NDArray selectWithin(NDArray values, NDArray within, Cut cut, NDManager scope) {
        long tiesNeeded = cut.k() - cut.countAbove();
        if (tiesNeeded >= cut.countEqual()) {
            return attach(within.logicalAnd(attach(values.gte(cut.threshold()), scope)), scope);
        }
        NDArray above = attach(within.logicalAnd(attach(values.gt(cut.threshold()), scope)), scope);
        NDArray equal = attach(within.logicalAnd(attach(values.eq(cut.threshold()), scope)), scope);
        NDArray rankAmongEqual = attach(attach(equal.toType(DataType.INT32, false), scope).cumSum(0), scope);
        NDArray tiesKept = attach(equal.logicalAnd(attach(rankAmongEqual.lte(tiesNeeded), scope)), scope);
        return attach(above.logicalOr(tiesKept), scope);
    }

    /** Number of true elements of a boolean mask. */
    static long count(NDArray mask, NDManager scope) {
        return attach(mask.sum(), scope).toType(DataType.INT64, false).getLong();
    }

    static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }
}
