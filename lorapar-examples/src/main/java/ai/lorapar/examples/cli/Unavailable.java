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

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "SFT on System 1, then GRPO on System 2, under the stage masks (NOT AVAILABLE in this build: "
                    + "needs TwoStageTrainer).")
    static final class Train extends Base {
        @Override
        String needs() {
            return "ai.lorapar.train.TwoStageTrainer (SFT and GRPO)";
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Exact-match accuracy on GSM8K-format data (NOT AVAILABLE in this build: needs Gsm8kEvaluator).")
    static final class Eval extends Base {
        @Override
        String needs() {
            return "ai.lorapar.eval.Gsm8kEvaluator (answer extraction and exact match)";
        }
    }

    @Command(name = "run", mixinStandardHelpOptions = true,
            description = "The whole pipeline: label, score, partition, train, evaluate (NOT AVAILABLE in this build: needs "
                    + "TwoStageTrainer, Gsm8kEvaluator and the trained embedded model).")
    static final class Run extends Base {
        @Override
        String needs() {
            return "TwoStageTrainer, Gsm8kEvaluator and the trained embedded model's weights";
        }
    }
}
