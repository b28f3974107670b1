package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.Collectives;
import ai.lorapar.engine.DistributedEnv;
import ai.lorapar.engine.DistributedUnavailableException;
import ai.lorapar.engine.EngineSupport;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * All-reduce bandwidth through the project's c10d natives, one process per device, started by the launcher:
 * {@code lorapar launch --nproc 2 -- ai.lorapar.examples.AllReduceBenchmark [--sizes-mib 1,16,256] [--iters 20]
 * [--tensors 1] [--cpu]}. Rank 0 prints one line per size:
 * {@code BENCH allreduce world=W device=D tensors=T size_mib=S ms=… algbw_gbps=… busbw_gbps=… check=ok}, where
 * bus bandwidth = size × 2(W−1)/W / time, as nccl-tests report it (compare with {@code all_reduce_perf}).
 * {@code --tensors T} splits each size into T arrays (one bucket). Every size is checked: the sum of
 * {@code rank + 1} over the ranks.
 */
public final class AllReduceBenchmark {
    private AllReduceBenchmark() {}

    public static void main(String[] args) {
        List<Double> sizes = new ArrayList<>(List.of(1.0, 16.0, 256.0));
        int iters = 20;
        int tensors = 1;
        boolean cpu = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--sizes-mib" -> {
                    sizes.clear();
                    for (String s : args[++i].split(",")) {
                        sizes.add(Double.parseDouble(s));
                    }
                }
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--tensors" -> tensors = Integer.parseInt(args[++i]);
                case "--cpu" -> cpu = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + " (--sizes-mib A,B,.. --iters N --tensors T --cpu)");
            }
        }
        Engine engine = EngineSupport.requireEngine();
        DistributedEnv env = DistributedEnv.fromEnvironment();
        Device device = cpu ? Device.cpu() : env.device(engine);
        Collective collective;
        try {
            collective = Collectives.fromEnvironment(engine, device, env);
        } catch (DistributedUnavailableException e) {
            System.err.println(e.getMessage()); // stock DJL: rank 0 measures alone, this rank ends cleanly
            return;
        }
        try (NDManager m = NDManager.newBaseManager(device); Collective c = collective) {
            int w = c.worldSize(); // 1 when rank 0 goes on alone (stock DJL)
            for (double mib : sizes) {
                long elements = Math.max(tensors, Math.round(mib * (1 << 20) / 4));
                NDList arrays = new NDList();
                for (int t = 0; t < tensors; t++) {
                    arrays.add(m.ones(new Shape(elements / tensors), DataType.FLOAT32).mul(c.rank() + 1));
                }
                c.allReduceSum(arrays); // warm-up (NCCL communicator, buffers) and check
                float expected = (float) w * (w + 1) / 2;
                boolean ok = true;
                for (NDArray a : arrays) {
                    ok &= a.min().getFloat() == expected && a.max().getFloat() == expected;
                }
                c.barrier();
                long t0 = System.nanoTime();
                for (int it = 0; it < iters; it++) {
                    c.allReduceSum(arrays);
                }
                arrays.get(0).get(0).getFloat(); // waits for the device (the stream waited for the all-reduces)
                double seconds = (System.nanoTime() - t0) / 1e9 / iters;
                c.barrier();
                double bytes = 4.0 * (elements / tensors) * tensors;
                if (c.isLeader()) {
                    System.out.printf(Locale.ROOT,
                            "BENCH allreduce world=%d device=%s tensors=%d size_mib=%.1f ms=%.3f algbw_gbps=%.2f "
                                    + "busbw_gbps=%.2f check=%s%n",
                            w, device, tensors, bytes / (1 << 20), seconds * 1e3, bytes / seconds / 1e9,
                            bytes * 2 * (w - 1) / w / seconds / 1e9, ok ? "ok" : "WRONG");
                }
                arrays.close();
            }
        }
    }
}
