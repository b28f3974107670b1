package ai.lorapar.examples.cli;

import ai.lorapar.engine.DistributedEnv;
import ai.lorapar.engine.Collectives;
import ai.lorapar.engine.Collective;
import ai.djl.Device;
import ai.lorapar.engine.EngineSupport;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraTargets;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/** Option values shared by the {@code train} and {@code eval} commands, parsed with errors that name the option. */
final class CliOptions {

    private CliOptions() {
    }

    /** {@code cpu} or {@code gpu}; null: a GPU when there is one. */
    static Device device(String name) {
        if (name == null) {
            return EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        }
        return switch (name) {
            case "cpu" -> Device.cpu();
            case "gpu" -> Device.gpu();
            default -> throw new IllegalArgumentException("--device must be cpu or gpu, was " + name);
        };
    }

    /**
     * This process's device in a job started by {@code lorapar launch} (a GPU becomes {@code cuda:LOCAL_RANK}); the
     * device as given otherwise.
     */
    static Device rankDevice(Device device) {
        DistributedEnv env = DistributedEnv.fromEnvironment();
        return env.isDistributed() && device.isGpu() ? env.device(EngineSupport.requireEngine()) : device;
    }

    /** The collective of this process ({@link Collective#single()} unless started by {@code lorapar launch}). */
    static Collective collective(Device device) {
        return Collectives.fromEnvironment(EngineSupport.requireEngine(), device);
    }

    /** {@link #modelFolder}, extracted by the leader alone while the other ranks wait. */
    static Path modelFolder(Path model, Path work, Collective c) throws IOException {
        if (c.isLeader()) {
            Path p = modelFolder(model, work);
            c.barrier();
            return p;
        }
        c.barrier();
        return model != null ? model : work.resolve("model");
    }

    /** {@code model}, or the embedded tiny model extracted into {@code work/model} when it has weights. */
    static Path modelFolder(Path model, Path work) throws IOException {
        if (model != null) {
            return model;
        }
        if (!EmbeddedDefault.hasWeights()) {
            throw new IllegalArgumentException("no --model given, and the embedded tiny model has no weights in this "
                    + "build: name a Hugging Face model folder with --model");
        }
        return EmbeddedDefault.extractModel(work.resolve("model"));
    }

    static LoraInit init(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "gaussian" -> LoraInit.GAUSSIAN;
            case "standard" -> LoraInit.STANDARD;
            case "pissa" -> LoraInit.PISSA;
            case "olora" -> LoraInit.OLORA;
            default -> throw new IllegalArgumentException("--init must be gaussian, standard, pissa or olora, was " + name);
        };
    }

    static LoraTargets targets(String name) {
        return switch (name.toUpperCase(Locale.ROOT)) {
            case "QKV" -> LoraTargets.QKV;
            case "GUD" -> LoraTargets.GUD;
            case "QKVGUD" -> LoraTargets.QKVGUD;
            case "QKVOGUD" -> LoraTargets.QKVOGUD;
            default -> throw new IllegalArgumentException("--targets must be QKVGUD, QKV, GUD or QKVOGUD, was " + name);
        };
    }
}
