package ai.lorapar.examples.embedded;

import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.train.grpo.GsmRewards;
import ai.lorapar.train.grpo.RewardSet;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What GRPO's first rollouts would see: groups of completions sampled as {@code GrpoTrainer} samples them
 * (GRPO's system prompt, temperature 1, no top-k/top-p, stop at end of sequence), scored by a reward set
 * (the reference's {@code GsmRewards.reference()}). GRPO learns only from groups whose rewards differ
 * (otherwise every advantage is 0), so the share of such groups is the figure to watch.
 *
 * @param groups prompts sampled
 * @param groupSize completions per prompt
 * @param meanReward the mean total reward of a completion
 * @param meanByFunction each reward function's mean score, by name
 * @param correctShare completions with the right answer (the correctness reward above 0; NaN without one)
 * @param groupsWithSpread groups whose total rewards are not all equal (non-zero advantages)
 * @param groupsWithCorrect groups with at least one right answer
 * @param meanNewTokens mean completion length in tokens
 * @param seconds wall time of the sampling
 */
public record RewardProbe(int groups, int groupSize, double meanReward, Map<String, Double> meanByFunction,
        double correctShare, int groupsWithSpread, int groupsWithCorrect, double meanNewTokens, double seconds) {

    /**
     * Samples {@code groupSize} completions of each problem (one generate call per {@code promptsPerCall}
     * problems, seeded {@code seed}, {@code seed + 1}, ...) and scores them.
     *
     * @param encoder the encoder with GRPO's system prompt ({@link EmbeddedDefault#encoder})
     */
    public static RewardProbe run(Generator generator, ExampleEncoder encoder, RewardSet rewards,
            List<WordProblem> problems, int groupSize, int promptsPerCall, int maxNewTokens, long seed) {
        long t0 = System.nanoTime();
        int functions = rewards.size();
        double[] sums = new double[functions];
        double total = 0;
        long tokens = 0;
        int completions = 0;
        int correct = 0;
        int spread = 0;
        int withCorrect = 0;
        int correctness = rewards.names().indexOf(GsmRewards.CORRECTNESS);
        for (int from = 0, call = 0; from < problems.size(); from += promptsPerCall, call++) {
            List<WordProblem> chunk = problems.subList(from, Math.min(problems.size(), from + promptsPerCall));
            List<long[]> prompts = new ArrayList<>();
            List<Example> examples = new ArrayList<>();
            for (int i = 0; i < chunk.size(); i++) {
                Example e = Example.of("probe-" + (from + i), chunk.get(i).question(), chunk.get(i).answer());
                long[] ids = encoder.encodePrompt(e);
                for (int k = 0; k < groupSize; k++) {
                    prompts.add(ids);
                    examples.add(e);
                }
            }
            GenerationResult r = generator.generate(prompts, SamplingConfig.sample(maxNewTokens, 1.0, seed + call));
            List<String> texts = new ArrayList<>();
            List<long[]> ids = new ArrayList<>();
            for (GenerationResult.Sequence s : r.sequences()) {
                texts.add(s.text() != null ? s.text() : encoder.tokenizer().decode(s.tokens(), true));
                ids.add(s.tokens());
                tokens += s.tokens().length;
            }
            double[][] scores = rewards.scores(examples, texts, ids);
            double[] totals = rewards.total(scores);
            for (int g = 0; g < chunk.size(); g++) {
                boolean differs = false;
                boolean anyCorrect = false;
                for (int k = 0; k < groupSize; k++) {
                    int i = g * groupSize + k;
                    for (int f = 0; f < functions; f++) {
                        sums[f] += Double.isNaN(scores[i][f]) ? 0 : scores[i][f];
                    }
                    total += totals[i];
                    completions++;
                    if (correctness >= 0 && scores[i][correctness] > 0) {
                        correct++;
                        anyCorrect = true;
                    }
                    differs |= totals[i] != totals[g * groupSize];
                }
                spread += differs ? 1 : 0;
                withCorrect += anyCorrect ? 1 : 0;
            }
        }
        Map<String, Double> byFunction = new LinkedHashMap<>();
        for (int f = 0; f < functions; f++) {
            byFunction.put(rewards.names().get(f), sums[f] / completions);
        }
        return new RewardProbe(problems.size(), groupSize, total / completions, byFunction,
                correctness >= 0 ? (double) correct / completions : Double.NaN, spread, withCorrect, (double) tokens / completions,
                (System.nanoTime() - t0) / 1e9);
    }
}
