package ai.lorapar.engine;

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

/**
 * Test aid: the ranks of a job as child JVMs with this JVM's class path, started as {@code lorapar launch}
 * starts them ({@code RANK}, {@code LOCAL_RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR}/{@code MASTER_PORT} on a
 * free port, the collective timeout, NVLink multicast off), each writing {@code rank<N>.log} in a folder.
 */
public final class RankProcesses {

    /** How a rank ended: its exit code and its output (stdout and stderr). */
    public record Result(int rank, int code, String output) {}

    private RankProcesses() {}

    /**
     * Runs {@code world} ranks of {@code mainClass args} and waits for all of them.
     *
     * @param timeoutSeconds the collective timeout the ranks get ({@link DistributedEnv#TIMEOUT_VARIABLE})
     * @param waitSeconds how long a rank may take before it counts as hanging (a generous bound, so that a
     *     hang fails the test instead of the run; not a timing assertion)
     * @throws AssertionError when a rank does not end within {@code waitSeconds}, with its output
     */
    public static List<Result> run(Path dir, int world, int timeoutSeconds, long waitSeconds, Class<?> mainClass,
            String... args) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classPath = classPath(mainClass);
        List<Process> procs = new ArrayList<>();
        List<Path> logs = new ArrayList<>();
        try {
            for (int rank = 0; rank < world; rank++) {
                List<String> cmd = new ArrayList<>(List.of(java, "-Xmx2g", "--enable-native-access=ALL-UNNAMED"));
                for (String key : System.getProperties().stringPropertyNames()) {
                    if (key.startsWith("ai.djl.") || key.startsWith("org.slf4j.")) {
                        cmd.add("-D" + key + "=" + System.getProperty(key));
                    }
                }
                cmd.addAll(List.of("-cp", classPath, mainClass.getName()));
                cmd.addAll(List.of(args));
                ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
                Path log = dir.resolve("rank" + rank + ".log");
                pb.redirectOutput(log.toFile());
                pb.environment().put("RANK", String.valueOf(rank));
                pb.environment().put("LOCAL_RANK", String.valueOf(rank));
                pb.environment().put("WORLD_SIZE", String.valueOf(world));
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
            for (int rank = 0; rank < world; rank++) {
                Process p = procs.get(rank);
                boolean ended = p.waitFor(waitSeconds, TimeUnit.SECONDS);
                String out = Files.readString(logs.get(rank), StandardCharsets.UTF_8);
                if (!ended) {
                    throw new AssertionError("rank " + rank + " hangs; output:\n" + out);
                }
                results.add(new Result(rank, p.exitValue(), out));
            }
            return results;
        } finally {
            procs.forEach(Process::destroyForcibly);
        }
    }

    /** The test class path, also under JUnit's console launcher (whose --class-path is a class loader's). */
    private static String classPath(Class<?> anchor) throws IOException {
        Set<String> entries = new LinkedHashSet<>();
        String surefire = System.getProperty("surefire.test.class.path");
        if (surefire != null) {
            entries.addAll(List.of(surefire.split(File.pathSeparator)));
        }
        for (ClassLoader cl = anchor.getClassLoader(); cl != null; cl = cl.getParent()) {
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
