package ai.lorapar.model.generate;

import java.util.List;

/**
 * How {@link Generator} picks tokens: greedy when {@code temperature == 0}, otherwise sampling from
 * the distribution scaled by {@code 1/temperature}, restricted to the {@code topK} most likely tokens
 * and then to the smallest set whose probability reaches {@code topP} (transformers' order). A
 * {@code seed} makes sampling reproducible (it seeds the engine's global generator).
 *
 * @param maxNewTokens token budget per sequence
 * @param temperature 0 for greedy, otherwise positive
 * @param topK 0 for no top-k restriction
 * @param topP 1 for no nucleus restriction, otherwise in (0, 1]
 * @param seed null for the engine's current random state
 * @param stopTokenIds tokens that end a sequence; null for the model's (and tokenizer's) eos ids
 * @param padTokenId id written after a sequence has ended; null for the model's pad (or first eos) id
 */
public record SamplingConfig(int maxNewTokens, double temperature, int topK, double topP, Long seed,
        List<Integer> stopTokenIds, Integer padTokenId) {

    /** Checks the values. */
    public SamplingConfig {
        if (maxNewTokens <= 0) {
            throw new IllegalArgumentException("maxNewTokens must be positive, got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be 0 (greedy) or positive, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be 0 (off) or positive, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        }
        stopTokenIds = stopTokenIds == null ? null : List.copyOf(stopTokenIds);
    }

    /** Greedy decoding of up to {@code maxNewTokens} tokens. */
    public static SamplingConfig greedy(int maxNewTokens) {
        return new SamplingConfig(maxNewTokens, 0, 0, 1, null, null, null);
    }

    /** Sampling at {@code temperature} with a seed (no top-k / top-p). */
    public static SamplingConfig sample(int maxNewTokens, double temperature, long seed) {
        return new SamplingConfig(maxNewTokens, temperature, 0, 1, seed, null, null);
    }

    /**
     * Whether decoding is greedy (temperature 0).
     *
     * @return true for greedy decoding
     */
    public boolean isGreedy() {
        return temperature == 0;
    }

    /**
     * A copy with top-k sampling.
     *
     * @param k tokens kept (0: all)
     * @return the copy
     */
    public SamplingConfig withTopK(int k) {
        return new SamplingConfig(maxNewTokens, temperature, k, topP, seed, stopTokenIds, padTokenId);
    }

    /**
     * A copy with nucleus sampling.
     *
     * @param p probability mass kept, in (0, 1]
     * @return the copy
     */
    public SamplingConfig withTopP(double p) {
        return new SamplingConfig(maxNewTokens, temperature, topK, p, seed, stopTokenIds, padTokenId);
    }

    /**
     * A copy with a seed.
     *
     * @param s the seed, or null for none
     * @return the copy
     */
    public SamplingConfig withSeed(Long s) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, s, stopTokenIds, padTokenId);
    }

    /**
     * A copy with stop ids.
     *
     * @param ids token ids that end a row
     * @return the copy
     */
    public SamplingConfig withStopTokenIds(List<Integer> ids) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, seed, ids, padTokenId);
    }

    /**
     * A copy with a pad id.
     *
     * @param id the pad id, or null for the model's
     * @return the copy
     */
    public SamplingConfig withPadTokenId(Integer id) {
        return new SamplingConfig(maxNewTokens, temperature, topK, topP, seed, stopTokenIds, id);
    }
}
