package ai.lorapar.examples.pipeline;

import ai.lorapar.data.Example;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What every unit of work of a run needs, decided once by the parent process: the settings, the model folder,
 * the labelled training examples by system, the test examples and the group of each (its {@code kind}, or its
 * system label when the data has no kind). Saved as one JSON file that worker processes read, so that every
 * process trains and evaluates on exactly the same examples.
 *
 * @param settings the run's settings
 * @param modelDir the model folder (or {@code random:SHAPE})
 * @param out the run's output folder
 * @param system1 System-1 training examples (stage 1 and the System-1 importance)
 * @param system2 System-2 training examples (stage 2 and the System-2 importance)
 * @param test test examples, ordered by group
 * @param groupOf the group of each test example, by id
 * @param groups the groups in report order (e.g. one-step, multi-step)
 * @param groupedBy what the groups are: {@code kind} or {@code label}
 */
public record PipelineContext(PipelineSettings settings, String modelDir, Path out, List<Example> system1,
        List<Example> system2, List<Example> test, Map<String, String> groupOf, List<String> groups, String groupedBy) {

    /** The file name under {@code out/work/}. */
    public static final String FILE = "context.json";

    public PipelineContext {
        Objects.requireNonNull(settings, "settings");
        Objects.requireNonNull(out, "out");
        system1 = List.copyOf(system1);
        system2 = List.copyOf(system2);
        test = List.copyOf(test);
        groupOf = Map.copyOf(groupOf);
        groups = List.copyOf(groups);
    }

    /** The test examples of one group, in order. */
    public List<Example> testGroup(String group) {
        List<Example> g = new ArrayList<>();
        for (Example e : test) {
            if (group.equals(groupOf.get(e.id()))) {
                g.add(e);
            }
        }
        return g;
    }

    /** Folder of one seed's shared files (adapter init, importance maps, masks). */
    public Path seedDir(long seed) {
        return out.resolve("seeds").resolve("seed-" + seed);
    }

    /** Folder of one training run. */
    public Path runDir(long seed, PipelineSettings.Recipe recipe) {
        return seedDir(seed).resolve(recipe.key());
    }

    /** Folder of one training run at θ ({@code null}: the run's θ, {@link #runDir(long, PipelineSettings.Recipe)}). */
    public Path runDir(long seed, PipelineSettings.Recipe recipe, Double theta) {
        return theta == null ? runDir(seed, recipe)
                : seedDir(seed).resolve(recipe.key() + "-theta-" + PipelineSettings.number(theta));
    }

    /** The main seed (the first). */
    public long mainSeed() {
        return settings.seeds.get(0);
    }

    public void save(Path file) throws IOException {
        JsonObject o = new JsonObject();
        o.add("settings", JsonParser.parseString(settings.toJson()));
        o.addProperty("model_dir", modelDir);
        o.addProperty("out", out.toAbsolutePath().toString());
        o.add("system1", examples(system1, null));
        o.add("system2", examples(system2, null));
        o.add("test", examples(test, groupOf));
        JsonArray g = new JsonArray();
        groups.forEach(g::add);
        o.add("groups", g);
        o.addProperty("grouped_by", groupedBy);
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.writeString(file, o.toString(), StandardCharsets.UTF_8);
    }

    public static PipelineContext load(Path file) throws IOException {
        JsonObject o = JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
        Map<String, String> groupOf = new LinkedHashMap<>();
        List<Example> test = read(o.getAsJsonArray("test"), groupOf);
        List<String> groups = new ArrayList<>();
        o.getAsJsonArray("groups").forEach(e -> groups.add(e.getAsString()));
        return new PipelineContext(PipelineSettings.fromJson(o.get("settings").toString()), o.get("model_dir").getAsString(),
                Path.of(o.get("out").getAsString()), read(o.getAsJsonArray("system1"), null),
                read(o.getAsJsonArray("system2"), null), test, groupOf, groups, o.get("grouped_by").getAsString());
    }

    private static JsonArray examples(List<Example> examples, Map<String, String> groupOf) {
        JsonArray a = new JsonArray();
        for (Example e : examples) {
            JsonObject x = new JsonObject();
            x.addProperty("id", e.id());
            x.addProperty("question", e.question());
            x.addProperty("answer", e.answer());
            if (groupOf != null) {
                x.addProperty("group", groupOf.get(e.id()));
            }
            a.add(x);
        }
        return a;
    }

    private static List<Example> read(JsonArray a, Map<String, String> groupOf) {
        List<Example> out = new ArrayList<>();
        for (JsonElement el : a) {
            JsonObject x = el.getAsJsonObject();
            Example e = Example.of(x.get("id").getAsString(), x.get("question").getAsString(), x.get("answer").getAsString());
            out.add(e);
            if (groupOf != null) {
                groupOf.put(e.id(), x.get("group").getAsString());
            }
        }
        return out;
    }
}
