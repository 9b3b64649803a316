/* SPDX-License-Identifier: Apache-2.0 */
/* The store's side of sync (see replica.h), on the store's internal
 * helpers: cached prepared statements and the write-transaction runner that
 * reruns a whole transaction on SQLITE_BUSY (so every tx function here must
 * be safe to run again from the start). */
#include "sync/replica.h"

#include "store/store-internal.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_OVERHEAD 64 /* bytes of JSON around a payload in a push body */
#define K_CURSOR "sync.cursor"
#define K_LAST_PUSH "sync.last_push"
#define K_LAST_PULL "sync.last_pull"
#define K_LAST_ERROR "sync.last_error"
#define K_UPSTREAM "sync.upstream"

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* ---- kv ---------------------------------------------------------------- */

static const char SQL_KV_GET[] = "SELECT value FROM kv WHERE key = ?1";
static const char SQL_KV_SET[] =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2";
static const char SQL_KV_DEL[] = "DELETE FROM kv WHERE key = ?1";

static int kv_get(cx_store *s, const char *key, char **value) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_KV_GET, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = strdup((const char *)sqlite3_column_text(st, 0));
        r = *value ? 0 : CX_ENOMEM;
    } else if (rc == SQLITE_DONE) {
        r = CX_ENOTFOUND;
    } else {
        r = cx_store_sqlerr(s, rc, "reading sync state");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* Inside a write transaction. */
static int kv_put(cx_store *s, const char *key, const char *value) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, value ? SQL_KV_SET : SQL_KV_DEL, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    r = cx_store_exec_stmt(s, st, "writing sync state");
    sqlite3_clear_bindings(st);
    return r;
}

static int kv_put_int(cx_store *s, const char *key, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return kv_put(s, key, b);
}

int cx_replica_kv_get(cx_store *s, const char *key, char **value) {
    return kv_get(s, key, value);
}

typedef struct kv_ctx {
    const char *key, *value;
} kv_ctx;

static int kv_tx(cx_store *s, void *ud) {
    kv_ctx *c = ud;
    return kv_put(s, c->key, c->value);
}

int cx_replica_kv_set(cx_store *s, const char *key, const char *value) {
    kv_ctx c = {key, value};
    return cx_store_write(s, kv_tx, &c);
}

static int64_t kv_int(cx_store *s, const char *key, int64_t def) {
    char *v = NULL;
    if (kv_get(s, key, &v))
        return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    bool bad = *end != '\0';
    free(v);
    return bad ? def : (int64_t)x;
}

int cx_replica_cursor(cx_store *s, int64_t *out) {
    char *v = NULL;
    int r = kv_get(s, K_CURSOR, &v);
    if (r == CX_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    if (r)
        return r;
    char *end;
    long long x = strtoll(v, &end, 10);
    *out = (*end || x < 0) ? 0 : (int64_t)x;
    free(v);
    return 0;
}

static int bind_tx(cx_store *s, void *ud) {
    const char *url = ud;
    char *cur = NULL;
    int r = kv_get(s, K_UPSTREAM, &cur);
    if (r && r != CX_ENOTFOUND)
        return r;
    bool same = cur && strcmp(cur, url) == 0;
    free(cur);
    if (same)
        return 0;
    if ((r = kv_put(s, K_UPSTREAM, url)))
        return r;
    return kv_put(s, K_CURSOR, "0");
}

int cx_replica_bind_upstream(cx_store *s, const char *url) {
    return cx_store_write(s, bind_tx, (void *)url);
}

/* ---- push -------------------------------------------------------------- */

static const char SQL_BATCH[] =
    "SELECT op_id, op, item_id, payload FROM outbox WHERE rejected_reason IS NULL"
    " ORDER BY seq LIMIT ?1";

/* The protocol op for an outbox row, or NULL when the payload is unusable. */
static json_t *make_op(const char *op_id, const char *op, const char *payload) {
    json_t *p = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    json_t *o = NULL;
    if (!json_is_object(p))
        goto out;
    if (strcmp(op, "item.put") == 0) {
        o = json_pack("{s:s, s:s, s:O}", "op_id", op_id, "op", op, "item", p);
    } else if (strcmp(op, "artifact.version") == 0) {
        json_t *it = json_object_get(p, "item"), *v = json_object_get(p, "version");
        if (json_is_object(it) && json_is_object(v))
            o = json_pack("{s:s, s:s, s:O, s:O}", "op_id", op_id, "op", op, "item", it, "version",
                          v);
    } else if (strcmp(op, "review.decision") == 0) {
        json_t *it = json_object_get(p, "item"), *rv = json_object_get(p, "review");
        if (json_is_object(it) && json_is_object(rv))
            o = json_pack("{s:s, s:s, s:O, s:O}", "op_id", op_id, "op", op, "item", it, "review",
                          rv);
    }
out:
    json_decref(p);
    return o;
}

int cx_replica_batch(cx_store *s, size_t max_ops, size_t max_bytes, json_t **ops_out,
                     json_t **blobs_out) {
    sqlite3_stmt *st;
    json_t *ops = json_array(), *blobs = json_array(), *bad = json_array();
    size_t bytes = 0;
    int r = 0, rc;
    if (!ops || !blobs || !bad) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_BATCH, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max_ops);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *op_id = (const char *)sqlite3_column_text(st, 0);
        const char *op = (const char *)sqlite3_column_text(st, 1);
        const char *payload = (const char *)sqlite3_column_text(st, 3);
        size_t len = (size_t)sqlite3_column_bytes(st, 3) + OP_OVERHEAD;
        if (json_array_size(ops) > 0 && bytes + len > max_bytes)
            break;
        json_t *o = make_op(op_id, op, payload);
        if (!o) {
            json_array_append_new(bad, json_pack("{s:s}", "op_id", op_id));
            continue;
        }
        bytes += len;
        json_array_append_new(ops, o);
        const char *sha = str(json_object_get(o, "version"), "sha256");
        if (sha)
            json_array_append_new(blobs, json_string(sha));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading the outbox");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r == 0 && json_array_size(bad) > 0)
        r = cx_replica_reject(s, bad, "local: the outbox payload is not a valid op");
out:
    json_decref(bad);
    if (r) {
        json_decref(ops);
        json_decref(blobs);
        return r;
    }
    *ops_out = ops;
    *blobs_out = blobs;
    return 0;
}

static const char SQL_DEL_OP[] = "DELETE FROM outbox WHERE op_id = ?1 RETURNING item_id";
static const char SQL_SET_SEQ[] =
    "UPDATE items SET server_seq = max(coalesce(server_seq, 0), ?2), sync_rejected = NULL"
    " WHERE id = ?1";
static const char SQL_REJ_OP[] =
    "UPDATE outbox SET rejected_reason = ?2, attempts = attempts + 1 WHERE op_id = ?1"
    " RETURNING item_id";
static const char SQL_REJ_ITEM[] = "UPDATE items SET sync_rejected = ?2 WHERE id = ?1";
static const char SQL_FAIL_OP[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE op_id = ?1";

/* Runs a one-row-returning statement keyed by op_id, copying the item id. */
static int op_step(cx_store *s, const char *sql, const char *op_id, const char *text,
                   char item[CX_STORE_MAX_ID + 1], const char *what) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    item[0] = '\0';
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        snprintf(item, CX_STORE_MAX_ID + 1, "%s", id ? id : "");
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int item_update(cx_store *s, const char *sql, const char *id, sqlite3_int64 seq,
                       const char *text) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, seq);
    r = cx_store_exec_stmt(s, st, "updating an item's sync state");
    sqlite3_clear_bindings(st);
    return r;
}

typedef struct ack_ctx {
    const json_t *ops, *results;
    const char *error;  /* fail: last_error; reject: reason */
    bool reject;
    size_t acked, rejected;
} ack_ctx;

static const json_t *result_for(const json_t *results, const char *op_id, size_t hint) {
    const json_t *r = json_array_get(results, hint);
    if (r && str(r, "op_id") && strcmp(str(r, "op_id"), op_id) == 0)
        return r;
    size_t i;
    json_array_foreach(results, i, r)
        if (str(r, "op_id") && strcmp(str(r, "op_id"), op_id) == 0)
            return r;
    return NULL;
}

static int ack_tx(cx_store *s, void *ud) {
    ack_ctx *c = ud;
    char item[CX_STORE_MAX_ID + 1];
    size_t i;
    const json_t *op;
    int r = 0;
    c->acked = c->rejected = 0;
    char now[32];
    snprintf(now, sizeof now, "%llu", (unsigned long long)cx_clock_now_ms());
    json_array_foreach(c->ops, i, op) {
        const char *op_id = str(op, "op_id");
        if (!op_id)
            continue;
        const json_t *res = c->results ? result_for(c->results, op_id, i) : NULL;
        const char *status = str(res, "status");
        if (status && (strcmp(status, "applied") == 0 || strcmp(status, "duplicate") == 0)) {
            if ((r = op_step(s, SQL_DEL_OP, op_id, NULL, item, "acknowledging an op")))
                return r;
            json_int_t seq = json_integer_value(json_object_get(res, "seq"));
            if (item[0] && seq > 0 &&
                (r = item_update(s, SQL_SET_SEQ, item, (sqlite3_int64)seq, NULL)))
                return r;
            c->acked++;
        } else if ((status && strcmp(status, "rejected") == 0) || c->reject) {
            const char *why = c->reject ? c->error : str(res, "reason");
            if (!why)
                why = "rejected";
            if ((r = op_step(s, SQL_REJ_OP, op_id, why, item, "recording a rejection")))
                return r;
            if (item[0] && (r = item_update(s, SQL_REJ_ITEM, item, 0, why)))
                return r;
            c->rejected++;
        } else {
            const char *why = c->error ? c->error : "no result for this op";
            if ((r = op_step(s, SQL_FAIL_OP, op_id, why, item, "recording an attempt")))
                return r;
        }
    }
    if (c->results && (r = kv_put(s, K_LAST_PUSH, now)))
        return r;
    if (c->results)
        r = kv_put(s, K_LAST_ERROR, NULL);
    else if (c->error && !c->reject)
        r = kv_put(s, K_LAST_ERROR, c->error);
    return r;
}

int cx_replica_ack(cx_store *s, const json_t *ops, const json_t *results, size_t *acked,
                   size_t *rejected) {
    ack_ctx c = {.ops = ops, .results = results};
    int r = cx_store_write(s, ack_tx, &c);
    if (r == 0 && acked)
        *acked = c.acked;
    if (r == 0 && rejected)
        *rejected = c.rejected;
    return r;
}

int cx_replica_fail(cx_store *s, const json_t *ops, const char *error) {
    ack_ctx c = {.ops = ops, .error = error ? error : "failed"};
    return cx_store_write(s, ack_tx, &c);
}

int cx_replica_reject(cx_store *s, const json_t *ops, const char *reason) {
    ack_ctx c = {.ops = ops, .error = reason, .reject = true};
    return cx_store_write(s, ack_tx, &c);
}

/* ---- pull -------------------------------------------------------------- */

static const char SQL_LOCAL[] = "SELECT kind FROM items WHERE id = ?1";
static const char SQL_PENDING[] =
    "SELECT 1 FROM outbox WHERE item_id = ?1 AND rejected_reason IS NULL LIMIT 1";
static const char SQL_EXISTS[] = "SELECT 1 FROM items WHERE id = ?1";
static const char SQL_INSERT[] =
    "INSERT OR IGNORE INTO items (id, kind, status, subcortex, title, body, tags, files, evidence,"
    " author, agent, created_at, updated_at, server_seq, visibility, parent_id, review,"
    " provenance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'shared',"
    " ?15, ?16, ?17)";
static const char SQL_UPDATE[] =
    "UPDATE items SET kind = ?2, status = ?3, subcortex = ?4, title = ?5, body = ?6, tags = ?7,"
    " files = ?8, evidence = ?9, author = ?10, agent = ?11, created_at = ?12, updated_at = ?13,"
    " server_seq = ?14, parent_id = ?15, review = ?16, provenance = ?17, sync_rejected = NULL"
    " WHERE id = ?1";
static const char SQL_DECIDE[] =
    "UPDATE items SET kind = ?2, status = ?3, review = ?16, updated_at = ?13 WHERE id = ?1";
static const char SQL_TOMB_1[] = "UPDATE items SET parent_id = NULL WHERE parent_id = ?1";
static const char SQL_TOMB_2[] = "DELETE FROM reviews WHERE item_id = ?1";
static const char SQL_TOMB_3[] = "DELETE FROM artifact_versions WHERE artifact_id = ?1";
static const char SQL_TOMB_4[] = "DELETE FROM items WHERE id = ?1";

/* 1 when the one-parameter query returns a row (its first column as text
 * into out when given), 0 when not, or a negative code. */
static int probe(cx_store *s, const char *sql, const char *id, char *out, size_t cap) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (out)
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        r = 1;
    } else if (rc == SQLITE_DONE) {
        r = 0;
    } else {
        r = cx_store_sqlerr(s, rc, "reading an item");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int exec_id(cx_store *s, const char *sql, const char *id) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    r = cx_store_exec_stmt(s, st, "applying a tombstone");
    sqlite3_clear_bindings(st);
    return r;
}

static int64_t time_ms(const json_t *it, const char *k, uint64_t def) {
    uint64_t ms;
    const char *v = str(it, k);
    return (v && cx_clock_parse(v, &ms) == 0) ? (int64_t)ms : (int64_t)def;
}

static char *arr_text(const json_t *it, const char *k) {
    const json_t *a = json_object_get(it, k);
    return json_is_array(a) ? json_dumps(a, JSON_COMPACT) : strdup("[]");
}

static bool known(const char *v, const char *const *set) {
    for (; v && *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

static const char *const KINDS[] = {"observation", "draft", "thread", "comment",
                                    "artifact", "subcortex", NULL};

static int apply_item(cx_store *s, const json_t *it, int64_t seq, size_t *applied) {
    const char *id = str(it, "id"), *kind = str(it, "kind"), *status = str(it, "status");
    if (!id || !cx_ulid_valid(id) || !known(kind, KINDS) || !status || strlen(status) > 64)
        return 0; /* not something this cache can hold; the core is newer */
    const char *vis = str(it, "visibility");
    if (vis && strcmp(vis, "shared") != 0)
        return 0;
    char local_kind[32] = "";
    int has = probe(s, SQL_LOCAL, id, local_kind, sizeof local_kind);
    if (has < 0)
        return has;
    int pending = has ? probe(s, SQL_PENDING, id, NULL, 0) : 0;
    if (pending < 0)
        return pending;
    const json_t *rv = json_object_get(it, "review");
    const char *sql;
    if (!has)
        sql = SQL_INSERT;
    else if (!pending)
        sql = SQL_UPDATE;
    else if (json_is_object(rv) && strcmp(local_kind, "draft") == 0 &&
             (strcmp(kind, "thread") == 0 || strcmp(kind, "draft") == 0))
        sql = SQL_DECIDE; /* the reviewer's decision wins; local text stays */
    else
        return 0; /* local unpushed work wins until it is pushed */

    const char *parent = str(it, "parent_id");
    if (parent) {
        int p = probe(s, SQL_EXISTS, parent, NULL, 0);
        if (p < 0)
            return p;
        if (p == 0)
            parent = NULL;
    }
    const json_t *prov = json_object_get(it, "provenance");
    char *tags = arr_text(it, "tags"), *files = arr_text(it, "files");
    char *evidence = arr_text(it, "evidence");
    char *review = json_is_object(rv) ? json_dumps(rv, JSON_COMPACT) : NULL;
    char *provenance = json_is_object(prov) ? json_dumps(prov, JSON_COMPACT) : NULL;
    uint64_t now = cx_clock_now_ms();
    sqlite3_stmt *st = NULL;
    int r = 0;
    if (!tags || !files || !evidence) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_store_prepare(s, sql, &st)))
        goto out;
    const char *sub = str(it, "subcortex");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    if (sql != SQL_DECIDE) {
        sqlite3_bind_text(st, 4, sub && *sub ? sub : CX_STORE_DEFAULT_SUBCORTEX, -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(st, 5, str(it, "title") ? str(it, "title") : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, str(it, "body") ? str(it, "body") : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, tags, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, files, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, evidence, -1, SQLITE_STATIC);
        cx_store_bind_text(st, 10, str(it, "author"));
        cx_store_bind_text(st, 11, str(it, "agent"));
        sqlite3_bind_int64(st, 12, time_ms(it, "created_at", now));
        sqlite3_bind_int64(st, 14, (sqlite3_int64)seq);
        cx_store_bind_text(st, 15, parent);
        cx_store_bind_text(st, 17, provenance);
    }
    sqlite3_bind_int64(st, 13, time_ms(it, "updated_at", now));
    cx_store_bind_text(st, 16, review);
    if ((r = cx_store_exec_stmt(s, st, "applying a pulled item")) == 0 && applied)
        (*applied)++;
    sqlite3_clear_bindings(st);
out:
    free(tags);
    free(files);
    free(evidence);
    free(review);
    free(provenance);
    return r;
}

static int apply_tombstone(cx_store *s, const char *id, size_t *applied) {
    if (!id || !cx_ulid_valid(id))
        return 0;
    int pending = probe(s, SQL_PENDING, id, NULL, 0);
    if (pending != 0)
        return pending < 0 ? pending : 0;
    int r;
    if ((r = exec_id(s, SQL_TOMB_1, id)) || (r = exec_id(s, SQL_TOMB_2, id)) ||
        (r = exec_id(s, SQL_TOMB_3, id)) || (r = exec_id(s, SQL_TOMB_4, id)))
        return r;
    if (applied)
        (*applied)++;
    return 0;
}

typedef struct apply_ctx {
    const json_t *changes;
    int64_t next;
    size_t applied;
} apply_ctx;

static int apply_tx(cx_store *s, void *ud) {
    apply_ctx *c = ud;
    size_t i;
    const json_t *ch;
    int r = 0;
    c->applied = 0;
    json_array_foreach(c->changes, i, ch) {
        int64_t seq = (int64_t)json_integer_value(json_object_get(ch, "seq"));
        if (json_is_true(json_object_get(ch, "deleted")))
            r = apply_tombstone(s, str(ch, "id"), &c->applied);
        else
            r = apply_item(s, json_object_get(ch, "item"), seq, &c->applied);
        if (r)
            return r;
    }
    if ((r = kv_put_int(s, K_CURSOR, c->next)))
        return r;
    if ((r = kv_put_int(s, K_LAST_PULL, (int64_t)cx_clock_now_ms())))
        return r;
    return kv_put(s, K_LAST_ERROR, NULL);
}

int cx_replica_apply(cx_store *s, const json_t *page, int64_t *next, bool *more, size_t *applied) {
    const json_t *changes = json_object_get(page, "changes");
    const json_t *jn = json_object_get(page, "next"), *jm = json_object_get(page, "more");
    if (!json_is_object(page) || !json_is_array(changes) || !json_is_integer(jn) ||
        json_integer_value(jn) < 0 || !json_is_boolean(jm))
        return cx_error_set(CX_EINVAL, "the pull page is not {\"changes\": [...], \"next\": N, "
                                       "\"more\": bool}");
    size_t i;
    const json_t *ch;
    json_array_foreach(changes, i, ch) {
        json_int_t seq = json_integer_value(json_object_get(ch, "seq"));
        if (!json_is_object(ch) || !json_is_integer(json_object_get(ch, "seq")) || seq < 1 ||
            seq > json_integer_value(jn) ||
            !(json_is_object(json_object_get(ch, "item")) ||
              (json_is_true(json_object_get(ch, "deleted")) && str(ch, "id"))))
            return cx_error_set(CX_EINVAL, "pull page: changes[%zu] is not {seq, item} or "
                                           "{seq, id, deleted} with seq <= next", i);
    }
    apply_ctx c = {.changes = changes, .next = (int64_t)json_integer_value(jn)};
    int r = cx_store_write(s, apply_tx, &c);
    if (r)
        return r;
    if (next)
        *next = c.next;
    if (more)
        *more = json_is_true(jm);
    if (applied)
        *applied = c.applied;
    return 0;
}

#define DROP_SET                                                                        \
    "(SELECT id FROM items WHERE server_seq IS NOT NULL AND kind != 'artifact'"         \
    " AND id NOT IN (SELECT item_id FROM outbox))"
static const char SQL_RB_1[] = "UPDATE items SET parent_id = NULL WHERE parent_id IN " DROP_SET;
static const char SQL_RB_2[] = "DELETE FROM reviews WHERE item_id IN " DROP_SET;
static const char SQL_RB_3[] = "DELETE FROM items WHERE id IN " DROP_SET;

static int exec_plain(cx_store *s, const char *sql) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    return r ? r : cx_store_exec_stmt(s, st, "rebuilding the cache");
}

static int rebuild_tx(cx_store *s, void *ud) {
    int r;
    if ((r = exec_plain(s, SQL_RB_1)) || (r = exec_plain(s, SQL_RB_2)) ||
        (r = exec_plain(s, SQL_RB_3)))
        return r;
    return kv_put(s, K_CURSOR, "0");
}

int cx_replica_rebuild(cx_store *s) {
    return cx_store_write(s, rebuild_tx, NULL);
}

/* ---- state ------------------------------------------------------------- */

static const char SQL_COUNTS[] =
    "SELECT count(*) FILTER (WHERE rejected_reason IS NULL),"
    " count(*) FILTER (WHERE rejected_reason IS NOT NULL) FROM outbox";
static const char SQL_REJECTED[] =
    "SELECT op_id, op, item_id, rejected_reason FROM outbox WHERE rejected_reason IS NOT NULL"
    " ORDER BY seq LIMIT 20";

int cx_replica_state(cx_store *s, json_t **out) {
    sqlite3_stmt *st;
    json_t *o = json_object(), *rej = json_array();
    int r = 0, rc;
    if (!o || !rej) {
        r = CX_ENOMEM;
        goto out;
    }
    int64_t cursor = 0;
    if ((r = cx_replica_cursor(s, &cursor)))
        goto out;
    json_object_set_new(o, "cursor", json_integer(cursor));
    if ((r = cx_store_prepare(s, SQL_COUNTS, &st)))
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_object_set_new(o, "backlog", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "rejected", json_integer(sqlite3_column_int64(st, 1)));
    } else {
        r = cx_store_sqlerr(s, rc, "counting the outbox");
    }
    sqlite3_reset(st);
    if (r)
        goto out;
    if ((r = cx_store_prepare(s, SQL_REJECTED, &st)))
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(rej, json_pack("{s:s, s:s, s:s, s:s}", "op_id",
                                             sqlite3_column_text(st, 0), "op",
                                             sqlite3_column_text(st, 1), "item_id",
                                             sqlite3_column_text(st, 2), "reason",
                                             sqlite3_column_text(st, 3)));
    if (rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading rejected ops");
    sqlite3_reset(st);
    if (r)
        goto out;
    int64_t lp = kv_int(s, K_LAST_PUSH, -1), ll = kv_int(s, K_LAST_PULL, -1);
    json_object_set_new(o, "last_push", lp >= 0 ? json_integer(lp) : json_null());
    json_object_set_new(o, "last_pull", ll >= 0 ? json_integer(ll) : json_null());
    char *err = NULL;
    if (kv_get(s, K_LAST_ERROR, &err) == 0)
        json_object_set_new(o, "last_error", json_string(err));
    else
        json_object_set_new(o, "last_error", json_null());
    free(err);
    json_object_set(o, "rejected_ops", rej);
    *out = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(rej);
    return r;
}

int cx_replica_blob(cx_store *s, const char *sha, char **data, size_t *len) {
    if (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
        return cx_error_set(CX_EINVAL, "bad blob name");
    char sub[80];
    snprintf(sub, sizeof sub, "blobs/%.2s/%s", sha, sha);
    char *path = cx_fs_join(cx_store_dir(s), sub);
    if (!path)
        return CX_ENOMEM;
    int r = cx_fs_read_file(path, CX_STORE_MAX_BLOB, data, len);
    free(path);
    return r;
}
