package ai.lorapar.examples;

import ai.lorapar.engine.EngineSupport;
import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.lorapar.engine.CudaGraph;
import ai.lorapar.engine.FusedOps;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * GRPO-rollout sampling throughput, the shape of {@code peer_anchor.py gen}: a batch of random
 * prompts, sampling at temperature 1 with no stop tokens (every row generates the full budget, like
 * the peer's {@code min_new_tokens}), after a 16-token warm-up.
 *
 * <p>Like the peer, it samples through LoRA adapters (QKVGUD, r = 8, α = 64, enabled, unmerged: the
 * policy of a GRPO rollout); {@code --lora 0} samples the bare model.
 *
 * <p>Usage: {@code SamplingBenchmark MODEL_DIR [--batch 64] [--prompt 128] [--new 256] [--device gpu|cpu]
 * [--lora 8] [--graphs on|off] [--fused ops|layer|off]}: {@code --graphs off} decodes op by op even where the
 * engine can capture CUDA graphs (the library's default is on); {@code --fused} picks the JNI's fused
 * decode ops where the engine has them ({@code layer}: one call per layer; {@code ops}: fused ops only;
 * {@code off}, the default as for the library).
 * MODEL_DIR is a Hugging Face folder (random weights are fine, e.g. saved by transformers).
 */
public final class SamplingBenchmark {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int batch = 64;
        int prompt = 128;
        int fresh = 256;
        int loraRank = 8;
        Device device = EngineSupport.requireEngine().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--prompt" -> prompt = Integer.parseInt(args[++i]);
                case "--new" -> fresh = Integer.parseInt(args[++i]);
                case "--lora" -> loraRank = Integer.parseInt(args[++i]);
                case "--device" -> device = "gpu".equals(args[++i]) ? Device.gpu() : Device.cpu();
                case "--graphs" -> System.setProperty(Generator.CUDA_GRAPHS_PROPERTY,
                        String.valueOf(!"off".equals(args[++i])));
                case "--fused" -> {
                    String mode = args[++i];
                    System.setProperty(DecoderModel.FUSED_OPS_PROPERTY, String.valueOf(!"off".equals(mode)));
                    System.setProperty(DecoderModel.FUSED_LAYER_PROPERTY, String.valueOf("layer".equals(mode)));
                }
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        try (NDManager manager = EngineSupport.newBaseManager(device); DecoderModel model = DecoderModel.load(dir, manager);
                LoraModel lora = loraRank > 0 ? LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD)
                        .rank(loraRank).alpha(64).init(LoraInit.GAUSSIAN).seed(0).build(), manager) : null) {
            int vocab = model.config().vocabSize();
            Random rnd = new Random(0);
            List<long[]> prompts = new ArrayList<>();
            for (int b = 0; b < batch; b++) {
                long[] ids = new long[prompt];
                for (int t = 0; t < prompt; t++) {
                    ids[t] = rnd.nextInt(vocab);
                }
                prompts.add(ids);
            }
            Generator generator = new Generator(model);
            SamplingConfig warm = SamplingConfig.sample(16, 1.0, 1).withStopTokenIds(List.of()).withPadTokenId(0);
            generator.generate(prompts, warm);
            SamplingConfig config = SamplingConfig.sample(fresh, 1.0, 2).withStopTokenIds(List.of()).withPadTokenId(0);
            long t0 = System.nanoTime();
            GenerationResult result = generator.generate(prompts, config);
            double seconds = (System.nanoTime() - t0) / 1e9;
            long produced = result.newTokens();
            System.out.printf(Locale.ROOT,
                    "sampling %s%s on %s (%s): %d sequences, %d prompt + %d new tokens: %.2f s, %.0f new tokens/s (%d produced)"
                            + " [decode steps: %s; engine: %s %s, %s %s, %s %s]%n",
                    dir.getFileName(), lora == null ? " (no adapters)" : " + LoRA QKVGUD r=" + loraRank, device,
                    model.dtype(), batch, prompt, fresh, seconds, produced / seconds, produced,
                    generator.lastDecodePath(), CudaGraph.CAPABILITY,
                    CudaGraph.isAvailable(manager.getEngine(), device) ? "yes" : "no",
                    FusedOps.CAPABILITY, FusedOps.isAvailable(manager.getEngine()) ? "yes" : "no",
                    FusedOps.CAPABILITY_LAYER, FusedOps.isLayerAvailable(manager.getEngine()) ? "yes" : "no");
        }
    }
}
