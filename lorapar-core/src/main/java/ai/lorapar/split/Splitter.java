package ai.lorapar.split;

import ai.lorapar.data.Vote;
import ai.lorapar.data.VoteResult;
import ai.lorapar.data.TieRule;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.LabelledDataset;
import ai.lorapar.data.Example;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The LoRA-PAR Sample Splitter: every teacher role-plays the target model on every example and votes System 1
 * or System 2; the label is the majority of the votes cast, {@link TieRule} settling draws.
 *
 * <pre>{@code
 * LabelledDataset labelled = Splitter.vote(teacherA, teacherB, teacherC)
 *         .prompt(RolePlayPrompt.forTarget("Qwen2.5 0.5B"))
 *         .tieRule(TieRule.PREFER_SYSTEM_2)
 *         .cache(Path.of("labels.cache.jsonl"))
 *         .build()
 *         .label(JsonlExamples.read(Path.of("train.jsonl")));
 * }</pre>
 *
 * <p>Failures: a teacher's configuration error ({@link TeacherException.Kind#CONFIGURATION}, e.g. HTTP 401 or
 * 404) aborts the run with that exception, since every further request would fail the same way. Any other
 * failure left after the teacher's own retries becomes a logged abstention for that example, reported to
 * {@link SplitListener#onTeacherFailure}, and is not cached, so a rerun asks again. Only replies that are a
 * vote are cached: an empty reply (a reasoning model cut off by its token budget) or one that names no
 * system is asked again by the next run. With a cache, a run that was aborted, interrupted or killed resumes
 * where it stopped; replies are keyed on what determines them (see {@link LabelCache}), not on an
 * endpoint's URL.
 */
public final class Splitter {

    private static final Logger LOG = LoggerFactory.getLogger(Splitter.class);

    private final List<Teacher> teachers;
    private final RolePlayPrompt prompt;
    private final TieRule tieRule;
    private final Path cacheFile;
    private final SplitListener listener;
    private final int parallelism;

    private Splitter(Builder b) {
        this.teachers = List.copyOf(b.teachers);
        this.prompt = b.prompt;
        this.tieRule = b.tieRule;
        this.cacheFile = b.cacheFile;
        this.listener = b.listener;
        this.parallelism = b.parallelism > 0 ? b.parallelism
                : Math.min(64, teachers.stream().mapToInt(t -> Math.max(1, t.maxConcurrency())).sum());
    }

    /**
     * Starts a splitter with these teachers (one or more; an odd count avoids ties).
     *
     * @param teachers the teachers
     * @return the builder
     */
    public static Builder vote(Teacher... teachers) {
        return new Builder(List.of(teachers));
    }

    /**
     * Starts a splitter with these teachers (one or more).
     *
     * @param teachers the teachers
     * @return the builder
     */
    public static Builder vote(List<? extends Teacher> teachers) {
        return new Builder(List.copyOf(teachers));
    }

    /**
     * The teachers, in vote order.
     *
     * @return the teachers
     */
    public List<Teacher> teachers() {
        return teachers;
    }

    /**
     * What a draw becomes.
     *
     * @return the rule
     */
    public TieRule tieRule() {
        return tieRule;
    }

    /**
     * Labels the examples. Blocks until every example has a vote from every teacher.
     *
     * @param examples the examples, at least one
     * @return every example with its votes
     * @throws IllegalArgumentException when {@code examples} is empty
     * @throws TeacherException     a teacher is misconfigured (the run is aborted; cached answers are kept)
     * @throws IOException          the label cache cannot be read or written
     * @throws InterruptedException the calling thread was interrupted (cached answers are kept)
     */
    public LabelledDataset label(List<Example> examples) throws TeacherException, IOException, InterruptedException {
        if (examples.isEmpty()) {
            throw new IllegalArgumentException("no examples to label (is the input file empty?)");
        }
        LabelCache cache = cacheFile == null ? null : LabelCache.open(cacheFile);
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, daemonThreads());
        try {
            return run(examples, cache, pool);
        } finally {
            pool.shutdownNow();
            awaitWorkers(pool); // interrupted workers finish before the cache closes under them
            if (cache != null) {
                cache.close();
            }
        }
    }

    private LabelledDataset run(List<Example> examples, LabelCache cache, ExecutorService pool)
            throws TeacherException, IOException, InterruptedException {
        List<Semaphore> permits = teachers.stream().map(t -> new Semaphore(Math.max(1, t.maxConcurrency()))).toList();
        AtomicReference<TeacherException> fatal = new AtomicReference<>();
        AtomicInteger cacheHits = new AtomicInteger();
        List<List<CompletableFuture<Vote>>> pending = new ArrayList<>(examples.size());
        for (Example example : examples) {
            TeacherPrompt teacherPrompt = new TeacherPrompt(example, prompt.render(example));
            String promptText = cache == null ? null : teacherPrompt.canonicalText();
            List<CompletableFuture<Vote>> votes = new ArrayList<>(teachers.size());
            for (int t = 0; t < teachers.size(); t++) {
                Teacher teacher = teachers.get(t);
                String key = cache != null && teacher.cacheable() ? LabelCache.key(teacher, promptText) : null;
                String cached = key == null ? null : cachedVote(cache, key, LabelCache.key(teacher.id(),
                        teacher.model(), promptText));
                if (cached != null) {
                    cacheHits.incrementAndGet();
                    votes.add(CompletableFuture.completedFuture(toVote(teacher, cached, true)));
                } else {
                    Semaphore teacherPermits = permits.get(t);
                    votes.add(CompletableFuture.supplyAsync(
                            () -> ask(teacher, teacherPermits, teacherPrompt, cache, key, fatal), pool));
                }
            }
            pending.add(votes);
        }
        List<LabelledExample> labelled = new ArrayList<>(examples.size());
        for (int i = 0; i < examples.size(); i++) {
            List<Vote> votes = new ArrayList<>(teachers.size());
            for (CompletableFuture<Vote> future : pending.get(i)) {
                votes.add(await(future, fatal));
            }
            LabelledExample done = new LabelledExample(examples.get(i), votes, VoteResult.tally(votes, tieRule));
            labelled.add(done);
            listener.onExampleLabelled(done, i + 1, examples.size());
        }
        LabelledDataset dataset = new LabelledDataset(teachers.stream().map(Teacher::id).toList(), labelled, cacheHits.get());
        int abstentions = dataset.statistics().abstentionsByTeacher().values().stream().mapToInt(Integer::intValue).sum();
        if (abstentions > 0) {
            LOG.warn("{} votes were abstentions (refusals, unparseable replies or failed requests), per teacher {}; "
                    + "each vote keeps its raw reply and a note saying why", abstentions,
                    dataset.statistics().abstentionsByTeacher());
        }
        LOG.info("Labelled {} examples with {} teachers ({} cached replies): {}", examples.size(), teachers.size(),
                cacheHits.get(), dataset.statistics());
        return dataset;
    }

    private Vote ask(Teacher teacher, Semaphore permits, TeacherPrompt teacherPrompt, LabelCache cache, String key,
                     AtomicReference<TeacherException> fatal) {
        if (fatal.get() != null) {
            throw new CancellationException("run aborted");
        }
        String reply;
        try {
            permits.acquire();
            try {
                if (fatal.get() != null) {
                    throw new CancellationException("run aborted");
                }
                reply = teacher.ask(teacherPrompt);
            } finally {
                permits.release();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted");
        } catch (TeacherException e) {
            if (e.kind() == TeacherException.Kind.CONFIGURATION) {
                fatal.compareAndSet(null, e);
                throw new CompletionException(e);
            }
            LOG.warn("Teacher {} failed on example {} (line {}), recorded as an abstention: {}",
                    teacher.id(), teacherPrompt.example().id(), teacherPrompt.example().line(), e.getMessage());
            listener.onTeacherFailure(teacherPrompt.example(), teacher.id(), e);
            String raw = e.rawResponse() == null ? "" : e.rawResponse();
            return Vote.failure(teacher.id(), raw, e.kind().name(), e.getMessage());
        }
        if (reply == null) {
            reply = "";
        }
        Vote vote = toVote(teacher, reply, false);
        if (key != null && !vote.isAbstention()) { // an empty or unparseable reply is asked again next run
            try {
                cache.put(key, teacher.id(), teacher.model(), reply);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot append to label cache " + cache.file(), e);
            }
        }
        return vote;
    }

    /**
     * A cached reply that is a vote: under the key of what determines the reply, else under the key of
     * earlier versions (teacher id with URL). Stored non-votes (caches of earlier versions kept empty
     * replies) are ignored, so the teacher is asked again.
     */
    private static String cachedVote(LabelCache cache, String key, String legacyKey) {
        for (String k : key.equals(legacyKey) ? List.of(key) : List.of(key, legacyKey)) {
            String reply = cache.get(k).orElse(null);
            if (reply != null && ReplyParser.parse(reply).label() != null) {
                return reply;
            }
        }
        return null;
    }

    private static Vote toVote(Teacher teacher, String reply, boolean fromCache) {
        ReplyParser.ParsedReply parsed = ReplyParser.parse(reply);
        if (parsed.isAbstention()) {
            LOG.debug("Teacher {} abstained ({}): {}", teacher.id(), parsed.note(), reply);
        }
        return new Vote(teacher.id(), parsed.label(), reply, parsed.note(), fromCache);
    }

    private static Vote await(CompletableFuture<Vote> future, AtomicReference<TeacherException> fatal)
            throws TeacherException, IOException, InterruptedException {
        try {
            return future.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() instanceof CompletionException && e.getCause().getCause() != null
                    ? e.getCause().getCause() : e.getCause();
            if (cause instanceof TeacherException te) {
                throw te;
            }
            if (cause instanceof CancellationException && fatal.get() != null) {
                throw fatal.get();
            }
            if (cause instanceof UncheckedIOException io) {
                throw io.getCause();
            }
            if (cause instanceof RuntimeException re) {
                throw re;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException("teacher call failed", cause);
        }
    }

    private static void awaitWorkers(ExecutorService pool) {
        try {
            if (!pool.awaitTermination(30, TimeUnit.SECONDS)) {
                LOG.warn("Teacher calls still running 30 s after the run ended; they were interrupted and are abandoned");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static ThreadFactory daemonThreads() {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, "lorapar-splitter-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** Builder of {@link Splitter}; only the teachers are required. */
    public static final class Builder {
        private final List<Teacher> teachers;
        private RolePlayPrompt prompt = RolePlayPrompt.defaults();
        private TieRule tieRule = TieRule.PREFER_SYSTEM_2;
        private Path cacheFile;
        private SplitListener listener = new SplitListener() { };
        private int parallelism;

        private Builder(List<Teacher> teachers) {
            if (teachers.isEmpty()) {
                throw new IllegalArgumentException("Splitter.vote needs at least one teacher");
            }
            Set<String> ids = new HashSet<>();
            for (Teacher t : teachers) {
                Objects.requireNonNull(t, "teacher");
                if (!ids.add(t.id())) {
                    throw new IllegalArgumentException("two teachers share the id " + t.id()
                            + "; ids key the votes and the label cache, so they must differ");
                }
            }
            this.teachers = teachers;
        }

        /**
         * The role-play prompt (default: the paper's, role-playing {@value RolePlayPrompt#DEFAULT_TARGET_MODEL}).
         *
         * @param prompt the prompt
         * @return this builder
         */
        public Builder prompt(RolePlayPrompt prompt) {
            this.prompt = Objects.requireNonNull(prompt, "prompt");
            return this;
        }

        /**
         * Shortcut for {@code prompt(RolePlayPrompt.forTarget(targetModel))}.
         *
         * @param targetModel the model the teachers role-play
         * @return this builder
         */
        public Builder targetModel(String targetModel) {
            return prompt(RolePlayPrompt.forTarget(targetModel));
        }

        /**
         * What a draw becomes (default {@link TieRule#PREFER_SYSTEM_2}).
         *
         * @param tieRule the rule
         * @return this builder
         */
        public Builder tieRule(TieRule tieRule) {
            this.tieRule = Objects.requireNonNull(tieRule, "tieRule");
            return this;
        }

        /**
         * A JSONL label cache: replies are stored as they arrive and reused by later runs. Default: none.
         *
         * @param cacheFile the JSONL cache file
         * @return this builder
         */
        public Builder cache(Path cacheFile) {
            this.cacheFile = Objects.requireNonNull(cacheFile, "cacheFile");
            return this;
        }

        /**
         * Receives progress and failures.
         *
         * @param listener the listener
         * @return this builder
         */
        public Builder listener(SplitListener listener) {
            this.listener = Objects.requireNonNull(listener, "listener");
            return this;
        }

        /**
         * Worker threads (default: the sum of the teachers' {@link Teacher#maxConcurrency()}, at most 64).
         *
         * @param threads at least 1
         * @return this builder
         */
        public Builder parallelism(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("parallelism must be >= 1, was " + threads);
            }
            this.parallelism = threads;
            return this;
        }

        /**
         * Builds the splitter.
         *
         * @return the splitter
         */
        public Splitter build() {
            return new Splitter(this);
        }
    }
}
