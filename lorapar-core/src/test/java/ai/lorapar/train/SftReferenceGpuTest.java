package ai.lorapar.train;

import ai.djl.Device;
import org.junit.jupiter.api.Tag;

/**
 * {@link SftReferenceTest} on CUDA in fp32: trainer and naive reference both on the GPU. Bounds as on the
 * CPU, with twice the room for the losses and parameters (cuBLAS picks other kernels for the padded
 * micro-batches than for single examples, so the last bits of gradients differ more).
 */
@Tag("gpu")
class SftReferenceGpuTest extends SftReferenceTest {
    @Override
    protected Device device() {
        return Device.gpu();
    }

    @Override
    protected double lossTolerance() {
        return 2e-5;
    }

    @Override
    protected double paramAbsToleranceInSteps() {
        return 2e-3;
    }
}
