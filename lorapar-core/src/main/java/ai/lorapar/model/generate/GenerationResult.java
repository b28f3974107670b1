package ai.lorapar.model.generate;

import java.util.List;

/** The outcome of one {@link Generator} call: one {@link Sequence} per prompt, in prompt order. */
public record GenerationResult(List<Sequence> sequences) {

    /** Why a sequence ended. */
    public enum FinishReason {
        /** A stop (eos) token was generated; it is the last of {@link Sequence#tokens()}. */
        STOP,
        /** The token budget ran out. */
        LENGTH
    }

    /**
     * One generated continuation.
     *
     * @param prompt the prompt's token ids (without padding)
     * @param tokens the new token ids, up to and including a stop token
     * @param logProbs per new token, its log-probability under the model's unmodified distribution
     *     (temperature 1, no top-k/top-p), as a policy-gradient method needs
     * @param text the new tokens decoded without special tokens, or null without a tokenizer
     * @param finishReason why it ended
     */
    public record Sequence(long[] prompt, long[] tokens, float[] logProbs, String text, FinishReason finishReason) {
        /** Sum of {@link #logProbs}. */
        public double totalLogProb() {
            double s = 0;
            for (float f : logProbs) {
                s += f;
            }
            return s;
        }
    }

    /** Copies the sequences. */
    public GenerationResult {
        sequences = List.copyOf(sequences);
    }

    /** The texts, in prompt order. */
    public List<String> texts() {
        return sequences.stream().map(Sequence::text).toList();
    }

    /** Total new tokens over all sequences. */
    public long newTokens() {
        return sequences.stream().mapToLong(s -> s.tokens().length).sum();
    }
}
