package ai.lorapar.train;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Defaults are the paper's stage 1; every bad value is refused naming its setting. */
class SftConfigTest {
    @Test
    void defaultsAreThePapersStageOne() {
        SftConfig c = SftConfig.defaults();
        assertThat(c.learningRate()).isEqualTo(2e-4);
        assertThat(c.schedule().kind()).isEqualTo(LearningRateSchedule.Kind.COSINE);
        assertThat(c.schedule().warmupRatio()).isEqualTo(0.03);
        assertThat(c.beta1()).isEqualTo(0.9);
        assertThat(c.beta2()).isEqualTo(0.999);
        assertThat(c.epsilon()).isEqualTo(1e-8);
        assertThat(c.weightDecay()).isZero();
        assertThat(c.maxGradNorm()).isEqualTo(1.0);
        assertThat(c.examplesPerStep()).isEqualTo(32);
        assertThat(c.epochs()).isEqualTo(1);
        assertThat(c.maxSteps()).isZero();
        assertThat(c.maxLength()).isZero(); // the encoder's, 512 by default
        assertThat(c.groupByLength()).isFalse();
        assertThat(c.lossNormalization()).isEqualTo(SftConfig.LossNormalization.PER_TOKEN);
        assertThat(c.seed()).isEqualTo(42);
        assertThat(c.toBuilder().build().fingerprint()).isEqualTo(c.fingerprint());
        assertThat(c.toBuilder().loggingSteps(1).build().fingerprint()).isEqualTo(c.fingerprint());
        assertThat(c.toBuilder().seed(1).build().fingerprint()).isNotEqualTo(c.fingerprint());
        // CUDA graphs draw other dropout masks: a checkpoint of one does not resume the other
        assertThat(c.cudaGraphs()).isFalse();
        SftConfig g = c.toBuilder().cudaGraphs(true).build();
        assertThat(g.cudaGraphs()).isTrue();
        assertThat(g.toBuilder().build().cudaGraphs()).isTrue();
        assertThat(g.fingerprint()).isNotEqualTo(c.fingerprint()).endsWith(", cuda_graphs=true)");
        assertThat(g.toString()).contains("cuda_graphs=true").endsWith("logging_steps=10)");
        assertThat(c.toString()).contains("logging_steps=10").contains("lr=2.0E-4");
    }

    @Test
    void badValuesNameTheirSetting() {
        SftConfig.Builder b = SftConfig.builder();
        assertThatThrownBy(() -> b.learningRate(-1)).hasMessageContaining("'learningRate'");
        assertThatThrownBy(() -> b.learningRate(Double.NaN)).hasMessageContaining("'learningRate'");
        assertThatThrownBy(() -> b.betas(1, 0.9)).hasMessageContaining("'beta1'");
        assertThatThrownBy(() -> b.betas(0.9, -0.1)).hasMessageContaining("'beta2'");
        assertThatThrownBy(() -> b.epsilon(0)).hasMessageContaining("'epsilon'");
        assertThatThrownBy(() -> b.weightDecay(Double.POSITIVE_INFINITY)).hasMessageContaining("'weightDecay'");
        assertThatThrownBy(() -> b.maxGradNorm(-0.5)).hasMessageContaining("'maxGradNorm'");
        assertThatThrownBy(() -> b.microBatchSize(0)).hasMessageContaining("'microBatchSize'");
        assertThatThrownBy(() -> b.gradientAccumulation(0)).hasMessageContaining("'gradientAccumulation'");
        assertThatThrownBy(() -> b.epochs(0)).hasMessageContaining("'epochs'");
        assertThatThrownBy(() -> b.maxSteps(-1)).hasMessageContaining("'maxSteps'");
        assertThatThrownBy(() -> b.maxLength(1)).hasMessageContaining("'maxLength'");
        assertThatThrownBy(() -> b.loggingSteps(0)).hasMessageContaining("'loggingSteps'");
        assertThatThrownBy(() -> b.schedule(null)).hasMessageContaining("'schedule'");
        assertThatThrownBy(() -> b.lossNormalization(null)).hasMessageContaining("'lossNormalization'");
    }
}
