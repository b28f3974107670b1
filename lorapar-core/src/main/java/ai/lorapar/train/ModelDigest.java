package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.model.DecoderModel;

import java.util.Locale;

/**
 * A cheap digest of a model's weights for checkpoint fingerprints: Σ|w| and Σw² over all stored
 * weights, from one device reduction per tensor and one host read. Sums in fp32 differ in their last
 * digits between devices, so digests match within a relative 1e-4 (any real change of a model moves
 * them far more).
 *
 * @param sumAbs Σ|w|
 * @param sumSquares Σw²
 * @param elements the number of weights
 */
public record ModelDigest(double sumAbs, double sumSquares, long elements) {
    static final double RELATIVE_TOLERANCE = 1e-4;

    /** The digest of {@code model}'s weights as they are now (in training: before the first step). */
    public static ModelDigest of(DecoderModel model) {
        try (NDManager s = model.manager().newSubManager()) {
            NDList sums = new NDList();
            long n = 0;
            for (NDArray w : model.weights().values()) {
                NDArray d = w.stopGradient();
                d.attach(s);
                NDArray f = d.getDataType() == DataType.FLOAT32 ? d : d.toType(DataType.FLOAT32, false);
                f.attach(s);
                NDArray abs = f.abs().sum();
                abs.attach(s);
                NDArray sq = f.square().sum();
                sq.attach(s);
                sums.add(abs);
                sums.add(sq);
                n += w.size();
            }
            NDArray all = NDArrays.stack(sums);
            all.attach(s);
            float[] v = all.toFloatArray();
            double sumAbs = 0;
            double sumSq = 0;
            for (int i = 0; i < v.length; i += 2) {
                sumAbs += v[i];
                sumSq += v[i + 1];
            }
            return new ModelDigest(sumAbs, sumSq, n);
        }
    }

    /** Whether {@code other} is the digest of the same weights (see the class comment). */
    public boolean matches(ModelDigest other) {
        return elements == other.elements && close(sumAbs, other.sumAbs) && close(sumSquares, other.sumSquares);
    }

    private static boolean close(double a, double b) {
        return Math.abs(a - b) <= RELATIVE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b)) || a == b;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "weights[n=%d, sum|w|=%.6g, sum w^2=%.6g]", elements, sumAbs, sumSquares);
    }
}
