package ai.lorapar.gpu;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;
import java.util.Random;

/**
 * Helpers for GPU tests: run the same computation on the CPU (fp32 reference) and on the GPU
 * (fp32 or bf16) through DJL's normal NDArray API and compare.
 *
 * <p>Tolerances (documented here, used by the tests): fp32 GPU vs CPU: |a-e| <= 1e-4 + 1e-4*|e|
 * for pointwise ops and reductions, 1e-3 + 1e-4*|e| for matrix products (different summation
 * order). bf16 on GPU vs the fp32 CPU result of the same op on the bf16-rounded inputs: |a-e| <=
 * 2e-2 + 2e-2*|e| (bf16 keeps 8 significant bits, 2^-8 = 0.0039 relative rounding of the
 * output), for matrix products |a-e| <= 6e-2 + 2e-2*|e| (reduced-precision split-K reduction).
 */
final class GpuTesting {

    static final double FP32_ATOL = 1e-4;
    static final double FP32_RTOL = 1e-4;
    static final double FP32_MATMUL_ATOL = 1e-3;
    static final double BF16_ATOL = 2e-2;
    static final double BF16_RTOL = 2e-2;
    static final double BF16_MATMUL_ATOL = 6e-2;

    private GpuTesting() {}

    /** Builds inputs of one data type on one manager; bf16 rounding can be applied for references. */
    static final class In {
        final NDManager manager;
        final DataType dtype;
        final boolean roundOnly;

        In(NDManager manager, DataType dtype, boolean roundOnly) {
            this.manager = manager;
            this.dtype = dtype;
            this.roundOnly = roundOnly;
        }

        NDArray x(float[] data, long... shape) {
            Shape s = new Shape(shape);
            NDArray a = manager.create(Arrays.copyOf(data, Math.toIntExact(s.size())), s);
            if (dtype == DataType.FLOAT32) {
                return a;
            }
            NDArray cast = a.toType(dtype, false);
            return roundOnly ? cast.toType(DataType.FLOAT32, false) : cast;
        }

        boolean isGpu() {
            return manager.getDevice().isGpu();
        }
    }

    /** A computation written once, run on several devices and data types. */
    interface Op {
        NDArray apply(In in);
    }

    static float[] data(long seed, int n, float lo, float hi) {
        Random r = new Random(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = lo + (hi - lo) * r.nextFloat();
        }
        return out;
    }

    static float[] f32(NDArray a) {
        return a.toDevice(Device.cpu(), false).toType(DataType.FLOAT32, false).toFloatArray();
    }

    static void assertClose(String what, NDArray actual, NDArray expected, double atol, double rtol) {
        assertThat(actual.getShape()).as(what + " shape").isEqualTo(expected.getShape());
        float[] a = f32(actual);
        float[] e = f32(expected);
        assertThat(a).as(what + " size").hasSameSizeAs(e);
        for (int i = 0; i < a.length; i++) {
            double tol = atol + rtol * Math.abs(e[i]);
            if (Float.isNaN(e[i])) {
                assertThat(a[i]).as(what + " [" + i + "]").isNaN();
            } else if (Float.isInfinite(e[i])) {
                assertThat(a[i]).as(what + " [" + i + "]").isEqualTo(e[i]);
            } else {
                assertThat((double) Math.abs(a[i] - e[i]))
                        .as(what + " [" + i + "]: " + a[i] + " vs " + e[i])
                        .isLessThanOrEqualTo(tol);
            }
        }
    }

    /** fp32 on GPU vs fp32 on CPU: same shape, same dtype, close values, result on the GPU. */
    static void checkFp32(String what, NDManager cpu, NDManager gpu, Op op, double atol) {
        NDArray expected = op.apply(new In(cpu, DataType.FLOAT32, false));
        NDArray actual = op.apply(new In(gpu, DataType.FLOAT32, false));
        assertThat(actual.getDevice()).as(what + " device").isEqualTo(gpu.getDevice());
        assertThat(actual.getDataType()).as(what + " dtype").isEqualTo(expected.getDataType());
        assertClose(what, actual, expected, atol, FP32_RTOL);
    }

    /** bf16 on GPU vs fp32 on CPU of the bf16-rounded inputs. */
    static void checkBf16(String what, NDManager cpu, NDManager gpu, Op op, double atol) {
        NDArray expected = op.apply(new In(cpu, DataType.BFLOAT16, true));
        NDArray actual = op.apply(new In(gpu, DataType.BFLOAT16, false));
        assertThat(actual.getDevice()).as(what + " device").isEqualTo(gpu.getDevice());
        if (expected.getDataType() == DataType.FLOAT32) {
            assertThat(actual.getDataType()).as(what + " dtype").isEqualTo(DataType.BFLOAT16);
        } else {
            assertThat(actual.getDataType()).as(what + " dtype").isEqualTo(expected.getDataType());
        }
        assertClose(what, actual, expected, atol, BF16_RTOL);
    }
}
