package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.train.MaskedAdamW;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link FusedAdamW} (fused_adamw.cc) against {@link MaskedAdamW} over several steps with masks, weight
 * decay and clipping, on the CPU through the project's JNI and on CUDA: parameters within 1e-5 relative
 * (fused multiply-adds round differently), frozen elements bit-identical, the same gradient norm, and the
 * gradients zeroed. Skipped where the engine does not advertise {@link FusedAdamW#CAPABILITY}.
 */
@Tag("gpu")
class FusedAdamWGpuTest {
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void sameUpdatesAsMaskedAdamW(boolean gpu) {
        Assumptions.assumeTrue(FusedAdamW.isAvailable(Engine.getInstance()), "no " + FusedAdamW.CAPABILITY);
        Assumptions.assumeTrue(!gpu || Engine.getInstance().getGpuCount() > 0, "no GPU");
        try (NDManager m = NDManager.newBaseManager(gpu ? Device.gpu() : Device.cpu())) {
            Shape[] shapes = {new Shape(8, 32), new Shape(48, 8), new Shape(8, 20)};
            Map<String, NDArray> a = new LinkedHashMap<>();
            Map<String, NDArray> b = new LinkedHashMap<>();
            Map<String, NDArray> masks = new LinkedHashMap<>();
            List<NDArray> targets = new ArrayList<>();
            for (int i = 0; i < shapes.length; i++) {
                NDArray p = m.randomNormal(0f, 1f, shapes[i], DataType.FLOAT32);
                NDArray q = p.duplicate();
                p.setRequiresGradient(true);
                q.setRequiresGradient(true);
                a.put("p" + i, p);
                b.put("p" + i, q);
                masks.put("p" + i, m.randomUniform(0f, 1f, shapes[i]).lt(0.6f));
                targets.add(m.randomNormal(0f, 3f, shapes[i], DataType.FLOAT32));
            }
            List<NDArray> params = new ArrayList<>(b.values());
            List<NDArray> maskList = new ArrayList<>(masks.values());
            List<NDArray> m1 = new ArrayList<>();
            List<NDArray> m2 = new ArrayList<>();
            for (NDArray p : params) {
                m1.add(m.zeros(p.getShape(), DataType.FLOAT32));
                m2.add(m.zeros(p.getShape(), DataType.FLOAT32));
            }
            List<NDArray> before = new ArrayList<>();
            for (NDArray p : params) {
                before.add(p.duplicate());
            }
            double lr = 0.05;
            // the reference runs MaskedAdamW's NDArray update (on this engine it would otherwise be fused too)
            System.setProperty(MaskedAdamW.FUSED_PROPERTY, "false");
            MaskedAdamW built;
            try {
                built = MaskedAdamW.builder().learningRate(lr).weightDecay(0.1).maxGradNorm(1.0).build(a, masks);
            } finally {
                System.clearProperty(MaskedAdamW.FUSED_PROPERTY);
            }
            try (MaskedAdamW reference = built) {
                for (int step = 1; step <= 4; step++) {
                    backward(new ArrayList<>(a.values()), targets);
                    backward(params, targets);
                    double wantNorm = reference.step().gradNorm();
                    reference.zeroGradients();
                    NDArray norm = FusedAdamW.step(params, m1, m2, maskList, step, lr, 0.9, 0.999, 1e-8, 0.1, 1.0);
                    assertThat((double) norm.getFloat()).isCloseTo(wantNorm,
                            org.assertj.core.data.Offset.offset(1e-5 * wantNorm));
                    FusedAdamW.zeroGradients(params);
                    for (NDArray p : params) {
                        assertThat(p.getGradient().abs().max().getFloat()).as("gradient zeroed").isZero();
                    }
                }
                for (int i = 0; i < params.size(); i++) {
                    NDArray want = a.get("p" + i);
                    NDArray got = params.get(i);
                    float scale = want.abs().max().getFloat();
                    float diff = got.sub(want).abs().max().getFloat();
                    System.err.printf("FusedAdamW %s p%d: max |diff| from MaskedAdamW %.3g (scale %.3g)%n",
                            gpu ? "cuda" : "cpu", i, diff, scale);
                    assertThat(diff).isLessThanOrEqualTo(1e-5f * scale);
                    NDArray frozen = maskList.get(i).logicalNot();
                    NDArray moved = got.neq(before.get(i)).logicalAnd(frozen);
                    assertThat(moved.any().getBoolean()).as("a frozen element of p" + i + " moved").isFalse();
                    assertThat(m1.get(i).mul(frozen.toType(DataType.FLOAT32, false)).abs().max().getFloat())
                            .as("frozen first moments stay 0").isZero();
                }
            }
        }
    }

    /** Gradients of Σ (p − target)² · (1 + p) for every parameter (accumulating). */
    private static void backward(List<NDArray> params, List<NDArray> targets) {
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            NDArray loss = null;
            for (int i = 0; i < params.size(); i++) {
                NDArray p = params.get(i);
                NDArray l = p.sub(targets.get(i)).square().mul(p.add(1f)).sum();
                loss = loss == null ? l : loss.add(l);
            }
            gc.backward(loss);
        }
    }
}
