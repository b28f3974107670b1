package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

import java.util.Arrays;

/**
 * One rank of {@link ProcessGroupGpuTest}: joins the job of the launcher's variables through
 * {@link Collectives#fromEnvironment} and checks the collectives against exact expected values. Argument
 * {@code check}: all-reduce, broadcast and barrier, then prints {@code OK rank R}. Argument {@code die}: after a
 * barrier, the last rank halts; the others call an all-reduce, which must fail: they print
 * {@code FAILED-AS-EXPECTED rank R: message} and exit 0. Any wrong value prints {@code WRONG ...} and exits 1.
 */
public final class ProcessGroupChild {
    private ProcessGroupChild() {}

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "check";
        boolean gpu = args.length > 1 && "gpu".equals(args[1]);
        Engine engine = Engine.getInstance();
        DistributedEnv env = DistributedEnv.fromEnvironment();
        Device device = gpu ? Device.gpu(env.localRank()) : Device.cpu();
        int w = env.worldSize();
        int r = env.rank();
        try (NDManager m = NDManager.newBaseManager(device);
                Collective c = Collectives.fromEnvironment(engine, device, env)) {
            if (!(c instanceof ProcessGroup pg)) {
                throw new IllegalStateException("expected a ProcessGroup, got " + c);
            }
            System.out.println("joined " + pg);
            if ("die".equals(mode)) {
                c.barrier();
                if (r == w - 1) {
                    System.out.println("rank " + r + " halts");
                    System.out.flush();
                    Runtime.getRuntime().halt(3);
                }
                try {
                    c.allReduceSum(new NDList(m.ones(new Shape(1000))));
                    NDArray after = m.ones(new Shape(1)); // NCCL: the failure surfaces in a later sync
                    after.toFloatArray();
                    System.out.println("WRONG rank " + r + ": the all-reduce with a dead rank returned");
                    System.exit(1);
                } catch (RuntimeException e) {
                    System.out.println("FAILED-AS-EXPECTED rank " + r + ": " + e.getMessage());
                    pg.abort();
                    System.exit(0);
                }
            }
            check(m, c, r, w);
            System.out.println("OK rank " + r);
        }
    }

    private static void check(NDManager m, Collective c, int r, int w) {
        long triangle = (long) w * (w - 1) / 2; // sum of ranks
        // several dtypes (one bucket each), a non-contiguous view, a scalar-shaped array, an empty one, a big one
        NDArray f = m.arange(0f, 12f).reshape(3, 4).add(r);
        NDArray t = m.arange(0f, 6f).reshape(2, 3).mul(r + 1).transpose(); // non-contiguous after transpose
        NDArray d = m.full(new Shape(5), 10f * r, DataType.FLOAT64);
        NDArray i = m.full(new Shape(2, 2), (long) r + 1, DataType.INT64);
        NDArray s = m.create((float) r);
        NDArray e = m.zeros(new Shape(0));
        NDArray big = m.ones(new Shape(1 << 20)).mul(r + 1);
        c.allReduceSum(new NDList(f, t, d, i, s, e, big));
        expect("float", f, m.arange(0f, 12f).reshape(3, 4).mul(w).add(triangle));
        expect("transposed", t, m.arange(0f, 6f).reshape(2, 3).mul(triangle + w).transpose());
        expect("double", d, m.full(new Shape(5), 10f * triangle, DataType.FLOAT64));
        expect("long", i, m.full(new Shape(2, 2), triangle + w, DataType.INT64));
        expect("scalar", s, m.create((float) triangle));
        expect("big", big, m.ones(new Shape(1 << 20)).mul(triangle + w));

        int root = w - 1;
        NDArray b1 = m.arange(0f, 7f).add(100 * r);
        NDArray b2 = m.full(new Shape(3), (long) r, DataType.INT64);
        c.broadcast(new NDList(b1, b2), root);
        expect("broadcast float", b1, m.arange(0f, 7f).add(100 * root));
        expect("broadcast long", b2, m.full(new Shape(3), (long) root, DataType.INT64));
        NDArray alone = m.arange(0f, 4f).mul(r);
        c.broadcast(new NDList(alone), 0);
        expect("broadcast one", alone, m.zeros(new Shape(4)));
        c.barrier();
    }

    private static void expect(String what, NDArray actual, NDArray expected) {
        Device cpu = Device.cpu();
        NDArray a = actual.toDevice(cpu, true);
        NDArray e = expected.toDevice(cpu, true);
        boolean same = a.getShape().equals(e.getShape()) && a.getDataType() == e.getDataType()
                && Arrays.equals(a.toByteArray(), e.toByteArray());
        if (!same) {
            System.out.println("WRONG " + what + ": got " + a + " expected " + e);
            System.exit(1);
        }
    }
}
