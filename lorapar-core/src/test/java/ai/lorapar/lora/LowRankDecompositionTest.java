package ai.lorapar.lora;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class LowRankDecompositionTest extends DeviceTest {

    /** Orthonormal columns (m×k) by modified Gram-Schmidt in fp64: the reference. */
    private static double[][] orthonormalColumns(Random r, int m, int k) {
        double[][] q = new double[m][k];
        for (int c = 0; c < k; c++) {
            double[] v = new double[m];
            for (int i = 0; i < m; i++) {
                v[i] = r.nextGaussian();
            }
            for (int p = 0; p < c; p++) {
                double dot = 0;
                for (int i = 0; i < m; i++) {
                    dot += q[i][p] * v[i];
                }
                for (int i = 0; i < m; i++) {
                    v[i] -= dot * q[i][p];
                }
            }
            double norm = 0;
            for (double x : v) {
                norm += x * x;
            }
            norm = Math.sqrt(norm);
            for (int i = 0; i < m; i++) {
                q[i][c] = v[i] / norm;
            }
        }
        return q;
    }

    private NDArray toArray(double[][] a) {
        float[] flat = new float[a.length * a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                flat[i * a[0].length + j] = (float) a[i][j];
            }
        }
        return array(flat, a.length, a[0].length);
    }

    private static double[][] host(NDArray a) {
        float[] f = floats(a);
        int rows = (int) a.getShape().get(0);
        int cols = (int) a.getShape().get(1);
        double[][] out = new double[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[i][j] = f[i * cols + j];
            }
        }
        return out;
    }

    private static void assertOrthonormalColumns(double[][] q, double tol) {
        int k = q[0].length;
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++) {
                double dot = 0;
                for (double[] row : q) {
                    dot += row[a] * row[b];
                }
                assertThat(dot).as("q_%d·q_%d", a, b).isCloseTo(a == b ? 1 : 0, within(tol));
            }
        }
    }

    @Test
    void topSingularTripletsOfAMatrixWithKnownSpectrum() {
        Random rnd = new Random(1);
        int out = 48;
        int in = 32;
        double[] sigma = new double[in];
        for (int i = 0; i < in; i++) {
            sigma[i] = 10 * Math.pow(0.7, i); // 10, 7, 4.9, 3.43, ...
        }
        double[][] u = orthonormalColumns(rnd, out, in);
        double[][] v = orthonormalColumns(rnd, in, in);
        double[][] w = new double[out][in];
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) {
                for (int k = 0; k < in; k++) {
                    w[i][j] += u[i][k] * sigma[k] * v[j][k];
                }
            }
        }
        int rank = 4;
        LowRankDecomposition.Svd svd = LowRankDecomposition.topSingular(toArray(w), rank, 10, 4, 3, manager);
        assertThat(svd.u().getShape()).isEqualTo(new Shape(out, rank));
        assertThat(svd.vt().getShape()).isEqualTo(new Shape(rank, in));
        float[] s = floats(svd.s());
        for (int i = 0; i < rank; i++) {
            assertThat((double) s[i]).as("σ_%d", i).isCloseTo(sigma[i], within(1e-4 * sigma[0]));
        }
        assertOrthonormalColumns(host(svd.u()), 1e-5);
        assertOrthonormalColumns(SmallMatrices.transpose(host(svd.vt())), 1e-5);
        // U_r·diag(S_r)·V_rᵀ equals the exact rank-r truncation.
        double[][] uh = host(svd.u());
        double[][] vth = host(svd.vt());
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) {
                double got = 0;
                double want = 0;
                for (int k = 0; k < rank; k++) {
                    got += uh[i][k] * s[k] * vth[k][j];
                    want += u[i][k] * sigma[k] * v[j][k];
                }
                assertThat(got).as("(%d,%d)", i, j).isCloseTo(want, within(1e-4));
            }
        }
    }

    @Test
    void thinQrOfTheFirstColumns() {
        Random rnd = new Random(2);
        int out = 20;
        int in = 12;
        int rank = 5;
        double[][] w = new double[out][in];
        for (double[] row : w) {
            for (int j = 0; j < in; j++) {
                row[j] = rnd.nextGaussian();
            }
        }
        LowRankDecomposition.ThinQr qr = LowRankDecomposition.thinQr(toArray(w), rank, manager);
        double[][] q = host(qr.q());
        double[][] r = host(qr.r());
        assertThat(qr.q().getShape()).isEqualTo(new Shape(out, rank));
        assertThat(qr.r().getShape()).isEqualTo(new Shape(rank, in));
        assertOrthonormalColumns(q, 1e-5);
        // Q_r·R_r reproduces W's first r columns exactly (R_r upper-triangular there) and projects the rest.
        for (int i = 0; i < rank; i++) {
            for (int j = 0; j < i; j++) {
                assertThat(r[i][j]).as("R(%d,%d) below the diagonal", i, j).isCloseTo(0, within(1e-5));
            }
        }
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < rank; j++) {
                double got = 0;
                for (int k = 0; k < rank; k++) {
                    got += q[i][k] * r[k][j];
                }
                assertThat(got).isCloseTo(w[i][j], within(1e-5));
            }
        }
        // |diag R| agrees with an fp64 Gram-Schmidt of the same columns (signs are a convention).
        double[][] cols = new double[out][rank];
        for (int i = 0; i < out; i++) {
            System.arraycopy(w[i], 0, cols[i], 0, rank);
        }
        double[][] g = new double[rank][rank];
        for (int a = 0; a < rank; a++) {
            for (int b = 0; b < rank; b++) {
                for (int i = 0; i < out; i++) {
                    g[a][b] += cols[i][a] * cols[i][b];
                }
            }
        }
        double[][] l = SmallMatrices.cholesky(g); // WᵀW = RᵀR, so L = Rᵀ
        for (int i = 0; i < rank; i++) {
            assertThat(Math.abs(r[i][i])).isCloseTo(l[i][i], within(1e-4));
        }
    }

    @Test
    void smallEigenAndErrors() {
        double[][][] eig = SmallMatrices.symmetricEigen(new double[][] {{2, 1}, {1, 2}});
        assertThat(eig[0][0][0]).isCloseTo(3, within(1e-12));
        assertThat(eig[0][0][1]).isCloseTo(1, within(1e-12));
        assertThat(Math.abs(eig[1][0][0])).isCloseTo(Math.sqrt(0.5), within(1e-12));
        assertThatThrownBy(() -> SmallMatrices.cholesky(new double[][] {{1, 1}, {1, 1}}))
                .isInstanceOf(ArithmeticException.class).hasMessageContaining("positive definite");
        NDArray w = array(new float[6], 2, 3);
        assertThatThrownBy(() -> LowRankDecomposition.thinQr(w, 3, manager)).hasMessageContaining("rank 3");
        assertThatThrownBy(() -> LowRankDecomposition.topSingular(w, 0, 10, 2, 1, manager)).hasMessageContaining("rank 0");
    }
}
