package ai.lorapar.model.generate;

import ai.lorapar.model.DecoderModel;

import java.util.List;

/** Tests outside this package: runs a {@link Generator} in a given decode mode. */
public final class GeneratorAccess {
    /** Names of {@link Generator.DecodeMode}. */
    public enum Mode {
        EAGER, STATIC, GRAPH
    }

    private GeneratorAccess() {}

    /** Generates with the decode steps forced to {@code mode}; returns the result and the mode actually used. */
    public static Run generate(DecoderModel model, List<long[]> prompts, SamplingConfig config, Mode mode) {
        Generator g = new Generator(model);
        g.setDecodeMode(Generator.DecodeMode.valueOf(mode.name()));
        GenerationResult r = g.generate(prompts, config);
        return new Run(r, g.lastDecodeMode() == null ? null : Mode.valueOf(g.lastDecodeMode().name()));
    }

    /** The mode a default {@link Generator} used for its last call (null for none, or EAGER/STATIC/GRAPH). */
    public static Mode lastMode(Generator g) {
        return g.lastDecodeMode() == null ? null : Mode.valueOf(g.lastDecodeMode().name());
    }

    /** A result and the mode its decode steps ran in. */
    public record Run(GenerationResult result, Mode used) {}
}
