/* SPDX-License-Identifier: Apache-2.0 */
/* The core's storage interface (storage.h), backend-neutral: chooses the
 * backend by the target at open, dispatches every call to it through its
 * table (storage-impl.h), keeps the pool and timing counters /metrics
 * shows, and runs a transaction again when the database asks for it
 * (CX_ERETRY). */
#include "core/storage-impl.h"

#include "util/error.h"

#include <assert.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool cx_storage_is_uri(const char *target) {
    return target && (strncasecmp(target, "postgresql://", 13) == 0 ||
                      strncasecmp(target, "postgres://", 11) == 0);
}

int cx_storage_open(cx_storage **out, const char *target, int flags) {
    if (!target || !*target)
        return cx_error_set(CX_EINVAL, "no database named");
    const cx_storage_backend *be = &cx_storage_sqlite_backend;
    if (cx_storage_is_uri(target)) {
#ifdef CX_HAVE_PG
        be = &cx_storage_pg_backend;
#else
        return cx_error_set(CX_EINVAL, "this build has no PostgreSQL backend");
#endif
    }
    cx_storage *st = NULL;
    int r = be->open(&st, target, flags);
    if (r)
        return r;
    assert(st->be == be);
    st->flags = flags;
    *out = st;
    return 0;
}

void cx_storage_free(cx_storage *st) {
    if (st)
        st->be->free(st);
}

int cx_storage_set_pool(cx_storage *st, int n) {
    if (n < 1)
        return cx_error_set(CX_EINVAL, "a pool holds at least one connection");
    return st->be->set_pool(st, n);
}

int cx_storage_begin(cx_storage *st, bool write, cx_storage_tx **tx) {
    if (write && (st->flags & CX_STORAGE_READONLY))
        return cx_error_set(CX_EINVAL, "the database is open read-only");
    uint64_t t0 = now_us();
    cx_storage_tx *t = NULL;
    int r = st->be->begin(st, write, &t);
    uint64_t t1 = now_us();
    atomic_fetch_add(&st->wait_us, t1 - t0);
    if (r) {
        atomic_fetch_add(&st->tx_errors, 1);
        return r;
    }
    assert(t->st == st);
    t->write = write;
    t->t0_us = t1;
    atomic_fetch_add(&st->tx_total, 1);
    atomic_fetch_add(&st->in_use, 1);
    *tx = t;
    return 0;
}

/* Counts the end of a transaction begun at t0 (tx itself is gone). */
static void ended(cx_storage *st, uint64_t t0, int r) {
    atomic_fetch_add(&st->tx_us, now_us() - t0);
    atomic_fetch_sub(&st->in_use, 1);
    if (r)
        atomic_fetch_add(&st->tx_errors, 1);
}

int cx_storage_commit(cx_storage_tx *tx) {
    cx_storage *st = tx->st;
    uint64_t t0 = tx->t0_us;
    int r = st->be->commit(tx);
    ended(st, t0, r);
    return r;
}

void cx_storage_rollback(cx_storage_tx *tx) {
    cx_storage *st = tx->st;
    uint64_t t0 = tx->t0_us;
    st->be->rollback(tx);
    ended(st, t0, 0);
}

int cx_storage_end(cx_storage_tx *tx, int r) {
    if (r == 0)
        return cx_storage_commit(tx);
    cx_storage *st = tx->st;
    cx_storage_rollback(tx);
    atomic_fetch_add(&st->tx_errors, 1);
    return r;
}

int cx_storage_run(cx_storage *st, bool write, int (*fn)(cx_storage_tx *tx, void *ud),
                   void *ud) {
    int r = CX_ERETRY;
    for (int attempt = 0; attempt < CX_STORAGE_RETRIES; attempt++) {
        if (attempt) {
            atomic_fetch_add(&st->tx_retries, 1);
            /* 1, 2, 4 … ms: let the transaction that won finish */
            struct timespec pause = {0, 1000000L << (attempt - 1 < 6 ? attempt - 1 : 6)};
            nanosleep(&pause, NULL);
        }
        cx_storage_tx *tx = NULL;
        if ((r = cx_storage_begin(st, write, &tx)))
            return r;
        r = cx_storage_end(tx, fn(tx, ud));
        if (r != CX_ERETRY)
            return r;
    }
    return cx_error_set(CX_ERETRY, "the database refused the transaction %d times for "
                        "concurrent ones; try again", CX_STORAGE_RETRIES);
}

void cx_storage_stats_get(cx_storage *st, cx_storage_stats *out) {
    out->backend = st->be->name;
    out->pool_size = st->pool_size;
    out->pool_in_use = atomic_load(&st->in_use);
    out->tx_total = atomic_load(&st->tx_total);
    out->tx_retries = atomic_load(&st->tx_retries);
    out->tx_errors = atomic_load(&st->tx_errors);
    out->wait_us = atomic_load(&st->wait_us);
    out->tx_us = atomic_load(&st->tx_us);
}

int cx_storage_health(cx_storage *st, cx_storage_health_info *out) {
    memset(out, 0, sizeof *out);
    return st->be->health(st, out);
}

int cx_storage_analyze(cx_storage *st) {
    return st->be->analyze ? st->be->analyze(st) : 0;
}

int cx_storage_backup(cx_storage *st, const char *dest) { return st->be->backup(st, dest); }

/* --- data calls: straight to the backend ---------------------------------- */

#define BE(tx) ((tx)->st->be)

int cx_storage_key_put(cx_storage_tx *tx, const cx_storage_key *k) {
    return BE(tx)->key_put(tx, k);
}

int cx_storage_key_get(cx_storage_tx *tx, const char *key_id, cx_storage_key *out) {
    return BE(tx)->key_get(tx, key_id, out);
}

int cx_storage_key_list(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_key *k),
                        void *ud) {
    return BE(tx)->key_list(tx, fn, ud);
}

int cx_storage_key_revoke(cx_storage_tx *tx, const char *key_id, int64_t now_ms) {
    return BE(tx)->key_revoke(tx, key_id, now_ms);
}

int cx_storage_session_put(cx_storage_tx *tx, const cx_storage_session *s) {
    assert(tx->write);
    return BE(tx)->session_put(tx, s);
}

int cx_storage_session_get(cx_storage_tx *tx, const char *token_hash, cx_storage_session *out) {
    return BE(tx)->session_get(tx, token_hash, out);
}

int cx_storage_session_end(cx_storage_tx *tx, const char *token_hash, int64_t now_ms) {
    assert(tx->write);
    return BE(tx)->session_end(tx, token_hash, now_ms);
}

int cx_storage_session_end_key(cx_storage_tx *tx, const char *key_id, int64_t now_ms,
                               int64_t *ended) {
    assert(tx->write);
    int64_t n = 0;
    int r = BE(tx)->session_end_key(tx, key_id, now_ms, &n);
    if (r == 0 && ended)
        *ended = n;
    return r;
}

int cx_storage_session_purge(cx_storage_tx *tx, int64_t before_ms, int limit, int64_t *deleted) {
    assert(tx->write);
    int64_t n = 0;
    int r = BE(tx)->session_purge(tx, before_ms, limit, &n);
    if (r == 0 && deleted)
        *deleted = n;
    return r;
}

int cx_storage_seq_next(cx_storage_tx *tx, const char *team, int64_t *seq) {
    assert(tx->write);
    return BE(tx)->seq_next(tx, team, seq);
}

int cx_storage_seq_last(cx_storage_tx *tx, const char *team, int64_t *seq) {
    return BE(tx)->seq_last(tx, team, seq);
}

int cx_storage_horizon(cx_storage_tx *tx, const char *team, int64_t *horizon) {
    return BE(tx)->horizon(tx, team, horizon);
}

int cx_storage_op_get(cx_storage_tx *tx, const char *team, const char *op_id,
                      uint8_t digest[32], int64_t *seq) {
    return BE(tx)->op_get(tx, team, op_id, digest, seq);
}

int cx_storage_op_put(cx_storage_tx *tx, const char *team, const char *op_id,
                      const uint8_t digest[32], int64_t seq) {
    return BE(tx)->op_put(tx, team, op_id, digest, seq);
}

int cx_storage_item_get(cx_storage_tx *tx, const char *team, const char *id, char **json,
                        int64_t *seq, bool *deleted) {
    return BE(tx)->item_get(tx, team, id, json, seq, deleted);
}

int cx_storage_item_put(cx_storage_tx *tx, const char *team, const char *id, const char *kind,
                        const char *status, int64_t seq, bool deleted, const char *json) {
    return BE(tx)->item_put(tx, team, id, kind, status, seq, deleted, json);
}

int cx_storage_changes(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                       int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                       void *ud) {
    return BE(tx)->changes(tx, team, since, limit, fn, ud);
}

int cx_storage_pull(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                    int64_t *horizon,
                    int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                    void *ud) {
    if (BE(tx)->pull)
        return BE(tx)->pull(tx, team, since, limit, horizon, fn, ud);
    int r = BE(tx)->horizon(tx, team, horizon);
    if (r || (since > 0 && since < *horizon))
        return r;
    return BE(tx)->changes(tx, team, since, limit, fn, ud);
}

int cx_storage_compact(cx_storage_tx *tx, const char *team, int64_t before, int64_t *dropped) {
    return BE(tx)->compact(tx, team, before, dropped);
}

int cx_storage_queue(cx_storage_tx *tx, const char *team, int limit,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    return BE(tx)->queue(tx, team, limit, fn, ud, total);
}

int cx_storage_queue_depth(cx_storage_tx *tx, int64_t *depth) {
    return BE(tx)->queue_depth(tx, depth);
}

int cx_storage_blob_has(cx_storage_tx *tx, const char *team, const char *sha, bool *has) {
    return BE(tx)->blob_has(tx, team, sha, has);
}

int cx_storage_blob_put(cx_storage_tx *tx, const char *team, const char *sha, const void *data,
                        size_t len, bool *created) {
    return BE(tx)->blob_put(tx, team, sha, data, len, created);
}

int cx_storage_blob_get(cx_storage_tx *tx, const char *team, const char *sha, void **data,
                        size_t *len) {
    return BE(tx)->blob_get(tx, team, sha, data, len);
}

int cx_storage_blob_drop_unused(cx_storage_tx *tx, const char *team, const char *sha,
                                bool *deleted) {
    return BE(tx)->blob_drop_unused(tx, team, sha, deleted);
}

int cx_storage_audit_last(cx_storage_tx *tx, int64_t *n, char hash[65]) {
    return BE(tx)->audit_last(tx, n, hash);
}

int cx_storage_audit_put(cx_storage_tx *tx, const cx_storage_audit *a) {
    return BE(tx)->audit_put(tx, a);
}

int cx_storage_audit_each(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_audit *a),
                          void *ud) {
    return BE(tx)->audit_each(tx, fn, ud);
}

int cx_storage_prefetch(cx_storage_tx *tx, const char *team, const char *const *op_ids,
                        const char *const *item_ids, size_t n) {
    return BE(tx)->prefetch ? BE(tx)->prefetch(tx, team, op_ids, item_ids, n) : 0;
}

int cx_storage_walk(cx_storage_tx *tx, const cx_storage_walker *w) {
    if (!BE(tx)->walk)
        return cx_error_set(CX_EINVAL, "the %s backend cannot walk a whole database",
                            BE(tx)->name);
    return BE(tx)->walk(tx, w);
}

int cx_storage_team_set(cx_storage_tx *tx, const char *team, int64_t seq, int64_t horizon) {
    if (!BE(tx)->team_set)
        return cx_error_set(CX_EINVAL, "the %s backend cannot set a team's counter",
                            BE(tx)->name);
    return BE(tx)->team_set(tx, team, seq, horizon);
}

/* The review app's reads. A backend without one answers CX_EINVAL. */
#define NEED(tx, f)                                                                            \
    do {                                                                                       \
        if (!BE(tx)->f)                                                                        \
            return cx_error_set(CX_EINVAL, "the %s backend has no " #f, BE(tx)->name);         \
    } while (0)

int cx_storage_search(cx_storage_tx *tx, const char *team, const cx_storage_query *q,
                      int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    NEED(tx, search);
    assert(q->limit >= 1);
    return BE(tx)->search(tx, team, q, fn, ud, total);
}

bool cx_storage_indexes_later(const cx_storage *st) { return st->be->index != NULL; }

int cx_storage_index(cx_storage_tx *tx, int limit, int64_t *pending) {
    *pending = 0;
    return BE(tx)->index ? BE(tx)->index(tx, limit, pending) : 0;
}

int cx_storage_items(cx_storage_tx *tx, const char *team, const char *kind, bool newest_first,
                     int limit, int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                     void *ud) {
    NEED(tx, items);
    return BE(tx)->items(tx, team, kind, newest_first, limit, fn, ud);
}

int cx_storage_audit_team(cx_storage_tx *tx, const char *team, int64_t before,
                          const char *mention, int limit,
                          int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    NEED(tx, audit_team);
    return BE(tx)->audit_team(tx, team, before, mention, limit, fn, ud);
}

int cx_storage_audit_since(cx_storage_tx *tx, int64_t after,
                           int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    NEED(tx, audit_since);
    return BE(tx)->audit_since(tx, after, fn, ud);
}

int cx_storage_sync_put(cx_storage_tx *tx, const char *team, const cx_storage_sync *s) {
    NEED(tx, sync_put);
    if (!tx->write)
        return cx_error_set(CX_EINVAL, "a sync record is written in a write transaction");
    return BE(tx)->sync_put(tx, team, s);
}

int cx_storage_sync_list(cx_storage_tx *tx, const char *team,
                         int (*fn)(void *ud, const cx_storage_sync *s), void *ud) {
    NEED(tx, sync_list);
    return BE(tx)->sync_list(tx, team, fn, ud);
}
