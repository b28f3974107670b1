package ai.lorapar.examples.pipeline;

import ai.lorapar.partition.PartitionStatistics;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * What the preparation of one seed produced: the accuracy of the model with freshly initialised adapters
 * (before training), both importance maps, the partition (and the one at the compared α = β), the random
 * baseline's counts and the active shares against θ.
 *
 * @param seed the seed (LoRA init, importance sample, random baseline, both stages)
 * @param before accuracy with the adapters as initialised, before any training; null for a seed other than the
 *     main one (no finding needs it, and it saves an evaluation)
 * @param system1 System-1 importance
 * @param system2 System-2 importance
 * @param partition the run's partition (θ, α, β): element counts, overall row
 * @param sharedPartition the partition at α = β = compareShare, or null when that recipe is not run
 * @param randomStage1 elements of the random baseline's stage-1 mask
 * @param randomStage2 elements of its stage-2 mask
 * @param sweep the partition's counts at each θ of the sweep (α, β of the run)
 * @param initSeconds adapters made and saved
 * @param importanceSeconds both systems scored
 * @param partitionSeconds partitions, masks and sweep
 */
public record SeedResult(long seed, Accuracy before, Importance system1, Importance system2,
        PartitionStatistics.Row partition, PartitionStatistics.Row sharedPartition, long randomStage1, long randomStage2,
        List<SweepPoint> sweep, double initSeconds, double importanceSeconds, double partitionSeconds) {

    /** The file in the seed's folder. */
    public static final String FILE = "seed.json";

    /** One system's importance map: examples scored, elements, total importance, time. */
    public record Importance(long examples, long elements, double sum, double max, double seconds) {
    }

    /** The partition at one θ. */
    public record SweepPoint(double theta, PartitionStatistics.Row counts) {
    }

    public JsonObject toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("seed", seed);
        if (before != null) {
            o.add("before", before.toJson());
        }
        o.add("importance_system1", importance(system1));
        o.add("importance_system2", importance(system2));
        o.add("partition", row(partition));
        if (sharedPartition != null) {
            o.add("partition_shared", row(sharedPartition));
        }
        o.addProperty("random_stage1", randomStage1);
        o.addProperty("random_stage2", randomStage2);
        JsonArray s = new JsonArray();
        for (SweepPoint p : sweep) {
            JsonObject x = row(p.counts());
            x.addProperty("theta", p.theta());
            s.add(x);
        }
        o.add("theta_sweep", s);
        o.addProperty("init_seconds", initSeconds);
        o.addProperty("importance_seconds", importanceSeconds);
        o.addProperty("partition_seconds", partitionSeconds);
        return o;
    }

    public static SeedResult fromJson(JsonObject o) {
        List<SweepPoint> sweep = new ArrayList<>();
        for (JsonElement e : o.getAsJsonArray("theta_sweep")) {
            sweep.add(new SweepPoint(e.getAsJsonObject().get("theta").getAsDouble(), row(e.getAsJsonObject())));
        }
        return new SeedResult(o.get("seed").getAsLong(), o.has("before") ? Accuracy.fromJson(o.getAsJsonObject("before")) : null,
                importance(o.getAsJsonObject("importance_system1")), importance(o.getAsJsonObject("importance_system2")),
                row(o.getAsJsonObject("partition")), o.has("partition_shared") ? row(o.getAsJsonObject("partition_shared"))
                        : null, o.get("random_stage1").getAsLong(), o.get("random_stage2").getAsLong(), sweep,
                o.get("init_seconds").getAsDouble(), o.get("importance_seconds").getAsDouble(),
                o.get("partition_seconds").getAsDouble());
    }

    private static JsonObject importance(Importance i) {
        JsonObject o = new JsonObject();
        o.addProperty("examples", i.examples());
        o.addProperty("elements", i.elements());
        o.addProperty("sum", i.sum());
        o.addProperty("max", i.max());
        o.addProperty("seconds", i.seconds());
        return o;
    }

    private static Importance importance(JsonObject o) {
        return new Importance(o.get("examples").getAsLong(), o.get("elements").getAsLong(), o.get("sum").getAsDouble(),
                o.get("max").getAsDouble(), o.get("seconds").getAsDouble());
    }

    static JsonObject row(PartitionStatistics.Row r) {
        JsonObject o = new JsonObject();
        o.addProperty("elements", r.elements());
        o.addProperty("system1_kept", r.system1Kept());
        o.addProperty("system2_kept", r.system2Kept());
        o.addProperty("system1_only", r.system1Only());
        o.addProperty("system2_only", r.system2Only());
        o.addProperty("shared", r.shared());
        o.addProperty("stage1", r.stage1());
        o.addProperty("stage2", r.stage2());
        return o;
    }

    static PartitionStatistics.Row row(JsonObject o) {
        return new PartitionStatistics.Row("all", o.get("elements").getAsLong(), o.get("system1_kept").getAsLong(),
                o.get("system2_kept").getAsLong(), o.get("system1_only").getAsLong(), o.get("system2_only").getAsLong(),
                o.get("shared").getAsLong(), o.get("stage1").getAsLong(), o.get("stage2").getAsLong());
    }
}
