package ai.lorapar.importance;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.lorapar.data.EncodedDataset;
import ai.lorapar.data.EncodedExample;
import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.TokenBatch;
import ai.lorapar.engine.Collective;
import ai.lorapar.lora.LoraLayer;
import ai.lorapar.lora.LoraModel;
import ai.lorapar.lora.PerExampleGradients;
import ai.lorapar.model.AnswerPositions;
import ai.lorapar.model.CausalLmLoss;
import ai.lorapar.model.CausalLmObjective;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.train.DataParallel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Random;
import java.util.stream.Collectors;

/**
 * LoRA-PAR's element-wise importance of one system's examples (paper §3.3, design.md §1): for every
 * LoRA element φ, over N examples with gradients g_i = ∂L_i/∂φ of each example's own mean answer-token
 * loss, {@code I(φ) = |Σ_i g_i·φ − ½·Σ_i (g_i·φ)²| / N}.
 *
 * <pre>{@code
 * ExampleEncoder enc = ExampleEncoder.builder(lm.tokenizer()).template(PromptTemplate.chatMl()).maxLength(512).build();
 * ImportanceScorer scorer = ImportanceScorer.builder().encoder(enc).examples(100, 42).batchSize(16).build();
 * try (ImportanceMap i1 = scorer.score(lora, SystemLabel.SYSTEM_1, labelled.system1());
 *      ImportanceMap i2 = scorer.score(lora, SystemLabel.SYSTEM_2, labelled.system2())) { ... }
 * }</pre>
 *
 * <p><b>The reference's definition, in batches.</b> The reference takes one backward pass per example.
 * Here a batch of examples goes through one forward and one backward pass that yields every row's own
 * gradient ({@link LoraModel#perExampleGradients}: per-row copies of the LoRA parameters, or on the
 * project's JNI one fused node per projection that batches only the per-row gradients of A and B), so
 * the result equals the one-example-per-backward loop (up to floating-point summation order) for any
 * batch size. Rows are right-padded; padding is neither attended to nor
 * counted. Examples are batched longest first (less padding; the largest batch, and so the peak memory,
 * comes first).
 *
 * <p><b>What is scored.</b> N examples (default 100, as the reference) drawn with a seeded shuffle
 * (default seed 42); an example that does not fit the encoder's maximum length is skipped, counted,
 * logged and replaced by the next one of the shuffle; with fewer examples than N all are used (and
 * that is logged). Loss on answer tokens only, dropout off (inference-mode forward), the adapters as
 * installed: for PiSSA and OLoRA φ is the trainable A and B (not the residual's A₀, B₀), as the
 * reference scores PEFT's trainable parameters. The result's {@link ImportanceMap#numExamples()} is
 * the number of examples actually scored; it lives in a sub-manager of the model's manager (close it).
 *
 * <p><b>Refused.</b> Adapters whose B matrices are all zero (standard LoRA init) give an importance
 * of exactly zero everywhere, so they are refused up front with the reason; so are merged or disabled
 * adapters, an empty example list, a list none of whose examples fits, and token ids outside the
 * model's vocabulary (naming the example). A non-finite loss names the example.
 *
 * <p><b>Several processes (data parallel).</b> With {@link Builder#collective} every rank calls
 * {@code score} with the same examples on its own copy of the model: all draw the same sample, rank r of W
 * scores examples r, r + W, … of it (longest first), and the ranks' Σ g·φ, Σ (g·φ)² and counts are summed
 * ({@link ImportanceAccumulator#allReduce}), so every rank returns the map of the whole sample (equal to
 * one process's up to floating-point summation order). The leader alone calls the listener. A non-finite
 * loss on any rank makes every rank fail.
 *
 * <p>Immutable; one scoring run at a time per model (it opens a gradient collector).
 */
public final class ImportanceScorer {
    private static final Logger LOG = LoggerFactory.getLogger(ImportanceScorer.class);

    /** Examples per system by default, as the reference. */
    public static final int DEFAULT_EXAMPLES = 100;
    /** The default sampling seed. */
    public static final long DEFAULT_SEED = 42;
    /** The default number of examples per forward/backward pass. */
    public static final int DEFAULT_BATCH_SIZE = 16;

    private final ExampleEncoder encoder;
    private final int examples;
    private final long seed;
    private final int batchSize;
    private final ImportanceListener listener;
    private final Collective collective;

    private ImportanceScorer(Builder b) {
        this.encoder = b.encoder;
        this.examples = b.examples;
        this.seed = b.seed;
        this.batchSize = b.batchSize;
        this.listener = b.collective.isLeader() ? b.listener : ImportanceListener.none();
        this.collective = b.collective;
    }

    /**
     * Each row's mean answer-token loss {@code [rows]}, computed at the answer positions only
     * ({@link CausalLmObjective}: no {@code [B, T, vocab]} logits) and averaged per row by a small
     * host-made {@code [rows, N]} matrix; a row without counted tokens gets 0, as
     * {@link CausalLmLoss#perExample} gives. Rows are right-padded ({@link TokenBatch}) and their ids were
     * checked on the host.
     */
    static NDArray rowMeanLosses(DecoderModel model, TokenBatch batch, NDManager scope) {
        AnswerPositions answers = batch.answerPositions(scope);
        if (answers.count() == 0) {
            NDArray logits = model.forward(batch.inputIds(), batch.attentionMask(), false);
            logits.attach(scope);
            return CausalLmLoss.perExample(logits, batch.labels());
        }
        int[] perRow = answers.perRow();
        int n = answers.count();
        float[] w = new float[perRow.length * n];
        int k = 0;
        for (int r = 0; r < perRow.length; r++) {
            for (int i = 0; i < perRow[r]; i++) {
                w[r * n + k++] = 1f / perRow[r];
            }
        }
        NDArray weights = scope.create(w, new Shape(perRow.length, n));
        NDArray nll = CausalLmObjective.tokenNll(model, batch.inputIds(), batch.attentionMask(), answers, false, true);
        nll.attach(scope);
        NDArray means = weights.matMul(nll.expandDims(1));
        means.attach(scope);
        return means.squeeze(1);
    }

    /**
     * A builder. Defaults: no encoder (needed to score {@link Example}s), {@value #DEFAULT_EXAMPLES}
     * examples, seed {@value #DEFAULT_SEED}, batches of {@value #DEFAULT_BATCH_SIZE}, no listener.
     */
    public static Builder builder() {
        return new Builder();
    }

    public ExampleEncoder encoder() {
        return encoder;
    }

    /** N, the number of examples scored per call (fewer when the data has fewer). */
    public int examples() {
        return examples;
    }

    public long seed() {
        return seed;
    }

    public int batchSize() {
        return batchSize;
    }

    // ---------------------------------------------------------------- scoring

    /** Scores {@code examples} (errors and logs call them "examples"). */
    public ImportanceMap score(LoraModel lora, List<Example> examples) {
        return scoreExamples(lora, "examples", examples);
    }

    /** Scores the examples of {@code system} (errors, logs and the listener name the system). */
    public ImportanceMap score(LoraModel lora, SystemLabel system, List<Example> examples) {
        return scoreExamples(lora, Objects.requireNonNull(system, "system").text(), examples);
    }

    /**
     * Scores examples that are already encoded (no encoder needed): the seeded sample of N is drawn
     * from {@code data.examples()}; {@code data.skipped()} are counted as skipped.
     */
    public ImportanceMap score(LoraModel lora, EncodedDataset data) {
        Objects.requireNonNull(lora, "lora");
        Objects.requireNonNull(data, "data");
        String source = "examples";
        checkAdapters(lora, source);
        List<EncodedExample> all = data.examples();
        if (all.isEmpty()) {
            throw noneLeft(source, data.skipped().size(), data.skipped().size(), -1);
        }
        int vocab = lora.model().config().vocabSize();
        int[] order = sampleOrder(all.size(), examples, seed);
        int n = Math.min(examples, all.size());
        List<EncodedExample> chosen = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            EncodedExample e = all.get(order[i]);
            checkVocabulary(source, e, vocab);
            chosen.add(e);
        }
        if (!data.skipped().isEmpty()) {
            LOG.warn("{}: {} example(s) were skipped by the encoder as too long: {}", source, data.skipped().size(),
                    describe(data.skipped()));
        }
        if (examples > all.size()) {
            LOG.info("{}: {} examples asked for, {} available: scoring all of them", source, examples, all.size());
        }
        return scoreEncoded(lora, source, chosen, data.skipped());
    }

    private ImportanceMap scoreExamples(LoraModel lora, String source, List<Example> list) {
        Objects.requireNonNull(lora, "lora");
        Objects.requireNonNull(list, "examples");
        if (encoder == null) {
            throw new IllegalStateException("scoring examples needs an encoder: ImportanceScorer.builder().encoder(...)");
        }
        if (list.isEmpty()) {
            throw new IllegalArgumentException(source + " has no examples to score (the list is empty)");
        }
        checkAdapters(lora, source);
        int vocab = lora.model().config().vocabSize();
        // the model's vocabulary is checked while encoding: an id outside it names the example
        ExampleEncoder enc = encoder.vocabSize() == vocab ? encoder : encoder.toBuilder().vocabSize(vocab).build();
        int[] order = sampleOrder(list.size(), examples, seed);
        List<EncodedExample> chosen = new ArrayList<>(Math.min(examples, list.size()));
        List<Example> skipped = new ArrayList<>();
        for (int i = 0; i < order.length && chosen.size() < examples; i++) {
            Example ex = list.get(order[i]);
            EncodedExample e = enc.encode(ex);
            if (e == null) {
                skipped.add(ex);
            } else {
                chosen.add(e);
            }
        }
        if (chosen.isEmpty()) {
            throw noneLeft(source, list.size(), skipped.size(), enc.maxLength());
        }
        if (!skipped.isEmpty()) {
            LOG.warn("{}: {} example(s) skipped as longer than {} tokens ({}): {}", source, skipped.size(),
                    enc.maxLength(), enc.truncation(), describe(skipped));
        }
        if (examples > list.size()) {
            LOG.info("{}: {} examples asked for, {} available: scoring all that fit ({})", source, examples,
                    list.size(), chosen.size());
        }
        return scoreEncoded(lora, source, chosen, skipped);
    }

    private static IllegalArgumentException noneLeft(String source, int size, int skipped, int maxLength) {
        if (skipped == 0) {
            return new IllegalArgumentException(source + " has no examples to score (the list is empty)");
        }
        return new IllegalArgumentException(source + ": none of its " + size + " examples can be scored: " + skipped
                + " were skipped as longer than " + (maxLength > 0 ? maxLength + " tokens" : "the encoder's maximum length")
                + " (their prompt leaves no answer token); raise the encoder's maxLength");
    }

    /** The seeded, sampled examples through the model in batches; the core of every overload. */
    private ImportanceMap scoreEncoded(LoraModel lora, String source, List<EncodedExample> chosen,
            List<Example> skipped) {
        DecoderModel model = lora.model();
        listener.selected(source, List.copyOf(chosen), List.copyOf(skipped));
        long padId = encoder != null && encoder.padId() >= 0 && encoder.padId() < model.config().vocabSize()
                ? encoder.padId() : 0; // pads are neither attended to nor counted: any id in the vocabulary will do
        // longest first: rows of similar length share a batch (less padding) and the peak comes first
        List<EncodedExample> everyRank = new ArrayList<>(chosen);
        everyRank.sort(Comparator.comparingInt(EncodedExample::length).reversed());
        int globalTotal = everyRank.size();
        // data parallel: this rank's share, strided so that every rank gets rows of every length
        List<EncodedExample> sorted = DataParallel.share(everyRank, collective);
        int total = sorted.size();
        int world = collective.worldSize();
        long t0 = System.nanoTime();
        Engine engine = model.manager().getEngine();
        try (ImportanceAccumulator acc = new ImportanceAccumulator(model.manager());
                NDManager losses = model.manager().newSubManager()) {
            NDList perRow = new NDList();
            for (int from = 0; from < total; from += batchSize) {
                List<EncodedExample> rows = sorted.subList(from, Math.min(total, from + batchSize));
                try (NDManager scope = model.manager().newSubManager();
                        TokenBatch batch = TokenBatch.of(rows, padId, scope);
                        PerExampleGradients pe = lora.perExampleGradients(rows.size())) {
                    try (GradientCollector gc = engine.newGradientCollector()) {
                        NDArray loss = rowMeanLosses(model, batch, scope); // [rows], each its own mean
                        NDArray sum = loss.sum();
                        gc.backward(sum);
                        NDArray kept = loss.stopGradient();
                        kept.attach(losses);
                        perRow.add(kept);
                    }
                    acc.addBatch(lora.parameters(), pe.gradients());
                }
                listener.progress(source, Math.min(globalTotal, Math.min(total, from + batchSize) * world), globalTotal);
            }
            // one read-back for the whole run
            float[] values = perRow.isEmpty() ? new float[0] : NDArrays.concat(perRow).toFloatArray();
            double meanLoss = 0;
            int nonFinite = -1;
            for (int i = 0; i < values.length; i++) {
                if (!Float.isFinite(values[i]) && nonFinite < 0) {
                    nonFinite = i;
                }
                meanLoss += values[i];
            }
            double nonFiniteRanks = nonFinite >= 0 ? 1 : 0;
            if (world > 1) { // every rank learns whether any failed, so all stop together
                try (NDManager s = model.manager().newSubManager()) {
                    NDArray both = s.create(new double[] {nonFiniteRanks, nonFinite >= 0 ? 0 : meanLoss});
                    collective.allReduceSum(new NDList(both));
                    double[] r = both.toDoubleArray();
                    nonFiniteRanks = r[0];
                    meanLoss = r[1];
                }
            }
            if (nonFinite >= 0) {
                throw new IllegalStateException(source + ": the loss of example " + describe(sorted.get(nonFinite).example())
                        + " is " + values[nonFinite] + ", so its gradients and the importance are not finite; check the"
                        + " model's dtype (fp16 overflows more easily than bf16/fp32) and the adapter's values");
            }
            if (nonFiniteRanks > 0) {
                throw new IllegalStateException(source + ": the loss of an example scored by another rank is not finite"
                        + " (that rank names it), so the importance is not finite");
            }
            acc.allReduce(collective, lora.parameters());
            total = globalTotal;
            ImportanceMap map = acc.result();
            LOG.info("{}: importance of {} elements over {} examples ({} skipped), mean answer loss {}, {} s",
                    source, map.elementCount(), total, skipped.size(), String.format(Locale.ROOT, "%.4f", meanLoss / total),
                    String.format(Locale.ROOT, "%.2f", (System.nanoTime() - t0) / 1e9));
            return map;
        }
    }

    /**
     * Refuses adapters that cannot give a meaningful importance: merged or disabled ones, and all-zero
     * B (or A) matrices, for which every importance is exactly 0. One reduction per tensor and one
     * read-back.
     */
    static void checkAdapters(LoraModel lora, String source) {
        if (lora.parameters().isEmpty()) {
            throw new IllegalArgumentException("the LoRA model has no adapters to score");
        }
        if (lora.isMerged()) {
            throw new IllegalStateException("cannot score merged LoRA adapters (their gradients are not separate from"
                    + " the base weights): unmerge() first");
        }
        if (!lora.isEnabled()) {
            throw new IllegalStateException("cannot score disabled LoRA adapters: setEnabled(true) first");
        }
        float[] maxima;
        try (NDManager s = lora.model().manager().newSubManager()) {
            NDList a = new NDList();
            NDList b = new NDList();
            for (LoraLayer l : lora.layers().values()) {
                a.add(absMax(l.a(), s));
                b.add(absMax(l.b(), s));
            }
            NDArray both = NDArrays.stack(new NDList(NDArrays.stack(a).max(), NDArrays.stack(b).max()));
            both.attach(s);
            maxima = both.toFloatArray();
        }
        if (maxima[1] == 0f) {
            throw new IllegalArgumentException("cannot score " + source + ": every LoRA B matrix is zero (what the"
                    + " standard LoRA init makes). With B = 0 the gradient of every A element is 0"
                    + " (g_A = Bᵀ·…) and every B element is 0 (φ_B = 0), so every importance"
                    + " |g·φ − ½(g·φ)²| is exactly 0 and nothing could be partitioned. Apply the adapters with a"
                    + " non-zero init: LoraInit.GAUSSIAN (A and B ~ N(0, 0.01), as the reference), PISSA or OLORA.");
        }
        if (maxima[0] == 0f) {
            throw new IllegalArgumentException("cannot score " + source + ": every LoRA A matrix is zero, so every"
                    + " B gradient (g_B = …·(x·Aᵀ)) and every A element is 0 and every importance is exactly 0;"
                    + " apply the adapters with a non-zero init (GAUSSIAN, PISSA or OLORA).");
        }
    }

    /** max |p| as a 0-dim array in {@code s} (every temporary in {@code s}). */
    private static NDArray absMax(NDArray p, NDManager s) {
        NDArray d = p.stopGradient();
        d.attach(s);
        return d.abs().max();
    }

    /** Rejects an encoded example with an id outside {@code [0, vocab)}, naming it. */
    private static void checkVocabulary(String source, EncodedExample e, int vocab) {
        long[] ids = e.ids();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException(source + ": example " + describe(e.example()) + ": token id " + ids[i]
                        + " at position " + i + " is outside the model's vocabulary of " + vocab
                        + " ids; was it encoded with the model's tokenizer?");
            }
        }
    }

    /**
     * The order in which examples are taken: the identity when {@code n >= size} (all are used), else a
     * permutation of all indices from a Fisher–Yates shuffle seeded with {@code seed}, whose first
     * {@code n} entries are the sample and whose rest replace skipped examples, in order. The same
     * (size, n, seed) always give the same order.
     */
    public static int[] sampleOrder(int size, int n, long seed) {
        if (size < 0 || n < 1) {
            throw new IllegalArgumentException("size must be >= 0 and n >= 1, got " + size + " and " + n);
        }
        int[] order = new int[size];
        for (int i = 0; i < size; i++) {
            order[i] = i;
        }
        if (n >= size) {
            return order;
        }
        Random rnd = new Random(seed);
        for (int i = size - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return order;
    }

    private static String describe(Example e) {
        return "'" + e.id() + "'" + (e.line() > 0 ? " (line " + e.line() + ")" : "");
    }

    private static String describe(List<Example> list) {
        String head = list.stream().limit(10).map(ImportanceScorer::describe).collect(Collectors.joining(", "));
        return list.size() > 10 ? head + ", …" : head;
    }

    /** Settings of an {@link ImportanceScorer}; setters check their argument and name it. */
    public static final class Builder {
        private ExampleEncoder encoder;
        private int examples = DEFAULT_EXAMPLES;
        private long seed = DEFAULT_SEED;
        private int batchSize = DEFAULT_BATCH_SIZE;
        private ImportanceListener listener = ImportanceListener.none();
        private Collective collective = Collective.single();

        private Builder() {}

        /**
         * Scores data-parallel with the ranks of {@code collective} (default {@link Collective#single()}):
         * each rank scores its share of the sample and the sums are added across ranks (see the class comment).
         */
        public Builder collective(Collective collective) {
            this.collective = Objects.requireNonNull(collective, "collective");
            return this;
        }

        /** How examples become ids (template, answer-only labels, maximum length); needed to score {@link Example}s. */
        public Builder encoder(ExampleEncoder encoder) {
            this.encoder = Objects.requireNonNull(encoder, "encoder");
            return this;
        }

        /** N examples per call (default {@value #DEFAULT_EXAMPLES}), drawn with a shuffle seeded with {@code seed} (default 42). */
        public Builder examples(int n, long seed) {
            if (n < 1) {
                throw new IllegalArgumentException("importance 'examples' must be >= 1, got " + n);
            }
            this.examples = n;
            this.seed = seed;
            return this;
        }

        /** N examples per call with the current seed. */
        public Builder examples(int n) {
            return examples(n, seed);
        }

        /**
         * Examples per forward/backward pass (default {@value #DEFAULT_BATCH_SIZE}); changes speed and
         * memory, not the result. Memory grows with batch × longest example, plus one copy of the LoRA
         * parameters and its gradient per row.
         */
        public Builder batchSize(int batchSize) {
            if (batchSize < 1) {
                throw new IllegalArgumentException("importance 'batchSize' must be >= 1, got " + batchSize);
            }
            this.batchSize = batchSize;
            return this;
        }

        /** Progress reports (default: none). */
        public Builder listener(ImportanceListener listener) {
            this.listener = Objects.requireNonNull(listener, "listener");
            return this;
        }

        public ImportanceScorer build() {
            return new ImportanceScorer(this);
        }
    }
}
