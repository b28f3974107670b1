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
}
