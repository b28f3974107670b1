package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

import java.util.Map;

/**
 * The trainers' NaN guard, run after the backward passes of a step and before its optimizer step: one
 * host read of (loss + Σ every gradient element, loss, the caller's own scalars), which is NaN or infinite
 * exactly when the loss or a gradient element is. On failure the culprit is found (more reads, on the
 * failure path only), every gradient is set to exact zeros and a {@link TrainingDivergedException} is
 * thrown, so no parameter and no optimizer state changes.
 */
public final class NonFiniteGuard {
    private NonFiniteGuard() {}

    /**
     * Checks a step and reads its scalars back in one transfer.
     *
     * @param stage the stage's name, for the exception
     * @param step the 1-based optimizer step about to be taken, for the exception
     * @param params the trained parameters, gradients attached
     * @param loss the step's loss, a scalar
     * @param extra more values to read in the same transfer (a 1-D array, any float type), or null
     * @param scope owns the temporaries
     * @return the loss followed by {@code extra}'s values
     * @throws TrainingDivergedException naming the loss or the first parameter with a non-finite gradient
     */
    public static float[] check(String stage, long step, Map<String, NDArray> params, NDArray loss, NDArray extra,
            NDManager scope) {
        NDList sums = new NDList(params.size() + 1);
        NDArray loss32 = attach(loss.toType(DataType.FLOAT32, false).reshape(1), scope);
        sums.add(loss32);
        for (NDArray p : params.values()) {
            NDArray g = attach(p.getGradient(), scope);
            sums.add(attach(attach(g.sum(), scope).toType(DataType.FLOAT32, false).reshape(1), scope));
        }
        NDArray all = attach(attach(NDArrays.concat(sums), scope).sum().reshape(1), scope);
        NDList read = new NDList(all, loss32);
        if (extra != null) {
            read.add(attach(extra.toType(DataType.FLOAT32, false).reshape(-1), scope));
        }
        float[] v = attach(NDArrays.concat(read), scope).toFloatArray();
        if (Float.isFinite(v[0])) {
            float[] out = new float[v.length - 1];
            System.arraycopy(v, 1, out, 0, out.length);
            return out;
        }
        String what;
        if (!Float.isFinite(v[1])) {
            what = "the loss is " + v[1];
        } else {
            what = "the gradient is not finite";
            for (Map.Entry<String, NDArray> e : params.entrySet()) {
                NDArray g = attach(e.getValue().getGradient(), scope);
                if (!Float.isFinite(attach(g.sum(), scope).getFloat())) {
                    what = "the gradient of '" + e.getKey() + "' has NaN or infinite elements";
                    break;
                }
            }
        }
        for (NDArray p : params.values()) {
            attach(p.getGradient(), scope).set(new NDIndex("..."), 0f); // exact zeros, NaN included
        }
        throw new TrainingDivergedException(stage, step, what);
    }

    private static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }
}
