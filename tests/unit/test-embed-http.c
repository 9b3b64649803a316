/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the http embedder against tests/embed-server/server.py,
 * a scriptable OpenAI-compatible server started here: batching and order,
 * blank texts, retries after 503, 429 and dropped connections, Retry-After,
 * timeouts, the circuit breaker, malformed answers, and that no error
 * detail ever shows the API key.
 *
 *     test-embed-http SERVER.py [PYTHON]
 * (or $CX_EMBED_SERVER and $CX_PYTHON). Every wait is bounded; the server
 * exits when our end of its stdin closes, so it never outlives the test. */
#include "test.h"

#include "embed/embed.h"
#include "util/clock.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define DIM 8

static pid_t server_pid = -1;
static int server_stdin = -1;
static int port;
static char base_url[128];

/* --- the server ----------------------------------------------------- */

static int start_server(const char *python, const char *script) {
    int in[2], out[2];
    if (pipe(in) != 0)
        return -1;
    if (pipe(out) != 0) {
        close(in[0]), close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execlp(python, python, script, "--dim", "8", "--time-limit", "240", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    server_pid = pid;
    server_stdin = in[1];

    /* the first line of its stdout is the port; wait at most 20 s */
    char line[32];
    size_t n = 0;
    uint64_t deadline = cx_clock_mono_ns() + 20000000000ull;
    while (n < sizeof line - 1 && (n == 0 || line[n - 1] != '\n')) {
        uint64_t now = cx_clock_mono_ns();
        if (now >= deadline)
            break;
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t k = read(out[0], line + n, sizeof line - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(out[0]);
    line[n] = '\0';
    port = (int)strtol(line, NULL, 10);
    if (n == 0 || line[n - 1] != '\n' || port <= 0 || port > 65535)
        return -1;
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", port);
    return 0;
}

static void stop_server(void) {
    if (server_stdin >= 0)
        close(server_stdin);
    if (server_pid <= 0)
        return;
    for (int i = 0; i < 100; i++) { /* 5 s to notice EOF */
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid)
            return;
        usleep(50000);
    }
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
}

typedef struct sbuf {
    char data[1 << 20];
    size_t len;
} sbuf;

static size_t sink(char *p, size_t s, size_t n, void *ud) {
    sbuf *b = ud;
    size_t k = s * n;
    if (k > sizeof b->data - 1 - b->len)
        return 0;
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

/* GET /stats (body NULL) or POST /control; returns the parsed answer. */
static json_t *call_server(const char *path, const char *body) {
    static sbuf b;
    char url[256];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    b.len = 0;
    b.data[0] = '\0';
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK || status != 200) {
        fprintf(stderr, "server %s: curl %d, HTTP %ld\n", path, (int)cc, status);
        return NULL;
    }
    return json_loads(b.data, 0, NULL);
}

static void control(const char *body) {
    json_t *r = call_server("/control", body);
    CX_CHECK(r && json_is_true(json_object_get(r, "ok")));
    json_decref(r);
}

static long stat_n(const char *key) {
    json_t *r = call_server("/stats", NULL);
    long v = r ? (long)json_integer_value(json_object_get(r, key)) : -1;
    json_decref(r);
    return v;
}

/* --- helpers -------------------------------------------------------- */

static cx_embed_http_config base_config(void) {
    cx_embed_http_config c = {
        .base_url = base_url,
        .model = "test-model",
        .dim = DIM,
        .timeout_ms = 3000,
        .max_batch = 32,
        .retries = 2,
        .breaker_failures = 3,
        .breaker_cooldown_ms = 30000,
    };
    return c;
}

static cx_embedder *make(const cx_embed_http_config *c) {
    cx_embedder *e = NULL;
    int r = cx_embed_http_new(&e, c);
    if (r != 0)
        fprintf(stderr, "cx_embed_http_new: %s\n", cx_error_last());
    return e;
}

static int embed_one(cx_embedder *e, const char *text, float *out) {
    const char *t[1] = {text};
    return cx_embed_batch(e, t, 1, out);
}

static double norm(const float *v, int dim) {
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static long ms_since(uint64_t t0) {
    return (long)((cx_clock_mono_ns() - t0) / 1000000u);
}

static int contains(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

/* --- tests ---------------------------------------------------------- */

static void test_config(void) {
    cx_embed_http_config c = base_config();
    cx_embedder *e = NULL;
    c.base_url = "ftp://127.0.0.1/";
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    c = base_config();
    c.base_url = NULL;
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    c = base_config();
    c.model = NULL;
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    c = base_config();
    c.max_batch = CX_EMBED_MAX_BATCH + 1;
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    c = base_config();
    c.dim = CX_EMBED_MAX_DIM + 1;
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    c = base_config();
    c.retries = 11;
    CX_CHECK_INT(cx_embed_http_new(&e, &c), CX_EINVAL);
    CX_CHECK(e == NULL);
    CX_CHECK_INT(cx_embed_http_new(&e, NULL), CX_EINVAL);
}

static void test_probe(void) {
    control("{\"mode\":\"ok\",\"reset\":true}");
    cx_embed_http_config c = base_config();
    c.dim = 0;
    cx_embedder *e = make(&c);
    CX_CHECK(e != NULL);
    if (!e)
        return;
    CX_CHECK_STR(cx_embed_model_id(e), "http:test-model");
    CX_CHECK(!cx_embed_is_local(e));
    CX_CHECK_INT(cx_embed_dim(e), 0);
    CX_CHECK_INT(stat_n("requests"), 0); /* nothing sent on creation */
    float v[DIM];
    CX_CHECK_INT(embed_one(e, "hello", v), CX_EINVAL); /* size of out unknown */
    CX_CHECK_OK(cx_embed_probe(e));
    CX_CHECK_INT(cx_embed_dim(e), DIM);
    CX_CHECK_INT(stat_n("requests"), 1);
    CX_CHECK_OK(cx_embed_probe(e)); /* known now: no request */
    CX_CHECK_INT(stat_n("requests"), 1);
    CX_CHECK_OK(embed_one(e, "hello", v));
    CX_CHECK(fabs(norm(v, DIM) - 1.0) < 1e-5);
    cx_embed_free(e);

    /* per-model dimensions; a base_url ending in /v1/ works too */
    control("{\"model_dims\":{\"model-a\":8,\"model-b\":16}}");
    char v1[160];
    snprintf(v1, sizeof v1, "%s/v1/", base_url);
    c.base_url = v1;
    c.model = "model-b";
    e = make(&c);
    CX_CHECK(e != NULL);
    if (e) {
        CX_CHECK_OK(cx_embed_probe(e));
        CX_CHECK_INT(cx_embed_dim(e), 16);
        CX_CHECK_STR(cx_embed_model_id(e), "http:model-b");
        cx_embed_free(e);
    }
    /* configured dimension that the service does not give: malformed */
    c.model = "model-a";
    c.dim = 16;
    e = make(&c);
    if (e) {
        float w[16];
        CX_CHECK_INT(embed_one(e, "hello", w), CX_EFAIL);
        CX_CHECK(contains(cx_error_last(), "8 dimensions"));
        CX_CHECK(contains(cx_error_last(), "expected 16"));
        cx_embed_free(e);
    }
    control("{\"model_dims\":{}}");
}

static void test_batching(void) {
    control("{\"mode\":\"ok\",\"reset\":true}");
    cx_embed_http_config c = base_config();
    cx_embedder *e = make(&c);
    if (!e)
        return;
    enum { N = 70 };
    static char bufs[N][48];
    const char *texts[N];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "text number %d about topic %d", i, i % 7);
        texts[i] = bufs[i];
    }
    static float rows[N * DIM];
    CX_CHECK_OK(cx_embed_batch(e, texts, N, rows));

    json_t *st = call_server("/stats", NULL);
    CX_CHECK(st != NULL);
    if (st) {
        CX_CHECK_INT(json_integer_value(json_object_get(st, "requests")), 3);
        CX_CHECK_INT(json_integer_value(json_object_get(st, "inputs")), N);
        json_t *b = json_object_get(st, "batches");
        CX_CHECK_INT(json_array_size(b), 3);
        CX_CHECK_INT(json_integer_value(json_array_get(b, 0)), 32);
        CX_CHECK_INT(json_integer_value(json_array_get(b, 1)), 32);
        CX_CHECK_INT(json_integer_value(json_array_get(b, 2)), 6);
        json_t *t = json_object_get(st, "texts");
        int in_order = json_array_size(t) == N;
        for (int i = 0; in_order && i < N; i++)
            in_order = strcmp(json_string_value(json_array_get(t, (size_t)i)), texts[i]) == 0;
        CX_CHECK(in_order);
        json_decref(st);
    }
    /* unit rows, each the vector of its own text (the server lists rows in
     * reverse; they must be placed by index) */
    int unit = 1, placed = 1, distinct = 1;
    for (int i = 0; i < N; i++) {
        float v[DIM];
        unit &= fabs(norm(rows + i * DIM, DIM) - 1.0) < 1e-5;
        if (embed_one(e, texts[i], v) != 0)
            placed = 0;
        placed &= cx_embed_dot(v, rows + i * DIM, DIM) > 0.99999f;
        if (i > 0)
            distinct &= cx_embed_dot(rows + (i - 1) * DIM, rows + i * DIM, DIM) < 0.999f;
    }
    CX_CHECK(unit);
    CX_CHECK(placed);
    CX_CHECK(distinct);

    /* blank texts are zero rows and are not sent */
    control("{\"reset\":true}");
    const char *mixed[4] = {"", " \t\n", "hello world", ""};
    float m[4 * DIM];
    memset(m, 0x7f, sizeof m);
    CX_CHECK_OK(cx_embed_batch(e, mixed, 4, m));
    CX_CHECK(norm(m, DIM) == 0.0 && norm(m + DIM, DIM) == 0.0 && norm(m + 3 * DIM, DIM) == 0.0);
    CX_CHECK(fabs(norm(m + 2 * DIM, DIM) - 1.0) < 1e-5);
    CX_CHECK_INT(stat_n("inputs"), 1);
    const char *blanks[2] = {"", "  "};
    CX_CHECK_OK(cx_embed_batch(e, blanks, 2, m));
    CX_CHECK_INT(stat_n("requests"), 1);

    /* invalid UTF-8 is repaired, not refused */
    const char *bad[2] = {"caf\xc3", "\xff\xfe ok"};
    CX_CHECK_OK(cx_embed_batch(e, bad, 2, m));

    /* the arguments */
    static const char *many[CX_EMBED_MAX_BATCH + 1];
    static float big[(CX_EMBED_MAX_BATCH + 1) * DIM];
    for (int i = 0; i <= CX_EMBED_MAX_BATCH; i++)
        many[i] = "x";
    CX_CHECK_INT(cx_embed_batch(e, many, CX_EMBED_MAX_BATCH + 1, big), CX_EINVAL);
    const char *with_null[2] = {"a", NULL};
    CX_CHECK_INT(cx_embed_batch(e, with_null, 2, big), CX_EINVAL);
    control("{\"reset\":true}");
    CX_CHECK_OK(cx_embed_batch(e, many, CX_EMBED_MAX_BATCH, big));
    CX_CHECK_INT(stat_n("requests"), CX_EMBED_MAX_BATCH / 32);
    cx_embed_free(e);
}

static void test_retries(void) {
    cx_embed_http_config c = base_config();
    float v[DIM];
    cx_embedder *e = make(&c);
    if (!e)
        return;

    /* 503 twice, then fine: two retries are enough */
    control("{\"mode\":\"fail503\",\"count\":2,\"reset\":true}");
    CX_CHECK_OK(embed_one(e, "recover after 503", v));
    CX_CHECK_INT(stat_n("requests"), 3);
    CX_CHECK(fabs(norm(v, DIM) - 1.0) < 1e-5);

    /* 503 for good: 1 + 2 attempts, then CX_EIO */
    control("{\"mode\":\"fail503\",\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "still down", v), CX_EIO);
    CX_CHECK(contains(cx_error_last(), "HTTP 503"));
    CX_CHECK(contains(cx_error_last(), "3 attempts"));
    CX_CHECK_INT(stat_n("requests"), 3);

    /* 429 with Retry-After: 1 waits a second, then succeeds */
    control("{\"mode\":\"fail429\",\"count\":1,\"retry_after\":1,\"reset\":true}");
    uint64_t t0 = cx_clock_mono_ns();
    CX_CHECK_OK(embed_one(e, "rate limited", v));
    long ms = ms_since(t0);
    fprintf(stderr, "429 + Retry-After 1: %ld ms\n", ms);
    CX_CHECK(ms >= 950 && ms < 3000);
    CX_CHECK_INT(stat_n("requests"), 2);

    /* a Retry-After beyond what a call may wait ends the call at once */
    control("{\"mode\":\"fail429\",\"count\":1,\"retry_after\":120,\"reset\":true}");
    t0 = cx_clock_mono_ns();
    CX_CHECK_INT(embed_one(e, "come back in two minutes", v), CX_EIO);
    CX_CHECK(ms_since(t0) < 1000);
    CX_CHECK(contains(cx_error_last(), "120 s"));
    CX_CHECK_INT(stat_n("requests"), 1);
    control("{\"retry_after\":null}");

    /* 400 is the request's fault: no retry */
    control("{\"mode\":\"fail400\",\"count\":1,\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "bad input", v), CX_EIO);
    CX_CHECK(contains(cx_error_last(), "HTTP 400"));
    CX_CHECK_INT(stat_n("requests"), 1);

    /* a dropped connection is retried */
    control("{\"mode\":\"close\",\"count\":1,\"reset\":true}");
    CX_CHECK_OK(embed_one(e, "after a dropped connection", v));
    CX_CHECK_INT(stat_n("requests"), 2);
    cx_embed_free(e);

    /* no retries at all (-1), connection dropped every time */
    c.retries = -1;
    e = make(&c);
    if (!e)
        return;
    control("{\"mode\":\"close\",\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "dropped", v), CX_EIO);
    CX_CHECK_INT(stat_n("requests"), 1);
    control("{\"mode\":\"ok\"}");
    cx_embed_free(e);
}

static void test_timeout(void) {
    cx_embed_http_config c = base_config();
    c.timeout_ms = 300;
    c.retries = 1;
    cx_embedder *e = make(&c);
    if (!e)
        return;
    float v[DIM];
    control("{\"mode\":\"hang\",\"reset\":true}");
    uint64_t t0 = cx_clock_mono_ns();
    CX_CHECK_INT(embed_one(e, "a service that never answers", v), CX_EIO);
    long ms = ms_since(t0);
    fprintf(stderr, "hang, timeout 300 ms, 1 retry: %ld ms (%s)\n", ms, cx_error_last());
    CX_CHECK(ms >= 550 && ms < 2500);
    CX_CHECK(contains(cx_error_last(), "timed out"));
    CX_CHECK_INT(stat_n("requests"), 2);
    control("{\"mode\":\"ok\"}");
    CX_CHECK_OK(embed_one(e, "back again", v));
    cx_embed_free(e);

    /* nothing listening */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    char url[64];
    CX_CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(s, (struct sockaddr *)&a, &al) == 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(s);
    c = base_config();
    c.base_url = url;
    c.retries = -1;
    e = make(&c);
    if (!e)
        return;
    t0 = cx_clock_mono_ns();
    CX_CHECK_INT(embed_one(e, "refused", v), CX_EIO);
    CX_CHECK(ms_since(t0) < 1000);
    CX_CHECK(contains(cx_error_last(), "POST"));
    cx_embed_free(e);
}

static void test_breaker(void) {
    cx_embed_http_config c = base_config();
    c.retries = 1;
    c.breaker_failures = 2;
    c.breaker_cooldown_ms = 600;
    cx_embedder *e = make(&c);
    if (!e)
        return;
    float v[DIM];

    control("{\"mode\":\"fail503\",\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "one", v), CX_EIO);
    CX_CHECK_INT(embed_one(e, "two", v), CX_EIO);
    CX_CHECK_INT(stat_n("requests"), 4); /* two calls, two attempts each */

    /* open: fails at once, without a request */
    uint64_t opened = cx_clock_mono_ns();
    CX_CHECK_INT(embed_one(e, "three", v), CX_EBUSY);
    CX_CHECK(ms_since(opened) < 100);
    CX_CHECK(contains(cx_error_last(), "unavailable"));
    CX_CHECK(contains(cx_error_last(), "retrying after"));
    CX_CHECK(contains(cx_error_last(), "503"));
    CX_CHECK_INT(cx_embed_probe(e), 0); /* dim known: no network either way */
    control("{\"mode\":\"ok\"}");
    CX_CHECK_INT(embed_one(e, "four", v), CX_EBUSY); /* still cooling down */
    CX_CHECK_INT(stat_n("requests"), 4);

    /* after the cooldown, one trial call closes it */
    usleep(700000);
    CX_CHECK_OK(embed_one(e, "five", v));
    CX_CHECK_INT(stat_n("requests"), 5);
    CX_CHECK_OK(embed_one(e, "six", v));
    CX_CHECK_INT(stat_n("requests"), 6);

    /* a failed trial (one request, no retries) opens it again at once */
    control("{\"mode\":\"fail503\",\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "seven", v), CX_EIO);
    CX_CHECK_INT(embed_one(e, "eight", v), CX_EIO);
    CX_CHECK_INT(embed_one(e, "nine", v), CX_EBUSY);
    CX_CHECK_INT(stat_n("requests"), 4);
    usleep(700000);
    CX_CHECK_INT(embed_one(e, "trial", v), CX_EIO);
    CX_CHECK_INT(stat_n("requests"), 5);
    CX_CHECK_INT(embed_one(e, "ten", v), CX_EBUSY);
    CX_CHECK_INT(stat_n("requests"), 5);
    control("{\"mode\":\"ok\"}");
    usleep(700000);
    CX_CHECK_OK(embed_one(e, "eleven", v));
    cx_embed_free(e);

    /* client errors (400) do not open the breaker: the service is up */
    c.breaker_failures = 1;
    e = make(&c);
    if (!e)
        return;
    control("{\"mode\":\"fail400\",\"reset\":true}");
    CX_CHECK_INT(embed_one(e, "bad", v), CX_EIO);
    CX_CHECK_INT(embed_one(e, "bad", v), CX_EIO);
    CX_CHECK_INT(stat_n("requests"), 2);
    control("{\"mode\":\"ok\"}");
    cx_embed_free(e);
}

static void test_malformed(void) {
    static const char *const modes[] = {"wrong_dim", "wrong_count", "huge_value", "bad_json"};
    cx_embed_http_config c = base_config();
    c.breaker_failures = 100;
    cx_embedder *e = make(&c);
    if (!e)
        return;
    const char *texts[3] = {"alpha", "beta", "gamma"};
    float rows[3 * DIM];
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"mode\":\"%s\",\"count\":1,\"reset\":true}", modes[i]);
        control(body);
        int r = cx_embed_batch(e, texts, 3, rows);
        fprintf(stderr, "%s: %s\n", modes[i], cx_error_last());
        CX_CHECK_INT(r, CX_EFAIL);
        CX_CHECK_INT(stat_n("requests"), 1); /* a malformed answer is not retried */
    }
    CX_CHECK_OK(cx_embed_batch(e, texts, 3, rows));
    cx_embed_free(e);
}

static void test_secrets(void) {
    static const char key[] = "sk-cortex-TEST-0123456789abcdef";
    cx_embed_http_config c = base_config();
    c.api_key = key;
    cx_embedder *e = make(&c);
    if (!e)
        return;
    float v[DIM];
    control("{\"mode\":\"ok\",\"reset\":true}");
    CX_CHECK_OK(embed_one(e, "with a key", v));
    json_t *st = call_server("/stats", NULL);
    CX_CHECK_STR(st ? json_string_value(json_object_get(st, "last_auth")) : NULL,
                 "Bearer sk-cortex-TEST-0123456789abcdef");
    json_decref(st);

    /* the server echoes the Authorization header into its 401 body */
    control("{\"mode\":\"echo_auth\",\"count\":1}");
    CX_CHECK_INT(embed_one(e, "with a key", v), CX_EIO);
    fprintf(stderr, "401: %s\n", cx_error_last());
    CX_CHECK(contains(cx_error_last(), "HTTP 401"));
    CX_CHECK(contains(cx_error_last(), "[REDACTED]"));
    CX_CHECK(!contains(cx_error_last(), "0123456789abcdef"));
    CX_CHECK(!contains(cx_error_last(), "sk-cortex"));
    cx_embed_free(e);

    /* nor a password in base_url, in any message, breaker included */
    char url[192];
    snprintf(url, sizeof url, "http://someone:hunter2-PASSWORD@127.0.0.1:%d", port);
    c = base_config();
    c.base_url = url;
    c.retries = -1;
    c.breaker_failures = 1;
    e = make(&c);
    if (!e)
        return;
    control("{\"mode\":\"fail503\"}");
    CX_CHECK_INT(embed_one(e, "x", v), CX_EIO);
    CX_CHECK(contains(cx_error_last(), "http://127.0.0.1:"));
    CX_CHECK(!contains(cx_error_last(), "hunter2"));
    CX_CHECK_INT(embed_one(e, "x", v), CX_EBUSY);
    CX_CHECK(!contains(cx_error_last(), "hunter2"));
    control("{\"mode\":\"ok\"}");
    cx_embed_free(e);
}

int main(int argc, char **argv) {
    const char *script = argc > 1 ? argv[1] : getenv("CX_EMBED_SERVER");
    const char *python = argc > 2 ? argv[2] : getenv("CX_PYTHON");
    if (!python || !*python)
        python = "python3";
    if (!script) {
        fprintf(stderr, "usage: test-embed-http SERVER.py [PYTHON]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int up = start_server(python, script) == 0;
    CX_CHECK(up);
    if (up) {
        test_config();
        test_probe();
        test_batching();
        test_retries();
        test_timeout();
        test_breaker();
        test_malformed();
        test_secrets();
    }
    stop_server();
    curl_global_cleanup();
    return cx_test_done();
}
