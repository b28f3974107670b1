package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.ProcessGroup;
import ai.lorapar.engine.RankProcesses;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Data-parallel SFT through the real collective: two child JVMs ({@link DataParallelSftChild}) join through
 * {@code Collectives.fromEnvironment} (NCCL on cuda:0 / cuda:1 when two GPUs are visible, Gloo on the CPU
 * otherwise) and train the fixture run of {@link DataParallelSftTest}; both end with the parameters of the same
 * run done by one process here (fp32, within the tolerances of other summation orders). Needs the project's
 * JNI with {@link ProcessGroup#CAPABILITY}.
 */
@Tag("gpu")
class DataParallelProcessGpuTest {
    private static final int WORLD = 2;
    private static final int TIMEOUT_S = 120;

    @TempDir
    Path dir;

    private static boolean useGpus() {
        return Engine.getInstance().getGpuCount() >= WORLD
                && ProcessGroup.isAvailable(Engine.getInstance(), ProcessGroup.Backend.NCCL);
    }

    @Test
    void twoProcessesGiveOneProcessParameters() throws Exception {
        Assumptions.assumeTrue(ProcessGroup.isAvailable(Engine.getInstance()), "engine lacks " + ProcessGroup.CAPABILITY);
        boolean gpus = useGpus();
        // without two GPUs the ranks run on the CPU, through Gloo (the device JNI may have NCCL only)
        Assumptions.assumeTrue(gpus || ProcessGroup.isAvailable(Engine.getInstance(), ProcessGroup.Backend.GLOO),
                "needs two GPUs with NCCL, or Gloo for CPU ranks");
        Device device = gpus ? Device.gpu() : Device.cpu();
        Map<String, float[]> expected = DataParallelSftTest.trainOn(Collective.single(), device);
        List<String> outputs = runRanks(gpus);
        double slack = gpus ? 10 : 1;
        for (int rank = 0; rank < WORLD; rank++) {
            assertThat(outputs.get(rank)).contains("DONE rank " + rank);
            Map<String, float[]> actual = read(dir.resolve("rank" + rank + ".params"));
            assertThat(actual.keySet()).isEqualTo(expected.keySet());
            for (String k : expected.keySet()) {
                float[] e = expected.get(k);
                float[] a = actual.get(k);
                for (int i = 0; i < e.length; i++) {
                    assertThat(a[i]).as("rank %d %s[%d]", rank, k, i)
                            .isCloseTo(e[i], within((float) ((1e-4 * Math.abs(e[i]) + 1e-6) * slack)));
                }
            }
        }
    }

    private static Map<String, float[]> read(Path file) throws IOException {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (InputStream i = Files.newInputStream(file); DataInputStream in = new DataInputStream(i)) {
            int n = in.readInt();
            for (int t = 0; t < n; t++) {
                String name = in.readUTF();
                float[] v = new float[in.readInt()];
                for (int k = 0; k < v.length; k++) {
                    v[k] = in.readFloat();
                }
                out.put(name, v);
            }
        }
        return out;
    }

    /** Starts the ranks (each must end with 0); returns their outputs. */
    private List<String> runRanks(boolean gpus) throws Exception {
        List<String> outputs = new ArrayList<>();
        for (RankProcesses.Result r : RankProcesses.run(dir, WORLD, TIMEOUT_S, 2L * TIMEOUT_S + 120,
                DataParallelSftChild.class, gpus ? "gpu" : "cpu")) {
            assertThat(r.code()).as("rank %d output:%n%s", r.rank(), r.output()).isZero();
            outputs.add(r.output());
        }
        return outputs;
    }
}
