/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend of the core's storage interface (storage-impl.h),
 * on libpq: the same tables as the SQLite backend, kept by versioned
 * migrations, behind a bounded pool of connections.
 *
 * - Migrations: the schema version is in meta('schema_version'); open
 *   applies the missing steps in one transaction under an advisory lock,
 *   so that two nodes starting at once against one database do not race.
 * - The pool holds at most pool_size connections, opened on demand; a
 *   thread that finds none free waits for one, with a bound (POOL_WAIT_MS),
 *   then fails with CX_EBUSY. A connection that broke is closed, not put
 *   back.
 * - Write transactions run in READ COMMITTED, and the first call of a write
 *   transaction that touches a team's data locks the team's row in `teams`
 *   (FOR UPDATE, held to commit): a team's writers take turns, each reading
 *   what the one before committed, as SQLite's one writer does, while other
 *   teams write in parallel. The team's seq is that row's counter (INSERT …
 *   ON CONFLICT … RETURNING), so seq order is commit order: a puller never
 *   misses a change that commits late with a lower seq. The audit chain's
 *   head is one row locked FOR UPDATE by audit_last in a write transaction. Read transactions are REPEATABLE READ, READ ONLY:
 *   one snapshot, never waiting behind a writer. One that went well ends
 *   without waiting: its ROLLBACK and a sync are sent, and the next taker
 *   of the connection reads their answers (end_read) before using it. A
 *   pull (cx_storage_pull) is one statement: BEGIN and it in one round
 *   trip, the end not waited for.
 * - A push's prefetch reads the ops, the items and the team's seq (under
 *   the row lock sent just before) in one round trip; its seqs are then
 *   counted here and the row written once before COMMIT.
 * - Inserts that a concurrent writer may have made first (ops, audit, keys,
 *   blobs) use ON CONFLICT DO NOTHING and look at the row count, so a
 *   refused insert leaves the transaction usable, as in SQLite; a
 *   serialisation failure, a deadlock or a unique-key race (SQLSTATE 40001,
 *   40P01, 23505) is CX_ERETRY.
 * - A push's item writes and op records are held in the transaction and
 *   sent as one statement each (unnest over binary arrays) just before
 *   the transaction's next other statement or its COMMIT: every read still
 *   sees them, the server runs everything in the order asked, and a push
 *   of 100 ops costs the server 2 statements instead of 200. A second
 *   write of one item in a batch replaces the first. The op records are a
 *   plain INSERT: one another writer recorded first is a unique violation
 *   on the server (CX_ERETRY) that voids the COMMIT behind it.
 * - Every statement is prepared once per connection and run with its
 *   values as parameters; no SQL is ever built from values.
 * - The password comes only from PGPASSFILE, ~/.pgpass or PGPASSWORD; a URI
 *   holding one is refused, and messages name the database by a URI built
 *   from its parts without one. */
#include "core/storage-impl.h"

#include "proto/wire.h"
#include "util/error.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long begin waits for a free connection before CX_EBUSY. */
#define POOL_WAIT_MS 10000
/* Connections the pool may hold at most, whatever set_pool is asked. */
#define POOL_MAX 256
/* Blobs are written in chunks and read in slices of this size, so that a
 * blob is never held whole twice (in libpq's send buffer or a result, and
 * in the caller's buffer). */
#define BLOB_SLICE (1u << 20)
/* Audit entries are read in pages of this many rows. */
#define AUDIT_PAGE 1000
#define ADVISORY_KEY "7468657265636f72" /* the migration lock's key */

/* --- the statements ---------------------------------------------------- */

/* The text search configuration of the full-text index and of queries
 * (migration 2 -> 3): a regconfig literal, so the index's expression is
 * immutable. */
#define CX_PG_TS_CONFIG "english"

enum {
    S_KEY_PUT,
    S_KEY_GET,
    S_KEY_LIST,
    S_KEY_REVOKE,
    S_SESSION_PUT,
    S_SESSION_GET,
    S_SESSION_END,
    S_SESSION_END_KEY,
    S_SESSION_PURGE,
    S_SEQ_NEXT,
    S_SEQ_LAST,
    S_HORIZON,
    S_OP_GET,
    S_OP_PUT,
    S_ITEM_GET,
    S_ITEM_PUT,
    S_CHANGES,
    S_COMPACT_DROP,
    S_COMPACT_HORIZON,
    S_QUEUE_COUNT,
    S_QUEUE,
    S_QUEUE_DEPTH,
    S_BLOB_HAS,
    S_BLOB_PUT,
    S_BLOB_CHUNK_PUT,
    S_BLOB_CHUNK,
    S_BLOB_SIZE,
    S_BLOB_SLICE,
    S_BLOB_DROP,
    S_AUDIT_HEAD,
    S_AUDIT_HEAD_LOCK,
    S_AUDIT_PUT,
    S_AUDIT_HEAD_SET,
    S_AUDIT_PAGE,
    S_TEAM_LOCK,
    S_SEQ_SET,
    S_OPS_MANY,
    S_ITEMS_MANY,
    S_BEGIN_WRITE,
    S_BEGIN_READ,
    S_COMMIT,
    S_TEAM_SET,
    S_ITEMS_PUT,
    S_OPS_PUT,
    S_PULL,
    S_SEARCH,
    S_SEARCH_ALL,
    S_ITEMS_ASC,
    S_ITEMS_DESC,
    S_AUDIT_TEAM,
    S_SYNC_PUT,
    S_SYNC_LIST,
    S_COUNT
};

#define KEY_COLS "key_id, team, role, name, hash, created_ms, revoked_ms"
/* "Awaits review": the kind and its two statuses are parameters, filled
 * from the one model (cx_awaits_review) by awaiting(). */
#define AWAITING(k, s1, s2) "kind = $" k " AND status IN ($" s1 ", $" s2 ") AND NOT deleted"

static const char *const SQL[S_COUNT] = {
    [S_KEY_PUT] = "INSERT INTO keys(" KEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
                  " ON CONFLICT (key_id) DO NOTHING",
    [S_KEY_GET] = "SELECT " KEY_COLS " FROM keys WHERE key_id = $1",
    [S_KEY_LIST] = "SELECT " KEY_COLS " FROM keys ORDER BY team, created_ms, key_id",
    [S_KEY_REVOKE] = "UPDATE keys SET revoked_ms = $2 WHERE key_id = $1",
    [S_SESSION_PUT] = "INSERT INTO sessions(token_hash, key_id, team, csrf, created_ms,"
                      " expires_ms, ended_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    [S_SESSION_GET] = "SELECT token_hash, key_id, team, csrf, created_ms, expires_ms, ended_ms"
                      " FROM sessions WHERE token_hash = $1",
    [S_SESSION_END] = "UPDATE sessions SET ended_ms = $2 WHERE token_hash = $1 AND ended_ms = 0",
    [S_SESSION_END_KEY] = "UPDATE sessions SET ended_ms = $2 WHERE key_id = $1 AND ended_ms = 0",
    [S_SESSION_PURGE] = "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions"
                        " WHERE expires_ms < $1 OR (ended_ms > 0 AND ended_ms < $1) LIMIT $2)",
    [S_SEQ_NEXT] = "INSERT INTO teams(team, seq) VALUES ($1, 1)"
                   " ON CONFLICT (team) DO UPDATE SET seq = teams.seq + 1 RETURNING seq",
    [S_SEQ_LAST] = "SELECT seq FROM teams WHERE team = $1",
    [S_HORIZON] = "SELECT horizon FROM teams WHERE team = $1",
    [S_OP_GET] = "SELECT digest, seq FROM ops WHERE team = $1 AND op_id = $2",
    [S_OP_PUT] = "INSERT INTO ops(team, op_id, digest, seq) VALUES ($1, $2, $3, $4)"
                 " ON CONFLICT (team, op_id) DO NOTHING",
    [S_ITEM_GET] = "SELECT json, seq, deleted FROM items WHERE team = $1 AND id = $2",
    [S_ITEM_PUT] = "INSERT INTO items(team, id, kind, status, seq, deleted, json)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (team, id) DO UPDATE SET"
                   " kind = excluded.kind, status = excluded.status, seq = excluded.seq,"
                   " deleted = excluded.deleted, json = excluded.json",
    [S_CHANGES] = "SELECT seq, id, deleted, json FROM items WHERE team = $1 AND seq > $2"
                  " ORDER BY seq LIMIT $3",
    [S_COMPACT_DROP] = "DELETE FROM items WHERE team = $1 AND deleted AND seq < $2",
    [S_COMPACT_HORIZON] = "INSERT INTO teams(team, seq, horizon) VALUES ($1, 0, $2)"
                          " ON CONFLICT (team) DO UPDATE"
                          " SET horizon = GREATEST(teams.horizon, excluded.horizon)",
    [S_QUEUE_COUNT] = "SELECT count(*) FROM items WHERE team = $1 AND " AWAITING("2", "3", "4"),
    [S_QUEUE] = "SELECT json FROM items WHERE team = $1 AND " AWAITING("2", "3", "4")
                " ORDER BY seq LIMIT $5",
    [S_QUEUE_DEPTH] = "SELECT count(*) FROM items WHERE " AWAITING("1", "2", "3"),
    [S_BLOB_HAS] = "SELECT 1 FROM blobs WHERE team = $1 AND sha256 = $2",
    [S_BLOB_PUT] = "INSERT INTO blobs(team, sha256, size, data) VALUES ($1, $2, $3, NULL)"
                   " ON CONFLICT (team, sha256) DO NOTHING",
    [S_BLOB_CHUNK_PUT] = "INSERT INTO blob_chunks(team, sha256, n, data)"
                         " VALUES ($1, $2, $3, $4)",
    [S_BLOB_CHUNK] = "SELECT data FROM blob_chunks WHERE team = $1 AND sha256 = $2 AND n = $3",
    [S_BLOB_SIZE] = "SELECT size, data IS NULL FROM blobs WHERE team = $1 AND sha256 = $2",
    [S_BLOB_SLICE] = "SELECT substring(data FROM $3 FOR $4) FROM blobs"
                     " WHERE team = $1 AND sha256 = $2",
    [S_BLOB_DROP] = "DELETE FROM blobs WHERE team = $1 AND sha256 = $2 AND NOT EXISTS"
                    " (SELECT 1 FROM items WHERE team = $1 AND NOT deleted"
                    " AND strpos(json, $2) > 0)",
    [S_AUDIT_HEAD] = "SELECT n, hash FROM audit_head",
    [S_AUDIT_HEAD_LOCK] = "SELECT n, hash FROM audit_head FOR UPDATE",
    [S_AUDIT_PUT] = "INSERT INTO audit(n, ts_ms, team, actor, action, detail, prev, hash)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (n) DO NOTHING",
    [S_AUDIT_HEAD_SET] = "UPDATE audit_head SET n = $1, hash = $2 WHERE n < $1",
    [S_AUDIT_PAGE] = "SELECT n, ts_ms, team, actor, action, detail, prev, hash FROM audit"
                     " WHERE n > $1 ORDER BY n LIMIT $2",
    /* Locks the team's row, making it when the team is new: one statement
     * that always holds the row afterwards, so it can be pipelined. */
    [S_TEAM_LOCK] = "INSERT INTO teams(team) VALUES ($1)"
                    " ON CONFLICT (team) DO UPDATE SET seq = teams.seq",
    /* The seqs this transaction took after its first, written once before
     * it commits (it holds the row, so the count only it moves). */
    [S_SEQ_SET] = "UPDATE teams SET seq = $2 WHERE team = $1 AND seq < $2",
    [S_OPS_MANY] = "SELECT op_id, digest, seq FROM ops WHERE team = $1 AND op_id = ANY($2::text[])",
    [S_ITEMS_MANY] = "SELECT id, json, seq, deleted FROM items"
                     " WHERE team = $1 AND id = ANY($2::text[])",
    [S_BEGIN_WRITE] = "BEGIN ISOLATION LEVEL READ COMMITTED",
    [S_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    [S_COMMIT] = "COMMIT",
    [S_TEAM_SET] = "UPDATE teams SET seq = $2, horizon = $3 WHERE team = $1",
    /* The item and op writes of a push, one statement each: every column
     * an array (binary), one row per element. The items are distinct ids
     * (a second write of an id in a batch replaces the first). */
    [S_ITEMS_PUT] = "INSERT INTO items(team, id, kind, status, seq, deleted, json)"
                    " SELECT $1, u.id, u.kind, u.status, u.seq, u.deleted, u.json FROM"
                    " unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::bool[],"
                    " $7::text[]) AS u(id, kind, status, seq, deleted, json)"
                    " ON CONFLICT (team, id) DO UPDATE SET"
                    " kind = excluded.kind, status = excluded.status, seq = excluded.seq,"
                    " deleted = excluded.deleted, json = excluded.json",
    /* A pull: the horizon in every row, then the page (none when the
     * cursor is older than the horizon); one row with NULLs when empty. */
    [S_PULL] = "SELECT h.horizon, c.seq, c.id, c.deleted, c.json FROM"
               " (SELECT coalesce((SELECT horizon FROM teams WHERE team = $1), 0) AS horizon) h"
               " LEFT JOIN LATERAL (SELECT seq, id, deleted, json FROM items"
               " WHERE team = $1 AND seq > $2 AND NOT ($2 > 0 AND $2 < h.horizon)"
               " ORDER BY seq LIMIT $3) c ON true ORDER BY c.seq",
    /* The review app's search: the trust order of the one model comes as
     * three arrays ($7 kinds, $8 statuses, $9 their cx_trust_of), the query
     * text goes through plainto_tsquery (every word data, never syntax);
     * title weighs 4 times the body as in SQLite's bm25(4, 1) ({D, C, B,
     * A} weights). total rides on every row. */
    [S_SEARCH] = "SELECT i.json, count(*) OVER () FROM items i,"
                 " plainto_tsquery('" CX_PG_TS_CONFIG "', $1) q"
                 " WHERE i.tsv @@ q AND i.team = $2 AND NOT i.deleted"
                 " AND ($3::text IS NULL OR i.kind = $3) AND ($4::text IS NULL OR i.status = $4)"
                 " AND ($5::text IS NULL OR (i.json::jsonb ->> 'subcortex') = $5)"
                 " ORDER BY coalesce((SELECT t.t FROM unnest($7::text[], $8::text[], $9::int[])"
                 " AS t(k, s, t) WHERE t.k = i.kind AND t.s = i.status), 1000),"
                 " ts_rank_cd('{0.1, 0.2, 0.25, 1.0}', i.tsv, q) DESC, i.seq DESC LIMIT $6",
    [S_SEARCH_ALL] = "SELECT i.json, count(*) OVER () FROM items i"
                     " WHERE i.team = $1 AND NOT i.deleted"
                     " AND ($2::text IS NULL OR i.kind = $2) AND ($3::text IS NULL OR i.status = $3)"
                     " AND ($4::text IS NULL OR (i.json::jsonb ->> 'subcortex') = $4)"
                     " ORDER BY i.seq DESC LIMIT $5",
    [S_ITEMS_ASC] = "SELECT seq, id, json FROM items WHERE team = $1"
                    " AND ($2::text IS NULL OR kind = $2) AND NOT deleted ORDER BY seq LIMIT $3",
    [S_ITEMS_DESC] = "SELECT seq, id, json FROM items WHERE team = $1"
                     " AND ($2::text IS NULL OR kind = $2) AND NOT deleted ORDER BY seq DESC LIMIT $3",
    [S_AUDIT_TEAM] = "SELECT n, ts_ms, team, actor, action, detail, prev, hash FROM audit"
                     " WHERE team = $1 AND ($2::bigint <= 0 OR n < $2::bigint)"
                     " AND ($3::text IS NULL OR strpos(detail, $3) > 0) ORDER BY n DESC LIMIT $4",
    [S_SYNC_PUT] = "INSERT INTO syncs(team, key_id, workspace, principal, at_ms, cursor)"
                   " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team, key_id, workspace)"
                   " DO UPDATE SET principal = excluded.principal, at_ms = excluded.at_ms,"
                   " cursor = excluded.cursor",
    [S_SYNC_LIST] = "SELECT key_id, principal, workspace, at_ms, cursor FROM syncs"
                    " WHERE team = $1 ORDER BY at_ms DESC, workspace LIMIT 1000",
    [S_OPS_PUT] = "INSERT INTO ops(team, op_id, digest, seq)"
                  " SELECT $1, u.op_id, u.digest, u.seq FROM"
                  " unnest($2::text[], $3::bytea[], $4::int8[]) AS u(op_id, digest, seq)",
};

/* The migrations, in order: MIGRATIONS[i] takes the schema from version i
 * to i + 1. Append only; never edit a step that has shipped. Text keys
 * collate as bytes ("C"), as SQLite compares them. */
static const char *const MIGRATIONS[] = {
    "CREATE TABLE teams(team text COLLATE \"C\" PRIMARY KEY, seq bigint NOT NULL DEFAULT 0,"
    " horizon bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE keys(key_id text COLLATE \"C\" PRIMARY KEY, team text COLLATE \"C\" NOT NULL,"
    " role text NOT NULL, name text COLLATE \"C\" NOT NULL, hash bytea NOT NULL,"
    " created_ms bigint NOT NULL, revoked_ms bigint NOT NULL DEFAULT 0);"
    "CREATE TABLE items(team text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL,"
    " kind text NOT NULL, status text NOT NULL, seq bigint NOT NULL,"
    " deleted boolean NOT NULL DEFAULT false, json text, PRIMARY KEY(team, id));"
    "CREATE UNIQUE INDEX items_seq ON items(team, seq);"
    "CREATE INDEX items_queue ON items(team, kind, status, seq);"
    "CREATE TABLE ops(team text COLLATE \"C\" NOT NULL, op_id text COLLATE \"C\" NOT NULL,"
    " digest bytea NOT NULL, seq bigint NOT NULL, PRIMARY KEY(team, op_id));"
    "CREATE TABLE blobs(team text COLLATE \"C\" NOT NULL, sha256 text COLLATE \"C\" NOT NULL,"
    " size bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY(team, sha256));"
    /* Blobs are content-addressed and mostly compressed already. */
    "ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;"
    "CREATE TABLE audit(n bigint PRIMARY KEY, ts_ms bigint NOT NULL, team text NOT NULL,"
    " actor text NOT NULL, action text NOT NULL, detail text NOT NULL, prev text NOT NULL,"
    " hash text NOT NULL);"
    /* The chain's head: one row, locked by a writer that appends. */
    "CREATE TABLE audit_head(one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    " n bigint NOT NULL, hash text NOT NULL);"
    "INSERT INTO audit_head(one, n, hash) VALUES (true, 0, '');",
    /* 1 -> 2: new blobs are written in chunks of BLOB_SLICE bytes, so that
     * storing one never holds it twice (the caller's buffer and libpq's
     * send buffer); rows of version 1 keep their bytes in blobs.data. */
    "ALTER TABLE blobs ALTER COLUMN data DROP NOT NULL;"
    "CREATE TABLE blob_chunks(team text COLLATE \"C\" NOT NULL,"
    " sha256 text COLLATE \"C\" NOT NULL, n integer NOT NULL, data bytea NOT NULL,"
    " PRIMARY KEY(team, sha256, n), FOREIGN KEY(team, sha256)"
    " REFERENCES blobs(team, sha256) ON DELETE CASCADE);"
    "ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;",
    /* 2 -> 3: the review app's sessions, shared by every node (storage.h:
     * a keyed hash of the cookie's token, never the token). */
    "CREATE TABLE sessions(token_hash text COLLATE \"C\" PRIMARY KEY,"
    " key_id text COLLATE \"C\" NOT NULL, team text COLLATE \"C\" NOT NULL,"
    " csrf text NOT NULL, created_ms bigint NOT NULL, expires_ms bigint NOT NULL,"
    " ended_ms bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX sessions_key ON sessions(key_id);"
    "CREATE INDEX sessions_expires ON sessions(expires_ms);",
    /* 3 -> 4: the review app's reads. Full-text search over the items'
     * title (weight A) and body (B), in the 'english' configuration (as
     * SQLite's porter tokenizer stems English words, so the two backends
     * find the same items for a query); a generated column, so every
     * writer keeps it without knowing it, with a GIN index. A tombstone's
     * NULL json gives an empty vector. The team's audit entries, newest
     * first, by index; and the last pull of each workspace. */
    "ALTER TABLE items ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
    " setweight(to_tsvector('" CX_PG_TS_CONFIG "', coalesce(json::jsonb ->> 'title', '')), 'A') ||"
    " setweight(to_tsvector('" CX_PG_TS_CONFIG "', coalesce(json::jsonb ->> 'body', '')), 'B'))"
    " STORED;"
    "CREATE INDEX items_tsv ON items USING gin(tsv);"
    "CREATE INDEX audit_team ON audit(team, n);"
    "CREATE TABLE syncs(team text COLLATE \"C\" NOT NULL, key_id text COLLATE \"C\" NOT NULL,"
    " workspace text COLLATE \"C\" NOT NULL, principal text NOT NULL, at_ms bigint NOT NULL,"
    " cursor bigint NOT NULL, PRIMARY KEY(team, key_id, workspace));",
};
#define SCHEMA_VERSION ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* --- the handle, its pool and its transactions --------------------------- */

/* A pooled connection; its transaction is its first member, so the
 * cx_storage_tx handed out is the connection. */
/* A statement sent in the pipeline whose result is read later: what it
 * was (for messages) and what its row count must be. */
typedef struct pending {
    const char *what;
    int expect_rows; /* -1: any */
    int code;        /* when the count is not expect_rows */
} pending;

#define PIPE_MAX 256
/* Item (or op) writes held for one batched statement at most. */
#define BATCH_MAX 512

/* Writes held back to go as one statement (S_ITEMS_PUT, S_OPS_PUT) before
 * the next other statement of the transaction is sent, so that every read
 * sees them and the server runs everything in the order it was asked. One
 * team's at a time; each field a malloc'd copy. */
typedef struct batched_item {
    char *id, *kind, *status, *json; /* json NULL: a tombstone */
    int64_t seq;
    bool deleted;
} batched_item;

typedef struct batched_op {
    char *op_id;
    uint8_t digest[32];
    int64_t seq;
} batched_op;

typedef struct batch {
    char items_team[CX_TEAM_MAX + 1], ops_team[CX_TEAM_MAX + 1];
    batched_item item[BATCH_MAX];
    int nitems;
    batched_op op[BATCH_MAX];
    int nops;
} batch;

/* What cx_storage_prefetch read, for one team, in one transaction: for the
 * ids asked about, the row (or -1: not there). An id this transaction
 * writes goes stale and is read from the database again. */
typedef struct prefetched {
    char team[CX_TEAM_MAX + 1];
    PGresult *res;    /* the rows */
    size_t n;         /* ids asked about */
    char **ids;       /* copies, one block */
    int *row;         /* per id: its row in res, or -1 */
    bool *stale;      /* per id */
} prefetched;

typedef struct pg_conn {
    cx_storage_tx tx;
    PGconn *c;
    uint64_t prepared; /* bit i: SQL[i] is prepared (or its Parse is sent) */
    int failed;        /* the first failure's code: the transaction is void */
    int nlocked;       /* teams whose row this write transaction holds */
    char locked[4][CX_TEAM_MAX + 1];
    /* The last op id that op_get found missing under the team's lock:
     * recording it next cannot conflict, so op_put need not wait. */
    char miss_team[CX_TEAM_MAX + 1];
    char miss_op[160];
    /* The team's seq as this write transaction last set it (it holds the
     * team's row, so no one else can move it). */
    char seq_team[CX_TEAM_MAX + 1];
    int64_t seq_val;
    bool seq_dirty; /* seq_val is ahead of the row: written before COMMIT */
    prefetched pf_ops, pf_items;
    batch *wb;           /* held writes; allocated on first use */
    bool flushing;       /* flush_writes is sending them */
    bool ending;         /* idle with a read transaction's end unread (end_read) */
    pending q[PIPE_MAX]; /* sent, results not read yet, in order */
    int nq;
    struct pg_conn *next;
} pg_conn;

_Static_assert(S_COUNT <= 64, "one bit per statement");

typedef struct pg_storage {
    cx_storage base;
    char *uri;   /* as given */
    char *label; /* postgresql://user@host:port/db, for messages */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pg_conn *idle; /* free connections */
    int open;      /* connections that exist, idle or in use */
    int max;
} pg_storage;

static pg_storage *pgs(cx_storage *st) { return (pg_storage *)st; }
static pg_conn *pgc(cx_storage_tx *tx) { return (pg_conn *)tx; }

/* The code for a failed result, with the detail set. SQLSTATEs a
 * concurrent transaction causes are CX_ERETRY. */
static int pgerr(pg_conn *pc, const PGresult *res, const char *what) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = pc && pc->c ? PQerrorMessage(pc->c) : "no connection";
    int code = CX_EIO;
    if (state) {
        if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "23505"))
            code = CX_ERETRY;
        else if (!strcmp(state, "57014") || !strcmp(state, "55P03") || !strcmp(state, "53300"))
            code = CX_EBUSY; /* canceled (timeout), lock not available, too many connections */
        else if (!strcmp(state, "25006"))
            code = CX_EINVAL; /* a write in a read-only transaction */
    }
    if (pc && !pc->failed)
        pc->failed = code;
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return cx_error_set(code, "%s: %.*s%s%s%s", what, (int)n, msg, state ? " (SQLSTATE " : "",
                        state ? state : "", state ? ")" : "");
}

/* Runs statement s with n parameters. Text parameters are NUL-terminated
 * unless len[i] is given with fmt[i] = 1 (binary). *out is the result (the
 * caller clears it) when the statement succeeded. */
typedef struct params {
    int n;
    const char *v[12];
    int len[12];
    int fmt[12];
    char num[12][24];
} params;

static void p_text(params *p, const char *s) {
    assert(p->n < 12);
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_int(params *p, int64_t v) {
    assert(p->n < 12);
    snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
    p_text(p, p->num[p->n]);
}

static void p_bool(params *p, bool v) { p_text(p, v ? "t" : "f"); }

static void p_bin(params *p, const void *data, size_t len) {
    assert(p->n < 12 && len <= INT32_MAX);
    p->v[p->n] = len ? data : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

/* A transaction's statements go through libpq's pipeline: one whose
 * result the caller needs is sent with a sync point and waited for
 * (run); one whose result only matters if it fails (BEGIN, the team lock,
 * an item written, an op recorded that cannot conflict) is sent and its
 * result read with the next one that waits (run_async). The server runs
 * them in order; a failure voids the transaction and is reported by the
 * next call or the commit, with its own code. Round trips, not the
 * statements, are what a transaction on a remote database waits for. */

/* True when the connection is beyond use (the server went away). */
static bool conn_lost(const pg_conn *pc) { return PQstatus(pc->c) != CONNECTION_OK; }

/* A failure of the connection itself (no result to read): voids the
 * transaction. Nothing was committed, so running the transaction again on
 * another connection is safe: CX_ERETRY, except for COMMIT, whose outcome
 * is then unknown (CX_EIO). */
static int lost(pg_conn *pc, const char *what, bool commit) {
    const char *msg = PQerrorMessage(pc->c);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    int code = commit || !conn_lost(pc) ? CX_EIO : CX_ERETRY;
    if (!pc->failed)
        pc->failed = code;
    return cx_error_set(code, "%s: %.*s", what, (int)n, n ? msg : "the connection failed");
}

/* True when the result says the session ended (the server shut down or
 * ended it, or the link broke). */
static bool conn_gone(const PGresult *res) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state && (!strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
                     !strcmp(state, "57P02") || !strcmp(state, "57P03"));
}

/* lost(), with the server's word for it. */
static int lost_with(pg_conn *pc, const PGresult *res, const char *what, bool commit) {
    char detail[512];
    (void)pgerr(NULL, res, what);
    snprintf(detail, sizeof detail, "%s", cx_error_last());
    int code = commit ? CX_EIO : CX_ERETRY;
    if (!pc->failed)
        pc->failed = code;
    return cx_error_set(code, "%s", detail);
}

static void pf_clear(prefetched *f) {
    PQclear(f->res);
    free(f->ids);
    free(f->row);
    free(f->stale);
    memset(f, 0, sizeof *f);
}

/* The index of id among those prefetched for team and still fresh, or -1. */
static long pf_find(const prefetched *f, const char *team, const char *id) {
    if (!f->res || strcmp(f->team, team) != 0)
        return -1;
    for (size_t i = 0; i < f->n; i++)
        if (f->ids[i] && !f->stale[i] && strcmp(f->ids[i], id) == 0)
            return (long)i;
    return -1;
}

/* This transaction writes id: read it from the database from now on. */
static void pf_stale(prefetched *f, const char *team, const char *id) {
    if (!f->res || strcmp(f->team, team) != 0)
        return;
    for (size_t i = 0; i < f->n; i++)
        if (f->ids[i] && strcmp(f->ids[i], id) == 0)
            f->stale[i] = true;
}

static void stmt_name(char name[16], int s) { snprintf(name, 16, "cx%d", s); }

/* Sends statement s (its Parse first, the first time on this connection;
 * that result joins the queue). */
static int send_prepare(pg_conn *pc, int s, const params *p, const char *what) {
    char name[16];
    stmt_name(name, s);
    if (!(pc->prepared & (UINT64_C(1) << s))) {
        if (pc->nq == PIPE_MAX)
            return cx_error_set(CX_EIO, "%s: the pipeline is full", what);
        if (!PQsendPrepare(pc->c, name, SQL[s], p ? p->n : 0, NULL))
            return lost(pc, what, false);
        pc->q[pc->nq++] = (pending){.what = what, .expect_rows = -1};
        pc->prepared |= UINT64_C(1) << s;
    }
    return 0;
}

static int send_stmt(pg_conn *pc, int s, const params *p, int result_fmt, const char *what) {
    char name[16];
    stmt_name(name, s);
    int r = send_prepare(pc, s, p, what);
    if (r)
        return r;
    if (!PQsendQueryPrepared(pc->c, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, result_fmt))
        return lost(pc, what, s == S_COMMIT);
    return 0;
}

/* Reads one statement's result (and the NULL after it). *out, when given
 * and the statement succeeded, is the result (the caller clears it). */
static int take_result(pg_conn *pc, PGresult **out, const char *what, bool commit) {
    PGresult *res = PQgetResult(pc->c);
    if (!res)
        return lost(pc, what, commit);
    for (PGresult *more; (more = PQgetResult(pc->c)) != NULL;)
        PQclear(more);
    ExecStatusType es = PQresultStatus(res);
    int r = 0;
    if (es == PGRES_PIPELINE_ABORTED) /* after a failure, whose detail stays */
        r = pc->failed ? pc->failed
                       : cx_error_set(CX_EIO, "%s: the pipeline was aborted", what);
    else if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
        r = conn_gone(res) || conn_lost(pc) ? lost_with(pc, res, what, commit)
                                            : pgerr(pc, res, what);
    if (r || !out)
        PQclear(res);
    else
        *out = res;
    return r;
}

/* Reads the queued results, checking their row counts; the first failure
 * is returned (and voids the transaction). */
static int drain(pg_conn *pc) {
    int r = 0;
    for (int i = 0; i < pc->nq; i++) {
        PGresult *res = NULL;
        int e = take_result(pc, &res, pc->q[i].what, false);
        if (e == 0 && pc->q[i].expect_rows >= 0 &&
            strtoll(PQcmdTuples(res), NULL, 10) != pc->q[i].expect_rows) {
            e = cx_error_set(pc->q[i].code, "%s: another transaction was first", pc->q[i].what);
            if (!pc->failed)
                pc->failed = e;
        }
        PQclear(res);
        if (e && !r)
            r = e;
    }
    pc->nq = 0;
    return r;
}

/* Reads the sync point's result. */
static int take_sync(pg_conn *pc, const char *what) {
    PGresult *res = PQgetResult(pc->c);
    bool ok = res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    return ok ? 0 : lost(pc, what, false);
}

/* Runs statement s and waits for it (and for everything queued before it).
 * Text parameters are NUL-terminated unless fmt[i] = 1 (binary, len[i]
 * bytes). *out is the result (the caller clears it). */
static int flush_writes(pg_conn *pc);

static int run(pg_conn *pc, int s, const params *p, int result_fmt, PGresult **out,
               const char *what) {
    if (pc->failed)
        return cx_error_set(pc->failed, "%s: an earlier statement of this transaction failed",
                            what);
    int r = flush_writes(pc);
    if (r)
        return r;
    r = send_stmt(pc, s, p, result_fmt, what);
    if (r)
        return r;
    if (!PQpipelineSync(pc->c))
        return lost(pc, what, s == S_COMMIT);
    int ra = drain(pc);
    PGresult *res = NULL;
    int rs = take_result(pc, &res, what, s == S_COMMIT);
    int ry = take_sync(pc, what);
    r = ra ? ra : rs ? rs : ry;
    if (r) {
        PQclear(res);
        return r;
    }
    *out = res;
    return 0;
}

/* Runs n statements in one round trip (after everything queued before
 * them) and waits; out[i] is statement i's result (the caller clears
 * them; all NULL on failure). */
static int run_many(pg_conn *pc, int n, const int *s, const params *const *p, PGresult **out,
                    const char *what) {
    if (pc->failed)
        return cx_error_set(pc->failed, "%s: an earlier statement of this transaction failed",
                            what);
    int r = flush_writes(pc);
    /* the Parses first: their results are read with the queue, before
     * the statements' own */
    for (int i = 0; r == 0 && i < n; i++)
        r = send_prepare(pc, s[i], p[i], what);
    for (int i = 0; r == 0 && i < n; i++)
        r = send_stmt(pc, s[i], p[i], 0, what);
    if (r)
        return r;
    if (!PQpipelineSync(pc->c))
        return lost(pc, what, false);
    r = drain(pc);
    for (int i = 0; i < n; i++) {
        int e = take_result(pc, &out[i], what, false);
        if (e && !r)
            r = e;
    }
    int ry = take_sync(pc, what);
    if (!r)
        r = ry;
    if (r)
        for (int i = 0; i < n; i++) {
            PQclear(out[i]);
            out[i] = NULL;
        }
    return r;
}

/* Sends statement s without waiting; its result is read, and its row
 * count checked against expect_rows (-1: any; else failing with code),
 * by the next run(). */
static int queue_stmt(pg_conn *pc, int s, const params *p, int expect_rows, int code,
                      const char *what) {
    if (pc->failed)
        return cx_error_set(pc->failed, "%s: an earlier statement of this transaction failed",
                            what);
    if (pc->nq >= PIPE_MAX - 1) {
        /* Read what is queued before more goes out. */
        if (!PQpipelineSync(pc->c))
            return lost(pc, what, false);
        int r = drain(pc), ry = take_sync(pc, what);
        if (r || ry)
            return r ? r : ry;
    }
    int r = send_stmt(pc, s, p, 0, what);
    if (r)
        return r;
    pc->q[pc->nq++] = (pending){.what = what, .expect_rows = expect_rows, .code = code};
    return 0;
}

static int run_async(pg_conn *pc, int s, const params *p, int expect_rows, int code,
                     const char *what) {
    int r = flush_writes(pc);
    return r ? r : queue_stmt(pc, s, p, expect_rows, code, what);
}

/* --- held writes, sent as arrays -------------------------------------------- */

/* A growing byte string: an array parameter in PostgreSQL's binary form. */
typedef struct bytes {
    uint8_t *b;
    size_t n, cap;
    bool oom;
} bytes;

static void b_put(bytes *o, const void *v, size_t n) {
    if (o->oom)
        return;
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n)
            cap *= 2;
        uint8_t *nb = realloc(o->b, cap);
        if (!nb) {
            o->oom = true;
            return;
        }
        o->b = nb;
        o->cap = cap;
    }
    memcpy(o->b + o->n, v, n);
    o->n += n;
}

static void b_i32(bytes *o, int32_t v) {
    uint32_t u = (uint32_t)v;
    uint8_t be[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    b_put(o, be, 4);
}

static void b_i64(bytes *o, int64_t v) {
    b_i32(o, (int32_t)(uint32_t)((uint64_t)v >> 32));
    b_i32(o, (int32_t)(uint32_t)(uint64_t)v);
}

/* The header of a one-dimensional array of n elements of type oid. */
static void arr_head(bytes *o, int n, bool has_null, int32_t oid) {
    b_i32(o, 1);
    b_i32(o, has_null ? 1 : 0);
    b_i32(o, oid);
    b_i32(o, n);
    b_i32(o, 1); /* lower bound */
}

/* Elements: a value is its length then its bytes; NULL is length -1. */
static void arr_text(bytes *o, const char *v) {
    if (!v) {
        b_i32(o, -1);
        return;
    }
    size_t n = strlen(v);
    if (n > INT32_MAX) {
        o->oom = true;
        return;
    }
    b_i32(o, (int32_t)n);
    b_put(o, v, n);
}

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

static void batch_clear(batch *wb) {
    if (!wb)
        return;
    for (int i = 0; i < wb->nitems; i++) {
        free(wb->item[i].id);
        free(wb->item[i].kind);
        free(wb->item[i].status);
        free(wb->item[i].json);
    }
    for (int i = 0; i < wb->nops; i++)
        free(wb->op[i].op_id);
    wb->nitems = wb->nops = 0;
}

/* Queues statement `stmt` with the team and the ncol array columns of n
 * rows as its parameters (libpq copies them into its buffer when it
 * sends), and frees the columns. A column that ran out of memory voids
 * the transaction. */
static int send_columns(pg_conn *pc, int stmt, const char *team, bytes *col, int ncol, int n,
                        const char *what) {
    int r = 0;
    params p = {0};
    p_text(&p, team);
    for (int c = 0; c < ncol; c++) {
        if (col[c].oom || col[c].n > INT32_MAX)
            r = cx_error_set(CX_ENOMEM, "%s (%d rows): out of memory", what, n);
        else
            p_bin(&p, col[c].b, col[c].n);
    }
    if (r == 0)
        r = queue_stmt(pc, stmt, &p, -1, CX_EIO, what);
    else if (!pc->failed)
        pc->failed = r;
    for (int c = 0; c < ncol; c++)
        free(col[c].b);
    return r;
}

/* Sends the held item writes as one statement (queued: a failure voids
 * the transaction and is reported by the next call or the commit). */
static int flush_items(pg_conn *pc) {
    batch *wb = pc->wb;
    int n = wb->nitems;
    bytes col[6] = {{0}};
    bool has_null = false;
    for (int i = 0; i < n; i++)
        has_null |= wb->item[i].json == NULL;
    arr_head(&col[0], n, false, OID_TEXT);
    arr_head(&col[1], n, false, OID_TEXT);
    arr_head(&col[2], n, false, OID_TEXT);
    arr_head(&col[3], n, false, OID_INT8);
    arr_head(&col[4], n, false, OID_BOOL);
    arr_head(&col[5], n, has_null, OID_TEXT);
    for (int i = 0; i < n; i++) {
        const batched_item *it = &wb->item[i];
        arr_text(&col[0], it->id);
        arr_text(&col[1], it->kind);
        arr_text(&col[2], it->status);
        b_i32(&col[3], 8);
        b_i64(&col[3], it->seq);
        uint8_t d = it->deleted ? 1 : 0;
        b_i32(&col[4], 1);
        b_put(&col[4], &d, 1);
        arr_text(&col[5], it->json);
    }
    return send_columns(pc, S_ITEMS_PUT, wb->items_team, col, 6, n, "writing items");
}

/* Sends the held op records as one statement; each must go in (they were
 * found missing under the team's lock). A plain INSERT, not ON CONFLICT DO
 * NOTHING and a row count: the count would be read only after a COMMIT
 * sent in the same round trip had run, while a unique violation (23505,
 * CX_ERETRY) fails on the server and voids the COMMIT queued behind it. */
static int flush_ops(pg_conn *pc) {
    batch *wb = pc->wb;
    int n = wb->nops;
    bytes col[3] = {{0}};
    arr_head(&col[0], n, false, OID_TEXT);
    arr_head(&col[1], n, false, OID_BYTEA);
    arr_head(&col[2], n, false, OID_INT8);
    for (int i = 0; i < n; i++) {
        arr_text(&col[0], wb->op[i].op_id);
        b_i32(&col[1], 32);
        b_put(&col[1], wb->op[i].digest, 32);
        b_i32(&col[2], 8);
        b_i64(&col[2], wb->op[i].seq);
    }
    return send_columns(pc, S_OPS_PUT, wb->ops_team, col, 3, n, "recording ops");
}

/* Sends whatever writes are held, ahead of the statement about to go. */
static int flush_writes(pg_conn *pc) {
    batch *wb = pc->wb;
    if (!wb || pc->flushing || (wb->nitems == 0 && wb->nops == 0))
        return 0;
    pc->flushing = true;
    int r = wb->nitems ? flush_items(pc) : 0;
    if (r == 0 && wb->nops)
        r = flush_ops(pc);
    pc->flushing = false;
    batch_clear(wb);
    return r;
}

/* The batch, made on first use; NULL when out of memory. */
static batch *batch_get(pg_conn *pc) {
    if (!pc->wb)
        pc->wb = calloc(1, sizeof *pc->wb);
    return pc->wb;
}

/* A statement whose rows do not matter; *rows gets how many it touched. */
static int run_cmd(pg_conn *pc, int s, const params *p, int64_t *rows, const char *what) {
    PGresult *res = NULL;
    int r = run(pc, s, p, 0, &res, what);
    if (r)
        return r;
    if (rows)
        *rows = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int64_t col_int(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool col_bool(const PGresult *res, int row, int col) {
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

static void col_copy(char *dst, size_t cap, const PGresult *res, int row, int col) {
    snprintf(dst, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A bytea column in text form ("\x…") into out[n] when it is exactly n
 * bytes; otherwise out is zeroed. */
static void col_bytes(uint8_t *out, size_t n, const PGresult *res, int row, int col) {
    memset(out, 0, n);
    const char *v = PQgetvalue(res, row, col);
    if (PQgetisnull(res, row, col) || strncmp(v, "\\x", 2) != 0 || strlen(v + 2) != 2 * n)
        return;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            memset(out, 0, n);
            return;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

/* --- connections ----------------------------------------------------------- */

/* A new connection; the detail names the database without a password. */
static void drop_notice(void *ud, const char *msg) {
    (void)ud;
    (void)msg;
}

static int conn_open(pg_storage *ps, PGconn **out) {
    /* Defaults first: what the URI says wins. A server that stops
     * answering (a host gone, a partition) is given up on within about a
     * minute instead of TCP's hours, so no request waits on it for ever. */
    const char *const keys[] = {"application_name", "connect_timeout", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                "dbname", NULL};
    const char *const vals[] = {"cortex-core", "10", "30", "10", "3", "60000", ps->uri, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c)
        return cx_error_set(CX_ENOMEM, "connecting to %s: out of memory", ps->label);
    if (PQstatus(c) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c);
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            n--;
        int r = cx_error_set(CX_EIO, "cannot connect to %s: %.*s", ps->label, (int)n, msg);
        PQfinish(c);
        return r;
    }
    /* Timestamps and text as the code reads them, whatever the server's
     * defaults; UTF-8 like everything the core stores. */
    /* A node cut off mid-transaction (its host gone, a partition) must not
     * hold a team's lock for ever: the server ends such a session. */
    /* The server's notices (a text-search query of stop words only, "…
     * already exists, skipping") are not errors: libpq would print them on
     * stderr, outside the core's log lines. */
    PQsetNoticeProcessor(c, drop_notice, NULL);
    PGresult *res = PQexec(c, "SET client_encoding = 'UTF8'; SET bytea_output = 'hex';"
                              " SET standard_conforming_strings = on;"
                              " SET idle_in_transaction_session_timeout = '60s'");
    int r = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = pgerr(NULL, res, "setting up a connection");
    PQclear(res);
    if (r) {
        PQfinish(c);
        return r;
    }
    *out = c;
    return 0;
}

static void conn_free(pg_conn *pc) {
    if (!pc)
        return;
    PQfinish(pc->c);
    batch_clear(pc->wb);
    free(pc->wb);
    free(pc);
}

/* Reads what a read transaction's deferred end left on the connection
 * (the ROLLBACK's result, then the sync's) and leaves pipeline mode. By
 * the time the connection is taken again the answer has mostly arrived,
 * so this rarely waits. False when the connection is not fit for use. */
static bool end_read(pg_conn *pc) {
    pc->ending = false;
    PGresult *res = PQgetResult(pc->c);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    while (res && (res = PQgetResult(pc->c)) != NULL) /* up to the NULL after it */
        PQclear(res);
    res = PQgetResult(pc->c);
    ok = ok && res && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    return ok && PQexitPipelineMode(pc->c) && PQtransactionStatus(pc->c) == PQTRANS_IDLE;
}

/* Takes a free connection, or opens one while under the bound, or waits
 * for one (POOL_WAIT_MS at most). */
static int pool_take(pg_storage *ps, pg_conn **out) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += POOL_WAIT_MS / 1000;
    deadline.tv_nsec += (long)(POOL_WAIT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ps->mu);
    while (!ps->idle && ps->open >= ps->max) {
        if (pthread_cond_timedwait(&ps->cv, &ps->mu, &deadline) == ETIMEDOUT &&
            !ps->idle && ps->open >= ps->max) {
            pthread_mutex_unlock(&ps->mu);
            return cx_error_set(CX_EBUSY,
                                "no free connection to %s in %d s (all %d in use; raise the pool)",
                                ps->label, POOL_WAIT_MS / 1000, ps->max);
        }
    }
    pg_conn *pc = ps->idle;
    if (pc) {
        ps->idle = pc->next;
        pthread_mutex_unlock(&ps->mu);
        pc->next = NULL;
        if (pc->ending && !end_read(pc)) {
            /* its read transaction did not end cleanly: a new session */
            PQfinish(pc->c);
            pc->c = NULL;
            pc->prepared = 0;
            int r = conn_open(ps, &pc->c);
            if (r) {
                conn_free(pc);
                pthread_mutex_lock(&ps->mu);
                ps->open--;
                pthread_cond_signal(&ps->cv);
                pthread_mutex_unlock(&ps->mu);
                return r;
            }
        }
        *out = pc;
        return 0;
    }
    ps->open++; /* a place for the one we open, outside the lock */
    pthread_mutex_unlock(&ps->mu);
    int r = 0;
    pc = calloc(1, sizeof *pc);
    if (!pc)
        r = CX_ENOMEM;
    else
        r = conn_open(ps, &pc->c);
    if (r) {
        free(pc);
        pthread_mutex_lock(&ps->mu);
        ps->open--;
        pthread_cond_signal(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
        return r;
    }
    pc->tx.st = &ps->base;
    *out = pc;
    return 0;
}

/* Gives a connection back: to the idle list when it is sound and out of
 * any transaction, else closed. */
static void pool_give(pg_storage *ps, pg_conn *pc) {
    pf_clear(&pc->pf_ops);
    pf_clear(&pc->pf_items);
    batch_clear(pc->wb); /* held writes of a transaction that did not commit */
    bool sound = PQstatus(pc->c) == CONNECTION_OK &&
                 (pc->ending || (PQtransactionStatus(pc->c) == PQTRANS_IDLE &&
                                 PQpipelineStatus(pc->c) == PQ_PIPELINE_OFF));
    bool dead = PQstatus(pc->c) != CONNECTION_OK;
    pg_conn *stale = NULL;
    pthread_mutex_lock(&ps->mu);
    bool keep = sound && ps->open <= ps->max;
    if (keep) {
        pc->failed = 0;
        pc->next = ps->idle;
        ps->idle = pc;
    } else {
        ps->open--; /* broken, or above a bound lowered while it was out */
    }
    if (dead) {
        /* The server went away (a restart, a failover): the idle ones are
         * most likely gone too; new ones are opened as needed. */
        stale = ps->idle;
        ps->idle = NULL;
        for (pg_conn *i = stale; i; i = i->next)
            ps->open--;
    }
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    if (!keep)
        conn_free(pc);
    for (pg_conn *next; stale; stale = next) {
        next = stale->next;
        conn_free(stale);
    }
}

static int exec_simple(pg_conn *pc, const char *sql, const char *what) {
    PGresult *res = PQexec(pc->c, sql);
    int r = 0;
    ExecStatusType es = PQresultStatus(res);
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
        r = pgerr(pc, res, what);
    PQclear(res);
    return r;
}

/* --- open, migrations ------------------------------------------------------ */

/* postgresql://user@host:port/dbname from the URI's parts (never the
 * password); NULL when it does not parse (*err says why, the caller's). */
static char *uri_label(const char *uri, bool *has_password, char **err) {
    PQconninfoOption *opts = PQconninfoParse(uri, err);
    if (!opts)
        return NULL;
    const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;
    *has_password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "user"))
            user = o->val;
        else if (!strcmp(o->keyword, "host") || (!host && !strcmp(o->keyword, "hostaddr")))
            host = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
        else if (!strcmp(o->keyword, "dbname"))
            db = o->val;
        else if (!strcmp(o->keyword, "password"))
            *has_password = true;
    }
    size_t cap = 64 + (user ? strlen(user) : 0) + (host ? strlen(host) : 0) +
                 (port ? strlen(port) : 0) + (db ? strlen(db) : 0);
    char *label = malloc(cap);
    if (label)
        snprintf(label, cap, "postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
                 host ? host : "", port ? ":" : "", port ? port : "", db ? db : "");
    PQconninfoFree(opts);
    return label;
}

/* Brings the schema to SCHEMA_VERSION in one transaction under the
 * migration lock; without create, a database with no schema is
 * CX_ENOTFOUND. Read-only handles only check the version. */
static int migrate(pg_storage *ps, pg_conn *pc, int flags) {
    bool write = !(flags & CX_STORAGE_READONLY);
    int r = exec_simple(pc, write ? "BEGIN" : "BEGIN READ ONLY", "starting the migration");
    if (r)
        return r;
    if (write && (r = exec_simple(pc, "SELECT pg_advisory_xact_lock(x'" ADVISORY_KEY
                                      "'::bigint)", "taking the migration lock")))
        goto out;
    PGresult *res = PQexec(pc->c, "SELECT to_regclass('meta') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = pgerr(pc, res, "reading the schema");
        PQclear(res);
        goto out;
    }
    bool has_meta = col_bool(res, 0, 0);
    PQclear(res);
    int version = 0;
    if (has_meta) {
        res = PQexec(pc->c, "SELECT v FROM meta WHERE k = 'schema_version'");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            r = pgerr(pc, res, "reading the schema version");
            PQclear(res);
            goto out;
        }
        version = PQntuples(res) ? (int)col_int(res, 0, 0) : 0;
        PQclear(res);
    }
    if (!has_meta && !(flags & CX_STORAGE_CREATE)) {
        r = cx_error_set(CX_ENOTFOUND, "no cortex-core data in %s (run cortex-core init first)",
                         ps->label);
        goto out;
    }
    if (version > SCHEMA_VERSION) {
        r = cx_error_set(CX_EINVAL,
                         "%s has schema version %d, newer than this cortex-core knows (%d): "
                         "run a newer cortex-core",
                         ps->label, version, SCHEMA_VERSION);
        goto out;
    }
    if (version < SCHEMA_VERSION && !write) {
        r = cx_error_set(CX_EINVAL,
                         "%s has schema version %d; open it for writing once to migrate it to %d",
                         ps->label, version, SCHEMA_VERSION);
        goto out;
    }
    if (!has_meta &&
        (r = exec_simple(pc, "CREATE TABLE meta(k text PRIMARY KEY, v text NOT NULL)",
                         "creating the schema")))
        goto out;
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", v + 1);
        if ((r = exec_simple(pc, MIGRATIONS[v], what)))
            goto out;
    }
    if (version < SCHEMA_VERSION) {
        char text[16];
        snprintf(text, sizeof text, "%d", SCHEMA_VERSION);
        const char *vals[1] = {text};
        res = PQexecParams(pc->c,
                           "INSERT INTO meta(k, v) VALUES ('schema_version', $1)"
                           " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                           1, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            r = pgerr(pc, res, "recording the schema version");
        PQclear(res);
    }
out:
    if (r == 0)
        r = exec_simple(pc, "COMMIT", "committing the migration");
    else
        PQclear(PQexec(pc->c, "ROLLBACK"));
    return r;
}

static void pg_free(cx_storage *st) {
    pg_storage *ps = pgs(st);
    if (!ps)
        return;
    for (pg_conn *pc = ps->idle, *next; pc; pc = next) {
        next = pc->next;
        conn_free(pc);
    }
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
    free(ps->uri);
    free(ps->label);
    free(ps);
}

static int pg_open(cx_storage **out, const char *target, int flags) {
    bool has_password = false;
    char *err = NULL;
    char *label = uri_label(target, &has_password, &err);
    if (!label) {
        int r = cx_error_set(CX_EINVAL, "not a PostgreSQL URI: %s", err ? err : "out of memory");
        PQfreemem(err);
        return r;
    }
    if (has_password) {
        int r = cx_error_set(CX_EINVAL,
                             "%s: the URI holds a password; give it in PGPASSFILE (or ~/.pgpass) "
                             "instead, never on a command line",
                             label);
        free(label);
        return r;
    }
    pg_storage *ps = calloc(1, sizeof *ps);
    if (!ps) {
        free(label);
        return CX_ENOMEM;
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
    ps->label = label;
    ps->base.be = &cx_storage_pg_backend;
    ps->base.flags = flags;
    ps->max = CX_STORAGE_POOL_DEFAULT;
    ps->base.pool_size = ps->max;
    int r = 0;
    pg_conn *pc = NULL;
    if (!(ps->uri = strdup(target))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = pool_take(ps, &pc)))
        goto out;
    r = migrate(ps, pc, flags);
    pool_give(ps, pc);
out:
    if (r) {
        pg_free(&ps->base);
        return r;
    }
    *out = &ps->base;
    return 0;
}

static int pg_set_pool(cx_storage *st, int n) {
    pg_storage *ps = pgs(st);
    if (n < 1 || n > POOL_MAX)
        return cx_error_set(CX_EINVAL, "pool size %d: give 1 to %d", n, POOL_MAX);
    pthread_mutex_lock(&ps->mu);
    ps->max = n;
    st->pool_size = n;
    /* Idle connections above the new bound go now; busy ones on return. */
    while (ps->idle && ps->open > ps->max) {
        pg_conn *pc = ps->idle;
        ps->idle = pc->next;
        ps->open--;
        conn_free(pc);
    }
    pthread_cond_broadcast(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    return 0;
}

/* --- transactions ---------------------------------------------------------- */

/* Writes the seq this transaction is ahead with to the team's row. */
static int seq_flush(pg_conn *pc) {
    if (!pc->seq_dirty)
        return 0;
    params p = {0};
    p_text(&p, pc->seq_team);
    p_int(&p, pc->seq_val);
    pc->seq_dirty = false;
    return run_async(pc, S_SEQ_SET, &p, 1, CX_EIO, "advancing the sequence");
}

static void pg_rollback(cx_storage_tx *tx);

static int pg_begin(cx_storage *st, bool write, cx_storage_tx **tx) {
    pg_storage *ps = pgs(st);
    pg_conn *pc = NULL;
    int r = pool_take(ps, &pc);
    if (r)
        return r;
    pc->failed = 0;
    pc->nlocked = 0;
    pc->nq = 0;
    pc->miss_op[0] = '\0';
    pc->seq_team[0] = '\0';
    pc->seq_dirty = false;
    pf_clear(&pc->pf_ops);
    pf_clear(&pc->pf_items);
    batch_clear(pc->wb);
    pc->flushing = false;
    if (!PQenterPipelineMode(pc->c)) {
        r = lost(pc, "starting a transaction", false);
        pool_give(ps, pc);
        return r;
    }
    /* BEGIN goes out with the transaction's first statement. A connection
     * that died while idle fails there with CX_ERETRY (nothing was done),
     * and the pool drops the other idle ones. */
    if ((r = run_async(pc, write ? S_BEGIN_WRITE : S_BEGIN_READ, NULL, -1, CX_EIO,
                       "starting a transaction"))) {
        pg_rollback(&pc->tx);
        return r;
    }
    pc->tx.st = st;
    *tx = &pc->tx;
    return 0;
}

/* Ends the pipeline: reads whatever is left, leaves pipeline mode. */
static void pipe_end(pg_conn *pc) {
    if (PQpipelineStatus(pc->c) == PQ_PIPELINE_OFF)
        return;
    if (pc->nq && !conn_lost(pc) && PQpipelineSync(pc->c)) {
        int saved = pc->failed;
        pc->failed = saved ? saved : CX_EIO; /* nothing here is reported */
        (void)drain(pc);
        (void)take_sync(pc, "ending a transaction");
        pc->failed = saved;
    }
    pc->nq = 0;
    if (!conn_lost(pc))
        (void)PQexitPipelineMode(pc->c); /* fails if results are left: not reused */
}

static int pg_commit(cx_storage_tx *tx) {
    pg_conn *pc = pgc(tx);
    int r;
    if (!tx->write && !pc->failed && pc->nq == 0) {
        pg_rollback(tx); /* nothing to commit: the same end, without waiting */
        return 0;
    }
    if (pc->failed) {
        /* The caller committed past a failure: PostgreSQL has voided the
         * transaction; say why (CX_ERETRY stays CX_ERETRY). */
        r = cx_error_set(pc->failed, "commit: a statement of this transaction failed");
        pg_rollback(tx);
        return r;
    }
    if ((r = seq_flush(pc))) {
        pg_rollback(tx);
        return r;
    }
    PGresult *res = NULL;
    r = run(pc, S_COMMIT, NULL, 0, &res, "committing");
    if (r == 0 && strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        r = cx_error_set(CX_EIO, "committing: the server rolled the transaction back");
    PQclear(res);
    if (r) {
        pg_rollback(tx);
        return r;
    }
    pipe_end(pc);
    pool_give(pgs(tx->st), pc);
    return 0;
}

static void pg_rollback(cx_storage_tx *tx) {
    pg_conn *pc = pgc(tx);
    /* A read transaction that went well (nothing queued, nothing failed)
     * ends without waiting: its ROLLBACK and a sync are sent, and the
     * next taker of the connection reads their answers (end_read). A pull
     * waits one round trip less. */
    if (!tx->write && !pc->failed && pc->nq == 0 && !conn_lost(pc) &&
        PQpipelineStatus(pc->c) == PQ_PIPELINE_ON &&
        PQsendQueryParams(pc->c, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) &&
        PQpipelineSync(pc->c) && PQflush(pc->c) == 0) {
        pc->ending = true;
        pool_give(pgs(tx->st), pc);
        return;
    }
    pipe_end(pc);
    if (!conn_lost(pc) && PQpipelineStatus(pc->c) == PQ_PIPELINE_OFF &&
        PQtransactionStatus(pc->c) != PQTRANS_IDLE)
        PQclear(PQexec(pc->c, "ROLLBACK"));
    pool_give(pgs(tx->st), pc);
}

static int pg_health(cx_storage *st, cx_storage_health_info *out) {
    pg_storage *ps = pgs(st);
    memset(out, 0, sizeof *out);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pg_conn *pc = NULL;
    int r = pool_take(ps, &pc);
    if (r) {
        snprintf(out->detail, sizeof out->detail, "%s", cx_error_last());
        return 0;
    }
    PGresult *res = PQexec(pc->c, "SELECT current_setting('server_version')");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->latency_us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        out->ok = true;
        snprintf(out->detail, sizeof out->detail, "postgresql %s, %s", PQgetvalue(res, 0, 0),
                 ps->label);
    } else {
        pgerr(pc, res, "health check");
        snprintf(out->detail, sizeof out->detail, "%s", cx_error_last());
    }
    PQclear(res);
    pool_give(ps, pc);
    return 0;
}

/* ANALYZE on a connection of the pool, outside any transaction. */
static int pg_analyze(cx_storage *st) {
    pg_storage *ps = pgs(st);
    pg_conn *pc = NULL;
    int r = pool_take(ps, &pc);
    if (r)
        return r;
    PGresult *res = PQexec(pc->c, "ANALYZE");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = pgerr(pc, res, "refreshing the planner's statistics");
    PQclear(res);
    pool_give(ps, pc);
    return r;
}

static int pg_backup(cx_storage *st, const char *dest) {
    (void)dest;
    return cx_error_set(CX_EINVAL,
                        "%s is PostgreSQL: back it up with pg_dump (and restore with pg_restore), "
                        "see cortex-core(8)",
                        pgs(st)->label);
}

/* In a write transaction, takes the team's row lock once (creating the
 * row when the team is new); reads take no lock. */
static int team_lock(cx_storage_tx *tx, const char *team) {
    pg_conn *pc = pgc(tx);
    if (!tx->write)
        return 0;
    for (int i = 0; i < pc->nlocked; i++)
        if (!strcmp(pc->locked[i], team))
            return 0;
    params p = {0};
    p_text(&p, team);
    /* Sent ahead of the statement that needs it: the server runs them in
     * order, so the lock is held before that statement reads. */
    int r = run_async(pc, S_TEAM_LOCK, &p, 1, CX_EIO, "locking the team");
    if (r == 0 && pc->nlocked < 4)
        snprintf(pc->locked[pc->nlocked++], sizeof pc->locked[0], "%s", team);
    return r;
}

/* --- keys -------------------------------------------------------------------- */

static int pg_key_put(cx_storage_tx *tx, const cx_storage_key *k) {
    params p = {0};
    p_text(&p, k->key_id);
    p_text(&p, k->team);
    p_text(&p, k->role);
    p_text(&p, k->name);
    p_bin(&p, k->hash, sizeof k->hash);
    p_int(&p, k->created_ms);
    p_int(&p, k->revoked_ms);
    int64_t rows = 0;
    int r = run_cmd(pgc(tx), S_KEY_PUT, &p, &rows, "storing a key");
    if (r == 0 && rows != 1)
        r = cx_error_set(CX_ECONFLICT, "key %s exists already", k->key_id);
    return r;
}

static void read_key(const PGresult *res, int row, cx_storage_key *k) {
    memset(k, 0, sizeof *k);
    col_copy(k->key_id, sizeof k->key_id, res, row, 0);
    col_copy(k->team, sizeof k->team, res, row, 1);
    col_copy(k->role, sizeof k->role, res, row, 2);
    col_copy(k->name, sizeof k->name, res, row, 3);
    col_bytes(k->hash, sizeof k->hash, res, row, 4);
    k->created_ms = col_int(res, row, 5);
    k->revoked_ms = col_int(res, row, 6);
}

static int pg_key_get(cx_storage_tx *tx, const char *key_id, cx_storage_key *out) {
    params p = {0};
    p_text(&p, key_id);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_KEY_GET, &p, 0, &res, "reading a key");
    if (r)
        return r;
    if (PQntuples(res) == 1)
        read_key(res, 0, out);
    else
        r = cx_error_set(CX_ENOTFOUND, "no key %s", key_id);
    PQclear(res);
    return r;
}

static int pg_key_list(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_key *k),
                       void *ud) {
    PGresult *res = NULL;
    int r = run(pgc(tx), S_KEY_LIST, NULL, 0, &res, "listing keys");
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        cx_storage_key k;
        read_key(res, i, &k);
        r = fn(ud, &k);
    }
    PQclear(res);
    return r;
}

static int pg_key_revoke(cx_storage_tx *tx, const char *key_id, int64_t now_ms) {
    cx_storage_key k;
    int r = pg_key_get(tx, key_id, &k);
    if (r)
        return r;
    if (k.revoked_ms)
        return cx_error_set(CX_ECONFLICT, "key %s is already revoked", key_id);
    params p = {0};
    p_text(&p, key_id);
    p_int(&p, now_ms > 0 ? now_ms : 1);
    return run_cmd(pgc(tx), S_KEY_REVOKE, &p, NULL, "revoking a key");
}

/* --- sessions --------------------------------------------------------------- */

static int pg_session_put(cx_storage_tx *tx, const cx_storage_session *ss) {
    params p = {0};
    p_text(&p, ss->token_hash);
    p_text(&p, ss->key_id);
    p_text(&p, ss->team);
    p_text(&p, ss->csrf);
    p_int(&p, ss->created_ms);
    p_int(&p, ss->expires_ms);
    p_int(&p, ss->ended_ms);
    return run_cmd(pgc(tx), S_SESSION_PUT, &p, NULL, "storing a session");
}

static int pg_session_get(cx_storage_tx *tx, const char *token_hash, cx_storage_session *out) {
    params p = {0};
    p_text(&p, token_hash);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_SESSION_GET, &p, 0, &res, "reading a session");
    if (r)
        return r;
    if (PQntuples(res) == 1) {
        memset(out, 0, sizeof *out);
        col_copy(out->token_hash, sizeof out->token_hash, res, 0, 0);
        col_copy(out->key_id, sizeof out->key_id, res, 0, 1);
        col_copy(out->team, sizeof out->team, res, 0, 2);
        col_copy(out->csrf, sizeof out->csrf, res, 0, 3);
        out->created_ms = col_int(res, 0, 4);
        out->expires_ms = col_int(res, 0, 5);
        out->ended_ms = col_int(res, 0, 6);
    } else {
        r = cx_error_set(CX_ENOTFOUND, "no such session");
    }
    PQclear(res);
    return r;
}

static int pg_session_end(cx_storage_tx *tx, const char *token_hash, int64_t now_ms) {
    params p = {0};
    p_text(&p, token_hash);
    p_int(&p, now_ms > 0 ? now_ms : 1);
    int64_t rows = 0;
    int r = run_cmd(pgc(tx), S_SESSION_END, &p, &rows, "ending a session");
    return r ? r : rows ? 0 : cx_error_set(CX_ENOTFOUND, "no such session");
}

static int pg_session_end_key(cx_storage_tx *tx, const char *key_id, int64_t now_ms,
                              int64_t *ended) {
    params p = {0};
    p_text(&p, key_id);
    p_int(&p, now_ms > 0 ? now_ms : 1);
    return run_cmd(pgc(tx), S_SESSION_END_KEY, &p, ended, "ending a key's sessions");
}

static int pg_session_purge(cx_storage_tx *tx, int64_t before_ms, int limit, int64_t *deleted) {
    params p = {0};
    p_int(&p, before_ms);
    p_int(&p, limit);
    return run_cmd(pgc(tx), S_SESSION_PURGE, &p, deleted, "deleting old sessions");
}

/* --- seqs ------------------------------------------------------------------ */

/* One int64 from the first row of statement s over the team (*v = dflt
 * when there is no row). */
static int team_int(cx_storage_tx *tx, int s, const char *team, int64_t dflt, int64_t *v,
                    const char *what) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    params p = {0};
    p_text(&p, team);
    PGresult *res = NULL;
    int r = run(pgc(tx), s, &p, 0, &res, what);
    if (r)
        return r;
    *v = PQntuples(res) ? col_int(res, 0, 0) : dflt;
    PQclear(res);
    return 0;
}

static int pg_seq_next(cx_storage_tx *tx, const char *team, int64_t *seq) {
    pg_conn *pc = pgc(tx);
    int64_t v = 0;
    int r;
    if (pc->seq_team[0] && !strcmp(pc->seq_team, team)) {
        /* The row is this transaction's: the next seq is known, and the
         * row is written once, before COMMIT (seq_flush). */
        *seq = ++pc->seq_val;
        pc->seq_dirty = true;
        return 0;
    }
    if ((r = seq_flush(pc))) /* another team's, before this one's */
        return r;
    pc->seq_team[0] = '\0';
    r = team_int(tx, S_SEQ_NEXT, team, 0, &v, "advancing the sequence");
    if (r == 0 && v < 1)
        r = cx_error_set(CX_EIO, "advancing the sequence of team %s: no seq returned", team);
    if (r)
        return r;
    if (strlen(team) < sizeof pc->seq_team) {
        snprintf(pc->seq_team, sizeof pc->seq_team, "%s", team);
        pc->seq_val = v;
    }
    *seq = v;
    return 0;
}

static int pg_seq_last(cx_storage_tx *tx, const char *team, int64_t *seq) {
    pg_conn *pc = pgc(tx);
    if (pc->seq_team[0] && !strcmp(pc->seq_team, team)) {
        *seq = pc->seq_val; /* this transaction is ahead of the row */
        return 0;
    }
    return team_int(tx, S_SEQ_LAST, team, 0, seq, "reading the sequence");
}
static int pg_horizon(cx_storage_tx *tx, const char *team, int64_t *horizon) {
    return team_int(tx, S_HORIZON, team, 0, horizon, "reading the horizon");
}

/* --- ops --------------------------------------------------------------------- */

static int pg_op_get(cx_storage_tx *tx, const char *team, const char *op_id, uint8_t digest[32],
                     int64_t *seq) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    pg_conn *pc = pgc(tx);
    long i = pf_find(&pc->pf_ops, team, op_id);
    if (i >= 0 && pc->pf_ops.row[i] >= 0) {
        col_bytes(digest, 32, pc->pf_ops.res, pc->pf_ops.row[i], 1);
        *seq = col_int(pc->pf_ops.res, pc->pf_ops.row[i], 2);
        return 0;
    }
    if (i >= 0) { /* read, and not there: as below */
        if (strlen(op_id) < sizeof pc->miss_op) {
            snprintf(pc->miss_team, sizeof pc->miss_team, "%s", team);
            snprintf(pc->miss_op, sizeof pc->miss_op, "%s", op_id);
        }
        return CX_ENOTFOUND;
    }
    params p = {0};
    p_text(&p, team);
    p_text(&p, op_id);
    PGresult *res = NULL;
    int r = run(pc, S_OP_GET, &p, 0, &res, "reading an op");
    if (r)
        return r;
    if (PQntuples(res) == 1) {
        col_bytes(digest, 32, res, 0, 0);
        *seq = col_int(res, 0, 1);
    } else {
        r = CX_ENOTFOUND;
        /* Unseen under the team's lock: no one else can record it before
         * this transaction ends. */
        if (tx->write && strlen(op_id) < sizeof pc->miss_op) {
            snprintf(pc->miss_team, sizeof pc->miss_team, "%s", team);
            snprintf(pc->miss_op, sizeof pc->miss_op, "%s", op_id);
        }
    }
    PQclear(res);
    return r;
}

/* Holds an op record that cannot conflict, to go with the transaction's
 * others as one statement (p: the single-row statement's parameters, for
 * when it cannot be held). */
static int hold_op(pg_conn *pc, const char *team, const char *op_id, const uint8_t digest[32],
                   int64_t seq, const params *p) {
    batch *wb = batch_get(pc);
    if (!wb || strlen(team) > CX_TEAM_MAX)
        return run_async(pc, S_OP_PUT, p, 1, CX_ERETRY, "recording an op");
    if (wb->nops && (strcmp(wb->ops_team, team) != 0 || wb->nops == BATCH_MAX)) {
        int r = flush_writes(pc);
        if (r)
            return r;
    }
    batched_op *o = &wb->op[wb->nops];
    if (!(o->op_id = strdup(op_id)))
        return pc->failed = cx_error_set(CX_ENOMEM, "recording op %s: out of memory", op_id);
    memcpy(o->digest, digest, 32);
    o->seq = seq;
    wb->nops++;
    snprintf(wb->ops_team, sizeof wb->ops_team, "%s", team);
    return 0;
}

static int pg_op_put(cx_storage_tx *tx, const char *team, const char *op_id,
                     const uint8_t digest[32], int64_t seq) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    params p = {0};
    p_text(&p, team);
    p_text(&p, op_id);
    p_bin(&p, digest, 32);
    p_int(&p, seq);
    pg_conn *pc = pgc(tx);
    pf_stale(&pc->pf_ops, team, op_id);
    if (pc->miss_op[0] && !strcmp(pc->miss_op, op_id) && !strcmp(pc->miss_team, team)) {
        /* op_get just found it missing under the lock: it goes in without
         * waiting (a count other than 1 still fails the transaction). */
        pc->miss_op[0] = '\0';
        return hold_op(pc, team, op_id, digest, seq, &p);
    }
    int64_t rows = 0;
    int r = run_cmd(pc, S_OP_PUT, &p, &rows, "recording an op");
    /* Not inserted: another transaction recorded this op id (committed
     * while this one ran, or before): run again and it is a duplicate. */
    if (r == 0 && rows != 1)
        r = cx_error_set(CX_ERETRY, "op %s of team %s was recorded by another transaction",
                         op_id, team);
    return r;
}

/* --- items ------------------------------------------------------------------- */

/* An item's json, seq and deleted from columns c, c + 1, c + 2 of a row. */
static int item_from(const PGresult *res, int row, int c, const char *id, char **json,
                     int64_t *seq, bool *deleted) {
    char *copy = strdup(PQgetisnull(res, row, c) ? "null" : PQgetvalue(res, row, c));
    if (!copy)
        return cx_error_set(CX_ENOMEM, "reading item %s", id);
    *json = copy;
    *seq = col_int(res, row, c + 1);
    *deleted = col_bool(res, row, c + 2);
    return 0;
}

static int pg_item_get(cx_storage_tx *tx, const char *team, const char *id, char **json,
                       int64_t *seq, bool *deleted) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    /* prefetched: the row's columns are id, json, seq, deleted */
    const prefetched *f = &pgc(tx)->pf_items;
    long i = pf_find(f, team, id);
    if (i >= 0)
        return f->row[i] >= 0 ? item_from(f->res, f->row[i], 1, id, json, seq, deleted)
                              : cx_error_set(CX_ENOTFOUND, "no item %s", id);
    params p = {0};
    p_text(&p, team);
    p_text(&p, id);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_ITEM_GET, &p, 0, &res, "reading an item");
    if (r)
        return r;
    r = PQntuples(res) == 1 ? item_from(res, 0, 0, id, json, seq, deleted)
                            : cx_error_set(CX_ENOTFOUND, "no item %s", id);
    PQclear(res);
    return r;
}

static int pg_item_put(cx_storage_tx *tx, const char *team, const char *id, const char *kind,
                       const char *status, int64_t seq, bool deleted, const char *json) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    params p = {0};
    p_text(&p, team);
    p_text(&p, id);
    p_text(&p, kind);
    p_text(&p, status);
    p_int(&p, seq);
    p_bool(&p, deleted);
    p_text(&p, deleted ? NULL : json);
    pg_conn *pc = pgc(tx);
    pf_stale(&pc->pf_items, team, id);
    /* An upsert under the team's lock: only a failure matters, and that is
     * reported by the next call or the commit. Held, to go with the
     * transaction's other item writes as one statement. */
    batch *wb = batch_get(pc);
    if (!wb || strlen(team) > CX_TEAM_MAX)
        return run_async(pc, S_ITEM_PUT, &p, -1, CX_EIO, "writing an item");
    if (wb->nitems && (strcmp(wb->items_team, team) != 0 || wb->nitems == BATCH_MAX)) {
        int r = flush_writes(pc);
        if (r)
            return r;
    }
    batched_item *it = NULL;
    for (int i = 0; i < wb->nitems && !it; i++)
        if (strcmp(wb->item[i].id, id) == 0)
            it = &wb->item[i]; /* written again: the later write wins */
    bool fresh = !it;
    if (fresh)
        it = &wb->item[wb->nitems];
    else {
        free(it->kind);
        free(it->status);
        free(it->json);
    }
    *it = (batched_item){.id = fresh ? strdup(id) : it->id, .kind = strdup(kind),
                         .status = strdup(status), .json = deleted || !json ? NULL : strdup(json),
                         .seq = seq, .deleted = deleted};
    if (fresh)
        wb->nitems++;
    if (!it->id || !it->kind || !it->status || (!deleted && json && !it->json))
        return pc->failed = cx_error_set(CX_ENOMEM, "writing item %s: out of memory", id);
    snprintf(wb->items_team, sizeof wb->items_team, "%s", team);
    return 0;
}

static int pg_changes(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                      int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                      void *ud) {
    params p = {0};
    p_text(&p, team);
    p_int(&p, since);
    p_int(&p, limit < 0 ? 0 : limit);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_CHANGES, &p, 0, &res, "reading changes");
    for (int i = 0; r == 0 && i < PQntuples(res); i++)
        r = fn(ud, col_int(res, i, 0), PQgetvalue(res, i, 1),
               col_bool(res, i, 2) || PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3));
    PQclear(res);
    return r;
}

static int pg_pull(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                   int64_t *horizon,
                   int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                   void *ud) {
    params p = {0};
    p_text(&p, team);
    p_int(&p, since);
    p_int(&p, limit < 0 ? 0 : limit);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_PULL, &p, 0, &res, "reading changes");
    if (r)
        return r;
    *horizon = PQntuples(res) ? col_int(res, 0, 0) : 0;
    for (int i = 0; r == 0 && i < PQntuples(res); i++)
        if (!PQgetisnull(res, i, 1))
            r = fn(ud, col_int(res, i, 1), PQgetvalue(res, i, 2),
                   col_bool(res, i, 3) || PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4));
    PQclear(res);
    return r;
}

static int pg_compact(cx_storage_tx *tx, const char *team, int64_t before, int64_t *dropped) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    pf_clear(&pgc(tx)->pf_items); /* tombstones go */
    params p = {0};
    p_text(&p, team);
    p_int(&p, before);
    int r = run_cmd(pgc(tx), S_COMPACT_DROP, &p, dropped, "dropping tombstones");
    if (r == 0)
        r = run_cmd(pgc(tx), S_COMPACT_HORIZON, &p, NULL, "recording the tombstone horizon");
    return r;
}

/* The draft kind and the two statuses that await review, from the one
 * model, as parameters. */
static void awaiting(params *p) {
    int n = 0;
    p_text(p, cx_kind_name(CX_KIND_DRAFT));
    for (int i = 0; i < CX_STATUS_COUNT; i++)
        if (cx_awaits_review(CX_KIND_DRAFT, (cx_status)i)) {
            p_text(p, cx_status_name((cx_status)i));
            n++;
        }
    assert(n == 2); /* AWAITING names two statuses */
}

static int pg_queue(cx_storage_tx *tx, const char *team, int limit,
                    int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    params p = {0};
    p_text(&p, team);
    awaiting(&p);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_QUEUE_COUNT, &p, 0, &res, "counting the queue");
    if (r)
        return r;
    *total = col_int(res, 0, 0);
    PQclear(res);
    p_int(&p, limit < 0 ? 0 : limit);
    res = NULL;
    r = run(pgc(tx), S_QUEUE, &p, 0, &res, "reading the queue");
    for (int i = 0; r == 0 && i < PQntuples(res); i++)
        r = fn(ud, PQgetvalue(res, i, 0));
    PQclear(res);
    return r;
}

static int pg_queue_depth(cx_storage_tx *tx, int64_t *depth) {
    params p = {0};
    awaiting(&p);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_QUEUE_DEPTH, &p, 0, &res, "counting the queue");
    if (r)
        return r;
    *depth = col_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* --- blobs ----------------------------------------------------------------- */

static int pg_blob_has(cx_storage_tx *tx, const char *team, const char *sha, bool *has) {
    params p = {0};
    p_text(&p, team);
    p_text(&p, sha);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_BLOB_HAS, &p, 0, &res, "looking up a blob");
    if (r)
        return r;
    *has = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int pg_blob_put(cx_storage_tx *tx, const char *team, const char *sha, const void *data,
                       size_t len, bool *created) {
    if (len > INT32_MAX)
        return cx_error_set(CX_ELIMIT, "blob %s: %zu bytes is too large to store", sha, len);
    params p = {0};
    p_text(&p, team);
    p_text(&p, sha);
    p_int(&p, (int64_t)len);
    int64_t rows = 0;
    int r = run_cmd(pgc(tx), S_BLOB_PUT, &p, &rows, "storing a blob");
    if (r == 0)
        *created = rows == 1; /* content-addressed: one already there is the same */
    /* The bytes in chunks, each sent and answered before the next, so that
     * libpq's send buffer holds one chunk, never the whole blob again. */
    const uint8_t *b = data;
    for (size_t off = 0, n = 0; r == 0 && *created && off < len; off += BLOB_SLICE, n++) {
        size_t k = len - off < BLOB_SLICE ? len - off : BLOB_SLICE;
        params q = {0};
        p_text(&q, team);
        p_text(&q, sha);
        p_int(&q, (int64_t)n);
        p_bin(&q, b + off, k);
        r = run_cmd(pgc(tx), S_BLOB_CHUNK_PUT, &q, NULL, "storing a blob");
    }
    return r;
}

static int pg_blob_get(cx_storage_tx *tx, const char *team, const char *sha, void **data,
                       size_t *len) {
    params p = {0};
    p_text(&p, team);
    p_text(&p, sha);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_BLOB_SIZE, &p, 0, &res, "reading a blob");
    if (r)
        return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cx_error_set(CX_ENOTFOUND, "no blob %s", sha);
    }
    int64_t size = col_int(res, 0, 0);
    bool chunked = PQgetvalue(res, 0, 1)[0] == 't'; /* else in blobs.data (version 1) */
    PQclear(res);
    if (size < 0 || size > INT32_MAX)
        return cx_error_set(CX_EIO, "blob %s: stored size %lld is wrong", sha, (long long)size);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf)
        return CX_ENOMEM;
    /* In slices, so that the whole blob is held once (in buf), not also in
     * a result; the transaction's snapshot keeps the slices consistent. */
    int64_t off = 0;
    while (r == 0 && off < size) {
        int64_t want = size - off < (int64_t)BLOB_SLICE ? size - off : (int64_t)BLOB_SLICE;
        params q = {0};
        p_text(&q, team);
        p_text(&q, sha);
        if (chunked) {
            p_int(&q, off / (int64_t)BLOB_SLICE);
        } else {
            p_int(&q, off + 1); /* substring counts from 1 */
            p_int(&q, want);
        }
        res = NULL;
        r = run(pgc(tx), chunked ? S_BLOB_CHUNK : S_BLOB_SLICE, &q, 1, &res, "reading a blob");
        if (r)
            break;
        if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != want) {
            r = cx_error_set(CX_EIO, "blob %s changed while it was read", sha);
        } else {
            memcpy(buf + off, PQgetvalue(res, 0, 0), (size_t)want);
            off += want;
        }
        PQclear(res);
    }
    if (r) {
        free(buf);
        return r;
    }
    *data = buf;
    *len = (size_t)size;
    return 0;
}

static int pg_blob_drop_unused(cx_storage_tx *tx, const char *team, const char *sha,
                               bool *deleted) {
    int lr = team_lock(tx, team);
    if (lr)
        return lr;
    params p = {0};
    p_text(&p, team);
    p_text(&p, sha);
    int64_t rows = 0;
    int r = run_cmd(pgc(tx), S_BLOB_DROP, &p, &rows, "dropping a blob");
    if (r == 0)
        *deleted = rows > 0;
    return r;
}

/* --- prefetch ------------------------------------------------------------------- */

/* Reads, with statement s, the team's rows whose key is among ids[0..n)
 * (NULLs skipped) into f. The keys go as one text[] parameter. */
static int pf_prepare(prefetched *f, const char *const *ids, size_t n, char **out) {
    pf_clear(f);
    size_t cap = 3, idcap = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i]) {
            cap += 2 * strlen(ids[i]) + 3;
            idcap += strlen(ids[i]) + 1;
        }
    char *arr = malloc(cap);
    f->ids = malloc(n * sizeof *f->ids + idcap);
    f->row = malloc(n * sizeof *f->row);
    f->stale = calloc(n, sizeof *f->stale);
    if (!arr || !f->ids || !f->row || !f->stale) {
        free(arr);
        pf_clear(f);
        return CX_ENOMEM;
    }
    /* an array literal: each key quoted, " and \ escaped */
    char *o = arr, *block = (char *)(f->ids + n);
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        f->row[i] = -1;
        f->ids[i] = NULL;
        if (!ids[i])
            continue;
        if (o[-1] != '{')
            *o++ = ',';
        *o++ = '"';
        for (const char *c = ids[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
        size_t len = strlen(ids[i]) + 1;
        memcpy(block, ids[i], len);
        f->ids[i] = block;
        block += len;
    }
    *o++ = '}';
    *o = '\0';
    *out = arr;
    return 0;
}

/* Takes res as what was read for the ids pf_prepare kept. */
static void pf_finish(prefetched *f, PGresult *res, const char *team, size_t n) {
    for (int j = 0; j < PQntuples(res); j++)
        for (size_t i = 0; i < n; i++)
            if (f->ids[i] && strcmp(f->ids[i], PQgetvalue(res, j, 0)) == 0)
                f->row[i] = j;
    f->res = res;
    f->n = n;
    snprintf(f->team, sizeof f->team, "%s", team);
}

static int pg_prefetch(cx_storage_tx *tx, const char *team, const char *const *op_ids,
                       const char *const *item_ids, size_t n) {
    pg_conn *pc = pgc(tx);
    if (!tx->write || n == 0 || strlen(team) > CX_TEAM_MAX)
        return 0; /* a hint: only a writer's loop is worth it */
    int r = team_lock(tx, team);
    if (r)
        return r;
    /* Three reads in one round trip: the ops, the items, and the team's
     * seq (its row is locked by the statement before them, so the seq is
     * this transaction's to advance without asking again). */
    char *ops_arr = NULL, *items_arr = NULL;
    if ((r = pf_prepare(&pc->pf_ops, op_ids, n, &ops_arr)) ||
        (r = pf_prepare(&pc->pf_items, item_ids, n, &items_arr))) {
        free(ops_arr);
        pf_clear(&pc->pf_ops);
        return r;
    }
    params po = {0}, pi = {0}, ps = {0};
    p_text(&po, team);
    p_text(&po, ops_arr);
    p_text(&pi, team);
    p_text(&pi, items_arr);
    p_text(&ps, team);
    const int stmt[3] = {S_OPS_MANY, S_ITEMS_MANY, S_SEQ_LAST};
    const params *prm[3] = {&po, &pi, &ps};
    PGresult *res[3] = {NULL, NULL, NULL};
    r = run_many(pc, 3, stmt, prm, res, "reading a push's ops and items");
    free(ops_arr);
    free(items_arr);
    if (r) {
        pf_clear(&pc->pf_ops);
        pf_clear(&pc->pf_items);
        return r;
    }
    pf_finish(&pc->pf_ops, res[0], team, n);
    pf_finish(&pc->pf_items, res[1], team, n);
    if (PQntuples(res[2]) == 1 && (!pc->seq_team[0] || !strcmp(pc->seq_team, team))) {
        int64_t v = col_int(res[2], 0, 0);
        if (!pc->seq_team[0] || v > pc->seq_val) {
            snprintf(pc->seq_team, sizeof pc->seq_team, "%s", team);
            pc->seq_val = v;
        }
    }
    PQclear(res[2]);
    return 0;
}

/* --- the audit log ----------------------------------------------------------- */

static int pg_audit_last(cx_storage_tx *tx, int64_t *n, char hash[65]) {
    PGresult *res = NULL;
    /* A writer holds the head until it ends, so that two writers on any
     * nodes append one after the other: one chain, no fork. */
    int r = run(pgc(tx), tx->write ? S_AUDIT_HEAD_LOCK : S_AUDIT_HEAD, NULL, 0, &res,
                "reading the audit log");
    if (r)
        return r;
    *n = 0;
    hash[0] = '\0';
    if (PQntuples(res) == 1) {
        *n = col_int(res, 0, 0);
        col_copy(hash, 65, res, 0, 1);
    }
    PQclear(res);
    return 0;
}

static int pg_audit_put(cx_storage_tx *tx, const cx_storage_audit *a) {
    params p = {0};
    p_int(&p, a->n);
    p_int(&p, a->ts_ms);
    p_text(&p, a->team);
    p_text(&p, a->actor);
    p_text(&p, a->action);
    p_text(&p, a->detail);
    p_text(&p, a->prev);
    p_text(&p, a->hash);
    int64_t rows = 0;
    int r = run_cmd(pgc(tx), S_AUDIT_PUT, &p, &rows, "appending to the audit log");
    if (r == 0 && rows != 1)
        return cx_error_set(CX_ERETRY, "audit entry %lld was appended by another transaction",
                            (long long)a->n);
    params h = {0};
    p_int(&h, a->n);
    p_text(&h, a->hash);
    if (r == 0)
        r = run_cmd(pgc(tx), S_AUDIT_HEAD_SET, &h, NULL, "moving the audit head");
    return r;
}


/* Row i of an audit statement's answer (n, ts_ms, team, actor, action,
 * detail, prev, hash), borrowing res's strings. */
static cx_storage_audit audit_row(const PGresult *res, int i) {
    return (cx_storage_audit){
        .n = col_int(res, i, 0),
        .ts_ms = col_int(res, i, 1),
        .team = PQgetvalue(res, i, 2),
        .actor = PQgetvalue(res, i, 3),
        .action = PQgetvalue(res, i, 4),
        .detail = PQgetvalue(res, i, 5),
        .prev = PQgetvalue(res, i, 6),
        .hash = PQgetvalue(res, i, 7),
    };
}
static int pg_audit_since(cx_storage_tx *tx, int64_t after,
                          int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    int r = 0;
    for (;;) {
        params p = {0};
        p_int(&p, after);
        p_int(&p, AUDIT_PAGE);
        PGresult *res = NULL;
        if ((r = run(pgc(tx), S_AUDIT_PAGE, &p, 0, &res, "reading the audit log")))
            return r;
        int rows = PQntuples(res);
        for (int i = 0; r == 0 && i < rows; i++) {
            cx_storage_audit a = audit_row(res, i);
            after = a.n;
            r = fn(ud, &a);
        }
        PQclear(res);
        if (r || rows < AUDIT_PAGE)
            return r;
    }
}

static int pg_audit_each(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_audit *a),
                         void *ud) {
    return pg_audit_since(tx, 0, fn, ud);
}

/* --- the review app's reads ---------------------------------------------- */

/* The trust order as three PostgreSQL array literals (kinds, statuses,
 * ranks), every status each kind may have, from the one model. */
typedef struct trust_arrays {
    char kinds[512], statuses[512], ranks[256];
} trust_arrays;

static void trust_fill(trust_arrays *t) {
    size_t nk = 0, ns = 0, nr = 0;
    nk += (size_t)snprintf(t->kinds, sizeof t->kinds, "{");
    ns += (size_t)snprintf(t->statuses, sizeof t->statuses, "{");
    nr += (size_t)snprintf(t->ranks, sizeof t->ranks, "{");
    bool first = true;
    for (int k = 0; k < CX_KIND_COUNT; k++)
        for (int st = 0; st < CX_STATUS_COUNT; st++) {
            if (!cx_status_allowed((cx_kind)k, (cx_status)st))
                continue;
            const char *sep = first ? "" : ",";
            first = false;
            nk += (size_t)snprintf(t->kinds + nk, sizeof t->kinds - nk, "%s%s", sep,
                                   cx_kind_name((cx_kind)k));
            ns += (size_t)snprintf(t->statuses + ns, sizeof t->statuses - ns, "%s%s", sep,
                                   cx_status_name((cx_status)st));
            nr += (size_t)snprintf(t->ranks + nr, sizeof t->ranks - nr, "%s%d", sep,
                                   (int)cx_trust_of((cx_kind)k, (cx_status)st));
            assert(nk < sizeof t->kinds && ns < sizeof t->statuses && nr < sizeof t->ranks);
        }
    snprintf(t->kinds + nk, sizeof t->kinds - nk, "}");
    snprintf(t->statuses + ns, sizeof t->statuses - ns, "}");
    snprintf(t->ranks + nr, sizeof t->ranks - nr, "}");
}

static int pg_search(cx_storage_tx *tx, const char *team, const cx_storage_query *q,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    params p = {0};
    trust_arrays t;
    bool text = q->text && *q->text;
    int s = S_SEARCH_ALL;
    if (text) {
        trust_fill(&t);
        p_text(&p, q->text);
        s = S_SEARCH;
    }
    p_text(&p, team);
    p_text(&p, q->kind);
    p_text(&p, q->status);
    p_text(&p, q->subcortex);
    p_int(&p, q->limit);
    if (text) {
        p_text(&p, t.kinds);
        p_text(&p, t.statuses);
        p_text(&p, t.ranks);
    }
    PGresult *res = NULL;
    int r = run(pgc(tx), s, &p, 0, &res, "searching");
    if (r)
        return r;
    int rows = PQntuples(res);
    *total = rows ? col_int(res, 0, 1) : 0;
    for (int i = 0; r == 0 && i < rows; i++)
        r = fn(ud, PQgetvalue(res, i, 0));
    PQclear(res);
    return r;
}

static int pg_items(cx_storage_tx *tx, const char *team, const char *kind, bool newest_first,
                    int limit, int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                    void *ud) {
    params p = {0};
    p_text(&p, team);
    p_text(&p, kind);
    p_int(&p, limit < 1 ? INT64_MAX : limit);
    PGresult *res = NULL;
    int r = run(pgc(tx), newest_first ? S_ITEMS_DESC : S_ITEMS_ASC, &p, 0, &res,
                "reading items");
    for (int i = 0; r == 0 && i < PQntuples(res); i++)
        r = fn(ud, col_int(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
    return r;
}

static int pg_audit_team(cx_storage_tx *tx, const char *team, int64_t before, const char *mention,
                         int limit, int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    params p = {0};
    p_text(&p, team);
    p_int(&p, before);
    p_text(&p, mention);
    p_int(&p, limit < 1 ? INT64_MAX : limit);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_AUDIT_TEAM, &p, 0, &res, "reading the audit log");
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        cx_storage_audit a = audit_row(res, i);
        r = fn(ud, &a);
    }
    PQclear(res);
    return r;
}

static int pg_sync_put(cx_storage_tx *tx, const char *team, const cx_storage_sync *y) {
    params p = {0};
    p_text(&p, team);
    p_text(&p, y->key_id);
    p_text(&p, y->workspace);
    p_text(&p, y->principal);
    p_int(&p, y->at_ms);
    p_int(&p, y->cursor);
    return run_cmd(pgc(tx), S_SYNC_PUT, &p, NULL, "recording a sync");
}

static int pg_sync_list(cx_storage_tx *tx, const char *team,
                        int (*fn)(void *ud, const cx_storage_sync *y), void *ud) {
    params p = {0};
    p_text(&p, team);
    PGresult *res = NULL;
    int r = run(pgc(tx), S_SYNC_LIST, &p, 0, &res, "reading sync records");
    for (int i = 0; r == 0 && i < PQntuples(res); i++) {
        cx_storage_sync y = {
            .key_id = PQgetvalue(res, i, 0),
            .principal = PQgetvalue(res, i, 1),
            .workspace = PQgetvalue(res, i, 2),
            .at_ms = col_int(res, i, 3),
            .cursor = col_int(res, i, 4),
        };
        r = fn(ud, &y);
    }
    PQclear(res);
    return r;
}

/* migrate: the team's row (locked, created when missing) set to what the
 * source database held. */
static int pg_team_set(cx_storage_tx *tx, const char *team, int64_t seq, int64_t horizon) {
    int r = team_lock(tx, team);
    if (r)
        return r;
    params p = {0};
    p_text(&p, team);
    p_int(&p, seq);
    p_int(&p, horizon);
    return run_cmd(pgc(tx), S_TEAM_SET, &p, NULL, "setting a team's counter");
}

const cx_storage_backend cx_storage_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .free = pg_free,
    .set_pool = pg_set_pool,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .health = pg_health,
    .backup = pg_backup,
    .analyze = pg_analyze,
    .key_put = pg_key_put,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .session_put = pg_session_put,
    .session_get = pg_session_get,
    .session_end = pg_session_end,
    .session_end_key = pg_session_end_key,
    .session_purge = pg_session_purge,
    .seq_next = pg_seq_next,
    .seq_last = pg_seq_last,
    .horizon = pg_horizon,
    .op_get = pg_op_get,
    .op_put = pg_op_put,
    .item_get = pg_item_get,
    .item_put = pg_item_put,
    .changes = pg_changes,
    .pull = pg_pull,
    .compact = pg_compact,
    .queue = pg_queue,
    .queue_depth = pg_queue_depth,
    .blob_has = pg_blob_has,
    .blob_put = pg_blob_put,
    .blob_get = pg_blob_get,
    .blob_drop_unused = pg_blob_drop_unused,
    .prefetch = pg_prefetch,
    .audit_last = pg_audit_last,
    .audit_put = pg_audit_put,
    .audit_each = pg_audit_each,
    .team_set = pg_team_set,
    .search = pg_search,
    .items = pg_items,
    .audit_team = pg_audit_team,
    .audit_since = pg_audit_since,
    .sync_put = pg_sync_put,
    .sync_list = pg_sync_list,
};
