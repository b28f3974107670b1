package ai.lorapar.examples;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.Example;
import ai.lorapar.engine.CudaMemory;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.ModelConfig;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.train.LearningRateSchedule;
import ai.lorapar.train.grpo.GrpoConfig;
import ai.lorapar.train.grpo.GrpoPrompt;
import ai.lorapar.train.grpo.GrpoStepMetrics;
import ai.lorapar.train.grpo.GrpoTrainer;
import ai.lorapar.train.grpo.RewardFunction;
import ai.lorapar.train.grpo.RewardSet;
import com.google.gson.JsonParser;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;
import java.util.Random;

/**
 * One GRPO step in the shape of {@code peer_anchor.py grpo} (TRL's algorithm without vLLM): random prompts of
 * {@code --prompt-tokens} tokens, {@code --group} completions each sampled at temperature 1 without stop
 * tokens (every row generates {@code --new} tokens, as the peer's {@code min_new_tokens}), random rewards,
 * the reference pass with the adapters disabled, the policy forward + backward in micro-batches of
 * {@code --micro} sequences, clipping at 0.1, the AdamW step; LoRA QKVGUD r = 8, α = 64, dropout 0.05 on a
 * random-weight model of the shape ({@link BenchmarkModels}). One warm-up step, then {@code --steps} timed.
 *
 * <pre>
 * GrpoBenchmark [--shape qwen2.5-0.5b|llama2-7b|tiny] [--prompts 8] [--group 8] [--prompt-tokens 128] [--new 256]
 *               [--micro 16] [--beta 0.04] [--steps 2] [--device gpu|cpu] [--graphs on|off]
 * </pre>
 * Prints one {@code BENCH grpo} line: mean seconds per step and where they go, and the peak GPU memory
 * over the timed steps ({@link CudaMemory}, as the peer's {@code torch.cuda.max_memory_allocated}; -1 where
 * the engine cannot report it). {@code --shape tiny} is a 2-layer model for CPU smoke runs.
 */
public final class GrpoBenchmark {
    private GrpoBenchmark() {}

    /** A tiny LLaMA shape for smoke runs on a CPU. */
    static ModelConfig tiny() throws Exception {
        return ModelConfig.fromJson(JsonParser.parseString("{\"model_type\": \"llama\", \"vocab_size\": 320,"
                + " \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                + " \"num_key_value_heads\": 2, \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-5,"
                + " \"tie_word_embeddings\": false, \"max_position_embeddings\": 1024}").getAsJsonObject(), "tiny");
    }

    public static void main(String[] args) throws Exception {
        String shape = BenchmarkModels.QWEN25_05B;
        int prompts = 8;
        int group = 8;
        int promptTokens = 128;
        int fresh = 256;
        int micro = 16;
        double beta = 0.04;
        int steps = 2;
        Device device = Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--shape" -> shape = args[++i];
                case "--prompts" -> prompts = Integer.parseInt(args[++i]);
                case "--group" -> group = Integer.parseInt(args[++i]);
                case "--prompt-tokens" -> promptTokens = Integer.parseInt(args[++i]);
                case "--new" -> fresh = Integer.parseInt(args[++i]);
                case "--micro" -> micro = Integer.parseInt(args[++i]);
                case "--beta" -> beta = Double.parseDouble(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--device" -> device = "gpu".equals(args[++i]) ? Device.gpu() : Device.cpu();
                case "--graphs" -> System.setProperty(Generator.CUDA_GRAPHS_PROPERTY, String.valueOf(!"off".equals(args[++i])));
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        try (NDManager manager = NDManager.newBaseManager(device);
                DecoderModel model = "tiny".equals(shape) ? DecoderModel.random(tiny(), manager, DataType.FLOAT32, 0)
                        : BenchmarkModels.random(shape, manager, 0);
                LoraModel lora = LoraModel.apply(model, LoraConfig.builder().targets(LoraTargets.QKVGUD).rank(8).alpha(64)
                        .dropout(0.05).init(LoraInit.STANDARD).seed(0).build(), manager)) {
            Random rnd = new Random(0);
            // reward functions are host code, not what is measured: random rewards as the peer's
            RewardSet rewards = RewardSet.builder()
                    .add(RewardFunction.named("random", (e, text, ids) -> OptionalDouble.of(rnd.nextDouble()))).build();
            GrpoConfig config = GrpoConfig.builder().groupSize(group).promptsPerStep(prompts).gradientAccumulation(1)
                    .microBatchSize(micro).maxPromptTokens(promptTokens).maxCompletionTokens(fresh).temperature(1.0)
                    .stopAtEos(false).klBeta(beta).clipEpsilon(0.2).learningRate(5e-6).betas(0.9, 0.99).weightDecay(0.1)
                    .maxGradNorm(0.1).schedule(LearningRateSchedule.constant()).rewards(rewards).completionLogEvery(0)
                    .build();
            PeakMemory peak = new PeakMemory(manager.getEngine(), device);
            try (GrpoTrainer trainer = GrpoTrainer.builder(lora).config(config).build()) {
                trainer.start(steps + 1);
                int vocab = model.config().vocabSize();
                double[] sum = new double[6];
                for (int s = 0; s <= steps; s++) {
                    List<GrpoPrompt> batch = new ArrayList<>();
                    for (int p = 0; p < prompts; p++) {
                        long[] ids = new long[promptTokens];
                        for (int t = 0; t < promptTokens; t++) {
                            ids[t] = rnd.nextInt(vocab);
                        }
                        batch.add(new GrpoPrompt(Example.of("random-" + s + "-" + p, "", ""), ids));
                    }
                    if (s == 1) {
                        peak.reset(); // as the peer: peak over the timed steps, after a warm-up step
                    }
                    long t0 = System.nanoTime();
                    GrpoStepMetrics m = trainer.step(batch).get(0);
                    lora.parameters().values().iterator().next().getFloat(0, 0); // wait for the device
                    double wall = (System.nanoTime() - t0) / 1e9;
                    System.out.printf(Locale.ROOT, "%s step %d: %.3f s (rollout %.3f, rewards %.3f, ref %.3f, policy %.3f,"
                            + " opt %.3f), %d completions x %d tokens, decode: %s%n", s == 0 ? "warm-up" : "timed", s, wall,
                            m.rolloutSeconds(), m.rewardSeconds(), m.referenceSeconds(), m.policySeconds(),
                            m.optimizerSeconds(), m.completions(), fresh, trainer.lastDecodePath());
                    if (s > 0) {
                        sum[0] += wall;
                        sum[1] += m.rolloutSeconds();
                        sum[2] += m.referenceSeconds();
                        sum[3] += m.policySeconds();
                        sum[4] += m.optimizerSeconds();
                        sum[5] += m.rewardSeconds();
                    }
                }
                double n = Math.max(1, steps);
                System.out.printf(Locale.ROOT, "BENCH grpo %s step_s=%.3f rollout_s=%.3f ref_s=%.3f policy_s=%.3f opt_s=%.3f"
                        + " rewards_s=%.3f peak_gib=%.2f [%d prompts x G=%d, %d + %d tokens, micro-batch %d, beta %s, %s %s,"
                        + " decode %s]%n", shape, sum[0] / n, sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n, sum[5] / n,
                        peak.gib(), prompts, group, promptTokens, fresh, micro, beta, device, model.dtype(),
                        trainer.lastDecodePath());
            }
        }
    }

    /** Peak allocated GPU memory through {@link CudaMemory} where the engine has it; -1 otherwise. */
    static final class PeakMemory {
        private final Device device;
        private final boolean available;

        PeakMemory(Engine engine, Device device) {
            this.device = device;
            this.available = device.isGpu() && CudaMemory.isAvailable(engine);
        }

        void reset() {
            if (available) {
                CudaMemory.resetPeak(device);
            }
        }

        double gib() {
            return available ? CudaMemory.peakAllocatedBytes(device) / (double) (1L << 30) : -1;
        }
    }
}
