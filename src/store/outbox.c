/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox (see outbox.h): every local change that should reach the
 * core is appended here, in the same transaction as the change itself,
 * with a client op id (a ULID) that the core uses as idempotency key. The
 * sync engine sends rows in `seq` order and removes a row only when the
 * core acknowledged it; a rejected op keeps its row with `rejected_reason`
 * set. Private items never get a row.
 *
 * The write-transaction runner reruns a whole transaction on SQLITE_BUSY,
 * so every tx function here must be safe to run again from the start. */
#include "store/outbox.h"

#include "store/kv.h"
#include "store/store-internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_OVERHEAD 64 /* bytes of JSON around a payload in a push body */

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static const char SQL_PUSH[] =
    "INSERT INTO outbox (op_id, op, item_id, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";

static const char SQL_VISIBILITY[] = "SELECT visibility FROM items WHERE id = ?1";

/* True when this store holds id as a private item. */
static int is_private(cx_store *s, const char *id, bool *out) {
    sqlite3_stmt *st;
    *out = false;
    int r = cx_store_prepare(s, SQL_VISIBILITY, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *vis = (const char *)sqlite3_column_text(st, 0);
        *out = vis && strcmp(vis, "private") == 0;
    } else if (rc != SQLITE_DONE) {
        r = cx_store_sqlerr(s, rc, "reading an item's visibility");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* Makes the item of an op what may leave the machine: the members the core
 * owns (review, server_seq) are not claimed, and the ids of private items
 * are dropped from its evidence, since a private item's id never leaves
 * the machine (the local draft keeps them). */
static int outgoing_item(cx_store *s, json_t *it) {
    if (!json_is_object(it))
        return 0;
    json_object_del(it, "review");
    json_object_del(it, "server_seq");
    json_t *ev = json_object_get(it, "evidence");
    size_t i = 0;
    while (i < json_array_size(ev)) {
        const char *id = json_string_value(json_array_get(ev, i));
        bool priv = false;
        int r = id ? is_private(s, id, &priv) : 0;
        if (r)
            return r;
        if (priv)
            json_array_remove(ev, i);
        else
            i++;
    }
    return 0;
}

int cx_outbox_push_text(cx_store *s, const char *op, const char *item_id, const char *payload,
                        size_t len) {
    char op_id[CX_ULID_LEN + 1];
    sqlite3_stmt *st;
    int r = cx_ulid_new(op_id);
    if (r == 0)
        r = cx_store_prepare(s, SQL_PUSH, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, item_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, payload, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)cx_clock_now_ms());
    r = cx_store_exec_stmt(s, st, "writing the outbox");
    sqlite3_clear_bindings(st);
    return r;
}

int cx_outbox_push(cx_store *s, const char *op, const char *item_id, json_t *payload) {
    /* item.put carries the item; artifact.version and review.decision an
     * "item" member (a review.decision's decision is its "review") */
    int r = outgoing_item(s, strcmp(op, CX_OP_ITEM_PUT) == 0 ? payload
                                                              : json_object_get(payload, "item"));
    if (r)
        return r;
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        return CX_ENOMEM;
    r = cx_outbox_push_text(s, op, item_id, text, strlen(text));
    free(text);
    return r;
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
    if (strcmp(op, CX_OP_ITEM_PUT) == 0) {
        o = json_pack("{s:s, s:s, s:O}", "op_id", op_id, "op", op, "item", p);
    } else if (strcmp(op, CX_OP_ARTIFACT_VERSION) == 0) {
        json_t *it = json_object_get(p, "item"), *v = json_object_get(p, "version");
        if (json_is_object(it) && json_is_object(v))
            o = json_pack("{s:s, s:s, s:O, s:O}", "op_id", op_id, "op", op, "item", it, "version",
                          v);
    } else if (strcmp(op, CX_OP_REVIEW_DECISION) == 0) {
        json_t *it = json_object_get(p, "item"), *rv = json_object_get(p, "review");
        if (json_is_object(it) && json_is_object(rv))
            o = json_pack("{s:s, s:s, s:O, s:O}", "op_id", op_id, "op", op, "item", it, "review",
                          rv);
    }
out:
    json_decref(p);
    return o;
}

int cx_outbox_batch(cx_store *s, size_t max_ops, size_t max_bytes, json_t **ops_out,
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
        r = cx_outbox_reject(s, bad, "local: the outbox payload is not a valid op");
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
    if (c->results && (r = cx_kv_put(s, CX_KV_LAST_PUSH, now)))
        return r;
    if (c->results)
        r = cx_kv_put(s, CX_KV_LAST_ERROR, NULL);
    else if (c->error && !c->reject)
        r = cx_kv_put(s, CX_KV_LAST_ERROR, c->error);
    return r;
}

int cx_outbox_ack(cx_store *s, const json_t *ops, const json_t *results, size_t *acked,
                  size_t *rejected) {
    ack_ctx c = {.ops = ops, .results = results};
    int r = cx_store_write(s, ack_tx, &c);
    if (r == 0 && acked)
        *acked = c.acked;
    if (r == 0 && rejected)
        *rejected = c.rejected;
    return r;
}

int cx_outbox_fail(cx_store *s, const json_t *ops, const char *error) {
    ack_ctx c = {.ops = ops, .error = error ? error : "failed"};
    return cx_store_write(s, ack_tx, &c);
}

int cx_outbox_reject(cx_store *s, const json_t *ops, const char *reason) {
    ack_ctx c = {.ops = ops, .error = reason, .reject = true};
    return cx_store_write(s, ack_tx, &c);
}

/* ---- state ------------------------------------------------------------- */

static const char SQL_COUNTS[] =
    "SELECT count(*) FILTER (WHERE rejected_reason IS NULL),"
    " count(*) FILTER (WHERE rejected_reason IS NOT NULL) FROM outbox";
static const char SQL_REJECTED[] =
    "SELECT op_id, op, item_id, rejected_reason FROM outbox WHERE rejected_reason IS NOT NULL"
    " ORDER BY seq LIMIT 20";

int cx_outbox_state(cx_store *s, json_t **out) {
    sqlite3_stmt *st;
    json_t *o = json_object(), *rej = json_array();
    int r = 0, rc;
    if (!o || !rej) {
        r = CX_ENOMEM;
        goto out;
    }
    int64_t cursor = 0;
    if ((r = cx_kv_cursor(s, &cursor)))
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
    int64_t lp = cx_kv_int(s, CX_KV_LAST_PUSH, -1), ll = cx_kv_int(s, CX_KV_LAST_PULL, -1);
    json_object_set_new(o, "last_push", lp >= 0 ? json_integer(lp) : json_null());
    json_object_set_new(o, "last_pull", ll >= 0 ? json_integer(ll) : json_null());
    char *err = NULL;
    if (cx_kv_get(s, CX_KV_LAST_ERROR, &err) == 0)
        json_object_set_new(o, "last_error", json_string(err));
    else
        json_object_set_new(o, "last_error", json_null());
    free(err);
    json_object_set(o, "rejected_ops", rej);
    int64_t skipped = cx_kv_int(s, CX_KV_SKIPPED, 0);
    json_object_set_new(o, "skipped", json_integer(skipped > 0 ? skipped : 0));
    char *skip = NULL;
    json_t *last = NULL;
    if (cx_kv_get(s, CX_KV_LAST_SKIP, &skip) == 0)
        last = json_loads(skip, 0, NULL);
    free(skip);
    json_object_set_new(o, "last_skip", json_is_object(last) ? last : json_null());
    if (!json_is_object(last))
        json_decref(last);
    *out = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(rej);
    return r;
}

