package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.pytorch.engine.PtNDArray;

import java.util.Objects;

/**
 * A {@link Collective} through libtorch's c10d (native source {@code distributed.cc}): the ranks meet at a
 * {@code TCPStore} served by rank 0 on {@link DistributedEnv#masterAddr()}:{@link DistributedEnv#masterPort()},
 * then talk through {@code ProcessGroupNCCL} (GPU arrays, one GPU per process) or {@code ProcessGroupGloo}
 * (CPU arrays). Only engines that advertise {@link #CAPABILITY} (the project's libtorch JNI built with c10d)
 * have it, and NCCL only with {@link #CAPABILITY_NCCL}; callers check {@link #isAvailable} or use
 * {@link Collectives#fromEnvironment}.
 *
 * <p>Ordering: on NCCL an operation is enqueued on the device and the current CUDA stream waits for it: the
 * host does not wait, and later work on the stream (the optimizer step) sees the result. On Gloo the host
 * waits. {@link #allReduceSum} sums all arrays of one dtype in one bucket (one flat buffer, one all-reduce).
 *
 * <p>A rank that dies or stops calling makes the others fail after {@link DistributedEnv#timeout()}: Gloo
 * throws an {@code EngineException} from the operation (at once when the dead rank's connection closes);
 * NCCL's watchdog ends the process with an error naming the collective that timed out.
 *
 * <p>Not thread-safe: one thread calls the operations, every rank in the same order.
 */
public final class ProcessGroup implements Collective {
    /** Capability advertised by the JNI when it was built with {@code distributed.cc} (c10d, Gloo). */
    public static final String CAPABILITY = "LORAPAR_DISTRIBUTED";

    /** Capability advertised by the JNI when {@code distributed.cc} was built with NCCL (a CUDA libtorch). */
    public static final String CAPABILITY_NCCL = "LORAPAR_NCCL";

    /** The c10d backend of a group. */
    public enum Backend {
        /** NCCL for CUDA arrays. */
        NCCL,
        /** Gloo for CPU arrays. */
        GLOO;

        /** NCCL for a GPU device, Gloo for anything else. */
        public static Backend of(Device device) {
            return device.isGpu() ? NCCL : GLOO;
        }
    }

    private final DistributedEnv env;
    private final Device device;
    private final Backend backend;
    private long handle;

    private ProcessGroup(DistributedEnv env, Device device, Backend backend, long handle) {
        this.env = env;
        this.device = device;
        this.backend = backend;
        this.handle = handle;
    }

    /** Whether {@code engine} has c10d collectives (a PyTorch engine advertising {@link #CAPABILITY}). */
    public static boolean isAvailable(Engine engine) {
        Objects.requireNonNull(engine, "engine");
        return "PyTorch".equals(engine.getEngineName()) && engine.hasCapability(CAPABILITY);
    }

    /** Whether {@code engine} has c10d collectives with {@code backend}. */
    public static boolean isAvailable(Engine engine, Backend backend) {
        return isAvailable(engine) && engine.hasCapability(capability(backend));
    }

    /** The capability {@code backend} needs: {@link #CAPABILITY_NCCL} or {@link #CAPABILITY}. */
    public static String capability(Backend backend) {
        return backend == Backend.NCCL ? CAPABILITY_NCCL : CAPABILITY;
    }

    /**
     * Joins the job {@code env} describes, with NCCL when {@code device} is a GPU and Gloo otherwise; returns
     * once all {@link DistributedEnv#worldSize()} ranks have joined (rank 0 serves the rendezvous store).
     *
     * @param device this rank's device ({@code cuda:LOCAL_RANK} for NCCL): arrays given to the operations must
     *     live there
     * @throws IllegalStateException when the engine lacks the backend's capability
     * @throws ai.djl.engine.EngineException when the rendezvous fails or times out (e.g. a rank never came)
     */
    public static ProcessGroup init(DistributedEnv env, Device device) {
        Objects.requireNonNull(env, "env");
        Objects.requireNonNull(device, "device");
        Backend backend = Backend.of(device);
        Engine engine = Engine.getInstance();
        if (!isAvailable(engine, backend)) {
            throw new IllegalStateException("engine " + engine.getEngineName() + " " + engine.getVersion()
                    + " does not advertise " + capability(backend) + ": " + backend
                    + " collectives need the project's libtorch JNI built with c10d"
                    + (backend == Backend.NCCL ? " against a CUDA libtorch" : ""));
        }
        if (env.masterPort() == 0 && env.isDistributed()) {
            throw new IllegalArgumentException("master port 0: the ranks need one agreed port for the rendezvous");
        }
        int deviceIndex = device.isGpu() ? Math.max(device.getDeviceId(), 0) : -1;
        long h = initNative(backend.ordinal(), env.masterAddr(), env.masterPort(), env.rank(), env.worldSize(),
                deviceIndex, env.timeout().toMillis());
        return new ProcessGroup(env, device, backend, h);
    }

    @Override
    public int rank() {
        return env.rank();
    }

    @Override
    public int worldSize() {
        return env.worldSize();
    }

    /** The job this group belongs to. */
    public DistributedEnv env() {
        return env;
    }

    /** This rank's device. */
    public Device device() {
        return device;
    }

    /** The c10d backend. */
    public Backend backend() {
        return backend;
    }

    /** {@inheritDoc} The arrays must live on {@link #device()}; an empty list does nothing. */
    @Override
    public void allReduceSum(NDList arrays) {
        long[] h = handles(arrays);
        if (h.length > 0) {
            allReduceSumNative(open(), h);
        }
    }

    /** {@inheritDoc} The arrays must live on {@link #device()}; an empty list does nothing. */
    @Override
    public void broadcast(NDList arrays, int root) {
        if (root < 0 || root >= worldSize()) {
            throw new IllegalArgumentException("root " + root + " outside a world of size " + worldSize());
        }
        long[] h = handles(arrays);
        if (h.length > 0) {
            broadcastNative(open(), h, root);
        }
    }

    /** {@inheritDoc} The host waits (on NCCL too: the device work before it is done on every rank). */
    @Override
    public void barrier() {
        barrierNative(open());
    }

    /** Leaves the job cleanly (waits for pending NCCL work); a second call does nothing. */
    @Override
    public void close() {
        long h = handle;
        if (h != 0) {
            handle = 0;
            destroyNative(h, false);
        }
    }

    /** Leaves the job at once, abandoning pending work (after an error, when other ranks may be gone). */
    public void abort() {
        long h = handle;
        if (h != 0) {
            handle = 0;
            destroyNative(h, true);
        }
    }

    @Override
    public String toString() {
        return "ProcessGroup[" + backend + ", rank " + rank() + " of " + worldSize() + ", " + device + "]";
    }

    private long open() {
        if (handle == 0) {
            throw new IllegalStateException(this + " is closed");
        }
        return handle;
    }

    private long[] handles(NDList arrays) {
        Objects.requireNonNull(arrays, "arrays");
        long[] h = new long[arrays.size()];
        for (int i = 0; i < h.length; i++) {
            NDArray a = arrays.get(i);
            if (!(a instanceof PtNDArray pt)) {
                throw new IllegalArgumentException("array " + i + " is not a PyTorch array: " + a.getClass().getName());
            }
            if (!a.getDevice().equals(device)) {
                throw new IllegalArgumentException("array " + i + " (" + a.getName() + ") lives on " + a.getDevice()
                        + ", this group on " + device);
            }
            h[i] = pt.getHandle();
        }
        return h;
    }

    private static native long initNative(int backend, String masterAddr, int masterPort, int rank, int worldSize,
            int deviceIndex, long timeoutMillis);

    private static native void allReduceSumNative(long group, long[] tensors);

    private static native void broadcastNative(long group, long[] tensors, int root);

    private static native void barrierNative(long group);

    private static native void destroyNative(long group, boolean abort);
}
