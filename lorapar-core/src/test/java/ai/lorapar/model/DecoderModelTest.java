package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;

class DecoderModelTest {
    static final float TOL = 1e-4f;

    /** Device of the model (CPU; the GPU subclasses re-run every test on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    /** Compute dtype of the base weights. */
    protected DataType dtype() {
        return DataType.FLOAT32;
    }

    /**
     * The bound on max |ours − transformers (fp64)|: 1e-4 in fp32 (measured on CUDA: ≤ 1.1e-5). In
     * bf16 the whole forward rounds to 8 significant bits, and on these random two-layer models the
     * end-to-end error against the fp64 reference measured 1.5–11% of the largest logit on an H100
     * (qwen2's second prompt the worst; transformers' own bf16 is off by as much, 9.3%); the bound is 15%
     * of the largest reference logit. The sharp bf16 check is {@link #bf16LogitsMatchTransformersInBf16},
     * against transformers' own bf16 logits.
     */
    protected float bound(NDArray expected) {
        return dtype() == DataType.FLOAT32 ? TOL : 0.15f * expected.abs().max().toType(DataType.FLOAT32, false).getFloat();
    }

    private NDManager manager() {
        return NDManager.newBaseManager(device());
    }

    private DecoderModel load(String name, NDManager m) throws Exception {
        return DecoderModel.load(Fixtures.model(name), m, dtype());
    }

    /**
     * In bf16, against transformers' own bf16 logits on CUDA (make_bf16_references.py): the sharp
     * reference, since both round the same ops to bf16. Bound: {@link #BF16_VS_TRANSFORMERS} of the
     * largest logit. Also prints how far transformers' bf16 is from the fp64 reference, for scale.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama_bf16", "qwen2", "mistral"})
    void bf16LogitsMatchTransformersInBf16(String name) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(dtype() == DataType.BFLOAT16, "a bf16 comparison");
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            for (int i = 0; i < 3; i++) {
                NDArray expected = Fixtures.refBf16(name, "single." + i + ".logits", m);
                org.junit.jupiter.api.Assumptions.assumeTrue(expected != null, "no reference_bf16.safetensors");
                NDArray ids = Fixtures.ref(name, "single." + i + ".input_ids", m).expandDims(0);
                NDArray logits = model.forward(ids, null, false).squeeze(0);
                float diff = Fixtures.maxAbsDiff(logits, expected);
                float scale = expected.abs().max().getFloat();
                float hfVsFp64 = Fixtures.refBf16(name, "single." + i + ".fp64_diff", m).getFloat(0);
                float oursVsExact = Fixtures.maxAbsDiff(logits, Fixtures.ref(name, "single." + i + ".logits", m));
                System.err.printf("%s prompt %d: bf16 logits vs transformers bf16 max |diff| %s = %.2f%% of max |logit| "
                        + "(transformers bf16 vs fp64: %s; ours vs the fp64 reference: %s)%n", name, i, diff,
                        100 * diff / scale, hfVsFp64, oursVsExact);
                // either close to transformers' own bf16 logits, or at least as close to the exact logits as they are
                // (torch's fused attention rounds bf16 differently from transformers' eager path, not worse)
                assertThat(diff < BF16_VS_TRANSFORMERS * scale || oursVsExact <= BF16_VS_EXACT * hfVsFp64)
                        .as("%s prompt %d: %s from transformers bf16, %s from fp64 (transformers bf16: %s)", name, i,
                                diff, oursVsExact, hfVsFp64).isTrue();
            }
        }
    }

    /**
     * Bound of {@link #bf16LogitsMatchTransformersInBf16}, relative to the largest logit: measured on an
     * H100 (2026-11-23) 0.68–1.61% (transformers' own bf16 is 1.0–9.3% from fp64 on the same prompts);
     * the bound is about twice the worst.
     */
    static final float BF16_VS_TRANSFORMERS = 0.03f;

    /**
     * The alternative bound of {@link #bf16LogitsMatchTransformersInBf16}: our bf16 logits at most this
     * factor further from the fp64 reference than transformers' own bf16 logits are (with torch's fused
     * attention in cache-free passes the rounding differs from transformers' eager attention). Measured on
     * an H200 (2026-11-30): 1.29 on the worst prompt (qwen2 prompt 1: 0.69 from fp64, transformers' bf16
     * 0.54), within 3% of transformers' bf16 on the others.
     */
    static final float BF16_VS_EXACT = 1.5f;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama_bf16", "qwen2", "mistral"})
    void logitsMatchTransformers(String name) throws Exception {
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            assertThat(model.dtype()).isEqualTo(dtype());
            for (int i = 0; i < 3; i++) {
                NDArray ids = Fixtures.ref(name, "single." + i + ".input_ids", m).expandDims(0);
                NDArray expected = Fixtures.ref(name, "single." + i + ".logits", m);
                NDArray logits = model.forward(ids, null, false).squeeze(0);
                assertThat(logits.getShape()).isEqualTo(expected.getShape());
                float diff = Fixtures.maxAbsDiff(logits, expected);
                System.err.printf("%s %s %s: unpadded logits max |diff| %s (bound %s)%n", name, device(), dtype(), diff,
                        bound(expected));
                assertThat(diff).isLessThan(bound(expected));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "mistral"})
    void leftPaddedBatchMatchesUnpaddedSequences(String name) throws Exception {
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            NDArray ids = Fixtures.ref(name, "batch.input_ids", m);
            NDArray mask = Fixtures.ref(name, "batch.attention_mask", m);
            NDArray logits = model.forward(ids, mask, false);
            long t = ids.getShape().get(1);
            float worst = 0;
            for (int i = 0; i < 3; i++) {
                NDArray expected = Fixtures.ref(name, "single." + i + ".logits", m);
                long len = expected.getShape().get(0);
                NDArray row = logits.get(new NDIndex("{}, {}:, :", i, t - len));
                float diff = Fixtures.maxAbsDiff(row, expected);
                System.err.printf("%s %s %s: left-padded logits max |diff| %s%n", name, device(), dtype(), diff);
                assertThat(diff).isLessThan(bound(expected));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "mistral"})
    void rightPaddedTrainingBatchAndPerExampleLoss(String name) throws Exception {
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            NDArray ids = Fixtures.ref(name, "loss.input_ids", m);
            NDArray mask = Fixtures.ref(name, "loss.attention_mask", m);
            NDArray labels = Fixtures.ref(name, "loss.labels", m);
            NDArray logits = model.forward(ids, mask, true);
            NDArray expectedLogits = Fixtures.ref(name, "loss.logits", m);
            // compare at real positions only
            NDArray maskF = mask.toType(DataType.FLOAT32, false).expandDims(-1);
            float logitDiff = Fixtures.maxAbsDiff(logits.mul(maskF), expectedLogits.mul(maskF));
            NDArray loss = CausalLmLoss.perExample(logits, labels);
            NDArray expected = Fixtures.ref(name, "loss.per_example", m);
            float lossDiff = Fixtures.maxAbsDiff(loss, expected);
            System.err.printf("%s %s %s: training logits max |diff| %s, per-example loss max |diff| %s%n", name, device(),
                    dtype(), logitDiff, lossDiff);
            assertThat(logitDiff).isLessThan(bound(expectedLogits));
            assertThat(lossDiff).isLessThan(bound(expected));
            // per-token log-probs sum to minus the per-example loss times the answer length
            NDArray tokenLp = CausalLmLoss.tokenLogProbs(logits, labels);
            NDArray counts = labels.get(":, 1:").neq(CausalLmLoss.IGNORE_INDEX).toType(DataType.FLOAT32, false).sum(new int[] {1});
            NDArray summed = tokenLp.sum(new int[] {1}).neg();
            assertThat(Fixtures.maxAbsDiff(summed, loss.mul(counts))).isLessThan(Math.max(1e-4f, bound(summed)));
            float mean = CausalLmLoss.mean(logits, labels).toType(DataType.FLOAT32, false).getFloat();
            assertThat(mean).isCloseTo(expected.mean().getFloat(), org.assertj.core.data.Offset.offset(bound(expected)));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "mistral"})
    void ropeFrequenciesMatchTransformers(String name) throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.model(name));
        try (NDManager m = manager()) {
            float[] expected = Fixtures.ref(name, "rope.inv_freq", m).toFloatArray();
            float[] actual = c.ropeInverseFrequencies();
            assertThat(actual).hasSize(expected.length);
            for (int i = 0; i < expected.length; i++) {
                assertThat((double) actual[i]).isCloseTo(expected[i], org.assertj.core.data.Offset.offset(1e-6 * Math.abs(expected[i]) + 1e-12));
            }
        }
    }

    @Test
    void kvCacheDecodingEqualsFullForward() throws Exception {
        String name = "qwen2";
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            NDArray ids = Fixtures.ref(name, "batch.input_ids", m);
            NDArray mask = Fixtures.ref(name, "batch.attention_mask", m);
            NDArray full = model.forward(ids, mask, false);
            long t = ids.getShape().get(1);
            int split = 6;
            try (KvCache cache = model.newCache(m, 3, (int) t)) {
                NDArray first = model.forward(ids.get(new NDIndex(":, :{}", split)), mask.get(new NDIndex(":, :{}", split)),
                        cache, false, false);
                // pad positions (all of row 2's first six) hold no meaningful logits: compare real tokens only
                NDArray realF = mask.toType(DataType.FLOAT32, false).expandDims(-1);
                NDArray firstMask = realF.get(new NDIndex(":, :{}, :", split));
                assertThat(Fixtures.maxAbsDiff(first.mul(firstMask), full.get(new NDIndex(":, :{}, :", split)).mul(firstMask)))
                        .isLessThan(cacheBound(full));
                for (int s = split; s < t; s++) {
                    NDArray step = model.forward(ids.get(new NDIndex(":, {}:{}", s, s + 1)),
                            mask.get(new NDIndex(":, {}:{}", s, s + 1)), cache, false, true);
                    NDArray stepMask = realF.get(new NDIndex(":, {}:{}, :", s, s + 1));
                    assertThat(Fixtures.maxAbsDiff(step.mul(stepMask), full.get(new NDIndex(":, {}:{}, :", s, s + 1)).mul(stepMask)))
                            .as("position %d", s).isLessThan(cacheBound(full));
                }
                assertThat(cache.length()).isEqualTo(t);
            }
        }
    }

    /** Cached decoding and one full forward differ only in summation order: rounding of the compute dtype. */
    private float cacheBound(NDArray full) {
        return dtype() == DataType.FLOAT32 ? TOL : 0.15f * full.abs().max().toType(DataType.FLOAT32, false).getFloat();
    }

    @Test
    void everyLinearIsAddressableByItsHuggingFaceName() throws Exception {
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            assertThat(model.linears()).hasSize(2 * 7 + 1);
            assertThat(model.linear("model.layers.1.self_attn.q_proj").bias()).isNotNull();
            assertThat(model.linear("model.layers.1.self_attn.o_proj").bias()).isNull();
            assertThat(model.linear("model.layers.0.mlp.down_proj").inFeatures()).isEqualTo(128);
            assertThat(model.linear("lm_head").weight()).isSameAs(model.embedTokens()); // tied
        }
        try (NDManager m = manager(); DecoderModel model = load("mistral", m)) {
            assertThat(model.linear("model.layers.0.self_attn.q_proj").outFeatures()).isEqualTo(128); // head_dim 32
            assertThat(model.linear("model.layers.0.self_attn.k_proj").outFeatures()).isEqualTo(32); // one kv head
            assertThat(model.linear("lm_head").weight()).isNotSameAs(model.embedTokens());
        }
    }
}
