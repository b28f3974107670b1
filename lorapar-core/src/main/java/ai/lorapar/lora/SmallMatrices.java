package ai.lorapar.lora;

/**
 * Dense linear algebra on tiny host matrices (at most a few dozen rows): the r×r problems that
 * remain after the large work has been done in NDArray ops on the device. Row-major double arrays.
 */
final class SmallMatrices {
    private SmallMatrices() {}

    /**
     * Lower-triangular L with L·Lᵀ = g for a symmetric positive definite g.
     *
     * @throws ArithmeticException when g is not numerically positive definite (rank-deficient input)
     */
    static double[][] cholesky(double[][] g) {
        int n = g.length;
        double[][] l = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = g[i][j];
                for (int k = 0; k < j; k++) {
                    s -= l[i][k] * l[j][k];
                }
                if (i == j) {
                    if (!(s > 1e-300)) {
                        throw new ArithmeticException("matrix is not positive definite at pivot " + i + " (rank-deficient columns?)");
                    }
                    l[i][i] = Math.sqrt(s);
                } else {
                    l[i][j] = s / l[j][j];
                }
            }
        }
        return l;
    }

    /** Inverse of a lower-triangular matrix. */
    static double[][] invertLower(double[][] l) {
        int n = l.length;
        double[][] inv = new double[n][n];
        for (int c = 0; c < n; c++) {
            inv[c][c] = 1 / l[c][c];
            for (int i = c + 1; i < n; i++) {
                double s = 0;
                for (int k = c; k < i; k++) {
                    s -= l[i][k] * inv[k][c];
                }
                inv[i][c] = s / l[i][i];
            }
        }
        return inv;
    }

    static double[][] transpose(double[][] a) {
        double[][] t = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                t[j][i] = a[i][j];
            }
        }
        return t;
    }

    /**
     * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations.
     *
     * @return {eigenvalues (descending) as a 1×n row, eigenvectors as columns of an n×n matrix}
     */
    static double[][][] symmetricEigen(double[][] sym) {
        int n = sym.length;
        double[][] a = new double[n][];
        for (int i = 0; i < n; i++) {
            a[i] = sym[i].clone();
        }
        double[][] v = new double[n][n];
        for (int i = 0; i < n; i++) {
            v[i][i] = 1;
        }
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0;
            double scale = 0;
            for (int i = 0; i < n; i++) {
                scale += a[i][i] * a[i][i];
                for (int j = i + 1; j < n; j++) {
                    off += a[i][j] * a[i][j];
                }
            }
            if (off <= 1e-30 * Math.max(scale, 1e-300)) {
                break;
            }
            for (int p = 0; p < n; p++) {
                for (int q = p + 1; q < n; q++) {
                    if (a[p][q] == 0) {
                        continue;
                    }
                    double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
                    double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    if (theta == 0) {
                        t = 1;
                    }
                    double c = 1 / Math.sqrt(t * t + 1);
                    double s = t * c;
                    for (int k = 0; k < n; k++) {
                        double akp = a[k][p];
                        double akq = a[k][q];
                        a[k][p] = c * akp - s * akq;
                        a[k][q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++) {
                        double apk = a[p][k];
                        double aqk = a[q][k];
                        a[p][k] = c * apk - s * aqk;
                        a[q][k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++) {
                        double vkp = v[k][p];
                        double vkq = v[k][q];
                        v[k][p] = c * vkp - s * vkq;
                        v[k][q] = s * vkp + c * vkq;
                    }
                }
            }
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        final double[][] diag = a;
        java.util.Arrays.sort(order, (x, y) -> Double.compare(diag[y][y], diag[x][x]));
        double[][] values = new double[1][n];
        double[][] vectors = new double[n][n];
        for (int c = 0; c < n; c++) {
            values[0][c] = a[order[c]][order[c]];
            for (int k = 0; k < n; k++) {
                vectors[k][c] = v[k][order[c]];
            }
        }
        return new double[][][] {values, vectors};
    }
}
