package ai.lorapar.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** {@link Launch}: options, the children's environment and command, prefixed output, and a failing rank. */
class LaunchTest {

    private static Launch parse(String... args) {
        Launch launch = new Launch();
        CommandLine cl = new CommandLine(launch);
        cl.setStopAtPositional(true);
        cl.parseArgs(args);
        return launch;
    }

    @Test
    void childrenGetRanksAddressAndMulticastOff() {
        Launch.Plan plan = parse("--nproc", "2", "--nnodes", "2", "--node-rank", "1", "--master-addr", "node0",
                "--master-port", "29511", "--timeout", "30", "--", "train", "--help").plan();
        assertThat(plan.worldSize()).isEqualTo(4);
        Map<String, String> env = plan.childEnvironment(1);
        assertThat(env).containsEntry("RANK", "3").containsEntry("WORLD_SIZE", "4").containsEntry("LOCAL_RANK", "1")
                .containsEntry("LOCAL_WORLD_SIZE", "2").containsEntry("MASTER_ADDR", "node0")
                .containsEntry("MASTER_PORT", "29511").containsEntry("LORAPAR_DIST_TIMEOUT_S", "30.0")
                .containsEntry("NCCL_NVLS_ENABLE", "0").containsEntry("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")
                .containsEntry("NVSHMEM_DISABLE_NVLS", "1");
        assertThat(plan.childEnvironment(0)).containsEntry("RANK", "2");
        Launch.Plan local = parse("--nproc", "2", "x.Main").plan();
        assertThat(local.masterAddr()).isEqualTo("127.0.0.1");
        assertThat(local.masterPort()).isBetween(1, 65535);
        assertThat(local.childEnvironment(0)).doesNotContainKey("LORAPAR_DIST_TIMEOUT_S");
    }

    @Test
    void theProgramIsAMainClassOrALoraparSubcommand() {
        assertThat(Launch.childCommand("java", List.of("-Xmx1g"), "a.jar", List.of("ai.lorapar.examples.X", "--n", "1")))
                .containsExactly("java", "-Xmx1g", "-cp", "a.jar", "ai.lorapar.examples.X", "--n", "1");
        assertThat(Launch.childCommand("java", List.of(), "a.jar", List.of("train", "--config", "c.json")))
                .containsExactly("java", "-cp", "a.jar", Launch.LORAPAR_MAIN, "train", "--config", "c.json");
        assertThat(Launch.isMainClass("data.jsonl")).isTrue(); // a dot decides: subcommands have none
        assertThat(Launch.isMainClass("score")).isFalse();
        assertThat(parse("--nproc", "1", "--", "train", "--help").program).containsExactly("train", "--help");
        assertThat(parse("--nproc", "1", "train", "--nproc", "5").program).containsExactly("train", "--nproc", "5");
    }

    @Test
    void badOptionsAreRefusedByTheCommandLine() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Lorapar.execute(new PrintWriter(out, true), new PrintWriter(err, true),
                "launch", "--nproc", "1", "--nnodes", "2", "--", "train");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("--master-port is required with --nnodes 2");
        err.getBuffer().setLength(0);
        code = Lorapar.execute(new PrintWriter(out, true), new PrintWriter(err, true),
                "launch", "--nproc", "0", "--", "train");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("--nproc 0 is not positive");
        err.getBuffer().setLength(0);
        code = Lorapar.execute(new PrintWriter(out, true), new PrintWriter(err, true),
                "launch", "--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--master-port", "1", "--", "train");
        assertThat(code).isEqualTo(2);
        assertThat(err.toString()).contains("--node-rank 2 outside 0..1");
    }

    private static List<String> childCommand(String... args) {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        return Launch.childCommand(Launch.javaExecutable(), List.of("-Xmx64m", "-XX:TieredStopAtLevel=1"),
                cp.replace(File.pathSeparator + File.pathSeparator, File.pathSeparator),
                List.of(LaunchChild.class.getName(), String.join(" ", args)).subList(0, args.length == 0 ? 1 : 2));
    }

    @Test
    @Timeout(120)
    void childrenRunWithTheirRanksAndPrefixedOutput() {
        Launch.Plan plan = new Launch.Plan(2, 1, 0, "127.0.0.1", 29555, Duration.ofSeconds(5), null);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = plan.run(childCommand("hello"), Map.of("NCCL_NVLS_ENABLE", "1"), new PrintWriter(out), new PrintWriter(err));
        assertThat(code).as(err.toString()).isZero();
        for (int r = 0; r < 2; r++) {
            assertThat(out.toString()).contains("[rank " + r + "] RANK=" + r, "[rank " + r + "] LOCAL_RANK=" + r,
                    "[rank " + r + "] WORLD_SIZE=2", "[rank " + r + "] MASTER_PORT=29555",
                    "[rank " + r + "] NCCL_NVLS_ENABLE=0", "[rank " + r + "] args=hello");
            assertThat(err.toString()).contains("[rank " + r + "] to stderr");
        }
    }

    @Test
    @Timeout(120)
    void aFailingRankStopsTheOthersAndIsNamed() {
        Launch.Plan plan = new Launch.Plan(3, 1, 0, "127.0.0.1", 29556, Duration.ofMillis(500), null);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = plan.run(childCommand("fail=1"), Map.of(), new PrintWriter(out), new PrintWriter(err));
        assertThat(code).isEqualTo(7);
        assertThat(err.toString()).contains("lorapar launch: rank 1 failed with exit code 7")
                .contains("rank 0: stopped (143)").contains("rank 2: stopped (143)");
    }
}
