package ai.lorapar.examples.pipeline;

import ai.lorapar.examples.pipeline.PipelineSettings.Recipe;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * One unit of work: the preparation of a seed ({@code recipe == null}) or the training run of a recipe at a seed,
 * at the run's θ ({@code theta == null}) or at another θ (LoRA-PAR's accuracy-against-θ points). Spelled on a
 * worker's command stream as {@code seed 2}, {@code run 2 random} or {@code run 1 lora-par theta=0.5}.
 */
public record Unit(long seed, Recipe recipe, Double theta) {

    public static Unit prepare(long seed) {
        return new Unit(seed, null, null);
    }

    public static Unit run(long seed, Recipe recipe) {
        return new Unit(seed, Objects.requireNonNull(recipe, "recipe"), null);
    }

    /** LoRA-PAR trained at {@code theta} (masks from the seed's preparation, {@link Units#thetaMasksFile}). */
    public static Unit runAtTheta(long seed, double theta) {
        return new Unit(seed, Recipe.LORA_PAR, theta);
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
        return isPrepare() ? "seed " + seed : "run " + seed + " " + recipe.key()
                + (theta == null ? "" : " theta=" + PipelineSettings.number(theta));
    }

    public static Unit parse(String command) {
        String[] w = command.strip().split("\\s+");
        if (w.length == 2 && w[0].equals("seed")) {
            return prepare(Long.parseLong(w[1]));
        }
        if (w.length == 3 && w[0].equals("run")) {
            return run(Long.parseLong(w[1]), Recipe.parse(w[2]));
        }
        if (w.length == 4 && w[0].equals("run") && w[3].startsWith("theta=")) {
            return new Unit(Long.parseLong(w[1]), Recipe.parse(w[2]), Double.parseDouble(w[3].substring(6)));
        }
        throw new IllegalArgumentException("not a unit: '" + command + "' (seed N, run N RECIPE, or run N RECIPE theta=T)");
    }

    /** The result file this unit writes. */
    public Path resultFile(PipelineContext c) {
        return isPrepare() ? c.seedDir(seed).resolve(SeedResult.FILE) : c.runDir(seed, recipe, theta).resolve(RunResult.FILE);
    }

    /** Runs the unit in this process on {@code handle}'s model. */
    public void execute(ModelHandle handle, PipelineContext c, boolean progress) throws IOException {
        if (isPrepare()) {
            Units.prepareSeed(handle, c, seed, progress);
        } else {
            Units.trainRun(handle, c, seed, recipe, theta, progress);
        }
    }

    @Override
    public String toString() {
        return isPrepare() ? "seed " + seed + " (adapters, importance, partition)" : "seed " + seed + " " + recipe.key()
                + (theta == null ? "" : " at θ " + PipelineSettings.number(theta));
    }
}
