package ai.lorapar.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Token cross-entropy of a causal LM: position {@code t}'s logits predict label {@code t+1}; labels
 * equal to {@value #IGNORE_INDEX} (prompt tokens, padding) do not count. Computed in fp32.
 */
public final class CausalLmLoss {
    /** The label that marks a position as not counted (transformers' convention). */
    public static final int IGNORE_INDEX = -100;

    private CausalLmLoss() {}

    /**
     * Per-example mean cross-entropy over the counted (answer) tokens.
     *
     * @param logits {@code [batch, T, vocab]}
     * @param labels {@code [batch, T]} token ids, {@value #IGNORE_INDEX} where not counted
     * @return {@code [batch]} fp32, attached to {@code logits}' manager; an example with no counted
     *     token has loss 0
     */
    public static NDArray perExample(NDArray logits, NDArray labels) {
        checkShapes(logits, labels);
        NDManager out = logits.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray picked = tokenLogProbs(logits, labels); // [B, T-1], 0 where not counted
            picked.attach(scope);
            NDArray lb = labels.get(new NDIndex(":, 1:"));
            lb.attach(scope);
            NDArray countedF = lb.neq(scalar(scope, IGNORE_INDEX, lb.getDataType())).toType(DataType.FLOAT32, false);
            NDArray nll = picked.sum(new int[] {1}).neg();
            NDArray count = countedF.sum(new int[] {1}).maximum(scalar(scope, 1, DataType.FLOAT32));
            NDArray loss = nll.div(count);
            loss.attach(out);
            return loss;
        }
    }

    /**
     * Log-probability of each next token, as policy-gradient losses (GRPO) need.
     *
     * @param logits {@code [batch, T, vocab]}
     * @param labels {@code [batch, T]}; position {@code t} of the result scores {@code labels[t+1]}
     * @return {@code [batch, T-1]} fp32, 0 where the label is {@value #IGNORE_INDEX}; attached to
     *     {@code logits}' manager
     */
    public static NDArray tokenLogProbs(NDArray logits, NDArray labels) {
        checkShapes(logits, labels);
        NDManager out = logits.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray lg = logits.get(new NDIndex(":, :-1, :"));
            lg.attach(scope);
            NDArray lb = labels.get(new NDIndex(":, 1:"));
            lb.attach(scope);
            lb = lb.toType(DataType.INT64, false);
            NDArray logp = lg.toType(DataType.FLOAT32, false).logSoftmax(-1);
            NDArray picked = logp.gather(lb.maximum(scalar(scope, 0, DataType.INT64)).expandDims(-1), -1).squeeze(-1);
            NDArray counted = lb.neq(scalar(scope, IGNORE_INDEX, DataType.INT64)).toType(DataType.FLOAT32, false);
            NDArray result = picked.mul(counted);
            result.attach(out);
            return result;
        }
    }

    /**
     * A 0-dim array made on the device by a fill (DJL's {@code neq(Number)} and friends copy the scalar
     * from the host, which on a GPU waits for all queued work).
     */
    private static NDArray scalar(NDManager m, float value, DataType dtype) {
        return m.full(new Shape(), value, dtype);
    }

    private static void checkShapes(NDArray logits, NDArray labels) {
        Shape ls = logits.getShape();
        if (ls.dimension() != 3 || labels.getShape().dimension() != 2 || ls.get(0) != labels.getShape().get(0)
                || ls.get(1) != labels.getShape().get(1)) {
            throw new IllegalArgumentException("logits " + ls + " and labels " + labels.getShape()
                    + " must be [batch, T, vocab] and [batch, T]");
        }
    }

    /** The mean of {@link #perExample} over the batch (each example weighs the same), a scalar. */
    public static NDArray mean(NDArray logits, NDArray labels) {
        try (NDArray per = perExample(logits, labels)) {
            NDArray m = per.mean();
            return m;
        }
    }
}
