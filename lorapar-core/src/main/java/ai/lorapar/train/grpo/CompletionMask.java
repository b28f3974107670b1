package ai.lorapar.train.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * Which completion tokens count: every token up to and including the first end-of-sequence token of its
 * row; what follows is padding (TRL's GRPOTrainer: {@code sequence_indices <= eos_idx}). A row without an
 * end-of-sequence token (the budget ran out) counts whole.
 */
public final class CompletionMask {
    private CompletionMask() {}

    /**
     * @param completionIds {@code [B, C]} integer ids
     * @param eosIds the end-of-sequence ids (empty: every token counts)
     * @return {@code [B, C]} fp32 of 0/1, attached to {@code completionIds}' manager
     */
    public static NDArray of(NDArray completionIds, long[] eosIds) {
        if (completionIds.getShape().dimension() != 2) {
            throw new IllegalArgumentException("completion ids must be [B, C], got " + completionIds.getShape());
        }
        NDManager out = completionIds.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray result;
            if (eosIds.length == 0) {
                result = scope.ones(completionIds.getShape(), DataType.FLOAT32, completionIds.getDevice());
            } else {
                NDArray isEos = null;
                for (long eos : eosIds) {
                    NDArray e = completionIds.eq(eos);
                    e.attach(scope);
                    isEos = isEos == null ? e : isEos.logicalOr(e);
                }
                NDArray eosInt = isEos.toType(DataType.INT64, false);
                // end-of-sequence tokens strictly before each position: 0 for the tokens that count
                NDArray before = eosInt.cumSum(1).sub(eosInt);
                result = before.eq(0L).toType(DataType.FLOAT32, false);
            }
            result.attach(out);
            return result;
        }
    }
}
