package ai.lorapar.train;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Key steps of Hugging Face's schedules (transformers.optimization), worked out by hand. */
class LearningRateScheduleTest {

    @Test
    void cosineWithWarmupAtItsKeySteps() {
        LearningRateSchedule s = LearningRateSchedule.cosine(0.03);
        // 100 steps, warm-up ⌈3.0⌉ = 3: 0, 1/3, 2/3, then 1 at the first decay step.
        assertThat(s.warmupSteps(100)).isEqualTo(3);
        assertThat(s.multiplier(0, 100)).isEqualTo(0.0);
        assertThat(s.multiplier(1, 100)).isCloseTo(1 / 3.0, within(1e-15));
        assertThat(s.multiplier(2, 100)).isCloseTo(2 / 3.0, within(1e-15));
        assertThat(s.multiplier(3, 100)).isCloseTo(1.0, within(1e-15));
        // Half-way through the 97 decay steps (progress 0.5): 0.5.
        assertThat(LearningRateSchedule.cosine(0.0).multiplier(50, 100)).isCloseTo(0.5, within(1e-15));
        // progress 0.25: 0.5·(1 + cos(π/4)).
        assertThat(LearningRateSchedule.cosine(0.0).multiplier(25, 100)).isCloseTo(0.5 * (1 + Math.sqrt(0.5)), within(1e-12));
        assertThat(s.multiplier(100, 100)).isCloseTo(0.0, within(1e-15));
        // 33 steps at 0.03: ⌈0.99⌉ = 1 warm-up step.
        assertThat(s.warmupSteps(33)).isEqualTo(1);
    }

    @Test
    void linearWithWarmup() {
        LearningRateSchedule s = LearningRateSchedule.linear(0.1);
        assertThat(s.multiplier(0, 20)).isEqualTo(0.0);
        assertThat(s.multiplier(1, 20)).isCloseTo(0.5, within(1e-15));
        assertThat(s.multiplier(2, 20)).isCloseTo(1.0, within(1e-15));
        assertThat(s.multiplier(11, 20)).isCloseTo(9 / 18.0, within(1e-15));
        assertThat(s.multiplier(20, 20)).isEqualTo(0.0);
    }

    @Test
    void constantSchedules() {
        assertThat(LearningRateSchedule.constant().multiplier(0, 10)).isEqualTo(1.0);
        assertThat(LearningRateSchedule.constant().warmupSteps(10)).isZero();
        LearningRateSchedule w = LearningRateSchedule.constantWithWarmup(0.5);
        assertThat(w.multiplier(0, 10)).isEqualTo(0.0);
        assertThat(w.multiplier(4, 10)).isCloseTo(0.8, within(1e-15));
        assertThat(w.multiplier(5, 10)).isEqualTo(1.0);
        assertThat(w.multiplier(9, 10)).isEqualTo(1.0);
    }

    @Test
    void namedAsHuggingFaceAndValidated() {
        assertThat(LearningRateSchedule.named("cosine", 0.1).kind()).isEqualTo(LearningRateSchedule.Kind.COSINE);
        assertThat(LearningRateSchedule.named("constant_with_warmup", 0.1).kind())
                .isEqualTo(LearningRateSchedule.Kind.CONSTANT_WITH_WARMUP);
        assertThatThrownBy(() -> LearningRateSchedule.named("polynomial", 0)).hasMessageContaining("polynomial");
        assertThatThrownBy(() -> LearningRateSchedule.cosine(1.5)).hasMessageContaining("warmup ratio");
        assertThatThrownBy(() -> LearningRateSchedule.cosine(0).multiplier(0, 0)).hasMessageContaining("totalSteps");
    }
}
