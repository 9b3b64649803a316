/* SPDX-License-Identifier: Apache-2.0 */
/* The sync protocol's HTTP client over libcurl (see client.h). */
#include "sync/client.h"

#include "net/curlapi.h"
#include "net/httpio.h"
#include "proto/wire.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define CONNECT_TIMEOUT_S 10
#define DEFAULT_TIMEOUT_S 120

struct cx_client {
    CURL *curl;
    char *base;
    char *auth; /* "Authorization: Bearer …" */
    char *workspace; /* "X-Cortex-Workspace: …" on pulls, or NULL */
    char *ca_file;
    long timeout_s;
    const atomic_int *abort_flag;
};

typedef struct buf {
    cx_http_body body;
    long retry_after; /* seconds, from Retry-After */
} buf;


void cx_client_answer_clear(cx_client_answer *a) {
    if (!a)
        return;
    json_decref(a->json);
    *a = (cx_client_answer){0};
}

int cx_client_new(cx_client **out, const cx_upstream *u, const char *key,
                  const atomic_int *abort_flag) {
    int r = cx_upstream_check_url(u->url);
    if (r)
        return r;
    if ((r = cx_curl_load()) != 0)
        return r;
    cx_client *c = calloc(1, sizeof *c);
    if (!c)
        return CX_ENOMEM;
    size_t n = strlen(u->url);
    while (n > 0 && u->url[n - 1] == '/')
        n--;
    c->base = strndup(u->url, n);
    c->ca_file = u->ca_file ? strdup(u->ca_file) : NULL;
    c->timeout_s = u->timeout_s > 0 ? u->timeout_s : DEFAULT_TIMEOUT_S;
    c->abort_flag = abort_flag;
    if (key) {
        size_t cap = strlen(key) + 32;
        if ((c->auth = malloc(cap)))
            snprintf(c->auth, cap, "Authorization: Bearer %s", key);
    }
    c->curl = curl_easy_init();
    if (!c->base || (u->ca_file && !c->ca_file) || (key && !c->auth) || !c->curl) {
        cx_client_free(c);
        return CX_ENOMEM;
    }
    *out = c;
    return 0;
}

#define WORKSPACE_HEADER "X-Cortex-Workspace: "
#define WORKSPACE_MAX 64

int cx_client_set_workspace(cx_client *c, const char *name) {
    free(c->workspace);
    c->workspace = NULL;
    if (!name || !*name)
        return 0;
    size_t n = strlen(name), pre = strlen(WORKSPACE_HEADER);
    if (n > WORKSPACE_MAX)
        n = WORKSPACE_MAX;
    char *h = malloc(pre + n + 1);
    if (!h)
        return CX_ENOMEM;
    memcpy(h, WORKSPACE_HEADER, pre);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-';
        h[pre + i] = ok ? ch : '-';
    }
    h[pre + n] = '\0';
    c->workspace = h;
    return 0;
}

void cx_client_free(cx_client *c) {
    if (!c)
        return;
    free(c->workspace);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        free(c->auth);
    }
    free(c->ca_file);
    free(c);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    buf *b = ud;
    size_t n = size * nmemb;
    long ms = cx_http_retry_after_ms(ptr, n);
    if (ms >= 0)
        b->retry_after = (ms + 999) / 1000;
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    const cx_client *c = ud;
    return c->abort_flag && atomic_load(c->abort_flag) ? 1 : 0;
}

/* A download's body: streamed to the sink while the status is 200, else
 * kept (capped) as the error answer. */
typedef struct sink {
    CURL *curl;
    cx_client_sink_fn fn;
    void *ud;
    cx_http_body *err;
    int rc; /* the sink's code when it refused a chunk, else 0 */
} sink;

static size_t on_sink(char *ptr, size_t size, size_t nmemb, void *ud) {
    sink *k = ud;
    long status = 0;
    curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return cx_http_body_write(ptr, size, nmemb, k->err);
    if ((k->rc = k->fn(k->ud, ptr, size * nmemb)) != 0)
        return 0;
    return size * nmemb;
}

static int perform(cx_client *c, const char *method, const char *path, const void *body,
                   size_t len, const char *ctype, sink *k, cx_client_answer *ans);

int cx_client_request(cx_client *c, const char *method, const char *path, const void *body,
                      size_t len, const char *ctype, cx_client_answer *ans) {
    return perform(c, method, path, body, len, ctype, NULL, ans);
}

int cx_client_download(cx_client *c, const char *path, cx_client_sink_fn fn, void *ud,
                       cx_client_answer *ans) {
    sink k = {.curl = c->curl, .fn = fn, .ud = ud};
    return perform(c, "GET", path, NULL, 0, NULL, &k, ans);
}

static int perform(cx_client *c, const char *method, const char *path, const void *body,
                   size_t len, const char *ctype, sink *k, cx_client_answer *ans) {
    *ans = (cx_client_answer){0};
    if (c->abort_flag && atomic_load(c->abort_flag))
        return cx_error_set(CX_ECANCELED, "stopping");
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    char ct[128];
    struct curl_slist *hdr = NULL, *h2;
    buf b = {.retry_after = 0};
    int r = 0;
    if (!url)
        return CX_ENOMEM;
    /* a download's error answer is small: the blob itself goes to the sink */
    cx_http_body_init(&b.body, k ? CX_CLIENT_MAX_ERROR : CX_CLIENT_MAX_ANSWER);
    if (k)
        k->err = &b.body;
    snprintf(url, ulen, "%s%s", c->base, path);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    if (c->auth && (h2 = curl_slist_append(hdr, c->auth)))
        hdr = h2;
    if ((h2 = curl_slist_append(hdr, "Accept: application/json")))
        hdr = h2;
    if (c->workspace && strncmp(path, CX_ROUTE_PULL, strlen(CX_ROUTE_PULL)) == 0 &&
        (h2 = curl_slist_append(hdr, c->workspace)))
        hdr = h2;
    if ((h2 = curl_slist_append(hdr, "Expect:")))
        hdr = h2;
    if (body && (h2 = curl_slist_append(hdr, ct)))
        hdr = h2;
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (k) {
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sink);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    } else {
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cx_http_body_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b.body);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (k)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CX_CLIENT_MAX_ANSWER);
    if (strcmp(method, "GET") != 0) {
        if (strcmp(method, "POST") == 0)
            curl_easy_setopt(h, CURLOPT_POST, 1L);
        else
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        r = cx_error_set(CX_ECANCELED, "request to %s aborted: stopping", c->base);
        goto out;
    }
    if (k && k->rc) {
        r = k->rc; /* with the sink's own detail */
        goto out;
    }
    if (b.body.too_big) {
        r = cx_error_set(CX_ELIMIT, "the answer of %s%s is larger than %u bytes", c->base, path,
                         CX_CLIENT_MAX_ANSWER);
        goto out;
    }
    if (cc == CURLE_FILESIZE_EXCEEDED) { /* a download that says it is past the cap */
        r = cx_error_set(CX_ELIMIT, "the answer of %s%s is larger than %u bytes", c->base, path,
                         CX_CLIENT_MAX_ANSWER);
        goto out;
    }
    if (cc != CURLE_OK) {
        r = cx_error_set(CX_EIO, "%s %s%s: %s", method, c->base, path, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    ans->retry_after_s = b.retry_after;
    if (b.body.buf.len > 0)
        ans->json = json_loadb(cx_buf_str(&b.body.buf), b.body.buf.len, JSON_REJECT_DUPLICATES,
                               NULL);
out:
    curl_slist_free_all(hdr);
    cx_http_body_free(&b.body);
    free(url);
    return r;
}

int cx_client_json(cx_client *c, const char *method, const char *path, const json_t *body,
                   cx_client_answer *ans) {
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return CX_ENOMEM;
    int r = cx_client_request(c, method, path, text, strlen(text), NULL, ans);
    free(text);
    return r;
}

const char *cx_client_error_text(const cx_client_answer *ans) {
    const char *m = json_string_value(
        json_object_get(json_object_get(ans->json, "error"), "message"));
    if (m)
        return m;
    switch (ans->status) {
    case 401: return "the key was refused (401); run `cortex login`";
    case 403: return "the key's role may not do this (403)";
    case 404: return "not found (404)";
    case 410: return "the cursor is too old (410)";
    case 413: return "too large (413)";
    case 429: return "rate limited (429)";
    default: return ans->status >= 500 ? "the core failed (5xx)" : "unexpected answer";
    }
}

unsigned long cx_client_backoff_ms(unsigned attempt, unsigned long base_ms, unsigned long cap_ms,
                                   long retry_after_s) {
    unsigned long ceil = base_ms;
    for (unsigned i = 0; i < attempt && ceil < cap_ms; i++)
        ceil *= 2;
    if (ceil > cap_ms)
        ceil = cap_ms;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)(uintptr_t)&rnd ^ attempt * 2654435761u;
    unsigned long d = ceil ? (unsigned long)rnd % (ceil + 1) : 0;
    unsigned long ra = retry_after_s > 0 ? (unsigned long)retry_after_s * 1000 : 0;
    return d > ra ? d : ra;
}
