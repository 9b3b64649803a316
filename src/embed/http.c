/* SPDX-License-Identifier: Apache-2.0 */
/* The http embedder: any OpenAI-compatible POST {base_url}/v1/embeddings
 * endpoint through libcurl.
 *
 * One call (cx_embed_batch) becomes requests of at most max_batch texts,
 * {"model": …, "input": [ … ]}; each answer must carry exactly one finite
 * vector per input, of the one dimension, placed by its "index". Each
 * request is retried on transport errors, 429 and 5xx with exponential
 * backoff and full jitter (base 100 ms, cap 2 s), waiting at least what a
 * Retry-After asks; a Retry-After longer than RETRY_AFTER_MAX_MS ends the
 * call at once. Other 4xx answers are not retried.
 *
 * A circuit breaker keeps a dead service from costing a timeout per call:
 * after breaker_failures consecutive failed calls, calls fail at once with
 * CX_EBUSY until breaker_cooldown_ms has passed; then one call goes through
 * as a trial (without retries) and closes the breaker if it succeeds, or
 * opens it for another cooldown. Failures of the request itself (4xx other
 * than 429: a bad key, a rejected input) do not count: the service is up.
 *
 * Limits: answers over 64 MiB are refused; each text is cut to
 * MAX_TEXT_BYTES (at a character boundary) and invalid UTF-8 is replaced by
 * U+FFFD before it is sent. Bodies never reach stdout (CURLOPT_WRITEFUNCTION
 * is always set), only http and https are spoken, peers are verified. No
 * error detail carries the API key or the password of a base_url. */
#include "embed/embed-impl.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"

#include "net/curlapi.h"
#include "net/httpio.h"
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BATCH 64
#define DEFAULT_RETRIES 2
#define DEFAULT_BREAKER_FAILURES 3
#define DEFAULT_BREAKER_COOLDOWN_MS 30000
#define MAX_RETRIES 10
#define MAX_CONNECT_TIMEOUT_MS 5000
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 2000
#define RETRY_AFTER_MAX_MS 5000
#define MAX_RESPONSE (64u << 20)
#define MAX_TEXT_BYTES (32u << 10)
#define MAX_URL 2048
#define EXCERPT 160
#define PROBE_TEXT "dimension probe"

typedef struct http {
    cx_embedder base;
    char *url;         /* the endpoint */
    char *shown_url;   /* the endpoint without user:password@, for messages */
    char *url_secret;  /* that user:password, to scrub from messages; or NULL */
    char *model;
    char *api_key;     /* or NULL */
    int timeout_ms, max_batch, retries, breaker_failures, breaker_cooldown_ms;
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    cx_http_body resp;
    long retry_after_ms; /* from the last answer's Retry-After, or -1 */
    uint64_t rng;

    /* the breaker */
    int failures;          /* consecutive failed calls */
    uint64_t open_until;   /* monotonic ns; open while failures ≥ limit and now < this */
    char last_error[256];
    bool fault;            /* the failure being reported is the service's */
} http;

/* --- curl global state --------------------------------------------- */


/* --- error details without secrets ---------------------------------- */

/* Copies src into dst (cap bytes, NUL-terminated) with every occurrence
 * of a secret replaced, stopping before a secret would be cut. */
static void scrub_into(const http *h, char *dst, size_t cap, const char *src, size_t n,
                       bool printable) {
    const char *secrets[2] = {h->api_key, h->url_secret};
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        bool hit = false;
        for (int s = 0; s < 2 && !hit; s++) {
            size_t sl = secrets[s] ? strlen(secrets[s]) : 0;
            if (sl && n - i >= sl && memcmp(src + i, secrets[s], sl) == 0) {
                static const char mark[] = "[REDACTED]";
                if (o + sizeof mark > cap)
                    goto out;
                memcpy(dst + o, mark, sizeof mark - 1);
                o += sizeof mark - 1;
                i += sl;
                hit = true;
            }
        }
        if (hit)
            continue;
        unsigned char c = (unsigned char)src[i++];
        if (printable && (c < 0x20 || c == 0x7f))
            c = ' ';
        else if (printable && c >= 0x80)
            c = '?'; /* a cut could split a character: keep the detail valid UTF-8 */
        dst[o++] = (char)c;
    }
out:
    dst[o] = '\0';
}

/* Records the detail (and keeps it for the breaker's message). Every
 * argument that could hold a secret has been scrubbed; this scrubs the
 * whole once more. */
__attribute__((format(printf, 3, 4))) static int fail(http *h, int code, const char *fmt, ...) {
    char raw[768], clean[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    scrub_into(h, clean, sizeof clean, raw, strlen(raw), false);
    size_t l = strlen(clean);
    if (l >= sizeof h->last_error)
        l = sizeof h->last_error - 1;
    memcpy(h->last_error, clean, l);
    h->last_error[l] = '\0';
    return cx_error_set(code, "%s", clean);
}

/* --- requests ------------------------------------------------------- */

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud) {
    http *h = ud;
    size_t n = size * nitems;
    long v = cx_http_retry_after_ms(ptr, n);
    if (v == -2)
        h->retry_after_ms = -1; /* a new response (after 100 Continue…) */
    else if (v >= 0)
        h->retry_after_ms = v;
    return n;
}


static uint64_t next_rand(http *h) {
    /* xorshift64*: only for jitter */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 0x2545f4914f6cdd1dull;
}

/* Full jitter: a uniform wait in [0, min(cap, base·2^(attempt-1))]. */
static long backoff_ms(http *h, int attempt) {
    long ceiling = BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return (long)(next_rand(h) % (uint64_t)(ceiling + 1));
}

/* A short, printable, scrubbed piece of an answer body for a message. */
static void excerpt(const http *h, char out[EXCERPT]) {
    if (!h->resp.buf.len) {
        snprintf(out, EXCERPT, "(empty body)");
        return;
    }
    scrub_into(h, out, EXCERPT, cx_buf_str(&h->resp.buf), h->resp.buf.len, true);
}

/* --- the answer ----------------------------------------------------- */

/* Parses an answer to k inputs into rows out + pos[j] * dim. When the
 * dimension is not known yet (the probe), learns it; out then has room for
 * CX_EMBED_MAX_DIM floats a row. */
static int parse_answer(http *h, size_t k, const size_t *pos, float *out) {
    int r = CX_EFAIL;
    json_error_t jerr;
    json_t *root =
        json_loadb(cx_buf_str(&h->resp.buf), h->resp.buf.len, JSON_REJECT_DUPLICATES, &jerr);
    bool *seen = NULL;
    if (!root) {
        char ex[EXCERPT];
        excerpt(h, ex);
        return fail(h, CX_EFAIL, "embed: %s answered with invalid JSON (%s): %s", h->shown_url,
                    jerr.text, ex);
    }
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        const char *msg = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
        char ex[EXCERPT];
        if (msg)
            scrub_into(h, ex, sizeof ex, msg, strlen(msg), true);
        else
            excerpt(h, ex);
        r = fail(h, CX_EFAIL, "embed: %s answered without a \"data\" array: %s", h->shown_url, ex);
        goto out;
    }
    if (json_array_size(data) != k) {
        r = fail(h, CX_EFAIL, "embed: %s answered %zu embeddings for %zu inputs", h->shown_url,
                 json_array_size(data), k);
        goto out;
    }
    seen = calloc(k, sizeof *seen);
    if (!seen) {
        r = cx_error_set(CX_ENOMEM, "embed: out of memory");
        goto out;
    }
    int dim = h->base.dim;
    for (size_t j = 0; j < k; j++) {
        json_t *row = json_array_get(data, j);
        json_t *emb = json_object_get(row, "embedding");
        json_t *jidx = json_object_get(row, "index");
        size_t idx = j;
        if (jidx) {
            if (!json_is_integer(jidx) || json_integer_value(jidx) < 0 ||
                (uint64_t)json_integer_value(jidx) >= k) {
                r = fail(h, CX_EFAIL, "embed: %s answered an embedding with a bad index",
                         h->shown_url);
                goto out;
            }
            idx = (size_t)json_integer_value(jidx);
        }
        if (seen[idx]) {
            r = fail(h, CX_EFAIL, "embed: %s answered index %zu twice", h->shown_url, idx);
            goto out;
        }
        seen[idx] = true;
        if (!json_is_array(emb)) {
            r = fail(h, CX_EFAIL, "embed: %s answered an item without an \"embedding\" array",
                     h->shown_url);
            goto out;
        }
        size_t d = json_array_size(emb);
        if (dim == 0) {
            if (d < 1 || d > CX_EMBED_MAX_DIM) {
                r = fail(h, CX_EFAIL, "embed: %s answered %zu dimensions (supported: 1..%d)",
                         h->shown_url, d, CX_EMBED_MAX_DIM);
                goto out;
            }
            dim = (int)d;
        }
        if (d != (size_t)dim) {
            r = fail(h, CX_EFAIL,
                     "embed: %s answered %zu dimensions for model %s, expected %d (check the "
                     "configured dimension)",
                     h->shown_url, d, h->model, dim);
            goto out;
        }
        size_t stride = h->base.dim ? (size_t)h->base.dim : CX_EMBED_MAX_DIM;
        float *v = out + pos[idx] * stride;
        for (size_t i = 0; i < d; i++) {
            json_t *x = json_array_get(emb, i);
            double f = json_number_value(x);
            if (!json_is_number(x) || !isfinite(f) || fabs(f) > FLT_MAX) {
                r = fail(h, CX_EFAIL, "embed: %s answered a value that is not a finite number",
                         h->shown_url);
                goto out;
            }
            v[i] = (float)f;
        }
        cx_embed_normalize(v, dim);
    }
    if (h->base.dim == 0)
        h->base.dim = dim;
    r = 0;
out:
    free(seen);
    json_decref(root);
    return r;
}

/* --- one request, with retries ------------------------------------- */

static int add_text(json_t *arr, const char *s) {
    size_t n = strlen(s);
    n = cx_utf8_cut(s, n, MAX_TEXT_BYTES);
    json_t *str = json_stringn(s, n);
    if (!str) { /* invalid UTF-8: each bad byte becomes U+FFFD */
        cx_buf c;
        cx_buf_init(&c, 3 * n);
        int r = cx_utf8_sanitize(s, n, &c);
        str = r ? NULL : json_stringn(cx_buf_str(&c), c.len);
        cx_buf_free(&c);
        if (!str)
            return CX_ENOMEM;
    }
    return json_array_append_new(arr, str) == 0 ? 0 : CX_ENOMEM;
}

static char *build_body(http *h, const char *const *texts, const size_t *which, size_t k) {
    char *body = NULL;
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr || json_object_set_new(root, "model", json_string(h->model)) != 0)
        goto out;
    for (size_t j = 0; j < k; j++)
        if (add_text(arr, which ? texts[which[j]] : texts[j]) != 0)
            goto out;
    if (json_object_set(root, "input", arr) != 0)
        goto out;
    body = json_dumps(root, JSON_COMPACT);
out:
    json_decref(arr);
    json_decref(root);
    return body;
}

static bool http_ok(long status) {
    return status >= 200 && status < 300;
}

static bool retryable(long status) {
    return status == 429 || status >= 500;
}

/* Sends texts[which[0..k)] and writes the rows to out + pos[j] * stride.
 * Sets h->fault when a failure is the service's (for the breaker). */
static int post(http *h, const char *const *texts, const size_t *which, size_t k,
                const size_t *pos, float *out, int retries) {
    int r = CX_EIO;
    char *body = build_body(h, texts, which, k);
    if (!body)
        return cx_error_set(CX_ENOMEM, "embed: out of memory building the request");
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));

    h->fault = false;
    int attempts = 0;
    for (int attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
            long wait = backoff_ms(h, attempt);
            if (h->retry_after_ms > wait)
                wait = h->retry_after_ms;
            cx_clock_sleep_ms((uint64_t)wait);
        }
        attempts++;
        cx_http_body_reset(&h->resp);
        h->retry_after_ms = -1;
        h->curl_err[0] = '\0';
        CURLcode cc = curl_easy_perform(h->curl);
        long status = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);

        if (cc == CURLE_OK && http_ok(status)) {
            r = parse_answer(h, k, pos, out);
            h->fault = r == CX_EFAIL;
            goto out;
        }
        if (cc != CURLE_OK) {
            if (h->resp.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
                r = fail(h, CX_EFAIL, "embed: %s answered more than %u MiB", h->shown_url,
                         MAX_RESPONSE >> 20);
                h->fault = true;
                goto out;
            }
            char why[CURL_ERROR_SIZE];
            const char *src = h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc);
            scrub_into(h, why, sizeof why, src, strlen(src), true);
            if (cc == CURLE_OPERATION_TIMEDOUT)
                r = fail(h, CX_EIO, "embed: %s timed out (timeout %d ms, %d attempt%s): %s",
                         h->shown_url, h->timeout_ms, attempts, attempts == 1 ? "" : "s", why);
            else
                r = fail(h, CX_EIO, "embed: POST %s failed (%d attempt%s): %s", h->shown_url,
                         attempts, attempts == 1 ? "" : "s", why);
            h->fault = true;
            continue;
        }
        char ex[EXCERPT];
        excerpt(h, ex);
        r = fail(h, CX_EIO, "embed: %s answered HTTP %ld (%d attempt%s): %s", h->shown_url,
                 status, attempts, attempts == 1 ? "" : "s", ex);
        if (!retryable(status)) {
            h->fault = false; /* the service is up; this request is wrong */
            goto out;
        }
        h->fault = true;
        if (h->retry_after_ms > RETRY_AFTER_MAX_MS) {
            r = fail(h, CX_EIO, "embed: %s answered HTTP %ld and asks to retry after %ld s: %s",
                     h->shown_url, status, h->retry_after_ms / 1000, ex);
            goto out;
        }
    }
out:
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    free(body);
    return r;
}

/* --- the breaker around a call ------------------------------------- */

static bool breaker_open(http *h, int *retries) {
    if (h->failures < h->breaker_failures)
        return false;
    uint64_t now = cx_clock_mono_ns();
    if (now < h->open_until) {
        uint64_t left = (h->open_until - now) / 1000000u;
        cx_error_set(CX_EBUSY,
                     "embed: embedding service unavailable; retrying after %llu.%01llu s "
                     "(last error: %s)",
                     (unsigned long long)(left / 1000), (unsigned long long)(left % 1000 / 100),
                     h->last_error);
        return true;
    }
    *retries = 0; /* half open: one trial request */
    return false;
}

static void breaker_record(http *h, int r) {
    if (r == 0) {
        h->failures = 0;
        return;
    }
    if (!h->fault)
        return;
    if (h->failures < h->breaker_failures)
        h->failures++;
    if (h->failures >= h->breaker_failures)
        h->open_until = cx_clock_mono_ns() + (uint64_t)h->breaker_cooldown_ms * 1000000u;
}

static bool blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v')
            return false;
    return true;
}

static int http_batch(cx_embedder *e, const char *const *texts, size_t n, float *out) {
    http *h = (http *)e;
    int retries = h->retries;
    if (breaker_open(h, &retries))
        return CX_EBUSY;

    size_t dim = (size_t)h->base.dim;
    size_t which[CX_EMBED_MAX_BATCH], m = 0;
    for (size_t i = 0; i < n; i++) {
        if (blank(texts[i]))
            memset(out + i * dim, 0, dim * sizeof *out);
        else
            which[m++] = i;
    }
    if (m == 0)
        return 0; /* nothing to send: neither a success nor a failure of the service */
    int r = 0;
    for (size_t j = 0; j < m && r == 0; j += (size_t)h->max_batch) {
        size_t k = m - j < (size_t)h->max_batch ? m - j : (size_t)h->max_batch;
        r = post(h, texts, which + j, k, which + j, out, retries);
    }
    if (r == CX_ENOMEM)
        return r;
    breaker_record(h, r);
    return r;
}

static int http_probe(cx_embedder *e) {
    http *h = (http *)e;
    int retries = h->retries;
    if (breaker_open(h, &retries))
        return CX_EBUSY;
    float *v = malloc(CX_EMBED_MAX_DIM * sizeof *v);
    if (!v)
        return cx_error_set(CX_ENOMEM, "embed: out of memory");
    static const char *const probe[1] = {PROBE_TEXT};
    static const size_t zero[1] = {0};
    int r = post(h, probe, NULL, 1, zero, v, retries);
    free(v);
    if (r != CX_ENOMEM)
        breaker_record(h, r);
    return r;
}

static void http_free(cx_embedder *e) {
    http *h = (http *)e;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    cx_http_body_free(&h->resp);
    free(h->url);
    free(h->shown_url);
    free(h->url_secret);
    free(h->model);
    free(h->api_key);
    free(h);
}

static const cx_embed_ops http_ops = {
    .batch = http_batch,
    .probe = http_probe,
    .free = http_free,
};

/* --- construction --------------------------------------------------- */

static int pick(int v, int def, int lo, int hi, const char *name, int *out) {
    if (v == 0)
        v = def;
    if (v < lo || v > hi)
        return cx_error_set(CX_EINVAL, "embed: %s %d is out of range (%d..%d)", name, v, lo, hi);
    *out = v;
    return 0;
}

/* Sets url, shown_url and url_secret from base_url. */
static int make_urls(http *h, const char *base) {
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    size_t scheme = strncasecmp(base, "https://", 8) == 0 ? 8
                    : strncasecmp(base, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || n <= scheme || n > MAX_URL)
        return cx_error_set(CX_EINVAL,
                            "embed: base_url must be an http:// or https:// URL (at most %d "
                            "bytes)",
                            MAX_URL);
    const char *suffix = n >= 3 && memcmp(base + n - 3, "/v1", 3) == 0 ? "/embeddings"
                                                                        : "/v1/embeddings";
    size_t len = n + strlen(suffix) + 1;
    h->url = malloc(len);
    h->shown_url = malloc(len);
    if (!h->url || !h->shown_url)
        return cx_error_set(CX_ENOMEM, "embed: out of memory");
    snprintf(h->url, len, "%.*s%s", (int)n, base, suffix);

    /* user:password@ in the authority is a secret: shown without it */
    size_t auth_end = scheme;
    while (auth_end < n && base[auth_end] != '/' && base[auth_end] != '?' && base[auth_end] != '#')
        auth_end++;
    const char *at = memrchr(base + scheme, '@', auth_end - scheme);
    if (at) {
        size_t ul = (size_t)(at - (base + scheme));
        h->url_secret = strndup(base + scheme, ul);
        if (!h->url_secret)
            return cx_error_set(CX_ENOMEM, "embed: out of memory");
        snprintf(h->shown_url, len, "%.*s%.*s%s", (int)scheme, base,
                 (int)(n - (size_t)(at + 1 - base)), at + 1, suffix);
        if (!*h->url_secret) {
            free(h->url_secret);
            h->url_secret = NULL;
        }
    } else {
        snprintf(h->shown_url, len, "%s", h->url);
    }
    return 0;
}

static int setup_curl(http *h, const char *ca_file) {
    char auth[1024];
    h->curl = curl_easy_init();
    if (!h->curl)
        return cx_error_set(CX_ENOMEM, "embed: cannot create a curl handle");
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *l = h->headers ? curl_slist_append(h->headers, "Accept: application/json") : NULL;
    l = l ? curl_slist_append(l, "Expect:") : NULL; /* no 100-continue round trip */
    if (l && h->api_key) {
        if ((size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->api_key) >= sizeof auth)
            return cx_error_set(CX_EINVAL, "embed: api_key is too long");
        l = curl_slist_append(l, auth);
        explicit_bzero(auth, sizeof auth);
    }
    if (!l)
        return cx_error_set(CX_ENOMEM, "embed: out of memory");

    CURL *c = h->curl;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                      \
    do {                                                                                   \
        if (cc == CURLE_OK)                                                                \
            cc = curl_easy_setopt(c, opt, val);                                            \
    } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_HTTPHEADER, h->headers);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_WRITEFUNCTION, cx_http_body_write);
    SET(CURLOPT_WRITEDATA, &h->resp);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, h);
    SET(CURLOPT_ERRORBUFFER, h->curl_err);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        (long)(h->timeout_ms < MAX_CONNECT_TIMEOUT_MS ? h->timeout_ms : MAX_CONNECT_TIMEOUT_MS));
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_RESPONSE);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_USERAGENT, "cortex-embed/1");
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (ca_file)
        SET(CURLOPT_CAINFO, ca_file);
#undef SET
    if (cc != CURLE_OK)
        return cx_error_set(cc == CURLE_OUT_OF_MEMORY ? CX_ENOMEM : CX_EINVAL,
                            "embed: cannot configure curl: %s", curl_easy_strerror(cc));
    return 0;
}

int cx_embed_http_new(cx_embedder **out, const cx_embed_http_config *cfg) {
    int r;
    http *h = NULL;
    if (!out || !cfg)
        return cx_error_set(CX_EINVAL, "embed: out and cfg must not be NULL");
    if (!cfg->base_url || !cfg->model || !*cfg->model)
        return cx_error_set(CX_EINVAL, "embed: the http embedder needs base_url and model");
    if ((r = cx_curl_load()) != 0)
        return cx_error_set(r, "embed: %s", cx_error_last());

    h = calloc(1, sizeof *h);
    if (!h)
        return cx_error_set(CX_ENOMEM, "embed: out of memory");
    h->base.ops = &http_ops;
    h->base.local = false;
    h->retry_after_ms = -1;
    cx_http_body_init(&h->resp, MAX_RESPONSE);
    h->rng = cx_clock_mono_ns() ^ (uint64_t)(uintptr_t)h ^ 0x9e3779b97f4a7c15ull;
    if (!h->rng)
        h->rng = 1;

    if ((r = pick(cfg->dim, 0, 0, CX_EMBED_MAX_DIM, "dim", &h->base.dim)) < 0 ||
        (r = pick(cfg->timeout_ms, DEFAULT_TIMEOUT_MS, 1, 600000, "timeout_ms", &h->timeout_ms)) < 0 ||
        (r = pick(cfg->max_batch, DEFAULT_MAX_BATCH, 1, CX_EMBED_MAX_BATCH, "max_batch",
                  &h->max_batch)) < 0 ||
        (r = pick(cfg->breaker_failures, DEFAULT_BREAKER_FAILURES, 1, 1000, "breaker_failures",
                  &h->breaker_failures)) < 0 ||
        (r = pick(cfg->breaker_cooldown_ms, DEFAULT_BREAKER_COOLDOWN_MS, 1, 86400000,
                  "breaker_cooldown_ms", &h->breaker_cooldown_ms)) < 0)
        goto fail;
    if (cfg->retries < -1 || cfg->retries > MAX_RETRIES) {
        r = cx_error_set(CX_EINVAL, "embed: retries %d is out of range (-1..%d)", cfg->retries,
                         MAX_RETRIES);
        goto fail;
    }
    h->retries = cfg->retries == 0 ? DEFAULT_RETRIES : cfg->retries < 0 ? 0 : cfg->retries;

    if ((size_t)snprintf(h->base.model_id, sizeof h->base.model_id, "http:%s", cfg->model) >=
        sizeof h->base.model_id) {
        r = cx_error_set(CX_EINVAL, "embed: model name is too long");
        goto fail;
    }
    h->model = strdup(cfg->model);
    h->api_key = cfg->api_key && *cfg->api_key ? strdup(cfg->api_key) : NULL;
    if (!h->model || (cfg->api_key && *cfg->api_key && !h->api_key)) {
        r = cx_error_set(CX_ENOMEM, "embed: out of memory");
        goto fail;
    }
    if ((r = make_urls(h, cfg->base_url)) < 0 || (r = setup_curl(h, cfg->ca_file)) < 0)
        goto fail;
    *out = &h->base;
    return 0;
fail:
    http_free(&h->base);
    return r;
}
