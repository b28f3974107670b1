package ai.lorapar.train;

import ai.djl.ndarray.NDArray;
import ai.lorapar.io.SafetensorsWriter;
import ai.lorapar.testing.DeviceTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link MaskedAdamW#saveState} / {@link MaskedAdamW#loadState}: an optimizer continues exactly after a reload. */
class MaskedAdamWStateTest extends DeviceTest {
    private static final String P = "model.layers.0.mlp.up_proj.lora_A";
    private static final String Q = "model.layers.1.self_attn.k_proj.lora_B";
    @TempDir
    Path tmp;

    private float[] gaussian(Random r, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) r.nextGaussian();
        }
        return out;
    }

    private MaskedAdamW optimizer(Map<String, NDArray> params, Map<String, NDArray> masks) {
        return MaskedAdamW.builder().learningRate(1e-2).weightDecay(0.1).maxGradNorm(1.0)
                .schedule(LearningRateSchedule.cosine(0.2), 10).build(params, masks);
    }

    @Test
    void aReloadedOptimizerContinuesBitForBit() throws Exception {
        Random rnd = new Random(1);
        float[] p0 = gaussian(rnd, 12);
        float[] q0 = gaussian(rnd, 6);
        boolean[] pm = {true, false, true, true, false, true, true, true, false, true, true, true};
        boolean[] qm = {true, true, false, true, true, true};
        float[][] grads = new float[10][];
        for (int i = 0; i < 10; i++) {
            grads[i] = gaussian(rnd, 18);
        }
        Map<String, NDArray> a = new LinkedHashMap<>(Map.of(P, array(p0, 3, 4), Q, array(q0, 6)));
        Map<String, NDArray> b = new LinkedHashMap<>(Map.of(P, array(p0, 3, 4), Q, array(q0, 6)));
        Map<String, NDArray> masks = Map.of(P, mask(pm, 3, 4), Q, mask(qm, 6));
        Path file = tmp.resolve("opt.safetensors");
        try (MaskedAdamW ua = optimizer(a, masks)) {
            for (int i = 0; i < 10; i++) {
                ua.step(grads(grads[i]));
                if (i == 3) {
                    ua.saveState(file);
                    // b catches up to a's parameters after 4 steps
                    b.get(P).set(new ai.djl.ndarray.index.NDIndex("..."), a.get(P));
                    b.get(Q).set(new ai.djl.ndarray.index.NDIndex("..."), a.get(Q));
                }
            }
            try (MaskedAdamW ub = optimizer(b, masks)) {
                ub.loadState(file);
                assertThat(ub.stepCount()).isEqualTo(4);
                for (int i = 4; i < 10; i++) {
                    ub.step(grads(grads[i]));
                }
                for (String n : new String[] {P, Q}) {
                    assertThat(floats(b.get(n))).as(n).containsExactly(floats(a.get(n)));
                    assertThat(floats(ub.firstMoment(n))).containsExactly(floats(ua.firstMoment(n)));
                    assertThat(floats(ub.secondMoment(n))).containsExactly(floats(ua.secondMoment(n)));
                }
            }
        }
    }

    private Map<String, NDArray> grads(float[] g) {
        float[] gp = new float[12];
        float[] gq = new float[6];
        System.arraycopy(g, 0, gp, 0, 12);
        System.arraycopy(g, 12, gq, 0, 6);
        return Map.of(P, array(gp, 3, 4), Q, array(gq, 6));
    }

    @Test
    void aStateOfOtherParametersIsRefusedNamingTheTensor() throws Exception {
        Path file = tmp.resolve("opt.safetensors");
        try (MaskedAdamW u = optimizer(Map.of(P, array(new float[12], 3, 4)), null)) {
            u.saveState(file);
        }
        try (MaskedAdamW u = optimizer(Map.of(P, array(new float[6], 2, 3)), null)) {
            assertThatThrownBy(() -> u.loadState(file)).hasMessageContaining("exp_avg/" + P)
                    .hasMessageContaining("(3, 4)");
        }
        try (MaskedAdamW u = optimizer(Map.of(Q, array(new float[6], 6)), null)) {
            assertThatThrownBy(() -> u.loadState(file)).hasMessageContaining("missing tensor 'exp_avg/" + Q);
        }
        Path other = tmp.resolve("other.safetensors");
        SafetensorsWriter.write(other, Map.of("x", array(new float[1], 1)), Map.of("format", "something"));
        try (MaskedAdamW u = optimizer(Map.of(P, array(new float[12], 3, 4)), null)) {
            assertThatThrownBy(() -> u.loadState(other)).hasMessageContaining("not a masked AdamW state file");
        }
    }
}
