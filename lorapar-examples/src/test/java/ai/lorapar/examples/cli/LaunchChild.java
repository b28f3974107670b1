package ai.lorapar.examples.cli;

/**
 * A program for {@link LaunchTest}: prints the launcher's variables (stdout) and a line on stderr; with argument
 * {@code fail=R}, rank R exits with code 7 and the others wait (up to a minute) to be stopped.
 */
public final class LaunchChild {
    private LaunchChild() {}

    public static void main(String[] args) throws InterruptedException {
        String rank = System.getenv("RANK");
        for (String v : new String[] {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
            "MASTER_PORT", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS",
            "LORAPAR_DIST_TIMEOUT_S"}) {
            System.out.println(v + "=" + System.getenv(v));
        }
        System.out.println("args=" + String.join(" ", args));
        System.err.println("to stderr");
        System.out.flush();
        System.err.flush();
        if (args.length > 0 && args[0].startsWith("fail=")) {
            if (args[0].equals("fail=" + rank)) {
                System.exit(7);
            }
            Thread.sleep(60_000);
        }
    }
}
