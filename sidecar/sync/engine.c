/* SPDX-License-Identifier: Apache-2.0 */
/* Push and pull steps (see engine.h). */
#include "sync/engine.h"

#include "proto/wire.h"
#include "store/apply.h"
#include "store/blob.h"
#include "store/kv.h"
#include "store/outbox.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_LIMIT CX_WIRE_DEFAULT_PULL_LIMIT

/* A pull page fits the client's answer cap by construction: the core
 * stops a page before the change that would take it past
 * CX_WIRE_MAX_PAGE_BYTES (only a page's first change may pass that, and
 * then it travels alone), and it never builds a page past
 * CX_WIRE_MAX_ANSWER_BYTES; so a feed of large items arrives in more
 * pages, never in one page too large to read. The pull follows next/more
 * as the core gives them. */
_Static_assert(CX_WIRE_MAX_PAGE_BYTES + CX_WIRE_PAGE_OVERHEAD + CX_WIRE_MAX_PUSH_BYTES <=
                   CX_CLIENT_MAX_ANSWER,
               "a full page, or one item as large as a push alone, must fit the answer cap");
_Static_assert(CX_WIRE_MAX_ANSWER_BYTES <= CX_CLIENT_MAX_ANSWER,
               "the core's largest page must fit the client's answer cap");
#define MAX_MISSING CX_WIRE_MAX_MISSING

static bool transient(long status) {
    return status == 408 || status == 429 || status >= 500;
}

/* Maps an unexpected answer to CX_EIO / CX_EFAIL with a detail. */
static int answer_error(const char *what, const cx_client_answer *a, cx_engine_step *st) {
    st->remote = true;
    return cx_error_set(transient(a->status) ? CX_EIO : CX_EFAIL, "%s: HTTP %ld: %s", what,
                        a->status, cx_client_error_text(a));
}

/* A failure of the transport (the client's CX_E code, detail set). */
static int transport_error(int r, cx_engine_step *st) {
    st->remote = true;
    return r;
}

/* The core answered in a way that cannot make progress (see engine.h). */
__attribute__((format(printf, 2, 3))) static int protocol_error(cx_engine_step *st,
                                                                const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    st->remote = st->protocol = true;
    return cx_error_set(CX_EFAIL, "the core broke the protocol: %s", why);
}

/* Uploads the blobs of the batch that the core lacks. */
static int upload_blobs(cx_store *s, cx_client *c, const json_t *blobs, cx_engine_step *st) {
    json_t *req = json_pack("{s:[]}", "sha256"), *list;
    cx_client_answer a = {0};
    int r = 0;
    if (!req)
        return CX_ENOMEM;
    list = json_object_get(req, "sha256");
    size_t i;
    const json_t *b;
    json_array_foreach(blobs, i, b) {
        bool dup = false;
        for (size_t k = 0; k < json_array_size(list) && !dup; k++)
            dup = json_equal(json_array_get(list, k), b);
        if (!dup && json_array_size(list) < MAX_MISSING)
            json_array_append(list, (json_t *)b);
    }
    if ((r = cx_client_json(c, "POST", CX_ROUTE_BLOBS_MISSING, req, &a))) {
        r = transport_error(r, st);
        goto out;
    }
    st->status = a.status;
    st->retry_after_s = a.retry_after_s;
    const json_t *missing = json_object_get(a.json, "missing");
    if (a.status != 200 || !json_is_array(missing)) {
        r = answer_error("asking which blobs the core lacks", &a, st);
        goto out;
    }
    json_array_foreach(missing, i, b) {
        const char *sha = json_string_value(b);
        char *data = NULL, path[96];
        size_t len = 0;
        bool asked = false; /* only what was asked about: the rest is not ours to read */
        for (size_t k = 0; k < json_array_size(list) && !asked; k++)
            asked = json_equal(json_array_get(list, k), b);
        if (!asked || !cx_wire_sha_valid(sha))
            continue;
        if ((r = cx_blob_read(s, sha, &data, &len)))
            goto out;
        snprintf(path, sizeof path, CX_ROUTE_BLOBS "%s", sha);
        cx_client_answer p = {0};
        r = cx_client_request(c, "PUT", path, data, len, "application/octet-stream", &p);
        free(data);
        if (r)
            r = transport_error(r, st);
        else if (p.status != 200 && p.status != 201) {
            st->status = p.status;
            st->retry_after_s = p.retry_after_s;
            r = answer_error("uploading a blob", &p, st);
        }
        cx_client_answer_clear(&p);
        if (r)
            goto out;
        st->blobs++;
    }
out:
    cx_client_answer_clear(&a);
    json_decref(req);
    return r;
}

long cx_engine_refused_op(const char *message, size_t nops) {
    static const char head[] = "ops[";
    if (!message || strncmp(message, head, sizeof head - 1) != 0)
        return -1;
    const char *p = message + sizeof head - 1;
    size_t n = 0;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != ']'))
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (size_t)(*p - '0');
        if (n >= nops) /* also bounds n before it could overflow */
            return -1;
    }
    return p[0] == ']' && p[1] == '.' ? (long)n : -1;
}

/* Rejects the one op `at` of the batch with `reason` (the rest stay
 * pending for the next batch). */
static int reject_one(cx_store *s, const json_t *ops, size_t at, const char *reason,
                      cx_engine_step *st) {
    json_t *one = json_array();
    if (!one || json_array_append(one, json_array_get(ops, at))) {
        json_decref(one);
        return CX_ENOMEM;
    }
    int r = cx_outbox_reject(s, one, reason);
    json_decref(one);
    if (r)
        return r;
    st->sent = json_array_size(ops);
    st->rejected = 1;
    st->more = true;
    return 0;
}

int cx_engine_push(cx_store *s, cx_client *c, cx_engine_step *st) {
    json_t *ops = NULL, *blobs = NULL, *req = NULL;
    cx_client_answer a = {0};
    size_t max_ops = CX_OUTBOX_MAX_OPS;
    int r;
    *st = (cx_engine_step){0};
again:
    if ((r = cx_outbox_batch(s, max_ops, CX_OUTBOX_MAX_BYTES, &ops, &blobs)))
        return r;
    if (json_array_size(ops) == 0)
        goto out;
    if (json_array_size(blobs) > 0 && (r = upload_blobs(s, c, blobs, st)))
        goto fail;
    if (!(req = json_pack("{s:O}", "ops", ops))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_client_json(c, "POST", CX_ROUTE_PUSH, req, &a))) {
        r = transport_error(r, st);
        goto fail;
    }
    st->status = a.status;
    st->retry_after_s = a.retry_after_s;
    if (a.status == 413) {
        if (json_array_size(ops) > 1) {
            /* smaller batches until one fits */
            max_ops = json_array_size(ops) / 2;
            json_decref(ops), json_decref(blobs), json_decref(req);
            ops = blobs = req = NULL;
            cx_client_answer_clear(&a);
            goto again;
        }
        r = reject_one(s, ops, 0, "local: the core refused this op as too large (413)", st);
        goto out;
    }
    if (a.status == 400) {
        /* The core checks every op before applying any: "ops[N]. …" names
         * the one that breaks item.json, and sending it again will not
         * change the answer. Its message is the reason, cut to a bounded
         * length (it is the core's input to us; JSON strings are UTF-8). */
        const char *why = cx_client_error_text(&a);
        long bad = cx_engine_refused_op(why, json_array_size(ops));
        if (bad >= 0) {
            char reason[CX_APPLY_MAX_REASON];
            size_t n = cx_utf8_cut(why, strlen(why), sizeof reason - 1);
            snprintf(reason, sizeof reason, "%.*s", (int)n, why);
            r = reject_one(s, ops, (size_t)bad, reason, st);
            goto out;
        }
    }
    const json_t *results = json_object_get(a.json, "results");
    if (a.status != 200) {
        r = answer_error("push", &a, st);
        goto fail;
    }
    if (!json_is_array(results)) {
        r = protocol_error(st, "a push answer without \"results\"");
        goto fail;
    }
    st->sent = json_array_size(ops);
    if ((r = cx_outbox_ack(s, ops, results, &st->acked, &st->rejected)))
        goto out;
    st->more = json_array_size(ops) >= max_ops;
    if (st->acked + st->rejected < st->sent) {
        /* ops without a result would be sent again, and again: no progress */
        r = protocol_error(st, "the push answer has a result for %zu of the %zu ops sent",
                           st->acked + st->rejected, st->sent);
        goto fail;
    }
    goto out;
fail:
    if (r != CX_ECANCELED && r != CX_ENOMEM) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cx_error_last());
        if (cx_outbox_fail(s, ops, msg) == 0)
            cx_error_set(r, "%s", msg);
    }
out:
    cx_client_answer_clear(&a);
    json_decref(req);
    json_decref(ops);
    json_decref(blobs);
    return r;
}

/* Blobs fetched per pull step: a step stays bounded (each blob at most
 * CX_WIRE_MAX_BLOB bytes), and the next step fetches more. */
#define FETCH_PER_STEP 8

static int to_blob(void *ud, const void *data, size_t len) {
    return cx_blob_fetch_write(ud, data, len);
}

/* Fetches one blob into the store. 0 when it is kept; CX_EIO/CX_EFAIL with
 * the detail set when it failed (*blame: the core's answer or content was
 * wrong, not the transport). */
static int fetch_one(cx_store *s, cx_client *c, const char *sha, int64_t size, bool *blame) {
    char path[96];
    cx_blob_fetch *f = NULL;
    cx_client_answer a = {0};
    *blame = false;
    int r = cx_blob_fetch_open(s, sha, size, &f);
    if (r)
        return r;
    snprintf(path, sizeof path, CX_ROUTE_BLOBS "%s", sha);
    r = cx_client_download(c, path, to_blob, f, &a);
    if (r == CX_ELIMIT || (r == 0 && a.status == 200)) {
        *blame = true; /* too much content, or what came is checked now */
        if (r == 0)
            r = cx_blob_fetch_commit(s, f);
    } else if (r == 0) {
        *blame = !transient(a.status);
        r = cx_error_set(transient(a.status) ? CX_EIO : CX_EFAIL, "the core answered %ld: %s",
                         a.status, cx_client_error_text(&a));
    }
    cx_client_answer_clear(&a);
    cx_blob_fetch_free(f);
    return r;
}

/* The content of pulled artifact versions that this machine lacks. */
static int fetch_blobs(cx_store *s, cx_client *c, cx_engine_step *st) {
    json_t *missing = NULL;
    int r = cx_blob_missing(s, FETCH_PER_STEP, &missing);
    if (r)
        return r;
    size_t i;
    const json_t *b;
    json_array_foreach(missing, i, b) {
        const char *sha = json_string_value(json_object_get(b, "sha256"));
        int64_t size = (int64_t)json_integer_value(json_object_get(b, "size"));
        bool blame = false;
        cx_error_clear();
        r = fetch_one(s, c, sha, size, &blame);
        if (r == 0) {
            st->fetched++;
            continue;
        }
        if (r == CX_ECANCELED || r == CX_ENOMEM)
            break;
        char why[CX_BLOB_MAX_ERROR];
        snprintf(why, sizeof why, "%s", cx_error_last());
        st->fetch_failed++;
        snprintf(st->last_fetch_error, sizeof st->last_fetch_error, "blob %.64s: %.300s", sha, why);
        char msg[CX_BLOB_MAX_ERROR + 96];
        snprintf(msg, sizeof msg, "fetching the content of an artifact version (blob %s): %s",
                 sha, why);
        /* the transport failed: tried again on the next pull; the core
         * answered or sent wrong: recorded on the blob, retried later */
        if ((blame && (r = cx_blob_fetch_failed(s, sha, why))) ||
            (r = cx_kv_set(s, CX_KV_LAST_ERROR, msg)))
            break;
        if (!blame)
            break;
    }
    json_decref(missing);
    return r == CX_ECANCELED ? r : (r == CX_ENOMEM ? r : 0);
}

int cx_engine_pull(cx_store *s, cx_client *c, cx_engine_step *st) {
    cx_client_answer a = {0};
    int64_t cursor = 0;
    bool rebuilt = false;
    int r;
    *st = (cx_engine_step){0};
again:
    if ((r = cx_kv_cursor(s, &cursor)))
        return r;
    char path[96];
    snprintf(path, sizeof path, CX_ROUTE_PULL "?since=%lld&limit=%d", (long long)cursor,
             PULL_LIMIT);
    if ((r = cx_client_request(c, "GET", path, NULL, 0, NULL, &a))) {
        r = transport_error(r, st);
        goto fail;
    }
    st->status = a.status;
    st->retry_after_s = a.retry_after_s;
    if (a.status == 410 && !rebuilt) {
        cx_client_answer_clear(&a);
        if ((r = cx_apply_rebuild(s)))
            return r;
        rebuilt = true;
        goto again;
    }
    if (a.status != 200) {
        r = answer_error("pull", &a, st);
        goto fail;
    }
    /* Progress: the cursor never moves back, and a page that says there
     * is more must move it forward, or the next pull asks the same again. */
    const json_t *jn = json_object_get(a.json, "next");
    if (json_is_integer(jn) && json_integer_value(jn) < cursor) {
        r = protocol_error(st, "the pull page's next (%lld) is behind the cursor (%lld)",
                           (long long)json_integer_value(jn), (long long)cursor);
        goto fail;
    }
    if (json_is_integer(jn) && json_is_true(json_object_get(a.json, "more")) &&
        json_integer_value(jn) <= cursor) {
        r = protocol_error(st, "the pull page says there is more but its next (%lld) does not "
                               "pass the cursor (%lld)",
                           (long long)json_integer_value(jn), (long long)cursor);
        goto fail;
    }
    cx_apply_result res;
    if ((r = cx_apply_page(s, a.json, &res))) {
        if (r == CX_EINVAL) /* the page's shape (apply.h): the core's fault */
            r = protocol_error(st, "%s", cx_error_last());
        goto fail;
    }
    st->more = res.more;
    st->applied = res.applied;
    st->skipped = res.skipped;
    snprintf(st->last_skip_id, sizeof st->last_skip_id, "%s", res.last_skip_id);
    snprintf(st->last_skip, sizeof st->last_skip, "%s", res.last_skip);
    r = fetch_blobs(s, c, st);
    goto out;
fail:
    if (r != CX_ECANCELED && r != CX_ENOMEM) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cx_error_last());
        if (cx_kv_set(s, CX_KV_LAST_ERROR, msg) == 0)
            cx_error_set(r, "%s", msg);
    }
out:
    cx_client_answer_clear(&a);
    return r;
}

/* Copies a string member of the core's info, "" when absent or not a
 * string or too long to be what it claims. */
static void info_str(const json_t *o, const char *k, char *out, size_t cap) {
    const char *v = json_string_value(json_object_get(o, k));
    out[0] = '\0';
    if (!v || strlen(v) >= cap)
        return;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return;
    snprintf(out, cap, "%s", v);
}

int cx_engine_whoami(cx_client *c, cx_upstream_who *out, long *status) {
    cx_client_answer a = {0};
    *status = 0;
    int r = cx_client_request(c, "GET", CX_ROUTE_INFO, NULL, 0, NULL, &a);
    if (r)
        return r;
    *status = a.status;
    if (a.status != 200 || !json_is_object(a.json)) {
        cx_engine_step st = {0}; /* whoami reports no step: only the error */
        r = a.status == 200 ? cx_error_set(CX_EFAIL, "the core's /v1/info answer is not an object")
                            : answer_error("asking the core who the key is", &a, &st);
        goto out;
    }
    cx_upstream_who w = {0};
    info_str(a.json, "team", w.team, sizeof w.team);
    info_str(a.json, "role", w.role, sizeof w.role);
    info_str(a.json, "principal", w.principal, sizeof w.principal);
    info_str(a.json, "key_id", w.key_id, sizeof w.key_id);
    *out = w;
out:
    cx_client_answer_clear(&a);
    return r;
}

int cx_engine_team_check(cx_store *s, const cx_upstream_who *who) {
    char *bound = NULL;
    if (!who->team[0])
        return 0;
    int r = cx_kv_get(s, CX_KV_TEAM, &bound); /* a read: cheap before every step */
    if (r == CX_ENOTFOUND) {
        bound = NULL;
        r = cx_kv_bind_team(s, who->team, who->key_id, who->principal, &bound);
    } else if (r == 0 && strcmp(bound, who->team) != 0) {
        r = CX_ECONFLICT;
    }
    if (r == CX_ECONFLICT)
        r = cx_error_set(CX_ECONFLICT, "this workspace is bound to team %s, but the key for its "
                         "core is of team %s: nothing was pushed or pulled. Log in with a key of "
                         "team %s (`cortex login`), or move this workspace to team %s "
                         "deliberately with `cortex remote set URL --rebind`",
                         bound, who->team, bound, who->team);
    free(bound);
    return r;
}
