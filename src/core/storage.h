/* SPDX-License-Identifier: Apache-2.0 */
/* The core's storage interface: everything cortex-core keeps, behind calls
 * narrow enough that SQLite and PostgreSQL both implement them. storage.c
 * keeps these public functions and dispatches each to the backend chosen at
 * open (storage-impl.h draws the backend's side): SQLite in WAL mode
 * (storage-sqlite.c) for a file path, PostgreSQL (storage-pg.c, when the
 * build has it) for a postgresql:// or postgres:// URI.
 *
 * A cx_storage is one database and its connections, shared by the server's
 * threads. A cx_storage_tx is one transaction on one connection, used by one
 * thread: cx_storage_begin() hands one out, commit/rollback/end give it
 * back. Every data call is made in a transaction. Reads do not wait behind
 * writes: a read transaction sees a consistent snapshot of what was
 * committed when it began. Every call that touches team data takes the team
 * and filters by it; no call reads across teams.
 *
 * CX_ERETRY: any call in a transaction, and its commit, may fail with
 * CX_ERETRY (a serialisation failure, a deadlock, a unique-key race between
 * two writers); then the transaction is void and the caller runs the WHOLE
 * transaction again, a bounded number of times (cx_storage_run does it). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cx_storage cx_storage;
typedef struct cx_storage_tx cx_storage_tx;

#define CX_STORAGE_CREATE 1   /* create the schema if the database is new */
#define CX_STORAGE_READONLY 2 /* open for reading only (verify-audit, backup) */

/* How many times cx_storage_run runs a transaction that keeps failing with
 * CX_ERETRY before it gives up and returns CX_ERETRY. */
#define CX_STORAGE_RETRIES 8

#define CX_TEAM_MAX 64
#define CX_KEYID_LEN 16
#define CX_ROLE_MAX 16
#define CX_NAME_MAX 128

typedef struct cx_storage_key {
    char key_id[CX_KEYID_LEN + 1];
    char team[CX_TEAM_MAX + 1];
    char role[CX_ROLE_MAX];
    char name[CX_NAME_MAX + 1];
    uint8_t hash[32];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while the key is valid */
} cx_storage_key;

/* A browser session of the review app (web.h). The cookie's token is never
 * stored: token_hash is a keyed hash of it (64 hex digits), so a copy of
 * the database does not sign anyone in. */
#define CX_SESSION_CSRF_MAX 64
typedef struct cx_storage_session {
    char token_hash[65];
    char key_id[CX_KEYID_LEN + 1];
    char team[CX_TEAM_MAX + 1];
    char csrf[CX_SESSION_CSRF_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms;
    int64_t ended_ms; /* 0 while not ended (sign-out, key revoked) */
} cx_storage_session;

typedef struct cx_storage_audit {
    int64_t n; /* 1, 2, 3 … */
    int64_t ts_ms;
    const char *team, *actor, *action, *detail; /* borrowed for the callback */
    const char *prev, *hash;                   /* 64 hex digits each */
} cx_storage_audit;

/* What /metrics shows of the database. Counters count since open. */
typedef struct cx_storage_stats {
    const char *backend;  /* "sqlite" | "postgresql"; static */
    int pool_size;        /* connections the pool may hold */
    int pool_in_use;      /* transactions open now */
    uint64_t tx_total;    /* transactions begun */
    uint64_t tx_retries;  /* transactions run again after CX_ERETRY */
    uint64_t tx_errors;   /* transactions that ended in an error */
    uint64_t wait_us;     /* time spent in begin waiting for a connection */
    uint64_t tx_us;       /* time transactions were open, begin to end */
} cx_storage_stats;

/* What /v1/healthz shows of the database: one round trip to it. */
typedef struct cx_storage_health_info {
    bool ok;
    int64_t latency_us; /* of the round trip */
    char detail[160];   /* why not ok, or what it is ("sqlite 3.40.1, WAL") */
} cx_storage_health_info;

/* Opens the database named by target: a file path (SQLite; with
 * CX_STORAGE_CREATE created with its schema when new), or a postgresql://
 * or postgres:// URI (PostgreSQL; the password comes from PGPASSFILE,
 * ~/.pgpass or PGPASSWORD, never from the URI in logs). *out is the
 * caller's, freed with cx_storage_free(). CX_ENOTFOUND (no database there
 * and no CX_STORAGE_CREATE), CX_EINVAL (a URI this build cannot open),
 * CX_EIO. */
int cx_storage_open(cx_storage **out, const char *target, int flags);
void cx_storage_free(cx_storage *st);
/* True when target names a PostgreSQL database (a postgresql:// or
 * postgres:// URI) rather than a file. */
bool cx_storage_is_uri(const char *target);
/* The most connections the pool holds (n >= 1; the default is 8). Read
 * transactions beyond it wait for a connection; SQLite keeps one more
 * connection for its one writer. Call before the first transaction. */
int cx_storage_set_pool(cx_storage *st, int n);

/* Begins a transaction on a connection of the pool; *tx is the caller's
 * until commit, rollback or end. `write` asks for a write transaction (in
 * SQLite, BEGIN IMMEDIATE: writers take turns, one at a time); a read
 * transaction sees one snapshot and never waits behind a writer.
 * CX_EINVAL for a write on a read-only database, CX_EBUSY, CX_EIO. */
int cx_storage_begin(cx_storage *st, bool write, cx_storage_tx **tx);
/* Commits and gives the connection back; tx is gone either way. CX_ERETRY
 * when the database refused the commit for a concurrent one (run the
 * transaction again). */
int cx_storage_commit(cx_storage_tx *tx);
/* Rolls back and gives the connection back; tx is gone. Never fails. */
void cx_storage_rollback(cx_storage_tx *tx);
/* Ends tx by how the work in it went: commits when r is 0 (returning the
 * commit's result), else rolls back and returns r. */
int cx_storage_end(cx_storage_tx *tx, int r);
/* Runs fn(tx, ud) in a transaction and ends it by fn's result, as
 * cx_storage_end; when fn or the commit fails with CX_ERETRY, runs it all
 * again, at most CX_STORAGE_RETRIES times, with a short growing pause.
 * fn must start from scratch each time (reset what it writes to ud). */
int cx_storage_run(cx_storage *st, bool write, int (*fn)(cx_storage_tx *tx, void *ud), void *ud);

/* Counters for /metrics; never fails. */
void cx_storage_stats_get(cx_storage *st, cx_storage_stats *out);
/* One round trip to the database; out->ok says how it went (the return is
 * 0 unless out is unusable). */
int cx_storage_health(cx_storage *st, cx_storage_health_info *out);

/* Keys. key_get: CX_ENOTFOUND when there is no such id. */
int cx_storage_key_put(cx_storage_tx *tx, const cx_storage_key *k);
int cx_storage_key_get(cx_storage_tx *tx, const char *key_id, cx_storage_key *out);
int cx_storage_key_list(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_key *k),
                        void *ud);
/* Sets revoked_ms on a valid key; CX_ENOTFOUND for an unknown id,
 * CX_ECONFLICT when it was already revoked. */
int cx_storage_key_revoke(cx_storage_tx *tx, const char *key_id, int64_t now_ms);

/* Sessions, shared by every node over the database. session_get:
 * CX_ENOTFOUND when no row has that hash (ended and expired rows are
 * returned as they are: the caller judges them). session_end: sets
 * ended_ms on a session not ended yet; CX_ENOTFOUND when there is none.
 * session_end_key: ends every live session of a key (*ended counts them;
 * may be NULL). session_purge: deletes at most `limit` rows that expired
 * or ended before `before_ms` (*deleted counts them; may be NULL): bounded
 * work a caller does opportunistically. */
int cx_storage_session_put(cx_storage_tx *tx, const cx_storage_session *s);
int cx_storage_session_get(cx_storage_tx *tx, const char *token_hash, cx_storage_session *out);
int cx_storage_session_end(cx_storage_tx *tx, const char *token_hash, int64_t now_ms);
int cx_storage_session_end_key(cx_storage_tx *tx, const char *key_id, int64_t now_ms,
                               int64_t *ended);
int cx_storage_session_purge(cx_storage_tx *tx, int64_t before_ms, int limit, int64_t *deleted);

/* The team's next seq (last + 1), reserved in this write transaction.
 * Seqs are per team and strictly increasing IN COMMIT ORDER: a transaction
 * that took seq N and commits has every seq < N of its team committed or
 * abandoned before it, so a puller whose cursor is N never misses a change
 * that commits later with a seq <= N. SQLite gets this from its one writer
 * at a time; PostgreSQL from the team's counter row, which the UPDATE …
 * RETURNING locks until commit (a team's writers take turns, teams write in
 * parallel). */
int cx_storage_seq_next(cx_storage_tx *tx, const char *team, int64_t *seq);
/* The team's tombstone horizon: cursors below it are gone (0 = none). */
int cx_storage_horizon(cx_storage_tx *tx, const char *team, int64_t *horizon);

/* Op idempotency records. op_get: CX_ENOTFOUND when unseen. op_put of an
 * op id the team already has fails (CX_ERETRY when a concurrent
 * transaction recorded it first: running again answers "duplicate"). */
int cx_storage_op_get(cx_storage_tx *tx, const char *team, const char *op_id,
                      uint8_t digest[32], int64_t *seq);
int cx_storage_op_put(cx_storage_tx *tx, const char *team, const char *op_id,
                      const uint8_t digest[32], int64_t seq);

/* Items, stored as JSON text with their latest seq. item_get: *json is
 * malloc'd (the caller's); CX_ENOTFOUND when the team has no such id. */
int cx_storage_item_get(cx_storage_tx *tx, const char *team, const char *id, char **json,
                        int64_t *seq, bool *deleted);
int cx_storage_item_put(cx_storage_tx *tx, const char *team, const char *id, const char *kind,
                        const char *status, int64_t seq, bool deleted, const char *json);
/* Items with seq > since in seq order, at most limit; fn gets each (json
 * NULL for a tombstone). A non-zero return from fn stops and is returned. */
int cx_storage_changes(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                       int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                       void *ud);
/* A pull's two reads in one: the team's horizon into *horizon (0 = none),
 * then, unless 0 < since < *horizon (a cursor older than the horizon: fn
 * is not called), the changes as cx_storage_changes gives them. The same
 * as cx_storage_horizon then cx_storage_changes in one read transaction;
 * PostgreSQL answers both with one statement, in one round trip. */
int cx_storage_pull(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                    int64_t *horizon,
                    int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                    void *ud);
/* Tombstone compaction: deletes the team's tombstones with seq < before
 * and raises its horizon to `before` (never lowers it). *dropped counts the
 * tombstones removed. */
int cx_storage_compact(cx_storage_tx *tx, const char *team, int64_t before, int64_t *dropped);
/* The team's last seq (0 when it has none). */
int cx_storage_seq_last(cx_storage_tx *tx, const char *team, int64_t *seq);
/* Drafts waiting for review (pending or changes_requested), oldest first. */
int cx_storage_queue(cx_storage_tx *tx, const char *team, int limit,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total);
/* Drafts waiting for review across every team, for the metrics gauge. */
int cx_storage_queue_depth(cx_storage_tx *tx, int64_t *depth);

/* Blobs, content-addressed per team. blob_get: *data malloc'd. */
int cx_storage_blob_has(cx_storage_tx *tx, const char *team, const char *sha, bool *has);
int cx_storage_blob_put(cx_storage_tx *tx, const char *team, const char *sha, const void *data,
                        size_t len, bool *created);
int cx_storage_blob_get(cx_storage_tx *tx, const char *team, const char *sha, void **data,
                        size_t *len);
/* Deletes the team's blob sha unless a live item still names it (its hash
 * appears in the item's JSON). *deleted says whether it went. */
/* A hint before a loop of op_get/item_get over the team's ops and items
 * (a push): the backend may read them all at once and answer those calls
 * from what it read (PostgreSQL: the ops, the items and, in a write
 * transaction, the team's seq, in one round trip for the whole push),
 * while its own writes in the transaction stay visible. ids may hold NULLs
 * (skipped). Does nothing on SQLite; CX_ENOMEM, or a database failure that
 * voids the transaction. */
int cx_storage_prefetch(cx_storage_tx *tx, const char *team, const char *const *op_ids,
                        const char *const *item_ids, size_t n);

int cx_storage_blob_drop_unused(cx_storage_tx *tx, const char *team, const char *sha,
                                bool *deleted);

/* The audit log: ONE hash chain over every team (n is global). audit_last:
 * the last entry's n and hash (n 0 and an empty hash when empty; hash
 * written to out[65]). In a write transaction, audit_last holds the head
 * of the chain until the transaction ends, so two writers never append the
 * same n (SQLite: the one writer; PostgreSQL: the head row locked FOR
 * UPDATE); audit_put of an n that exists fails (CX_ERETRY when a
 * concurrent writer took it). */
int cx_storage_audit_last(cx_storage_tx *tx, int64_t *n, char hash[65]);
int cx_storage_audit_put(cx_storage_tx *tx, const cx_storage_audit *a);
int cx_storage_audit_each(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_audit *a),
                          void *ud);

/* ---- the review app's reads (views.c) ---- */

/* A search of the team's live items (GET /v1/search). text is the user's
 * query as typed (NULL or empty: no text); each backend makes it data, never
 * query syntax (SQLite: every word a quoted FTS5 string; PostgreSQL:
 * plainto_tsquery). kind, status, subcortex: NULL for any. */
typedef struct cx_storage_query {
    const char *text;
    const char *kind, *status, *subcortex;
    int limit; /* >= 1 */
} cx_storage_query;

/* The team's live items that match q, at most q->limit, to fn: with text,
 * the most trusted first (cx_trust_of in src/proto), then by relevance
 * (title weighted over body: FTS5 bm25 / ts_rank_cd with weights A and B);
 * without text, the newest first (by seq). *total counts every match. A
 * non-zero return from fn stops and is returned. */
int cx_storage_search(cx_storage_tx *tx, const char *team, const cx_storage_query *q,
                      int (*fn)(void *ud, const char *json), void *ud, int64_t *total);

/* The search index's deferred work, across every team. SQLite indexes a
 * written item later, not in the write (FTS5 is ~30 µs a row, too long to
 * hold the one writer): cx_storage_search sees only what was indexed.
 * In a write transaction, indexes up to `limit` of the items written since,
 * oldest first; then (limit 0 too, in any transaction) sets *pending to how
 * many still wait. PostgreSQL keeps its index in the write itself:
 * *pending is 0. */
int cx_storage_index(cx_storage_tx *tx, int limit, int64_t *pending);
/* Whether the backend indexes later (SQLite), i.e. whether calling
 * cx_storage_index can ever find work: a caller need not open a
 * transaction for it otherwise. */
bool cx_storage_indexes_later(const cx_storage *st);

/* The team's live items of `kind` (NULL: every kind) in seq order, the
 * newest first when `newest_first`, at most limit (< 1: all); fn as for
 * cx_storage_changes (never a tombstone). */
int cx_storage_items(cx_storage_tx *tx, const char *team, const char *kind, bool newest_first,
                     int limit, int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                     void *ud);

/* The team's audit entries with n < before (before <= 0: from the last),
 * newest first, at most limit; with `mention`, only those whose detail
 * holds that text (an item id). */
int cx_storage_audit_team(cx_storage_tx *tx, const char *team, int64_t before,
                          const char *mention, int limit,
                          int (*fn)(void *ud, const cx_storage_audit *a), void *ud);
/* Every entry with n > after, in order (cx_storage_audit_each from a
 * point: a verification that checked a prefix already goes on from it). */
int cx_storage_audit_since(cx_storage_tx *tx, int64_t after,
                           int (*fn)(void *ud, const cx_storage_audit *a), void *ud);

/* The last pull of a workspace: team, key and workspace name (what the
 * sidecar sends as X-Cortex-Workspace), when, and the cursor it pulled to.
 * Borrowed for the callback. */
typedef struct cx_storage_sync {
    const char *key_id, *principal, *workspace;
    int64_t at_ms, cursor;
} cx_storage_sync;

/* Records (replaces) the team's sync record for (key_id, workspace), in a
 * write transaction. */
int cx_storage_sync_put(cx_storage_tx *tx, const char *team, const cx_storage_sync *s);
/* The team's sync records, the most recent first. */
int cx_storage_sync_list(cx_storage_tx *tx, const char *team,
                         int (*fn)(void *ud, const cx_storage_sync *s), void *ud);

/* ---- a whole database, for copying it (cortex-core migrate) ---- */

/* An item row as stored: json NULL for a tombstone. Borrowed for the
 * callback. */
typedef struct cx_storage_item_row {
    const char *team, *id, *kind, *status, *json;
    int64_t seq;
    bool deleted;
} cx_storage_item_row;

/* What cx_storage_walk calls, each in its turn; a callback may be NULL. A
 * non-zero return stops the walk and is returned. */
typedef struct cx_storage_walker {
    void *ud;
    int (*team)(void *ud, const char *team, int64_t seq, int64_t horizon);
    int (*item)(void *ud, const cx_storage_item_row *it);
    int (*op)(void *ud, const char *team, const char *op_id, const uint8_t digest[32],
              int64_t seq);
    int (*blob)(void *ud, const char *team, const char *sha, int64_t size); /* no bytes */
} cx_storage_walker;

/* Walks every team (its seq and horizon), then every item (tombstones
 * too) in (team, seq) order, every op record in (team, op_id) order, and
 * every blob's name and size in (team, sha) order, across all teams: for
 * copying a whole core, never for serving a request. Keys and the audit
 * log have their own calls (key_list, audit_each). CX_EINVAL on a backend
 * that cannot (PostgreSQL today: migrate copies from SQLite only). */
int cx_storage_walk(cx_storage_tx *tx, const cx_storage_walker *w);
/* Sets a team's counter and horizon to what another database held, in a
 * write transaction (migrate); creates the team's row when missing. */
int cx_storage_team_set(cx_storage_tx *tx, const char *team, int64_t seq, int64_t horizon);

/* Refreshes the planner's statistics after a bulk load (PostgreSQL:
 * ANALYZE, outside any transaction; SQLite: nothing). Until then, or until
 * autovacuum's first pass, PostgreSQL plans for the empty tables it last
 * saw: a push into a team of 100,000 items then scans the team's op records
 * (80 s instead of 13 s to fill such a team). */
int cx_storage_analyze(cx_storage *st);

/* A consistent copy of the database to dest (a new SQLite file) while
 * others write. CX_ECONFLICT when dest exists; CX_EINVAL on a backend that
 * has its own tools (PostgreSQL: pg_dump). */
int cx_storage_backup(cx_storage *st, const char *dest);
