package ai.lorapar.examples.plots;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.lorapar.data.AtomicFiles;
import ai.lorapar.importance.ImportanceMap;
import ai.lorapar.partition.SubregionPartition;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.BitmapEncoder.BitmapFormat;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.XYSeries.XYSeriesRenderStyle;
import org.knowm.xchart.style.Styler.LegendPosition;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The main job's charts as PNG files, drawn with XChart, headless (no display needed). Inputs are plain Java
 * arrays and lists.
 *
 * <ul>
 *   <li>{@link #importanceScatter}: System-1 against System-2 importance per LoRA element, log-log, coloured by
 *       region (the paper's Figure 4);</li>
 *   <li>{@link #thetaSweep}: active share and accuracy against θ;</li>
 *   <li>{@link #curves}: a metric (loss, reward) over the steps of each training stage.</li>
 * </ul>
 *
 * Each method writes the whole file or nothing (a temporary file moved into place) and returns its path.
 */
public final class Plots {

    static {
        // charts are rendered off-screen; a run on a machine without a display must not try to open one
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** The default number of points drawn by {@link #importanceScatter}. */
    public static final int DEFAULT_SCATTER_POINTS = 5000;

    /** Where an element lies after partitioning at θ. */
    public enum Region {
        SYSTEM1_ONLY("S1-only", new Color(0x1f, 0x77, 0xb4)),
        SYSTEM2_ONLY("S2-only", new Color(0xd6, 0x27, 0x28)),
        SHARED("shared", new Color(0x9b, 0x59, 0xb6)),
        NEITHER("neither", new Color(0xb0, 0xb0, 0xb0));

        private final String label;
        private final Color color;

        Region(String label, Color color) {
            this.label = label;
            this.color = color;
        }

        public String label() {
            return label;
        }

        /** The region of an element kept (or not) by each system's top-θ set. */
        public static Region of(boolean keptBySystem1, boolean keptBySystem2) {
            return keptBySystem1 ? (keptBySystem2 ? SHARED : SYSTEM1_ONLY) : (keptBySystem2 ? SYSTEM2_ONLY : NEITHER);
        }
    }

    /** One value of a metric at a step of a stage (e.g. stage "sft", step 12, name "loss", value 1.7). */
    public record Metric(String stage, long step, String name, double value) {
        public Metric {
            Objects.requireNonNull(stage, "stage");
            Objects.requireNonNull(name, "name");
        }
    }

    private static final int WIDTH = 900;
    private static final int HEIGHT = 650;

    private Plots() {
    }

    /**
     * {@link #importanceScatter(float[], float[], boolean[], boolean[], String, int, long, Path)} of two importance
     * maps and their partition: each element's two importances and which system's top-θ set keeps it (its region).
     * The maps are read to the host once, for drawing.
     */
    public static Path importanceScatter(SubregionPartition p, ImportanceMap i1, ImportanceMap i2, NDManager manager,
            String title, int maxPoints, long seed, Path png) throws IOException {
        long n = i1.elementCount();
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("too many elements to plot: " + n);
        }
        float[] s1 = new float[(int) n];
        float[] s2 = new float[(int) n];
        boolean[] k1 = new boolean[(int) n];
        boolean[] k2 = new boolean[(int) n];
        try (NDManager scope = manager.newSubManager()) {
            Map<String, NDArray> only1 = p.regionMasks(ai.lorapar.partition.Region.SYSTEM1_ONLY, scope);
            Map<String, NDArray> only2 = p.regionMasks(ai.lorapar.partition.Region.SYSTEM2_ONLY, scope);
            Map<String, NDArray> shared = p.regionMasks(ai.lorapar.partition.Region.SHARED, scope);
            int offset = 0;
            for (String name : p.names()) {
                float[] a = i1.get(name).toType(DataType.FLOAT32, false).toFloatArray();
                float[] b = i2.get(name).toType(DataType.FLOAT32, false).toFloatArray();
                boolean[] o1 = only1.get(name).toBooleanArray();
                boolean[] o2 = only2.get(name).toBooleanArray();
                boolean[] sh = shared.get(name).toBooleanArray();
                System.arraycopy(a, 0, s1, offset, a.length);
                System.arraycopy(b, 0, s2, offset, b.length);
                for (int j = 0; j < a.length; j++) {
                    k1[offset + j] = o1[j] || sh[j];
                    k2[offset + j] = o2[j] || sh[j];
                }
                offset += a.length;
            }
        }
        return importanceScatter(s1, s2, k1, k2, title, maxPoints, seed, png);
    }

    /**
     * The paper's Figure 4: one point per LoRA element at (System-1 importance, System-2 importance), log-log,
     * coloured by region. Elements with a zero importance cannot be drawn on log axes and are left out (their
     * count is in the subtitle). With more drawable points than {@code maxPoints}, a seeded sample is drawn:
     * every region keeps its share of the sample, and at least {@code min(count, maxPoints / 20)} points, so
     * that a small region stays visible.
     *
     * @param system1 System-1 importance per element (flattened, all tensors one after another)
     * @param system2 System-2 importance per element, the same order
     * @param keptBySystem1 whether each element is in System 1's top-θ set
     * @param keptBySystem2 whether each element is in System 2's top-θ set
     */
    public static Path importanceScatter(float[] system1, float[] system2, boolean[] keptBySystem1,
            boolean[] keptBySystem2, String title, int maxPoints, long seed, Path png) throws IOException {
        int n = system1.length;
        if (system2.length != n || keptBySystem1.length != n || keptBySystem2.length != n) {
            throw new IllegalArgumentException("importance scatter: arrays differ in length (system1 " + n + ", system2 "
                    + system2.length + ", kept1 " + keptBySystem1.length + ", kept2 " + keptBySystem2.length + ")");
        }
        if (maxPoints < 1) {
            throw new IllegalArgumentException("maxPoints must be >= 1, was " + maxPoints);
        }
        Map<Region, List<Integer>> byRegion = new LinkedHashMap<>();
        for (Region r : Region.values()) {
            byRegion.put(r, new ArrayList<>());
        }
        int notDrawable = 0;
        for (int i = 0; i < n; i++) {
            if (!(system1[i] > 0) || !(system2[i] > 0) || !Float.isFinite(system1[i]) || !Float.isFinite(system2[i])) {
                notDrawable++;
                continue;
            }
            byRegion.get(Region.of(keptBySystem1[i], keptBySystem2[i])).add(i);
        }
        int drawable = n - notDrawable;
        Random random = new Random(seed);
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title)
                .xAxisTitle("System-1 importance").yAxisTitle("System-2 importance").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeriesRenderStyle.Scatter);
        chart.getStyler().setXAxisLogarithmic(true).setYAxisLogarithmic(true);
        chart.getStyler().setMarkerSize(4);
        chart.getStyler().setLegendPosition(LegendPosition.InsideNW);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setXAxisDecimalPattern("0.0E0").setYAxisDecimalPattern("0.0E0");
        int floor = Math.max(1, maxPoints / 20);
        int shown = 0;
        // neither first, so that the kept regions are drawn on top
        for (Region r : List.of(Region.NEITHER, Region.SHARED, Region.SYSTEM1_ONLY, Region.SYSTEM2_ONLY)) {
            List<Integer> idx = byRegion.get(r);
            if (idx.isEmpty()) {
                continue;
            }
            int quota = drawable <= maxPoints ? idx.size()
                    : Math.min(idx.size(), Math.max(floor, (int) Math.round((double) maxPoints * idx.size() / drawable)));
            int[] chosen = sample(idx, quota, random);
            double[] x = new double[chosen.length];
            double[] y = new double[chosen.length];
            for (int k = 0; k < chosen.length; k++) {
                x[k] = system1[chosen[k]];
                y[k] = system2[chosen[k]];
            }
            XYSeries s = chart.addSeries(String.format(Locale.ROOT, "%s (%,d)", r.label(), idx.size()), x, y);
            s.setMarker(SeriesMarkers.CIRCLE);
            s.setMarkerColor(r.color);
            shown += chosen.length;
        }
        if (shown == 0) {
            throw new IllegalArgumentException("importance scatter: no element has positive importance for both systems");
        }
        chart.setTitle(String.format(Locale.ROOT, "%s (%,d of %,d elements drawn%s)", title, shown, n,
                notDrawable > 0 ? String.format(Locale.ROOT, "; %,d with a zero importance left out", notDrawable) : ""));
        return save(chart, png);
    }

    /**
     * Active share and accuracy against θ, on one chart in percent: each entry of {@code shares} (e.g. "active
     * share, stage 1") and of {@code accuracies} (e.g. "accuracy, multi-step") is a series over {@code theta}.
     * A NaN value is a point not measured (left out).
     */
    public static Path thetaSweep(double[] theta, Map<String, double[]> shares, Map<String, double[]> accuracies,
            String title, Path png) throws IOException {
        if (theta.length == 0) {
            throw new IllegalArgumentException("theta sweep: no θ values");
        }
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("θ (share of importance kept)")
                .yAxisTitle("%").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeriesRenderStyle.Line);
        chart.getStyler().setYAxisMin(0.0).setYAxisMax(100.0);
        chart.getStyler().setLegendPosition(LegendPosition.InsideNW);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        int series = addPercentSeries(chart, theta, shares, SeriesMarkers.CIRCLE, false)
                + addPercentSeries(chart, theta, accuracies, SeriesMarkers.DIAMOND, true);
        if (series == 0) {
            throw new IllegalArgumentException("theta sweep: no series");
        }
        return save(chart, png);
    }

    private static int addPercentSeries(XYChart chart, double[] theta, Map<String, double[]> series,
            org.knowm.xchart.style.markers.Marker marker, boolean dashed) {
        int added = 0;
        for (Map.Entry<String, double[]> e : series.entrySet()) {
            double[] v = e.getValue();
            if (v.length != theta.length) {
                throw new IllegalArgumentException("theta sweep: series '" + e.getKey() + "' has " + v.length
                        + " values for " + theta.length + " θ values");
            }
            List<Double> xs = new ArrayList<>();
            List<Double> ys = new ArrayList<>();
            for (int i = 0; i < v.length; i++) {
                if (!Double.isNaN(v[i])) {
                    xs.add(theta[i]);
                    ys.add(100 * v[i]);
                }
            }
            if (xs.isEmpty()) {
                continue;
            }
            XYSeries s = chart.addSeries(e.getKey(), xs, ys);
            s.setMarker(marker);
            if (dashed) {
                s.setLineStyle(new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
            }
            added++;
        }
        return added;
    }

    /**
     * The metric named {@code name} (e.g. "loss", "reward") over training steps, one series per stage in the
     * order the stages first appear; stages follow each other on the x axis (a stage's steps are offset by the
     * steps of the stages before it), so the chart reads as one timeline.
     */
    public static Path curves(List<Metric> metrics, String name, String title, Path png) throws IOException {
        Map<String, List<Metric>> byStage = new LinkedHashMap<>();
        for (Metric m : metrics) {
            if (m.name().equals(name) && Double.isFinite(m.value())) {
                byStage.computeIfAbsent(m.stage(), k -> new ArrayList<>()).add(m);
            }
        }
        if (byStage.isEmpty()) {
            throw new IllegalArgumentException("curves: no finite values of metric '" + name + "'");
        }
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("step")
                .yAxisTitle(name).build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeriesRenderStyle.Line);
        chart.getStyler().setLegendPosition(LegendPosition.InsideNE);
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        chart.getStyler().setMarkerSize(3);
        long offset = 0;
        for (Map.Entry<String, List<Metric>> e : byStage.entrySet()) {
            List<Metric> ms = e.getValue();
            ms.sort((a, b) -> Long.compare(a.step(), b.step()));
            double[] x = new double[ms.size()];
            double[] y = new double[ms.size()];
            long last = 0;
            for (int i = 0; i < ms.size(); i++) {
                x[i] = offset + ms.get(i).step();
                y[i] = ms.get(i).value();
                last = Math.max(last, ms.get(i).step());
            }
            chart.addSeries(e.getKey(), x, y).setMarker(ms.size() > 60 ? SeriesMarkers.NONE : SeriesMarkers.CIRCLE);
            offset += last;
        }
        return save(chart, png);
    }

    /** {@code count} distinct entries of {@code idx}, chosen with {@code random} (a partial Fisher–Yates shuffle). */
    private static int[] sample(List<Integer> idx, int count, Random random) {
        int[] a = idx.stream().mapToInt(Integer::intValue).toArray();
        if (count >= a.length) {
            return a;
        }
        for (int i = 0; i < count; i++) {
            int j = i + random.nextInt(a.length - i);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
        return Arrays.copyOf(a, count);
    }

    private static Path save(XYChart chart, Path png) throws IOException {
        Path abs = png.toAbsolutePath();
        // the library's atomic write: a reader never sees a half-written PNG
        AtomicFiles.write(abs, channel -> {
            OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel));
            BitmapEncoder.saveBitmap(chart, out, BitmapFormat.PNG);
            out.flush(); // not closed: AtomicFiles forces and closes the channel
        });
        return abs;
    }
}
