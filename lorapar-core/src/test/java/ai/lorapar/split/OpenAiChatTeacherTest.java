package ai.lorapar.split;

import ai.lorapar.data.SystemLabel;
import ai.lorapar.data.Vote;
import ai.lorapar.data.LabelledDataset;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.lorapar.data.Example;
import ai.lorapar.split.CannedChatServer.Reply;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The chat-completions teacher against a real HTTP server on loopback. Backoffs are milliseconds here. */
class OpenAiChatTeacherTest {

    private static final String SECRET = "sk-test-0123456789abcdef";
    private static final Example EXAMPLE = Example.of("1", "Natalia sold 48 clips...", "48/2 = 24 ... #### 72");
    private static final TeacherPrompt PROMPT = new TeacherPrompt(EXAMPLE, RolePlayPrompt.defaults().render(EXAMPLE));

    @TempDir
    Path dir;

    private CannedChatServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
    }

    private CannedChatServer start(Function<CannedChatServer.Received, Reply> script) throws Exception {
        server = new CannedChatServer(script);
        return server;
    }

    private OpenAiChatTeacher.Builder teacher(String model) {
        return OpenAiChatTeacher.builder()
                .baseUrl(server.baseUrl())
                .model(model)
                .connectTimeout(Duration.ofSeconds(2))
                .requestTimeout(Duration.ofSeconds(5))
                .maxRetries(3)
                .initialBackoff(Duration.ofMillis(5))
                .maxBackoff(Duration.ofMillis(20));
    }

    @Test
    void sendsAGreedyChatRequestWithTheKeyFromTheEnvironment() throws Exception {
        start(r -> Reply.ok("**System 2** (multi-step)"));
        OpenAiChatTeacher t = teacher("qwen2.5-7b-instruct").maxTokens(64).apiKeyEnv("TEST_KEY")
                .environment(Map.of("TEST_KEY", SECRET)::get).build();
        assertThat(t.ask(PROMPT)).isEqualTo("**System 2** (multi-step)");
        CannedChatServer.Received r = server.received().get(0);
        assertThat(r.model()).isEqualTo("qwen2.5-7b-instruct");
        assertThat(r.body().get("temperature").getAsDouble()).isZero();
        assertThat(r.body().get("max_tokens").getAsInt()).isEqualTo(64);
        assertThat(r.body().getAsJsonArray("messages")).hasSize(2);
        assertThat(r.body().getAsJsonArray("messages").get(0).getAsJsonObject().get("role").getAsString()).isEqualTo("system");
        assertThat(r.body().getAsJsonArray("messages").get(1).getAsJsonObject().get("content").getAsString())
                .contains("Natalia sold 48 clips...");
        assertThat(r.authorization()).isEqualTo("Bearer " + SECRET);
        assertThat(t.id()).isEqualTo("openai:qwen2.5-7b-instruct@" + server.baseUrl()).doesNotContain(SECRET);
        assertThat(t.toString()).doesNotContain(SECRET);
    }

    @Test
    void noKeyNoAuthorizationHeader() throws Exception {
        start(r -> Reply.ok("System1"));
        teacher("m").build().ask(PROMPT);
        assertThat(server.received().get(0).authorization()).isNull();
    }

    @Test
    void missingKeyVariableFailsAtBuildNamingTheVariable() throws Exception {
        start(r -> Reply.ok("System1"));
        assertThatThrownBy(() -> teacher("m").apiKeyEnv("LORAPAR_SURELY_UNSET_KEY").environment(name -> null).build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("environment variable LORAPAR_SURELY_UNSET_KEY (apiKeyEnv) is not set");
    }

    @Test
    void rateLimitHonoursRetryAfter() throws Exception {
        start(r -> r.index() == 0 ? Reply.status(429, "{\"error\":\"rate limited\"}").withHeader("Retry-After", "1") : Reply.ok("System1"));
        long t0 = System.nanoTime();
        assertThat(teacher("m").build().ask(PROMPT)).isEqualTo("System1");
        List<CannedChatServer.Received> got = server.received();
        assertThat(got).hasSize(2);
        // the backoff alone would be 5-6 ms; Retry-After: 1 asks for a second
        assertThat(Duration.ofNanos(got.get(1).atNanos() - got.get(0).atNanos())).isGreaterThanOrEqualTo(Duration.ofMillis(950));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(4));
    }

    @Test
    void retryAfterBeyondTheLimitFailsAtOnce() throws Exception {
        start(r -> Reply.status(429, "quota exhausted").withHeader("Retry-After", "3600"));
        assertThatThrownBy(() -> teacher("m").maxRetryAfter(Duration.ofSeconds(30)).build().ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> assertThat(e.kind()).isEqualTo(TeacherException.Kind.TRANSIENT))
                .hasMessageContaining("Retry-After 3600 s, longer than maxRetryAfter 30 s");
        assertThat(server.received()).hasSize(1);
    }

    @Test
    void serverErrorsAreRetriedWithBackoff() throws Exception {
        start(r -> r.index() < 2 ? Reply.status(500, "internal error") : Reply.ok("System 2"));
        assertThat(teacher("m").build().ask(PROMPT)).isEqualTo("System 2");
        assertThat(server.received()).hasSize(3);
    }

    @Test
    void persistentServerErrorFailsAsTransientAfterAllRetries() throws Exception {
        start(r -> Reply.status(503, "overloaded"));
        assertThatThrownBy(() -> teacher("m").maxRetries(2).build().ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> {
                    assertThat(e.kind()).isEqualTo(TeacherException.Kind.TRANSIENT);
                    assertThat(e.rawResponse()).isEqualTo("overloaded");
                })
                .hasMessageContaining("HTTP 503 from " + server.baseUrl() + "/chat/completions")
                .hasMessageContaining("after 3 attempts");
        assertThat(server.received()).hasSize(3);
    }

    @Test
    void slowReplyTimesOut() throws Exception {
        start(r -> Reply.ok("System1").delayed(3000));
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> teacher("m").requestTimeout(Duration.ofMillis(200)).maxRetries(1).build().ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> assertThat(e.kind()).isEqualTo(TeacherException.Kind.TRANSIENT))
                .hasMessageContaining("timed out")
                .hasMessageContaining("after 2 attempts");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofMillis(2500));
    }

    @Test
    void refusedConnectionIsRetriedThenTransient() throws Exception {
        start(r -> Reply.ok("System1"));
        String url = server.baseUrl();
        server.close(); // nothing listens on that port any more
        server = null;
        OpenAiChatTeacher t = OpenAiChatTeacher.builder().baseUrl(url).model("m").maxRetries(2)
                .initialBackoff(Duration.ofMillis(5)).maxBackoff(Duration.ofMillis(10)).build();
        assertThatThrownBy(() -> t.ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> assertThat(e.kind()).isEqualTo(TeacherException.Kind.TRANSIENT))
                .hasMessageContaining("I/O error").hasMessageContaining("after 3 attempts");
    }

    @Test
    void malformedJsonKeepsTheRawBody() throws Exception {
        start(r -> new Reply(200, Map.of(), "{\"choices\": [ {\"message\": ", 0));
        assertThatThrownBy(() -> teacher("m").build().ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> {
                    assertThat(e.kind()).isEqualTo(TeacherException.Kind.MALFORMED_RESPONSE);
                    assertThat(e.rawResponse()).isEqualTo("{\"choices\": [ {\"message\": ");
                })
                .hasMessageContaining("is not a chat completion");
        assertThat(server.received()).hasSize(1);
    }

    @Test
    void clientErrorIsAConfigurationErrorWithoutTheKey() throws Exception {
        // a server that echoes the header back must not carry the key into our message
        start(r -> Reply.status(401, "{\"error\":\"invalid key " + SECRET + "\"}"));
        assertThatThrownBy(() -> teacher("gpt-x").apiKeyEnv("K").environment(Map.of("K", SECRET)::get).build().ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> {
                    assertThat(e.kind()).isEqualTo(TeacherException.Kind.CONFIGURATION);
                    assertThat(e.rawResponse()).doesNotContain(SECRET);
                })
                .hasMessageContaining("HTTP 401 from " + server.baseUrl() + "/chat/completions (model gpt-x)")
                .hasMessageContaining("environment variable K")
                .hasMessageNotContaining(SECRET);
        assertThat(server.received()).hasSize(1); // never retried
    }

    @Test
    void wrongPathIsA404ConfigurationError() throws Exception {
        start(r -> Reply.ok("System1"));
        OpenAiChatTeacher wrong = OpenAiChatTeacher.builder().baseUrl(server.baseUrl() + "/v1").model("m").maxRetries(0).build();
        assertThatThrownBy(() -> wrong.ask(PROMPT))
                .isInstanceOfSatisfying(TeacherException.class, e -> assertThat(e.kind()).isEqualTo(TeacherException.Kind.CONFIGURATION))
                .hasMessageContaining("HTTP 404").hasMessageContaining("check baseUrl");
    }

    @Test
    void concurrencyIsBounded() throws Exception {
        start(r -> Reply.ok("System1").delayed(80));
        OpenAiChatTeacher t = teacher("m").maxConcurrency(2).build();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<String>> futures = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                futures.add(pool.submit(() -> t.ask(PROMPT)));
            }
            for (Future<String> f : futures) {
                assertThat(f.get()).isEqualTo("System1");
            }
        } finally {
            pool.shutdownNow();
        }
        assertThat(server.maxInFlight()).isEqualTo(2);
    }

    @Test
    void retryAfterParsesSecondsAndHttpDates() {
        assertThat(OpenAiChatTeacher.parseRetryAfter(" 7 ")).contains(Duration.ofSeconds(7));
        assertThat(OpenAiChatTeacher.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT")).contains(Duration.ZERO);
        assertThat(OpenAiChatTeacher.parseRetryAfter("soon")).isEmpty();
    }

    @Test
    void threeServedTeachersVoteAndARerunAsksNothing() throws Exception {
        start(r -> switch (r.model()) {
            case "a" -> Reply.ok("System2");
            case "b" -> Reply.ok("I'd say **System 1** \u2014 a single lookup.");
            default -> r.body().toString().contains("hard") ? Reply.ok("System 2 (multi-step)") : Reply.ok("'System1'");
        });
        List<Example> examples = List.of(Example.of("e1", "easy one", "1"), Example.of("e2", "hard one", "2"));
        Path cache = dir.resolve("cache.jsonl");
        List<Teacher> teachers = List.of(teacher("a").build(), teacher("b").build(), teacher("c").build());
        LabelledDataset first = Splitter.vote(teachers).cache(cache).build().label(examples);
        assertThat(first.examples()).extracting(e -> e.label().orElseThrow())
                .containsExactly(SystemLabel.SYSTEM_1, SystemLabel.SYSTEM_2);
        assertThat(server.received()).hasSize(6);

        LabelledDataset again = Splitter.vote(teachers).cache(cache).build().label(examples);
        assertThat(server.received()).hasSize(6);
        assertThat(again.statistics().cachedReplies()).isEqualTo(6);
        assertThat(again.examples()).extracting(e -> e.label().orElseThrow())
                .containsExactly(SystemLabel.SYSTEM_1, SystemLabel.SYSTEM_2);
    }

    @Test
    void malformedReplyInARunBecomesAnAbstentionAndTheRunGoesOn() throws Exception {
        start(r -> r.model().equals("bad") ? new Reply(200, Map.of(), "<html>502 Bad Gateway</html>", 0) : Reply.ok("System1"));
        LabelledDataset ds = Splitter.vote(teacher("good").build(), teacher("bad").build())
                .build().label(List.of(Example.of("e", "q", "a")));
        Vote bad = ds.examples().get(0).votes().get(1);
        assertThat(bad.isAbstention()).isTrue();
        assertThat(bad.rawReply()).isEqualTo("<html>502 Bad Gateway</html>");
        assertThat(bad.note()).startsWith("teacher failed (MALFORMED_RESPONSE)");
        assertThat(ds.examples().get(0).label()).contains(SystemLabel.SYSTEM_1);
    }

    /** The JDK's "invalid header value" message quoted the whole key; now the key is refused when read. */
    @Test
    void aKeyWithAControlOrInvisibleCharacterIsRefusedNamingTheVariableNotTheKey() throws Exception {
        start(r -> Reply.ok("System1"));
        for (String bad : List.of("sk-abc\ndef0123", "sk-abc\u200Bdef0123", "sk-abc\u0007def0123", "sk-abc def0123",
                "sk-abc\u00A0def0123", "sk-abc\rdef0123")) {
            assertThatThrownBy(() -> teacher("m").apiKeyEnv("MY_KEY").environment(Map.of("MY_KEY", bad)::get).build())
                    .as(bad.codePoints().mapToObj(Integer::toHexString).toList().toString())
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("environment variable MY_KEY")
                    .hasMessageNotContaining("sk-abc").hasMessageNotContaining("def0123")
                    .satisfies(e -> assertThat(e.getCause()).isNull());
        }
        // surrounding whitespace (a trailing newline from $(cat keyfile)) is still stripped
        OpenAiChatTeacher ok = teacher("m").apiKeyEnv("MY_KEY").environment(Map.of("MY_KEY", " " + SECRET + "\n")::get).build();
        ok.ask(PROMPT);
        assertThat(server.received().get(0).authorization()).isEqualTo("Bearer " + SECRET);
        // credentials in the URL would travel into every log line and teacher id: refused without echoing them
        assertThatThrownBy(() -> OpenAiChatTeacher.builder().baseUrl("http://user:" + SECRET + "@127.0.0.1:1/v1")
                .model("m").build()).isInstanceOf(IllegalStateException.class).hasMessageNotContaining(SECRET);
    }

    /**
     * The incident: a second run spelled the endpoint localhost instead of 127.0.0.1, missed every cached
     * reply, every request failed, and an empty output replaced the good one. Cached replies are keyed on
     * model, prompt and parameters, so the rerun asks nothing.
     */
    @Test
    void theCacheIgnoresHowTheEndpointIsSpelledButNotTheParameters() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean down = new java.util.concurrent.atomic.AtomicBoolean();
        start(r -> down.get() ? Reply.status(503, "down") : Reply.ok(r.model().equals("a") ? "System1" : "System 2"));
        List<Example> examples = List.of(Example.of("e1", "q1", "1"), Example.of("e2", "q2", "2"));
        Path cache = dir.resolve("cache.jsonl");
        LabelledDataset first = Splitter.vote(teacher("a").build(), teacher("b").build()).cache(cache).build()
                .label(examples);
        assertThat(first.statistics().system1() + first.statistics().system2()).isEqualTo(2);
        assertThat(server.received()).hasSize(4);
        down.set(true);
        String localhost = server.baseUrl().replace("127.0.0.1", "localhost");
        LabelledDataset again = Splitter.vote(teacher("a").baseUrl(localhost).maxRetries(0).build(),
                teacher("b").baseUrl(localhost + "/").maxRetries(0).build()).cache(cache).build().label(examples);
        assertThat(server.received()).hasSize(4);
        assertThat(again.statistics().cachedReplies()).isEqualTo(4);
        assertThat(again.examples()).allMatch(e -> e.label().isPresent());
        // another reply budget may give another reply: asked again
        Splitter.vote(teacher("a").maxTokens(999).maxRetries(0).build()).cache(cache).build().label(examples);
        assertThat(server.received()).hasSize(6);
    }

    /** A reasoning model cut off by max_tokens answers no content: that is not a vote and is not cached. */
    @Test
    void anEmptyReplyIsNotCachedSoARerunAsksAgain() throws Exception {
        java.util.concurrent.atomic.AtomicBoolean longer = new java.util.concurrent.atomic.AtomicBoolean();
        start(r -> longer.get() ? Reply.ok("System 2")
                : new Reply(200, Map.of(), "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
                        + "\"reasoning_content\":\"Let me think\"},\"finish_reason\":\"length\"}]}", 0));
        List<Example> examples = List.of(Example.of("e1", "q1", "1"));
        Path cache = dir.resolve("cache.jsonl");
        LabelledDataset cutOff = Splitter.vote(teacher("r1").build()).cache(cache).build().label(examples);
        assertThat(cutOff.examples().get(0).label()).isEmpty();
        longer.set(true);
        LabelledDataset again = Splitter.vote(teacher("r1").build()).cache(cache).build().label(examples);
        assertThat(server.received()).hasSize(2);
        assertThat(again.examples().get(0).label()).contains(SystemLabel.SYSTEM_2);
        Splitter.vote(teacher("r1").build()).cache(cache).build().label(examples);
        assertThat(server.received()).hasSize(2); // the vote is cached
    }

    /** Cache files of earlier versions (keyed on teacher id with URL) are still read; their empty replies are not used. */
    @Test
    void olderCacheFilesAreStillReadButTheirNonVotesAreAskedAgain() throws Exception {
        start(r -> Reply.ok("System 2"));
        List<Example> examples = List.of(Example.of("e1", "q1", "1"), Example.of("e2", "q2", "2"));
        OpenAiChatTeacher a = teacher("a").build();
        Path cache = dir.resolve("old.cache.jsonl");
        try (LabelCache old = LabelCache.open(cache)) {
            for (Example e : examples) {
                String prompt = new TeacherPrompt(e, RolePlayPrompt.defaults().render(e)).canonicalText();
                old.put(LabelCache.key(a.id(), a.model(), prompt), a.id(), a.model(), e.id().equals("e1") ? "System1" : "");
            }
        }
        LabelledDataset ds = Splitter.vote(a).cache(cache).build().label(examples);
        assertThat(ds.examples().get(0).label()).contains(SystemLabel.SYSTEM_1); // from the old file
        assertThat(ds.examples().get(1).label()).contains(SystemLabel.SYSTEM_2); // its empty reply was asked again
        assertThat(server.received()).hasSize(1);
    }
}
