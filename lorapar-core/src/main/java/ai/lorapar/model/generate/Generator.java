package ai.lorapar.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.index.NDIndex;
import ai.lorapar.engine.CudaGraph;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.KvCache;
import ai.lorapar.model.generate.GenerationResult.FinishReason;
import ai.lorapar.model.generate.GenerationResult.Sequence;
import ai.lorapar.model.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Batched autoregressive generation with a KV cache. Prompts are left-padded into one batch, the
 * prompt is run once (prefill), then one token per step is chosen on the device for every row;
 * rows that have stopped receive the pad id. The only host round trip per generated token is the
 * "have all rows stopped?" check (none without stop ids); ids and log-probabilities come back once at
 * the end.
 *
 * <p>On a GPU whose engine can capture CUDA graphs ({@link CudaGraph#isAvailable}), the decode steps
 * run in the cache's static decoding mode and one step is captured as a graph and replayed, so a step
 * costs one launch instead of a thousand JNI calls (the default; {@code -Dlorapar.cudaGraphs=false}
 * turns it off). A step that cannot be captured falls back to eager steps with a warning.
 */
public final class Generator {
    private static final Logger LOG = LoggerFactory.getLogger(Generator.class);

    /** System property: {@code false} turns CUDA-graph decoding off ({@code -Dlorapar.cudaGraphs=false}). */
    public static final String CUDA_GRAPHS_PROPERTY = "lorapar.cudaGraphs";

    /** How decode steps run (package-private switch for tests). */
    enum DecodeMode {
        /** {@link #GRAPH} where the engine can capture CUDA graphs on the model's device, else {@link #EAGER}. */
        AUTO,
        /** Step by step with the cache's growing length (attention over the positions so far). */
        EAGER,
        /** Step by step in the cache's static decoding mode (the ops a graph captures, run eagerly). */
        STATIC,
        /** Static decoding, one step captured as a CUDA graph and replayed. */
        GRAPH
    }

    private final DecoderModel model;
    private final TextTokenizer tokenizer;
    private volatile DecodeMode mode = DecodeMode.AUTO;
    private volatile DecodeMode lastMode;

    /** A generator of ids only (no texts). */
    public Generator(DecoderModel model) {
        this(model, null);
    }

    /** A generator that also decodes texts and takes stop ids from {@code tokenizer}. */
    public Generator(DecoderModel model, TextTokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Tests: forces a decode mode ({@link DecodeMode#AUTO} by default). */
    void setDecodeMode(DecodeMode mode) {
        this.mode = mode;
    }

    /** Tests: the mode the last call's decode steps ran in (GRAPH only when the graph was captured), or null. */
    DecodeMode lastDecodeMode() {
        return lastMode;
    }

    /**
     * How the last call's decode steps ran, for diagnostics and benchmarks: {@code "eager"} (op by op),
     * {@code "static"} (op by op in the cache's static mode, e.g. after a failed capture) or
     * {@code "cuda-graph"}; null before the first call.
     */
    public String lastDecodePath() {
        DecodeMode m = lastMode;
        return m == null ? null : m == DecodeMode.GRAPH ? "cuda-graph" : m.name().toLowerCase(java.util.Locale.ROOT);
    }

    /**
     * Encodes {@code prompts} (with special tokens) and generates; needs a tokenizer.
     *
     * @param prompts the prompt texts, templates applied
     * @param config sampling settings
     * @return the generated ids, texts and log-probabilities
     */
    public GenerationResult generateText(List<String> prompts, SamplingConfig config) {
        if (tokenizer == null) {
            throw new IllegalStateException("generateText needs a Generator built with a TextTokenizer (a model "
                    + "folder opened with CausalLM.load gives one only when it has a tokenizer.json); use generate "
                    + "with token ids instead");
        }
        List<long[]> ids = new ArrayList<>();
        for (String p : prompts) {
            ids.add(tokenizer.encode(p, true));
        }
        return generate(ids, config);
    }

    /**
     * Generates a continuation of every prompt (token ids, no padding).
     *
     * @param prompts the prompts as token ids
     * @param config sampling settings
     * @return the generated ids and log-probabilities
     */
    public GenerationResult generate(List<long[]> prompts, SamplingConfig config) {
        return generate(prompts, config, -1, null);
    }

    /**
     * {@link #generate(List, SamplingConfig)} with the random draws of some rows of a larger batch: every
     * sampling step draws the noise of a batch of {@code noiseBatch} rows, as a call with that many prompts
     * and the same seed would, and row i of {@code prompts} uses row {@code noiseRows[i]} of it. A batch split
     * across processes (data-parallel GRPO) so samples what the whole batch samples in one process: each row's
     * draws depend on its index in the whole batch, not on the process (its tokens may still differ where the
     * logits' rounding, which depends on the batch, tips a near-tie).
     *
     * @param noiseBatch rows of the whole batch (at least {@code prompts.size()})
     * @param noiseRows each prompt's row in the whole batch, distinct, in {@code [0, noiseBatch)}
     */
    public GenerationResult generate(List<long[]> prompts, SamplingConfig config, int noiseBatch, long[] noiseRows) {
        if (noiseRows != null) {
            if (noiseRows.length != prompts.size()) {
                throw new IllegalArgumentException(prompts.size() + " prompts but " + noiseRows.length + " noise rows");
            }
            for (long r : noiseRows) {
                if (r < 0 || r >= noiseBatch) {
                    throw new IllegalArgumentException("noise row " + r + " outside a batch of " + noiseBatch);
                }
            }
        }
        if (prompts.isEmpty()) {
            return new GenerationResult(List.of());
        }
        int batch = prompts.size();
        int promptLen = 0;
        for (int i = 0; i < batch; i++) {
            if (prompts.get(i).length == 0) {
                throw new IllegalArgumentException("prompt " + i + " is empty (encode with special tokens to get a bos)");
            }
            promptLen = Math.max(promptLen, prompts.get(i).length);
        }
        int capacity = promptLen + config.maxNewTokens();
        if (capacity > model.config().maxPositions()) {
            LOG.warn("prompt ({}) + new tokens ({}) exceed max_position_embeddings {}", promptLen,
                    config.maxNewTokens(), model.config().maxPositions());
        }
        long[] stops = stopIds(config);
        long pad = padId(config, stops);

        long[] flatIds = new long[batch * promptLen];
        long[] flatMask = new long[batch * promptLen];
        Arrays.fill(flatIds, pad);
        for (int i = 0; i < batch; i++) {
            long[] p = prompts.get(i);
            int off = i * promptLen + promptLen - p.length;
            System.arraycopy(p, 0, flatIds, off, p.length);
            Arrays.fill(flatMask, off, off + p.length, 1L);
        }

        try (NDManager scope = model.manager().newSubManager()) {
            if (config.seed() != null) {
                scope.getEngine().setRandomSeed(config.seed().intValue());
            }
            NDArray ids = scope.create(flatIds, new Shape(batch, promptLen));
            NDArray mask = scope.create(flatMask, new Shape(batch, promptLen));
            Decoding run = new Decoding(scope, batch, config, stops, pad, noiseBatch, noiseRows);
            DecodeMode used = DecodeMode.EAGER;
            try (KvCache cache = model.newCache(scope, batch, capacity)) {
                NDArray logits = model.forward(ids, mask, cache, false, true);
                run.sample(logits);
                logits.close();
                run.produced = 1;
                Runnable step = () -> {
                    NDArray raw = model.forward(run.nextIds, run.stepMask, cache, false, true);
                    run.sample(raw);
                    raw.close();
                };
                DecodeMode want = effectiveMode();
                if (run.produced < config.maxNewTokens() && !run.allStopped()) {
                    if (want != DecodeMode.EAGER) {
                        cache.startStaticDecoding();
                        used = DecodeMode.STATIC;
                    }
                    CudaGraph graph = null;
                    try {
                        if (want == DecodeMode.GRAPH && config.maxNewTokens() - run.produced >= 2) {
                            try {
                                graph = CudaGraph.capture(model.device(), 1, step);
                                used = DecodeMode.GRAPH;
                            } catch (CudaGraph.CaptureException e) {
                                LOG.warn("decode step cannot be captured as a CUDA graph; decoding step by step: {}",
                                        e.getMessage());
                            }
                            run.produced++; // the warm-up before the capture was a real step
                        }
                        while (run.produced < config.maxNewTokens() && !run.allStopped()) {
                            if (graph != null) {
                                graph.replay();
                                run.produced++;
                            } else {
                                run.count(step);
                            }
                        }
                    } finally {
                        if (graph != null) {
                            graph.close();
                        }
                    }
                }
            }
            lastMode = used;
            return run.result(prompts);
        }
    }

    private DecodeMode effectiveMode() {
        DecodeMode m = mode;
        if (m != DecodeMode.AUTO) {
            return m;
        }
        boolean graphs = !"false".equalsIgnoreCase(System.getProperty(CUDA_GRAPHS_PROPERTY));
        return graphs && CudaGraph.isAvailable(model.manager().getEngine(), model.device()) ? DecodeMode.GRAPH
                : DecodeMode.EAGER;
    }

    /**
     * The state of one generate call, all on the device and updated in place, so that a step can be
     * captured as a CUDA graph: the next input ids, the stopped rows, the mask of the next step, and
     * the output buffers written at a device-held column.
     */
    private final class Decoding {
        final NDManager scope;
        final SamplingConfig config;
        final int batch;
        final int vocab;
        final boolean canStop;
        final long[] stops;
        final NDArray nextIds; // [B,1] int64
        final NDArray stepMask; // [B,1] int64: 1 for rows live before the last token was chosen
        final NDArray done; // [B] boolean
        final NDArray outTokens; // [B, maxNew] int64
        final NDArray outLogProbs; // [B, maxNew] fp32
        final NDArray column; // [1] int64: the output column written next
        final NDIndex atColumn;
        final NDIndex all = new NDIndex("...");
        final NDArray oneL;
        final NDArray padArr;
        final NDArray zero;
        final NDArray stopArr;
        final NDArray stop0;
        final NDArray zeroI;
        final Filters filters;
        /** Tokens produced so far (host-side count of steps run). */
        int produced;

        Decoding(NDManager scope, int batch, SamplingConfig config, long[] stops, long pad, int noiseBatch,
                long[] noiseRows) {
            this.scope = scope;
            this.config = config;
            this.batch = batch;
            this.vocab = model.config().vocabSize();
            this.stops = stops;
            // without stop ids no row can stop: no liveness bookkeeping and no host round trip per token
            this.canStop = Arrays.stream(stops).anyMatch(x -> x >= 0);
            int n = config.maxNewTokens();
            this.nextIds = scope.zeros(new Shape(batch, 1), DataType.INT64);
            this.stepMask = scope.ones(new Shape(batch, 1), DataType.INT64);
            this.done = scope.zeros(new Shape(batch), DataType.BOOLEAN);
            long[] pads = new long[batch * n];
            Arrays.fill(pads, pad);
            this.outTokens = scope.create(pads, new Shape(batch, n));
            this.outLogProbs = scope.zeros(new Shape(batch, n), DataType.FLOAT32);
            this.column = scope.create(new long[] {0});
            this.atColumn = new NDIndex(":, {}", column);
            this.oneL = scope.create(1L);
            this.padArr = scope.create(pad);
            this.zero = scope.create(0f);
            this.stopArr = scope.create(stops).reshape(1, stops.length);
            this.stop0 = scope.create(stops[0]);
            this.zeroI = scope.create(0);
            this.filters = new Filters(scope, config, noiseBatch, noiseRows);
        }

        /** Runs {@code step} and counts its token. */
        void count(Runnable step) {
            step.run();
            produced++;
        }

        /**
         * Chooses every row's next token from {@code logits} ({@code [B,1,vocab]} or {@code [B,vocab]}) and
         * records it: into the output column, the next input ids, the stopped rows and the next step's mask.
         * Only in-place writes to the state; nothing here reads back to the host.
         */
        void sample(NDArray logits) {
            try (NDManager ss = scope.newSubManager()) {
                NDArray lg = logits.reshape(batch, vocab);
                lg.attach(ss);
                NDArray lf = lg.toType(DataType.FLOAT32, false);
                lf.attach(ss);
                NDArray logp = lf.logSoftmax(-1);
                NDArray chosen = choose(lf, config, filters);
                NDArray next;
                NDArray tokLp;
                if (canStop) {
                    NDArray live = done.logicalNot();
                    live.attach(ss);
                    next = NDArrays.where(live, chosen, padArr);
                    tokLp = logp.gather(next.expandDims(-1), -1).squeeze(-1);
                    tokLp = NDArrays.where(live, tokLp, zero);
                    NDArray isStop = stops.length == 1 ? next.eq(stop0)
                            : next.expandDims(1).eq(stopArr).toType(DataType.INT32, false).sum(new int[] {1})
                                    .gt(zeroI);
                    NDArray nowDone = done.logicalOr(isStop);
                    nowDone.attach(ss);
                    // the chosen token itself is real (a stop token too); rows stopped before feed masked pads
                    NDArray m = live.toType(DataType.INT64, false).reshape(batch, 1);
                    m.attach(ss);
                    stepMask.set(all, m);
                    done.set(all, nowDone);
                } else {
                    next = chosen;
                    tokLp = logp.gather(next.expandDims(-1), -1).squeeze(-1);
                }
                NDArray nextCol = next.reshape(batch, 1);
                nextCol.attach(ss);
                NDArray lpCol = tokLp.reshape(batch, 1);
                lpCol.attach(ss);
                outTokens.set(atColumn, nextCol);
                outLogProbs.set(atColumn, lpCol);
                nextIds.set(all, nextCol);
                column.addi(oneL);
            }
        }

        /** Whether every row has stopped (one host round trip; always false without stop ids). */
        boolean allStopped() {
            if (!canStop) {
                return false;
            }
            try (NDArray a = done.all()) {
                return a.getBoolean();
            }
        }

        /** One transfer of everything generated, cut per row after its stop token. */
        GenerationResult result(List<long[]> prompts) {
            int n = produced;
            long[] tok;
            float[] lp;
            try (NDManager tmp = scope.newSubManager()) {
                NDIndex first = new NDIndex().addAllDim().addSliceDim(0, n);
                NDArray t = outTokens.get(first);
                t.attach(tmp);
                NDArray l = outLogProbs.get(first);
                l.attach(tmp);
                tok = t.toLongArray();
                lp = l.toFloatArray();
            }
            Set<Long> stopSet = new LinkedHashSet<>();
            for (long x : stops) {
                stopSet.add(x);
            }
            List<Sequence> out = new ArrayList<>(batch);
            for (int i = 0; i < batch; i++) {
                int len = 0;
                FinishReason reason = FinishReason.LENGTH;
                while (len < n) {
                    long tk = tok[i * n + len];
                    len++;
                    if (stopSet.contains(tk)) {
                        reason = FinishReason.STOP;
                        break;
                    }
                }
                long[] seq = Arrays.copyOfRange(tok, i * n, i * n + len);
                float[] seqLp = Arrays.copyOfRange(lp, i * n, i * n + len);
                String text = tokenizer == null ? null : tokenizer.decode(seq, true);
                out.add(new Sequence(prompts.get(i).clone(), seq, seqLp, text, reason));
            }
            return new GenerationResult(out);
        }
    }

    /**
     * Constants of the sampling filters as 0-dim arrays, made once per generate call: a scalar made per
     * token (as DJL's {@code div(Number)} does) is a synchronous host-to-device copy on a GPU. Same
     * dtypes as DJL's conversion of the numbers, so the results are unchanged.
     */
    static final class Filters {
        final NDArray negInf;
        final NDArray posInf;
        final NDArray temperature;
        final NDArray topP;
        /** Rows of the whole batch's noise this batch uses, or null (its own noise). */
        final NDIndex noiseRows;
        final int noiseBatch;

        Filters(NDManager manager, SamplingConfig c) {
            this(manager, c, -1, null);
        }

        Filters(NDManager manager, SamplingConfig c, int noiseBatch, long[] noiseRows) {
            this.negInf = manager.create(Float.NEGATIVE_INFINITY);
            this.posInf = manager.create(Float.POSITIVE_INFINITY);
            this.temperature = manager.create(c.temperature());
            this.topP = manager.create(c.topP());
            this.noiseBatch = noiseBatch;
            this.noiseRows = noiseRows == null ? null : new NDIndex("{}, :", manager.create(noiseRows)); // on the device once
        }
    }

    /**
     * The next token of every row, on the device: argmax, or a Gumbel-max draw from the filtered
     * distribution. New arrays land in {@code logits}' manager.
     */
    static NDArray choose(NDArray logits, SamplingConfig c, Filters f) {
        if (c.isGreedy()) {
            return logits.argMax(-1);
        }
        NDArray z = c.temperature() == 1.0 ? logits : logits.div(f.temperature); // x/1 == x
        NDArray negInf = f.negInf;
        long vocab = z.getShape().get(z.getShape().dimension() - 1);
        if (c.topK() > 0 && c.topK() < vocab) {
            NDArray kth = z.topK(c.topK(), -1).get(0).min(new int[] {-1}, true); // [B,1]
            z = NDArrays.where(z.gte(kth), z, negInf); // DJL's where does not broadcast the condition
        }
        if (c.topP() < 1) {
            NDArray order = z.argSort(-1, false);
            NDArray sorted = z.gather(order, -1);
            NDArray probs = sorted.softmax(-1);
            NDArray before = probs.cumSum(-1).sub(probs); // probability mass strictly above each token
            NDArray removed = before.gt(f.topP);
            NDArray kept = NDArrays.where(removed.logicalNot(), sorted, f.posInf);
            NDArray threshold = kept.min(new int[] {-1}, true);
            z = NDArrays.where(z.gte(threshold), z, negInf);
        }
        NDArray u = f.noiseRows == null
                ? logits.getManager().randomUniform(Float.MIN_NORMAL, 1f, z.getShape(), DataType.FLOAT32)
                : logits.getManager().randomUniform(Float.MIN_NORMAL, 1f, new Shape(f.noiseBatch, vocab), DataType.FLOAT32)
                        .get(f.noiseRows); // this batch's rows of the whole batch's draw
        // z + Gumbel noise, -log(-log u), written as z - log(-log u) (the same value: negation is exact)
        return z.sub(u.log().neg().log()).argMax(-1);
    }

    private long[] stopIds(SamplingConfig c) {
        Set<Long> s = new LinkedHashSet<>();
        if (c.stopTokenIds() != null) {
            c.stopTokenIds().forEach(i -> s.add((long) i));
        } else {
            model.config().eosTokenIds().forEach(i -> s.add((long) i));
            if (tokenizer != null) {
                tokenizer.eosIds().forEach(i -> s.add((long) i));
            }
        }
        if (s.isEmpty()) {
            // nothing can stop a sequence but the budget; -1 never matches a token
            s.add(-1L);
        }
        return s.stream().mapToLong(Long::longValue).toArray();
    }

    private long padId(SamplingConfig c, long[] stops) {
        if (c.padTokenId() != null) {
            return c.padTokenId();
        }
        if (model.config().padTokenId() != null) {
            return model.config().padTokenId();
        }
        if (tokenizer != null && tokenizer.padId() != null) {
            return tokenizer.padId();
        }
        return stops[0] >= 0 ? stops[0] : 0;
    }
}
