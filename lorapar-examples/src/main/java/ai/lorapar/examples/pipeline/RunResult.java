package ai.lorapar.examples.pipeline;

import com.google.gson.JsonObject;

/**
 * What one two-stage training run (one recipe, one seed) produced: the accuracy after each stage and what
 * each stage did.
 *
 * @param seed the seed
 * @param recipe the recipe's key ({@link PipelineSettings.Recipe#key()})
 * @param masks where the masks came from ("importance(...)", "random(...)", or "none")
 * @param stage1Elements elements trained in stage 1
 * @param stage2Elements elements trained in stage 2
 * @param afterSft accuracy after stage 1
 * @param afterGrpo accuracy after stage 2
 * @param sft what stage 1 did
 * @param grpo what stage 2 did
 */
public record RunResult(long seed, String recipe, String masks, long stage1Elements, long stage2Elements,
        Accuracy afterSft, Accuracy afterGrpo, Stage sft, Stage grpo) {

    /** The file in the run's folder. */
    public static final String FILE = "result.json";

    /**
     * One stage.
     *
     * @param steps optimizer steps
     * @param examples examples it trained on
     * @param tokens tokens it processed
     * @param firstLoss loss of the first step report
     * @param finalLoss loss of the last step
     * @param trainSeconds wall time of the stage without the evaluation at its end
     * @param firstReward GRPO: mean reward of the first step (NaN for SFT)
     * @param lastReward GRPO: mean reward of the last step
     * @param firstKl GRPO: mean KL from the reference at the first step
     * @param lastKl GRPO: at the last step
     */
    public record Stage(long steps, int examples, long tokens, double firstLoss, double finalLoss, double trainSeconds,
            double firstReward, double lastReward, double firstKl, double lastKl) {
    }

    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("seed", seed);
        o.addProperty("recipe", recipe);
        o.addProperty("masks", masks);
        o.addProperty("stage1_elements", stage1Elements);
        o.addProperty("stage2_elements", stage2Elements);
        o.add("after_sft", afterSft.toJson());
        o.add("after_grpo", afterGrpo.toJson());
        o.add("sft", stage(sft));
        o.add("grpo", stage(grpo));
        return o;
    }

    public static RunResult fromJson(JsonObject o) {
        return new RunResult(o.get("seed").getAsLong(), o.get("recipe").getAsString(), o.get("masks").getAsString(),
                o.get("stage1_elements").getAsLong(), o.get("stage2_elements").getAsLong(),
                Accuracy.fromJson(o.getAsJsonObject("after_sft")), Accuracy.fromJson(o.getAsJsonObject("after_grpo")),
                stage(o.getAsJsonObject("sft")), stage(o.getAsJsonObject("grpo")));
    }

    private static JsonObject stage(Stage s) {
        JsonObject o = new JsonObject();
        o.addProperty("steps", s.steps());
        o.addProperty("examples", s.examples());
        o.addProperty("tokens", s.tokens());
        number(o, "first_loss", s.firstLoss());
        number(o, "final_loss", s.finalLoss());
        o.addProperty("train_seconds", s.trainSeconds());
        number(o, "first_reward", s.firstReward());
        number(o, "last_reward", s.lastReward());
        number(o, "first_kl", s.firstKl());
        number(o, "last_kl", s.lastKl());
        return o;
    }

    private static Stage stage(JsonObject o) {
        return new Stage(o.get("steps").getAsLong(), o.get("examples").getAsInt(), o.get("tokens").getAsLong(),
                get(o, "first_loss"), get(o, "final_loss"), o.get("train_seconds").getAsDouble(), get(o, "first_reward"),
                get(o, "last_reward"), get(o, "first_kl"), get(o, "last_kl"));
    }

    private static void number(JsonObject o, String key, double v) {
        if (Double.isFinite(v)) {
            o.addProperty(key, v);
        }
    }

    private static double get(JsonObject o, String key) {
        return o.has(key) && !o.get(key).isJsonNull() ? o.get(key).getAsDouble() : Double.NaN;
    }
}
