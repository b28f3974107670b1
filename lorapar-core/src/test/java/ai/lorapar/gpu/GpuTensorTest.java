package ai.lorapar.gpu;

import static ai.lorapar.gpu.GpuTesting.assertClose;
import static ai.lorapar.gpu.GpuTesting.checkBf16;
import static ai.lorapar.gpu.GpuTesting.checkFp32;
import static ai.lorapar.gpu.GpuTesting.data;
import static ai.lorapar.gpu.GpuTesting.f32;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.GradientCollector;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.gpu.GpuTesting.Op;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ShortBuffer;

/**
 * Engine start-up, capabilities, creation, dtype/device conversion, read-back, indexing,
 * gather/scatter, random sampling, autograd and a bf16 matmul measurement on the GPU.
 */
@Tag("gpu")
class GpuTensorTest {

    private static final float[] SYM = data(11, 96, -2f, 2f);

    private NDManager cpu;
    private NDManager gpu;

    @BeforeEach
    void open() {
        cpu = NDManager.newBaseManager(Device.cpu());
        gpu = NDManager.newBaseManager(Device.gpu());
    }

    @AfterEach
    void close() {
        gpu.close();
        cpu.close();
    }

    private void both(String what, Op op) {
        checkFp32(what, cpu, gpu, op, GpuTesting.FP32_ATOL);
    }

    @Test
    void engineAdvertisesCudaAndBf16() {
        Engine engine = Engine.getInstance();
        assertThat(engine.getEngineName()).isEqualTo("PyTorch");
        assertThat(engine.hasCapability(EngineSupport.CAPABILITY_LORAPAR_JNI)).isTrue();
        assertThat(engine.hasCapability("CUDA")).isTrue();
        assertThat(engine.hasCapability("BF16")).isTrue();
        assertThat(EngineSupport.supportsBf16(engine)).isTrue();
        assertThat(EngineSupport.computeDtype(engine, Device.gpu())).isEqualTo(DataType.BFLOAT16);
        assertThat(EngineSupport.computeDtype(engine, Device.cpu())).isEqualTo(DataType.FLOAT32);
        NDArray a = gpu.create(new float[] {1, 2, 3});
        assertThat(a.getDevice()).isEqualTo(Device.gpu());
    }

    @Test
    void cppErrorsBecomeEngineExceptions() {
        NDArray a = gpu.ones(new Shape(2, 3));
        NDArray b = gpu.ones(new Shape(4, 5));
        assertThatThrownBy(() -> a.add(b)).isInstanceOf(EngineException.class);
        // the engine keeps working afterwards
        assertThat(a.sum().getFloat()).isEqualTo(6f);
    }

    @Test
    void creation() {
        both("zeros", in -> in.manager.zeros(new Shape(3, 4)));
        both("ones", in -> in.manager.ones(new Shape(3, 4)));
        both("full", in -> in.manager.full(new Shape(2, 5), 2.5f));
        both("arange", in -> in.manager.arange(0f, 10f, 0.5f));
        both("arange int", in -> in.manager.arange(0, 12, 3));
        both("linspace", in -> in.manager.linspace(-1f, 1f, 9));
        both("eye", in -> in.manager.eye(3));
        both("eye rect", in -> in.manager.eye(3, 4, 0, DataType.FLOAT32));
        both("zerosLike", in -> in.x(SYM, 4, 6).zerosLike());
        both("onesLike", in -> in.x(SYM, 4, 6).onesLike());
        both("create long", in -> in.manager.create(new long[] {1, -2, 3}));
        both("create int", in -> in.manager.create(new int[] {7, 8}));
        both("create boolean", in -> in.manager.create(new boolean[] {true, false}));
        NDArray e = gpu.create(new Shape(2, 3), DataType.BFLOAT16);
        assertThat(e.getShape()).isEqualTo(new Shape(2, 3));
        assertThat(e.getDataType()).isEqualTo(DataType.BFLOAT16);
        assertThat(e.getDevice()).isEqualTo(Device.gpu());
    }

    @Test
    void dtypeConversionsIncludingBf16AndInt16() {
        assertThat(DataType.BFLOAT16.ordinal()).isEqualTo(11);
        assertThat(DataType.INT16.ordinal()).isEqualTo(15);
        float[] values = {0f, 1f, 2f, 3f, -4f};
        DataType[] types = {
            DataType.FLOAT32, DataType.FLOAT64, DataType.FLOAT16, DataType.BFLOAT16,
            DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64
        };
        for (DataType t : types) {
            NDArray a = gpu.create(values).toType(t, false);
            assertThat(a.getDataType()).as(t.toString()).isEqualTo(t);
            assertThat(a.getDevice()).isEqualTo(Device.gpu());
            assertThat(f32(a)).as(t.toString()).containsExactly(values);
            NDArray back = a.toDevice(Device.cpu(), true);
            assertThat(back.getDataType()).isEqualTo(t);
            assertThat(f32(back)).containsExactly(values);
        }
        NDArray u8 = gpu.create(new float[] {0, 1, 255}).toType(DataType.UINT8, false);
        assertThat(f32(u8)).containsExactly(0f, 1f, 255f);
        NDArray bool = gpu.create(values).toType(DataType.BOOLEAN, false);
        assertThat(bool.getDataType()).isEqualTo(DataType.BOOLEAN);
        assertThat(bool.toBooleanArray()).containsExactly(false, true, true, true, true);
        // INT16 read-back through a byte buffer
        ShortBuffer shorts = gpu.create(values).toType(DataType.INT16, false).toByteBuffer().asShortBuffer();
        short[] s = new short[shorts.remaining()];
        shorts.get(s);
        assertThat(s).containsExactly((short) 0, (short) 1, (short) 2, (short) 3, (short) -4);
        // bf16 rounding: 1 + 2^-9 is not representable, 1 + 2^-7 is
        NDArray r = gpu.create(new float[] {1f + 1f / 512, 1f + 1f / 128}).toType(DataType.BFLOAT16, false);
        assertThat(f32(r)).containsExactly(1f, 1f + 1f / 128);
        // bf16 created directly from a buffer (no fp32 detour)
        ByteBuffer raw = gpu.create(new float[] {1.5f, -2f}).toType(DataType.BFLOAT16, false).toByteBuffer();
        NDArray fromRaw = gpu.create(raw, new Shape(2), DataType.BFLOAT16);
        assertThat(f32(fromRaw)).containsExactly(1.5f, -2f);
    }

    @Test
    void copyReadBackAndSet() {
        NDArray a = gpu.create(SYM, new Shape(8, 12));
        assertThat(a.toFloatArray()).containsExactly(SYM);
        NDArray t = a.transpose(); // non-contiguous read-back
        assertThat(f32(t)).containsExactly(f32(cpu.create(SYM, new Shape(8, 12)).transpose()));
        NDArray d = a.duplicate();
        d.addi(1f);
        assertThat(a.toFloatArray()).containsExactly(SYM);
        NDArray s = gpu.zeros(new Shape(3));
        s.set(new float[] {4, 5, 6});
        assertThat(s.toFloatArray()).containsExactly(4f, 5f, 6f);
        NDArray c = a.toDevice(Device.cpu(), true).toDevice(Device.gpu(), true);
        assertThat(c.toFloatArray()).containsExactly(SYM);
        assertThat(a.get(2, 3).getFloat()).isEqualTo(SYM[2 * 12 + 3]);
        assertThat(a.get(5).toFloatArray()).containsExactly(java.util.Arrays.copyOfRange(SYM, 60, 72));
        assertThat(a.contentEquals(a.duplicate())).isTrue();
        assertThat(a.contentEquals(d)).isFalse();
    }

    @Test
    void indexing() {
        both("slice", in -> in.x(SYM, 4, 6, 4).get("1:3, ::2, -1"));
        both("fixed+ellipsis", in -> in.x(SYM, 4, 6, 4).get("..., 2"));
        both("open slices", in -> in.x(SYM, 4, 6, 4).get(":2, 1:, :"));
        both("negative index", in -> in.x(SYM, 4, 6, 4).get("-1, -2:"));
        both("take", in -> in.x(SYM, 4, 24).take(in.manager.create(new long[] {0, 5, 95, 7})));
        both("advanced index", in -> in.x(SYM, 4, 24).get(new NDIndex("{}, 1:3", in.manager.create(new long[] {3, 0, 3}))));
        both("boolean mask", in -> in.x(SYM, 4, 24).booleanMask(in.x(SYM, 4, 24).gt(0.5f)));
        both("boolean index", in -> in.x(SYM, 96).get(in.x(SYM, 96).lt(0)));
        both("nonzero", in -> in.x(SYM, 4, 24).gt(1f).nonzero());
        both("gather", in -> in.x(SYM, 4, 24).gather(in.manager.create(new long[] {0, 2, 23, 1, 1, 1, 5, 6}, new Shape(4, 2)), 1));
        both("scatter", in -> in.x(SYM, 4, 6).scatter(
                in.manager.create(new long[] {0, 1, 2, 3, 0, 1}, new Shape(1, 6)), in.x(SYM, 1, 6).mul(10), 0));
        both("put", in -> in.x(SYM, 4, 6).put(in.manager.create(new long[] {0, 7, 23}), in.manager.create(new float[] {9, 8, 7})));
        both("set slice scalar", in -> {
            NDArray a = in.x(SYM, 4, 6);
            a.set(new NDIndex("1:3, 2"), 42f);
            return a;
        });
        both("set slice array", in -> {
            NDArray a = in.x(SYM, 4, 6);
            a.set(new NDIndex("0, :"), in.manager.arange(6f));
            return a;
        });
        both("set advanced", in -> {
            NDArray a = in.x(SYM, 4, 6);
            a.set(new NDIndex("{}, :", in.manager.create(new long[] {1, 3})), -1f);
            return a;
        });
        both("set mask", in -> {
            NDArray a = in.x(SYM, 4, 6);
            a.set(a.lt(0), 0f);
            return a;
        });
        checkBf16("bf16 slice+gather", cpu, gpu,
                in -> in.x(SYM, 4, 24).get("1:3, :").gather(in.manager.create(new long[] {3, 2, 1, 0}, new Shape(2, 2)), 1),
                GpuTesting.BF16_ATOL);
    }

    @Test
    void sortTopKUnique() {
        NDArray a = gpu.create(new float[] {3, 1, 2, 5, 4});
        assertThat(a.sort().toFloatArray()).containsExactly(1, 2, 3, 4, 5);
        assertThat(a.argSort().toLongArray()).containsExactly(1, 2, 0, 4, 3);
        assertThat(a.argSort(0, false).toLongArray()).containsExactly(3, 4, 0, 2, 1);
        NDList top = a.topK(2, 0);
        assertThat(top.get(0).toFloatArray()).containsExactly(5, 4);
        assertThat(top.get(1).toLongArray()).containsExactly(3, 4);
        NDList u = gpu.create(new float[] {2, 1, 2, 3, 1}).unique(true, true, true);
        assertThat(u.get(0).toFloatArray()).containsExactly(1, 2, 3);
        assertThat(f32(u.get(2))).containsExactly(2, 2, 1);
        NDArray bf = gpu.create(new float[] {3, 1, 2, 5, 4}).toType(DataType.BFLOAT16, false);
        assertThat(f32(bf.sort())).containsExactly(1, 2, 3, 4, 5);
        assertThat(bf.argMax().getLong()).isEqualTo(3L);
        assertThat(f32(bf.topK(1, 0).get(0))).containsExactly(5f);
    }

    @Test
    void randomSampling() {
        Engine.getInstance().setRandomSeed(1234);
        NDArray n = gpu.randomNormal(0f, 1f, new Shape(200_000), DataType.FLOAT32);
        assertThat(n.getDevice()).isEqualTo(Device.gpu());
        assertThat(n.mean().getFloat()).isBetween(-0.02f, 0.02f);
        assertThat(n.square().mean().getFloat()).isBetween(0.97f, 1.03f);
        NDArray u = gpu.randomUniform(-1f, 3f, new Shape(100_000), DataType.FLOAT32);
        assertThat(u.min().getFloat()).isGreaterThanOrEqualTo(-1f);
        assertThat(u.max().getFloat()).isLessThan(3f);
        assertThat(u.mean().getFloat()).isBetween(0.97f, 1.03f);
        NDArray i = gpu.randomInteger(0, 7, new Shape(10_000), DataType.INT64);
        assertThat(i.getDataType()).isEqualTo(DataType.INT64);
        assertThat(i.min().getLong()).isGreaterThanOrEqualTo(0L);
        assertThat(i.max().getLong()).isEqualTo(6L);
        NDArray p = gpu.randomPermutation(50);
        assertThat(p.sort().toLongArray()).containsExactly(java.util.stream.LongStream.range(0, 50).toArray());
        NDArray b = gpu.randomNormal(0f, 2f, new Shape(100_000), DataType.BFLOAT16);
        assertThat(b.getDataType()).isEqualTo(DataType.BFLOAT16);
        assertThat(b.toType(DataType.FLOAT32, false).square().mean().getFloat()).isBetween(3.8f, 4.2f);
        NDArray kept = Dropout.dropout(gpu.ones(new Shape(100_000)), 0.25f, true).head();
        float keptFraction = kept.gt(0).toType(DataType.FLOAT32, false).mean().getFloat();
        assertThat(keptFraction).isBetween(0.74f, 0.76f);
        assertThat(kept.max().getFloat()).isCloseTo(1f / 0.75f, org.assertj.core.data.Offset.offset(1e-5f));
        Engine.getInstance().setRandomSeed(7);
        float[] r1 = gpu.randomNormal(new Shape(5)).toFloatArray();
        Engine.getInstance().setRandomSeed(7);
        float[] r2 = gpu.randomNormal(new Shape(5)).toFloatArray();
        assertThat(r1).containsExactly(r2);
    }

    @Test
    void embedding() {
        both("embedding", in -> Embedding.embedding(
                in.manager.create(new long[] {2, 0, 2, 5}, new Shape(2, 2)), in.x(SYM, 6, 16), ai.djl.ndarray.types.SparseFormat.DENSE).head());
    }

    @Test
    void autogradFp32AndBf16() {
        for (DataType t : new DataType[] {DataType.FLOAT32, DataType.BFLOAT16}) {
            NDArray x = gpu.create(new float[] {1, 2, 3}).toType(t, false);
            NDArray w = gpu.create(new float[] {0.5f, -1f, 2f}).toType(t, false);
            x.setRequiresGradient(true);
            w.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray y = x.mul(x).mul(w).sum();
                gc.backward(y);
            }
            assertThat(x.hasGradient()).isTrue();
            assertThat(x.getGradient().getDataType()).isEqualTo(t);
            assertThat(f32(x.getGradient())).as(t.toString()).containsExactly(1f, -4f, 12f);
            assertThat(f32(w.getGradient())).as(t.toString()).containsExactly(1f, 4f, 9f);
            assertThat(x.stopGradient().hasGradient()).isFalse();
        }
        // gradient through matmul, softmax, log-softmax, layer ops: GPU fp32 vs CPU fp32
        float[] g = new float[2];
        for (int k = 0; k < 2; k++) {
            NDManager m = k == 0 ? cpu : gpu;
            NDArray a = m.create(data(21, 4 * 8, -1f, 1f), new Shape(4, 8));
            NDArray b = m.create(data(22, 8 * 3, -1f, 1f), new Shape(8, 3));
            b.setRequiresGradient(true);
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray loss = a.matMul(b).logSoftmax(1).get(":, 0").neg().mean();
                gc.backward(loss);
            }
            g[k] = b.getGradient().abs().sum().getFloat();
            assertThat(b.getGradient().getDevice()).isEqualTo(m.getDevice());
        }
        assertThat(g[1]).isCloseTo(g[0], org.assertj.core.data.Offset.offset(1e-4f));
    }

    @Test
    void djlOptimizersUseTheUpdateNatives() {
        float[] w0 = {1f, -2f, 3f, 0.5f};
        float[] g0 = {0.3f, -0.2f, -4f, 1e-3f};
        for (NDManager m : new NDManager[] {cpu, gpu}) {
            // Adam, one step: bias-corrected m/sqrt(v) = sign(g), so w - lr * sign(g)
            NDArray w = m.create(w0);
            Optimizer.adam().optLearningRateTracker(Tracker.fixed(0.1f)).build().update("w", w, m.create(g0));
            assertClose("adam " + m.getDevice(), w, m.create(new float[] {0.9f, -1.9f, 3.1f, 0.4f}), 1e-4, 1e-4);
            // SGD without momentum: w - lr * g
            NDArray v = m.create(w0);
            Optimizer.sgd().setLearningRateTracker(Tracker.fixed(0.5f)).build().update("v", v, m.create(g0));
            assertClose("sgd " + m.getDevice(), v, m.create(new float[] {0.85f, -1.9f, 5f, 0.4995f}), 1e-5, 1e-5);
            // SGD with momentum, two steps: state = -lr*g, then 0.9*state - lr*g
            NDArray u = m.create(w0);
            Optimizer sgdm = Optimizer.sgd().setLearningRateTracker(Tracker.fixed(0.5f)).optMomentum(0.9f).build();
            sgdm.update("u", u, m.create(g0));
            sgdm.update("u", u, m.create(g0));
            float[] expected = new float[4];
            for (int i = 0; i < 4; i++) {
                expected[i] = w0[i] - 0.5f * g0[i] - 1.9f * 0.5f * g0[i];
            }
            assertClose("sgd momentum " + m.getDevice(), u, m.create(expected), 1e-5, 1e-5);
        }
        // AdamW with weight decay, bf16-free fp32 path: GPU matches CPU
        checkFp32("adamW", cpu, gpu, in -> {
            NDArray w = in.x(SYM, 4, 8);
            Optimizer opt = Optimizer.adamW().optLearningRateTracker(Tracker.fixed(0.01f)).build();
            for (int i = 0; i < 3; i++) {
                opt.update("w", w, in.x(data(31 + i, 32, -1f, 1f), 4, 8));
            }
            return w;
        }, 1e-5);
    }

    @Test
    void bf16MatmulThroughput() {
        int n = 8192;
        NDArray a = gpu.randomNormal(0f, 1f, new Shape(n, n), DataType.BFLOAT16);
        NDArray b = gpu.randomNormal(0f, 1f, new Shape(n, n), DataType.BFLOAT16);
        for (int i = 0; i < 3; i++) {
            a.matMul(b).close();
        }
        a.get(0, 0).toType(DataType.FLOAT32, false).getFloat(); // sync
        int iters = 30;
        long t0 = System.nanoTime();
        NDArray c = null;
        for (int i = 0; i < iters; i++) {
            if (c != null) {
                c.close();
            }
            c = a.matMul(b);
        }
        c.get(0, 0).toType(DataType.FLOAT32, false).getFloat(); // sync
        double s = (System.nanoTime() - t0) / 1e9;
        double tflops = 2.0 * n * n * n * iters / s / 1e12;
        System.out.printf("BENCH bf16 matmul %dx%dx%d: %.1f TFLOP/s (%d iters, %.3f s)%n", n, n, n, tflops, iters, s);
        assertThat(c.getDataType()).isEqualTo(DataType.BFLOAT16);
        assertThat(tflops).isGreaterThan(50.0);
        assertClose("bf16 matmul row", c.get("0, 0:8"),
                a.get("0:1, :").toType(DataType.FLOAT32, false).matMul(b.get(":, 0:8").toType(DataType.FLOAT32, false)).reshape(8),
                2.0, 2e-2);
    }
}
