/* SPDX-License-Identifier: Apache-2.0 */
/* The backend's side of the core's storage interface (storage.h): what a
 * backend (storage-sqlite.c, storage-pg.c) implements and storage.c calls.
 * Only those three files include it.
 *
 * A backend's database handle starts with a struct cx_storage and its
 * transaction with a struct cx_storage_tx (first member, so a pointer to
 * one is a pointer to the other). open fills base.be and base.pool_size;
 * begin fills tx->st. storage.c keeps the counters and the timings, checks
 * what every backend would check (write on read-only), and never touches a
 * backend's own fields.
 *
 * Every data function has the public call's contract (storage.h), and may
 * return CX_ERETRY when the database refused it for a concurrent
 * transaction (serialisation failure, deadlock, unique-key race between
 * two writers): the caller then rolls back and runs it all again.
 *
 * What a backend must guarantee (the SQLite backend by its one writer at a
 * time; notes for PostgreSQL in brackets):
 *  - seq_next: a team's seqs become visible in the order they were taken,
 *    so a reader never sees seq N+1 committed while N may still commit.
 *    [UPDATE teams SET seq = seq + 1 WHERE team = $1 RETURNING seq (after
 *    an INSERT … ON CONFLICT DO NOTHING for a new team) locks the team's
 *    row until commit: the team's next writer waits for it, and PostgreSQL
 *    releases row locks only after the commit is visible. Teams write in
 *    parallel.]
 *  - A read transaction is one snapshot: pull reads the horizon and the
 *    changes together. [REPEATABLE READ, READ ONLY.]
 *  - audit_last in a write transaction holds the chain's head until the
 *    end: the chain is global (audit.n is one sequence over every team).
 *    [Lock one head row FOR UPDATE, or take a transaction advisory lock,
 *    before reading the last entry; audit writes are rare (decisions,
 *    refusals, key changes, forget, compact), so one global order costs
 *    little.]
 *  - A unique violation of ops(team, op_id) or audit(n), a serialisation
 *    failure or a deadlock is CX_ERETRY [SQLSTATE 23505, 40001, 40P01];
 *    the retried push then finds the op and answers "duplicate". */
#pragma once

#include "core/storage.h"

#include <stdatomic.h>

typedef struct cx_storage_backend cx_storage_backend;

struct cx_storage {
    const cx_storage_backend *be;
    int flags;     /* CX_STORAGE_… as opened */
    int pool_size; /* kept current by the backend */
    /* kept by storage.c */
    atomic_int in_use;
    atomic_uint_fast64_t tx_total, tx_retries, tx_errors, wait_us, tx_us;
};

struct cx_storage_tx {
    cx_storage *st; /* set by the backend's begin */
    bool write;     /* set by storage.c */
    uint64_t t0_us; /* set by storage.c: when begin returned */
};

struct cx_storage_backend {
    const char *name; /* "sqlite", "postgresql": cx_storage_stats.backend */

    /* target as given to cx_storage_open (a path or a URI). */
    int (*open)(cx_storage **out, const char *target, int flags);
    void (*free)(cx_storage *st);
    int (*set_pool)(cx_storage *st, int n);
    /* write is never true on a CX_STORAGE_READONLY handle (storage.c
     * refuses it first). On failure *tx is untouched and no connection is
     * held. */
    int (*begin)(cx_storage *st, bool write, cx_storage_tx **tx);
    /* Both end the transaction and give its connection back, whatever
     * happens; commit may return CX_ERETRY. */
    int (*commit)(cx_storage_tx *tx);
    void (*rollback)(cx_storage_tx *tx);
    int (*health)(cx_storage *st, cx_storage_health_info *out);
    int (*backup)(cx_storage *st, const char *dest);
    /* May be NULL (nothing to refresh). */
    int (*analyze)(cx_storage *st);

    int (*key_put)(cx_storage_tx *tx, const cx_storage_key *k);
    int (*key_get)(cx_storage_tx *tx, const char *key_id, cx_storage_key *out);
    int (*key_list)(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_key *k), void *ud);
    int (*key_revoke)(cx_storage_tx *tx, const char *key_id, int64_t now_ms);

    int (*session_put)(cx_storage_tx *tx, const cx_storage_session *s);
    int (*session_get)(cx_storage_tx *tx, const char *token_hash, cx_storage_session *out);
    int (*session_end)(cx_storage_tx *tx, const char *token_hash, int64_t now_ms);
    int (*session_end_key)(cx_storage_tx *tx, const char *key_id, int64_t now_ms,
                           int64_t *ended);
    int (*session_purge)(cx_storage_tx *tx, int64_t before_ms, int limit, int64_t *deleted);

    int (*seq_next)(cx_storage_tx *tx, const char *team, int64_t *seq);
    int (*seq_last)(cx_storage_tx *tx, const char *team, int64_t *seq);
    int (*horizon)(cx_storage_tx *tx, const char *team, int64_t *horizon);

    int (*op_get)(cx_storage_tx *tx, const char *team, const char *op_id, uint8_t digest[32],
                  int64_t *seq);
    int (*op_put)(cx_storage_tx *tx, const char *team, const char *op_id,
                  const uint8_t digest[32], int64_t seq);

    int (*item_get)(cx_storage_tx *tx, const char *team, const char *id, char **json,
                    int64_t *seq, bool *deleted);
    int (*item_put)(cx_storage_tx *tx, const char *team, const char *id, const char *kind,
                    const char *status, int64_t seq, bool deleted, const char *json);
    int (*changes)(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                   int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                   void *ud);
    /* May be NULL: storage.c calls horizon, then changes. */
    int (*pull)(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                int64_t *horizon,
                int (*fn)(void *ud, int64_t seq, const char *id, const char *json), void *ud);
    int (*compact)(cx_storage_tx *tx, const char *team, int64_t before, int64_t *dropped);
    int (*queue)(cx_storage_tx *tx, const char *team, int limit,
                 int (*fn)(void *ud, const char *json), void *ud, int64_t *total);
    int (*queue_depth)(cx_storage_tx *tx, int64_t *depth);

    int (*blob_has)(cx_storage_tx *tx, const char *team, const char *sha, bool *has);
    int (*blob_put)(cx_storage_tx *tx, const char *team, const char *sha, const void *data,
                    size_t len, bool *created);
    int (*blob_get)(cx_storage_tx *tx, const char *team, const char *sha, void **data,
                    size_t *len);
    int (*blob_drop_unused)(cx_storage_tx *tx, const char *team, const char *sha,
                            bool *deleted);

    /* May be NULL (storage.c then does nothing). */
    int (*prefetch)(cx_storage_tx *tx, const char *team, const char *const *op_ids,
                    const char *const *item_ids, size_t n);

    int (*audit_last)(cx_storage_tx *tx, int64_t *n, char hash[65]);
    int (*audit_put)(cx_storage_tx *tx, const cx_storage_audit *a);
    int (*audit_each)(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_audit *a),
                      void *ud);

    int (*search)(cx_storage_tx *tx, const char *team, const cx_storage_query *q,
                  int (*fn)(void *ud, const char *json), void *ud, int64_t *total);
    /* May be NULL (an index kept by the writes themselves): nothing pending. */
    int (*index)(cx_storage_tx *tx, int limit, int64_t *pending);
    int (*items)(cx_storage_tx *tx, const char *team, const char *kind, bool newest_first,
                 int limit, int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                 void *ud);
    int (*audit_team)(cx_storage_tx *tx, const char *team, int64_t before, const char *mention,
                      int limit, int (*fn)(void *ud, const cx_storage_audit *a), void *ud);
    int (*audit_since)(cx_storage_tx *tx, int64_t after,
                       int (*fn)(void *ud, const cx_storage_audit *a), void *ud);
    int (*sync_put)(cx_storage_tx *tx, const char *team, const cx_storage_sync *s);
    int (*sync_list)(cx_storage_tx *tx, const char *team,
                     int (*fn)(void *ud, const cx_storage_sync *s), void *ud);

    /* May be NULL: storage.c answers CX_EINVAL. */
    int (*walk)(cx_storage_tx *tx, const cx_storage_walker *w);
    int (*team_set)(cx_storage_tx *tx, const char *team, int64_t seq, int64_t horizon);
};

/* The default pool size (cx_storage_set_pool). */
#define CX_STORAGE_POOL_DEFAULT 8

extern const cx_storage_backend cx_storage_sqlite_backend;
#ifdef CX_HAVE_PG
extern const cx_storage_backend cx_storage_pg_backend;
#endif
