package ai.lorapar.gpu;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.EngineSupport;

import java.util.Locale;

/**
 * Prints the engine's capabilities and matrix-product throughput per dtype. Run on the GPU machine
 * with {@code .ci/gpu/run ai.lorapar.gpu.GpuInfo [size...]}.
 */
public final class GpuInfo {

    private GpuInfo() {}

    public static void main(String[] args) {
        Engine engine = Engine.getInstance();
        Device device = Device.gpu();
        System.out.printf(Locale.ROOT, "engine %s %s, bf16=%s, lorapar JNI=%s, compute dtype on %s: %s%n",
                engine.getEngineName(), engine.getVersion(), EngineSupport.supportsBf16(engine),
                EngineSupport.isLoraparJni(engine), device, EngineSupport.computeDtype(engine, device));
        int[] sizes = args.length == 0 ? new int[] {1024, 4096, 8192} : new int[args.length];
        for (int i = 0; i < args.length; i++) {
            sizes[i] = Integer.parseInt(args[i]);
        }
        DataType[] types = EngineSupport.supportsBf16(engine)
                ? new DataType[] {DataType.FLOAT32, DataType.FLOAT16, DataType.BFLOAT16}
                : new DataType[] {DataType.FLOAT32, DataType.FLOAT16};
        try (NDManager m = NDManager.newBaseManager(device)) {
            for (DataType t : types) {
                for (int n : sizes) {
                    try (NDManager sub = m.newSubManager()) {
                        NDArray a = sub.randomNormal(0f, 1f, new Shape(n, n), t);
                        NDArray b = sub.randomNormal(0f, 1f, new Shape(n, n), t);
                        a.matMul(b).close();
                        sync(a);
                        int iters = Math.max(3, (int) Math.min(50, 4e12 / (2.0 * n * n * n)));
                        long t0 = System.nanoTime();
                        NDArray c = null;
                        for (int i = 0; i < iters; i++) {
                            if (c != null) {
                                c.close();
                            }
                            c = a.matMul(b);
                        }
                        sync(c);
                        double s = (System.nanoTime() - t0) / 1e9;
                        System.out.printf(Locale.ROOT, "matmul %-9s %5d^3: %8.1f TFLOP/s (%d iters)%n",
                                t, n, 2.0 * n * n * n * iters / s / 1e12, iters);
                    }
                }
            }
        }
    }

    private static void sync(NDArray a) {
        a.get(0, 0).toType(DataType.FLOAT32, false).getFloat();
    }
}
