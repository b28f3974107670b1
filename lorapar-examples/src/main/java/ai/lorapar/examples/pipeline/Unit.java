package ai.lorapar.examples.pipeline;

import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * One unit of work: the preparation of a seed ({@code recipe == null}) or the training run of a recipe at a seed.
 * Spelled on a worker's command stream as {@code seed 2} or {@code run 2 random}.
 */
public record Unit(long seed, Recipe recipe) {

    public static Unit prepare(long seed) {
        return new Unit(seed, null);
    }

    public static Unit run(long seed, Recipe recipe) {
        return new Unit(seed, Objects.requireNonNull(recipe, "recipe"));
    }

    /** Whether this is a seed's preparation. */
    public boolean isPrepare() {
        return recipe == null;
    }

    /** The unit a run needs first: its seed's preparation (null for a preparation). */
    public Unit dependency() {
        return isPrepare() ? null : prepare(seed);
    }

    /** The command-stream spelling. */
    public String command() {
        return isPrepare() ? "seed " + seed : "run " + seed + " " + recipe.key();
    }

    public static Unit parse(String command) {
        String[] w = command.strip().split("\\s+");
        if (w.length == 2 && w[0].equals("seed")) {
            return prepare(Long.parseLong(w[1]));
        }
        if (w.length == 3 && w[0].equals("run")) {
            return run(Long.parseLong(w[1]), Recipe.parse(w[2]));
        }
        throw new IllegalArgumentException("not a unit: '" + command + "' (seed N, or run N RECIPE)");
    }

    /** The result file this unit writes. */
    public Path resultFile(PipelineContext c) {
        return isPrepare() ? c.seedDir(seed).resolve(SeedResult.FILE) : c.runDir(seed, recipe).resolve(RunResult.FILE);
    }

    /** Runs the unit in this process on {@code handle}'s model. */
    public void execute(ModelHandle handle, PipelineContext c, boolean progress) throws IOException {
        if (isPrepare()) {
            Units.prepareSeed(handle, c, seed, progress);
        } else {
            Units.trainRun(handle, c, seed, recipe, progress);
        }
    }

    @Override
    public String toString() {
        return isPrepare() ? "seed " + seed + " (adapters, importance, partition)" : "seed " + seed + " " + recipe.key();
    }
}
