package ai.lorapar.train;

import org.junit.jupiter.api.Tag;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link SftReferenceGpuTest} with {@link SftConfig#cudaGraphs()}: every micro-batch's forward and backward
 * is a replay of a CUDA graph (captured per padded shape: the 11 examples make micro-batches of 3 and 2 rows
 * with different lengths and answer counts), and the steps still equal the naive reference loop, which pads
 * nothing and captures nothing. Fails if the graphs were not used.
 */
@Tag("gpu")
class SftReferenceGraphsGpuTest extends SftReferenceGpuTest {
    @Override
    protected SftConfig trainerConfig(SftConfig reference) {
        return reference.toBuilder().cudaGraphs(true).build();
    }

    @Override
    protected void checkTrainer(SftTrainer trainer) {
        assertThat(trainer.graphCaptures()).as("CUDA graphs captured").isPositive();
    }
}
