package ai.lorapar.examples.cli;

import ai.lorapar.engine.DistributedUnavailableException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code lorapar} command line: the LoRA-PAR stages as subcommands. Started by the {@code lorapar}
 * launcher at the repository root ({@code ./lorapar --help}).
 */
@Command(name = "lorapar", mixinStandardHelpOptions = true, versionProvider = Lorapar.Version.class,
        description = "LoRA-PAR for the JVM: label data System 1 / System 2, score importance, partition LoRA "
                + "elements, train in two stages, evaluate.",
        subcommands = {
            DataCommand.class,
            LabelCommand.class,
            ScoreCommand.class,
            PartitionCommand.class,
            TrainCommand.class,
            EvalCommand.class,
            RunCommand.class,
            Launch.class,
            CommandLine.HelpCommand.class
        },
        footer = {"", "Run 'lorapar COMMAND --help' for a command's options."})
public final class Lorapar implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(execute(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs the command line with {@code args}, writing to {@code out} / {@code err}; returns the exit code. */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new Lorapar());
        cl.getSubcommands().get("launch").setStopAtPositional(true); // the launched program's options are its own
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof DistributedUnavailableException) {
                // a rank > 0 of a job on stock DJL: rank 0 trains alone, this rank ends cleanly
                commandLine.getErr().println("lorapar " + commandLine.getCommandName() + ": " + e.getMessage());
                return 0;
            }
            // a failure the user can act on: say what went wrong, without a stack trace
            commandLine.getErr().println("lorapar " + commandLine.getCommandName() + ": " + e.getMessage());
            if (System.getenv("LORAPAR_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
            return 1;
        });
        return cl.execute(args);
    }

    /** The version from the jar's manifest, or "development" when run from classes. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Lorapar.class.getPackage().getImplementationVersion();
            return new String[] {"lorapar " + (v == null ? "(development build)" : v)};
        }
    }
}
