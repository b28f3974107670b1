package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Objects;

/** The {@link Collective} of this process, chosen from the launcher's environment variables. */
public final class Collectives {
    private static final Logger LOG = LoggerFactory.getLogger(Collectives.class);

    private Collectives() {}

    /** {@link #fromEnvironment(Engine, Device, DistributedEnv)} with {@link DistributedEnv#fromEnvironment()}. */
    public static Collective fromEnvironment(Engine engine, Device device) {
        return fromEnvironment(engine, device, DistributedEnv.fromEnvironment());
    }

    /** {@link #fromEnvironment(Engine, Device, DistributedEnv)} with the job read from {@code variables}. */
    public static Collective fromEnvironment(Engine engine, Device device, Map<String, String> variables) {
        return fromEnvironment(engine, device, DistributedEnv.fromEnvironment(variables));
    }

    /**
     * The collective of this process in {@code env}'s job:
     * <ul>
     *   <li>a job of one process: {@link Collective#single()};
     *   <li>several processes on an engine with {@link ProcessGroup#CAPABILITY} (the project's JNI): a
     *       {@link ProcessGroup} on {@code device} (NCCL for a GPU, Gloo for the CPU), after the rendezvous
     *       with the other ranks;
     *   <li>several processes on stock DJL: rank 0 logs a warning that distributed training needs the
     *       project's libtorch JNI and gets {@link Collective#single()} (it trains alone on one device); the
     *       other ranks get a {@link DistributedUnavailableException} saying so.
     * </ul>
     *
     * @param device this rank's device, normally {@link DistributedEnv#device(Engine)} ({@code cuda:LOCAL_RANK})
     * @throws DistributedUnavailableException on a rank other than 0 when the engine has no collectives
     */
    public static Collective fromEnvironment(Engine engine, Device device, DistributedEnv env) {
        Objects.requireNonNull(engine, "engine");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(env, "env");
        if (!env.isDistributed()) {
            return Collective.single();
        }
        if (!ProcessGroup.isAvailable(engine, ProcessGroup.Backend.of(device))) {
            String why = "distributed training (WORLD_SIZE=" + env.worldSize() + ") needs the project's libtorch JNI"
                    + " built with c10d (capability " + ProcessGroup.capability(ProcessGroup.Backend.of(device))
                    + "); engine " + engine.getEngineName() + " " + engine.getVersion() + " does not have it";
            if (env.rank() == 0) {
                LOG.warn("{}: rank 0 trains alone on {}", why, device);
                return Collective.single();
            }
            throw new DistributedUnavailableException(why + ": rank " + env.rank() + " stops, rank 0 trains alone");
        }
        return ProcessGroup.init(env, device);
    }
}
