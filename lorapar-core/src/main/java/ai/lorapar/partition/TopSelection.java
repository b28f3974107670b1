package ai.lorapar.partition;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * Deterministic top-k selection over a flat array, in NDArray ops on the array's device.
 *
 * <p>Tie order: among elements of equal value, the one with the lower flat index wins. The selection
 * does not depend on the stability of the engine's sort: it takes the k-th largest value t, keeps
 * everything above t, and of the elements equal to t the first ones in index order (a running count).
 */
final class TopSelection {
    private TopSelection() {}

    /** Mask of the {@code k} largest elements of {@code values} (1-D), ties to the lower index. */
    static NDArray topK(NDArray values, long k, NDManager scope) {
        long n = values.size();
        if (k <= 0) {
            return scope.zeros(values.getShape(), DataType.BOOLEAN, values.getDevice());
        }
        if (k >= n) {
            return scope.ones(values.getShape(), DataType.BOOLEAN, values.getDevice());
        }
        NDArray ascending = attach(values.sort(0), scope);
        float threshold = ascending.get(n - k).getFloat();
        return atLeastThreshold(values, threshold, k, scope);
    }

    /**
     * Mask of the {@code k} largest elements given that the k-th largest value is {@code threshold}:
     * all elements above it and the first {@code k − #above} elements equal to it.
     */
    static NDArray atLeastThreshold(NDArray values, float threshold, long k, NDManager scope) {
        NDArray above = attach(values.gt(threshold), scope);
        long countAbove = attach(above.toType(DataType.INT64, false).sum(), scope).getLong();
        NDArray equal = attach(values.eq(threshold), scope);
        NDArray rankAmongEqual = attach(attach(equal.toType(DataType.INT64, false), scope).cumSum(0), scope);
        NDArray tiesKept = attach(equal.logicalAnd(attach(rankAmongEqual.lte(k - countAbove), scope)), scope);
        return attach(above.logicalOr(tiesKept), scope);
    }

    /** Number of true elements of a boolean mask. */
    static long count(NDArray mask, NDManager scope) {
        return attach(attach(mask.toType(DataType.INT64, false), scope).sum(), scope).getLong();
    }

    static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }
}
