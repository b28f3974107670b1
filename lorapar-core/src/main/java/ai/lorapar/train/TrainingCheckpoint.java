package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The contents of one training checkpoint folder, for either stage:
 *
 * <pre>
 *   trainer_state.json       where the stage stands, and the run's fingerprints ({@link TrainerState})
 *   adapter/                 the PEFT adapter, for users (LoRA)            | model/ (full-parameter)
 *   lora_state.safetensors   A, B (and A₀, B₀) exactly, for resuming (LoRA) | parameters.safetensors
 *   optimizer.safetensors    AdamW's moments and step ({@link MaskedAdamW#saveState})
 *   masks.safetensors        the stage's element masks (absent when all elements train)
 * </pre>
 *
 * The LoRA dropout masks are a hash of (seed, micro-batch, layer, call), reseeded before every
 * micro-batch, so the data position in {@link TrainerState} is all the random state there is.
 */
public final class TrainingCheckpoint {
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String MASKS = "masks.safetensors";

    private TrainingCheckpoint() {}

    /** Writes every part into {@code folder} (normally the temporary folder of {@link CheckpointStore#write}). */
    public static void write(Path folder, TrainingTarget target, MaskedAdamW optimizer, Map<String, NDArray> masks,
            TrainerState state) throws IOException {
        target.saveForUsers(folder);
        target.saveState(folder);
        optimizer.saveState(folder.resolve(OPTIMIZER));
        if (masks != null) {
            Map<String, NDArray> bools = new LinkedHashMap<>();
            try {
                for (Map.Entry<String, NDArray> e : masks.entrySet()) {
                    bools.put(e.getKey(), e.getValue().toType(DataType.BOOLEAN, true));
                }
                SafetensorsWriter.write(folder.resolve(MASKS), bools, Map.of("format", "lorapar-stage-mask",
                        "stage", state.stage()));
            } finally {
                bools.values().forEach(NDArray::close);
            }
        }
        state.write(folder);
    }

    /**
     * Resumes from {@code folder}: reads its state, refuses it when it belongs to another run, else
     * restores the trained parameters and the optimizer exactly.
     *
     * @param fingerprints this run's fingerprints ({@link Fingerprints} keys)
     * @param digest this run's model digest at the stage's start
     * @throws CheckpointMismatchException naming every difference, before anything changes
     */
    public static TrainerState restore(Path folder, String stage, Map<String, String> fingerprints, ModelDigest digest,
            TrainingTarget target, MaskedAdamW optimizer) throws IOException {
        TrainerState state = TrainerState.read(folder);
        List<String> diff = Fingerprints.differences(state, stage, fingerprints, digest);
        if (!diff.isEmpty()) {
            throw new CheckpointMismatchException(folder, diff);
        }
        target.loadState(folder);
        optimizer.loadState(folder.resolve(OPTIMIZER));
        if (optimizer.stepCount() != state.step()) {
            throw new IOException(folder + ": " + OPTIMIZER + " is at step " + optimizer.stepCount() + ", "
                    + TrainerState.FILE + " at step " + state.step());
        }
        return state;
    }
}
