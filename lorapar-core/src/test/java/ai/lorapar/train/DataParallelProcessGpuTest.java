package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.lorapar.engine.Collective;
import ai.lorapar.engine.DistributedEnv;
import ai.lorapar.engine.ProcessGroup;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

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

    /** Starts the ranks as {@code ProcessGroupGpuTest} does; returns their outputs (asserting they end, with 0). */
    private List<String> runRanks(boolean gpus) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> procs = new ArrayList<>();
        List<Path> logs = new ArrayList<>();
        for (int rank = 0; rank < WORLD; rank++) {
            List<String> cmd = new ArrayList<>(List.of(java, "-Xmx2g", "--enable-native-access=ALL-UNNAMED"));
            for (String key : System.getProperties().stringPropertyNames()) {
                if (key.startsWith("ai.djl.") || key.startsWith("org.slf4j.")) {
                    cmd.add("-D" + key + "=" + System.getProperty(key));
                }
            }
            cmd.addAll(List.of("-cp", classPath(), DataParallelSftChild.class.getName(), gpus ? "gpu" : "cpu"));
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
            Path log = dir.resolve("rank" + rank + ".log");
            pb.redirectOutput(log.toFile());
            pb.environment().put("RANK", String.valueOf(rank));
            pb.environment().put("LOCAL_RANK", String.valueOf(rank));
            pb.environment().put("WORLD_SIZE", String.valueOf(WORLD));
            pb.environment().put("MASTER_ADDR", "127.0.0.1");
            pb.environment().put("MASTER_PORT", String.valueOf(port));
            pb.environment().put(DistributedEnv.TIMEOUT_VARIABLE, String.valueOf(TIMEOUT_S));
            pb.environment().put("NCCL_NVLS_ENABLE", "0"); // multicast off, always
            pb.environment().put("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1");
            pb.environment().put("NVSHMEM_DISABLE_NVLS", "1");
            procs.add(pb.start());
            logs.add(log);
        }
        List<String> outputs = new ArrayList<>();
        try {
            for (int rank = 0; rank < WORLD; rank++) {
                Process p = procs.get(rank);
                // a generous bound so that a hang fails the test instead of the run (not a timing assertion)
                boolean ended = p.waitFor(2L * TIMEOUT_S + 120, TimeUnit.SECONDS);
                String out = Files.readString(logs.get(rank), StandardCharsets.UTF_8);
                assertThat(ended).as("rank %d hangs; output:%n%s", rank, out).isTrue();
                assertThat(p.exitValue()).as("rank %d output:%n%s", rank, out).isZero();
                outputs.add(out);
            }
        } finally {
            procs.forEach(Process::destroyForcibly);
        }
        return outputs;
    }

    /** The test class path, also under JUnit's console launcher (whose --class-path is a class loader's). */
    private static String classPath() throws IOException {
        Set<String> entries = new LinkedHashSet<>();
        String surefire = System.getProperty("surefire.test.class.path");
        if (surefire != null) {
            entries.addAll(List.of(surefire.split(File.pathSeparator)));
        }
        for (ClassLoader cl = DataParallelProcessGpuTest.class.getClassLoader(); cl != null; cl = cl.getParent()) {
            if (cl instanceof URLClassLoader u) {
                for (URL url : u.getURLs()) {
                    try {
                        entries.add(Path.of(url.toURI()).toString());
                    } catch (Exception e) {
                        throw new IOException("class path entry " + url, e);
                    }
                }
            }
        }
        entries.addAll(List.of(System.getProperty("java.class.path").split(File.pathSeparator)));
        return String.join(File.pathSeparator, entries);
    }
}
