package ai.lorapar.testing;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * Base of the core-math tests: each test gets a fresh manager on {@link #device()}. GPU subclasses
 * (tagged "gpu", run on the device machine by .ci/gpu/run) override the device and re-run every test.
 */
public abstract class DeviceTest {
    protected NDManager manager;

    /** The device the test's arrays live on (CPU unless a GPU subclass says otherwise). */
    protected Device device() {
        return Device.cpu();
    }

    @BeforeEach
    void openManager() {
        manager = NDManager.newBaseManager(device());
    }

    @AfterEach
    void closeManager() {
        manager.close();
    }

    protected NDArray array(float[] values, long... shape) {
        return manager.create(values, new Shape(shape));
    }

    protected NDArray mask(boolean[] values, long... shape) {
        return manager.create(values, new Shape(shape));
    }

    protected static float[] floats(NDArray a) {
        return a.toType(DataType.FLOAT32, true).toFloatArray();
    }

    protected static boolean[] booleans(NDArray a) {
        return a.toBooleanArray();
    }
}
