package ai.lorapar.train;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link Gradients#snapshot} and {@link Gradients#restore}: what a capture's warm-up pass added is taken back. */
class GradientsTest {
    @Test
    void restoreTakesBackWhatWasAddedSinceTheSnapshotInPlace() {
        try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
            NDArray a = m.create(new float[] {1, 2, 3}, new Shape(3));
            NDArray b = m.create(new float[] {4, 5}, new Shape(2));
            a.setRequiresGradient(true);
            b.setRequiresGradient(true);
            List<NDArray> params = List.of(a, b);
            backward(() -> a.mul(a).sum()); // grad a = 2a, b's still 0
            List<NDArray> snap = Gradients.snapshot(params);
            NDArray before = a.getGradient(); // the gradient array itself: restore must keep it
            backward(() -> a.mul(3).sum().add(b.mul(b).sum()));
            assertThat(before.toFloatArray()).containsExactly(5, 7, 9);
            Gradients.restore(params, snap);
            assertThat(before.toFloatArray()).containsExactly(2, 4, 6); // same array, old values
            assertThat(b.getGradient().toFloatArray()).containsExactly(0, 0);
            assertThatThrownBy(() -> Gradients.restore(params, List.of())).hasMessageContaining("0 gradients for 2");
        }
    }

    private static void backward(java.util.function.Supplier<NDArray> loss) {
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
            gc.backward(loss.get()); // grad mode is on inside the collector only
        }
    }
}
