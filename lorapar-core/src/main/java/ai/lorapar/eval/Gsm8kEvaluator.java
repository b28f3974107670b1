package ai.lorapar.eval;

import ai.lorapar.data.Example;
import ai.lorapar.data.ExampleEncoder;
import ai.lorapar.data.SystemLabel;
import ai.lorapar.model.DecoderModel;
import ai.lorapar.model.generate.GenerationResult;
import ai.lorapar.model.generate.Generator;
import ai.lorapar.model.generate.SamplingConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * GSM8K exact match on the final number: every example's prompt (through the {@link ExampleEncoder}, so
 * the model sees what it was trained on) is decoded greedily in batches until end of sequence or
 * {@link Builder#maxNewTokens}; the answer is extracted from the output ({@link AnswerExtraction}:
 * {@code <answer>N</answer>}, {@code #### N}, else the last number) and compared with the number after
 * {@code ####} in the example's reference answer.
 *
 * <pre>{@code
 * EvalReport r = Gsm8kEvaluator.builder().encoder(enc).maxNewTokens(256).batchSize(64).build()
 *         .evaluate(lm.generator(), JsonlExamples.read(Path.of("gsm8k/test.jsonl")));
 * System.out.println(r.format());   // exact match 412/1319 = 31.24%
 * }</pre>
 *
 * <p>With labels (example id → {@link SystemLabel}, or the map of {@code LabelledJsonl.readByLabel}) the
 * report also gives the accuracy per system.
 */
public final class Gsm8kEvaluator {
    private static final Logger LOG = LoggerFactory.getLogger(Gsm8kEvaluator.class);

    private final ExampleEncoder encoder;
    private final int maxNewTokens;
    private final int batchSize;
    private final Progress progress;

    /** Progress of an evaluation, called after every batch on the evaluating thread. */
    @FunctionalInterface
    public interface Progress {
        /** {@code done} of {@code total} examples have been decoded. */
        void update(int done, int total);
    }

    private Gsm8kEvaluator(Builder b) {
        this.encoder = b.encoder;
        this.maxNewTokens = b.maxNewTokens;
        this.batchSize = b.batchSize;
        this.progress = b.progress;
    }

    /** Defaults: 256 new tokens, batches of 64; an encoder is required. */
    public static Builder builder() {
        return new Builder();
    }

    public ExampleEncoder encoder() {
        return encoder;
    }

    public int maxNewTokens() {
        return maxNewTokens;
    }

    public int batchSize() {
        return batchSize;
    }

    /** Evaluates {@code model} with the encoder's tokenizer (texts, stop ids); no labels. */
    public EvalReport evaluate(DecoderModel model, List<Example> examples) {
        return evaluate(new Generator(model, encoder.tokenizer()), examples, Map.of());
    }

    /** Evaluates with {@code generator}; no labels. */
    public EvalReport evaluate(Generator generator, List<Example> examples) {
        return evaluate(generator, examples, Map.of());
    }

    /** Evaluates the examples of every label, in label order (System 1 first). */
    public EvalReport evaluate(Generator generator, Map<SystemLabel, List<Example>> byLabel) {
        List<Example> all = new ArrayList<>();
        Map<String, SystemLabel> labels = new LinkedHashMap<>();
        for (SystemLabel l : SystemLabel.values()) {
            for (Example e : byLabel.getOrDefault(l, List.of())) {
                all.add(e);
                labels.put(e.id(), l);
            }
        }
        return evaluate(generator, all, labels);
    }

    /**
     * Evaluates with {@code generator} (greedy, stopping at its end-of-sequence ids); {@code labels} maps
     * example ids to systems (an id that is not in it is unlabelled).
     *
     * @throws IllegalArgumentException when an example's answer has no {@code #### N}, naming it
     */
    public EvalReport evaluate(Generator generator, List<Example> examples, Map<String, SystemLabel> labels) {
        Objects.requireNonNull(generator, "generator");
        List<String> references = references(examples); // fail before generating anything
        SamplingConfig greedy = SamplingConfig.greedy(maxNewTokens);
        List<String> predictions = new ArrayList<>(examples.size());
        for (int from = 0; from < examples.size(); from += batchSize) {
            List<Example> batch = examples.subList(from, Math.min(examples.size(), from + batchSize));
            List<long[]> prompts = new ArrayList<>(batch.size());
            for (Example e : batch) {
                prompts.add(encoder.encodePrompt(e));
            }
            GenerationResult r = generator.generate(prompts, greedy);
            for (GenerationResult.Sequence s : r.sequences()) {
                predictions.add(s.text() != null ? s.text() : encoder.tokenizer().decode(s.tokens(), true));
            }
            LOG.debug("evaluated {} of {} examples", predictions.size(), examples.size());
            if (progress != null) {
                progress.update(predictions.size(), examples.size());
            }
        }
        return score(examples, references, predictions, labels);
    }

    /**
     * The report of canned outputs: {@code predictions.get(i)} is the model's output for
     * {@code examples.get(i)}.
     *
     * @throws IllegalArgumentException for lists of different sizes or an example without {@code #### N}
     */
    public static EvalReport score(List<Example> examples, List<String> predictions, Map<String, SystemLabel> labels) {
        return score(examples, references(examples), predictions, labels);
    }

    private static EvalReport score(List<Example> examples, List<String> references, List<String> predictions,
            Map<String, SystemLabel> labels) {
        if (examples.size() != predictions.size()) {
            throw new IllegalArgumentException(examples.size() + " examples but " + predictions.size() + " predictions");
        }
        List<EvalReport.Record> records = new ArrayList<>(examples.size());
        for (int i = 0; i < examples.size(); i++) {
            Example e = examples.get(i);
            String prediction = predictions.get(i);
            AnswerExtraction.Extracted x = AnswerExtraction.extract(prediction);
            records.add(new EvalReport.Record(e.id(), references.get(i), prediction, x.answer(), x.method(),
                    AnswerExtraction.matches(x.answer(), references.get(i)), labels.get(e.id())));
        }
        return EvalReport.of(records);
    }

    private static List<String> references(List<Example> examples) {
        List<String> refs = new ArrayList<>(examples.size());
        for (Example e : examples) {
            refs.add(AnswerExtraction.referenceAnswer(e.answer()).orElseThrow(() -> new IllegalArgumentException(
                    "example '" + e.id() + "'" + (e.line() > 0 ? " (line " + e.line() + ")" : "")
                            + " has no reference number after '####' in its answer")));
        }
        return refs;
    }

    /** Settings; {@link #build()} checks them. */
    public static final class Builder {
        private ExampleEncoder encoder;
        private int maxNewTokens = 256;
        private int batchSize = 64;
        private Progress progress;

        private Builder() {}

        /** Told after every batch how many examples are done (default none). */
        public Builder progress(Progress progress) {
            this.progress = progress;
            return this;
        }

        /** How examples become prompts (template, system prompt, maximum prompt length); required. */
        public Builder encoder(ExampleEncoder encoder) {
            this.encoder = Objects.requireNonNull(encoder, "encoder");
            return this;
        }

        /** The token budget of an answer (default 256). */
        public Builder maxNewTokens(int maxNewTokens) {
            this.maxNewTokens = maxNewTokens;
            return this;
        }

        /** Prompts decoded together (default 64). */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        public Gsm8kEvaluator build() {
            if (encoder == null) {
                throw new IllegalStateException("Gsm8kEvaluator needs an encoder: builder().encoder(ExampleEncoder)");
            }
            if (maxNewTokens <= 0) {
                throw new IllegalArgumentException("maxNewTokens must be positive, got " + maxNewTokens);
            }
            if (batchSize <= 0) {
                throw new IllegalArgumentException("batchSize must be positive, got " + batchSize);
            }
            return new Gsm8kEvaluator(this);
        }
    }
}
