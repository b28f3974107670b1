package ai.lorapar.split;

import ai.lorapar.model.tokenizer.ChatMessage;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A teacher behind an OpenAI-compatible {@code /chat/completions} endpoint: vLLM, llama.cpp server, Ollama,
 * OpenAI and the like. Uses only {@code java.net.http}.
 *
 * <pre>{@code
 * Teacher qwen = OpenAiChatTeacher.builder()
 *         .baseUrl("http://localhost:8000/v1")   // POSTs to <baseUrl>/chat/completions
 *         .model("Qwen/Qwen2.5-72B-Instruct")
 *         .apiKeyEnv("OPENAI_API_KEY")            // optional: name of the variable, never the key
 *         .build();
 * }</pre>
 *
 * <p>Requests are greedy (temperature 0 by default) and capped by {@code maxTokens}. At most
 * {@code maxConcurrency} requests are in flight. Timeouts, connection failures and HTTP 408/429/5xx are retried
 * up to {@code maxRetries} times with exponential backoff ({@code initialBackoff}·2^attempt, at most
 * {@code maxBackoff}, plus up to 20% jitter); a {@code Retry-After} header (seconds or HTTP date) replaces the
 * backoff, unless it asks for more than {@code maxRetryAfter}, in which case the request fails at once. Other
 * 4xx answers fail at once as {@link TeacherException.Kind#CONFIGURATION} errors naming the status and
 * endpoint. The API key is read from the environment when the teacher is built, sent only in the
 * {@code Authorization} header, and never logged or put in an exception message; a key with a line break,
 * control or invisible character inside is refused when the teacher is built, naming the variable only.
 * The label cache keys replies on the model, temperature and {@code maxTokens} ({@link #cacheIdentity()}),
 * not on the URL.
 */
public final class OpenAiChatTeacher implements Teacher {

    private static final Logger LOG = LoggerFactory.getLogger(OpenAiChatTeacher.class);
    private static final int BODY_SNIPPET = 2000;

    private final String id;
    private final boolean explicitId;
    private final String model;
    private final URI endpoint;
    private final String apiKey; // null when none; never logged
    private final String apiKeyEnv;
    private final double temperature;
    private final int maxTokens;
    private final Duration requestTimeout;
    private final int maxConcurrency;
    private final int maxRetries;
    private final Duration initialBackoff;
    private final Duration maxBackoff;
    private final Duration maxRetryAfter;
    private final Semaphore inFlight;
    private final HttpClient http;

    private OpenAiChatTeacher(Builder b, String apiKey) {
        String base = b.baseUrl.endsWith("/") ? b.baseUrl.substring(0, b.baseUrl.length() - 1) : b.baseUrl;
        this.endpoint = URI.create(base + "/chat/completions");
        this.model = b.model;
        this.id = b.id != null ? b.id : "openai:" + b.model + "@" + base;
        this.explicitId = b.id != null;
        this.apiKey = apiKey;
        this.apiKeyEnv = b.apiKeyEnv;
        this.temperature = b.temperature;
        this.maxTokens = b.maxTokens;
        this.requestTimeout = b.requestTimeout;
        this.maxConcurrency = b.maxConcurrency;
        this.maxRetries = b.maxRetries;
        this.initialBackoff = b.initialBackoff;
        this.maxBackoff = b.maxBackoff;
        this.maxRetryAfter = b.maxRetryAfter;
        this.inFlight = new Semaphore(b.maxConcurrency, true);
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // local servers rarely speak h2c; skip the upgrade dance
                .connectTimeout(b.connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    /**
     * A builder; {@code baseUrl} and {@code model} are required.
     *
     * @return the builder
     */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String model() {
        return model;
    }

    /**
     * The chat-completions URL requests go to.
     *
     * @return the URL
     */
    public URI endpoint() {
        return endpoint;
    }

    @Override
    public int maxConcurrency() {
        return maxConcurrency;
    }

    /**
     * The model, temperature and reply cap (and the id when one was set explicitly): what determines the
     * reply. Not the URL, so a rerun against the same server spelled differently reuses the cache.
     */
    @Override
    public String cacheIdentity() {
        return "openai-chat\u0000" + model + "\u0000temperature=" + temperature + "\u0000max_tokens=" + maxTokens
                + (explicitId ? "\u0000id=" + id : "");
    }

    @Override
    public String ask(TeacherPrompt prompt) throws TeacherException, InterruptedException {
        HttpRequest request = request(prompt);
        inFlight.acquire();
        try {
            return askWithRetries(request);
        } finally {
            inFlight.release();
        }
    }

    private String askWithRetries(HttpRequest request) throws TeacherException, InterruptedException {
        for (int attempt = 0; ; attempt++) {
            String problem;
            Optional<Duration> retryAfter = Optional.empty();
            String rawBody = null;
            try {
                LOG.debug("POST {} model={} attempt {}", endpoint, model, attempt + 1);
                HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
                int status = response.statusCode();
                String body = response.body() == null ? "" : response.body();
                if (status >= 200 && status < 300) {
                    return content(body);
                }
                rawBody = redact(snippet(body));
                if (status != 408 && status != 429 && status < 500) {
                    throw new TeacherException(TeacherException.Kind.CONFIGURATION, "HTTP " + status + " from " + endpoint
                            + " (model " + model + "): " + rawBody + hint(status), rawBody, null);
                }
                problem = "HTTP " + status;
                retryAfter = response.headers().firstValue("Retry-After").flatMap(OpenAiChatTeacher::parseRetryAfter);
            } catch (HttpTimeoutException e) {
                problem = "timed out (" + e.getMessage() + "; connectTimeout/requestTimeout " + requestTimeout + ")";
            } catch (IOException e) {
                problem = "I/O error " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
            }
            if (attempt >= maxRetries) {
                throw new TeacherException(TeacherException.Kind.TRANSIENT, problem + " from " + endpoint + " (model " + model
                        + ") after " + (attempt + 1) + " attempts" + (rawBody == null ? "" : ": " + rawBody), rawBody, null);
            }
            Duration delay;
            if (retryAfter.isPresent()) {
                delay = retryAfter.get();
                if (delay.compareTo(maxRetryAfter) > 0) {
                    throw new TeacherException(TeacherException.Kind.TRANSIENT, problem + " from " + endpoint
                            + " with Retry-After " + delay.toSeconds() + " s, longer than maxRetryAfter "
                            + maxRetryAfter.toSeconds() + " s; rerun later (answers so far are in the label cache)", rawBody, null);
                }
            } else {
                delay = backoff(attempt);
            }
            LOG.warn("{} from {} (model {}); retry {}/{} in {} ms", problem, endpoint, model, attempt + 1, maxRetries, delay.toMillis());
            Thread.sleep(delay.toMillis());
        }
    }

    private HttpRequest request(TeacherPrompt prompt) {
        JsonObject body = new JsonObject();
        body.addProperty("model", model);
        JsonArray messages = new JsonArray();
        for (ChatMessage m : prompt.messages()) {
            JsonObject message = new JsonObject();
            message.addProperty("role", m.role());
            message.addProperty("content", m.content());
            messages.add(message);
        }
        body.add("messages", messages);
        body.addProperty("temperature", temperature);
        body.addProperty("max_tokens", maxTokens);
        body.addProperty("stream", false);
        HttpRequest.Builder request = HttpRequest.newBuilder(endpoint)
                .timeout(requestTimeout)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.UTF_8));
        if (apiKey != null) {
            try {
                request.header("Authorization", "Bearer " + apiKey);
            } catch (IllegalArgumentException e) {
                // the JDK's message quotes the header value: never let it travel
                throw new IllegalStateException("the API key from environment variable " + apiKeyEnv
                        + " is not a valid HTTP header value", null);
            }
        }
        return request.build();
    }

    /** choices[0].message.content; a null content (e.g. only reasoning_content) is an empty reply. */
    private String content(String body) throws TeacherException {
        try {
            JsonObject root = JsonParser.parseString(body).getAsJsonObject();
            JsonArray choices = root.getAsJsonArray("choices");
            if (choices == null || choices.isEmpty()) {
                throw new IllegalStateException("no choices");
            }
            JsonObject message = choices.get(0).getAsJsonObject().getAsJsonObject("message");
            if (message == null) {
                throw new IllegalStateException("no message in choices[0]");
            }
            JsonElement content = message.get("content");
            return content == null || content.isJsonNull() ? "" : content.getAsString();
        } catch (JsonParseException | IllegalStateException | ClassCastException | UnsupportedOperationException e) {
            String raw = redact(snippet(body));
            throw new TeacherException(TeacherException.Kind.MALFORMED_RESPONSE, "response from " + endpoint + " (model "
                    + model + ") is not a chat completion (" + e.getMessage() + "): " + raw, raw, e);
        }
    }

    private String hint(int status) {
        return switch (status) {
            case 401, 403 -> apiKeyEnv == null
                    ? " (no API key sent: set apiKeyEnv to the environment variable that holds it)"
                    : " (check the API key in environment variable " + apiKeyEnv + ")";
            case 404 -> " (check baseUrl, which should end before /chat/completions, e.g. http://host:8000/v1, and the model name)";
            default -> 300 <= status && status < 400 ? " (redirect: set baseUrl to the final address)" : "";
        };
    }

    private Duration backoff(int attempt) {
        long base = initialBackoff.toMillis() << Math.min(attempt, 30);
        long capped = Math.min(Math.max(base, 0), maxBackoff.toMillis());
        long jitter = capped == 0 ? 0 : ThreadLocalRandom.current().nextLong(capped / 5 + 1);
        return Duration.ofMillis(capped + jitter);
    }

    static Optional<Duration> parseRetryAfter(String value) {
        String v = value.trim();
        try {
            return Optional.of(Duration.ofSeconds(Math.max(0, Long.parseLong(v))));
        } catch (NumberFormatException notSeconds) {
            try {
                ZonedDateTime at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME);
                Duration d = Duration.between(ZonedDateTime.now(at.getZone()), at);
                return Optional.of(d.isNegative() ? Duration.ZERO : d);
            } catch (DateTimeParseException notADate) {
                return Optional.empty();
            }
        }
    }

    private static String snippet(String body) {
        return body.length() <= BODY_SNIPPET ? body : body.substring(0, BODY_SNIPPET) + "…(" + body.length() + " chars)";
    }

    /** A server may echo request headers in an error page; make sure the key cannot travel on from there. */
    private String redact(String text) {
        return apiKey == null || apiKey.isEmpty() ? text : text.replace(apiKey, "[redacted]");
    }

    @Override
    public String toString() {
        return id + " -> " + endpoint;
    }

    /** Builder of {@link OpenAiChatTeacher}; {@code baseUrl} and {@code model} are required. */
    public static final class Builder {
        private String baseUrl;
        private String model;
        private String apiKeyEnv;
        private String id;
        private double temperature = 0.0;
        private int maxTokens = 256;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private Duration requestTimeout = Duration.ofSeconds(120);
        private int maxConcurrency = 4;
        private int maxRetries = 5;
        private Duration initialBackoff = Duration.ofSeconds(1);
        private Duration maxBackoff = Duration.ofSeconds(60);
        private Duration maxRetryAfter = Duration.ofMinutes(5);
        private Function<String, String> environment = System::getenv;

        private Builder() {
        }

        /** The API root, e.g. {@code http://localhost:8000/v1} (vLLM), {@code http://localhost:11434/v1} (Ollama). */
        public Builder baseUrl(String baseUrl) {
            this.baseUrl = Objects.requireNonNull(baseUrl, "baseUrl");
            return this;
        }

        /** The model name the server expects in the request. */
        public Builder model(String model) {
            this.model = Objects.requireNonNull(model, "model");
            return this;
        }

        /** Name of the environment variable holding the API key; without it no Authorization header is sent. */
        public Builder apiKeyEnv(String variableName) {
            this.apiKeyEnv = Objects.requireNonNull(variableName, "apiKeyEnv");
            return this;
        }

        /** Where {@link #apiKeyEnv} is looked up (default {@link System#getenv(String)}); for hosts that manage secrets, and tests. */
        public Builder environment(Function<String, String> environment) {
            this.environment = Objects.requireNonNull(environment, "environment");
            return this;
        }

        /** Overrides the teacher id (default {@code openai:<model>@<baseUrl>}); the id keys the label cache. */
        public Builder id(String id) {
            this.id = Objects.requireNonNull(id, "id");
            return this;
        }

        /**
         * Sampling temperature (default 0: greedy); part of the cache key.
         *
         * @param temperature in [0, 2]
         * @return this builder
         */
        public Builder temperature(double temperature) {
            if (!(temperature >= 0 && temperature <= 2)) {
                throw new IllegalArgumentException("temperature must be in [0, 2], was " + temperature);
            }
            this.temperature = temperature;
            return this;
        }

        /** Reply length cap (default 256; reasoning models that think first need thousands). */
        public Builder maxTokens(int maxTokens) {
            this.maxTokens = positive("maxTokens", maxTokens);
            return this;
        }

        /**
         * Time allowed to connect (default 10 s).
         *
         * @param timeout positive
         * @return this builder
         */
        public Builder connectTimeout(Duration timeout) {
            this.connectTimeout = positive("connectTimeout", timeout);
            return this;
        }

        /** Time allowed for one request, from sending to the complete response (default 120 s). */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = positive("requestTimeout", timeout);
            return this;
        }

        /**
         * Requests in flight at most (default 4).
         *
         * @param requests at least 1
         * @return this builder
         */
        public Builder maxConcurrency(int requests) {
            this.maxConcurrency = positive("maxConcurrency", requests);
            return this;
        }

        /** Retries after the first attempt (default 5); 0 disables retrying. */
        public Builder maxRetries(int retries) {
            if (retries < 0) {
                throw new IllegalArgumentException("maxRetries must be >= 0, was " + retries);
            }
            this.maxRetries = retries;
            return this;
        }

        /** Backoff before the first retry; doubled for each further one (default 1 s). */
        public Builder initialBackoff(Duration backoff) {
            this.initialBackoff = nonNegative("initialBackoff", backoff);
            return this;
        }

        /**
         * The longest backoff between retries (default 60 s).
         *
         * @param backoff non-negative
         * @return this builder
         */
        public Builder maxBackoff(Duration backoff) {
            this.maxBackoff = nonNegative("maxBackoff", backoff);
            return this;
        }

        /** The longest Retry-After that is waited out (default 5 min); a longer one fails the request at once. */
        public Builder maxRetryAfter(Duration limit) {
            this.maxRetryAfter = nonNegative("maxRetryAfter", limit);
            return this;
        }

        /**
         * Builds the teacher, reading the API key from the environment.
         *
         * @return the teacher
         * @throws IllegalStateException for a missing URL or model, or a missing or malformed key (naming the variable, never the key)
         */
        public OpenAiChatTeacher build() {
            if (baseUrl == null || baseUrl.isBlank()) {
                throw new IllegalStateException("OpenAiChatTeacher: baseUrl is required, e.g. http://localhost:8000/v1");
            }
            if (model == null || model.isBlank()) {
                throw new IllegalStateException("OpenAiChatTeacher: model is required (the name the server serves)");
            }
            URI uri;
            try {
                uri = URI.create(baseUrl);
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException("OpenAiChatTeacher: baseUrl is not a URL: " + baseUrl, e);
            }
            if (uri.getRawUserInfo() != null || uri.getRawQuery() != null || uri.getRawFragment() != null) {
                // not echoed: it may hold credentials, and it would appear in every log line and teacher id
                throw new IllegalStateException("OpenAiChatTeacher: baseUrl must not contain user info (user:password@), "
                        + "a query or a fragment; give the API key through apiKeyEnv");
            }
            if (!"http".equals(uri.getScheme()) && !"https".equals(uri.getScheme())) {
                throw new IllegalStateException("OpenAiChatTeacher: baseUrl must start with http:// or https://, was " + baseUrl);
            }
            String key = null;
            if (apiKeyEnv != null) {
                key = environment.apply(apiKeyEnv);
                if (key == null || key.isBlank()) {
                    throw new IllegalStateException("OpenAiChatTeacher: environment variable " + apiKeyEnv
                            + " (apiKeyEnv) is not set or empty");
                }
                key = key.strip();
                checkKey(key, apiKeyEnv);
            }
            return new OpenAiChatTeacher(this, key);
        }

        /**
         * An API key goes into an HTTP header, which takes visible ASCII only; a line break, control or invisible
         * character inside it (a copy-paste accident) would make the JDK reject the header with the whole value
         * in its message. Refused here, naming the variable and the character's code point, never the key.
         */
        static void checkKey(String key, String variable) {
            for (int i = 0; i < key.length(); i++) {
                char c = key.charAt(i);
                if (c < 0x21 || c > 0x7E) {
                    String what = c == '\n' || c == '\r' ? "a line break" : c == ' ' || c == '\t' ? "a space or tab"
                            : Character.isISOControl(c) ? "a control character"
                            : c > 0x7E && (Character.getType(c) == Character.FORMAT || Character.isWhitespace(c)
                                    || Character.isSpaceChar(c)) ? "an invisible character" : "a non-ASCII character";
                    throw new IllegalStateException("OpenAiChatTeacher: the API key in environment variable " + variable
                            + " contains " + what + " (U+" + String.format("%04X", (int) c) + ") at character " + (i + 1)
                            + "; API keys are visible ASCII: set the variable again without it");
                }
            }
        }

        private static int positive(String name, int value) {
            if (value < 1) {
                throw new IllegalArgumentException(name + " must be >= 1, was " + value);
            }
            return value;
        }

        private static Duration positive(String name, Duration value) {
            if (value == null || value.isNegative() || value.isZero()) {
                throw new IllegalArgumentException(name + " must be a positive duration, was " + value);
            }
            return value;
        }

        private static Duration nonNegative(String name, Duration value) {
            if (value == null || value.isNegative()) {
                throw new IllegalArgumentException(name + " must be a non-negative duration, was " + value);
            }
            return value;
        }
    }
}
