package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.io.SafetensorsDtype;
import ai.lorapar.io.SafetensorsFile;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.model.DecoderModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What a trainer updates: the LoRA adapters of a model ({@link #lora}) or every weight of a small model
 * ({@link #fullParameters}), with how each is checkpointed. Trainers of both stages take one.
 */
public interface TrainingTarget {

    /** The LoRA adapters' A and B (base weights frozen). */
    static TrainingTarget lora(LoraModel lora) {
        return new Lora(Objects.requireNonNull(lora, "lora"));
    }

    /**
     * Every weight of {@code model} ({@link DecoderModel#trainableWeights()}: fp32, gradients attached),
     * e.g. to train a small model from scratch. Installed adapters, if any, are not trained.
     */
    static TrainingTarget fullParameters(DecoderModel model) {
        return new Full(Objects.requireNonNull(model, "model"));
    }

    /** The model whose forward pass trains. */
    DecoderModel model();

    /** The trained fp32 leaves by name, with gradients attached. */
    Map<String, NDArray> parameters();

    /** What is trained, as text for checkpoint fingerprints. */
    String description();

    /** Restarts the dropout masks from {@code seed} (before each micro-batch, so resumes need no RNG state). */
    void reseedDropout(long seed);

    /** Writes the form users load into {@code checkpoint} (a PEFT adapter folder, or a model folder). */
    void saveForUsers(Path checkpoint) throws IOException;

    /** Writes the exact training state into {@code checkpoint}. */
    void saveState(Path checkpoint) throws IOException;

    /** Restores what {@link #saveState} wrote, exactly, in place. */
    void loadState(Path checkpoint) throws IOException;

    /** LoRA adapters. */
    final class Lora implements TrainingTarget {
        static final String ADAPTER = "adapter";
        static final String STATE = "lora_state.safetensors";
        private final LoraModel lora;

        private Lora(LoraModel lora) {
            this.lora = lora;
        }

        public LoraModel lora() {
            return lora;
        }

        @Override
        public DecoderModel model() {
            return lora.model();
        }

        @Override
        public Map<String, NDArray> parameters() {
            return lora.parameters();
        }

        @Override
        public String description() {
            return "lora " + lora.config() + " on " + lora.modules().size() + " modules, " + lora.parameterCount()
                    + " parameters";
        }

        @Override
        public void reseedDropout(long seed) {
            lora.reseedDropout(seed);
        }

        @Override
        public void saveForUsers(Path checkpoint) throws IOException {
            lora.save(checkpoint.resolve(ADAPTER));
        }

        @Override
        public void saveState(Path checkpoint) throws IOException {
            lora.saveState(checkpoint.resolve(STATE));
        }

        @Override
        public void loadState(Path checkpoint) throws IOException {
            lora.loadState(checkpoint.resolve(STATE));
        }
    }

    /** All weights of a model. */
    final class Full implements TrainingTarget {
        static final String MODEL = "model";
        static final String STATE = "parameters.safetensors";
        static final String FORMAT = "lorapar-parameters";
        private final DecoderModel model;
        private final Map<String, NDArray> params;

        private Full(DecoderModel model) {
            this.model = model;
            this.params = model.trainableWeights();
        }

        @Override
        public DecoderModel model() {
            return model;
        }

        @Override
        public Map<String, NDArray> parameters() {
            return params;
        }

        @Override
        public String description() {
            long n = 0;
            for (NDArray p : params.values()) {
                n += p.size();
            }
            return "full-parameter " + params.size() + " tensors, " + n + " parameters";
        }

        @Override
        public void reseedDropout(long seed) {
            // the decoder has no dropout of its own
        }

        @Override
        public void saveForUsers(Path checkpoint) throws IOException {
            model.save(checkpoint.resolve(MODEL));
        }

        @Override
        public void saveState(Path checkpoint) throws IOException {
            try (NDManager s = NDManager.newBaseManager(Device.cpu())) {
                Map<String, NDArray> host = new LinkedHashMap<>();
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    NDArray d = e.getValue().stopGradient();
                    NDArray h = d.toDevice(Device.cpu(), true);
                    if (h != d) {
                        d.close();
                    }
                    h.attach(s);
                    host.put(e.getKey(), h);
                }
                SafetensorsWriter.write(checkpoint.resolve(STATE), host, Map.of("format", FORMAT));
            }
        }

        @Override
        public void loadState(Path checkpoint) throws IOException {
            Path file = checkpoint.resolve(STATE);
            try (SafetensorsFile f = SafetensorsFile.open(file); NDManager s = model.manager().newSubManager()) {
                if (!FORMAT.equals(f.metadata().get("format"))) {
                    throw new IOException(file + ": not a parameter file (metadata format is "
                            + f.metadata().get("format") + ", expected " + FORMAT + ")");
                }
                // identity keys: DJL's NDArray.equals compares contents (and hashCode is 0)
                Map<NDArray, NDArray> copies = new IdentityHashMap<>();
                for (Map.Entry<String, NDArray> e : params.entrySet()) {
                    String key = e.getKey();
                    if (!f.contains(key)) {
                        throw new IOException(file + ": missing tensor '" + key + "'");
                    }
                    if (!f.info(key).shape().equals(e.getValue().getShape()) || f.info(key).dtype() != SafetensorsDtype.F32) {
                        throw new IOException(file + ": tensor '" + key + "' is " + f.info(key).dtype() + " "
                                + f.info(key).shape() + ", the model's is F32 " + e.getValue().getShape());
                    }
                    NDArray a = f.loadAs(key, s, DataType.FLOAT32).toDevice(e.getValue().getDevice(), false);
                    a.attach(s);
                    copies.put(e.getValue(), a);
                }
                for (String key : f.names()) {
                    if (!params.containsKey(key)) {
                        throw new IOException(file + ": tensor '" + key + "' is no weight of this model");
                    }
                }
                // in place: the Linears' row views of fused weights follow
                copies.forEach((dst, src) -> dst.set(new NDIndex("..."), src));
            }
        }
    }
}
