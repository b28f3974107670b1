package ai.lorapar.examples.embedded;

import java.nio.file.Path;

/**
 * Writes the embedded default's committed files: the tiny model's tokenizer and config, and the word-problem
 * split. Run from the repository root:
 *
 * <pre>
 * MakeEmbeddedDefault [OUT_DIR] [--seed N] [--train N] [--test N]
 *   OUT_DIR defaults to lorapar-examples/src/main/resources/embedded
 * </pre>
 *
 * With the defaults (seed {@value EmbeddedDefault#SEED}, {@value EmbeddedDefault#TRAIN_SIZE} train and
 * {@value EmbeddedDefault#TEST_SIZE} test items) it rewrites the committed files byte for byte.
 */
public final class MakeEmbeddedDefault {

    private MakeEmbeddedDefault() {
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of("lorapar-examples/src/main/resources/embedded");
        long seed = EmbeddedDefault.SEED;
        int train = EmbeddedDefault.TRAIN_SIZE;
        int test = EmbeddedDefault.TEST_SIZE;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--seed" -> seed = Long.parseLong(args[++i]);
                case "--train" -> train = Integer.parseInt(args[++i]);
                case "--test" -> test = Integer.parseInt(args[++i]);
                default -> {
                    if (args[i].startsWith("--")) {
                        System.err.println("unknown option " + args[i]
                                + "; usage: MakeEmbeddedDefault [OUT_DIR] [--seed N] [--train N] [--test N]");
                        System.exit(64);
                    }
                    out = Path.of(args[i]);
                }
            }
        }
        Path model = out.resolve("tiny-arith");
        Path data = out.resolve("word-problems");
        EmbeddedDefault.writeModelFiles(model, TinyModelConfig.DEFAULT);
        WordProblems.Split split = EmbeddedDefault.writeData(data, WordProblems.builder().seed(seed).build(), train, test);
        System.out.printf("Wrote %s (tokenizer, config; %,d parameters) and %s (%d train, %d test items, seed %d)%n",
                model, TinyModelConfig.DEFAULT.parameters(EmbeddedTokenizer.defaultVocabulary().size()), data,
                split.train().size(), split.test().size(), seed);
    }
}
