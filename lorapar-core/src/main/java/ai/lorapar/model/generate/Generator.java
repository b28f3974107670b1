package ai.lorapar.model.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
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

/**
 * Batched autoregressive generation with a KV cache. Prompts are left-padded into one batch, the
 * prompt is run once (prefill), then one token per step is chosen on the device for every row;
 * rows that have stopped receive the pad id. The only host round trip per generated token is the
 * "have all rows stopped?" check; ids and log-probabilities come back once at the end.
 */
public final class Generator {
    private final DecoderModel model;
    private final TextTokenizer tokenizer;

    /** A generator of ids only (no texts). */
    public Generator(DecoderModel model) {
        this(model, null);
    }

    /** A generator that also decodes texts and takes stop ids from {@code tokenizer}. */
    public Generator(DecoderModel model, TextTokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Encodes {@code prompts} (with special tokens) and generates; needs a tokenizer. */
    public GenerationResult generateText(List<String> prompts, SamplingConfig config) {
        if (tokenizer == null) {
            throw new IllegalStateException("generateText needs a Generator built with a TextTokenizer");
        }
        List<long[]> ids = new ArrayList<>();
        for (String p : prompts) {
            ids.add(tokenizer.encode(p, true));
        }
        return generate(ids, config);
    }

    /** Generates a continuation of every prompt (token ids, no padding). */
    public GenerationResult generate(List<long[]> prompts, SamplingConfig config) {
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
            org.slf4j.LoggerFactory.getLogger(Generator.class).warn(
                    "prompt ({}) + new tokens ({}) exceed max_position_embeddings {}", promptLen,
                    config.maxNewTokens(), model.config().maxPositions());
        }
        long[] stops = stopIds(config);
        long pad = padId(config, stops);
        int vocab = model.config().vocabSize();

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
            NDArray stopArr = scope.create(stops).reshape(1, stops.length);
            NDArray padArr = scope.create(pad);
            NDArray zero = scope.create(0f);
            // without stop ids no row can stop: no liveness bookkeeping and no host round trip per token
            boolean canStop = Arrays.stream(stops).anyMatch(s -> s >= 0);
            NDArray allLive = scope.ones(new Shape(batch), DataType.BOOLEAN);
            NDArray allLiveMask = scope.ones(new Shape(batch, 1), DataType.INT64);
            Filters filters = new Filters(scope, config);
            NDArray stop0 = scope.create(stops[0]);
            NDArray zeroI = scope.create(0);
            List<NDArray> tokens = new ArrayList<>();
            List<NDArray> logps = new ArrayList<>();
            try (KvCache cache = model.newCache(scope, batch, capacity)) {
                NDArray logits = model.forward(ids, mask, cache, false, true).reshape(batch, vocab);
                NDArray done = scope.zeros(new Shape(batch), DataType.BOOLEAN);
                for (int step = 0; step < config.maxNewTokens(); step++) {
                    NDArray next;
                    NDArray live;
                    try (NDManager ss = scope.newSubManager()) {
                        logits.attach(ss);
                        NDArray lf = logits.toType(DataType.FLOAT32, false);
                        NDArray logp = lf.logSoftmax(-1);
                        NDArray chosen = choose(lf, config, filters);
                        NDArray tokLp;
                        NDArray nowDone = done;
                        if (canStop) {
                            done.attach(ss);
                            live = done.logicalNot();
                            next = NDArrays.where(live, chosen, padArr);
                            tokLp = logp.gather(next.expandDims(-1), -1).squeeze(-1);
                            tokLp = NDArrays.where(live, tokLp, zero);
                            NDArray isStop = stops.length == 1 ? next.eq(stop0)
                                    : next.expandDims(1).eq(stopArr).toType(DataType.INT32, false)
                                            .sum(new int[] {1}).gt(zeroI);
                            nowDone = done.logicalOr(isStop);
                            live.attach(scope);
                            nowDone.attach(scope);
                        } else {
                            live = allLive;
                            next = chosen;
                            tokLp = logp.gather(next.expandDims(-1), -1).squeeze(-1);
                        }
                        next.attach(scope);
                        tokLp.attach(scope);
                        tokens.add(next);
                        logps.add(tokLp);
                        done = nowDone;
                    }
                    if (step == config.maxNewTokens() - 1 || (canStop && done.all().getBoolean())) {
                        break;
                    }
                    NDArray stepIds = next.reshape(batch, 1);
                    NDArray stepMask = canStop ? live.toType(DataType.INT64, false).reshape(batch, 1) : allLiveMask;
                    NDArray raw = model.forward(stepIds, stepMask, cache, false, true);
                    logits = raw.reshape(batch, vocab);
                    raw.close();
                    stepIds.close();
                    if (stepMask != allLiveMask) {
                        stepMask.close();
                    }
                }
            }
            // one transfer of everything generated
            long[] tok = NDArrays.stack(new NDList(tokens), 1).toLongArray();
            float[] lp = NDArrays.stack(new NDList(logps), 1).toFloatArray();
            int n = tokens.size();
            Set<Long> stopSet = new LinkedHashSet<>();
            for (long s : stops) {
                stopSet.add(s);
            }
            List<Sequence> out = new ArrayList<>(batch);
            for (int i = 0; i < batch; i++) {
                int len = 0;
                FinishReason reason = FinishReason.LENGTH;
                while (len < n) {
                    long t = tok[i * n + len];
                    len++;
                    if (stopSet.contains(t)) {
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

        Filters(NDManager manager, SamplingConfig c) {
            this.negInf = manager.create(Float.NEGATIVE_INFINITY);
            this.posInf = manager.create(Float.POSITIVE_INFINITY);
            this.temperature = manager.create(c.temperature());
            this.topP = manager.create(c.topP());
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
        NDArray u = logits.getManager().randomUniform(Float.MIN_NORMAL, 1f, z.getShape(), DataType.FLOAT32);
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
