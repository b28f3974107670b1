package ai.lorapar.engine;

import ai.djl.ndarray.NDList;

/**
 * The collective operations data-parallel training needs, between the {@link #worldSize()} processes
 * (ranks) of one job. Every rank calls the same operations in the same order with arrays of the same
 * shapes and dtypes; the operations work in place on the arrays given.
 *
 * <p>Implementations: {@link #single()} (one process, every operation a no-op), the project's libtorch
 * JNI through c10d ({@code ProcessGroup}: NCCL on GPUs, Gloo on CPUs), and an in-JVM one used by tests.
 */
public interface Collective extends AutoCloseable {

    /** This process's rank, {@code 0 <= rank < worldSize}. */
    int rank();

    /** The number of ranks in the job. */
    int worldSize();

    /** Replaces every array by its element-wise sum over all ranks (in place). */
    void allReduceSum(NDList arrays);

    /** Replaces every array by rank {@code root}'s array (in place). */
    void broadcast(NDList arrays, int root);

    /** Returns once every rank has called it. */
    void barrier();

    /** Whether this rank writes what is written once per job (checkpoints, adapters, reports). */
    default boolean isLeader() {
        return rank() == 0;
    }

    /** Leaves the job; further calls fail. */
    @Override
    void close();

    /** The collective of a job of one process: sums and broadcasts leave the arrays as they are. */
    static Collective single() {
        return SingleProcess.INSTANCE;
    }

    /** {@link Collective#single()}. */
    enum SingleProcess implements Collective {
        INSTANCE;

        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int worldSize() {
            return 1;
        }

        @Override
        public void allReduceSum(NDList arrays) {}

        @Override
        public void broadcast(NDList arrays, int root) {
            if (root != 0) {
                throw new IllegalArgumentException("root " + root + " outside a world of size 1");
            }
        }

        @Override
        public void barrier() {}

        @Override
        public void close() {}
    }
}
