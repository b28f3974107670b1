package ai.lorapar.examples.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * Subcommands whose library part is not in lorapar-core yet. They exist so that {@code lorapar --help} shows the
 * whole pipeline, and they say plainly that they cannot run: no fake output.
 */
final class Unavailable {

    private Unavailable() {
    }

    private abstract static class Base implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        abstract String needs();

        @Override
        public Integer call() {
            spec.commandLine().getErr().println("lorapar " + spec.name() + ": not available in this build: it needs "
                    + needs() + ", which lorapar-core does not have yet.");
            return Lorapar.NOT_AVAILABLE;
        }
    }

    @Command(name = "run", mixinStandardHelpOptions = true,
            description = "The whole pipeline: label, score, partition, train, evaluate (NOT AVAILABLE in this build: needs "
                    + "the trained embedded model).")
    static final class Run extends Base {
        @Override
        String needs() {
            return "the trained embedded model's weights";
        }
    }
}
