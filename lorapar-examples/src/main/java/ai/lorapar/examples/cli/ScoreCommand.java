package ai.lorapar.examples.cli;

import java.io.IOException;
import ai.lorapar.engine.Collective;
import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.LabelledJsonl;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.examples.embedded.EmbeddedDefault;
import ai.lorapar.importance.ImportanceListener;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.importance.ImportanceScorer;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import ai.lorapar.engine.EngineSupport;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code lorapar score}: per-element LoRA importance of both systems of a labelled file. */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = {"Score per-element LoRA importance for System 1 and System 2 (input of 'partition').",
            "Applies LoRA to the model (non-zero init: the standard B = 0 init gives zero importance everywhere), "
                + "draws a seeded sample of N examples per system from a labelled JSONL (written by 'label') and "
                + "computes I(φ) = |Σ g·φ − ½ Σ (g·φ)²| / N from per-example gradients of the answer-only loss.",
            "Writes OUT/importance_system1.safetensors, OUT/importance_system2.safetensors and OUT/adapter_init (the "
                + "adapters the maps were scored on, PEFT format)."})
final class ScoreCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "LABELLED.jsonl", description = "labelled examples (from 'lorapar label')")
    Path labelled;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "Hugging Face model folder (config.json, *.safetensors; default: the embedded tiny model, once "
                    + "it has weights)")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "folder of tokenizer.json (default: the model folder)")
    Path tokenizerDir;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", defaultValue = "importance", description = "output folder (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--examples", paramLabel = "N", defaultValue = "" + ImportanceScorer.DEFAULT_EXAMPLES,
            description = "examples scored per system (default: ${DEFAULT-VALUE}, as the reference)")
    int examples;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "" + ImportanceScorer.DEFAULT_SEED,
            description = "seed of the sample and of the LoRA init (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "" + ImportanceScorer.DEFAULT_BATCH_SIZE,
            description = "examples per forward/backward pass (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--rank", paramLabel = "R", defaultValue = "8", description = "LoRA rank (default: ${DEFAULT-VALUE})")
    int rank;

    @Option(names = "--lora-alpha", paramLabel = "A", defaultValue = "64", description = "LoRA alpha (default: ${DEFAULT-VALUE})")
    double loraAlpha;

    @Option(names = "--init", paramLabel = "INIT", defaultValue = "gaussian",
            description = "LoRA init: gaussian (A, B ~ N(0, 0.01), as the reference), pissa or olora (default: ${DEFAULT-VALUE})")
    String init;

    @Option(names = "--targets", paramLabel = "T", defaultValue = "QKVGUD",
            description = "adapted projections: QKVGUD, QKV, GUD or QKVOGUD (default: ${DEFAULT-VALUE})")
    String targets;

    @Option(names = "--template", paramLabel = "T", defaultValue = "plain",
            description = "prompt template: plain, chatml or llama2-chat (default: ${DEFAULT-VALUE})")
    String template;

    @Option(names = "--max-length", paramLabel = "N", defaultValue = "512", description = "maximum tokens per example (default: ${DEFAULT-VALUE})")
    int maxLength;

    @Option(names = "--device", paramLabel = "D", description = "cpu or gpu (default: gpu when there is one)")
    String device;

    @Override
    public Integer call() throws Exception {
        PrintWriter w = spec.commandLine().getOut();
        LoraInit loraInit = switch (init.toLowerCase(Locale.ROOT)) {
            case "gaussian" -> LoraInit.GAUSSIAN;
            case "pissa" -> LoraInit.PISSA;
            case "olora" -> LoraInit.OLORA;
            case "standard" -> throw new IllegalArgumentException("--init standard (B = 0) gives zero importance "
                    + "everywhere; use gaussian, pissa or olora");
            default -> throw new IllegalArgumentException("--init must be gaussian, pissa or olora, was " + init);
        };
        LoraTargets loraTargets = switch (targets.toUpperCase(Locale.ROOT)) {
            case "QKV" -> LoraTargets.QKV;
            case "GUD" -> LoraTargets.GUD;
            case "QKVGUD" -> LoraTargets.QKVGUD;
            case "QKVOGUD" -> LoraTargets.QKVOGUD;
            default -> throw new IllegalArgumentException("--targets must be QKVGUD, QKV, GUD or QKVOGUD, was " + targets);
        };
        Device dev = device == null ? (EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu())
                : switch (device) {
                    case "cpu" -> Device.cpu();
                    case "gpu" -> Device.gpu();
                    default -> throw new IllegalArgumentException("--device must be cpu or gpu, was " + device);
                };
        Files.createDirectories(out);
        // started by `lorapar launch`: this rank's GPU, each rank scores its share of the examples
        dev = CliOptions.rankDevice(dev);
        try (Collective collective = CliOptions.collective(dev)) {
            return score(w, dev, collective, loraInit, loraTargets);
        }
    }

    private Integer score(PrintWriter w, Device dev, Collective collective, LoraInit loraInit, LoraTargets loraTargets)
            throws IOException {
        boolean leader = collective.isLeader();
        Path modelDir = model;
        if (modelDir == null && !EmbeddedDefault.hasWeights()) {
            throw new IllegalArgumentException("no --model given, and the embedded tiny model has no weights in "
                    + "this build: name a Hugging Face model folder with --model");
        }
        modelDir = CliOptions.modelFolder(model, out, collective);
        Map<SystemLabel, List<Example>> bySystem = LabelledJsonl.readByLabel(labelled);
        w.printf(Locale.ROOT, "%s: %d System1 and %d System2 examples%n", labelled,
                bySystem.get(SystemLabel.SYSTEM_1).size(), bySystem.get(SystemLabel.SYSTEM_2).size());
        try (NDManager manager = EngineSupport.newBaseManager(dev);
                DecoderModel m = DecoderModel.load(modelDir, manager);
                TextTokenizer tokenizer = TextTokenizer.load(tokenizerDir == null ? modelDir : tokenizerDir);
                LoraModel lora = LoraModel.apply(m, LoraConfig.builder().targets(loraTargets).rank(rank).alpha(loraAlpha)
                        .init(loraInit).seed(seed).build(), manager)) {
            w.printf(Locale.ROOT, "model %s on %s (%s), LoRA %s r=%d alpha=%s init=%s: %,d elements%n", modelDir,
                    m.device(), m.dtype(), targets, rank, loraAlpha, init, lora.parameterCount());
            w.flush();
            Path adapterInit = out.resolve("adapter_init");
            if (leader) { // every rank made the same adapters (same seed)
                lora.save(adapterInit);       // PEFT's files, for other tools (PiSSA/OLoRA exported as rank 2r)
                lora.saveNative(adapterInit); // the same adapters at rank r, for 'train --adapter-init'
            }
            ExampleEncoder encoder = ExampleEncoder.builder(tokenizer).template(PromptTemplate.named(template))
                    .maxLength(maxLength).vocabSize(m.config().vocabSize()).build();
            for (SystemLabel system : SystemLabel.values()) {
                long t0 = System.nanoTime();
                try (ProgressBar bar = leader ? new ProgressBar("score " + system.text(), Math.min(examples,
                        bySystem.get(system).size())) : null) {
                    ImportanceListener listener = (source, done, total) -> bar.update(done); // the leader's only
                    ImportanceScorer scorer = ImportanceScorer.builder().encoder(encoder).examples(examples, seed)
                            .batchSize(batch).listener(listener).collective(collective).build();
                    try (ImportanceMap map = scorer.score(lora, system, bySystem.get(system))) {
                        if (!leader) {
                            continue; // every rank holds the whole map; the leader writes it
                        }
                        bar.close();
                        Path file = out.resolve("importance_" + system.text().toLowerCase(Locale.ROOT) + ".safetensors");
                        map.save(file);
                        double seconds = (System.nanoTime() - t0) / 1e9;
                        double sum = 0;
                        double max = 0;
                        for (NDArray a : map.tensors().values()) {
                            sum += a.sum().getFloat();
                            max = Math.max(max, a.max().getFloat());
                        }
                        w.printf(Locale.ROOT, "%s: %d examples, %,d elements, sum %.6g, max %.6g, %.2f s (%.3f s per "
                                + "example) -> %s%n", system.text(), map.numExamples(), map.elementCount(), sum, max,
                                seconds, seconds / map.numExamples(), file);
                        w.flush();
                    }
                }
            }
            collective.barrier(); // the files are complete before any rank returns
            if (leader) {
                w.println("adapter the maps were scored on: " + adapterInit);
            }
        }
        return 0;
    }
}
