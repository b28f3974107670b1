package ai.lorapar.engine;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link CudaGraph}: no graphs on a CPU or on stock DJL; on a GPU with the project's JNI (tests tagged
 * "gpu"), a captured step replays its in-place updates, allocates its temporaries from the graph's pool,
 * draws new random numbers per replay following the seed, and a step that cannot be captured fails
 * with a {@link CudaGraph.CaptureException} that leaves the device usable.
 */
class CudaGraphTest {
    private static final NDIndex ALL = new NDIndex("...");

    @Test
    void noGraphsOnTheCpu() {
        Engine engine = Engine.getInstance();
        assertThat(CudaGraph.isAvailable(engine, Device.cpu())).isFalse();
        AtomicInteger runs = new AtomicInteger();
        assertThatThrownBy(() -> CudaGraph.capture(Device.cpu(), 1, runs::incrementAndGet))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("GPU");
        assertThat(runs).hasValue(0);
        if (!engine.hasCapability(CudaGraph.CAPABILITY)) {
            // stock DJL (CI): not even on a GPU
            assertThat(CudaGraph.isAvailable(engine, Device.gpu())).isFalse();
        }
    }

    private static void needGraphs() {
        Assumptions.assumeTrue(Engine.getInstance().getGpuCount() > 0, "no GPU");
        Assumptions.assumeTrue(CudaGraph.isAvailable(Engine.getInstance(), Device.gpu()),
                "engine does not advertise " + CudaGraph.CAPABILITY);
    }

    @Test
    @Tag("gpu")
    void replaysTheCapturedInPlaceUpdates() {
        needGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray acc = m.ones(new Shape(5));
            NDArray inc = m.arange(0f, 5f, 1f, DataType.FLOAT32);
            NDArray twice = m.zeros(new Shape(5));
            NDArray two = m.create(2f);
            AtomicInteger javaRuns = new AtomicInteger();
            Runnable step = () -> {
                javaRuns.incrementAndGet();
                try (NDManager s = m.newSubManager()) {
                    acc.addi(inc);
                    NDArray t = acc.mul(two); // a temporary from the graph's pool
                    t.attach(s);
                    twice.set(ALL, t);
                }
            };
            try (CudaGraph graph = CudaGraph.capture(Device.gpu(), 1, step)) {
                assertThat(javaRuns).hasValue(2); // one warm-up, one capture
                assertThat(acc.toFloatArray()).containsExactly(1, 2, 3, 4, 5); // the capture did not execute
                for (int i = 0; i < 3; i++) {
                    graph.replay();
                }
                assertThat(javaRuns).hasValue(2); // replays run no Java
                assertThat(acc.toFloatArray()).containsExactly(1, 5, 9, 13, 17);
                assertThat(twice.toFloatArray()).containsExactly(2, 10, 18, 26, 34);
                inc.set(ALL, 10f); // inputs are read at replay time
                graph.replay();
                assertThat(acc.toFloatArray()).containsExactly(11, 15, 19, 23, 27);
            }
        }
    }

    @Test
    @Tag("gpu")
    void randomDrawsDifferPerReplayAndFollowTheSeed() {
        needGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray out = m.zeros(new Shape(1000));
            Runnable draw = () -> {
                try (NDManager s = m.newSubManager()) {
                    NDArray u = s.randomUniform(0f, 1f, new Shape(1000), DataType.FLOAT32);
                    out.set(ALL, u);
                }
            };
            float[][] firstRun = new float[2][];
            for (int run = 0; run < 2; run++) {
                m.getEngine().setRandomSeed(1234);
                try (CudaGraph graph = CudaGraph.capture(Device.gpu(), 1, draw)) {
                    graph.replay();
                    float[] a = out.toFloatArray();
                    graph.replay();
                    float[] b = out.toFloatArray();
                    assertThat(a).isNotEqualTo(b);
                    for (float x : a) {
                        assertThat(x).isBetween(0f, 1f);
                    }
                    if (run == 0) {
                        firstRun[0] = a;
                        firstRun[1] = b;
                    } else {
                        assertThat(a).containsExactly(firstRun[0]);
                        assertThat(b).containsExactly(firstRun[1]);
                    }
                }
            }
        }
    }

    @Test
    @Tag("gpu")
    void aStepThatSynchronisesCannotBeCapturedAndTheDeviceStaysUsable() {
        needGraphs();
        try (NDManager m = NDManager.newBaseManager(Device.gpu())) {
            NDArray x = m.arange(0f, 4f, 1f, DataType.FLOAT32);
            NDArray one = m.create(1f);
            Runnable readsBack = () -> {
                x.addi(one);
                x.toFloatArray(); // a device-to-host copy waits for the stream: not capturable
            };
            assertThatThrownBy(() -> CudaGraph.capture(Device.gpu(), 1, readsBack))
                    .isInstanceOf(CudaGraph.CaptureException.class);
            // the warm-up ran, the failed capture did not
            assertThat(x.toFloatArray()).containsExactly(1, 2, 3, 4);
            try (NDArray y = x.mul(one.add(one))) {
                assertThat(y.toFloatArray()).containsExactly(2, 4, 6, 8);
            }
            try (CudaGraph graph = CudaGraph.capture(Device.gpu(), 0, () -> x.addi(one))) {
                graph.replay();
                graph.replay();
            }
            assertThat(x.toFloatArray()).containsExactly(3, 4, 5, 6);
        }
    }
}
