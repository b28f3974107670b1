package ai.lorapar.engine;

import ai.djl.engine.Engine;
import ai.lorapar.engine.RankProcesses.Result;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

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
            assertThat(r.code()).as(r.output()).isZero();
            assertThat(r.output()).contains("joined ProcessGroup[" + (useGpus() ? "NCCL" : "GLOO"))
                    .contains("OK rank " + r.rank()).doesNotContain("WRONG");
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
            assertThat(results.get(1).code()).as(results.get(1).output()).isIn(3, 134);
            assertNcclFailure(survivor);
        } else {
            assertThat(results.get(1).code()).as(results.get(1).output()).isEqualTo(3);
            assertThat(survivor.code()).as(survivor.output()).isZero();
            assertThat(survivor.output()).contains("FAILED-AS-EXPECTED rank 0: ProcessGroup Gloo rank 0 of 2: allReduceSum failed");
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
            assertThat(survivor.code()).as(survivor.output()).isZero();
            assertThat(survivor.output()).contains("FAILED-AS-EXPECTED rank 0: ProcessGroup Gloo rank 0 of 2: allReduceSum failed")
                    .containsIgnoringCase("timed out");
            assertThat(results.get(1).code()).as(results.get(1).output()).isZero();
        }
    }

    /** NCCL: either the error reached Java, or NCCL's watchdog ended the process saying why. */
    private static void assertNcclFailure(Result survivor) {
        assertThat(survivor.output()).as(survivor.output()).doesNotContain("WRONG");
        assertThat(survivor.output().contains("FAILED-AS-EXPECTED rank 0") || survivor.code() != 0
                && survivor.output().matches("(?s).*(Watchdog|NCCL|timed out|timeout).*")).as(survivor.output()).isTrue();
    }

    private static void assumeBackend() {
        ProcessGroup.Backend backend = useGpus() ? ProcessGroup.Backend.NCCL : ProcessGroup.Backend.GLOO;
        Assumptions.assumeTrue(ProcessGroup.isAvailable(Engine.getInstance(), backend),
                "engine lacks " + ProcessGroup.capability(backend));
    }

    private List<Result> runRanks(String mode) throws Exception {
        return runRanks(mode, TIMEOUT_S);
    }

    private List<Result> runRanks(String mode, int timeoutSeconds) throws Exception {
        return RankProcesses.run(dir, WORLD, timeoutSeconds, 4L * timeoutSeconds + 120, ProcessGroupChild.class, mode,
                useGpus() ? "gpu" : "cpu");
    }
}
