package ai.lorapar.examples.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.data.Offset.offset;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link Findings.Spread} against sums written out by hand, and its verdicts. */
class FindingsSpreadTest {

    @Test
    void meanSampleSdIntervalAndRangeMatchNaiveSums() {
        List<Double> v = List.of(2.0, -1.0, 5.5, 0.5);
        Findings.Spread s = Findings.Spread.of(v);
        double mean = (2.0 - 1.0 + 5.5 + 0.5) / 4; // 1.75
        double ss = Math.pow(2.0 - mean, 2) + Math.pow(-1.0 - mean, 2) + Math.pow(5.5 - mean, 2) + Math.pow(0.5 - mean, 2);
        double sd = Math.sqrt(ss / 3);
        double half = 3.182 * sd / 2; // t(0.975, 3 dof) · sd / sqrt(4)
        assertThat(s.mean()).isCloseTo(mean, offset(1e-12));
        assertThat(s.std()).isCloseTo(sd, offset(1e-12));
        assertThat(s.n()).isEqualTo(4);
        assertThat(s.low()).isCloseTo(mean - half, offset(1e-12));
        assertThat(s.high()).isCloseTo(mean + half, offset(1e-12));
        assertThat(s.min()).isEqualTo(-1.0);
        assertThat(s.max()).isEqualTo(5.5);
        assertThat(s.range()).isEqualTo("[-1.0, +5.5]");
        assertThat(s.signed()).isEqualTo(String.format(java.util.Locale.ROOT, "+1.8 ± %.1f", sd));
        assertThat(s.verdict()).isEqualTo(Findings.Verdict.NOT_SHOWN);
    }

    @Test
    void verdicts() {
        assertThat(Findings.Spread.of(List.of(3.0, 4.0, 5.0)).verdict()).isEqualTo(Findings.Verdict.HOLDS);
        assertThat(Findings.Spread.of(List.of(-3.0, -4.0, -5.0)).verdict()).isEqualTo(Findings.Verdict.REVERSED);
        Findings.Spread one = Findings.Spread.of(List.of(2.0));
        assertThat(one.verdict()).isEqualTo(Findings.Verdict.ONE_SEED);
        assertThat(one.std()).isNaN();
        assertThat(one.min()).isEqualTo(2.0);
        assertThat(one.signed()).isEqualTo("+2.0");
        assertThatThrownBy(() -> Findings.Spread.of(List.of())).hasMessageContaining("no values");
    }

    @Test
    void tQuantilesAreTheTableValues() {
        assertThat(Findings.tQuantile975(1)).isEqualTo(12.706);
        assertThat(Findings.tQuantile975(2)).isEqualTo(4.303);
        assertThat(Findings.tQuantile975(30)).isEqualTo(2.042);
        assertThat(Findings.tQuantile975(100)).isEqualTo(1.96);
        assertThatThrownBy(() -> Findings.tQuantile975(0)).hasMessageContaining("degrees of freedom");
    }
}
