/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP server state machine: eras and version negotiation, method
 * dispatch, error mapping, cancellation and progress. Transport-free: one
 * line in, messages out through cx_mcp_config.write. */
#include "mcp.h"

#include "proto/jsonrpc.h"
#include "proto/schema.h"
#include "resources.h"
#include "session.h"
#include "tools.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERVER_NAME "cortexd"
#define SERVER_TITLE "Cortex"
#define SERVER_VERSION "0.1.0"
#define LATEST_HANDSHAKE "2025-11-25"
#define STATELESS_VERSION "2026-07-28"
#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CLIENT_INFO "io.modelcontextprotocol/clientInfo"
#define ERR_UNSUPPORTED_VERSION (-32022)
#define ERR_RESOURCE_NOT_FOUND (-32002)
#define MAX_CANCELLED 64
#define ID_TEXT 128

static const char *const handshake_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                 "2024-11-05"};

static const char instructions[] =
    "Cortex is this team's shared memory. Before you dig into unfamiliar code, `search` it: "
    "canon threads are reviewed knowledge and rank first. When you learn something a teammate "
    "would want (a cause, a fix, a convention, a trap), `observe` it in a sentence or two, with "
    "the files it concerns. Propose durable knowledge with `draft` for people to review.";

struct cx_mcp {
    cx_mcp_config cfg;
    /* The session's store serves one thread at a time: the worker for a
     * request, or the warm-up thread loading the vector index a chunk at a
     * time; it gives way between chunks as soon as a request waits. */
    pthread_mutex_t store_lock;
    atomic_int store_waiting;  /* requests waiting for store_lock */
    pthread_mutex_t session_lock;
    cx_session *session;     /* the tools' workspace, opened on first need */
    const cx_workspace *ws;  /* the session's, once open */
    int session_err;
    char session_msg[512];

    bool handshake;          /* an initialize was seen */
    char version[16];        /* negotiated handshake version */
    char *client_name;

    pthread_mutex_t cancel_lock;
    char cancelled[MAX_CANCELLED][ID_TEXT];
    size_t n_cancelled, next_cancel;
    char current[ID_TEXT];   /* id of the request being served */
    bool current_cancelled;

    int client_log_level;    /* CX_LOG_OFF until logging/setLevel */
    json_t *batch;           /* answers being collected for a batch, or NULL */
    cx_buf tool_text, tool_line; /* reply_tool_result()'s, kept between answers */
    atomic_bool stopping;    /* cx_mcp_shutdown() was called */
    atomic_bool aborting;    /* cx_mcp_abort() was called */
};

/* One request being served. */
typedef struct req {
    cx_mcp *m;
    json_t *id;
    json_t *params;
    bool stateless;
    const char *version;
    json_t *progress_token;
} req;

/* ---- output ------------------------------------------------------------ */

static void send_msg(cx_mcp *m, json_t *msg) {
    if (!msg) {
        static const char oom[] =
            "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":\"out of memory\"}}";
        m->cfg.write(m->cfg.write_ud, oom, sizeof oom - 1);
        return;
    }
    char *text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!text) {
        json_decref(msg);
        send_msg(m, NULL);
        return;
    }
    size_t len = strlen(text);
    /* Answers to a batch's elements go back together, in one array. One
     * thread at a time sends answers (cortexd's worker, or its reader
     * through cx_mcp_handle_quick() while the worker is idle), and only
     * cx_mcp_handle_line() sets m->batch. */
    if (!json_object_get(msg, "method") && m->batch) {
        free(text);
        json_array_append_new(m->batch, msg);
        return;
    }
    if (len > CX_MCP_MAX_MESSAGE) {
        json_t *id = json_object_get(msg, "id");
        json_t *err = cx_rpc_error(id, CX_RPC_INTERNAL_ERROR,
                                   "the result is larger than the 16 MiB message limit; ask for "
                                   "less (smaller limit or max_tokens, fewer ids)",
                                   NULL);
        free(text);
        json_decref(msg);
        send_msg(m, err);
        return;
    }
    m->cfg.write(m->cfg.write_ud, text, len);
    free(text);
    json_decref(msg);
}

static void reply_error(req *r, int code, const char *message, json_t *data) {
    send_msg(r->m, cx_rpc_error(r->id, code, message, data));
}

/* Caching hints that the stateless era requires on some results. */
typedef enum {
    NOT_CACHEABLE,
    CACHE_STATIC, /* the same for every caller while this binary runs */
    CACHE_MEMORY, /* the workspace's memory: changes any time, not for sharing */
} cache_hint;

/* Sends a result, decorated as the stateless era wants: resultType, the
 * server's identity in _meta, and caching hints where `hint` says so. */
static void reply(req *r, json_t *result, cache_hint hint) {
    if (result && r->stateless) {
        json_object_set_new(result, "resultType", json_string("complete"));
        json_object_set_new(result, "_meta",
                            json_pack("{s:{s:s, s:s}}", "io.modelcontextprotocol/serverInfo",
                                      "name", SERVER_NAME, "version", SERVER_VERSION));
        if (hint == CACHE_STATIC) {
            json_object_set_new(result, "ttlMs", json_integer(3600000));
            json_object_set_new(result, "cacheScope", json_string("public"));
        } else if (hint == CACHE_MEMORY) {
            json_object_set_new(result, "ttlMs", json_integer(0));
            json_object_set_new(result, "cacheScope", json_string("private"));
        }
    }
    send_msg(r->m, cx_rpc_result(r->id, result));
}

static void log_sink(void *ud, cx_log_level level, const char *msg) {
    cx_mcp *m = ud;
    json_t *p = json_pack("{s:s, s:s, s:s}", "level", cx_log_level_name(level), "logger",
                          SERVER_NAME, "data", msg);
    send_msg(m, cx_rpc_notification("notifications/message", p));
}

/* ---- cancellation --------------------------------------------------------- */

void cx_mcp_cancel(cx_mcp *m, const char *id_json) {
    if (!id_json || !*id_json || strlen(id_json) >= ID_TEXT)
        return;
    pthread_mutex_lock(&m->cancel_lock);
    if (strcmp(m->current, id_json) == 0) {
        m->current_cancelled = true;
    } else {
        snprintf(m->cancelled[m->next_cancel], ID_TEXT, "%s", id_json);
        m->next_cancel = (m->next_cancel + 1) % MAX_CANCELLED;
        if (m->n_cancelled < MAX_CANCELLED)
            m->n_cancelled++;
    }
    pthread_mutex_unlock(&m->cancel_lock);
}

/* Marks `id` current; returns true when it was cancelled while queued. */
static bool begin_request(cx_mcp *m, json_t *id) {
    char text[ID_TEXT];
    cx_rpc_id_text(id, text, sizeof text);
    bool was = false;
    pthread_mutex_lock(&m->cancel_lock);
    for (size_t i = 0; i < m->n_cancelled; i++)
        if (strcmp(m->cancelled[i], text) == 0) {
            m->cancelled[i][0] = '\0';
            was = true;
        }
    snprintf(m->current, sizeof m->current, "%s", text);
    m->current_cancelled = false;
    pthread_mutex_unlock(&m->cancel_lock);
    return was;
}

static bool end_request(cx_mcp *m) {
    pthread_mutex_lock(&m->cancel_lock);
    bool was = m->current_cancelled;
    m->current[0] = '\0';
    m->current_cancelled = false;
    pthread_mutex_unlock(&m->cancel_lock);
    return was;
}

static bool current_cancelled(cx_mcp *m) {
    pthread_mutex_lock(&m->cancel_lock);
    bool was = m->current_cancelled;
    pthread_mutex_unlock(&m->cancel_lock);
    return was;
}

static void apply_cancel(cx_mcp *m, json_t *params) {
    json_t *rid = json_object_get(params, "requestId");
    if (!rid || !(json_is_string(rid) || json_is_integer(rid)))
        return;
    char text[ID_TEXT];
    cx_rpc_id_text(rid, text, sizeof text);
    cx_mcp_cancel(m, text);
}

bool cx_mcp_preview_cancel(cx_mcp *m, const char *line, size_t len) {
    /* Cheap filter first: only lines that name the method are parsed. */
    if (len > 64 * 1024 || !memmem(line, len, "notifications/cancelled", 23))
        return false;
    json_t *root = json_loadb(line, len, 0, NULL);
    bool hit = false;
    if (json_is_object(root) && !json_object_get(root, "id") &&
        json_is_string(json_object_get(root, "method")) &&
        strcmp(json_string_value(json_object_get(root, "method")), "notifications/cancelled") == 0) {
        apply_cancel(m, json_object_get(root, "params"));
        hit = true;
    }
    json_decref(root);
    return hit;
}

/* ---- the workspace session, opened once, lazily ------------------------- */

/* Between two chunks of the vector index: a waiting request goes first.
 * Loading stops when the session ends; searches pick up what is missing
 * later, incrementally. */
static int warm_progress(void *ud, size_t done, size_t total) {
    cx_mcp *m = ud;
    (void)done;
    (void)total;
    if (atomic_load(&m->store_waiting) > 0) {
        pthread_mutex_unlock(&m->store_lock);
        /* until the waiting request holds the lock (bounded: 100 ms) */
        for (int i = 0; i < 1000 && atomic_load(&m->store_waiting) > 0; i++) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&m->store_lock);
    }
    return atomic_load(&m->stopping) ? 1 : 0;
}

/* The store for the request being served: waits for the warm-up's chunk
 * to end. Pair with store_done. */
static void store_take(cx_mcp *m) {
    atomic_fetch_add(&m->store_waiting, 1);
    pthread_mutex_lock(&m->store_lock);
    atomic_fetch_sub(&m->store_waiting, 1);
}

static void store_done(cx_mcp *m) { pthread_mutex_unlock(&m->store_lock); }

void cx_mcp_shutdown(cx_mcp *m) { atomic_store(&m->stopping, true); }

void cx_mcp_abort(cx_mcp *m) {
    atomic_store(&m->aborting, true);
    atomic_store(&m->stopping, true);
}

/* The tools' session, opened on first need by whichever thread needs it
 * first (the warm-up thread, normally); NULL with the reason set. */
static cx_session *get_session(cx_mcp *m) {
    pthread_mutex_lock(&m->session_lock);
    if (!m->session && !m->session_err) {
        int r = cx_tools_session_open(&m->session, m->cfg.ws, m->cfg.workspace_dir,
                                      m->cfg.background_maintenance);
        if (r != 0) {
            m->session_err = r;
            snprintf(m->session_msg, sizeof m->session_msg, "%s", cx_error_last());
        } else {
            m->ws = cx_session_workspace(m->session);
            (void)cx_session_actor(m->session, NULL); /* reads the user now, off the hot path */
        }
    }
    cx_session *s = m->session;
    pthread_mutex_unlock(&m->session_lock);
    if (!s)
        cx_error_set(m->session_err ? m->session_err : CX_EIO,
                     "the workspace store cannot be opened: %s", m->session_msg);
    return s;
}

static cx_store *get_store(cx_mcp *m) { return cx_session_store(get_session(m)); }

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cx_mcp_warm(cx_mcp *m) {
    double t0 = mono_ms();
    cx_session *s = get_session(m);
    if (!s)
        return m->session_err;
    double t1 = mono_ms();
    pthread_mutex_lock(&m->store_lock);
    cx_tools_session_warm(s, warm_progress, m);
    pthread_mutex_unlock(&m->store_lock);
    /* how long start-up took, for bench/README.md's figures */
    cx_log(CX_LOG_INFO, "warm-up: session open in %.1f ms, vector index loaded in %.1f ms",
           t1 - t0, mono_ms() - t1);
    return 0;
}

const cx_workspace *cx_mcp_workspace(cx_mcp *m) {
    pthread_mutex_lock(&m->session_lock);
    const cx_workspace *ws = m->ws;
    pthread_mutex_unlock(&m->session_lock);
    return ws;
}

/* ---- lifecycle -------------------------------------------------------- */

int cx_mcp_new(cx_mcp **out, const cx_mcp_config *cfg) {
    cx_mcp *m = calloc(1, sizeof *m);
    if (!m)
        return CX_ENOMEM;
    m->cfg = *cfg;
    if (m->cfg.page_size == 0)
        m->cfg.page_size = 100;
    pthread_mutex_init(&m->store_lock, NULL);
    pthread_mutex_init(&m->session_lock, NULL);
    pthread_mutex_init(&m->cancel_lock, NULL);
    snprintf(m->version, sizeof m->version, "%s", LATEST_HANDSHAKE);
    m->client_log_level = CX_LOG_OFF;
    cx_buf_init(&m->tool_text, CX_MCP_MAX_MESSAGE);
    cx_buf_init(&m->tool_line, CX_MCP_MAX_MESSAGE);
    cx_log_set_sink(log_sink, m, CX_LOG_OFF);
    *out = m;
    return 0;
}

void cx_mcp_free(cx_mcp *m) {
    if (!m)
        return;
    cx_log_set_sink(NULL, NULL, CX_LOG_OFF);
    cx_session_free(m->session);
    free(m->client_name);
    cx_buf_free(&m->tool_text);
    cx_buf_free(&m->tool_line);
    pthread_mutex_destroy(&m->store_lock);
    pthread_mutex_destroy(&m->session_lock);
    pthread_mutex_destroy(&m->cancel_lock);
    free(m);
}

static json_t *capabilities(void) {
    return json_pack("{s:{s:b}, s:{s:b, s:b}, s:{}}", "tools", "listChanged", 0, "resources",
                     "subscribe", 0, "listChanged", 0, "logging");
}

static json_t *server_info(void) {
    return json_pack("{s:s, s:s, s:s}", "name", SERVER_NAME, "title", SERVER_TITLE, "version",
                     SERVER_VERSION);
}

static json_t *supported_versions(void) {
    json_t *a = json_array();
    json_array_append_new(a, json_string(STATELESS_VERSION));
    for (size_t i = 0; i < sizeof handshake_versions / sizeof *handshake_versions; i++)
        json_array_append_new(a, json_string(handshake_versions[i]));
    return a;
}

static void set_client_name(cx_mcp *m, json_t *info) {
    const char *name = json_string_value(json_object_get(info, "name"));
    if (!name || !*name)
        return;
    char *dup = strndup(name, 64);
    if (!dup)
        return;
    free(m->client_name);
    m->client_name = dup;
}

static void do_initialize(req *r) {
    cx_mcp *m = r->m;
    json_t *pv = json_object_get(r->params, "protocolVersion");
    if (!json_is_string(pv)) {
        reply_error(r, CX_RPC_INVALID_PARAMS, "initialize needs params.protocolVersion (a string)",
                    NULL);
        return;
    }
    const char *want = json_string_value(pv);
    const char *use = LATEST_HANDSHAKE;
    for (size_t i = 0; i < sizeof handshake_versions / sizeof *handshake_versions; i++)
        if (strcmp(want, handshake_versions[i]) == 0)
            use = handshake_versions[i];
    snprintf(m->version, sizeof m->version, "%s", use);
    m->handshake = true;
    set_client_name(m, json_object_get(r->params, "clientInfo"));
    json_t *res = json_pack("{s:s, s:o, s:o, s:s}", "protocolVersion", use, "capabilities",
                            capabilities(), "serverInfo", server_info(), "instructions",
                            instructions);
    reply(r, res, NOT_CACHEABLE);
}

static void do_discover(req *r) {
    /* The server's identity travels in _meta in this era (see reply()). */
    json_t *res = json_pack("{s:o, s:o, s:s}", "supportedVersions", supported_versions(),
                            "capabilities", capabilities(), "instructions", instructions);
    reply(r, res, CACHE_STATIC);
}

/* ---- pagination ----------------------------------------------------------- */

/* Cursors are "o:<offset>" strings; -1 with an error sent when bad. */
static long page_start(req *r) {
    json_t *c = json_object_get(r->params, "cursor");
    if (!c || json_is_null(c))
        return 0;
    const char *s = json_string_value(c);
    char *end = NULL;
    long v = s && strncmp(s, "o:", 2) == 0 ? strtol(s + 2, &end, 10) : -1;
    if (v < 0 || !end || *end != '\0' || end == s + 2) {
        reply_error(r, CX_RPC_INVALID_PARAMS, "invalid cursor; pass back nextCursor unchanged",
                    NULL);
        return -1;
    }
    return v;
}

/* Moves items [start, start+page) of `all` into a page object under `key`. */
static json_t *paginate(cx_mcp *m, json_t *all, long start, const char *key) {
    json_t *page = json_array();
    size_t n = json_array_size(all);
    for (size_t i = (size_t)start; i < n && i < (size_t)start + m->cfg.page_size; i++)
        json_array_append(page, json_array_get(all, i));
    json_t *res = json_object();
    json_object_set_new(res, key, page);
    if ((size_t)start + m->cfg.page_size < n) {
        char cur[32];
        snprintf(cur, sizeof cur, "o:%zu", (size_t)start + m->cfg.page_size);
        json_object_set_new(res, "nextCursor", json_string(cur));
    }
    json_decref(all);
    return res;
}

static void do_tools_list(req *r) {
    long start = page_start(r);
    if (start < 0)
        return;
    const json_t *defs = cx_tools_definitions();
    if (!defs) {
        reply_error(r, CX_RPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    reply(r, paginate(r->m, json_deep_copy(json_object_get(defs, "tools")), start, "tools"),
          CACHE_STATIC);
}

/* ---- tools/call ------------------------------------------------------------ */

static int progress_cb(void *ud, size_t done, size_t total) {
    req *r = ud;
    if (current_cancelled(r->m) || atomic_load(&r->m->aborting))
        return 1;
    if (r->progress_token && (done == total || done % 50 == 0)) {
        char msg[64];
        snprintf(msg, sizeof msg, "%zu of %zu", done, total);
        json_t *p = json_pack("{s:O, s:I, s:I, s:s}", "progressToken", r->progress_token,
                              "progress", (json_int_t)done, "total", (json_int_t)total,
                              "message", msg);
        send_msg(r->m, cx_rpc_notification("notifications/progress", p));
    }
    return 0;
}

static json_t *tool_error_result(const char *message) {
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", message,
                     "isError", 1);
}

/* Gives a large answer's memory back; keeps a small one for the next. */
static void buf_recycle(cx_buf *b) {
    if (b->alloc > (64u << 10))
        cx_buf_free(b);
    else
        cx_buf_reset(b);
}

/* A tool's answer from its result encoded once: the result's text is both
 * the text block an agent reads (as a JSON string) and structuredContent
 * (as it is), the same line send_msg() would write for {"content":[{"type":
 * "text","text":text}],"structuredContent":…,"isError":false}, without
 * building that object and encoding the result a second time. The result
 * is written by cx_rpc_dump (json_dumps when it holds reals). False
 * (nothing sent) where reply() adds members (the stateless era), inside a
 * batch, past the message limit or out of memory: then the caller takes
 * the general path. Only the worker serves tools/call (never the reader's
 * quick path), so the two buffers kept in m are used by one thread. */
static bool reply_tool_result(req *r, json_t *out) {
    cx_mcp *m = r->m;
    if (r->stateless || m->batch)
        return false;
    cx_buf *t = &m->tool_text, *b = &m->tool_line;
    char *dumped = NULL;
    const char *text = NULL;
    size_t n = 0;
    int rc = 0;
    if (cx_rpc_dump(t, out) == 0) {
        text = t->data;
        n = t->len;
    } else {
        cx_error_clear();
        if ((dumped = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6)))) {
            text = dumped;
            n = strlen(dumped);
        } else {
            rc = CX_ENOMEM;
        }
    }
    if (rc == 0)
        rc = cx_buf_adds(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    if (rc == 0)
        rc = cx_rpc_dump(b, r->id ? r->id : json_null());
    if (rc == 0)
        rc = cx_buf_adds(b, ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
    if (rc == 0)
        rc = cx_buf_add_json_str(b, text, n);
    if (rc == 0)
        rc = cx_buf_adds(b, "}],\"structuredContent\":");
    if (rc == 0)
        rc = cx_buf_add(b, text, n);
    if (rc == 0)
        rc = cx_buf_adds(b, ",\"isError\":false}}");
    if (rc == 0)
        m->cfg.write(m->cfg.write_ud, b->data, b->len);
    else
        cx_error_clear(); /* the general path reports a size or memory failure */
    free(dumped);
    buf_recycle(t);
    buf_recycle(b);
    return rc == 0;
}

static void do_tools_call(req *r) {
    cx_mcp *m = r->m;
    const char *name = json_string_value(json_object_get(r->params, "name"));
    if (!name) {
        reply_error(r, CX_RPC_INVALID_PARAMS, "tools/call needs params.name (a string)", NULL);
        return;
    }
    const json_t *def = cx_tools_find(name);
    if (!def) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown tool '%.64s'; call tools/list for the tools", name);
        reply_error(r, CX_RPC_INVALID_PARAMS, msg, NULL);
        return;
    }
    json_t *args = json_object_get(r->params, "arguments");
    json_t *empty = NULL;
    if (!args || json_is_null(args))
        args = empty = json_object();
    if (!json_is_object(args)) {
        reply_error(r, CX_RPC_INVALID_PARAMS, "params.arguments must be an object", NULL);
        return;
    }
    cx_error_clear();
    if (cx_schema_validate(json_object_get(def, "inputSchema"), args) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "invalid arguments for %s: %s", name, cx_error_last());
        reply(r, tool_error_result(msg), NOT_CACHEABLE);
        json_decref(empty);
        return;
    }
    cx_tool_call call = {
        .agent = m->client_name ? m->client_name : "mcp-client",
        .protocol_version = r->stateless ? STATELESS_VERSION : m->version,
        .progress = progress_cb,
        .progress_ud = r,
    };
    json_t *out = NULL;
    cx_session *sess = get_session(m);
    int rc = sess ? 0 : cx_error_code();
    if (sess) {
        store_take(m);
        rc = cx_tools_run(name, args, sess, &call, &out);
        store_done(m);
    } else if (rc == 0) {
        rc = CX_EIO;
    }
    json_decref(empty);
    if (rc == CX_ECANCELED || current_cancelled(m) || atomic_load(&m->aborting)) {
        json_decref(out);
        return; /* a cancelled request is not answered */
    }
    if (rc != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s failed: %s", name, cx_error_last());
        reply(r, tool_error_result(msg), NOT_CACHEABLE);
        return;
    }
    if (reply_tool_result(r, out)) {
        json_decref(out);
        return;
    }
    char *text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_t *res = json_pack("{s:[{s:s, s:s}], s:o, s:b}", "content", "type", "text", "text",
                            text ? text : "{}", "structuredContent", out, "isError", 0);
    free(text);
    reply(r, res, NOT_CACHEABLE);
}

/* ---- resources ------------------------------------------------------------ */

static void do_resources_list(req *r) {
    long start = page_start(r);
    if (start < 0)
        return;
    cx_store *s = get_store(r->m);
    json_t *all = NULL;
    int rc = CX_EIO;
    if (s) {
        store_take(r->m);
        rc = cx_resources_list(s, 200, &all);
        store_done(r->m);
    }
    if (rc != 0) {
        reply_error(r, CX_RPC_INTERNAL_ERROR, cx_error_last(), NULL);
        return;
    }
    reply(r, paginate(r->m, all, start, "resources"), CACHE_MEMORY);
}

static void do_templates_list(req *r) {
    long start = page_start(r);
    if (start < 0)
        return;
    reply(r, paginate(r->m, cx_resources_templates(), start, "resourceTemplates"), CACHE_STATIC);
}

static void do_resources_read(req *r) {
    const char *uri = json_string_value(json_object_get(r->params, "uri"));
    if (!uri) {
        reply_error(r, CX_RPC_INVALID_PARAMS, "resources/read needs params.uri (a string)", NULL);
        return;
    }
    cx_store *s = get_store(r->m);
    json_t *out = NULL;
    int rc = cx_error_code();
    if (s) {
        store_take(r->m);
        rc = cx_resources_read(s, uri, &out);
        store_done(r->m);
    }
    if (rc == CX_ENOTFOUND || rc == CX_EINVAL) {
        /* -32002 in the handshake era; the stateless era uses invalid params */
        reply_error(r, r->stateless ? CX_RPC_INVALID_PARAMS : ERR_RESOURCE_NOT_FOUND,
                    cx_error_last(), json_pack("{s:s}", "uri", uri));
        return;
    }
    if (rc != 0) {
        reply_error(r, CX_RPC_INTERNAL_ERROR, cx_error_last(), NULL);
        return;
    }
    reply(r, out, CACHE_MEMORY);
}

static void do_set_level(req *r) {
    const char *lv = json_string_value(json_object_get(r->params, "level"));
    int level = cx_log_level_parse(lv);
    if (level < 0) {
        reply_error(r, CX_RPC_INVALID_PARAMS,
                    "level must be one of: debug, info, notice, warning, error, critical, alert, "
                    "emergency",
                    NULL);
        return;
    }
    r->m->client_log_level = level;
    cx_log_set_sink_level((cx_log_level)level);
    reply(r, json_object(), NOT_CACHEABLE);
    cx_log(CX_LOG_DEBUG, "log level for this client set to %s", lv);
}

/* ---- dispatch ----------------------------------------------------------- */

typedef struct method {
    const char *name;
    void (*fn)(req *r);
    bool handshake_only; /* gone in the stateless era */
} method;

static void do_ping(req *r) { reply(r, json_object(), NOT_CACHEABLE); }

static const method methods[] = {
    {"initialize", do_initialize, false},
    {"server/discover", do_discover, false},
    {"ping", do_ping, true},
    {"tools/list", do_tools_list, false},
    {"tools/call", do_tools_call, false},
    {"resources/list", do_resources_list, false},
    {"resources/templates/list", do_templates_list, false},
    {"resources/read", do_resources_read, false},
    {"logging/setLevel", do_set_level, true},
};

static void handle_request(cx_mcp *m, cx_rpc_msg *msg) {
    req r = {.m = m, .id = msg->id, .params = msg->params};
    json_t *empty = NULL;
    if (!r.params || json_is_null(r.params))
        r.params = empty = json_object();
    if (!json_is_object(r.params)) {
        reply_error(&r, CX_RPC_INVALID_PARAMS, "params must be an object", NULL);
        goto out;
    }
    json_t *meta = json_object_get(r.params, "_meta");
    json_t *mv = json_object_get(meta, META_VERSION);
    if (mv && strcmp(msg->method, "initialize") != 0) {
        const char *v = json_string_value(mv);
        if (!v || strcmp(v, STATELESS_VERSION) != 0) {
            json_t *data = json_pack("{s:o, s:O}", "supported", supported_versions(), "requested",
                                     mv);
            reply_error(&r, ERR_UNSUPPORTED_VERSION, "unsupported protocol version", data);
            goto out;
        }
        r.stateless = true;
        if (!m->client_name)
            set_client_name(m, json_object_get(meta, META_CLIENT_INFO));
    }
    r.progress_token = json_object_get(meta, "progressToken");
    if (r.progress_token && !json_is_string(r.progress_token) && !json_is_integer(r.progress_token))
        r.progress_token = NULL;

    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        if (strcmp(methods[i].name, msg->method) != 0)
            continue;
        if (methods[i].handshake_only && r.stateless)
            break;
        if (begin_request(m, r.id)) { /* cancelled while queued */
            end_request(m);
            goto out;
        }
        methods[i].fn(&r);
        end_request(m);
        goto out;
    }
    char text[200];
    snprintf(text, sizeof text, "method not found: %.100s", msg->method);
    reply_error(&r, CX_RPC_METHOD_NOT_FOUND, text, NULL);
out:
    json_decref(empty);
}

static void handle_notification(cx_mcp *m, cx_rpc_msg *msg) {
    if (strcmp(msg->method, "notifications/cancelled") == 0)
        apply_cancel(m, msg->params);
    /* notifications/initialized and anything else: nothing to do, never answered */
}

void cx_mcp_handle_oversize(cx_mcp *m, size_t len) {
    char text[160];
    snprintf(text, sizeof text, "message of %zu bytes is over the 16 MiB limit; it was dropped",
             len);
    send_msg(m, cx_rpc_error(NULL, CX_RPC_INVALID_REQUEST, text, NULL));
}

static void handle_msg(cx_mcp *m, cx_rpc_msg *msg) {
    switch (msg->kind) {
    case CX_RPC_REQUEST:
        handle_request(m, msg);
        break;
    case CX_RPC_NOTIFICATION:
        handle_notification(m, msg);
        break;
    case CX_RPC_RESPONSE:
        break; /* we send no requests; stray answers are ignored */
    case CX_RPC_INVALID:
        send_msg(m, cx_rpc_error(msg->id, msg->err_code, msg->err_msg, NULL));
        break;
    }
}

/* JSON-RPC batches, which only protocol version 2025-03-26 has: every
 * element is handled as a message of its own and the answers go back as one
 * array (none at all when the batch held only notifications). */
static void handle_batch(cx_mcp *m, json_t *arr) {
    if (json_array_size(arr) == 0) {
        send_msg(m, cx_rpc_error(NULL, CX_RPC_INVALID_REQUEST, "an empty batch is not a request",
                                 NULL));
        return;
    }
    m->batch = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        cx_rpc_msg msg;
        if (json_is_object(e) && json_is_string(json_object_get(e, "method")) &&
            strcmp(json_string_value(json_object_get(e, "method")), "initialize") == 0) {
            send_msg(m, cx_rpc_error(json_object_get(e, "id"), CX_RPC_INVALID_REQUEST,
                                     "initialize cannot be part of a batch", NULL));
            continue;
        }
        cx_rpc_classify(json_incref(e), &msg);
        handle_msg(m, &msg);
        cx_rpc_msg_clear(&msg);
    }
    json_t *answers = m->batch;
    m->batch = NULL;
    if (json_array_size(answers) > 0)
        send_msg(m, answers);
    else
        json_decref(answers);
}

/* What cx_mcp_handle_quick() serves: no store, no workspace, a few
 * microseconds of JSON. */
static bool quick_method(const char *name, bool request) {
    if (!request)
        return strcmp(name, "notifications/initialized") == 0;
    return strcmp(name, "initialize") == 0 || strcmp(name, "ping") == 0 ||
           strcmp(name, "server/discover") == 0;
}

#define QUICK_MAX_LINE 4096 /* an initialize with a long clientInfo fits */

bool cx_mcp_handle_quick(cx_mcp *m, const char *line, size_t len) {
    /* Cheap filter first: only short lines that name a quick method are
     * parsed, so that a tools/call is not parsed twice. */
    if (len > QUICK_MAX_LINE ||
        !(memmem(line, len, "\"initialize\"", 12) || memmem(line, len, "\"ping\"", 6) ||
          memmem(line, len, "\"server/discover\"", 17) ||
          memmem(line, len, "\"notifications/initialized\"", 27)))
        return false;
    cx_rpc_msg msg;
    const char *why = NULL;
    if (cx_rpc_parse(line, len, CX_MCP_MAX_DEPTH, &msg, &why) != 0)
        return false; /* the worker answers the parse error, in order */
    bool quick = json_is_object(msg.root) &&
                 (msg.kind == CX_RPC_REQUEST || msg.kind == CX_RPC_NOTIFICATION) &&
                 quick_method(msg.method, msg.kind == CX_RPC_REQUEST);
    if (quick)
        handle_msg(m, &msg);
    cx_rpc_msg_clear(&msg);
    return quick;
}

void cx_mcp_handle_line(cx_mcp *m, const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > CX_MCP_MAX_MESSAGE) {
        cx_mcp_handle_oversize(m, len);
        return;
    }
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return; /* blank lines are not messages */
    cx_rpc_msg msg;
    const char *why = NULL;
    if (cx_rpc_parse(line, len, CX_MCP_MAX_DEPTH, &msg, &why) != 0) {
        char text[160];
        snprintf(text, sizeof text, "%s%s", why,
                 strstr(why, "deep") ? " (the limit is 64 levels)" : "");
        send_msg(m, cx_rpc_error(NULL, CX_RPC_PARSE_ERROR, text, NULL));
        return;
    }
    if (json_is_array(msg.root) && m->handshake && strcmp(m->version, "2025-03-26") == 0)
        handle_batch(m, msg.root);
    else
        handle_msg(m, &msg);
    cx_rpc_msg_clear(&msg);
}
