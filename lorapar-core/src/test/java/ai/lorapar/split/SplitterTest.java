package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.Vote;
import ai.lorapar.data.VoteResult;
import ai.lorapar.data.TieRule;
import ai.lorapar.data.LabelStatistics;
import ai.lorapar.data.LabelledExample;
import ai.lorapar.data.LabelledDataset;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.Example;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SplitterTest {

    @TempDir
    Path dir;

    /** A teacher answering from a function of the question, counting what it is asked. */
    static final class ScriptedTeacher implements Teacher {
        final String id;
        final Function<String, String> reply;
        final Map<String, AtomicInteger> asked = new ConcurrentHashMap<>();
        final List<TeacherPrompt> prompts = Collections.synchronizedList(new ArrayList<>());

        ScriptedTeacher(String id, Function<String, String> reply) {
            this.id = id;
            this.reply = reply;
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public String model() {
            return "scripted";
        }

        @Override
        public int maxConcurrency() {
            return 2;
        }

        @Override
        public String ask(TeacherPrompt prompt) throws TeacherException, InterruptedException {
            asked.computeIfAbsent(prompt.example().question(), q -> new AtomicInteger()).incrementAndGet();
            prompts.add(prompt);
            String r = reply.apply(prompt.example().question());
            if (r.equals("STALL")) {
                Thread.sleep(60_000); // a server that never answers, until interrupted
            }
            if (r.startsWith("FAIL:")) {
                throw new TeacherException(TeacherException.Kind.valueOf(r.substring(5)), "scripted failure", "<html>oops</html>", null);
            }
            return r;
        }

        int totalAsked() {
            return asked.values().stream().mapToInt(AtomicInteger::get).sum();
        }
    }

    private static List<Example> examples(int n) {
        List<Example> list = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            list.add(Example.of(Integer.toString(i), "q" + i, "a" + i));
        }
        return list;
    }

    @Test
    void majorityOfThreeKeepsEveryVoteAndRawReply() throws Exception {
        ScriptedTeacher a = new ScriptedTeacher("a", q -> "**System 2**");
        ScriptedTeacher b = new ScriptedTeacher("b", q -> q.equals("q0") ? "System1" : "I'm sorry, I can't.");
        ScriptedTeacher c = new ScriptedTeacher("c", q -> "I think this is System1, not System 2");
        LabelledDataset ds = Splitter.vote(a, b, c).tieRule(TieRule.DROP).build().label(examples(2));

        LabelledExample first = ds.examples().get(0);
        assertThat(first.label()).contains(SystemLabel.SYSTEM_1);
        assertThat(first.result()).isEqualTo(new VoteResult(SystemLabel.SYSTEM_1, 2, 1, 0, VoteResult.Decision.MAJORITY));
        assertThat(first.votes()).extracting(Vote::teacherId).containsExactly("a", "b", "c");
        assertThat(first.votes()).extracting(Vote::rawReply)
                .containsExactly("**System 2**", "System1", "I think this is System1, not System 2");

        LabelledExample second = ds.examples().get(1);
        assertThat(second.result().decision()).isEqualTo(VoteResult.Decision.DROPPED_TIE);
        assertThat(second.votes().get(1).isAbstention()).isTrue();
        assertThat(second.votes().get(1).note()).isEqualTo("refusal");
        assertThat(second.votes().get(1).rawReply()).isEqualTo("I'm sorry, I can't.");

        LabelStatistics stats = ds.statistics();
        assertThat(stats.system1()).isEqualTo(1);
        assertThat(stats.system2()).isZero();
        assertThat(stats.droppedTies()).isEqualTo(1);
        assertThat(stats.abstentionsByTeacher()).containsEntry("b", 1).containsEntry("a", 0);
        assertThat(stats.kappaExamples()).isEqualTo(1);
    }

    @Test
    void promptRolePlaysTheConfiguredTargetModel() throws Exception {
        ScriptedTeacher a = new ScriptedTeacher("a", q -> "System1");
        Splitter.vote(a).targetModel("Qwen2.5 0.5B").build().label(examples(1));
        TeacherPrompt prompt = a.prompts.get(0);
        assertThat(prompt.messages()).hasSize(2);
        assertThat(prompt.messages().get(0).content()).startsWith("Act as Qwen2.5 0.5B \u2014 concise");
        assertThat(prompt.messages().get(1).content()).contains("Question: q0").contains("Answer: a0");
    }

    @Test
    void transientFailureIsAnAbstentionThatIsNotCached() throws Exception {
        Path cache = dir.resolve("cache.jsonl");
        AtomicInteger failures = new AtomicInteger();
        ScriptedTeacher flaky = new ScriptedTeacher("flaky", q -> q.equals("q1") ? "FAIL:TRANSIENT" : "System2");
        LabelledDataset ds = Splitter.vote(flaky).cache(cache).listener(new SplitListener() {
            @Override
            public void onTeacherFailure(Example example, String teacherId, TeacherException failure) {
                failures.incrementAndGet();
            }
        }).build().label(examples(3));
        Vote failed = ds.examples().get(1).votes().get(0);
        assertThat(failed.isAbstention()).isTrue();
        assertThat(failed.note()).startsWith("teacher failed (TRANSIENT)");
        assertThat(failed.rawReply()).isEqualTo("<html>oops</html>");
        assertThat(failures).hasValue(1);
        assertThat(ds.statistics().droppedNoVotes()).isEqualTo(1);
        assertThat(Files.readAllLines(cache)).hasSize(2);
    }

    @Test
    void configurationErrorAbortsAndARerunResumesFromTheCache() throws Exception {
        Path cache = dir.resolve("cache.jsonl");
        List<Example> examples = examples(12);
        ScriptedTeacher good = new ScriptedTeacher("good", q -> "System2");
        // First run: the second teacher is rejected on q7, as if its API key had expired mid-run.
        ScriptedTeacher broken = new ScriptedTeacher("second", q -> q.equals("q7") ? "FAIL:CONFIGURATION" : "System1");
        assertThatThrownBy(() -> Splitter.vote(good, broken).cache(cache).parallelism(2).build().label(examples))
                .isInstanceOf(TeacherException.class).hasMessage("scripted failure");
        int answeredBefore = Files.readAllLines(cache).size();
        // q0..q6 from both teachers were dequeued before q7 failed; with two workers at most one of them can
        // still have been waiting for its turn when the run aborted
        assertThat(answeredBefore).isGreaterThanOrEqualTo(7 + 7 - 1).isLessThan(24);

        // Second run: same ids and prompts, everything answered before comes from the cache.
        ScriptedTeacher good2 = new ScriptedTeacher("good", q -> "System2");
        ScriptedTeacher fixed = new ScriptedTeacher("second", q -> "System1");
        LabelledDataset ds = Splitter.vote(good2, fixed).cache(cache).tieRule(TieRule.PREFER_SYSTEM_1).build().label(examples);
        assertThat(good2.totalAsked() + fixed.totalAsked()).isEqualTo(2 * 12 - answeredBefore);
        assertThat(ds.statistics().cachedReplies()).isEqualTo(answeredBefore);
        assertThat(ds.statistics().system1()).isEqualTo(12);
        assertThat(ds.examples().get(0).votes().get(0).fromCache()).isTrue();
        assertThat(Files.readAllLines(cache)).hasSize(24);

        // Third run: nothing left to ask.
        ScriptedTeacher good3 = new ScriptedTeacher("good", q -> "System2");
        ScriptedTeacher fixed3 = new ScriptedTeacher("second", q -> "System1");
        Splitter.vote(good3, fixed3).cache(cache).build().label(examples);
        assertThat(good3.totalAsked() + fixed3.totalAsked()).isZero();
    }

    @Test
    void interruptedRunKeepsEveryAnswerAndResumes() throws Exception {
        Path cache = dir.resolve("cache.jsonl");
        List<Example> examples = examples(10);
        // answers q0..q4 at once, then hangs as if the server had stalled
        ScriptedTeacher stalling = new ScriptedTeacher("t", q -> Integer.parseInt(q.substring(1)) >= 5 ? "STALL" : "System1");
        AtomicReference<Throwable> outcome = new AtomicReference<>();
        Thread run = new Thread(() -> {
            try {
                Splitter.vote(stalling).cache(cache).parallelism(1).build().label(examples);
            } catch (Throwable t) {
                outcome.set(t);
            }
        });
        run.start();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((!Files.exists(cache) || Files.readAllLines(cache).size() < 5) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        run.interrupt();
        run.join(5_000);
        assertThat(run.isAlive()).isFalse();
        assertThat(outcome.get()).isInstanceOf(InterruptedException.class);
        assertThat(Files.readAllLines(cache)).hasSize(5);

        ScriptedTeacher resumed = new ScriptedTeacher("t", q -> "System2");
        LabelledDataset ds = Splitter.vote(resumed).cache(cache).build().label(examples);
        assertThat(resumed.asked.keySet()).containsExactlyInAnyOrder("q5", "q6", "q7", "q8", "q9");
        assertThat(ds.withLabel(SystemLabel.SYSTEM_1)).hasSize(5);
        assertThat(ds.withLabel(SystemLabel.SYSTEM_2)).hasSize(5);
    }

    @Test
    void aChangedTargetModelAsksAgain() throws Exception {
        Path cache = dir.resolve("cache.jsonl");
        ScriptedTeacher a = new ScriptedTeacher("a", q -> "System1");
        Splitter.vote(a).cache(cache).build().label(examples(2));
        Splitter.vote(a).cache(cache).targetModel("Mistral 7B").build().label(examples(2));
        assertThat(a.totalAsked()).isEqualTo(4);
    }

    @Test
    void listenerSeesExamplesInOrder() throws Exception {
        List<String> seen = new ArrayList<>();
        ScriptedTeacher a = new ScriptedTeacher("a", q -> "System1");
        Splitter.vote(a).listener(new SplitListener() {
            @Override
            public void onExampleLabelled(LabelledExample example, int done, int total) {
                seen.add(example.example().id() + "@" + done + "/" + total);
            }
        }).build().label(examples(3));
        assertThat(seen).containsExactly("0@1/3", "1@2/3", "2@3/3");
    }

    @Test
    void builderRejectsDuplicateTeacherIdsAndNoTeachers() {
        ScriptedTeacher a = new ScriptedTeacher("a", q -> "System1");
        ScriptedTeacher a2 = new ScriptedTeacher("a", q -> "System2");
        assertThatThrownBy(() -> Splitter.vote(a, a2)).hasMessageContaining("two teachers share the id a");
        assertThatThrownBy(() -> Splitter.vote()).hasMessageContaining("at least one teacher");
    }

    /** Every request failing used to write "0 labelled examples" over the earlier output. */
    @Test
    void aDatasetInWhichEveryVoteFailedNeverReplacesAnOutput() throws Exception {
        Path out = dir.resolve("train.labelled.jsonl");
        ScriptedTeacher good = new ScriptedTeacher("t", q -> "System 2");
        Splitter.vote(good).build().label(examples(3)).writeJsonl(out);
        String earlier = Files.readString(out);
        assertThat(earlier.lines()).hasSize(3);

        ScriptedTeacher down = new ScriptedTeacher("t", q -> "FAIL:TRANSIENT");
        LabelledDataset failed = Splitter.vote(down).build().label(examples(3));
        assertThat(failed.examples()).allMatch(e -> e.votes().get(0).isFailure());
        assertThatThrownBy(() -> failed.writeJsonl(out)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("not writing " + out)
                .hasMessageContaining("every one of the 3 teacher requests failed")
                .hasMessageContaining("the existing file is left as it is");
        assertThat(Files.readString(out)).isEqualTo(earlier);

        ScriptedTeacher refuses = new ScriptedTeacher("t", q -> "I cannot tell.");
        LabelledDataset none = Splitter.vote(refuses).build().label(examples(2));
        assertThat(none.whyNothingLabelled()).contains("no example of 2 got a label").contains("2 abstentions");
        assertThatThrownBy(() -> none.writeJsonl(dir.resolve("new.jsonl"))).isInstanceOf(IllegalStateException.class);
        assertThat(dir.resolve("new.jsonl")).doesNotExist();
    }

    @Test
    void anEmptyInputIsAnErrorNotAnEmptyOutputWithNaNKappa() {
        assertThatThrownBy(() -> Splitter.vote(new ScriptedTeacher("t", q -> "System1")).build().label(List.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("no examples to label");
    }
}
