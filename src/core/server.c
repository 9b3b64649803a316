/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP front of cortex-core (see server.h). libmicrohttpd calls
 * on_request several times per request: once with the headers (check the
 * framing, route, authenticate, rate-limit, check Content-Length: a
 * refusal is answered there without reading the body), then with each
 * piece of the body (gathered up to the endpoint's cap), then once more to
 * answer. Metrics and the token buckets (rate.c) live here because only this layer
 * sees requests.
 *
 * Connections are accounted here too: libmicrohttpd caps them per address
 * and in total and closes idle ones, but knows no deadline for a request
 * that trickles in a byte at a time. Each connection's phase (waiting for
 * headers, reading a body, answering) and the time it entered it are kept
 * in a list; a sweeper thread shuts down the socket of one past its
 * deadline, and libmicrohttpd then closes it as a client that went away.
 * The list entry is removed in the connection-closed notification, which
 * libmicrohttpd makes before it closes the descriptor, so the sweeper
 * never touches a descriptor that may have been reused.
 *
 * A pull page is the one large answer: it is built within its byte budget
 * (cx_feed_pull), then sent from that one buffer as the client takes it
 * and freed when the connection is done with it. The bytes of pages held
 * for clients are capped (cfg.page_memory: past it a large page is
 * answered 503 with Retry-After), and a client that takes a page slower
 * than cfg.send_min_rate (after a grace) is dropped by a second sweeper
 * (page_sweep), so slow readers cannot make the core's memory grow. */
#include "core/server.h"

#include "core/rate.h"
#include "core/web.h"

#include "core/views.h"
#include "proto/wire.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <sodium.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

enum { EP_HEALTHZ, EP_INFO, EP_PUSH, EP_PULL, EP_BLOBS_MISSING, EP_BLOB_PUT, EP_BLOB_GET,
       EP_QUEUE, EP_DECISION, EP_ACCEPT, EP_METRICS, EP_WEB, EP_SIGNIN, EP_SESSION, EP_KEYS,
       EP_KEY_REVOKE, EP_OTHER, EP_SEARCH, EP_ITEM, EP_ARTIFACTS, EP_AUDIT, EP_ACTIVITY,
       EP_COUNT };
static const char *const EP_NAMES[EP_COUNT] = {
    "healthz", "info", "sync_push", "sync_pull", "blobs_missing", "blob_put", "blob_get",
    "review_queue", "draft_decision", "artifact_accept", "metrics", "web_asset",
    "session_create", "session", "keys", "key_revoke", "other",
    "search", "item", "artifacts", "audit", "team_activity"};

static const int CODES[] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 410, 413, 429, 500, 503};
#define N_CODES (sizeof CODES / sizeof CODES[0])
static const double BUCKETS[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

/* Rate buckets (rate.c) are keyed "k:<key id>" for a key and
 * "a:<address>" for the refused keys of a client address. */
#define RATE_SLOTS 4096
#define RATE_ID_MAX CX_RATE_ID_MAX

/* A connection's phase, and why it closed (a label of
 * cortex_http_connections_closed_total). */
enum { PH_HEADERS, PH_BODY, PH_ANSWER };
enum { CL_DONE, CL_ABORTED, CL_IDLE, CL_HEADER_DEADLINE, CL_BODY_DEADLINE, CL_BAD_LINE,
       CL_COUNT };
static const char *const CLOSE_NAMES[CL_COUNT] = {
    "done", "aborted", "idle_timeout", "header_deadline", "body_deadline", "bad_request_line"};

typedef struct conn {
    struct conn *prev, *next;
    int fd;
    int phase;
    uint64_t since_ns;    /* when the phase began */
    uint64_t body_bytes;  /* of the request being read */
    unsigned requests;    /* answered in full */
    int shut;             /* 0, or why the core shut the socket down (never CL_DONE) */
    bool aborted, idle;   /* a request ended in error / by the idle timeout */
    char addr[RATE_ID_MAX]; /* "a:<address>", the key of its refused-key bucket */
} conn;

/* libmicrohttpd's own messages (a TLS handshake a client broke off, a
 * reset): at most LOG_BURST lines, then one per LOG_EVERY_S seconds; the
 * rest are counted, and the count logged by the sweeper. */
#define LOG_BURST 10
#define LOG_EVERY_S 6.0
#define SWEEP_MS 200

struct cx_server {
    struct MHD_Daemon *d;
    cx_feed *feed;
    cx_server_config cfg;
    char *cert, *key;
    uint16_t port;
    pthread_mutex_t lock; /* metrics and buckets */
    uint64_t count[EP_COUNT][N_CODES + 1];
    uint64_t hist[EP_COUNT][N_BUCKETS];
    double sum[EP_COUNT];
    uint64_t total[EP_COUNT];
    long ops_applied;
    cx_rate *rate; /* NULL when --rate-limit is 0 */
    double log_tokens;
    uint64_t log_at_ns, log_suppressed, refused;
    /* connections, under conn_lock */
    pthread_mutex_t conn_lock;
    pthread_cond_t wake;
    pthread_t sweeper;
    bool sweeping, stopping;
    conn *conns;
    uint64_t conns_open, conns_total, closed[CL_COUNT];
    size_t page_bytes;                /* pull pages held for clients still reading them */
    uint64_t pages_refused;           /* answered 503: page memory full */
    uint64_t pages_dropped;           /* clients too slow for the send deadline */
    struct page_out *pages;           /* pages being sent, for page_sweep */
    pthread_t page_sweeper;
    bool page_sweeping, page_stopping;
    pthread_cond_t page_wake;         /* with lock: stop page_sweep */
    /* pushes handed to the push threads, under push_lock (see defer_push) */
    pthread_mutex_t push_lock;
    pthread_cond_t push_wake;
    struct req *push_head, *push_tail;
    pthread_t *pushers;
    unsigned n_pushers;
    uint64_t push_waiting; /* pushes queued or running on a push thread */
    bool push_stopping;
    /* the search index's catch-up, run by the push threads (index_step) */
    bool index_pending;       /* items may wait for the index */
    bool indexing;            /* a push thread is indexing */
    uint64_t index_last_ns;   /* when the last indexing step ended */
    int64_t index_waiting;    /* what the last step left, for /metrics */
};

/* The methods route() tells apart. */
enum { M_GET, M_POST, M_PUT, M_DELETE, M_OTHER };

typedef struct req {
    int ep;
    int method;
    uint64_t t0;
    cx_buf body; /* capped at the endpoint's limit: max_blob or CX_WIRE_MAX_PUSH_BYTES */
    bool too_big, answered;
    char arg[96];
    long n;
    cx_principal who;
    /* a browser session (web.c): set when the request was authenticated
     * by its cookie rather than a Bearer key */
    bool by_cookie;
    char token[CX_WEB_TOKEN_LEN + 1];
    cx_web_session sess;
    char set_cookie[160]; /* a Set-Cookie header to send, or "" */
    /* a push run by a push thread: the connection is suspended until done */
    struct MHD_Connection *conn;
    struct req *push_next;
    bool deferred, done;
    int result;
    long applied;
    json_t *out;
    char err[512]; /* the push thread's cx_error_last() */
} req;

static conn *conn_of(struct MHD_Connection *c);
static void conn_phase(cx_server *h, conn *k, int ph);

/* --- responses and metrics ----------------------------------------------- */

static void record(cx_server *h, const req *q, unsigned status) {
    double secs = (double)(cx_clock_mono_ns() - q->t0) / 1e9;
    size_t ci = N_CODES;
    for (size_t i = 0; i < N_CODES; i++)
        if ((unsigned)CODES[i] == status)
            ci = i;
    pthread_mutex_lock(&h->lock);
    h->count[q->ep][ci]++;
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (secs <= BUCKETS[i])
            h->hist[q->ep][i]++;
    h->sum[q->ep] += secs;
    h->total[q->ep]++;
    pthread_mutex_unlock(&h->lock);
}

/* The one place every response is queued: it gets the security headers
 * of web.h (CSP, nosniff, no referrer, no framing), its Content-Type (NULL:
 * none, as for 204 and 304) and its Cache-Control (`cache`: NULL means
 * no-store, what every answer but an asset gets), and the Set-Cookie a
 * sign-in or sign-out earned (q->set_cookie). Destroys resp. */
static enum MHD_Result queue(cx_server *h, struct MHD_Connection *c, req *q, unsigned status,
                             struct MHD_Response *resp, const char *ctype, const char *cache) {
    for (const cx_web_header *w = cx_web_security_headers; w->name; w++)
        MHD_add_response_header(resp, w->name, w->value);
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache ? cache : "no-store");
    if (q->set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, q->set_cookie);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    conn_phase(h, conn_of(c), PH_ANSWER);
    q->answered = true;
    record(h, q, status);
    return ret;
}

/* Queues a response that owns `body` (malloc'd, len bytes). */
static enum MHD_Result send_body(cx_server *h, struct MHD_Connection *c, req *q, unsigned status,
                                 const char *ctype, void *body, size_t len, int retry_after) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    return queue(h, c, q, status, resp, ctype, NULL);
}

/* An answer without a body (204). */
static enum MHD_Result send_empty(cx_server *h, struct MHD_Connection *c, req *q,
                                  unsigned status) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    return queue(h, c, q, status, resp, NULL, NULL);
}

/* Serves one file of the app from the binary: ETag (a hash of the
 * content), Cache-Control no-cache (the browser asks again, and a matching
 * If-None-Match is answered 304 without the body). HEAD gets the same
 * headers; libmicrohttpd leaves the body out. */
static enum MHD_Result send_asset(cx_server *h, struct MHD_Connection *c, req *q,
                                  const cx_web_asset *a) {
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool same = inm && strcmp(inm, a->etag) == 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        same ? 0 : a->len, same ? NULL : (void *)(uintptr_t)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
    return queue(h, c, q, same ? 304 : 200, resp, same ? NULL : a->content_type, "no-cache");
}

/* Takes the reference to `body`. */
static enum MHD_Result send_json(cx_server *h, struct MHD_Connection *c, req *q, unsigned status,
                                 json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return MHD_NO;
    return send_body(h, c, q, status, "application/json", text, strlen(text), 0);
}

/* --- pull pages: memory bounded however slowly clients read ----------- */

static enum MHD_Result send_error_ra(cx_server *h, struct MHD_Connection *c, req *q,
                                     unsigned status, const char *code, const char *msg,
                                     int retry_after);

/* Pages up to this size are always admitted: they are what a sidecar that
 * is up to date pulls, and the connection limit bounds their sum. */
#define PAGE_SMALL (64u * 1024)
/* Seconds every page may take on top of its size / send_min_rate. */
#define SEND_GRACE_S 10
/* Bytes MHD asks page_read for at a time (its one buffer per response). */
#define PAGE_BLOCK (32u * 1024)
#define DEFAULT_PAGE_MEMORY (64u * 1024 * 1024)
#define DEFAULT_SEND_MIN_RATE (64.0 * 1024)

/* A page being sent: MHD reads it piece by piece as the socket takes it
 * and frees it (page_done) when the connection is done with the response,
 * however that ends (MHD frees a response before it closes its socket);
 * until then its bytes count in h->page_bytes and it is on h->pages. */
typedef struct page_out {
    cx_server *h;
    char *text;
    size_t len;
    uint64_t deadline_ns;
    int fd;   /* the connection's socket, for the sweeper */
    bool cut; /* past its deadline: counted, the socket shut down */
    struct page_out *prev, *next;
} page_out;

/* Counts a page past its deadline once, and makes the close of its socket
 * a reset: the kernel then drops what it still queues for the client
 * instead of trickling it out after the core has let go. Under h->lock. */
static bool page_expire(page_out *po) {
    if (po->cut)
        return false;
    po->cut = true;
    po->h->pages_dropped++;
    if (po->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(po->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    return true;
}

static ssize_t page_read(void *cls, uint64_t pos, char *buf, size_t max) {
    page_out *po = cls;
    if (pos >= po->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (cx_clock_mono_ns() > po->deadline_ns) { /* a client that trickles: close it */
        pthread_mutex_lock(&po->h->lock);
        page_expire(po);
        pthread_mutex_unlock(&po->h->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = po->len - pos < max ? (size_t)(po->len - pos) : max;
    memcpy(buf, po->text + pos, n);
    return (ssize_t)n;
}

static void page_done(void *cls) {
    page_out *po = cls;
    cx_server *h = po->h;
    pthread_mutex_lock(&h->lock);
    h->page_bytes -= po->len;
    if (po->prev)
        po->prev->next = po->next;
    else if (h->pages == po)
        h->pages = po->next;
    if (po->next)
        po->next->prev = po->prev;
    pthread_mutex_unlock(&h->lock);
    free(po->text);
    free(po);
}

/* The send deadline for a client that does not read at all, or so slowly
 * that the kernel's socket buffer never empties enough for page_read to be
 * called again: once a second, the socket of each page past its deadline is
 * shut down, so that MHD closes the connection and frees the page. */
static void *page_sweep(void *arg) {
    cx_server *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->page_stopping) {
        uint64_t now = cx_clock_mono_ns();
        for (page_out *po = h->pages; po; po = po->next)
            if (now > po->deadline_ns && po->fd >= 0 && page_expire(po))
                shutdown(po->fd, SHUT_RDWR);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&h->page_wake, &h->lock, &ts);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Sends a pull page; takes `text` (malloc'd, len bytes). A page that would
 * take the pages held past cfg.page_memory is answered 503 + Retry-After
 * instead (unless it is small, or no other page is held: one page always
 * goes). */
static enum MHD_Result send_page(cx_server *h, struct MHD_Connection *c, req *q, char *text,
                                 size_t len) {
    pthread_mutex_lock(&h->lock);
    bool admit = len <= PAGE_SMALL || h->page_bytes == 0 ||
                 h->page_bytes + len <= h->cfg.page_memory;
    if (admit)
        h->page_bytes += len;
    else
        h->pages_refused++;
    pthread_mutex_unlock(&h->lock);
    if (!admit) {
        free(text);
        return send_error_ra(h, c, q, 503, "unavailable",
                             "the core is sending as many pull pages as it holds; retry", 2);
    }
    page_out *po = malloc(sizeof *po);
    if (!po) {
        pthread_mutex_lock(&h->lock);
        h->page_bytes -= len;
        pthread_mutex_unlock(&h->lock);
        free(text);
        return MHD_NO;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    *po = (page_out){.h = h, .text = text, .len = len, .fd = ci ? ci->connect_fd : -1};
    double secs = SEND_GRACE_S + (double)len / h->cfg.send_min_rate;
    po->deadline_ns = cx_clock_mono_ns() + (uint64_t)(secs * 1e9);
    pthread_mutex_lock(&h->lock);
    po->next = h->pages;
    if (h->pages)
        h->pages->prev = po;
    h->pages = po;
    pthread_mutex_unlock(&h->lock);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, PAGE_BLOCK, page_read, po, page_done);
    if (!resp) {
        page_done(po);
        return MHD_NO;
    }
    return queue(h, c, q, 200, resp, "application/json", NULL);
}

static enum MHD_Result send_error_ra(cx_server *h, struct MHD_Connection *c, req *q,
                                     unsigned status, const char *code, const char *msg,
                                     int retry_after) {
    json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!text)
        return MHD_NO;
    return send_body(h, c, q, status, "application/json", text, strlen(text), retry_after);
}

static enum MHD_Result send_error(cx_server *h, struct MHD_Connection *c, req *q, unsigned status,
                                  const char *code, const char *msg) {
    return send_error_ra(h, c, q, status, code, msg, 0);
}

/* The one mapping from CX_E… codes to HTTP. */
static enum MHD_Result send_failure(cx_server *h, struct MHD_Connection *c, req *q, int r) {
    const char *msg = cx_error_last();
    switch (r) {
    case CX_EINVAL: return send_error(h, c, q, 400, "bad_request", msg);
    case CX_ENOTFOUND: return send_error(h, c, q, 404, "not_found", msg);
    case CX_ECONFLICT: return send_error(h, c, q, 409, "conflict", msg);
    case CX_ELIMIT: return send_error(h, c, q, 413, "too_large", msg);
    case CX_EFORBIDDEN: return send_error(h, c, q, 403, "forbidden", msg);
    case CX_EGONE: return send_error(h, c, q, 410, "gone", msg);
    case CX_EBUSY:
    case CX_ERETRY:
        return send_error_ra(h, c, q, 503, "unavailable", "the store is busy; retry", 1);
    default:
        log_warn("event=request_failed endpoint=%s code=%d detail=\"%s\"", EP_NAMES[q->ep], r, msg);
        return send_error(h, c, q, 500, "internal", "internal error; see the server log");
    }
}

/* The metrics text, and the first error appending to it (later appends
 * are skipped). */
typedef struct metrics_buf {
    cx_buf b;
    int err;
} metrics_buf;

__attribute__((format(printf, 2, 3)))
static void bprintf(metrics_buf *m, const char *fmt, ...) {
    if (m->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    m->err = cx_buf_vaddf(&m->b, fmt, ap);
    va_end(ap);
}

static enum MHD_Result send_metrics(cx_server *h, struct MHD_Connection *c, req *q) {
    int64_t depth = 0;
    cx_storage_tx *tx = NULL;
    if (cx_storage_begin(h->feed->st, false, &tx) == 0) {
        if (cx_storage_queue_depth(tx, &depth))
            depth = -1;
        cx_storage_rollback(tx);
    }
    cx_storage_stats db;
    cx_storage_health_info probe;
    cx_storage_stats_get(h->feed->st, &db);
    cx_storage_health(h->feed->st, &probe);
    pthread_mutex_lock(&h->push_lock);
    uint64_t push_waiting = h->push_waiting;
    long long index_waiting = (long long)h->index_waiting;
    pthread_mutex_unlock(&h->push_lock);
    uint64_t open_now, accepted, closed[CL_COUNT];
    pthread_mutex_lock(&h->conn_lock); /* before h->lock, as in sweep() */
    open_now = h->conns_open;
    accepted = h->conns_total;
    memcpy(closed, h->closed, sizeof closed);
    pthread_mutex_unlock(&h->conn_lock);
    metrics_buf b = {.err = 0};
    cx_buf_init(&b.b, 1 << 20); /* a few lines per endpoint and code: far below 1 MiB */
    pthread_mutex_lock(&h->lock);
    bprintf(&b, "# HELP cortex_http_requests_total HTTP requests by endpoint and status code.\n"
                "# TYPE cortex_http_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (size_t i = 0; i <= N_CODES; i++)
            if (h->count[e][i]) {
                char code[8];
                snprintf(code, sizeof code, "%d", i < N_CODES ? CODES[i] : 0);
                bprintf(&b, "cortex_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                        EP_NAMES[e], i < N_CODES ? code : "other",
                        (unsigned long long)h->count[e][i]);
            }
    bprintf(&b, "# HELP cortex_http_request_duration_seconds Time to answer, by endpoint.\n"
                "# TYPE cortex_http_request_duration_seconds histogram\n");
    for (int e = 0; e < EP_COUNT; e++) {
        if (!h->total[e])
            continue;
        for (size_t i = 0; i < N_BUCKETS; i++)
            bprintf(&b, "cortex_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                    EP_NAMES[e], BUCKETS[i], (unsigned long long)h->hist[e][i]);
        bprintf(&b, "cortex_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                    "cortex_http_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
                    "cortex_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                EP_NAMES[e], (unsigned long long)h->total[e], EP_NAMES[e], h->sum[e],
                EP_NAMES[e], (unsigned long long)h->total[e]);
    }
    bprintf(&b, "# HELP cortex_sync_ops_applied_total Push ops applied.\n"
                "# TYPE cortex_sync_ops_applied_total counter\n"
                "cortex_sync_ops_applied_total %ld\n"
                "# HELP cortex_review_queue_depth Drafts waiting for review, all teams.\n"
                "# TYPE cortex_review_queue_depth gauge\n"
                "cortex_review_queue_depth %lld\n",
            h->ops_applied, (long long)depth);
    bprintf(&b, "# HELP cortex_http_connections_open Connections open now.\n"
                "# TYPE cortex_http_connections_open gauge\n"
                "cortex_http_connections_open %llu\n"
                "# HELP cortex_http_connections_accepted_total Connections accepted.\n"
                "# TYPE cortex_http_connections_accepted_total counter\n"
                "cortex_http_connections_accepted_total %llu\n"
                "# HELP cortex_http_connections_refused_total Connections closed at once for the "
                "per-address or the total connection limit.\n"
                "# TYPE cortex_http_connections_refused_total counter\n"
                "cortex_http_connections_refused_total %llu\n"
                "# HELP cortex_http_connections_closed_total Connections closed, by reason.\n"
                "# TYPE cortex_http_connections_closed_total counter\n",
            (unsigned long long)open_now, (unsigned long long)accepted,
            (unsigned long long)h->refused);
    for (int i = 0; i < CL_COUNT; i++)
        bprintf(&b, "cortex_http_connections_closed_total{reason=\"%s\"} %llu\n", CLOSE_NAMES[i],
                (unsigned long long)closed[i]);
    bprintf(&b, "# HELP cortex_pull_page_bytes Bytes of pull pages held for clients still reading them.\n"
                "# TYPE cortex_pull_page_bytes gauge\n"
                "cortex_pull_page_bytes %zu\n"
                "# HELP cortex_pull_pages_refused_total Pull pages answered 503: the page memory was full.\n"
                "# TYPE cortex_pull_pages_refused_total counter\n"
                "cortex_pull_pages_refused_total %llu\n"
                "# HELP cortex_pull_pages_dropped_total Clients dropped for taking a pull page past its send deadline.\n"
                "# TYPE cortex_pull_pages_dropped_total counter\n"
                "cortex_pull_pages_dropped_total %llu\n",
            h->page_bytes, (unsigned long long)h->pages_refused,
            (unsigned long long)h->pages_dropped);
    pthread_mutex_unlock(&h->lock);
    bprintf(&b, "# HELP cortex_db_up Whether the database answered the scrape's round trip.\n"
                "# TYPE cortex_db_up gauge\n"
                "cortex_db_up{backend=\"%s\"} %d\n"
                "# HELP cortex_db_latency_seconds The scrape's round trip to the database.\n"
                "# TYPE cortex_db_latency_seconds gauge\n"
                "cortex_db_latency_seconds %.6f\n"
                "# HELP cortex_db_pool_connections Connections the pool may hold.\n"
                "# TYPE cortex_db_pool_connections gauge\n"
                "cortex_db_pool_connections %d\n"
                "# HELP cortex_db_pool_in_use Transactions open now.\n"
                "# TYPE cortex_db_pool_in_use gauge\n"
                "cortex_db_pool_in_use %d\n"
                "# HELP cortex_db_transactions_total Transactions begun.\n"
                "# TYPE cortex_db_transactions_total counter\n"
                "cortex_db_transactions_total %llu\n"
                "# HELP cortex_db_transaction_retries_total Transactions run again because a "
                "concurrent one won.\n"
                "# TYPE cortex_db_transaction_retries_total counter\n"
                "cortex_db_transaction_retries_total %llu\n"
                "# HELP cortex_db_transaction_errors_total Transactions that ended in an error.\n"
                "# TYPE cortex_db_transaction_errors_total counter\n"
                "cortex_db_transaction_errors_total %llu\n"
                "# HELP cortex_db_wait_seconds_total Time spent waiting for a connection (or, "
                "in SQLite, the writer's turn).\n"
                "# TYPE cortex_db_wait_seconds_total counter\n"
                "cortex_db_wait_seconds_total %.6f\n"
                "# HELP cortex_db_transaction_seconds_total Time transactions were open.\n"
                "# TYPE cortex_db_transaction_seconds_total counter\n"
                "cortex_db_transaction_seconds_total %.6f\n"
                "# HELP cortex_push_waiting Pushes queued for or running on a push thread.\n"
                "# TYPE cortex_push_waiting gauge\n"
                "cortex_push_waiting %llu\n"
                "# HELP cortex_search_index_pending Items written but not yet in the search "
                "index, as of the last indexing step.\n"
                "# TYPE cortex_search_index_pending gauge\n"
                "cortex_search_index_pending %lld\n",
            db.backend, probe.ok ? 1 : 0, (double)probe.latency_us / 1e6, db.pool_size,
            db.pool_in_use, (unsigned long long)db.tx_total, (unsigned long long)db.tx_retries,
            (unsigned long long)db.tx_errors, (double)db.wait_us / 1e6, (double)db.tx_us / 1e6,
            (unsigned long long)push_waiting, index_waiting);
    size_t len = 0;
    char *text = b.err ? NULL : cx_buf_take(&b.b, &len);
    cx_buf_free(&b.b);
    if (!text)
        return send_error(h, c, q, 500, "internal", "metrics too large");
    return send_body(h, c, q, 200, "text/plain; version=0.0.4", text, len, 0);
}

/* --- routing, auth, rate limits -------------------------------------- */

/* True when the n bytes at s are ULID characters (Crockford base32). */
static bool ulid_segment(const char *s, size_t n) {
    static const char ok[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz";
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(ok, s[i]))
            return false;
    return true;
}

/* The parts of the artifact accept route after CX_ROUTE_ARTIFACTS + id:
 * /v1/artifacts/{id}/versions/{n}/accept. */
#define ROUTE_VERSIONS "/versions/"
#define ROUTE_ACCEPT "/accept"
/* The review app: index.html at /, every file of the asset table here. */
#define ROUTE_APP "/app/"
/* The app's session and the keys API (web.h). */
#define ROUTE_SESSION "/v1/session"
#define ROUTE_KEYS "/v1/keys"
#define ROUTE_REVOKE "/revoke"

/* Sets q->ep and its path arguments; 404/405 or 0. Ids in a path are
 * ULIDs in either case; the protocol layer normalises them. */
static int route(req *q, const char *method, const char *url) {
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0;
    bool del = strcmp(method, "DELETE") == 0;
    q->method = get ? M_GET : post ? M_POST : put ? M_PUT : del ? M_DELETE : M_OTHER;
    /* the review app's session and keys (web.c) */
    if (strcmp(url, ROUTE_SESSION) == 0) {
        q->ep = post ? EP_SIGNIN : EP_SESSION;
        return post || get || del ? 0 : 405;
    }
    if (strcmp(url, ROUTE_KEYS) == 0) {
        q->ep = EP_KEYS;
        return get || post ? 0 : 405;
    }
    size_t klen = strlen(ROUTE_KEYS "/"), rlen = strlen(ROUTE_REVOKE), ul = strlen(url);
    if (ul > klen + rlen && strncmp(url, ROUTE_KEYS "/", klen) == 0 &&
        strcmp(url + ul - rlen, ROUTE_REVOKE) == 0) {
        size_t idlen = ul - klen - rlen;
        if (idlen >= sizeof q->arg || memchr(url + klen, '/', idlen))
            return 404;
        snprintf(q->arg, sizeof q->arg, "%.*s", (int)idlen, url + klen);
        q->ep = EP_KEY_REVOKE;
        return post ? 0 : 405;
    }
    struct { const char *path; int ep; bool ok; } fixed[] = {
        {CX_ROUTE_HEALTHZ, EP_HEALTHZ, get},    {CX_ROUTE_INFO, EP_INFO, get},
        {CX_ROUTE_PUSH, EP_PUSH, post},         {CX_ROUTE_PULL, EP_PULL, get},
        {CX_ROUTE_BLOBS_MISSING, EP_BLOBS_MISSING, post},
        {CX_ROUTE_REVIEW_QUEUE, EP_QUEUE, get}, {"/metrics", EP_METRICS, get},
        {"/", EP_WEB, get},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0) {
            q->ep = fixed[i].ep;
            if (q->ep == EP_WEB)
                snprintf(q->arg, sizeof q->arg, "index.html");
            return fixed[i].ok ? 0 : 405;
        }
    if (strncmp(url, ROUTE_APP, strlen(ROUTE_APP)) == 0) { /* the app's files */
        const char *name = url + strlen(ROUTE_APP);
        if (strlen(name) >= sizeof q->arg || !cx_web_asset_find(name))
            return 404;
        snprintf(q->arg, sizeof q->arg, "%s", name);
        q->ep = EP_WEB;
        return get ? 0 : 405;
    }
    q->ep = EP_OTHER;
    size_t ulen = strlen(url);
    const size_t blobs = strlen(CX_ROUTE_BLOBS), drafts = strlen(CX_ROUTE_DRAFTS),
                 decision = strlen(CX_ROUTE_DECISION), arts = strlen(CX_ROUTE_ARTIFACTS),
                 vers = strlen(ROUTE_VERSIONS), id = CX_WIRE_ULID_LEN;
    if (ulen == blobs + 64 && memcmp(url, CX_ROUTE_BLOBS, blobs) == 0) {
        snprintf(q->arg, sizeof q->arg, "%s", url + blobs); /* the hash is checked by feed.c */
        q->ep = get ? EP_BLOB_GET : EP_BLOB_PUT;
        return get || put ? 0 : 405;
    }
    if (ulen == drafts + id + decision && memcmp(url, CX_ROUTE_DRAFTS, drafts) == 0 &&
        ulid_segment(url + drafts, id) &&
        memcmp(url + drafts + id, CX_ROUTE_DECISION, decision) == 0) {
        snprintf(q->arg, sizeof q->arg, "%.*s", (int)id, url + drafts);
        q->ep = EP_DECISION;
        return post ? 0 : 405;
    }
    if (ulen > arts + id + vers && memcmp(url, CX_ROUTE_ARTIFACTS, arts) == 0 &&
        ulid_segment(url + arts, id) && memcmp(url + arts + id, ROUTE_VERSIONS, vers) == 0) {
        const char *num = url + arts + id + vers;
        char *end = NULL;
        long n = strtol(num, &end, 10);
        if (end != num && n >= 1 && n < 1000000000 && strcmp(end, ROUTE_ACCEPT) == 0 &&
            num[0] >= '0' && num[0] <= '9') {
            snprintf(q->arg, sizeof q->arg, "%.*s", (int)id, url + arts);
            q->n = n;
            q->ep = EP_ACCEPT;
            return post ? 0 : 405;
        }
    }
    /* the review app's read views (views.c): GET only */
    static const int VIEW_EP[] = {[CX_VIEWS_SEARCH] = EP_SEARCH, [CX_VIEWS_ITEM] = EP_ITEM,
                                  [CX_VIEWS_ARTIFACTS] = EP_ARTIFACTS, [CX_VIEWS_AUDIT] = EP_AUDIT,
                                  [CX_VIEWS_ACTIVITY] = EP_ACTIVITY};
    cx_views_route v = cx_views_match(url, q->arg, sizeof q->arg);
    if (v != CX_VIEWS_NONE && v < sizeof VIEW_EP / sizeof VIEW_EP[0] && VIEW_EP[v]) {
        q->ep = VIEW_EP[v];
        q->n = v;
        return get ? 0 : 405;
    }
    return 404;
}

/* Sign-in (EP_SIGNIN) authenticates by the key in its body, in answer(). */
static bool needs_auth(int ep) {
    return ep != EP_HEALTHZ && ep != EP_METRICS && ep != EP_WEB && ep != EP_SIGNIN &&
           ep != EP_OTHER;
}

/* 0, or the seconds to wait before id's bucket holds a token. Takes the
 * token when `take`; only looks otherwise. */
static int rate_take(cx_server *h, const char *id, bool take) {
    if (!h->rate)
        return 0;
    pthread_mutex_lock(&h->lock);
    int wait = cx_rate_take(h->rate, id, cx_clock_mono_ns(), take);
    pthread_mutex_unlock(&h->lock);
    return wait;
}

/* A Bearer key when the request has an Authorization header (it wins over
 * a cookie), else the session cookie (web.c); GET and DELETE /v1/session
 * are about the cookie's session alone. CX_ENOTFOUND for no or refused
 * credentials (401). */
static int authenticate(cx_server *h, struct MHD_Connection *c, req *q) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || q->ep == EP_SESSION) {
        const char *cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_COOKIE);
        if (!cx_web_cookie_token(cookie, q->token))
            return cx_error_set(CX_ENOTFOUND, q->ep == EP_SESSION
                                                  ? "no session: sign in"
                                                  : "an Authorization: Bearer <key> header or "
                                                    "a session cookie is required");
        int r = cx_web_session_check(h->feed, q->token, &q->sess);
        if (r)
            return r;
        q->who = q->sess.who;
        q->by_cookie = true;
        return 0;
    }
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return cx_error_set(CX_ENOTFOUND, "an Authorization: Bearer <key> header is required");
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(h->feed->st, false, &tx);
    if (r)
        return r;
    r = cx_keys_verify(tx, h->feed->secret, key, &q->who);
    cx_storage_rollback(tx);
    return r;
}

/* --- pushes off the HTTP threads ---------------------------------------- */

/* The search index's catch-up while pushes keep coming: a step of at most
 * INDEX_FORCED_BATCH items once INDEX_MAX_LAG_NS passed since the last. */
#define INDEX_MAX_LAG_NS (1000ull * 1000 * 1000)
#define INDEX_FORCED_BATCH (2 * CX_VIEWS_INDEX_BATCH)

/* A push waits for the database's writer (SQLite has one at a time). Run
 * on the HTTP thread that read it, that wait would hold every other
 * connection of the thread too, and a pull there would wait behind pushes
 * it has nothing to do with. So a push is handed to a push thread: the
 * connection is suspended, the push thread runs it, keeps the answer in
 * the request and resumes the connection, whose next call of on_request
 * sends it. False when there are no push threads (or they are stopping):
 * the caller runs the push itself. */
static bool defer_push(cx_server *h, struct MHD_Connection *c, req *q) {
    pthread_mutex_lock(&h->push_lock);
    bool ok = h->n_pushers && !h->push_stopping;
    if (ok) {
        MHD_suspend_connection(c); /* before a push thread can resume it */
        q->conn = c;
        q->deferred = true;
        q->push_next = NULL;
        if (h->push_tail)
            h->push_tail->push_next = q;
        else
            h->push_head = q;
        h->push_tail = q;
        h->push_waiting++;
        pthread_cond_signal(&h->push_wake);
    }
    pthread_mutex_unlock(&h->push_lock);
    return ok;
}

/* A push thread: runs queued pushes until stopping and the queue is empty
 * (so every suspended connection is resumed before the daemon stops). */
/* One step of the search index's catch-up (cx_views_index), on a push
 * thread, called and returning with push_lock held. A failure stops the
 * catch-up until the next applied push (a search drains the queue itself). */
static void index_step(cx_server *h, int limit) {
    h->indexing = true;
    pthread_mutex_unlock(&h->push_lock);
    int64_t pending = 0;
    int r = cx_views_index(h->feed, limit, &pending);
    pthread_mutex_lock(&h->push_lock);
    h->indexing = false;
    h->index_last_ns = cx_clock_mono_ns();
    h->index_pending = r == 0 && pending > 0;
    h->index_waiting = pending;
}

static void *push_worker(void *arg) {
    cx_server *h = arg;
    pthread_mutex_lock(&h->push_lock);
    for (;;) {
        while (!h->push_head && !h->push_stopping) {
            if (h->index_pending && !h->indexing) { /* idle: catch the index up */
                index_step(h, CX_VIEWS_INDEX_BATCH);
                continue;
            }
            pthread_cond_wait(&h->push_wake, &h->push_lock);
        }
        req *q = h->push_head;
        if (!q)
            break; /* stopping, nothing left */
        /* pushes keep coming: a larger step now and then all the same, so
         * the index trails a long burst by seconds, not by the burst */
        if (h->index_pending && !h->indexing &&
            cx_clock_mono_ns() - h->index_last_ns > INDEX_MAX_LAG_NS) {
            index_step(h, INDEX_FORCED_BATCH);
            continue;
        }
        h->push_head = q->push_next;
        if (!h->push_head)
            h->push_tail = NULL;
        pthread_mutex_unlock(&h->push_lock);
        q->applied = 0;
        q->result = cx_feed_handle_body(h->feed, &q->who, CX_FEED_BODY_PUSH, NULL, q->body.data,
                                        q->body.len, &q->out, &q->applied);
        if (q->result)
            snprintf(q->err, sizeof q->err, "%s", cx_error_last());
        bool wrote = q->result == 0 && q->applied > 0;
        struct MHD_Connection *c = q->conn;
        q->done = true; /* q is the connection's again once it is resumed */
        MHD_resume_connection(c);
        pthread_mutex_lock(&h->push_lock);
        h->push_waiting--;
        if (wrote)
            h->index_pending = true;
    }
    pthread_mutex_unlock(&h->push_lock);
    return NULL;
}

/* Stops the push threads once they have run every queued push. */
static void stop_pushers(cx_server *h) {
    if (!h->pushers)
        return;
    pthread_mutex_lock(&h->push_lock);
    h->push_stopping = true;
    pthread_cond_broadcast(&h->push_wake);
    pthread_mutex_unlock(&h->push_lock);
    unsigned n = h->n_pushers; /* only cx_server_start and this change it */
    for (unsigned i = 0; i < n; i++)
        pthread_join(h->pushers[i], NULL);
    pthread_mutex_lock(&h->push_lock);
    h->n_pushers = 0;
    pthread_mutex_unlock(&h->push_lock);
    free(h->pushers);
    h->pushers = NULL;
}

/* --- the endpoints --------------------------------------------------- */

/* A query parameter of connection ud, percent-decoded (views.c reads them). */
static const char *query_arg(void *ud, const char *name) {
    return MHD_lookup_connection_value(ud, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result answer(cx_server *h, struct MHD_Connection *c, req *q) {
    json_t *out = NULL;
    int r = 0;
    if (q->too_big)
        return send_error(h, c, q, 413, "too_large", "the request body is over the limit");
    switch (q->ep) {
    case EP_HEALTHZ: {
        /* one round trip to the database: a core that cannot reach it is
         * not healthy (503), so a load balancer sends clients elsewhere */
        cx_storage_stats db;
        cx_storage_health_info probe;
        cx_storage_stats_get(h->feed->st, &db);
        cx_storage_health(h->feed->st, &probe);
        return send_json(h, c, q, probe.ok ? 200 : 503,
                         json_pack("{s:s, s:{s:s, s:b, s:f}}", "status",
                                   probe.ok ? "ok" : "unavailable", "database", "backend",
                                   db.backend, "ok", probe.ok, "latency_ms",
                                   (double)probe.latency_us / 1e3));
    }
    case EP_METRICS:
        return send_metrics(h, c, q);
    case EP_SIGNIN: {
        cx_web_session sess;
        char token[CX_WEB_TOKEN_LEN + 1];
        int64_t ttl = h->cfg.session_ttl ? h->cfg.session_ttl : CX_WEB_SESSION_TTL_S;
        r = cx_web_session_create(h->feed, q->body.data, q->body.len, ttl, token, &sess);
        if (r == CX_ENOTFOUND) { /* as a refused Bearer key: counted per address */
            conn *k = conn_of(c);
            rate_take(h, k ? k->addr : "a:?", true);
            return send_error(h, c, q, 401, "unauthorized", cx_error_last());
        }
        if (r)
            break;
        bool fits = cx_web_set_cookie(q->set_cookie, sizeof q->set_cookie, token, ttl);
        sodium_memzero(token, sizeof token);
        if (!fits)
            return send_error(h, c, q, 500, "internal", "the session cookie does not fit");
        return send_json(h, c, q, 200, cx_web_session_json(&sess));
    }
    case EP_SESSION:
        if (q->method == M_DELETE) {
            r = cx_web_session_end(h->feed, q->token);
            if (r == CX_ENOTFOUND) /* ended meanwhile (another tab, a revocation) */
                r = 0;
            if (r)
                break;
            cx_web_set_cookie(q->set_cookie, sizeof q->set_cookie, "", 0);
            return send_empty(h, c, q, 204);
        }
        return send_json(h, c, q, 200, cx_web_session_json(&q->sess));
    case EP_KEYS:
        if (q->method == M_POST) {
            r = cx_web_keys_create(h->feed, &q->who, q->body.data, q->body.len, &out);
            if (r == 0)
                return send_json(h, c, q, 201, out);
        } else {
            r = cx_web_keys_list(h->feed, &q->who, &out);
        }
        break;
    case EP_KEY_REVOKE:
        r = cx_web_keys_revoke(h->feed, &q->who, q->arg, &out);
        break;
    case EP_WEB: {
        const cx_web_asset *a = cx_web_asset_find(q->arg);
        if (!a) /* route() found it: the table does not change */
            return send_error(h, c, q, 404, "not_found", "no such file");
        return send_asset(h, c, q, a);
    }
    case EP_INFO:
        return send_json(h, c, q, 200,
                         json_pack("{s:i, s:s, s:{s:i, s:I, s:I, s:i, s:f}, s:s, s:s, s:s, s:s}", "protocol",
                                   1, "server", "cortex-core/0.1.0", "limits", "max_ops",
                                   CX_WIRE_MAX_OPS, "max_body_bytes",
                                   (json_int_t)CX_WIRE_MAX_PUSH_BYTES,
                                   "max_blob_bytes", (json_int_t)h->feed->max_blob,
                                   "max_pull_limit", CX_WIRE_MAX_PULL_LIMIT, "rate_limit_per_second",
                                   h->cfg.rate, "team", q->who.team, "role", q->who.role, "principal",
                                   q->who.name, "key_id", q->who.key_id));
    case EP_PUSH: {
        long applied = 0;
        if (q->done) { /* run by a push thread */
            r = q->result;
            out = q->out;
            q->out = NULL;
            applied = q->applied;
            if (r)
                cx_error_set(r, "%s", q->err);
        } else if (defer_push(h, c, q)) {
            return MHD_YES; /* answered when the push thread resumes the connection */
        } else {
            r = cx_feed_handle_body(h->feed, &q->who, CX_FEED_BODY_PUSH, NULL, q->body.data,
                                    q->body.len, &out, &applied);
        }
        if (r == 0 && applied) {
            pthread_mutex_lock(&h->lock);
            h->ops_applied += applied;
            pthread_mutex_unlock(&h->lock);
        }
        break;
    }
    case EP_PULL: {
        const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
        const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
        char *end = NULL;
        long long s = 0, l = CX_WIRE_DEFAULT_PULL_LIMIT;
        if (since && *since) {
            s = strtoll(since, &end, 10);
            if (*end || s < 0 || since[0] == '-')
                return send_error(h, c, q, 400, "bad_request", "since must be an integer >= 0");
        }
        if (limit && *limit) {
            l = strtoll(limit, &end, 10);
            if (*end || l < 1)
                return send_error(h, c, q, 400, "bad_request", "limit must be an integer >= 1");
            if (l > CX_WIRE_MAX_PULL_LIMIT)
                l = CX_WIRE_MAX_PULL_LIMIT;
        }
        char *page = NULL;
        size_t len = 0;
        r = cx_feed_pull(h->feed, &q->who, s, (int)l, CX_WIRE_MAX_PAGE_BYTES, &page, &len);
        if (r == 0) {
            /* the workspace's sync record, for the app's team page */
            const char *ws = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Cortex-Workspace");
            int rw = ws ? cx_views_note_pull(h->feed, &q->who, ws, cx_views_page_next(page, len))
                        : 0;
            if (rw)
                log_warn("event=sync_record_failed detail=\"%s\", ignoring", cx_error_last());
            return send_page(h, c, q, page, len);
        }
        break;
    }
    case EP_QUEUE: /* the queue with the app's filter and counts (views.c) */
        r = cx_views_get(h->feed, &q->who, CX_VIEWS_QUEUE, NULL, query_arg, c, &out);
        break;
    case EP_SEARCH:
    case EP_ITEM:
    case EP_ARTIFACTS:
    case EP_AUDIT:
    case EP_ACTIVITY:
        r = cx_views_get(h->feed, &q->who, (cx_views_route)q->n, q->arg, query_arg, c, &out);
        break;
    case EP_DECISION:
        r = cx_feed_handle_body(h->feed, &q->who, CX_FEED_BODY_DECISION, q->arg, q->body.data,
                                q->body.len, &out, NULL);
        break;
    case EP_ACCEPT:
        r = cx_feed_accept(h->feed, &q->who, q->arg, q->n, &out);
        break;
    case EP_BLOBS_MISSING:
        r = cx_feed_handle_body(h->feed, &q->who, CX_FEED_BODY_MISSING, NULL, q->body.data,
                                q->body.len, &out, NULL);
        break;
    case EP_BLOB_PUT: {
        bool created = false;
        r = cx_feed_blob_put(h->feed, &q->who, q->arg, cx_buf_str(&q->body), q->body.len,
                             &created);
        if (r == 0)
            return send_json(h, c, q, created ? 201 : 200,
                             json_pack("{s:s, s:I, s:b}", "sha256", q->arg, "size",
                                       (json_int_t)q->body.len, "created", created));
        break;
    }
    case EP_BLOB_GET: {
        void *data = NULL;
        size_t len = 0;
        r = cx_feed_blob_get(h->feed, &q->who, q->arg, &data, &len);
        if (r == 0)
            return send_body(h, c, q, 200, "application/octet-stream", data, len, 0);
        break;
    }
    default:
        return send_error(h, c, q, 404, "not_found", "no such endpoint");
    }
    if (r)
        return send_failure(h, c, q, r);
    return send_json(h, c, q, 200, out);
}

/* --- connections ------------------------------------------------------ */

static conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Moves k to phase ph from now. */
static void conn_phase(cx_server *h, conn *k, int ph) {
    if (!k)
        return;
    pthread_mutex_lock(&h->conn_lock);
    k->phase = ph;
    k->since_ns = cx_clock_mono_ns();
    k->body_bytes = 0;
    pthread_mutex_unlock(&h->conn_lock);
}

/* Shuts k's socket down for reason `why` (libmicrohttpd then closes it).
 * Under conn_lock. */
static void conn_shut(conn *k, int why) {
    if (k->shut)
        return;
    k->shut = why;
    shutdown(k->fd, SHUT_RDWR);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    cx_server *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *k = calloc(1, sizeof *k);
        if (!k)
            return; /* not accounted: it still has libmicrohttpd's idle timeout */
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ad =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        k->fd = fd ? fd->connect_fd : -1;
        char text[INET6_ADDRSTRLEN] = "?";
        const struct sockaddr *sa = ad ? ad->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, text,
                      sizeof text);
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      text, sizeof text);
        snprintf(k->addr, sizeof k->addr, "a:%s", text);
        k->phase = PH_HEADERS;
        k->since_ns = cx_clock_mono_ns();
        pthread_mutex_lock(&h->conn_lock);
        k->next = h->conns;
        if (h->conns)
            h->conns->prev = k;
        h->conns = k;
        h->conns_open++;
        h->conns_total++;
        pthread_mutex_unlock(&h->conn_lock);
        *socket_context = k;
        return;
    }
    conn *k = *socket_context;
    if (!k)
        return;
    pthread_mutex_lock(&h->conn_lock);
    int why = k->shut ? k->shut
              : k->aborted ? CL_ABORTED
              : k->idle ? CL_IDLE
              : k->requests && k->phase == PH_HEADERS ? CL_DONE : CL_ABORTED;
    if (k->prev)
        k->prev->next = k->next;
    else
        h->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    h->conns_open--;
    h->closed[why]++;
    pthread_mutex_unlock(&h->conn_lock);
    free(k);
    *socket_context = NULL;
}

/* Called once the request line has arrived. Every URL of the API is a
 * path: anything else is not a request to answer, so the connection is
 * closed at once instead of waiting for headers. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *c) {
    cx_server *h = cls;
    if (uri && uri[0] == '/')
        return NULL;
    conn *k = conn_of(c);
    if (k) {
        pthread_mutex_lock(&h->conn_lock);
        conn_shut(k, CL_BAD_LINE);
        pthread_mutex_unlock(&h->conn_lock);
    }
    return NULL;
}

/* Shuts down the connections past their deadline; logs how many
 * libmicrohttpd messages were held back. */
static void *sweep(void *arg) {
    cx_server *h = arg;
    const uint64_t header_ns = (uint64_t)h->cfg.header_timeout * 1000000000ull,
                   body_ns = (uint64_t)h->cfg.body_timeout * 1000000000ull;
    uint64_t last_report = cx_clock_mono_ns();
    pthread_mutex_lock(&h->conn_lock);
    while (!h->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&h->wake, &h->conn_lock, &ts);
        if (h->stopping)
            break;
        if (rc != 0 && rc != ETIMEDOUT)
            continue;
        uint64_t now = cx_clock_mono_ns();
        for (conn *k = h->conns; k; k = k->next) {
            if (k->shut || k->fd < 0)
                continue;
            if (k->phase == PH_HEADERS && now - k->since_ns >= header_ns)
                /* after a response, no next request: an idle keep-alive */
                conn_shut(k, k->requests ? CL_IDLE : CL_HEADER_DEADLINE);
            else if (k->phase == PH_BODY &&
                     now - k->since_ns >=
                         body_ns + k->body_bytes * 1000000000ull / CX_SERVER_BODY_RATE)
                conn_shut(k, CL_BODY_DEADLINE);
        }
        if (now - last_report >= 60ull * 1000000000ull) {
            last_report = now;
            pthread_mutex_lock(&h->lock);
            uint64_t n = h->log_suppressed;
            h->log_suppressed = 0;
            pthread_mutex_unlock(&h->lock);
            if (n)
                log_warn("event=mhd_suppressed count=%llu detail=\"libmicrohttpd messages not "
                         "logged in the last minute; see cortex_http_connections_closed_total\"",
                         (unsigned long long)n);
        }
    }
    pthread_mutex_unlock(&h->conn_lock);
    return NULL;
}

/* Framing that two parsers could read differently (a proxy in front and
 * this one) is refused: more than one Content-Length, more than one
 * Transfer-Encoding, both, or a Transfer-Encoding other than chunked. */
typedef struct framing {
    int content_length, transfer_encoding;
    bool te_other;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    framing *f = cls;
    (void)kind;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->content_length++;
    if (key && strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
        if (!value || strcasecmp(value, "chunked") != 0)
            f->te_other = true;
    }
    return MHD_YES;
}

static const char *framing_error(struct MHD_Connection *c) {
    framing f = {0, 0, false};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.content_length > 1)
        return "more than one Content-Length header";
    if (f.transfer_encoding > 1)
        return "more than one Transfer-Encoding header";
    if (f.transfer_encoding && f.content_length)
        return "both Transfer-Encoding and Content-Length";
    if (f.te_other)
        return "Transfer-Encoding other than chunked";
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
    cx_server *h = cls;
    req *q = *req_cls;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        q->t0 = cx_clock_mono_ns();
        *req_cls = q;
        conn *k = conn_of(c);
        conn_phase(h, k, PH_BODY);
        int st = route(q, method, url);
        const char *bad = framing_error(c);
        if (bad) /* answered before the body: libmicrohttpd then closes the connection */
            return send_error(h, c, q, 400, "bad_request", bad);
        if (st == 404)
            return send_error(h, c, q, 404, "not_found", "no such endpoint");
        if (st == 405)
            return send_error(h, c, q, 405, "method_not_allowed", "method not allowed here");
        if (needs_auth(q->ep)) {
            /* Refused keys are limited per address, before the key is
             * looked at: past the burst, the address waits. */
            const char *addr = k ? k->addr : "a:?";
            int wait = rate_take(h, addr, false);
            if (wait > 0)
                return send_error_ra(h, c, q, 429, "rate_limited",
                                     "too many requests with refused keys from this address; "
                                     "retry later", wait);
            int r = authenticate(h, c, q);
            if (r == CX_ENOTFOUND) {
                rate_take(h, addr, true);
                return send_error(h, c, q, 401, "unauthorized", cx_error_last());
            }
            if (r)
                return send_failure(h, c, q, r);
            char id[RATE_ID_MAX];
            snprintf(id, sizeof id, "k:%s", q->who.key_id);
            wait = rate_take(h, id, true);
            if (wait > 0)
                return send_error_ra(h, c, q, 429, "rate_limited",
                                     "too many requests for this key; retry later", wait);
            /* a browser's state-changing request: its session's CSRF token
             * and, when sent, an Origin of this very host */
            if (q->by_cookie && q->method != M_GET) {
                const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
                if (!cx_web_csrf_ok(&q->sess, tok))
                    return send_error(h, c, q, 403, "csrf",
                                      "the X-CSRF-Token header is missing or wrong");
            }
        }
        if (q->ep == EP_SIGNIN) { /* the key is in the body: refused ones count there */
            int wait = rate_take(h, k ? k->addr : "a:?", false);
            if (wait > 0)
                return send_error_ra(h, c, q, 429, "rate_limited",
                                     "too many requests with refused keys from this address; "
                                     "retry later", wait);
        }
        if ((q->by_cookie && q->method != M_GET) || q->ep == EP_SIGNIN) {
            const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
            const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_HOST);
            if (!cx_web_origin_ok(origin, host, h->cert == NULL))
                return send_error(h, c, q, 403, "csrf", "the Origin header is not this host");
        }
        bool small = q->ep == EP_SIGNIN || q->ep == EP_SESSION || q->ep == EP_KEYS ||
                     q->ep == EP_KEY_REVOKE;
        cx_buf_init(&q->body, q->ep == EP_BLOB_PUT ? h->feed->max_blob
                              : small            ? CX_WEB_MAX_BODY
                                                 : CX_WIRE_MAX_PUSH_BYTES);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > q->body.max)
                return send_error(h, c, q, 413, "too_large", "the request body is over the limit");
        }
        return MHD_YES;
    }
    if (q->answered) { /* refused at the headers: drop the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        conn *k = conn_of(c);
        if (k) {
            pthread_mutex_lock(&h->conn_lock);
            k->body_bytes += n;
            pthread_mutex_unlock(&h->conn_lock);
        }
        if (q->too_big)
            return MHD_YES;
        int r = cx_buf_add(&q->body, upload_data, n);
        if (r == CX_ELIMIT)
            q->too_big = true; /* answered 413 once the body has been read */
        else if (r)
            return MHD_NO;
        return MHD_YES;
    }
    conn_phase(h, conn_of(c), PH_ANSWER);
    return answer(h, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    cx_server *h = cls;
    conn *k = conn_of(c);
    if (k) { /* the next request's headers are due from now */
        pthread_mutex_lock(&h->conn_lock);
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            k->requests++;
        else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
            k->idle = true;
        else if (toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
            k->aborted = true;
        k->phase = PH_HEADERS;
        k->since_ns = cx_clock_mono_ns();
        pthread_mutex_unlock(&h->conn_lock);
    }
    req *q = *req_cls;
    if (!q)
        return;
    if (q->ep == EP_SIGNIN && q->body.data) /* it held an API key */
        sodium_memzero(q->body.data, q->body.len);
    cx_buf_free(&q->body);
    json_decref(q->out); /* a push's answer that was never sent */
    sodium_memzero(q->token, sizeof q->token);
    sodium_memzero(q->set_cookie, sizeof q->set_cookie);
    free(q);
    *req_cls = NULL;
}

/* libmicrohttpd's messages are mostly about one client (a broken
 * handshake, a reset, a refusal at the connection limits): they are
 * counted, and only a few are logged (see LOG_BURST). */
__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    cx_server *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    bool refused = strstr(msg, "reached connection limit") != NULL, say = false;
    uint64_t now = cx_clock_mono_ns();
    pthread_mutex_lock(&h->lock);
    if (refused) {
        h->refused++;
        h->log_suppressed++;
    } else {
        h->log_tokens += (double)(now - h->log_at_ns) / 1e9 / LOG_EVERY_S;
        if (h->log_tokens > LOG_BURST)
            h->log_tokens = LOG_BURST;
        h->log_at_ns = now;
        if (h->log_tokens >= 1) {
            h->log_tokens -= 1;
            say = true;
        } else {
            h->log_suppressed++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (say)
        log_warn("event=mhd msg=\"%s\"", msg);
}

/* --- start, stop ----------------------------------------------------- */

static bool addr_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

bool cx_server_host_is_loopback(const char *host) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (!host || !*host || getaddrinfo(host, NULL, &hints, &res) != 0)
        return false;
    bool all = res != NULL;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        all = all && addr_loopback(a->ai_addr);
    freeaddrinfo(res);
    return all;
}

/* The connections the descriptor limit leaves room for, uncapped. */
static unsigned fd_room(unsigned threads) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT32_MAX / 2;
    rlim_t reserve = CX_SERVER_FD_RESERVE + 4 * (rlim_t)threads;
    if (rl.rlim_cur <= reserve)
        return 0;
    rlim_t n = rl.rlim_cur - reserve;
    return n > UINT32_MAX / 2 ? UINT32_MAX / 2 : (unsigned)n;
}

unsigned cx_server_max_connections(unsigned threads) {
    unsigned n = fd_room(threads);
    return n > CX_SERVER_MAX_CONNECTIONS ? CX_SERVER_MAX_CONNECTIONS : n;
}

int cx_server_start(cx_server **out, cx_feed *feed, const cx_server_config *cfg) {
    bool tls = cfg->tls_cert || cfg->tls_key;
    if (tls && !(cfg->tls_cert && cfg->tls_key))
        return cx_error_set(CX_EINVAL, "--tls-cert and --tls-key go together");
    if (!tls && !cx_server_host_is_loopback(cfg->host))
        return cx_error_set(CX_EINVAL, "refusing to serve plain HTTP (no TLS) on %s: give --tls-cert and "
                            "--tls-key, or listen on a loopback address", cfg->host);
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return cx_error_set(CX_EINVAL, "this libmicrohttpd was built without TLS support");
    cx_server_config c = *cfg;
    if (!c.threads)
        c.threads = 4;
    if (!c.header_timeout)
        c.header_timeout = CX_SERVER_HEADER_TIMEOUT;
    if (!c.body_timeout)
        c.body_timeout = CX_SERVER_BODY_TIMEOUT;
    if (!c.idle_timeout)
        c.idle_timeout = CX_SERVER_IDLE_TIMEOUT;
    if (!c.max_per_address)
        c.max_per_address = CX_SERVER_MAX_PER_ADDRESS;
    unsigned room = fd_room(c.threads);
    if (!c.max_connections)
        c.max_connections = cx_server_max_connections(c.threads);
    if (c.max_connections < c.threads || c.max_connections > room)
        return cx_error_set(CX_EINVAL, "%u connections need a descriptor limit of at least %u "
                            "(raise it with ulimit -n or LimitNOFILE=, or lower "
                            "--max-connections)",
                            c.max_connections < c.threads ? c.threads : c.max_connections,
                            (c.max_connections < c.threads ? c.threads : c.max_connections) +
                                CX_SERVER_FD_RESERVE + 4 * c.threads);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *res = NULL;
    int gai = getaddrinfo(c.host, NULL, &hints, &res);
    if (gai != 0 || !res)
        return cx_error_set(CX_EINVAL, "cannot resolve %s: %s", c.host, gai_strerror(gai));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    bool v6 = ss.ss_family == AF_INET6;
    if (v6)
        ((struct sockaddr_in6 *)(void *)&ss)->sin6_port = htons(c.port);
    else
        ((struct sockaddr_in *)(void *)&ss)->sin_port = htons(c.port);

    cx_server *h = calloc(1, sizeof *h);
    if (!h)
        return CX_ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->conn_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    h->feed = feed;
    h->cfg = c;
    h->log_tokens = LOG_BURST;
    h->log_at_ns = cx_clock_mono_ns();
    pthread_cond_init(&h->page_wake, NULL);
    pthread_mutex_init(&h->push_lock, NULL);
    pthread_cond_init(&h->push_wake, NULL);
    if (!h->cfg.page_memory)
        h->cfg.page_memory = DEFAULT_PAGE_MEMORY;
    if (!(h->cfg.send_min_rate > 0))
        h->cfg.send_min_rate = DEFAULT_SEND_MIN_RATE;
    int r = 0;
    size_t len;
    if (c.rate > 0 && (r = cx_rate_new(&h->rate, c.rate, c.burst, RATE_SLOTS)))
        goto out;
    if (tls && ((r = cx_fs_read_file(c.tls_cert, 1 << 20, &h->cert, &len)) ||
                (r = cx_fs_read_file(c.tls_key, 1 << 20, &h->key, &len))))
        goto out;
    if (pthread_create(&h->sweeper, NULL, sweep, h) != 0) {
        r = cx_error_set(CX_EFAIL, "cannot start the connection sweeper thread");
        goto out;
    }
    h->sweeping = true;
    h->index_pending = true; /* an upgraded core.db starts with its items queued */
    /* As many push threads as HTTP threads, started before the daemon: they
     * mostly wait for the writer, and a backend with writers in parallel
     * (PostgreSQL, one team each) gets as many pushes at once as before. */
    if (!(h->pushers = calloc(c.threads, sizeof *h->pushers))) {
        r = CX_ENOMEM;
        goto out;
    }
    for (; h->n_pushers < c.threads; h->n_pushers++)
        if (pthread_create(&h->pushers[h->n_pushers], NULL, push_worker, h) != 0) {
            r = cx_error_set(CX_EFAIL, "cannot start a push thread");
            goto out;
        }
    /* Each worker thread polls its connections with epoll: a connection
     * that sends nothing costs nothing but its descriptor and its slot. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL
                                                                               : MHD_USE_AUTO);
    if (tls)
        flags |= MHD_USE_TLS;
    if (v6)
        flags |= MHD_USE_IPv6;
    flags |= MHD_ALLOW_SUSPEND_RESUME; /* pushes are run by the push threads */
    /* Without TLS the option list ends before the certificate. */
    h->d = MHD_start_daemon(flags, c.port, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, c.threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, c.idle_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, c.max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, c.max_per_address,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_URI_LOG_CALLBACK, on_request_line, h,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->cert,
                            MHD_OPTION_HTTPS_MEM_KEY, h->key, MHD_OPTION_END);
    if (!h->d) {
        r = cx_error_set(CX_EIO, "cannot listen on %s port %u (in use, or a bad TLS certificate "
                         "or key)", c.host, (unsigned)c.port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : c.port;
    log_info("event=limits max_connections=%u max_per_address=%u header_timeout=%u "
             "body_timeout=%u idle_timeout=%u", c.max_connections, c.max_per_address,
             c.header_timeout, c.body_timeout, c.idle_timeout);
    if (pthread_create(&h->page_sweeper, NULL, page_sweep, h) != 0) {
        r = cx_error_set(CX_EFAIL, "cannot start the send-deadline thread");
        goto out;
    }
    h->page_sweeping = true;
out:
    if (r) {
        cx_server_stop(h);
        return r;
    }
    *out = h;
    return 0;
}

uint16_t cx_server_port(const cx_server *h) { return h->port; }

void cx_server_stop(cx_server *h) {
    if (!h)
        return;
    stop_pushers(h); /* resumes every suspended push: the daemon may not stop with one */
    if (h->d)
        MHD_stop_daemon(h->d); /* closes every connection: the list is empty after */
    if (h->sweeping) {
        pthread_mutex_lock(&h->conn_lock);
        h->stopping = true;
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&h->conn_lock);
        pthread_join(h->sweeper, NULL);
    }
    cx_rate_free(h->rate);
    if (h->page_sweeping) {
        pthread_mutex_lock(&h->lock);
        h->page_stopping = true;
        pthread_cond_signal(&h->page_wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->page_sweeper, NULL);
    }
    free(h->cert);
    if (h->key) {
        memset(h->key, 0, strlen(h->key));
        free(h->key);
    }
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->conn_lock);
    pthread_cond_destroy(&h->page_wake);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->push_wake);
    pthread_mutex_destroy(&h->push_lock);
    free(h);
}
