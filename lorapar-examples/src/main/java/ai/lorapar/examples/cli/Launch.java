package ai.lorapar.examples.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Starts one JVM per device for data-parallel training, as {@code torchrun} starts Python processes: each child
 * gets this JVM's class path and options and the variables {@code RANK}, {@code WORLD_SIZE}, {@code LOCAL_RANK},
 * {@code LOCAL_WORLD_SIZE}, {@code MASTER_ADDR}, {@code MASTER_PORT} that {@code ai.lorapar.engine.Collectives}
 * reads; its output lines are prefixed with {@code [rank N]}. When a child fails, the others get a grace period
 * to end by themselves, then are stopped, and the launcher exits with the failed child's code.
 *
 * <p>The program: a fully qualified main class ({@code ai.lorapar.examples.X args...}) or a {@code lorapar}
 * subcommand ({@code train ...}). Usable as {@code lorapar launch --nproc 2 -- train ...} or on its own:
 * {@code java -cp ... ai.lorapar.examples.cli.Launch --nproc 2 -- MAIN_CLASS args...}.
 *
 * <p>Every child also gets {@code NCCL_NVLS_ENABLE=0}, {@code TORCH_SYMM_MEM_DISABLE_MULTICAST=1} and
 * {@code NVSHMEM_DISABLE_NVLS=1}, whatever the environment says: NVLink multicast can put a host's GPUs out of
 * service.
 */
@Command(name = "launch", mixinStandardHelpOptions = true,
        description = "Start one process per device for data-parallel training (like torchrun): sets RANK, WORLD_SIZE, "
                + "LOCAL_RANK, MASTER_ADDR, MASTER_PORT for each child.",
        footer = {"", "Example: lorapar launch --nproc 2 -- train --help",
            "         java -cp CP ai.lorapar.examples.cli.Launch --nproc 2 -- ai.lorapar.examples.SomeMain args"})
public final class Launch implements Callable<Integer> {

    /** The main class that runs a {@code lorapar} subcommand. */
    static final String LORAPAR_MAIN = Lorapar.class.getName();

    /** Variables every child gets, whatever the environment says (NVLink multicast off). */
    static final Map<String, String> FIXED_ENVIRONMENT = Map.of(
            "NCCL_NVLS_ENABLE", "0",
            "TORCH_SYMM_MEM_DISABLE_MULTICAST", "1",
            "NVSHMEM_DISABLE_NVLS", "1");

    @Option(names = "--nproc", required = true, description = "Processes on this host (one per GPU).")
    int nproc;

    @Option(names = "--nnodes", defaultValue = "1", description = "Hosts in the job (default: ${DEFAULT-VALUE}).")
    int nnodes;

    @Option(names = "--node-rank", defaultValue = "0", description = "This host's index, 0..nnodes-1 (default: ${DEFAULT-VALUE}).")
    int nodeRank;

    @Option(names = "--master-addr", defaultValue = "127.0.0.1",
            description = "Host of rank 0, which serves the rendezvous (default: ${DEFAULT-VALUE}).")
    String masterAddr;

    @Option(names = "--master-port", description = "Rendezvous port (default: a free port; required with --nnodes > 1).")
    Integer masterPort;

    @Option(names = "--grace-period", defaultValue = "10",
            description = "Seconds the other ranks get to end after one failed, before they are stopped (default: ${DEFAULT-VALUE}).")
    long graceSeconds;

    @Option(names = "--timeout",
            description = "Seconds a collective waits for the other ranks (LORAPAR_DIST_TIMEOUT_S; library default 300).")
    Double timeoutSeconds;

    @Parameters(arity = "1..*", paramLabel = "PROGRAM",
            description = "A main class (with its package) or a lorapar subcommand, then its arguments; put -- before it.")
    List<String> program;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Runs the launcher as a program of its own. */
    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new Launch());
        cl.setStopAtPositional(true); // the program's own options are not the launcher's
        cl.setOut(new PrintWriter(System.out, true));
        cl.setErr(new PrintWriter(System.err, true));
        System.exit(cl.execute(args));
    }

    @Override
    public Integer call() {
        Plan plan = plan();
        List<String> command = childCommand(javaExecutable(), inheritedJvmOptions(),
                System.getProperty("java.class.path"), program);
        return plan.run(command, Map.of(), spec.commandLine().getOut(), spec.commandLine().getErr());
    }

    /** The validated options as a plan (the free port chosen here). */
    Plan plan() {
        if (nproc < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--nproc " + nproc + " is not positive");
        }
        if (nnodes < 1 || nodeRank < 0 || nodeRank >= nnodes) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--node-rank " + nodeRank + " outside 0.." + (nnodes - 1) + " (--nnodes " + nnodes + ")");
        }
        if (masterPort == null && nnodes > 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--master-port is required with --nnodes " + nnodes + " (all hosts must agree on it)");
        }
        if (masterPort != null && (masterPort < 1 || masterPort > 65535)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--master-port " + masterPort + " outside 1..65535");
        }
        if (timeoutSeconds != null && !(timeoutSeconds > 0)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--timeout " + timeoutSeconds + " is not positive");
        }
        return new Plan(nproc, nnodes, nodeRank, masterAddr, masterPort == null ? freePort() : masterPort,
                Duration.ofSeconds(Math.max(0, graceSeconds)), timeoutSeconds);
    }

    /**
     * What to start on this host.
     *
     * @param nproc processes on this host
     * @param nnodes hosts in the job
     * @param nodeRank this host's index
     * @param masterAddr rank 0's host
     * @param masterPort the rendezvous port
     * @param grace how long the other ranks get to end after one failed
     * @param timeoutSeconds LORAPAR_DIST_TIMEOUT_S for the children, or null to leave it as the environment has it
     */
    record Plan(int nproc, int nnodes, int nodeRank, String masterAddr, int masterPort, Duration grace,
            Double timeoutSeconds) {

        int worldSize() {
            return nproc * nnodes;
        }

        /** The variables that child {@code localRank} gets on top of the launcher's environment. */
        Map<String, String> childEnvironment(int localRank) {
            Map<String, String> env = new LinkedHashMap<>();
            env.put("RANK", String.valueOf(nodeRank * nproc + localRank));
            env.put("WORLD_SIZE", String.valueOf(worldSize()));
            env.put("LOCAL_RANK", String.valueOf(localRank));
            env.put("LOCAL_WORLD_SIZE", String.valueOf(nproc));
            env.put("GROUP_RANK", String.valueOf(nodeRank));
            env.put("MASTER_ADDR", masterAddr);
            env.put("MASTER_PORT", String.valueOf(masterPort));
            if (timeoutSeconds != null) {
                env.put("LORAPAR_DIST_TIMEOUT_S", String.valueOf(timeoutSeconds));
            }
            env.putAll(FIXED_ENVIRONMENT);
            return env;
        }

        /**
         * Starts the children with {@code command} and {@code extraEnv}, copies their output line by line with
         * a rank prefix, and waits: returns 0 when all end with 0, else the first failed child's exit code (the
         * others stopped after the grace period), after a line naming its rank.
         */
        int run(List<String> command, Map<String, String> extraEnv, PrintWriter out, PrintWriter err) {
            List<Process> children = new ArrayList<>();
            List<Thread> pumps = new ArrayList<>();
            Thread stopper = new Thread(() -> children.forEach(Process::destroyForcibly), "lorapar-launch-stop");
            Runtime.getRuntime().addShutdownHook(stopper);
            try {
                for (int local = 0; local < nproc; local++) {
                    ProcessBuilder pb = new ProcessBuilder(command);
                    pb.environment().putAll(extraEnv);
                    pb.environment().putAll(childEnvironment(local));
                    Process p;
                    try {
                        p = pb.start();
                    } catch (IOException e) {
                        throw new UncheckedIOException("cannot start " + command.get(0), e);
                    }
                    children.add(p);
                    String prefix = "[rank " + (nodeRank * nproc + local) + "] ";
                    pumps.add(pump(p.getInputStream(), out, prefix));
                    pumps.add(pump(p.getErrorStream(), err, prefix));
                }
                int failedRank = -1;
                int failedCode = 0;
                long deadline = Long.MAX_VALUE;
                while (true) {
                    boolean running = false;
                    for (int local = 0; local < children.size(); local++) {
                        Process p = children.get(local);
                        if (p.isAlive()) {
                            running = true;
                        } else if (p.exitValue() != 0 && failedRank < 0) {
                            failedRank = nodeRank * nproc + local;
                            failedCode = p.exitValue();
                            deadline = System.nanoTime() + grace.toNanos();
                        }
                    }
                    if (!running) {
                        break;
                    }
                    if (System.nanoTime() >= deadline) {
                        stop(children);
                        break;
                    }
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        stop(children);
                        return 130;
                    }
                }
                for (Thread t : pumps) {
                    try {
                        t.join(5000);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                if (failedRank >= 0) {
                    List<String> stopped = new ArrayList<>();
                    for (int local = 0; local < children.size(); local++) {
                        Process p = children.get(local);
                        stopped.add("rank " + (nodeRank * nproc + local) + ": "
                                + (p.isAlive() ? "still running" : describe(p.exitValue())));
                    }
                    err.println("lorapar launch: rank " + failedRank + " failed with exit code " + failedCode
                            + " (" + String.join(", ", stopped) + ")");
                    err.flush();
                    return failedCode;
                }
                return 0;
            } finally {
                children.forEach(Process::destroyForcibly);
                try {
                    Runtime.getRuntime().removeShutdownHook(stopper);
                } catch (IllegalStateException shuttingDown) {
                    // the hook runs
                }
            }
        }
    }

    /** The command of a child: java, JVM options, class path, then the main class (or Lorapar + subcommand). */
    static List<String> childCommand(String java, List<String> jvmOptions, String classPath, List<String> program) {
        if (program == null || program.isEmpty()) {
            throw new IllegalArgumentException("no program to launch: give a main class or a lorapar subcommand");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.addAll(jvmOptions);
        cmd.add("-cp");
        cmd.add(classPath);
        if (!isMainClass(program.get(0))) {
            cmd.add(LORAPAR_MAIN);
        }
        cmd.addAll(program);
        return cmd;
    }

    /** Whether {@code first} names a main class (a qualified Java name) rather than a lorapar subcommand. */
    static boolean isMainClass(String first) {
        return first.contains(".") && first.matches("[\\p{javaJavaIdentifierStart}][\\p{javaJavaIdentifierPart}.$]*");
    }

    /** This JVM's own options (heap, system properties, ...), except debugger agents, which would clash. */
    static List<String> inheritedJvmOptions() {
        List<String> opts = new ArrayList<>();
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-Xrunjdwp") && !a.equals("-Xdebug")) {
                opts.add(a);
            }
        }
        return opts;
    }

    static String javaExecutable() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** A port that was free a moment ago (the children bind it soon after). */
    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port for the rendezvous", e);
        }
    }

    private static void stop(List<Process> children) {
        children.forEach(Process::destroy); // SIGTERM: shutdown hooks run
        for (Process p : children) {
            try {
                if (!p.waitFor(5, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                p.destroyForcibly();
            }
        }
    }

    private static String describe(int code) {
        return code == 0 ? "ok" : code == 143 ? "stopped (143)" : code == 137 ? "killed (137)" : "exit " + code;
    }

    private static Thread pump(InputStream in, PrintWriter to, String prefix) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    synchronized (to) {
                        to.println(prefix + line);
                        to.flush();
                    }
                }
            } catch (IOException e) {
                // the child is gone
            }
        }, "lorapar-launch-" + prefix.trim());
        t.setDaemon(true);
        t.start();
        return t;
    }
}
