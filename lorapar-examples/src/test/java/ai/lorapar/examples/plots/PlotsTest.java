package ai.lorapar.examples.plots;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Charts are written as PNG files without a display (surefire runs headless; Plots also sets it). */
class PlotsTest {

    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    @TempDir
    Path dir;

    @Test
    void importanceScatterOfALargeMapIsAPng() throws Exception {
        int n = 60_000;
        Random r = new Random(1);
        float[] s1 = new float[n];
        float[] s2 = new float[n];
        for (int i = 0; i < n; i++) {
            s1[i] = (float) Math.exp(r.nextGaussian() * 2 - 12);
            s2[i] = i % 1000 == 0 ? 0f : (float) Math.exp(r.nextGaussian() * 2 - 12);
        }
        boolean[] k1 = topShare(s1, 0.9);
        boolean[] k2 = topShare(s2, 0.9);
        Path png = Plots.importanceScatter(s1, s2, k1, k2, "importance", 3000, 7, dir.resolve("a/scatter.png"));
        assertPng(png);
        // the same seed draws the same picture
        Path again = Plots.importanceScatter(s1, s2, k1, k2, "importance", 3000, 7, dir.resolve("again.png"));
        assertThat(Files.readAllBytes(again)).isEqualTo(Files.readAllBytes(png));
    }

    @Test
    void scatterErrorsNameTheProblem() {
        assertThatThrownBy(() -> Plots.importanceScatter(new float[3], new float[2], new boolean[3], new boolean[3],
                "t", 10, 1, dir.resolve("x.png"))).hasMessageContaining("system2 2");
        assertThatThrownBy(() -> Plots.importanceScatter(new float[3], new float[3], new boolean[3], new boolean[3],
                "t", 10, 1, dir.resolve("x.png"))).hasMessageContaining("no element has positive importance");
        assertThat(dir.resolve("x.png")).doesNotExist();
    }

    @Test
    void thetaSweepAndCurvesArePngs() throws Exception {
        double[] theta = {0.5, 0.7, 0.8, 0.9, 0.95, 1.0};
        Map<String, double[]> shares = new LinkedHashMap<>();
        shares.put("active share, stage 1", new double[] {0.05, 0.12, 0.2, 0.33, 0.45, 0.9});
        shares.put("active share, stage 2", new double[] {0.06, 0.13, 0.21, 0.35, 0.47, 0.9});
        Map<String, double[]> accuracy = new LinkedHashMap<>();
        accuracy.put("accuracy, multi-step", new double[] {0.1, Double.NaN, 0.2, 0.25, 0.24, 0.26});
        assertPng(Plots.thetaSweep(theta, shares, accuracy, "θ sweep", dir.resolve("theta.png")));
        assertThatThrownBy(() -> Plots.thetaSweep(theta, Map.of("x", new double[2]), Map.of(), "t", dir.resolve("y.png")))
                .hasMessageContaining("has 2 values for 6");

        List<Plots.Metric> metrics = new ArrayList<>();
        for (int s = 1; s <= 40; s++) {
            metrics.add(new Plots.Metric("sft", s, "loss", 3.0 / s));
        }
        for (int s = 1; s <= 20; s++) {
            metrics.add(new Plots.Metric("grpo", s, "loss", 0.1 * Math.sin(s)));
            metrics.add(new Plots.Metric("grpo", s, "reward", 0.5 + s * 0.05));
        }
        assertPng(Plots.curves(metrics, "loss", "loss per stage", dir.resolve("loss.png")));
        assertPng(Plots.curves(metrics, "reward", "reward", dir.resolve("reward.png")));
        assertThatThrownBy(() -> Plots.curves(metrics, "kl", "kl", dir.resolve("kl.png"))).hasMessageContaining("'kl'");
    }

    private static void assertPng(Path png) throws Exception {
        byte[] bytes = Files.readAllBytes(png);
        assertThat(bytes.length).isGreaterThan(2000);
        assertThat(Arrays.copyOf(bytes, 8)).isEqualTo(PNG_SIGNATURE);
        BufferedImage image = ImageIO.read(png.toFile());
        assertThat(image.getWidth()).isEqualTo(900);
        assertThat(image.getHeight()).isEqualTo(650);
    }

    /** The smallest top set holding {@code theta} of the total (naive: sort everything). */
    private static boolean[] topShare(float[] v, double theta) {
        Integer[] order = new Integer[v.length];
        double total = 0;
        for (int i = 0; i < v.length; i++) {
            order[i] = i;
            total += v[i];
        }
        Arrays.sort(order, (a, b) -> Float.compare(v[b], v[a]));
        boolean[] kept = new boolean[v.length];
        double sum = 0;
        for (Integer i : order) {
            if (sum >= theta * total) {
                break;
            }
            kept[i] = true;
            sum += v[i];
        }
        return kept;
    }
}
