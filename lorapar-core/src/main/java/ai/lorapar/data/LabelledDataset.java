package ai.lorapar.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The result of {@link ai.lorapar.split.Splitter#label}: every example with its votes, in input order, and the statistics. */
public final class LabelledDataset {

    private final List<String> teacherIds;
    private final List<LabelledExample> examples;
    private final LabelStatistics statistics;

    /**
     * Creates the dataset and computes its statistics.
     *
     * @param teacherIds the teachers, in vote order
     * @param examples the examples with their votes, in input order
     * @param cachedReplies replies taken from the label cache
     */
    public LabelledDataset(List<String> teacherIds, List<LabelledExample> examples, int cachedReplies) {
        this.teacherIds = List.copyOf(teacherIds);
        this.examples = List.copyOf(examples);
        this.statistics = computeStatistics(cachedReplies);
    }

    /**
     * The teachers, in the order of each example's votes.
     *
     * @return their ids
     */
    public List<String> teacherIds() {
        return teacherIds;
    }

    /** All examples, dropped ones included (their {@link LabelledExample#label()} is empty). */
    public List<LabelledExample> examples() {
        return examples;
    }

    /** The examples labelled {@code label}, in input order. */
    public List<Example> withLabel(SystemLabel label) {
        return examples.stream().filter(e -> e.label().orElse(null) == label).map(LabelledExample::example).toList();
    }

    /** The System-1 examples, in input order (stage 1's training data). */
    public List<Example> system1() {
        return withLabel(SystemLabel.SYSTEM_1);
    }

    /** The System-2 examples, in input order (stage 2's training data). */
    public List<Example> system2() {
        return withLabel(SystemLabel.SYSTEM_2);
    }

    /**
     * Counts and agreement of the run.
     *
     * @return the statistics
     */
    public LabelStatistics statistics() {
        return statistics;
    }

    /**
     * Writes the labelled examples (dropped ones are left out) to {@code file} atomically; see
     * {@link LabelledJsonl} for the record format.
     *
     * <p>A dataset in which no example got a label (every request failed, every teacher abstained, no
     * examples) is not written: an existing file, perhaps an earlier run's good output, is never replaced
     * by an empty one.
     *
     * @param file the output file
     * @throws IllegalStateException when no example is labelled, saying why; {@code file} is then untouched
     * @throws IOException naming the file when it cannot be written
     */
    public void writeJsonl(Path file) throws IOException {
        if (statistics.system1() + statistics.system2() == 0) {
            throw new IllegalStateException("not writing " + file + ": " + whyNothingLabelled()
                    + (java.nio.file.Files.exists(file) ? "; the existing file is left as it is" : ""));
        }
        LabelledJsonl.write(file, examples);
    }

    /**
     * Why no example got a label, for error messages: no examples, every vote a failed request, or
     * abstentions and dropped ties.
     *
     * @return the reason
     */
    public String whyNothingLabelled() {
        if (examples.isEmpty()) {
            return "there are no examples";
        }
        long votes = examples.stream().mapToLong(e -> e.votes().size()).sum();
        long failed = examples.stream().flatMap(e -> e.votes().stream()).filter(Vote::isFailure).count();
        if (votes > 0 && failed == votes) {
            String first = examples.stream().flatMap(e -> e.votes().stream()).filter(Vote::isFailure)
                    .map(Vote::note).findFirst().orElse("");
            return "every one of the " + votes + " teacher requests failed (first: " + first + ")";
        }
        return "no example of " + examples.size() + " got a label (" + failed + " failed requests, "
                + statistics.abstentionsByTeacher().values().stream().mapToInt(Integer::intValue).sum()
                + " abstentions, " + statistics.droppedTies() + " ties dropped)";
    }

    private LabelStatistics computeStatistics(int cachedReplies) {
        int s1 = 0;
        int s2 = 0;
        int ties = 0;
        int droppedTies = 0;
        int droppedNoVotes = 0;
        Map<String, Integer> abstentions = new LinkedHashMap<>();
        teacherIds.forEach(id -> abstentions.put(id, 0));
        for (LabelledExample e : examples) {
            switch (e.result().decision()) {
                case DROPPED_TIE -> droppedTies++;
                case DROPPED_NO_VOTES -> droppedNoVotes++;
                case TIE_BROKEN -> ties++;
                case MAJORITY -> { }
            }
            if (e.result().label() == SystemLabel.SYSTEM_1) {
                s1++;
            } else if (e.result().label() == SystemLabel.SYSTEM_2) {
                s2++;
            }
            e.votes().stream().filter(Vote::isAbstention).forEach(v -> abstentions.merge(v.teacherId(), 1, Integer::sum));
        }
        int kappaExamples = (int) examples.stream()
                .filter(e -> !e.votes().isEmpty() && e.votes().stream().noneMatch(Vote::isAbstention)).count();
        return new LabelStatistics(examples.size(), s1, s2, ties, droppedTies, droppedNoVotes, abstentions,
                cachedReplies, FleissKappa.ofTeachers(examples), kappaExamples);
    }
}
