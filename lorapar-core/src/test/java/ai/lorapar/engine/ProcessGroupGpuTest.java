package ai.lorapar.engine;

import ai.djl.engine.Engine;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link ProcessGroup} for real: two child JVMs ({@link ProcessGroupChild}) with this class path join through
 * {@link Collectives#fromEnvironment}: NCCL on cuda:0 / cuda:1 when two GPUs are visible, Gloo on the CPU
 * otherwise. They check all-reduce (several dtypes, a non-contiguous array, a 4 MiB one), broadcast and barrier
 * against exact values; and when one rank halts, the other fails (Gloo: an error from the all-reduce; NCCL: an
 * error, or the watchdog ending the process) within the timeout (20 s here) instead of hanging, and so does a
 * rank that stays alive but stops calling (timeout 5 s). Needs the
 * project's JNI with {@link ProcessGroup#CAPABILITY}.
 */
@Tag("gpu")
class ProcessGroupGpuTest {
    private static final int WORLD = 2;
    private static final int TIMEOUT_S = 20;

    @TempDir
    Path dir;

    private static boolean useGpus() {
        return Engine.getInstance().getGpuCount() >= WORLD && ProcessGroup.isAvailable(Engine.getInstance(),
                ProcessGroup.Backend.NCCL);
    }

    @Test
    void allReduceBroadcastAndBarrierGiveExactResults() throws Exception {
        assumeBackend();
        List<Result> results = runRanks("check");
        for (Result r : results) {
            assertThat(r.code).as(r.output).isZero();
            assertThat(r.output).contains("joined ProcessGroup[" + (useGpus() ? "NCCL" : "GLOO"))
                    .contains("OK rank " + r.rank).doesNotContain("WRONG");
        }
    }

    @Test
    void aDeadRankMakesTheOtherFailInsteadOfHanging() throws Exception {
        assumeBackend();
        List<Result> results = runRanks("die");
        Result survivor = results.get(0);
        if (useGpus()) {
            // the halting rank dies with its code, or with SIGABRT (134) when NCCL's watchdog thread touches the
            // CUDA context while the process is torn down ("Should never been called", seen on torch 2.11)
            assertThat(results.get(1).code).as(results.get(1).output).isIn(3, 134);
            assertNcclFailure(survivor);
        } else {
            assertThat(results.get(1).code).as(results.get(1).output).isEqualTo(3);
            assertThat(survivor.code).as(survivor.output).isZero();
            assertThat(survivor.output).contains("FAILED-AS-EXPECTED rank 0: ProcessGroup Gloo rank 0 of 2: allReduceSum failed");
        }
    }

    @Test
    void aStalledRankMakesTheOtherFailAfterTheTimeout() throws Exception {
        assumeBackend();
        List<Result> results = runRanks("stall", 5);
        Result survivor = results.get(0);
        if (useGpus()) {
            assertNcclFailure(survivor); // the stalled rank may be aborted too (NCCL propagates errors)
        } else {
            assertThat(survivor.code).as(survivor.output).isZero();
            assertThat(survivor.output).contains("FAILED-AS-EXPECTED rank 0: ProcessGroup Gloo rank 0 of 2: allReduceSum failed")
                    .containsIgnoringCase("timed out");
            assertThat(results.get(1).code).as(results.get(1).output).isZero();
        }
    }

    /** NCCL: either the error reached Java, or NCCL's watchdog ended the process saying why. */
    private static void assertNcclFailure(Result survivor) {
        assertThat(survivor.output).as(survivor.output).doesNotContain("WRONG");
        assertThat(survivor.output.contains("FAILED-AS-EXPECTED rank 0") || survivor.code != 0
                && survivor.output.matches("(?s).*(Watchdog|NCCL|timed out|timeout).*")).as(survivor.output).isTrue();
    }

    private static void assumeBackend() {
        ProcessGroup.Backend backend = useGpus() ? ProcessGroup.Backend.NCCL : ProcessGroup.Backend.GLOO;
        Assumptions.assumeTrue(ProcessGroup.isAvailable(Engine.getInstance(), backend),
                "engine lacks " + ProcessGroup.capability(backend));
    }

    private record Result(int rank, int code, String output) {}

    private List<Result> runRanks(String mode) throws Exception {
        return runRanks(mode, TIMEOUT_S);
    }

    private List<Result> runRanks(String mode, int timeoutSeconds) throws Exception {
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
            cmd.addAll(List.of("-cp", classPath(), ProcessGroupChild.class.getName(), mode, useGpus() ? "gpu" : "cpu"));
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
            Path log = dir.resolve("rank" + rank + ".log");
            pb.redirectOutput(log.toFile());
            pb.environment().put("RANK", String.valueOf(rank));
            pb.environment().put("LOCAL_RANK", String.valueOf(rank));
            pb.environment().put("WORLD_SIZE", String.valueOf(WORLD));
            pb.environment().put("MASTER_ADDR", "127.0.0.1");
            pb.environment().put("MASTER_PORT", String.valueOf(port));
            pb.environment().put(DistributedEnv.TIMEOUT_VARIABLE, String.valueOf(timeoutSeconds));
            pb.environment().put("NCCL_NVLS_ENABLE", "0"); // multicast off, always (gpu.md)
            pb.environment().put("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1");
            pb.environment().put("NVSHMEM_DISABLE_NVLS", "1");
            procs.add(pb.start());
            logs.add(log);
        }
        List<Result> results = new ArrayList<>();
        try {
            for (int rank = 0; rank < WORLD; rank++) {
                Process p = procs.get(rank);
                // a generous bound so that a hang fails the test instead of the run (not a timing assertion)
                boolean ended = p.waitFor(4L * timeoutSeconds + 120, TimeUnit.SECONDS);
                String out = Files.readString(logs.get(rank), StandardCharsets.UTF_8);
                assertThat(ended).as("rank %d hangs; output:%n%s", rank, out).isTrue();
                results.add(new Result(rank, p.exitValue(), out));
            }
        } finally {
            procs.forEach(Process::destroyForcibly);
        }
        return results;
    }

    /** The test class path, also under JUnit's console launcher (whose --class-path is a class loader's). */
    private static String classPath() throws IOException {
        Set<String> entries = new LinkedHashSet<>();
        String surefire = System.getProperty("surefire.test.class.path");
        if (surefire != null) {
            entries.addAll(List.of(surefire.split(File.pathSeparator)));
        }
        for (ClassLoader cl = ProcessGroupGpuTest.class.getClassLoader(); cl != null; cl = cl.getParent()) {
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
