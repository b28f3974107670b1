package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * Where this process stands in a data-parallel job, as a launcher (the project's {@code lorapar launch},
 * or {@code torchrun}) describes it in environment variables: {@code RANK}, {@code WORLD_SIZE},
 * {@code LOCAL_RANK}, {@code MASTER_ADDR}, {@code MASTER_PORT}, and {@value #TIMEOUT_VARIABLE} (seconds).
 *
 * @param rank this process's rank in the job, {@code 0 <= rank < worldSize}
 * @param worldSize the number of processes in the job
 * @param localRank this process's rank on its host: the index of its GPU ({@code cuda:localRank})
 * @param masterAddr host name or address of rank 0, which serves the rendezvous store
 * @param masterPort TCP port of the rendezvous store on {@code masterAddr}
 * @param timeout how long a collective (and the rendezvous) waits for the other ranks before failing, so that
 *     a dead rank makes the others fail instead of hanging
 */
public record DistributedEnv(int rank, int worldSize, int localRank, String masterAddr, int masterPort,
        Duration timeout) {

    /** The variable that sets {@link #timeout()} in seconds. */
    public static final String TIMEOUT_VARIABLE = "LORAPAR_DIST_TIMEOUT_S";

    /** The default {@link #timeout()}: 300 s (long enough for a slow first step, short enough to notice a hang). */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

    /** Validates the fields; see the record's description. */
    public DistributedEnv {
        Objects.requireNonNull(masterAddr, "masterAddr");
        Objects.requireNonNull(timeout, "timeout");
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size " + worldSize + " is not positive");
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " outside a world of size " + worldSize);
        }
        if (localRank < 0) {
            throw new IllegalArgumentException("local rank " + localRank + " is negative");
        }
        if (masterPort < 0 || masterPort > 65535) {
            throw new IllegalArgumentException("master port " + masterPort + " outside 0..65535");
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout " + timeout + " is not positive");
        }
    }

    /** The environment of a job of one process (rank 0 of 1, no rendezvous). */
    public static DistributedEnv single() {
        return new DistributedEnv(0, 1, 0, "127.0.0.1", 0, DEFAULT_TIMEOUT);
    }

    /** {@link #fromEnvironment(Map)} of this process's environment. */
    public static DistributedEnv fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /**
     * Reads a job description from environment variables. No {@code WORLD_SIZE} (or {@code WORLD_SIZE=1})
     * is a job of one process ({@link #single()}, other variables ignored). With {@code WORLD_SIZE > 1},
     * {@code RANK}, {@code MASTER_ADDR} and {@code MASTER_PORT} are required; {@code LOCAL_RANK} defaults to
     * {@code RANK} (one host); {@value #TIMEOUT_VARIABLE} defaults to {@link #DEFAULT_TIMEOUT}.
     *
     * @throws IllegalArgumentException naming the variable and its value when one is missing or malformed
     */
    public static DistributedEnv fromEnvironment(Map<String, String> env) {
        Objects.requireNonNull(env, "env");
        String ws = env.get("WORLD_SIZE");
        if (ws == null || ws.isBlank()) {
            return single();
        }
        int worldSize = integer(env, "WORLD_SIZE", 1, Integer.MAX_VALUE);
        if (worldSize == 1) {
            return single();
        }
        int rank = integer(env, "RANK", 0, worldSize - 1);
        int localRank = env.get("LOCAL_RANK") == null ? rank : integer(env, "LOCAL_RANK", 0, Integer.MAX_VALUE);
        String addr = env.get("MASTER_ADDR");
        if (addr == null || addr.isBlank()) {
            throw new IllegalArgumentException("MASTER_ADDR is not set (WORLD_SIZE=" + worldSize
                    + "): the host of rank 0 is needed for the rendezvous");
        }
        int port = integer(env, "MASTER_PORT", 1, 65535);
        Duration timeout = DEFAULT_TIMEOUT;
        String t = env.get(TIMEOUT_VARIABLE);
        if (t != null && !t.isBlank()) {
            double seconds;
            try {
                seconds = Double.parseDouble(t.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(TIMEOUT_VARIABLE + "=" + t + " is not a number of seconds");
            }
            if (!(seconds > 0) || Double.isInfinite(seconds)) {
                throw new IllegalArgumentException(TIMEOUT_VARIABLE + "=" + t + " is not a positive number of seconds");
            }
            timeout = Duration.ofMillis(Math.max(1L, Math.round(seconds * 1000)));
        }
        return new DistributedEnv(rank, worldSize, localRank, addr.trim(), port, timeout);
    }

    /** Whether the job has more than one process. */
    public boolean isDistributed() {
        return worldSize > 1;
    }

    /**
     * This rank's device: {@code cuda:localRank} when {@code engine} sees GPUs, else the CPU.
     *
     * @throws IllegalArgumentException when {@code localRank} has no GPU on this host
     */
    public Device device(Engine engine) {
        int gpus = engine.getGpuCount();
        if (gpus == 0) {
            return Device.cpu();
        }
        if (localRank >= gpus) {
            throw new IllegalArgumentException("LOCAL_RANK=" + localRank + " but this host has " + gpus
                    + " visible GPU(s): start at most " + gpus + " processes per host");
        }
        return Device.gpu(localRank);
    }

    private static int integer(Map<String, String> env, String name, int min, int max) {
        String v = env.get(name);
        if (v == null || v.isBlank()) {
            throw new IllegalArgumentException(name + " is not set");
        }
        int n;
        try {
            n = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + "=" + v + " is not an integer");
        }
        if (n < min || n > max) {
            throw new IllegalArgumentException(name + "=" + v + " outside " + min + ".."
                    + (max == Integer.MAX_VALUE ? "" : String.valueOf(max)));
        }
        return n;
    }
}
