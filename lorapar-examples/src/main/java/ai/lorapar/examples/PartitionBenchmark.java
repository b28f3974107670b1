package ai.lorapar.examples;

import ai.lorapar.engine.EngineSupport;
import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.partition.SubregionPartition;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Times {@link SubregionPartition} on synthetic heavy-tailed importance of real LoRA shapes
 * (Qwen2.5-0.5B and LLaMA-2-7B, QKVGUD r = 8) for both systems, θ = 0.9, and α = β = 1 and 0.5.
 * The reference implementation (pandas, iterrows) needs about 26 s per million elements.
 *
 * <p>Usage: {@code PartitionBenchmark [--device cpu|gpu] [--runs N]}. The time covers validation,
 * both rankings, the masks of both stages and the statistics, with a read-back of a count at the
 * end so device work has finished.
 */
public final class PartitionBenchmark {
    private static final double REFERENCE_SECONDS_PER_MILLION = 26.0;

    public static void main(String[] args) {
        Device device = Device.cpu();
        int runs = 5;
        for (int i = 0; i < args.length; i++) {
            if ("--device".equals(args[i])) {
                device = "gpu".equals(args[++i]) ? Device.gpu() : Device.cpu();
            } else if ("--runs".equals(args[i])) {
                runs = Integer.parseInt(args[++i]);
            }
        }
        System.out.printf(Locale.ROOT, "engine %s %s, device %s, %d timed runs after one warm-up%n",
                EngineSupport.requireEngine().getEngineName(), EngineSupport.requireEngine().getVersion(), device, runs);
        Map<String, Map<String, Shape>> models = new LinkedHashMap<>();
        models.put("Qwen2.5-0.5B QKVGUD r=8", LoraShapes.qwen25Half(8));
        models.put("LLaMA-2-7B QKVGUD r=8", LoraShapes.llama2_7b(8));
        for (Map.Entry<String, Map<String, Shape>> model : models.entrySet()) {
            for (double fraction : new double[] {1.0, 0.5}) {
                run(model.getKey(), model.getValue(), device, runs, fraction);
            }
        }
    }

    private static void run(String label, Map<String, Shape> shapes, Device device, int runs, double fraction) {
        long elements = LoraShapes.count(shapes);
        try (NDManager manager = EngineSupport.newBaseManager(device)) {
            EngineSupport.requireEngine().setRandomSeed(1234);
            ImportanceMap s1 = ImportanceMap.of(manager, synthetic(manager, shapes), 100);
            ImportanceMap s2 = ImportanceMap.of(manager, synthetic(manager, shapes), 100);
            double[] seconds = new double[runs];
            String summary = "";
            for (int r = -1; r < runs; r++) {
                long t0 = System.nanoTime();
                try (SubregionPartition p = SubregionPartition.builder().system1(s1).system2(s2).theta(0.9)
                        .alpha(fraction).beta(fraction).build()) {
                    long stage1 = p.stageMasks().stage1Count();
                    double s = (System.nanoTime() - t0) / 1e9;
                    if (r >= 0) {
                        seconds[r] = s;
                    }
                    var t = p.statistics().total();
                    summary = String.format(Locale.ROOT, "S1 keeps %.1f%%, S2 keeps %.1f%%, shared %.1f%%, stage 1 %d, stage 2 %d",
                            100 * t.share(t.system1Kept()), 100 * t.share(t.system2Kept()), 100 * t.share(t.shared()),
                            stage1, t.stage2());
                }
            }
            Arrays.sort(seconds);
            double median = seconds[runs / 2];
            double perMillion = median / (elements / 1e6);
            System.out.printf(Locale.ROOT,
                    "%-26s α=β=%.1f %,12d elements: median %.3f s (min %.3f, max %.3f) = %.3f s per million; "
                            + "reference %.0f s per million (%.0fx); %s%n",
                    label, fraction, elements, median, seconds[0], seconds[runs - 1], perMillion,
                    REFERENCE_SECONDS_PER_MILLION, REFERENCE_SECONDS_PER_MILLION / perMillion, summary);
            s1.close();
            s2.close();
        }
    }

    /** Heavy-tailed importance (|N(0,1)|³), like real importance where few elements carry most of it. */
    private static Map<String, NDArray> synthetic(NDManager manager, Map<String, Shape> shapes) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, Shape> e : shapes.entrySet()) {
            NDArray n = manager.randomNormal(0f, 1f, e.getValue(), DataType.FLOAT32);
            out.put(e.getKey(), n.abs().pow(3f));
            n.close();
        }
        return out;
    }
}
