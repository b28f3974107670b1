package ai.lorapar.examples.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.examples.plots.Plots;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import ai.lorapar.engine.EngineSupport;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code lorapar partition}: two importance maps → stage masks, statistics, the random baseline and the scatter plot. */
@Command(name = "partition", mixinStandardHelpOptions = true,
        description = {"Partition LoRA elements by importance (θ, α, β) into stage masks, with the random baseline.",
            "Partitions LoRA elements from a System-1 and a System-2 importance map (safetensors written by "
                + "ImportanceMap.save or 'lorapar score'): per system the smallest top set holding θ of the importance; "
                + "stage 1 trains S1-only + the top α of shared, stage 2 S2-only + the top β of shared.",
            "Writes OUT/masks.safetensors, OUT/masks-random.safetensors (the paper's \"Rand.\" baseline: random sets of "
                + "the same sizes), OUT/partition.txt (the statistics table) and OUT/importance-scatter.png."})
final class PartitionCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--system1", required = true, paramLabel = "FILE", description = "System-1 importance map")
    Path system1;

    @Option(names = "--system2", required = true, paramLabel = "FILE", description = "System-2 importance map")
    Path system2;

    @Option(names = {"-o", "--out"}, paramLabel = "PATH", defaultValue = "partition", description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--theta", paramLabel = "X", defaultValue = "0.9", description = "share of importance kept per system (default: ${DEFAULT-VALUE})")
    double theta;

    @Option(names = "--alpha", paramLabel = "X", defaultValue = "1", description = "share of the shared region trained in stage 1 (default: ${DEFAULT-VALUE})")
    double alpha;

    @Option(names = "--beta", paramLabel = "X", defaultValue = "1", description = "share of the shared region trained in stage 2 (default: ${DEFAULT-VALUE})")
    double beta;

    @Option(names = "--random-seed", paramLabel = "N", defaultValue = "42", description = "seed of the random baseline (default: ${DEFAULT-VALUE})")
    long randomSeed;

    @Option(names = "--plot-points", paramLabel = "N", defaultValue = "" + Plots.DEFAULT_SCATTER_POINTS,
            description = "points drawn in the scatter plot, 0 for no plot (default: ${DEFAULT-VALUE})")
    int plotPoints;

    @Option(names = "--device", paramLabel = "D", defaultValue = "cpu", description = "cpu or gpu (default: ${DEFAULT-VALUE})")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        Device dev = switch (device) {
            case "cpu" -> Device.cpu();
            case "gpu" -> Device.gpu();
            default -> throw new IllegalArgumentException("--device must be cpu or gpu, was " + device);
        };
        Files.createDirectories(out);
        try (NDManager manager = EngineSupport.newBaseManager(dev);
                ImportanceMap i1 = ImportanceMap.load(system1, manager);
                ImportanceMap i2 = ImportanceMap.load(system2, manager)) {
            long t0 = System.nanoTime();
            try (SubregionPartition p = SubregionPartition.builder().system1(i1).system2(i2).theta(theta).alpha(alpha)
                    .beta(beta).build()) {
                double seconds = (System.nanoTime() - t0) / 1e9;
                String table = p.statistics().format();
                w.printf(Locale.ROOT, "Partition of %,d LoRA elements in %d tensors at θ = %s, α = %s, β = %s (%.2f s)%n",
                        i1.elementCount(), p.names().size(), theta, alpha, beta, seconds);
                w.println(table);
                StageMasks masks = p.stageMasks();
                w.printf(Locale.ROOT, "stage 1 trains %,d elements (%.1f%%), stage 2 %,d (%.1f%%)%n", masks.stage1Count(),
                        100.0 * masks.stage1Count() / masks.elementCount(), masks.stage2Count(),
                        100.0 * masks.stage2Count() / masks.elementCount());
                masks.save(out.resolve("masks.safetensors"));
                try (StageMasks random = p.randomBaseline(randomSeed)) {
                    random.save(out.resolve("masks-random.safetensors"));
                }
                Files.writeString(out.resolve("partition.txt"), String.format(Locale.ROOT,
                        "system1 %s%nsystem2 %s%ntheta %s alpha %s beta %s%n%s%n", system1, system2, theta, alpha, beta,
                        table), StandardCharsets.UTF_8);
                if (plotPoints > 0) {
                    Path png = Plots.importanceScatter(p, i1, i2, manager, String.format(Locale.ROOT,
                            "LoRA element importance, θ = %s", theta), plotPoints, randomSeed,
                            out.resolve("importance-scatter.png"));
                    w.println("Wrote " + png);
                }
                w.printf("Wrote %s, %s and %s%n", out.resolve("masks.safetensors"), out.resolve("masks-random.safetensors"),
                        out.resolve("partition.txt"));
            }
        }
        return 0;
    }
}
