/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend of the core's storage interface (storage-impl.h): one
 * database file in WAL mode, a pool of reader connections that read in
 * parallel, and one writer connection that write transactions take in
 * turn; statements prepared once per connection. */
#include "core/storage-impl.h"

#include "proto/wire.h"
#include "util/error.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The review app's sessions (storage.h). Also created when a writer
 * connection is set up on an existing database, so a core made before the
 * table existed gets it when it is next served. */
#define SESSIONS_SCHEMA                                                                    \
    "CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL," \
    " team TEXT NOT NULL, csrf TEXT NOT NULL, created_ms INTEGER NOT NULL,"                 \
    " expires_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL DEFAULT 0);"                  \
    "CREATE INDEX IF NOT EXISTS sessions_key ON sessions(key_id);"                          \
    "CREATE INDEX IF NOT EXISTS sessions_expires ON sessions(expires_ms);"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS teams(team TEXT PRIMARY KEY, seq INTEGER NOT NULL DEFAULT 0,"
    " horizon INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS keys(key_id TEXT PRIMARY KEY, team TEXT NOT NULL,"
    " role TEXT NOT NULL, name TEXT NOT NULL, hash BLOB NOT NULL, created_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS items(team TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,"
    " status TEXT NOT NULL, seq INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, json TEXT,"
    " PRIMARY KEY(team, id));"
    "CREATE UNIQUE INDEX IF NOT EXISTS items_seq ON items(team, seq);"
    "CREATE INDEX IF NOT EXISTS items_queue ON items(team, kind, status, seq);"
    "CREATE TABLE IF NOT EXISTS ops(team TEXT NOT NULL, op_id TEXT NOT NULL, digest BLOB NOT NULL,"
    " seq INTEGER NOT NULL, PRIMARY KEY(team, op_id));"
    "CREATE TABLE IF NOT EXISTS blobs(team TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " size INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY(team, sha256));"
    "CREATE TABLE IF NOT EXISTS audit(n INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
    " team TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL,"
    " prev TEXT NOT NULL, hash TEXT NOT NULL);"
    SESSIONS_SCHEMA
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema', '1');";

/* What every core.db gets when the core opens it for writing, new or
 * existing (the review app's reads, added after schema 1; all of it
 * idempotent): the full-text index over the items' title and body, and the
 * last pull of each workspace. The index is keyed by the items' rowid,
 * which nothing renumbers here (the core never VACUUMs; backups copy
 * pages).
 *
 * The index is contentless (content=''): items.json holds the text, so a
 * push writes no second copy of it; a row leaves the index by the FTS5
 * 'delete' command with the text it was indexed with, which FTS_TEXT
 * recomputes from the old row (the same expression, the same stored JSON).
 * A stored item that is not valid JSON (damage: the feed then refuses to
 * serve it) is indexed empty rather than failing the write.
 *
 * Indexing is deferred: a written item's rowid goes into fts_queue (one
 * b-tree insert), and sq_index moves queued rows into the index in batches
 * later (cx_storage_index: a push thread with nothing to do, and every
 * search first). FTS5 costs ~30 µs a row, which in the push's transaction
 * held the one writer that long and cut a loaded core's pushes by a third.
 * The triggers keep the invariant "a live row is in items_fts or in
 * fts_queue, never both": an update or delete takes the old text out of
 * the index only when it was indexed (not still queued). */
#define FTS_FIELD(row, f)                                                                     \
    "coalesce(CASE WHEN json_valid(" row ".json) THEN json_extract(" row ".json, '$." f       \
    "') END, '')"
#define FTS_TEXT(row) FTS_FIELD(row, "title") ", " FTS_FIELD(row, "body")
#define FTS_LIVE(row) row ".deleted = 0 AND " row ".json IS NOT NULL"
#define FTS_INDEXED(row) FTS_LIVE(row) " AND NOT EXISTS (SELECT 1 FROM fts_queue WHERE rid = " row ".rowid)"
/* The queue, new and empty, without triggers: enough for a core.db whose
 * index is complete (one of the review app's first days indexed in its
 * triggers); UPGRADE_FTS_TABLE follows it when there is no index. */
static const char UPGRADE_FTS_QUEUE[] =
    "DROP TRIGGER IF EXISTS items_fts_ins; DROP TRIGGER IF EXISTS items_fts_upd;"
    "DROP TRIGGER IF EXISTS items_fts_del; DROP TABLE IF EXISTS fts_queue;"
    "CREATE TABLE fts_queue(rid INTEGER PRIMARY KEY);";
/* The index, empty, with every live item queued for it. */
static const char UPGRADE_FTS_TABLE[] =
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, body, content = '',"
    " tokenize = 'porter unicode61 remove_diacritics 2');"
    "INSERT INTO fts_queue(rid) SELECT rowid FROM items WHERE " FTS_LIVE("items") ";";
static const char UPGRADE_FTS_TRIGGERS[] =
    "CREATE TRIGGER items_fts_ins AFTER INSERT ON items WHEN " FTS_LIVE("new") " BEGIN"
    " INSERT OR IGNORE INTO fts_queue(rid) VALUES (new.rowid); END;"
    "CREATE TRIGGER items_fts_upd AFTER UPDATE ON items BEGIN"
    " INSERT INTO items_fts(items_fts, rowid, title, body)"
    " SELECT 'delete', old.rowid, " FTS_TEXT("old") " WHERE " FTS_INDEXED("old") ";"
    " DELETE FROM fts_queue WHERE rid = old.rowid;"
    " INSERT OR IGNORE INTO fts_queue(rid) SELECT new.rowid WHERE " FTS_LIVE("new") "; END;"
    "CREATE TRIGGER items_fts_del AFTER DELETE ON items BEGIN"
    " INSERT INTO items_fts(items_fts, rowid, title, body)"
    " SELECT 'delete', old.rowid, " FTS_TEXT("old") " WHERE " FTS_INDEXED("old") ";"
    " DELETE FROM fts_queue WHERE rid = old.rowid; END;";
static const char UPGRADE_SYNCS[] =
    "CREATE TABLE IF NOT EXISTS syncs(team TEXT NOT NULL, key_id TEXT NOT NULL,"
    " workspace TEXT NOT NULL, principal TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " cursor INTEGER NOT NULL, PRIMARY KEY(team, key_id, workspace));"
    "CREATE INDEX IF NOT EXISTS audit_team ON audit(team, n);";

/* cx_trust(kind, status): the trust order of the one model (cx_trust_of)
 * in SQL, for ranking search results. */
static void sql_trust(sqlite3_context *ctx, int n, sqlite3_value **v) {
    (void)n;
    cx_kind k = cx_kind_parse((const char *)sqlite3_value_text(v[0]));
    cx_status st = cx_status_parse((const char *)sqlite3_value_text(v[1]));
    sqlite3_result_int(ctx, (int)cx_trust_of(k, st));
}

/* Runs the upgrade on the writer's connection, in one transaction. A database without
 * the items table (not a core's) is left alone. An older core.db's items
 * are queued for the index (sq_index builds it after, in batches), so the
 * upgrade itself is quick. */
static int upgrade(sqlite3 *db) {
    char *err = NULL;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err);
    sqlite3_stmt *s = NULL;
    int have_items = 0, have_fts = 0, have_queue = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT sum(name = 'items'), sum(name = 'items_fts'),"
                                " sum(name = 'fts_queue')"
                                " FROM sqlite_master WHERE type = 'table'",
                                -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        have_items = sqlite3_column_int(s, 0);
        have_fts = sqlite3_column_int(s, 1);
        have_queue = sqlite3_column_int(s, 2);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK && have_items && !(have_fts && have_queue)) {
        /* no index (a queue alone is rebuilt too), or an index without the queue */
        rc = sqlite3_exec(db, UPGRADE_FTS_QUEUE, NULL, NULL, &err);
        if (rc == SQLITE_OK && !have_fts)
            rc = sqlite3_exec(db, UPGRADE_FTS_TABLE, NULL, NULL, &err);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(db, UPGRADE_FTS_TRIGGERS, NULL, NULL, &err);
    }
    if (rc == SQLITE_OK && have_items)
        rc = sqlite3_exec(db, UPGRADE_SYNCS, NULL, NULL, &err);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        int r = cx_error_set(CX_EIO, "upgrading the database: %s",
                             err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return 0;
}

/* A connection of the pool, and the transaction on it: one transaction per
 * connection at a time, so the transaction is the connection's own
 * (nothing to allocate per transaction). Statements are prepared once per
 * connection and kept, keyed by their SQL text's address (every statement
 * is a string literal in this file). */
#define STMT_CACHE 64

typedef struct conn {
    cx_storage_tx tx; /* first: a cx_storage_tx * is a conn * */
    sqlite3 *db;
    struct conn *next; /* in the free list */
    int nstmt;
    struct {
        const char *sql;
        sqlite3_stmt *s;
    } stmt[STMT_CACHE];
} conn;

/* The writer's turn: a lock handed over in the order it was asked for, so
 * that under load every push waits for the ones before it and no longer
 * (a plain mutex lets a thread that just released it take it again, and a
 * push could wait through many others' turns). Each waiter sleeps on its
 * own condition: a release wakes the next one only. */
typedef struct waiter {
    pthread_cond_t wake;
    bool go;
    struct waiter *next;
} waiter;

typedef struct turn {
    pthread_mutex_t lock;
    bool busy;
    waiter *head, *tail;
} turn;

static void turn_take(turn *t) {
    pthread_mutex_lock(&t->lock);
    if (!t->busy && !t->head) {
        t->busy = true;
        pthread_mutex_unlock(&t->lock);
        return;
    }
    waiter w = {.go = false};
    pthread_cond_init(&w.wake, NULL);
    if (t->tail)
        t->tail->next = &w;
    else
        t->head = &w;
    t->tail = &w;
    while (!w.go)
        pthread_cond_wait(&w.wake, &t->lock);
    pthread_mutex_unlock(&t->lock); /* busy stays true: the turn was handed over */
    pthread_cond_destroy(&w.wake);
}

static void turn_give(turn *t) {
    pthread_mutex_lock(&t->lock);
    waiter *w = t->head;
    if (w) {
        t->head = w->next;
        if (!t->head)
            t->tail = NULL;
        w->go = true;
        pthread_cond_signal(&w->wake);
    } else {
        t->busy = false;
    }
    pthread_mutex_unlock(&t->lock);
}

/* One database file: one writer connection, used by one write transaction
 * at a time (the writer lock), and a pool of reader connections opened as
 * they are needed, at most `max_readers`. Readers and the writer never
 * wait for each other: WAL gives each reader the snapshot of the last
 * commit before it began.
 *
 * Commit order: the seq of a team is taken (teams.seq + 1) inside the one
 * write transaction open at a time, so seqs commit in the order they were
 * taken, and a reader sees a prefix of them: a puller that got cursor N
 * never misses a change that commits later with a seq <= N. The global
 * audit chain's head is read and extended the same way, by the one
 * writer. Other processes (cortex-core keys, forget, compact while serve
 * runs) meet the writer lock of SQLite itself: BEGIN IMMEDIATE waits for
 * it up to the busy timeout. */
typedef struct sq {
    cx_storage base; /* first */
    char *path;
    int flags;
    turn write_turn;            /* held from begin(write) to commit/rollback */
    conn *writer;               /* NULL when read-only */
    bool memory;                /* ":memory:": one connection for everything */
    pthread_mutex_t lock;       /* the reader pool */
    pthread_cond_t freed;
    conn *free;                 /* idle readers */
    conn **all;                 /* every reader opened, to close them */
    int nreaders, max_readers;
} sq;

#define BUSY_TIMEOUT_MS 10000

static conn *C(cx_storage_tx *tx) { return (conn *)tx; }

static int sqlerr_db(sqlite3 *db, int rc, const char *what) {
    int code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? CX_EBUSY
             : rc == SQLITE_NOMEM                       ? CX_ENOMEM
                                                        : CX_EIO;
    return cx_error_set(code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int sqlerr(cx_storage_tx *tx, int rc, const char *what) {
    return sqlerr_db(C(tx)->db, rc, what);
}

/* The connection's statement for sql (a literal of this file), prepared
 * the first time. Give it back with release(). */
static int prepare(cx_storage_tx *tx, const char *sql, sqlite3_stmt **out) {
    conn *c = C(tx);
    for (int i = 0; i < c->nstmt; i++)
        if (c->stmt[i].sql == sql) {
            *out = c->stmt[i].s;
            return 0;
        }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK)
        return sqlerr(tx, rc, "preparing a statement");
    if (c->nstmt < STMT_CACHE) {
        c->stmt[c->nstmt].sql = sql;
        c->stmt[c->nstmt].s = s;
        c->nstmt++;
    } else {
        assert(!"STMT_CACHE is too small for this file's statements");
    }
    *out = s;
    return 0;
}

/* Resets a statement of the cache for its next use. */
static void release(sqlite3_stmt *s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Steps a statement that returns no rows and releases it. */
static int exec_stmt(cx_storage_tx *tx, sqlite3_stmt *s, const char *what) {
    int rc = sqlite3_step(s);
    int r = rc == SQLITE_DONE ? 0 : sqlerr(tx, rc, what);
    release(s);
    return r;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col) {
    const char *v = (const char *)sqlite3_column_text(s, col);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void conn_close(conn *c) {
    if (!c)
        return;
    for (int i = 0; i < c->nstmt; i++)
        sqlite3_finalize(c->stmt[i].s);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Opens one more connection to the file; with CX_STORAGE_CREATE and
 * `setup`, sets WAL and creates the schema. */
static int conn_open(sq *q, bool setup, conn **out) {
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return CX_ENOMEM;
    c->tx.st = &q->base;
    int r = 0;
    int oflags = (q->flags & CX_STORAGE_READONLY) ? SQLITE_OPEN_READONLY
                                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* one thread uses a connection at a time: no SQLite mutex needed */
    int rc = sqlite3_open_v2(q->path, &c->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = sqlerr_db(c->db, rc, "opening the database");
        goto out;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (!(q->flags & CX_STORAGE_READONLY)) {
        char *err = NULL;
        /* a reader connection refuses writes outright */
        rc = sqlite3_exec(c->db, setup ? "PRAGMA synchronous=NORMAL;" : "PRAGMA query_only=1;",
                          NULL, NULL, &err);
        if (rc == SQLITE_OK && setup)
            rc = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL;", NULL, NULL, &err);
        if (rc == SQLITE_OK && setup && (q->flags & CX_STORAGE_CREATE))
            rc = sqlite3_exec(c->db, SCHEMA, NULL, NULL, &err);
        else if (rc == SQLITE_OK && setup)
            rc = sqlite3_exec(c->db, SESSIONS_SCHEMA, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
            r = cx_error_set(CX_EIO, "setting up the database: %s", err ? err : sqlite3_errstr(rc));
            sqlite3_free(err);
            goto out;
        }
        if (setup && (r = upgrade(c->db)))
            goto out;
    }
    rc = sqlite3_create_function(c->db, "cx_trust", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 NULL, sql_trust, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = sqlerr_db(c->db, rc, "registering cx_trust");
        goto out;
    }
out:
    if (r) {
        conn_close(c);
        return r;
    }
    *out = c;
    return 0;
}

static void sq_free(cx_storage *st) {
    sq *q = (sq *)st;
    conn_close(q->writer);
    for (int i = 0; i < q->nreaders; i++)
        conn_close(q->all[i]);
    free(q->all);
    pthread_mutex_destroy(&q->write_turn.lock);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->freed);
    free(q->path);
    free(q);
}

static int sq_set_pool(cx_storage *st, int n) {
    sq *q = (sq *)st;
    pthread_mutex_lock(&q->lock);
    int r = 0;
    if (n < q->nreaders) {
        r = cx_error_set(CX_EINVAL, "the pool has %d connections open already", q->nreaders);
    } else {
        conn **all = realloc(q->all, (size_t)n * sizeof *all);
        if (!all) {
            r = CX_ENOMEM;
        } else {
            q->all = all;
            q->max_readers = n;
            q->base.pool_size = n + (q->writer ? 1 : 0);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int sq_open(cx_storage **out, const char *path, int flags) {
    bool memory = strcmp(path, ":memory:") == 0;
    if (!(flags & CX_STORAGE_CREATE) && !memory && access(path, F_OK) != 0)
        return cx_error_set(CX_ENOTFOUND, "no database at %s (run cortex-core init first)", path);
    sq *q = calloc(1, sizeof *q);
    if (!q)
        return CX_ENOMEM;
    q->base.be = &cx_storage_sqlite_backend;
    q->flags = flags;
    q->memory = memory;
    pthread_mutex_init(&q->write_turn.lock, NULL);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->freed, NULL);
    int r = 0;
    if (!(q->path = strdup(path))) {
        r = CX_ENOMEM;
        goto out;
    }
    if (!(flags & CX_STORAGE_READONLY) && (r = conn_open(q, true, &q->writer)))
        goto out;
    if ((r = sq_set_pool(&q->base, CX_STORAGE_POOL_DEFAULT)))
        goto out;
    /* a read-only open checks now that the file is a database */
    if (flags & CX_STORAGE_READONLY) {
        conn *c = NULL;
        if ((r = conn_open(q, false, &c)))
            goto out;
        q->all[q->nreaders++] = c;
        c->next = q->free;
        q->free = c;
    }
out:
    if (r) {
        sq_free(&q->base);
        return r;
    }
    *out = &q->base;
    return 0;
}

/* A reader connection: an idle one, a new one while the pool has room, or
 * the first one given back. (An in-memory database is one connection's
 * own: there, the writer, under its lock.) */
static int reader_take(sq *q, conn **out) {
    if (q->memory && q->writer) {
        turn_take(&q->write_turn);
        *out = q->writer;
        return 0;
    }
    int r = 0;
    pthread_mutex_lock(&q->lock);
    while (!q->free && q->nreaders >= q->max_readers)
        pthread_cond_wait(&q->freed, &q->lock);
    conn *c = q->free;
    if (c) {
        q->free = c->next;
    } else if ((r = conn_open(q, false, &c)) == 0) {
        q->all[q->nreaders++] = c;
    }
    pthread_mutex_unlock(&q->lock);
    if (r == 0)
        *out = c;
    return r;
}

static void reader_give(sq *q, conn *c) {
    if (c == q->writer) {
        turn_give(&q->write_turn);
        return;
    }
    pthread_mutex_lock(&q->lock);
    c->next = q->free;
    q->free = c;
    pthread_cond_signal(&q->freed);
    pthread_mutex_unlock(&q->lock);
}

/* Gives tx's connection back: the writer's lock, or the reader to the pool. */
static void give_back(cx_storage_tx *tx) {
    sq *q = (sq *)tx->st;
    conn *c = C(tx);
    reader_give(q, c);
}

static int sq_begin(cx_storage *st, bool write, cx_storage_tx **tx) {
    sq *q = (sq *)st;
    conn *c = NULL;
    int r = 0;
    if (write || q->memory) {
        turn_take(&q->write_turn);
        c = q->writer;
    } else if ((r = reader_take(q, &c))) {
        return r;
    }
    int rc = sqlite3_exec(c->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = sqlerr_db(c->db, rc, "starting a transaction");
        give_back(&c->tx);
        return r;
    }
    *tx = &c->tx;
    return 0;
}

static int sq_commit(cx_storage_tx *tx) {
    int rc = sqlite3_exec(C(tx)->db, "COMMIT", NULL, NULL, NULL);
    int r = 0;
    if (rc != SQLITE_OK) {
        r = sqlerr(tx, rc, "committing");
        sqlite3_exec(C(tx)->db, "ROLLBACK", NULL, NULL, NULL);
    }
    give_back(tx);
    return r;
}

static void sq_rollback(cx_storage_tx *tx) {
    sqlite3_exec(C(tx)->db, "ROLLBACK", NULL, NULL, NULL);
    give_back(tx);
}

static int sq_health(cx_storage *st, cx_storage_health_info *out) {
    sq *q = (sq *)st;
    conn *c = NULL;
    int r = reader_take(q, &c);
    if (r) {
        snprintf(out->detail, sizeof out->detail, "%s", cx_error_last());
        return 0;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT v FROM meta WHERE k = 'schema'", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->latency_us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    out->ok = rc == SQLITE_ROW;
    if (out->ok)
        snprintf(out->detail, sizeof out->detail, "sqlite %s, schema %s", sqlite3_libversion(),
                 (const char *)sqlite3_column_text(s, 0));
    else
        snprintf(out->detail, sizeof out->detail, "sqlite: %s", sqlite3_errmsg(c->db));
    sqlite3_finalize(s);
    reader_give(q, c);
    return 0;
}

static int sq_key_put(cx_storage_tx *tx, const cx_storage_key *k) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO keys(key_id, team, role, name, hash, created_ms, revoked_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, k->key_id);
    bind_text(s, 2, k->team);
    bind_text(s, 3, k->role);
    bind_text(s, 4, k->name);
    sqlite3_bind_blob(s, 5, k->hash, sizeof k->hash, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, k->created_ms);
    sqlite3_bind_int64(s, 7, k->revoked_ms);
    return exec_stmt(tx, s, "storing a key");
}

static void read_key(sqlite3_stmt *s, cx_storage_key *k) {
    memset(k, 0, sizeof *k);
    copy_col(k->key_id, sizeof k->key_id, s, 0);
    copy_col(k->team, sizeof k->team, s, 1);
    copy_col(k->role, sizeof k->role, s, 2);
    copy_col(k->name, sizeof k->name, s, 3);
    if (sqlite3_column_bytes(s, 4) == (int)sizeof k->hash)
        memcpy(k->hash, sqlite3_column_blob(s, 4), sizeof k->hash);
    k->created_ms = sqlite3_column_int64(s, 5);
    k->revoked_ms = sqlite3_column_int64(s, 6);
}

#define KEY_COLS "key_id, team, role, name, hash, created_ms, revoked_ms"

static int sq_key_get(cx_storage_tx *tx, const char *key_id, cx_storage_key *out) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT " KEY_COLS " FROM keys WHERE key_id = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, key_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_key(s, out);
    else if (rc == SQLITE_DONE)
        r = cx_error_set(CX_ENOTFOUND, "no key %s", key_id);
    else
        r = sqlerr(tx, rc, "reading a key");
    release(s);
    return r;
}

static int sq_key_list(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_key *k), void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT " KEY_COLS " FROM keys ORDER BY team, created_ms, key_id", &s);
    if (r)
        return r;
    int rc;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cx_storage_key k;
        read_key(s, &k);
        r = fn(ud, &k);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "listing keys");
    release(s);
    return r;
}

static int sq_key_revoke(cx_storage_tx *tx, const char *key_id, int64_t now_ms) {
    cx_storage_key k;
    int r = sq_key_get(tx, key_id, &k);
    if (r)
        return r;
    if (k.revoked_ms)
        return cx_error_set(CX_ECONFLICT, "key %s is already revoked", key_id);
    sqlite3_stmt *s = NULL;
    if ((r = prepare(tx, "UPDATE keys SET revoked_ms = ?2 WHERE key_id = ?1", &s)))
        return r;
    bind_text(s, 1, key_id);
    sqlite3_bind_int64(s, 2, now_ms > 0 ? now_ms : 1);
    return exec_stmt(tx, s, "revoking a key");
}

/* --- sessions --------------------------------------------------------------- */

static int sq_session_put(cx_storage_tx *tx, const cx_storage_session *ss) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO sessions(token_hash, key_id, team, csrf, created_ms, expires_ms,"
                    " ended_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, ss->token_hash);
    bind_text(s, 2, ss->key_id);
    bind_text(s, 3, ss->team);
    bind_text(s, 4, ss->csrf);
    sqlite3_bind_int64(s, 5, ss->created_ms);
    sqlite3_bind_int64(s, 6, ss->expires_ms);
    sqlite3_bind_int64(s, 7, ss->ended_ms);
    return exec_stmt(tx, s, "storing a session");
}

static int sq_session_get(cx_storage_tx *tx, const char *token_hash, cx_storage_session *out) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT token_hash, key_id, team, csrf, created_ms, expires_ms, ended_ms"
                    " FROM sessions WHERE token_hash = ?1",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, token_hash);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        copy_col(out->token_hash, sizeof out->token_hash, s, 0);
        copy_col(out->key_id, sizeof out->key_id, s, 1);
        copy_col(out->team, sizeof out->team, s, 2);
        copy_col(out->csrf, sizeof out->csrf, s, 3);
        out->created_ms = sqlite3_column_int64(s, 4);
        out->expires_ms = sqlite3_column_int64(s, 5);
        out->ended_ms = sqlite3_column_int64(s, 6);
    } else if (rc == SQLITE_DONE) {
        r = cx_error_set(CX_ENOTFOUND, "no such session");
    } else {
        r = sqlerr(tx, rc, "reading a session");
    }
    release(s);
    return r;
}

/* Runs s (bound by the caller) and reports the rows it changed. */
static int exec_count(cx_storage_tx *tx, sqlite3_stmt *s, const char *what, int64_t *rows) {
    int r = exec_stmt(tx, s, what);
    if (r == 0)
        *rows = sqlite3_changes(C(tx)->db);
    return r;
}

static int sq_session_end(cx_storage_tx *tx, const char *token_hash, int64_t now_ms) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "UPDATE sessions SET ended_ms = ?2 WHERE token_hash = ?1 AND ended_ms = 0",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, token_hash);
    sqlite3_bind_int64(s, 2, now_ms > 0 ? now_ms : 1);
    int64_t rows = 0;
    r = exec_count(tx, s, "ending a session", &rows);
    return r ? r : rows ? 0 : cx_error_set(CX_ENOTFOUND, "no such session");
}

static int sq_session_end_key(cx_storage_tx *tx, const char *key_id, int64_t now_ms,
                              int64_t *ended) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "UPDATE sessions SET ended_ms = ?2 WHERE key_id = ?1 AND ended_ms = 0",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, key_id);
    sqlite3_bind_int64(s, 2, now_ms > 0 ? now_ms : 1);
    return exec_count(tx, s, "ending a key's sessions", ended);
}

static int sq_session_purge(cx_storage_tx *tx, int64_t before_ms, int limit, int64_t *deleted) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions"
                    " WHERE expires_ms < ?1 OR (ended_ms > 0 AND ended_ms < ?1) LIMIT ?2)",
                    &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int(s, 2, limit);
    return exec_count(tx, s, "deleting old sessions", deleted);
}

static int sq_seq_next(cx_storage_tx *tx, const char *team, int64_t *seq) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO teams(team, seq) VALUES (?1, 1)"
                    " ON CONFLICT(team) DO UPDATE SET seq = seq + 1 RETURNING seq",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *seq = sqlite3_column_int64(s, 0);
    else
        r = sqlerr(tx, rc, "advancing the sequence");
    release(s);
    return r;
}

static int sq_horizon(cx_storage_tx *tx, const char *team, int64_t *horizon) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT horizon FROM teams WHERE team = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc = sqlite3_step(s);
    *horizon = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading the horizon");
    release(s);
    return r;
}

static int sq_seq_last(cx_storage_tx *tx, const char *team, int64_t *seq) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT seq FROM teams WHERE team = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading the sequence");
    release(s);
    return r;
}

static int sq_compact(cx_storage_tx *tx, const char *team, int64_t before, int64_t *dropped) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "DELETE FROM items WHERE team = ?1 AND deleted = 1 AND seq < ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, before);
    if ((r = exec_stmt(tx, s, "dropping tombstones")))
        return r;
    *dropped = sqlite3_changes(C(tx)->db);
    if ((r = prepare(tx,
                     "INSERT INTO teams(team, seq, horizon) VALUES (?1, 0, ?2)"
                     " ON CONFLICT(team) DO UPDATE SET horizon = max(horizon, ?2)",
                     &s)))
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, before);
    return exec_stmt(tx, s, "recording the tombstone horizon");
}

static int sq_op_get(cx_storage_tx *tx, const char *team, const char *op_id, uint8_t digest[32],
                     int64_t *seq) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT digest, seq FROM ops WHERE team = ?1 AND op_id = ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, op_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        memset(digest, 0, 32);
        if (sqlite3_column_bytes(s, 0) == 32)
            memcpy(digest, sqlite3_column_blob(s, 0), 32);
        *seq = sqlite3_column_int64(s, 1);
    } else if (rc == SQLITE_DONE) {
        r = CX_ENOTFOUND;
    } else {
        r = sqlerr(tx, rc, "reading an op");
    }
    release(s);
    return r;
}

static int sq_op_put(cx_storage_tx *tx, const char *team, const char *op_id,
                     const uint8_t digest[32], int64_t seq) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "INSERT INTO ops(team, op_id, digest, seq) VALUES (?1, ?2, ?3, ?4)", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, op_id);
    sqlite3_bind_blob(s, 3, digest, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, seq);
    return exec_stmt(tx, s, "recording an op");
}

static int sq_item_get(cx_storage_tx *tx, const char *team, const char *id, char **json,
                       int64_t *seq, bool *deleted) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT json, seq, deleted FROM items WHERE team = ?1 AND id = ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *j = (const char *)sqlite3_column_text(s, 0);
        char *copy = strdup(j ? j : "null");
        if (!copy) {
            r = CX_ENOMEM;
        } else {
            *json = copy;
            *seq = sqlite3_column_int64(s, 1);
            *deleted = sqlite3_column_int(s, 2) != 0;
        }
    } else if (rc == SQLITE_DONE) {
        r = cx_error_set(CX_ENOTFOUND, "no item %s", id);
    } else {
        r = sqlerr(tx, rc, "reading an item");
    }
    release(s);
    return r;
}

static int sq_item_put(cx_storage_tx *tx, const char *team, const char *id, const char *kind,
                       const char *status, int64_t seq, bool deleted, const char *json) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO items(team, id, kind, status, seq, deleted, json)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(team, id) DO UPDATE SET"
                    " kind = excluded.kind, status = excluded.status, seq = excluded.seq,"
                    " deleted = excluded.deleted, json = excluded.json",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, id);
    bind_text(s, 3, kind);
    bind_text(s, 4, status);
    sqlite3_bind_int64(s, 5, seq);
    sqlite3_bind_int(s, 6, deleted);
    bind_text(s, 7, deleted ? NULL : json);
    return exec_stmt(tx, s, "writing an item");
}

static int sq_changes(cx_storage_tx *tx, const char *team, int64_t since, int limit,
                      int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                      void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT seq, id, deleted, json FROM items WHERE team = ?1 AND seq > ?2"
                    " ORDER BY seq LIMIT ?3",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, since);
    sqlite3_bind_int(s, 3, limit);
    int rc;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
               sqlite3_column_int(s, 2) ? NULL : (const char *)sqlite3_column_text(s, 3));
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading changes");
    release(s);
    return r;
}

/* "Awaits review" in SQL: the kind and statuses come from the one model
 * (cx_awaits_review), bound as ?10, ?11 and ?12 by bind_awaiting(). */
#define AWAITING "kind = ?10 AND status IN (?11, ?12)"

static void bind_awaiting(sqlite3_stmt *s) {
    int n = 11;
    sqlite3_bind_text(s, 10, cx_kind_name(CX_KIND_DRAFT), -1, SQLITE_STATIC);
    for (int i = 0; i < CX_STATUS_COUNT; i++)
        if (cx_awaits_review(CX_KIND_DRAFT, (cx_status)i)) {
            assert(n <= 12); /* AWAITING names two statuses */
            sqlite3_bind_text(s, n++, cx_status_name((cx_status)i), -1, SQLITE_STATIC);
        }
    assert(n == 13);
}

static int sq_queue(cx_storage_tx *tx, const char *team, int limit,
                    int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT count(*) FROM items WHERE team = ?1 AND " AWAITING " AND deleted = 0",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_awaiting(s);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        r = sqlerr(tx, rc, "counting the queue");
        release(s);
        return r;
    }
    *total = sqlite3_column_int64(s, 0);
    release(s);
    if ((r = prepare(tx,
                     "SELECT json FROM items WHERE team = ?1 AND " AWAITING " AND deleted = 0"
                     " ORDER BY seq LIMIT ?2",
                     &s)))
        return r;
    bind_text(s, 1, team);
    bind_awaiting(s);
    sqlite3_bind_int(s, 2, limit);
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(ud, (const char *)sqlite3_column_text(s, 0));
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading the queue");
    release(s);
    return r;
}

static int sq_queue_depth(cx_storage_tx *tx, int64_t *depth) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT count(*) FROM items WHERE " AWAITING " AND deleted = 0", &s);
    if (r)
        return r;
    bind_awaiting(s);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *depth = sqlite3_column_int64(s, 0);
    else
        r = sqlerr(tx, rc, "counting the queue");
    release(s);
    return r;
}

static int sq_blob_has(cx_storage_tx *tx, const char *team, const char *sha, bool *has) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT 1 FROM blobs WHERE team = ?1 AND sha256 = ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    int rc = sqlite3_step(s);
    *has = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "looking up a blob");
    release(s);
    return r;
}

static int sq_blob_put(cx_storage_tx *tx, const char *team, const char *sha, const void *data,
                       size_t len, bool *created) {
    bool has = false;
    int r = sq_blob_has(tx, team, sha, &has);
    if (r)
        return r;
    *created = !has;
    if (has)
        return 0;
    sqlite3_stmt *s = NULL;
    if ((r = prepare(tx, "INSERT INTO blobs(team, sha256, size, data) VALUES (?1, ?2, ?3, ?4)",
                     &s)))
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)len);
    sqlite3_bind_blob64(s, 4, len ? data : "", len, SQLITE_TRANSIENT);
    return exec_stmt(tx, s, "storing a blob");
}

static int sq_blob_get(cx_storage_tx *tx, const char *team, const char *sha, void **data,
                       size_t *len) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT data FROM blobs WHERE team = ?1 AND sha256 = ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        void *buf = malloc(n ? n : 1);
        if (!buf) {
            r = CX_ENOMEM;
        } else {
            if (n)
                memcpy(buf, sqlite3_column_blob(s, 0), n);
            *data = buf;
            *len = n;
        }
    } else if (rc == SQLITE_DONE) {
        r = cx_error_set(CX_ENOTFOUND, "no blob %s", sha);
    } else {
        r = sqlerr(tx, rc, "reading a blob");
    }
    release(s);
    return r;
}

static int sq_blob_drop_unused(cx_storage_tx *tx, const char *team, const char *sha,
                              bool *deleted) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "DELETE FROM blobs WHERE team = ?1 AND sha256 = ?2 AND NOT EXISTS"
                    " (SELECT 1 FROM items WHERE team = ?1 AND deleted = 0"
                    " AND instr(json, ?2) > 0)",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    if ((r = exec_stmt(tx, s, "dropping a blob")))
        return r;
    *deleted = sqlite3_changes(C(tx)->db) > 0;
    return 0;
}

static int sq_audit_last(cx_storage_tx *tx, int64_t *n, char hash[65]) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, "SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1", &s);
    if (r)
        return r;
    int rc = sqlite3_step(s);
    *n = 0;
    hash[0] = '\0';
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        copy_col(hash, 65, s, 1);
    } else if (rc != SQLITE_DONE) {
        r = sqlerr(tx, rc, "reading the audit log");
    }
    release(s);
    return r;
}

static int sq_audit_put(cx_storage_tx *tx, const cx_storage_audit *a) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO audit(n, ts_ms, team, actor, action, detail, prev, hash)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, a->n);
    sqlite3_bind_int64(s, 2, a->ts_ms);
    bind_text(s, 3, a->team);
    bind_text(s, 4, a->actor);
    bind_text(s, 5, a->action);
    bind_text(s, 6, a->detail);
    bind_text(s, 7, a->prev);
    bind_text(s, 8, a->hash);
    return exec_stmt(tx, s, "appending to the audit log");
}

static const char *col_text(sqlite3_stmt *s, int i) {
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? v : "";
}

/* Steps an audit statement, each row to fn, and releases it. */
static int audit_rows(cx_storage_tx *tx, sqlite3_stmt *s,
                      int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cx_storage_audit a = {
            .n = sqlite3_column_int64(s, 0),
            .ts_ms = sqlite3_column_int64(s, 1),
            .team = col_text(s, 2),
            .actor = col_text(s, 3),
            .action = col_text(s, 4),
            .detail = col_text(s, 5),
            .prev = col_text(s, 6),
            .hash = col_text(s, 7),
        };
        r = fn(ud, &a);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading the audit log");
    release(s);
    return r;
}

static int sq_audit_since(cx_storage_tx *tx, int64_t after,
                          int (*fn)(void *ud, const cx_storage_audit *a), void *ud);

static int sq_audit_each(cx_storage_tx *tx, int (*fn)(void *ud, const cx_storage_audit *a),
                         void *ud) {
    return sq_audit_since(tx, 0, fn, ud);
}

/* --- the review app's reads ----------------------------------------------- */

/* The user's query as an FTS5 query: every whitespace-separated word a
 * quoted string (a `"` in it doubled), the strings ANDed. Nothing the user
 * types is FTS5 syntax: `*`, `NEAR(`, `-x`, `a:b` are words to match (the
 * tokenizer drops their punctuation); a word of punctuation alone matches
 * nothing. *out malloc'd; NULL when q has no word. */
static int fts_query(const char *q, char **out) {
    size_t n = strlen(q), cap = 3 * n + 3;
    char *b = malloc(cap), *w = b;
    if (!b)
        return CX_ENOMEM;
    bool any = false;
    for (const char *p = q; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
            p++;
        if (!*p)
            break;
        if (any)
            *w++ = ' ';
        *w++ = '"';
        for (; *p && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
                       *p == '\v');
             p++) {
            if (*p == '"')
                *w++ = '"';
            *w++ = *p;
        }
        *w++ = '"';
        any = true;
    }
    *w = '\0';
    if (!any) {
        free(b);
        b = NULL;
    }
    *out = b;
    return 0;
}

/* Filters shared by the search statements: ?2 team, ?3 kind, ?4 status,
 * ?5 subcortex (NULL: any). */
#define SEARCH_FILTERS                                                                        \
    " i.team = ?2 AND i.deleted = 0 AND (?3 IS NULL OR i.kind = ?3)"                           \
    " AND (?4 IS NULL OR i.status = ?4)"                                                       \
    " AND (?5 IS NULL OR CASE WHEN json_valid(i.json)"                                        \
    " THEN json_extract(i.json, '$.subcortex') END = ?5)"
/* The matches of ?1, the index driving: CROSS JOIN keeps items_fts the
 * outer loop (SQLite's planner otherwise may walk the team's items and
 * probe the index once per item: seconds at 100k items). Ranked by bm25
 * with title 4, body 1, as the sidecar. */
#define SEARCH_MATCHES " items_fts CROSS JOIN items i ON i.rowid = items_fts.rowid"
#define SEARCH_MATCH " items_fts MATCH ?1 AND"

static void bind_search(sqlite3_stmt *s, const char *match, const char *team,
                        const cx_storage_query *q) {
    if (match)
        bind_text(s, 1, match);
    bind_text(s, 2, team);
    bind_text(s, 3, q->kind);
    bind_text(s, 4, q->status);
    bind_text(s, 5, q->subcortex);
}

/* Moves up to `limit` queued rows, oldest first, into the index and counts
 * what is left (limit 0: only counts). The queue's rows are live items (the
 * triggers keep it so). */
static int sq_index(cx_storage_tx *tx, int limit, int64_t *pending) {
    sqlite3_stmt *s = NULL;
    int r = 0, rc;
    if (limit > 0) {
        /* the batch's last rid: the rows up to it are this batch */
        int64_t upto = -1;
        r = prepare(tx, "SELECT max(rid) FROM (SELECT rid FROM fts_queue ORDER BY rid LIMIT ?1)",
                    &s);
        if (r)
            return r;
        sqlite3_bind_int(s, 1, limit);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            upto = sqlite3_column_int64(s, 0);
        else if (rc != SQLITE_ROW)
            r = sqlerr(tx, rc, "reading the index queue");
        release(s);
        if (r == 0 && upto >= 0) {
            r = prepare(tx,
                        "INSERT INTO items_fts(rowid, title, body) SELECT i.rowid, "
                        FTS_TEXT("i") " FROM fts_queue q CROSS JOIN items i ON i.rowid = q.rid"
                        " WHERE q.rid <= ?1",
                        &s);
            if (r == 0) {
                sqlite3_bind_int64(s, 1, upto);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                    r = sqlerr(tx, rc, "indexing items");
                release(s);
            }
            if (r == 0 && (r = prepare(tx, "DELETE FROM fts_queue WHERE rid <= ?1", &s)) == 0) {
                sqlite3_bind_int64(s, 1, upto);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                    r = sqlerr(tx, rc, "emptying the index queue");
                release(s);
            }
        }
        if (r)
            return r;
    }
    r = prepare(tx, "SELECT count(*) FROM fts_queue", &s);
    if (r)
        return r;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *pending = sqlite3_column_int64(s, 0);
    else
        r = sqlerr(tx, rc, "counting the index queue");
    release(s);
    return r;
}

static int sq_search(cx_storage_tx *tx, const char *team, const cx_storage_query *q,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    char *match = NULL;
    bool text = q->text && *q->text;
    int r = text ? fts_query(q->text, &match) : 0;
    if (r)
        return r;
    *total = 0;
    if (text && !match)
        return 0; /* words of punctuation only: nothing matches */
    sqlite3_stmt *s = NULL;
    r = prepare(tx,
                text ? "SELECT count(*) FROM" SEARCH_MATCHES " WHERE" SEARCH_MATCH SEARCH_FILTERS
                     : "SELECT count(*) FROM items i WHERE" SEARCH_FILTERS,
                &s);
    if (r)
        goto out;
    bind_search(s, match, team, q);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *total = sqlite3_column_int64(s, 0);
    else
        r = sqlerr(tx, rc, "counting search results");
    release(s);
    if (r)
        goto out;
    r = prepare(tx,
                text ? "SELECT i.json FROM" SEARCH_MATCHES " WHERE" SEARCH_MATCH SEARCH_FILTERS
                       " ORDER BY cx_trust(i.kind, i.status), bm25(items_fts, 4.0, 1.0),"
                       " i.seq DESC LIMIT ?6"
                     : "SELECT i.json FROM items i WHERE" SEARCH_FILTERS
                       " ORDER BY i.seq DESC LIMIT ?6",
                &s);
    if (r)
        goto out;
    bind_search(s, match, team, q);
    sqlite3_bind_int(s, 6, q->limit);
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(ud, (const char *)sqlite3_column_text(s, 0));
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "searching");
    release(s);
out:
    free(match);
    return r;
}

static int sq_items(cx_storage_tx *tx, const char *team, const char *kind, bool newest_first,
                    int limit, int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                    void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    newest_first ? "SELECT seq, id, json FROM items WHERE team = ?1"
                                   " AND (?2 IS NULL OR kind = ?2) AND deleted = 0"
                                   " ORDER BY seq DESC LIMIT ?3"
                                 : "SELECT seq, id, json FROM items WHERE team = ?1"
                                   " AND (?2 IS NULL OR kind = ?2) AND deleted = 0"
                                   " ORDER BY seq LIMIT ?3",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, kind);
    sqlite3_bind_int(s, 3, limit < 1 ? -1 : limit);
    int rc;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
               (const char *)sqlite3_column_text(s, 2));
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading items");
    release(s);
    return r;
}

static int sq_audit_team(cx_storage_tx *tx, const char *team, int64_t before, const char *mention,
                         int limit, int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT n, ts_ms, team, actor, action, detail, prev, hash FROM audit"
                    " WHERE team = ?1 AND (?2 <= 0 OR n < ?2)"
                    " AND (?3 IS NULL OR instr(detail, ?3) > 0) ORDER BY n DESC LIMIT ?4",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, before);
    bind_text(s, 3, mention);
    sqlite3_bind_int(s, 4, limit < 1 ? -1 : limit);
    return audit_rows(tx, s, fn, ud);
}

static int sq_audit_since(cx_storage_tx *tx, int64_t after,
                          int (*fn)(void *ud, const cx_storage_audit *a), void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT n, ts_ms, team, actor, action, detail, prev, hash FROM audit"
                    " WHERE n > ?1 ORDER BY n",
                    &s);
    if (r)
        return r;
    sqlite3_bind_int64(s, 1, after);
    return audit_rows(tx, s, fn, ud);
}

static int sq_sync_put(cx_storage_tx *tx, const char *team, const cx_storage_sync *y) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO syncs(team, key_id, workspace, principal, at_ms, cursor)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(team, key_id, workspace)"
                    " DO UPDATE SET principal = excluded.principal, at_ms = excluded.at_ms,"
                    " cursor = excluded.cursor",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, y->key_id);
    bind_text(s, 3, y->workspace);
    bind_text(s, 4, y->principal);
    sqlite3_bind_int64(s, 5, y->at_ms);
    sqlite3_bind_int64(s, 6, y->cursor);
    return exec_stmt(tx, s, "recording a sync");
}

static int sq_sync_list(cx_storage_tx *tx, const char *team,
                        int (*fn)(void *ud, const cx_storage_sync *y), void *ud) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "SELECT key_id, principal, workspace, at_ms, cursor FROM syncs"
                    " WHERE team = ?1 ORDER BY at_ms DESC, workspace LIMIT 1000",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cx_storage_sync y = {
            .key_id = col_text(s, 0),
            .principal = col_text(s, 1),
            .workspace = col_text(s, 2),
            .at_ms = sqlite3_column_int64(s, 3),
            .cursor = sqlite3_column_int64(s, 4),
        };
        r = fn(ud, &y);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, "reading sync records");
    release(s);
    return r;
}

static int sq_backup(cx_storage *st, const char *dest) {
    sq *q = (sq *)st;
    conn *src = NULL;
    if (access(dest, F_OK) == 0)
        return cx_error_set(CX_ECONFLICT, "%s already exists; back up to a new file", dest);
    sqlite3 *out = NULL;
    int r = reader_take(q, &src);
    if (r)
        return r;
    int rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        r = cx_error_set(CX_EIO, "cannot create %s: %s", dest, sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_backup *b = sqlite3_backup_init(out, "main", src->db, "main");
    if (!b) {
        r = cx_error_set(CX_EIO, "backup to %s: %s", dest, sqlite3_errmsg(out));
        goto out;
    }
    /* Copy in steps; a writer between steps restarts the copy, so the
     * result is one consistent snapshot. Bounded: ~10 minutes of retries. */
    for (int tries = 0; tries < 60000; tries++) {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_DONE)
            break;
        if (rc == SQLITE_OK)
            continue;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            sqlite3_sleep(10);
            continue;
        }
        break;
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        r = cx_error_set(CX_EIO, "backup to %s failed: %s", dest, sqlite3_errstr(rc));
        goto out;
    }
    /* The copy is a standalone database: leave it in rollback-journal mode. */
    sqlite3_exec(out, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
out:
    sqlite3_close_v2(out);
    reader_give(q, src);
    if (r)
        unlink(dest);
    return r;
}

/* Runs one walk query: each row to row(). */
static int walk_rows(cx_storage_tx *tx, const char *sql, const char *what,
                     int (*row)(const cx_storage_walker *w, sqlite3_stmt *s),
                     const cx_storage_walker *w) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx, sql, &s), rc = SQLITE_DONE;
    if (r)
        return r;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = row(w, s);
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(tx, rc, what);
    release(s);
    return r;
}

static int walk_team(const cx_storage_walker *w, sqlite3_stmt *s) {
    return w->team(w->ud, col_text(s, 0), sqlite3_column_int64(s, 1),
                   sqlite3_column_int64(s, 2));
}

static int walk_item(const cx_storage_walker *w, sqlite3_stmt *s) {
    bool deleted = sqlite3_column_int(s, 5) != 0;
    cx_storage_item_row it = {
        .team = col_text(s, 0),
        .id = col_text(s, 1),
        .kind = col_text(s, 2),
        .status = col_text(s, 3),
        .seq = sqlite3_column_int64(s, 4),
        .deleted = deleted,
        .json = deleted ? NULL : (const char *)sqlite3_column_text(s, 6),
    };
    return w->item(w->ud, &it);
}

static int walk_op(const cx_storage_walker *w, sqlite3_stmt *s) {
    uint8_t digest[32] = {0};
    if (sqlite3_column_bytes(s, 2) == (int)sizeof digest)
        memcpy(digest, sqlite3_column_blob(s, 2), sizeof digest);
    return w->op(w->ud, col_text(s, 0), col_text(s, 1), digest, sqlite3_column_int64(s, 3));
}

static int walk_blob(const cx_storage_walker *w, sqlite3_stmt *s) {
    return w->blob(w->ud, col_text(s, 0), col_text(s, 1), sqlite3_column_int64(s, 2));
}

static int sq_walk(cx_storage_tx *tx, const cx_storage_walker *w) {
    int r = 0;
    if (w->team)
        r = walk_rows(tx, "SELECT team, seq, horizon FROM teams ORDER BY team", "walking teams",
                      walk_team, w);
    if (r == 0 && w->item)
        r = walk_rows(tx,
                      "SELECT team, id, kind, status, seq, deleted, json FROM items"
                      " ORDER BY team, seq",
                      "walking items", walk_item, w);
    if (r == 0 && w->op)
        r = walk_rows(tx, "SELECT team, op_id, digest, seq FROM ops ORDER BY team, op_id",
                      "walking op records", walk_op, w);
    if (r == 0 && w->blob)
        r = walk_rows(tx, "SELECT team, sha256, size FROM blobs ORDER BY team, sha256",
                      "walking blobs", walk_blob, w);
    return r;
}

static int sq_team_set(cx_storage_tx *tx, const char *team, int64_t seq, int64_t horizon) {
    sqlite3_stmt *s = NULL;
    int r = prepare(tx,
                    "INSERT INTO teams(team, seq, horizon) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT(team) DO UPDATE SET seq = excluded.seq,"
                    " horizon = excluded.horizon",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_int64(s, 3, horizon);
    return exec_stmt(tx, s, "setting a team's counter");
}

const cx_storage_backend cx_storage_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .free = sq_free,
    .set_pool = sq_set_pool,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .health = sq_health,
    .backup = sq_backup,
    .key_put = sq_key_put,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .session_put = sq_session_put,
    .session_get = sq_session_get,
    .session_end = sq_session_end,
    .session_end_key = sq_session_end_key,
    .session_purge = sq_session_purge,
    .seq_next = sq_seq_next,
    .seq_last = sq_seq_last,
    .horizon = sq_horizon,
    .op_get = sq_op_get,
    .op_put = sq_op_put,
    .item_get = sq_item_get,
    .item_put = sq_item_put,
    .changes = sq_changes,
    .compact = sq_compact,
    .queue = sq_queue,
    .queue_depth = sq_queue_depth,
    .blob_has = sq_blob_has,
    .blob_put = sq_blob_put,
    .blob_get = sq_blob_get,
    .blob_drop_unused = sq_blob_drop_unused,
    .audit_last = sq_audit_last,
    .audit_put = sq_audit_put,
    .audit_each = sq_audit_each,
    .walk = sq_walk,
    .team_set = sq_team_set,
    .search = sq_search,
    .index = sq_index,
    .items = sq_items,
    .audit_team = sq_audit_team,
    .audit_since = sq_audit_since,
    .sync_put = sq_sync_put,
    .sync_list = sq_sync_list,
};
