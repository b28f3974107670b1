package ai.lorapar.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import org.junit.jupiter.api.Assumptions;
import ai.djl.ndarray.NDManager;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.GenerationResult.FinishReason;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.GeneratorAccess;
import ai.lorapar.engine.CudaGraph;
import ai.lorapar.lora.LoraConfig;
import ai.lorapar.lora.LoraInit;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.LoraTargets;
import ai.lorapar.model.generate.SamplingConfig;
import ai.lorapar.model.tokenizer.PromptTemplate;
import ai.lorapar.model.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GeneratorTest {

    /** Device of the model (CPU; the GPU subclasses re-run every test on CUDA). */
    protected Device device() {
        return Device.cpu();
    }

    /** Compute dtype of the base weights. */
    protected DataType dtype() {
        return DataType.FLOAT32;
    }

    private NDManager manager() {
        return NDManager.newBaseManager(device());
    }

    private DecoderModel load(String name, NDManager m) throws Exception {
        return DecoderModel.load(Fixtures.model(name), m, dtype());
    }

    static List<long[]> prompts(String name, NDManager m) {
        List<long[]> p = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            p.add(Fixtures.ref(name, "single." + i + ".input_ids", m).toLongArray());
        }
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama_bf16", "qwen2", "mistral"})
    void batchedGreedyMatchesTransformersTokenForToken(String name) throws Exception {
        // Token-for-token identity with transformers is an fp32 claim: in bf16 near-ties flip.
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "greedy identity is checked in fp32");
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            List<long[]> prompts = prompts(name, m);
            GenerationResult r = new Generator(model).generate(prompts, SamplingConfig.greedy(8));
            float worst = 0;
            for (int i = 0; i < 3; i++) {
                long[] hf = Fixtures.ref(name, "greedy." + i + ".sequences", m).toLongArray();
                long[] hfNew = Arrays.copyOfRange(hf, prompts.get(i).length, hf.length);
                float[] hfLp = Fixtures.ref(name, "greedy." + i + ".logprobs", m).toFloatArray();
                GenerationResult.Sequence s = r.sequences().get(i);
                assertThat(s.tokens()).as("%s prompt %d", name, i).containsExactly(hfNew);
                assertThat(s.finishReason()).isEqualTo(hfNew[hfNew.length - 1] == 257 ? FinishReason.STOP : FinishReason.LENGTH);
                for (int j = 0; j < hfLp.length; j++) {
                    worst = Math.max(worst, Math.abs(hfLp[j] - s.logProbs()[j]));
                }
            }
            System.err.printf("%s: greedy tokens equal; log-prob max |diff| %s%n", name, worst);
            assertThat(worst).isLessThan(DecoderModelTest.TOL);
        }
    }

    @Test
    void seededSamplingIsReproducibleAndFiltersApply() throws Exception {
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            List<long[]> prompts = prompts("qwen2", m);
            Generator g = new Generator(model);
            SamplingConfig cfg = SamplingConfig.sample(6, 1.0, 42);
            GenerationResult a = g.generate(prompts, cfg);
            GenerationResult b = g.generate(prompts, cfg);
            for (int i = 0; i < 3; i++) {
                assertThat(a.sequences().get(i).tokens()).containsExactly(b.sequences().get(i).tokens());
            }
            GenerationResult other = g.generate(prompts, cfg.withSeed(7L));
            boolean anyDiffers = false;
            for (int i = 0; i < 3; i++) {
                anyDiffers |= !Arrays.equals(a.sequences().get(i).tokens(), other.sequences().get(i).tokens());
            }
            assertThat(anyDiffers).as("another seed gives other samples").isTrue();

            GenerationResult greedy = g.generate(prompts, SamplingConfig.greedy(6));
            GenerationResult top1 = g.generate(prompts, cfg.withTopK(1));
            GenerationResult tinyP = g.generate(prompts, cfg.withTopP(1e-6));
            for (int i = 0; i < 3; i++) {
                assertThat(top1.sequences().get(i).tokens()).containsExactly(greedy.sequences().get(i).tokens());
                assertThat(tinyP.sequences().get(i).tokens()).containsExactly(greedy.sequences().get(i).tokens());
            }

            // first sampled token lies among the 3 most likely ones
            NDArray ids = Fixtures.ref("qwen2", "batch.input_ids", m);
            NDArray mask = Fixtures.ref("qwen2", "batch.attention_mask", m);
            NDArray last = model.forward(ids, mask, false).get(":, -1, :");
            long[] top3 = last.argSort(-1, false).get(":, :3").toLongArray();
            for (long seed = 0; seed < 5; seed++) {
                GenerationResult k3 = g.generate(prompts, SamplingConfig.sample(1, 2.0, seed).withTopK(3));
                for (int i = 0; i < 3; i++) {
                    long t = k3.sequences().get(i).tokens()[0];
                    assertThat(new long[] {top3[3 * i], top3[3 * i + 1], top3[3 * i + 2]}).contains(t);
                }
            }
        }
    }

    /**
     * Data-parallel sampling: rows sampled in separate calls, each with its rows' share of the whole batch's
     * noise, get the tokens of the whole batch sampled at once (fp32: the logits of a smaller batch round alike).
     */
    @Test
    void rowsWithTheirShareOfTheWholeBatchsNoiseSampleWhatTheWholeBatchSamples() throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "token identity across batch shapes is checked in fp32");
        try (NDManager m = manager(); DecoderModel model = load("llama", m)) {
            List<long[]> prompts = prompts("llama", m);
            Generator g = new Generator(model);
            SamplingConfig cfg = SamplingConfig.sample(8, 1.0, 42);
            GenerationResult whole = g.generate(prompts, cfg);
            GenerationResult even = g.generate(List.of(prompts.get(0), prompts.get(2)), cfg, 3, new long[] {0, 2});
            GenerationResult odd = g.generate(List.of(prompts.get(1)), cfg, 3, new long[] {1});
            assertThat(even.sequences().get(0).tokens()).containsExactly(whole.sequences().get(0).tokens());
            assertThat(even.sequences().get(1).tokens()).containsExactly(whole.sequences().get(2).tokens());
            assertThat(odd.sequences().get(0).tokens()).containsExactly(whole.sequences().get(1).tokens());
            // without the whole batch's noise a row draws other tokens (the check above is not vacuous)
            GenerationResult alone = g.generate(List.of(prompts.get(1)), cfg);
            assertThat(alone.sequences().get(0).tokens()).isNotEqualTo(whole.sequences().get(1).tokens());
            assertThatThrownBy(() -> g.generate(List.of(prompts.get(1)), cfg, 3, new long[] {3}))
                    .hasMessageContaining("noise row 3 outside a batch of 3");
        }
    }

    @Test
    void stopsOnStopTokenPerRow() throws Exception {
        try (NDManager m = manager(); DecoderModel model = load("llama", m)) {
            List<long[]> prompts = prompts("llama", m);
            Generator g = new Generator(model);
            GenerationResult greedy = g.generate(prompts, SamplingConfig.greedy(8));
            long stop = greedy.sequences().get(1).tokens()[2];
            GenerationResult r = g.generate(prompts, SamplingConfig.greedy(8).withStopTokenIds(List.of((int) stop)));
            GenerationResult.Sequence s1 = r.sequences().get(1);
            assertThat(s1.tokens()).hasSize(3).endsWith(stop);
            assertThat(s1.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(s1.logProbs()).hasSize(3);
            for (int i : new int[] {0, 2}) {
                long[] expected = greedy.sequences().get(i).tokens();
                int cut = 0;
                while (cut < expected.length && expected[cut] != stop) {
                    cut++;
                }
                assertThat(r.sequences().get(i).tokens())
                        .containsExactly(Arrays.copyOf(expected, Math.min(expected.length, cut + 1)));
            }
        }
    }

    @Test
    void causalLmOpensModelAndTokenizerOfOneFolder(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        java.nio.file.Path dir = tmp.resolve("m");
        java.nio.file.Files.createDirectories(dir);
        for (java.nio.file.Path src : new java.nio.file.Path[] {Fixtures.model("llama"), Fixtures.root().resolve("byte-tokenizer")}) {
            try (var files = java.nio.file.Files.list(src)) {
                for (java.nio.file.Path f : (Iterable<java.nio.file.Path>) files::iterator) {
                    java.nio.file.Files.copy(f, dir.resolve(f.getFileName()));
                }
            }
        }
        try (NDManager m = manager(); CausalLM lm = CausalLM.load(dir, m)) {
            assertThat(lm.tokenizer()).isNotNull();
            GenerationResult r = lm.generator().generateText(List.of(PromptTemplate.llama2Chat().prompt("hi")),
                    SamplingConfig.greedy(4));
            assertThat(r.sequences().get(0).prompt()).startsWith(256, '[', 'I', 'N', 'S', 'T', ']');
            assertThat(r.texts().get(0)).isNotNull();
        }
        try (NDManager m = manager(); CausalLM lm = CausalLM.load(Fixtures.model("llama"), m)) {
            // a folder without tokenizer.json opens; asking for the tokenizer names the missing file
            assertThat(lm.hasTokenizer()).isFalse();
            org.assertj.core.api.Assertions.assertThatThrownBy(lm::tokenizer).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining(Fixtures.model("llama").resolve("tokenizer.json").toString())
                    .hasMessageContaining("is missing");
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> lm.generator().generateText(List.of("hi"),
                    SamplingConfig.greedy(2))).hasMessageContaining("tokenizer.json");
            assertThat(lm.generator().generate(List.of(new long[] {1, 2}), SamplingConfig.greedy(2)).sequences())
                    .hasSize(1);
        }
    }

    @Test
    void generatesTextThroughTokenizerAndTemplate() throws Exception {
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m);
                TextTokenizer tk = TextTokenizer.load(Fixtures.root().resolve("byte-tokenizer"))) {
            Generator g = new Generator(model, tk);
            String prompt = PromptTemplate.chatMl().prompt("Be brief.", "Hi");
            GenerationResult r = g.generateText(List.of(prompt, "x"), SamplingConfig.greedy(5));
            assertThat(r.sequences()).hasSize(2);
            assertThat(r.sequences().get(0).prompt()[0]).isEqualTo(256); // bos from the post-processor
            assertThat(r.sequences().get(0).prompt()[1]).isEqualTo(259); // <|im_start|>
            for (GenerationResult.Sequence s : r.sequences()) {
                assertThat(s.text()).isEqualTo(tk.decode(s.tokens(), true));
            }
            assertThatThrownBy(() -> new Generator(model).generateText(List.of("x"), SamplingConfig.greedy(1)))
                    .isInstanceOf(IllegalStateException.class);
        }
    }

    /** Sampling configurations the decode modes are compared on (greedy, seeded, filtered, with a stop id). */
    private static List<SamplingConfig> modeConfigs(long stop) {
        return List.of(SamplingConfig.greedy(8), SamplingConfig.sample(8, 1.0, 42),
                SamplingConfig.sample(8, 0.7, 3).withTopK(20).withTopP(0.9),
                SamplingConfig.greedy(8).withStopTokenIds(List.of((int) stop)));
    }

    /** Largest |difference| of the log-probabilities, after checking that the tokens are equal. */
    private static float assertSameTokens(GenerationResult want, GenerationResult got, String what) {
        float worst = 0;
        assertThat(got.sequences()).hasSameSizeAs(want.sequences());
        for (int i = 0; i < want.sequences().size(); i++) {
            GenerationResult.Sequence w = want.sequences().get(i);
            GenerationResult.Sequence g = got.sequences().get(i);
            assertThat(g.tokens()).as("%s row %d", what, i).containsExactly(w.tokens());
            assertThat(g.finishReason()).as("%s row %d", what, i).isEqualTo(w.finishReason());
            for (int j = 0; j < w.logProbs().length; j++) {
                worst = Math.max(worst, Math.abs(w.logProbs()[j] - g.logProbs()[j]));
            }
        }
        return worst;
    }

    /**
     * Static decoding (the steps a CUDA graph captures: device-held slot and positions, attention over
     * the whole capacity with unwritten positions masked) gives the eager steps' tokens, for left-padded
     * prompts of three lengths, greedy, seeded and filtered sampling (the same random draws in the same
     * order) and a stop id that ends one row early.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2"})
    void staticDecodingMatchesEagerSteps(String name) throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "token identity is an fp32 claim");
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            List<long[]> prompts = prompts(name, m);
            long stop = new Generator(model).generate(prompts, SamplingConfig.greedy(8)).sequences().get(1).tokens()[2];
            for (SamplingConfig cfg : modeConfigs(stop)) {
                GeneratorAccess.Run eager = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.EAGER);
                GeneratorAccess.Run stat = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.STATIC);
                assertThat(eager.used()).isEqualTo(GeneratorAccess.Mode.EAGER);
                assertThat(stat.used()).isEqualTo(GeneratorAccess.Mode.STATIC);
                float worst = assertSameTokens(eager.result(), stat.result(), name + " " + cfg);
                assertThat(worst).as("%s %s log-probs", name, cfg).isLessThan(DecoderModelTest.TOL);
            }
            // the stop config did stop a row early in both modes
            GeneratorAccess.Run r = GeneratorAccess.generate(model, prompts,
                    SamplingConfig.greedy(8).withStopTokenIds(List.of((int) stop)), GeneratorAccess.Mode.STATIC);
            assertThat(r.result().sequences().get(1).tokens()).hasSize(3).endsWith(stop);
        }
    }

    /**
     * On a GPU whose engine captures CUDA graphs: the default generator decodes through a graph, and the
     * graph's replays give the static steps' tokens and log-probabilities (the same kernels), seeded
     * sampling through the graph is reproducible, and a row stopping early is handled.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2"})
    void cudaGraphDecodingMatchesStaticSteps(String name) throws Exception {
        try (NDManager m = manager(); DecoderModel model = load(name, m)) {
            Assumptions.assumeTrue(CudaGraph.isAvailable(m.getEngine(), device()), "engine cannot capture CUDA graphs");
            List<long[]> prompts = prompts(name, m);
            Generator byDefault = new Generator(model);
            GenerationResult greedy = byDefault.generate(prompts, SamplingConfig.greedy(8));
            assertThat(GeneratorAccess.lastMode(byDefault)).isEqualTo(GeneratorAccess.Mode.GRAPH);
            long stop = greedy.sequences().get(1).tokens()[2];
            for (SamplingConfig cfg : modeConfigs(stop)) {
                GeneratorAccess.Run graph = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.GRAPH);
                assertThat(graph.used()).as("%s %s captured", name, cfg).isEqualTo(GeneratorAccess.Mode.GRAPH);
                GeneratorAccess.Run again = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.GRAPH);
                assertSameTokens(graph.result(), again.result(), name + " " + cfg + " graph twice");
                if (cfg.isGreedy()) {
                    GeneratorAccess.Run stat = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.STATIC);
                    float worst = assertSameTokens(stat.result(), graph.result(), name + " " + cfg + " graph");
                    // in bf16 a near-tie can flip between two equal-math kernels' roundings; fp32 is checked tightly
                    assertThat(worst).isLessThan(dtype() == DataType.FLOAT32 ? DecoderModelTest.TOL : 0.05f);
                }
            }
            GeneratorAccess.Run stopped = GeneratorAccess.generate(model, prompts,
                    SamplingConfig.greedy(8).withStopTokenIds(List.of((int) stop)), GeneratorAccess.Mode.GRAPH);
            assertThat(stopped.result().sequences().get(1).finishReason()).isEqualTo(FinishReason.STOP);
        }
    }

    /**
     * With LoRA adapters installed and enabled (Gaussian init, so they change the output), static decoding
     * and, where available, the CUDA graph give the eager tokens: the adapters' ops are captured too.
     */
    @Test
    void decodeModesAgreeWithLoraAdapters() throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "token identity is an fp32 claim");
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            List<long[]> prompts = prompts("qwen2", m);
            SamplingConfig cfg = SamplingConfig.greedy(8);
            GenerationResult base = new Generator(model).generate(prompts, cfg);
            LoraConfig lc = LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4).alpha(16).init(LoraInit.GAUSSIAN)
                    .gaussianStd(0.5).seed(3).build();
            try (LoraModel lora = LoraModel.apply(model, lc, m)) {
                GeneratorAccess.Run eager = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.EAGER);
                boolean changed = false;
                for (int i = 0; i < prompts.size(); i++) {
                    changed |= !Arrays.equals(base.sequences().get(i).tokens(), eager.result().sequences().get(i).tokens());
                }
                assertThat(changed).as("the adapters change the greedy tokens").isTrue();
                GeneratorAccess.Run stat = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.STATIC);
                assertThat(assertSameTokens(eager.result(), stat.result(), "lora static")).isLessThan(DecoderModelTest.TOL);
                if (CudaGraph.isAvailable(m.getEngine(), device())) {
                    GeneratorAccess.Run graph = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.GRAPH);
                    assertThat(graph.used()).isEqualTo(GeneratorAccess.Mode.GRAPH);
                    assertThat(assertSameTokens(eager.result(), graph.result(), "lora graph"))
                            .isLessThan(DecoderModelTest.TOL);
                }
            }
        }
    }

    /**
     * Decoding with adapters uses the cache's frozen, fused copy of them: the log-probabilities of the
     * generated tokens equal those of a teacher-forced forward pass with the live adapters (no cache),
     * for adapters on every projection and on some parts of the fused groups only (zero blocks).
     */
    @Test
    void generatedLogProbsWithAdaptersMatchATeacherForcedPass() throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "checked in fp32");
        List<LoraConfig> configs = List.of(
                LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4).alpha(16).init(LoraInit.GAUSSIAN)
                        .gaussianStd(0.5).seed(3).build(),
                LoraConfig.builder().targets("q_proj", "v_proj", "up_proj").rank(2).alpha(8).init(LoraInit.GAUSSIAN)
                        .gaussianStd(0.5).seed(4).build());
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            List<long[]> prompts = prompts("qwen2", m);
            for (LoraConfig lc : configs) {
                try (LoraModel lora = LoraModel.apply(model, lc, m)) {
                    GenerationResult r = new Generator(model).generate(prompts, SamplingConfig.sample(6, 1.0, 9));
                    float worst = 0;
                    for (int i = 0; i < prompts.size(); i++) {
                        long[] p = prompts.get(i);
                        long[] gen = r.sequences().get(i).tokens();
                        long[] all = new long[p.length + gen.length];
                        System.arraycopy(p, 0, all, 0, p.length);
                        System.arraycopy(gen, 0, all, p.length, gen.length);
                        try (NDManager s = m.newSubManager()) {
                            NDArray ids = s.create(all, new ai.djl.ndarray.types.Shape(1, all.length));
                            NDArray logp = model.forward(ids, null, false).toType(DataType.FLOAT32, false)
                                    .logSoftmax(-1);
                            for (int j = 0; j < gen.length; j++) {
                                float want = logp.getFloat(0, p.length - 1 + j, gen[j]);
                                worst = Math.max(worst, Math.abs(want - r.sequences().get(i).logProbs()[j]));
                            }
                        }
                    }
                    System.err.printf("%s: generated log-probs vs teacher-forced, max |diff| %s%n", lc.targets(), worst);
                    assertThat(worst).as("%s", lc.targets()).isLessThan(DecoderModelTest.TOL);
                }
            }
        }
    }

    /** A disabled PiSSA model is the base model in generation too (its frozen term is the residual's B₀·A₀). */
    @Test
    void disabledPissaAdaptersGenerateAsTheBaseModel() throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "checked in fp32");
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            List<long[]> prompts = prompts("qwen2", m);
            GenerationResult base = new Generator(model).generate(prompts, SamplingConfig.greedy(6));
            try (LoraModel lora = LoraModel.apply(model, LoraConfig.builder().rank(4).alpha(8).init(LoraInit.PISSA)
                    .seed(1).build(), m)) {
                lora.setEnabled(false);
                GenerationResult off = new Generator(model).generate(prompts, SamplingConfig.greedy(6));
                assertThat(assertSameTokens(base, off, "disabled PiSSA")).isLessThan(DecoderModelTest.TOL);
            }
        }
    }

    /**
     * A step that cannot be captured (here an adapter that reads a value back to the host, which a CUDA
     * graph cannot contain) falls back to step-by-step static decoding, with the same tokens.
     */
    @Test
    void aStepThatCannotBeCapturedFallsBackToStepByStep() throws Exception {
        try (NDManager m = manager(); DecoderModel model = load("llama", m)) {
            Assumptions.assumeTrue(CudaGraph.isAvailable(m.getEngine(), device()), "engine cannot capture CUDA graphs");
            List<long[]> prompts = prompts("llama", m);
            Linear o = model.linear("model.layers.0.self_attn.o_proj");
            o.setAdapter((layer, x, training) -> {
                try (NDArray sum = x.sum()) {
                    sum.toType(DataType.FLOAT32, false).getFloat(); // a device-to-host read
                }
                return null; // no term: the outputs stay the base model's
            });
            try {
                SamplingConfig cfg = SamplingConfig.greedy(6);
                GeneratorAccess.Run graph = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.GRAPH);
                assertThat(graph.used()).isEqualTo(GeneratorAccess.Mode.STATIC);
                GeneratorAccess.Run stat = GeneratorAccess.generate(model, prompts, cfg, GeneratorAccess.Mode.STATIC);
                assertSameTokens(stat.result(), graph.result(), "after a failed capture");
            } finally {
                o.setAdapter(null);
            }
            GeneratorAccess.Run again = GeneratorAccess.generate(model, prompts, SamplingConfig.greedy(6),
                    GeneratorAccess.Mode.GRAPH);
            assertThat(again.used()).as("the next call captures again").isEqualTo(GeneratorAccess.Mode.GRAPH);
        }
    }

    /**
     * A KV cache decodes with the adapters as they were when it was made: adapters installed after it
     * change nothing in its passes, while a cache made after them uses them.
     */
    @Test
    void aCacheKeepsTheAdaptersItWasMadeWith() throws Exception {
        Assumptions.assumeTrue(dtype() == DataType.FLOAT32, "checked in fp32");
        try (NDManager m = manager(); DecoderModel model = load("qwen2", m)) {
            NDArray ids = m.create(prompts("qwen2", m).get(0)).expandDims(0);
            NDArray next = m.create(new long[] {7}).reshape(1, 1);
            NDArray one = m.ones(new ai.djl.ndarray.types.Shape(1, 1), DataType.INT64);
            LoraConfig lc = LoraConfig.builder().targets(LoraTargets.QKVOGUD).rank(4).alpha(16)
                    .init(LoraInit.GAUSSIAN).gaussianStd(0.5).seed(3).build();
            NDArray base;
            try (KvCache cache = model.newCache(m, 1, 16)) {
                model.forward(ids, null, cache, false, true);
                base = model.forward(next, one, cache, false, true);
            }
            try (KvCache before = model.newCache(m, 1, 16)) {
                model.forward(ids, null, before, false, true);
                try (LoraModel lora = LoraModel.apply(model, lc, m)) {
                    NDArray stale = model.forward(next, one, before, false, true);
                    assertThat(Fixtures.maxAbsDiff(stale, base)).isLessThan(DecoderModelTest.TOL);
                    try (KvCache after = model.newCache(m, 1, 16)) {
                        model.forward(ids, null, after, false, true);
                        NDArray adapted = model.forward(next, one, after, false, true);
                        assertThat(Fixtures.maxAbsDiff(adapted, base)).isGreaterThan(1e-2f);
                    }
                }
            }
        }
    }
}
