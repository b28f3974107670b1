package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The rank-r factorisations behind PiSSA and OLoRA initialisation, in NDArray ops on the weight's
 * device. DJL has no SVD or QR, so the large products run on the device and only r×r (or
 * (r+p)×(r+p)) problems are solved on the host:
 *
 * <ul>
 *   <li>{@link #orthonormalize}: CholeskyQR2 — Q = Y·R⁻¹ with R from the Cholesky factor of the
 *       small Gram matrix YᵀY, done twice for orthogonality to working precision;
 *   <li>{@link #topSingular}: randomised subspace iteration (Halko, Martinsson &amp; Tropp 2011) with
 *       oversampling and power iterations, then an eigen-decomposition of the small BBᵀ;
 *   <li>{@link #thinQr}: the first r columns of W's QR decomposition, Q_r = orth(W[:, :r]) and
 *       R_r = Q_rᵀ·W.
 * </ul>
 *
 * <p>Inputs are fp32 (other types are widened); results are fp32 arrays attached to the caller's
 * manager.
 */
public final class LowRankDecomposition {
    private LowRankDecomposition() {}

    /** Top-r singular triplets: W ≈ U·diag(S)·Vᵀ with U {@code out×r}, S {@code r}, Vᵀ {@code r×in}. */
    public record Svd(NDArray u, NDArray s, NDArray vt) {}

    /** First r columns of Q and rows of R of W = Q·R: Q_r {@code out×r}, R_r {@code r×in}. */
    public record ThinQr(NDArray q, NDArray r) {}

    /**
     * Orthonormal columns spanning {@code y} ({@code m×k}, k small, full column rank).
     *
     * @throws ArithmeticException when the columns are (numerically) linearly dependent
     */
    public static NDArray orthonormalize(NDArray y, NDManager manager) {
        try (NDManager scope = manager.newSubManager(y.getDevice())) {
            NDArray q = y.toType(DataType.FLOAT32, true);
            q.attach(scope);
            for (int pass = 0; pass < 2; pass++) {
                NDArray gram = attach(q.transpose().matMul(q), scope);
                double[][] l = SmallMatrices.cholesky(toHost(gram));
                // Y = Q·Lᵀ  →  Q = Y·(Lᵀ)⁻¹ = Y·(L⁻¹)ᵀ
                double[][] rInv = SmallMatrices.transpose(SmallMatrices.invertLower(l));
                q = attach(q.matMul(toDevice(rInv, scope, y)), scope);
            }
            q.attach(manager);
            return q;
        }
    }

    /**
     * The top-{@code rank} singular triplets of {@code w} ({@code out×in}).
     *
     * @param oversample extra subspace columns (10 is the usual choice)
     * @param powerIterations subspace iterations; each sharpens the separation of the top-r triplets
     *     from the rest (4 suits weight matrices with slowly decaying spectra)
     * @param seed seed of the engine's generator for the random start
     */
    public static Svd topSingular(NDArray w, int rank, int oversample, int powerIterations, long seed, NDManager manager) {
        long out = w.getShape().get(0);
        long in = w.getShape().get(1);
        int k = (int) Math.min(rank + oversample, Math.min(out, in));
        if (rank < 1 || rank > Math.min(out, in)) {
            throw new IllegalArgumentException("rank " + rank + " does not fit a " + w.getShape() + " matrix");
        }
        try (NDManager scope = manager.newSubManager(w.getDevice())) {
            NDArray w32 = attach(w.toType(DataType.FLOAT32, true), scope);
            NDArray wt = attach(w32.transpose(), scope);
            scope.getEngine().setRandomSeed((int) (seed ^ (seed >>> 32)));
            NDArray omega = scope.randomNormal(0f, 1f, new Shape(in, k), DataType.FLOAT32, w.getDevice());
            NDArray q = orthonormalize(attach(w32.matMul(omega), scope), scope);
            for (int i = 0; i < powerIterations; i++) {
                NDArray z = orthonormalize(attach(wt.matMul(q), scope), scope);
                q = orthonormalize(attach(w32.matMul(z), scope), scope);
            }
            NDArray b = attach(q.transpose().matMul(w32), scope); // k×in, W ≈ Q·B
            double[][][] eig = SmallMatrices.symmetricEigen(toHost(attach(b.matMul(b.transpose()), scope)));
            double[] sigma = new double[rank];
            double[][] ub = new double[k][rank];
            double[][] scaled = new double[k][rank]; // U_b / σ, so that Vᵀ = (U_b/σ)ᵀ·B
            for (int c = 0; c < rank; c++) {
                sigma[c] = Math.sqrt(Math.max(eig[0][0][c], 0));
                for (int row = 0; row < k; row++) {
                    ub[row][c] = eig[1][row][c];
                    scaled[row][c] = sigma[c] > 0 ? eig[1][row][c] / sigma[c] : 0;
                }
            }
            NDArray u = q.matMul(toDevice(ub, scope, w));
            NDArray vt = toDevice(scaled, scope, w).transpose().matMul(b);
            float[] s = new float[rank];
            for (int c = 0; c < rank; c++) {
                s[c] = (float) sigma[c];
            }
            NDArray sArr = manager.create(s).toDevice(w.getDevice(), false);
            u.attach(manager);
            vt.attach(manager);
            sArr.attach(manager);
            return new Svd(u, sArr, vt);
        }
    }

    /** Q_r and R_r of W = Q·R (thin), from the first {@code rank} columns of {@code w}. */
    public static ThinQr thinQr(NDArray w, int rank, NDManager manager) {
        if (rank < 1 || rank > Math.min(w.getShape().get(0), w.getShape().get(1))) {
            throw new IllegalArgumentException("rank " + rank + " does not fit a " + w.getShape() + " matrix");
        }
        try (NDManager scope = manager.newSubManager(w.getDevice())) {
            NDArray w32 = attach(w.toType(DataType.FLOAT32, true), scope);
            NDArray q = orthonormalize(attach(w32.get(":, :" + rank), scope), scope);
            NDArray r = q.transpose().matMul(w32);
            q.attach(manager);
            r.attach(manager);
            return new ThinQr(q, r);
        }
    }

    private static double[][] toHost(NDArray small) {
        long rows = small.getShape().get(0);
        long cols = small.getShape().get(1);
        double[] flat = small.toType(DataType.FLOAT64, false).toDoubleArray();
        double[][] out = new double[(int) rows][(int) cols];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(flat, (int) (i * cols), out[i], 0, (int) cols);
        }
        return out;
    }

    private static NDArray toDevice(double[][] small, NDManager scope, NDArray like) {
        float[] flat = new float[small.length * small[0].length];
        for (int i = 0; i < small.length; i++) {
            for (int j = 0; j < small[0].length; j++) {
                flat[i * small[0].length + j] = (float) small[i][j];
            }
        }
        return scope.create(flat, new Shape(small.length, small[0].length)).toDevice(like.getDevice(), false);
    }

    private static NDArray attach(NDArray a, NDManager scope) {
        a.attach(scope);
        return a;
    }
}
