package ai.lorapar.train.grpo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * Group-normalised advantages: the completions of one prompt form a group (consecutive rows, as the
 * rollout repeats each prompt G times), and each completion's advantage is its reward relative to its
 * group: Â_i = (r_i − mean(r)) / (std(r) + ε) with ε = 1e-4 and the unbiased standard deviation (TRL's
 * GRPOTrainer: {@code rewards.view(-1, G).std(dim=1)}, then {@code / (std + 1e-4)}), or only centred
 * ({@link AdvantageScaling#NONE}). A group whose rewards are all equal gets advantages 0.
 */
public final class GroupAdvantages {
    /** TRL's ε in the denominator. */
    public static final float EPSILON = 1e-4f;

    private GroupAdvantages() {}

    /**
     * @param rewards {@code [B]} rewards, B a multiple of {@code groupSize}, groups consecutive
     * @param groupSize G ≥ 2
     * @return {@code [B]} fp32 advantages, attached to {@code rewards}' manager
     */
    public static NDArray compute(NDArray rewards, int groupSize, AdvantageScaling scaling) {
        if (groupSize < 2) {
            throw new IllegalArgumentException("a group needs at least 2 completions (an advantage is relative to the "
                    + "group), got group size " + groupSize);
        }
        if (rewards.getShape().dimension() != 1 || rewards.size() % groupSize != 0) {
            throw new IllegalArgumentException("rewards must be [B] with B a multiple of the group size " + groupSize
                    + ", got " + rewards.getShape());
        }
        NDManager out = rewards.getManager();
        try (NDManager scope = out.newSubManager()) {
            NDArray r = rewards.toType(DataType.FLOAT32, true).reshape(-1, groupSize);
            r.attach(scope);
            NDArray centred = r.sub(r.mean(new int[] {1}, true));
            NDArray adv = centred;
            if (scaling == AdvantageScaling.GROUP_STD) {
                NDArray std = centred.square().sum(new int[] {1}, true).div((float) (groupSize - 1)).sqrt();
                adv = centred.div(std.add(EPSILON));
            }
            NDArray result = adv.reshape(rewards.size());
            result.attach(out);
            return result;
        }
    }
}
