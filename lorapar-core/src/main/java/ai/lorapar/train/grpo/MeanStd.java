package ai.lorapar.train.grpo;

/**
 * Mean and unbiased standard deviation of some values (NaN values, "no score", left out).
 *
 * @param mean the mean (NaN when there are no values)
 * @param std the unbiased standard deviation (NaN for fewer than two values)
 * @param count how many values counted
 */
public record MeanStd(double mean, double std, int count) {

    /** Of the non-NaN values of {@code values}. */
    public static MeanStd of(double[] values) {
        double sum = 0;
        int n = 0;
        for (double v : values) {
            if (!Double.isNaN(v)) {
                sum += v;
                n++;
            }
        }
        if (n == 0) {
            return new MeanStd(Double.NaN, Double.NaN, 0);
        }
        double mean = sum / n;
        double ss = 0;
        for (double v : values) {
            if (!Double.isNaN(v)) {
                ss += (v - mean) * (v - mean);
            }
        }
        return new MeanStd(mean, n > 1 ? Math.sqrt(ss / (n - 1)) : Double.NaN, n);
    }
}
