package ai.lorapar.train;

import java.util.List;
import java.util.Optional;

/** What a {@link TwoStageTrainer} run did, stage by stage, in order. */
public record TrainingReport(List<StageReport> stages) {
    public TrainingReport {
        stages = List.copyOf(stages);
    }

    /** The report of the stage named {@code name} ("sft", "grpo"), if it ran. */
    public Optional<StageReport> stage(String name) {
        return stages.stream().filter(s -> s.stage().equals(name)).findFirst();
    }

    /** The GRPO stage's report. */
    public StageReport grpo() {
        return stage(ai.lorapar.train.grpo.GrpoTrainer.STAGE).orElseThrow(
                () -> new IllegalStateException("no GRPO stage in this report"));
    }

    /** The SFT stage's report. */
    public StageReport sft() {
        return stage(SftTrainer.STAGE).orElseThrow(() -> new IllegalStateException("no SFT stage in this report"));
    }
}
