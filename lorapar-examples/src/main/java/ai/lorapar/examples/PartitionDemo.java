package ai.lorapar.examples;

import ai.lorapar.engine.EngineSupport;
import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.importance.ImportanceAccumulator;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.partition.StageMasks;
import ai.lorapar.partition.SubregionPartition;
import ai.lorapar.train.Gradients;
import ai.lorapar.train.LearningRateSchedule;
import ai.lorapar.train.MaskedAdamW;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The embedded default job (README command 1), until the model pipeline lands: a tiny
 * random-initialised two-layer network with Q/K/V/gate/up/down projections carrying rank-8 LoRA
 * adapters (Gaussian init, so importance is non-zero), two synthetic regression tasks standing in for
 * System-1 and System-2 data, and LoRA-PAR's steps on it with real autograd:
 *
 * <ol>
 *   <li>per-example gradients → element-wise importance per system (ImportanceAccumulator);
 *   <li>SubregionPartition at θ = 0.9, α = β = 1, with statistics, and the random baseline;
 *   <li>stage 1: masked AdamW on the System-1 task with the stage-1 mask, checking that frozen
 *       elements did not move;
 *   <li>importance maps and masks saved under the output folder (default target/lorapar-demo).
 * </ol>
 *
 * <p>It is a toy: the tasks are synthetic and the network is not a language model.
 */
public final class PartitionDemo {
    private static final int HIDDEN = 32;
    private static final int INTERMEDIATE = 64;
    private static final int LAYERS = 2;
    private static final int RANK = 8;
    private static final float SCALE = 64f / RANK; // lora_alpha / r
    private static final String[] MODULES = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "target/lorapar-demo");
        Files.createDirectories(out);
        EngineSupport.requireEngine().setRandomSeed(2507);
        try (NDManager m = EngineSupport.newBaseManager(Device.cpu())) {
            Map<String, NDArray> base = new LinkedHashMap<>();
            Map<String, NDArray> lora = new LinkedHashMap<>();
            for (int l = 0; l < LAYERS; l++) {
                for (String module : MODULES) {
                    String name = "model.layers." + l + "." + module;
                    int in = module.equals("mlp.down_proj") ? INTERMEDIATE : HIDDEN;
                    int outDim = module.startsWith("mlp.gate") || module.startsWith("mlp.up") ? INTERMEDIATE : HIDDEN;
                    base.put(name, m.randomNormal(0f, (float) (1 / Math.sqrt(in)), new Shape(outDim, in), DataType.FLOAT32));
                    NDArray a = m.randomNormal(0f, 0.01f, new Shape(RANK, in), DataType.FLOAT32);
                    NDArray b = m.randomNormal(0f, 0.01f, new Shape(outDim, RANK), DataType.FLOAT32);
                    a.setRequiresGradient(true);
                    b.setRequiresGradient(true);
                    lora.put(name + ".lora_A", a);
                    lora.put(name + ".lora_B", b);
                }
            }
            // System 1: a direct linear read-out. System 2: a composed, non-linear target.
            NDArray t1 = m.randomNormal(0f, 0.3f, new Shape(HIDDEN, HIDDEN), DataType.FLOAT32);
            NDArray t2 = m.randomNormal(0f, 0.3f, new Shape(HIDDEN, HIDDEN), DataType.FLOAT32);
            int n = 48;
            NDArray x1 = m.randomNormal(new Shape(n, HIDDEN));
            NDArray x2 = m.randomNormal(new Shape(n, HIDDEN));
            NDArray y1 = x1.matMul(t1);
            NDArray y2 = x2.matMul(t2).tanh().matMul(t2).tanh();

            System.out.printf(Locale.ROOT, "LoRA-PAR demo on a toy network: %d layers, hidden %d, QKVGUD rank %d, %d elements%n",
                    LAYERS, HIDDEN, RANK, lora.values().stream().mapToLong(NDArray::size).sum());
            try (ImportanceMap s1 = importance(m, base, lora, x1, y1); ImportanceMap s2 = importance(m, base, lora, x2, y2);
                    SubregionPartition p = SubregionPartition.builder().system1(s1).system2(s2).theta(0.9).alpha(1).beta(1)
                            .build();
                    StageMasks random = p.randomBaseline(7)) {
                System.out.println("\n" + p);
                System.out.println(p.statistics().format());
                System.out.printf(Locale.ROOT, "random baseline (seed 7): stage 1 %d, stage 2 %d elements%n",
                        random.stage1Count(), random.stage2Count());

                Map<String, float[]> before = new LinkedHashMap<>();
                lora.forEach((k, v) -> before.put(k, v.toFloatArray()));
                int steps = 30;
                try (MaskedAdamW opt = MaskedAdamW.builder().learningRate(2e-3).weightDecay(0.1)
                        .schedule(LearningRateSchedule.cosine(0.03), steps).build(lora, p.stageMasks().stage1())) {
                    System.out.printf(Locale.ROOT, "%nstage 1 (System-1 task, masked AdamW, weight decay 0.1): loss %.5f",
                            loss(m, base, lora, x1, y1).getFloat());
                    for (int s = 0; s < steps; s++) {
                        try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                            gc.backward(loss(m, base, lora, x1, y1));
                        }
                        opt.step();
                        opt.zeroGradients();
                    }
                    System.out.printf(Locale.ROOT, " -> %.5f after %d steps%n", loss(m, base, lora, x1, y1).getFloat(), steps);
                }
                long moved = 0;
                long frozenMoved = 0;
                for (Map.Entry<String, NDArray> e : lora.entrySet()) {
                    float[] now = e.getValue().toFloatArray();
                    boolean[] mask = p.stageMasks().stage1().get(e.getKey()).toBooleanArray();
                    float[] was = before.get(e.getKey());
                    for (int i = 0; i < now.length; i++) {
                        boolean changed = Float.floatToRawIntBits(now[i]) != Float.floatToRawIntBits(was[i]);
                        moved += changed && mask[i] ? 1 : 0;
                        frozenMoved += changed && !mask[i] ? 1 : 0;
                    }
                }
                System.out.printf(Locale.ROOT, "elements changed: %d trainable, %d frozen (must be 0)%n", moved, frozenMoved);

                s1.save(out.resolve("importance-system1.safetensors"));
                s2.save(out.resolve("importance-system2.safetensors"));
                p.stageMasks().save(out.resolve("masks.safetensors"));
                random.save(out.resolve("masks-random.safetensors"));
                System.out.println("saved importance maps and masks under " + out.toAbsolutePath());
                if (frozenMoved != 0) {
                    throw new IllegalStateException(frozenMoved + " frozen elements changed");
                }
            }
        }
    }

    /** Importance of every LoRA element for one task: one backward pass per example. */
    private static ImportanceMap importance(NDManager m, Map<String, NDArray> base, Map<String, NDArray> lora, NDArray x,
            NDArray y) {
        try (ImportanceAccumulator acc = new ImportanceAccumulator(m)) {
            for (int i = 0; i < x.getShape().get(0); i++) {
                try (NDManager scope = m.newSubManager()) {
                    NDArray xi = x.get(i + ":" + (i + 1));
                    NDArray yi = y.get(i + ":" + (i + 1));
                    xi.attach(scope);
                    yi.attach(scope);
                    try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                        gc.backward(loss(m, base, lora, xi, yi));
                    }
                    Map<String, NDArray> grads = new LinkedHashMap<>();
                    lora.forEach((k, v) -> {
                        NDArray g = v.getGradient();
                        g.attach(scope);
                        grads.put(k, g);
                    });
                    acc.add(lora, grads);
                    Gradients.zero(lora.values()); // the next example's gradient must not include this one's
                }
            }
            return acc.result();
        }
    }

    private static NDArray linear(Map<String, NDArray> base, Map<String, NDArray> lora, String name, NDArray h) {
        NDArray y = h.matMul(base.get(name).transpose());
        NDArray delta = h.matMul(lora.get(name + ".lora_A").transpose()).matMul(lora.get(name + ".lora_B").transpose());
        return y.add(delta.mul(SCALE));
    }

    private static NDArray loss(NDManager m, Map<String, NDArray> base, Map<String, NDArray> lora, NDArray x, NDArray y) {
        NDArray h = x;
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            NDArray q = linear(base, lora, p + "self_attn.q_proj", h);
            NDArray k = linear(base, lora, p + "self_attn.k_proj", h);
            NDArray v = linear(base, lora, p + "self_attn.v_proj", h);
            NDArray a = q.mul(k.getNDArrayInternal().sigmoid()).add(v);
            NDArray gate = linear(base, lora, p + "mlp.gate_proj", a);
            NDArray up = linear(base, lora, p + "mlp.up_proj", a);
            NDArray act = gate.mul(gate.getNDArrayInternal().sigmoid()).mul(up); // SiLU(gate)·up
            h = h.add(linear(base, lora, p + "mlp.down_proj", act));
        }
        return h.sub(y).square().mean();
    }
}
