/* SPDX-License-Identifier: Apache-2.0 */
/* The store's connection: opening the database (WAL, pragmas, migrations),
 * the prepared-statement cache, the translation of SQLite errors, the write
 * transaction runner that makes several processes on one store safe, and
 * the status summary.
 *
 * Durability: WAL with synchronous=NORMAL. A commit is in the WAL (in the
 * OS page cache) before it returns, so a process crash, kill -9 included,
 * loses nothing acknowledged and never corrupts the database. Only an OS
 * crash or power loss can lose the last transactions before a checkpoint
 * (never corrupting the file); that is the usual trade for a local cache
 * that the core also holds, and it saves an fsync on every write. */
#include "store/store-internal.h"

#include "text/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"
#include "util/fsx.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TOTAL_NS (30ull * 1000 * 1000 * 1000)
#define CACHE_KIB 8000 /* page cache per connection: keeps RSS small */
#define FTS_CHUNK 4000 /* rows indexed per transaction by a foreground catch-up */
#define MAINT_FTS_CHUNK 256 /* … by cx_store_maintain, so writers barely wait */
#define DEFERRED_FTS_LAG 16384 /* backstop when a maintainer indexes */
#define DEFERRED_CHECKPOINT_PAGES 16384 /* backstop (64 MiB of WAL) likewise */

static int model_id_create(cx_store *s, cx_embedder *e, int64_t *out);

/* The triggers that keep already indexed rows of both FTS indexes in step
 * with the items table; versions 1 and 2 create the same ones. */
#define SQL_TRIGGER_FTS_DELETE \
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items" \
    "  WHEN old.rid <= (SELECT indexed_rid FROM fts_state) BEGIN" \
    "  INSERT INTO items_fts(items_fts, rowid, title, body, tags)" \
    "    VALUES ('delete', old.rid, old.title, old.body, old.tags);" \
    "  INSERT INTO items_curated_fts(items_curated_fts, rowid, title, body, tags)" \
    "    SELECT 'delete', old.rid, old.title, old.body, old.tags" \
    "    WHERE old.kind IN ('draft', 'thread', 'artifact');" \
    "END"

#define SQL_TRIGGER_FTS_UPDATE \
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF title, body, tags ON items" \
    "  WHEN old.rid <= (SELECT indexed_rid FROM fts_state) BEGIN" \
    "  INSERT INTO items_fts(items_fts, rowid, title, body, tags)" \
    "    VALUES ('delete', old.rid, old.title, old.body, old.tags);" \
    "  INSERT INTO items_fts(rowid, title, body, tags)" \
    "    VALUES (new.rid, new.title, new.body, new.tags);" \
    "  INSERT INTO items_curated_fts(items_curated_fts, rowid, title, body, tags)" \
    "    SELECT 'delete', old.rid, old.title, old.body, old.tags" \
    "    WHERE old.kind IN ('draft', 'thread', 'artifact');" \
    "  INSERT INTO items_curated_fts(rowid, title, body, tags)" \
    "    SELECT new.rid, new.title, new.body, new.tags" \
    "    WHERE new.kind IN ('draft', 'thread', 'artifact');" \
    "END"

/* ---- migrations ----
 * Each entry moves the schema from version i to i+1. They run in one write
 * transaction at open, so two processes opening a fresh store at the same
 * time serialise on the write lock and the second finds the work done. */
static const char *const schema_v1[] = {
    "CREATE TABLE items ("
    "  rid INTEGER PRIMARY KEY AUTOINCREMENT," /* local row id for FTS, never reused */
    "  id TEXT NOT NULL UNIQUE,"       /* ULID */
    "  kind TEXT NOT NULL CHECK (kind IN ('observation','draft','thread','comment',"
    "    'artifact','subcortex')),"
    "  status TEXT NOT NULL,"
    "  subcortex TEXT NOT NULL,"
    "  title TEXT NOT NULL DEFAULT '',"
    "  body TEXT NOT NULL DEFAULT '',"
    "  tags TEXT NOT NULL DEFAULT '[]',"
    "  files TEXT NOT NULL DEFAULT '[]',"
    "  evidence TEXT NOT NULL DEFAULT '[]',"
    "  author TEXT,"
    "  agent TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  server_seq INTEGER,"
    "  visibility TEXT NOT NULL DEFAULT 'shared' CHECK (visibility IN ('shared','private')),"
    "  parent_id TEXT REFERENCES items(id),"
    "  content_hash TEXT,"
    "  seen INTEGER NOT NULL DEFAULT 1,"
    "  review TEXT,"
    "  sync_rejected TEXT"             /* the core's reason, kept on the item */
    ") STRICT",
    /* dedupe of observations by normalised text; a private note and a
     * shared one with the same text stay two items, so that sharing a text
     * is never swallowed by a private copy */
    "CREATE UNIQUE INDEX items_observation_hash ON items(content_hash, visibility)"
    "  WHERE kind = 'observation'",
    /* one artifact per name */
    "CREATE UNIQUE INDEX items_artifact_name ON items(title) WHERE kind = 'artifact'",
    "CREATE INDEX items_updated ON items(updated_at)",
    "CREATE INDEX items_parent ON items(parent_id) WHERE parent_id IS NOT NULL",
    "CREATE INDEX items_review_queue ON items(created_at) WHERE kind = 'draft'"
    "  AND status IN ('pending','changes_requested')",
    "CREATE TABLE blobs ("
    "  sha256 TEXT PRIMARY KEY,"
    "  size INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  uploaded INTEGER NOT NULL DEFAULT 0"
    ") STRICT",
    "CREATE TABLE artifact_versions ("
    "  artifact_id TEXT NOT NULL REFERENCES items(id),"
    "  version INTEGER NOT NULL CHECK (version >= 1),"
    "  sha256 TEXT NOT NULL REFERENCES blobs(sha256),"
    "  size INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  source_path TEXT,"
    "  author TEXT,"
    "  agent TEXT,"
    "  PRIMARY KEY (artifact_id, version)"
    ") STRICT",
    "CREATE TABLE reviews ("
    "  rid INTEGER PRIMARY KEY,"
    "  item_id TEXT NOT NULL REFERENCES items(id),"
    "  decision TEXT NOT NULL,"
    "  reason TEXT,"
    "  reviewer TEXT,"
    "  agent TEXT,"
    "  at INTEGER NOT NULL"
    ") STRICT",
    "CREATE INDEX reviews_item ON reviews(item_id)",
    "CREATE TABLE outbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  op_id TEXT NOT NULL UNIQUE,"
    "  op TEXT NOT NULL,"
    "  item_id TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  rejected_reason TEXT"
    ") STRICT",
    /* sync cursor and other small state */
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, body, tags, content='items',"
    "  content_rowid='rid', tokenize='unicode61 remove_diacritics 2')",
    /* `rank` is BM25 with the title weighted over tags over body */
    "INSERT INTO items_fts(items_fts, rank) VALUES('rank', 'bm25(4.0, 1.0, 2.0)')",
    /* The curated items (drafts, threads, artifacts: few, and what a team
     * trusts most) again, so that search can rank all of them even when a
     * query matches too many notes to score every one. */
    "CREATE VIRTUAL TABLE items_curated_fts USING fts5(title, body, tags, content='items',"
    "  content_rowid='rid', tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO items_curated_fts(items_curated_fts, rank) VALUES('rank', 'bm25(4.0, 1.0, 2.0)')",
    /* Both indexes follow the items table lazily (see cx_store_fts_sync):
     * rows up to fts_state.indexed_rid are in them. Changes to indexed rows
     * are applied at once by these triggers; later rows are indexed with
     * whatever content they have when their turn comes. An item's kind
     * only ever moves within the curated kinds (draft -> thread). */
    "CREATE TABLE fts_state (k INTEGER PRIMARY KEY CHECK (k = 0),"
    "  indexed_rid INTEGER NOT NULL) STRICT",
    "INSERT INTO fts_state VALUES (0, 0)",
    SQL_TRIGGER_FTS_DELETE,
    /* only when indexed text changes: status, seen and review updates do
     * not touch the indexes */
    SQL_TRIGGER_FTS_UPDATE,
    NULL,
};

/* Version 2: identifier-aware keyword search, provenance, vectors.
 * Both FTS indexes are rebuilt with the "cortex" tokenizer (registered on
 * every connection, see the tokenizer below); like any backlog they are
 * filled lazily (fts_state goes back to 0). Old items get their built-in
 * vectors from cx_store_embed_pending() (items_novec lists them). */
static const char *const schema_v2[] = {
    "DROP TRIGGER items_fts_delete",
    "DROP TRIGGER items_fts_update",
    "DROP TABLE items_fts",
    "DROP TABLE items_curated_fts",
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, body, tags, content='items',"
    "  content_rowid='rid', tokenize='cortex')",
    "INSERT INTO items_fts(items_fts, rank) VALUES('rank', 'bm25(4.0, 1.0, 2.0)')",
    "CREATE VIRTUAL TABLE items_curated_fts USING fts5(title, body, tags, content='items',"
    "  content_rowid='rid', tokenize='cortex')",
    "INSERT INTO items_curated_fts(items_curated_fts, rank) VALUES('rank', 'bm25(4.0, 1.0, 2.0)')",
    "UPDATE fts_state SET indexed_rid = 0",
    SQL_TRIGGER_FTS_DELETE,
    SQL_TRIGGER_FTS_UPDATE,
    /* where an item came from (repository, commit, files and blob ids), as
     * the caller gave it */
    "ALTER TABLE items ADD COLUMN provenance TEXT",
    /* near-duplicate folding (see cx_item_fold_key): candidates are the
     * newest observations with the same key, read from the index alone
     * with their built-in vectors' sign bits */
    "ALTER TABLE items ADD COLUMN fold_key INTEGER",
    "ALTER TABLE items ADD COLUMN sig INTEGER",
    "UPDATE items SET fold_key = cx_fold_key(visibility, subcortex, files, provenance, title,"
    "  body) WHERE kind = 'observation'",
    "CREATE INDEX items_fold ON items(fold_key, rid, sig) WHERE kind = 'observation'",
    /* The built-in vector lives in the item's row (int8, and its scale), so
     * that writing it costs an observe no page of another table. A search
     * connection picks up new rows by rid; vec_log lists items whose vector
     * was made or changed after they were written (old stores, new texts). */
    "ALTER TABLE items ADD COLUMN vec BLOB",
    "ALTER TABLE items ADD COLUMN vec_scale REAL",
    /* items still without one (from before vectors, or written by a path
     * that does not embed): empty in the usual case, so free to keep */
    "CREATE INDEX items_novec ON items(rid) WHERE vec IS NULL",
    "CREATE TABLE vec_log (seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL) STRICT",
    /* one row per embedding model ever used: covered_rid is how far
     * cx_store_embed_pending has queued items for it */
    "CREATE TABLE embed_models ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  dim INTEGER NOT NULL DEFAULT 0,"
    "  covered_rid INTEGER NOT NULL DEFAULT 0"
    ") STRICT",
    /* vectors of the other models, int8 with a scale; seq only grows, so
     * that a search connection picks up what was written since it loaded
     * (AUTOINCREMENT: a replaced vector never gets an old seq back) */
    "CREATE TABLE vectors ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  model INTEGER NOT NULL REFERENCES embed_models(id),"
    "  rid INTEGER NOT NULL,"
    "  scale REAL NOT NULL,"
    "  v BLOB NOT NULL"
    ") STRICT",
    "CREATE UNIQUE INDEX vectors_key ON vectors(model, rid)",
    /* items whose vector of a model must be (re)made; gen grows when the
     * text changes again, so that a vector made from the old text does not
     * take the row off the queue */
    "CREATE TABLE embed_queue ("
    "  model INTEGER NOT NULL,"
    "  rid INTEGER NOT NULL,"
    "  gen INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (model, rid)"
    ") WITHOUT ROWID, STRICT",
    "CREATE TRIGGER items_vec_delete AFTER DELETE ON items BEGIN"
    "  DELETE FROM vectors WHERE model IN (SELECT id FROM embed_models) AND rid = old.rid;"
    "  DELETE FROM embed_queue WHERE model IN (SELECT id FROM embed_models) AND rid = old.rid;"
    "END",
    "CREATE TRIGGER items_vec_update AFTER UPDATE OF title, body ON items BEGIN"
    "  INSERT INTO embed_queue (model, rid) SELECT id, new.rid FROM embed_models WHERE true"
    "    ON CONFLICT (model, rid) DO UPDATE SET gen = gen + 1;"
    "END",
    NULL,
};

static const char *const *const migrations[] = {
    schema_v1, /* 0 -> 1 */
    schema_v2, /* 1 -> 2 */
};
_Static_assert(sizeof migrations / sizeof migrations[0] == CX_STORE_SCHEMA_VERSION,
               "one migration per schema version");

sqlite3 *cx_store_sqlite(cx_store *s) {
    return s->db;
}

void *cx_store_search_ext(cx_store *s) {
    return s->search.ptr;
}

void cx_store_search_ext_set(cx_store *s, void *ptr, void (*free_fn)(void *ptr)) {
    if (s->search.free_fn && s->search.ptr != ptr)
        s->search.free_fn(s->search.ptr);
    s->search.ptr = ptr;
    s->search.free_fn = free_fn;
}

cx_embedder *cx_store_builtin_embedder(cx_store *s) {
    return s->builtin;
}

int64_t cx_store_builtin_model(cx_store *s) {
    return s->builtin_model;
}

cx_embedder *cx_store_embedder(cx_store *s) {
    return s->model;
}

int64_t cx_store_embedder_model(cx_store *s) {
    return s->model_id;
}

const char *cx_store_dir(const cx_store *s) {
    return s->dir;
}

const char *cx_store_db_path(const cx_store *s) {
    return s->db_path;
}

int cx_store_sqlerr(cx_store *s, int rc, const char *what) {
    int base = rc & 0xff;
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    switch (base) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return cx_error_set(CX_EBUSY, "%s: the database is locked by another process", what);
    case SQLITE_NOMEM:
        return cx_error_set(CX_ENOMEM, "%s: out of memory", what);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
        return cx_error_set(CX_EIO, "%s: %s (database %s)", what, msg,
                            s && s->db_path ? s->db_path : "?");
    default:
        return cx_error_set(CX_EFAIL, "%s: %s", what, msg);
    }
}

int cx_store_prepare(cx_store *s, const char *sql, sqlite3_stmt **out) {
    for (size_t i = 0; i < s->nstmts; i++) {
        if (s->stmts[i].sql == sql) {
            sqlite3_stmt *st = s->stmts[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            *out = st;
            return 0;
        }
    }
    assert(s->nstmts < CX_STORE_STMT_CACHE);
    if (s->nstmts >= CX_STORE_STMT_CACHE)
        return cx_error_set(CX_EFAIL, "internal: statement cache full");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return cx_store_sqlerr(s, rc, "preparing a statement");
    s->stmts[s->nstmts].sql = sql;
    s->stmts[s->nstmts].stmt = st;
    s->nstmts++;
    *out = st;
    return 0;
}

int cx_store_exec_stmt(cx_store *s, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = cx_store_sqlerr(s, rc, what);
    sqlite3_reset(st);
    return r;
}

int cx_store_bind_text(sqlite3_stmt *st, int i, const char *v) {
    if (!v)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static int exec_cached(cx_store *s, const char *sql, const char *what) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    return cx_store_exec_stmt(s, st, what);
}

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";

static void nap_ns(uint64_t ns) {
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned next_rand(cx_store *s) {
    s->rng = s->rng * 1103515245u + 12345u;
    return s->rng >> 8;
}

/* SQLite calls this while another connection holds a lock we need. Short
 * sleeps first (writes take tens of microseconds), growing to 2 ms, with
 * jitter so that waiting processes do not move in step. */
static int on_busy(void *ud, int count) {
    cx_store *s = ud;
    uint64_t now = cx_clock_mono_ns();
    if (count == 0)
        s->busy_since_ns = now;
    uint64_t limit = s->deadline_ns ? s->deadline_ns : s->busy_since_ns + BUSY_TOTAL_NS;
    if (now >= limit)
        return 0;
    uint64_t base = 20000ull << (count < 7 ? count : 7); /* 20 µs .. 2.56 ms */
    if (base > 2000000)
        base = 2000000;
    nap_ns(base / 2 + next_rand(s) % (base / 2 + 1));
    return 1;
}

int cx_store_write(cx_store *s, cx_store_tx_fn fn, void *ctx) {
    uint64_t start = cx_clock_mono_ns();
    s->deadline_ns = start + BUSY_TOTAL_NS;
    int r;
    for (unsigned attempt = 0;; attempt++) {
        r = exec_cached(s, SQL_BEGIN_IMMEDIATE, "starting a write");
        if (r == 0) {
            r = fn(s, ctx);
            if (r == 0)
                r = exec_cached(s, SQL_COMMIT, "committing");
            if (r != 0 && !sqlite3_get_autocommit(s->db))
                (void)exec_cached(s, SQL_ROLLBACK, "rolling back");
        }
        if (r != CX_EBUSY)
            break;
        if (cx_clock_mono_ns() >= s->deadline_ns) {
            r = cx_error_set(CX_EBUSY,
                             "the store %s stayed locked by other processes for 30 s; "
                             "nothing was written, try again",
                             s->db_path);
            break;
        }
        uint64_t cap = 100000ull << (attempt < 6 ? attempt : 6); /* up to 6.4 ms */
        nap_ns(next_rand(s) % cap);
    }
    s->deadline_ns = 0;
    return r;
}

int cx_store_read_begin(cx_store *s) {
    return exec_cached(s, SQL_BEGIN, "starting a read");
}

void cx_store_read_end(cx_store *s) {
    if (!sqlite3_get_autocommit(s->db))
        (void)exec_cached(s, SQL_COMMIT, "ending a read");
}

/* ---- SQL on every connection ---- */

int cx_store_register_sqlite(sqlite3 *db) {
    int rc = cx_text_tokenizer_register(db);
    return rc == SQLITE_OK ? cx_item_register_sql(db) : rc;
}

/* ---- open ---- */

static int pragma_int(cx_store *s, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return cx_store_sqlerr(s, rc, sql);
    rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else
        r = cx_store_sqlerr(s, rc, sql);
    sqlite3_finalize(st);
    return r;
}

static int exec_sql(cx_store *s, const char *sql, const char *what) {
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    sqlite3_free(err);
    return rc == SQLITE_OK ? 0 : cx_store_sqlerr(s, rc, what);
}

/* Switching a fresh database to WAL needs an exclusive lock; another process
 * doing the same at the same moment makes us wait or retry. */
static int enable_wal(cx_store *s) {
    uint64_t deadline = cx_clock_mono_ns() + BUSY_TOTAL_NS;
    for (;;) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        bool wal = rc == SQLITE_ROW &&
                   sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (wal)
            return 0;
        int base = rc & 0xff;
        if (rc != SQLITE_ROW && base != SQLITE_BUSY && base != SQLITE_LOCKED)
            return cx_store_sqlerr(s, rc, "switching the database to WAL");
        if (cx_clock_mono_ns() >= deadline)
            return cx_error_set(CX_EBUSY, "could not switch %s to WAL mode: it stayed locked",
                                s->db_path);
        nap_ns(1000000);
    }
}

static int migrate_tx(cx_store *s, void *ctx) {
    int64_t v = 0;
    int r = pragma_int(s, "PRAGMA user_version", &v);
    if (r)
        return r;
    if (v > CX_STORE_SCHEMA_VERSION)
        return cx_error_set(CX_EFAIL,
                            "%s has schema version %lld, newer than this cortex knows (%d); "
                            "upgrade cortex",
                            s->db_path, (long long)v, CX_STORE_SCHEMA_VERSION);
    for (int64_t i = v; i < CX_STORE_SCHEMA_VERSION; i++) {
        for (const char *const *stmt = migrations[i]; *stmt; stmt++) {
            r = exec_sql(s, *stmt, "migrating the store schema");
            if (r)
                return r;
        }
    }
    if (v < CX_STORE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", CX_STORE_SCHEMA_VERSION);
        r = exec_sql(s, sql, "recording the schema version");
    }
    return r;
}

static int migrate(cx_store *s) {
    int64_t v = 0;
    int r = pragma_int(s, "PRAGMA user_version", &v);
    if (r)
        return r;
    if (v == CX_STORE_SCHEMA_VERSION)
        return 0;
    return cx_store_write(s, migrate_tx, NULL);
}

int cx_store_open(cx_store **out, const char *state_dir) {
    int r = 0;
    cx_store *s = NULL;
    if (!state_dir || !*state_dir)
        return cx_error_set(CX_EINVAL, "no state directory given for the store");
    if (sodium_init() < 0)
        return cx_error_set(CX_EFAIL, "libsodium could not be initialised");
    s = calloc(1, sizeof *s);
    if (!s)
        return CX_ENOMEM;
    s->dir = strdup(state_dir);
    s->db_path = cx_fs_join(state_dir, "cortex.db");
    s->blob_dir = cx_fs_join(state_dir, "blobs");
    if (!s->dir || !s->db_path || !s->blob_dir) {
        r = CX_ENOMEM;
        goto out;
    }
    s->rng = (unsigned)getpid() ^ (unsigned)cx_clock_mono_ns();
    r = cx_fs_mkdir_p(state_dir, 0700);
    if (r)
        goto out;
    r = cx_fs_mkdir_p(s->blob_dir, 0700);
    if (r)
        goto out;

    int rc = sqlite3_open_v2(s->db_path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_PRIVATECACHE,
                             NULL);
    if (rc != SQLITE_OK) {
        r = cx_error_set(CX_EIO, "cannot open %s: %s", s->db_path,
                         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, on_busy, s);
    if ((rc = cx_store_register_sqlite(s->db)) != SQLITE_OK) {
        r = rc == SQLITE_ERROR && !cx_text_fts5_api(s->db)
                ? cx_error_set(CX_EFAIL, "this SQLite has no FTS5; the store needs it")
                : cx_store_sqlerr(s, rc, "registering the cortex tokenizer");
        goto out;
    }
    s->fts_lag = CX_STORE_FTS_LAG;
    s->fts_chunk = FTS_CHUNK;

    r = enable_wal(s);
    if (r)
        goto out;
    /* NORMAL: see the file comment. No mmap and a bounded page cache keep
     * the resident size small even at 100k items. */
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-%d;"
             "PRAGMA mmap_size=0; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=%d;",
             CACHE_KIB, 32 * 1024 * 1024);
    r = exec_sql(s, pragmas, "configuring the connection");
    if (r)
        goto out;
    r = migrate(s);
    if (r)
        goto out;
    r = cx_embed_builtin_new(&s->builtin, 0);
    if (r)
        goto out;
    r = cx_vec_model_id(s, cx_embed_model_id(s->builtin), cx_embed_dim(s->builtin), false,
                        &s->builtin_model);
    if (r == 0 && !s->builtin_model)
        r = model_id_create(s, s->builtin, &s->builtin_model);
    if (r)
        goto out;
    *out = s;
    s = NULL;
out:
    cx_store_free(s);
    return r;
}

void cx_store_free(cx_store *s) {
    if (!s)
        return;
    if (s->search.free_fn)
        s->search.free_fn(s->search.ptr);
    for (size_t i = 0; i < s->nstmts; i++)
        sqlite3_finalize(s->stmts[i].stmt);
    if (s->db)
        sqlite3_close(s->db);
    cx_embed_free(s->builtin);
    free(s->dir);
    free(s->db_path);
    free(s->blob_dir);
    free(s);
}

/* ---- the FTS index, kept up lazily ----
 * Indexing a row inside every small write transaction costs FTS5 a segment
 * flush and merge work per commit (on SQLite 3.40 it also flushes at every
 * statement savepoint), several times the cost of the rest of an observe.
 * So writes only add rows, and the index catches up in bulk, one
 * INSERT … SELECT per chunk: before every search, and after a write once
 * the backlog passes a bound. */


static const char SQL_FTS_STATE[] =
    "SELECT (SELECT indexed_rid FROM fts_state), (SELECT coalesce(max(rid), 0) FROM items)";
static const char SQL_FTS_INDEX[] =
    "INSERT INTO items_fts(rowid, title, body, tags)"
    " SELECT rid, title, body, tags FROM items WHERE rid > ?1 AND rid <= ?2";
static const char SQL_FTS_INDEX_CURATED[] =
    "INSERT INTO items_curated_fts(rowid, title, body, tags)"
    " SELECT rid, title, body, tags FROM items WHERE rid > ?1 AND rid <= ?2"
    " AND kind IN ('draft', 'thread', 'artifact')";
static const char SQL_FTS_MARK[] = "UPDATE fts_state SET indexed_rid = ?1";

static int fts_state(cx_store *s, int64_t *indexed, int64_t *max) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_FTS_STATE, &st);
    if (r)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *indexed = sqlite3_column_int64(st, 0);
        *max = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(s, rc, "reading the search index state");
}

static int fts_chunk_tx(cx_store *s, void *ud) {
    bool *done = ud;
    int64_t indexed = 0, max = 0;
    int r = fts_state(s, &indexed, &max);
    if (r)
        return r;
    if (indexed >= max) {
        *done = true;
        return 0;
    }
    int64_t hi = max - indexed > s->fts_chunk ? indexed + s->fts_chunk : max;
    sqlite3_stmt *st;
    if ((r = cx_store_prepare(s, SQL_FTS_INDEX, &st)))
        return r;
    sqlite3_bind_int64(st, 1, indexed);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")))
        return r;
    if ((r = cx_store_prepare(s, SQL_FTS_INDEX_CURATED, &st)))
        return r;
    sqlite3_bind_int64(st, 1, indexed);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")))
        return r;
    if ((r = cx_store_prepare(s, SQL_FTS_MARK, &st)))
        return r;
    sqlite3_bind_int64(st, 1, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")))
        return r;
    *done = hi >= max;
    return 0;
}

int cx_store_fts_sync(cx_store *s, int64_t lag_ok) {
    int64_t indexed = 0, max = 0;
    int r = fts_state(s, &indexed, &max);
    if (r || max - indexed <= lag_ok)
        return r;
    bool done = false;
    while (!done && r == 0)
        r = cx_store_write(s, fts_chunk_tx, &done);
    return r;
}

/* ---- background maintenance ---- */

int cx_store_defer_maintenance(cx_store *s) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%d", DEFERRED_CHECKPOINT_PAGES);
    int r = exec_sql(s, sql, "configuring checkpoints");
    if (r == 0)
        s->fts_lag = DEFERRED_FTS_LAG;
    return r;
}

int cx_store_maintain(cx_store *s) {
    s->fts_chunk = MAINT_FTS_CHUNK;
    int r = cx_store_fts_sync(s, 0);
    s->fts_chunk = FTS_CHUNK;
    if (r)
        return r;
    /* PASSIVE copies what it can without waiting for, or blocking, anyone. */
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        return cx_store_sqlerr(s, rc, "checkpointing the write-ahead log");
    return 0;
}

/* ---- vectors ---- */

char *cx_vec_text(const char *title, const char *body) {
    size_t tl = title ? strlen(title) : 0, bl = body ? strlen(body) : 0;
    size_t n = tl + (tl ? 2 : 0) + bl;
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    size_t o = 0;
    if (tl) {
        memcpy(t, title, tl);
        memcpy(t + tl, "\n\n", 2);
        o = tl + 2;
    }
    if (bl)
        memcpy(t + o, body, bl);
    n = cx_utf8_cut(t, n, CX_STORE_EMBED_TEXT_MAX);
    t[n] = '\0';
    return t;
}

void cx_vec_quantize(const float *v, int dim, int8_t *q, float *scale) {
    float m = 0.0f;
    for (int i = 0; i < dim; i++) {
        float a = fabsf(v[i]);
        if (a > m)
            m = a;
    }
    if (!(m > 0.0f) || !isfinite(m)) {
        memset(q, 0, (size_t)dim);
        *scale = 0.0f;
        return;
    }
    float inv = 127.0f / m;
    for (int i = 0; i < dim; i++) {
        float x = v[i] * inv; /* within [-127, 127] */
        q[i] = (int8_t)(int)(x >= 0.0f ? x + 0.5f : x - 0.5f);
    }
    *scale = m / 127.0f;
}

uint64_t cx_vec_sig(const float *v, int dim) {
    uint64_t sig = 0;
    for (int i = 0; i < 64 && i < dim; i++)
        if (v[i] > 0.0f)
            sig |= 1ull << i;
    return sig;
}

int cx_vec_builtin(cx_store *s, const char *text, float *out) {
    return cx_embed_batch(s->builtin, &text, 1, out);
}

static const char SQL_VEC_PUT[] =
    "INSERT OR REPLACE INTO vectors (model, rid, scale, v)"
    " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM items WHERE rid = ?2)";
static const char SQL_VEC_PUT_BUILTIN[] =
    "UPDATE items SET vec = ?2, vec_scale = ?3, sig = ?4 WHERE rid = ?1";
static const char SQL_VEC_LOG[] = "INSERT INTO vec_log (rid) SELECT ?1 WHERE changes() > 0";
static const char SQL_VEC_DEQUEUE[] = "DELETE FROM embed_queue WHERE model = ?1 AND rid = ?2";
static const char SQL_VEC_DEQUEUE_GEN[] =
    "DELETE FROM embed_queue WHERE model = ?1 AND rid = ?2 AND gen = ?3";

/* Writes a vector (of an item that exists) and logs a built-in one. */
static int vec_write(cx_store *s, int64_t model, int64_t rid, const float *v, int dim) {
    int8_t q[CX_EMBED_MAX_DIM];
    float scale;
    sqlite3_stmt *st;
    int r;
    cx_vec_quantize(v, dim, q, &scale);
    if (model == s->builtin_model) {
        if ((r = cx_store_prepare(s, SQL_VEC_PUT_BUILTIN, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_blob(st, 2, q, dim, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, scale);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)cx_vec_sig(v, dim));
        if ((r = cx_store_exec_stmt(s, st, "storing a vector")))
            return r;
        if ((r = cx_store_prepare(s, SQL_VEC_LOG, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rid);
        return cx_store_exec_stmt(s, st, "logging a vector");
    }
    if ((r = cx_store_prepare(s, SQL_VEC_PUT, &st)))
        return r;
    sqlite3_bind_int64(st, 1, model);
    sqlite3_bind_int64(st, 2, rid);
    sqlite3_bind_double(st, 3, scale);
    sqlite3_bind_blob(st, 4, q, dim, SQLITE_STATIC);
    return cx_store_exec_stmt(s, st, "storing a vector");
}

int cx_vec_put(cx_store *s, int64_t model, int64_t rid, const float *v, int dim, unsigned flags) {
    sqlite3_stmt *st;
    int r;
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM)
        return cx_error_set(CX_EFAIL, "a vector of %d dimensions cannot be stored", dim);
    if ((r = vec_write(s, model, rid, v, dim)))
        return r;
    if (flags & CX_VEC_DEQUEUE) {
        if ((r = cx_store_prepare(s, SQL_VEC_DEQUEUE, &st)))
            return r;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int64(st, 2, rid);
        if ((r = cx_store_exec_stmt(s, st, "updating the embed queue")))
            return r;
    }
    return 0;
}

static const char SQL_MODEL_GET[] = "SELECT id, dim FROM embed_models WHERE name = ?1";
static const char SQL_MODEL_ADD[] = "INSERT INTO embed_models (name, dim) VALUES (?1, ?2)";
static const char SQL_MODEL_DIM[] = "UPDATE embed_models SET dim = ?2 WHERE id = ?1 AND dim = 0";

int cx_vec_model_id(cx_store *s, const char *name, int dim, bool create, int64_t *out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_MODEL_GET, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t id = 0, have_dim = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        have_dim = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading embedding models");
    if (id && have_dim == 0 && dim > 0 && create) {
        if ((r = cx_store_prepare(s, SQL_MODEL_DIM, &st)))
            return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, dim);
        if ((r = cx_store_exec_stmt(s, st, "recording a model's dimension")))
            return r;
    }
    if (!id && create) {
        if ((r = cx_store_prepare(s, SQL_MODEL_ADD, &st)))
            return r;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, dim > 0 ? dim : 0);
        if ((r = cx_store_exec_stmt(s, st, "recording an embedding model")))
            return r;
        id = sqlite3_last_insert_rowid(s->db);
    }
    *out = id;
    return 0;
}

typedef struct model_ctx {
    const char *name;
    int dim;
    int64_t id;
} model_ctx;

static int model_tx(cx_store *s, void *ud) {
    model_ctx *c = ud;
    return cx_vec_model_id(s, c->name, c->dim, true, &c->id);
}

/* The model's id, recorded in a write transaction when it is new. */
static int model_id_create(cx_store *s, cx_embedder *e, int64_t *out) {
    model_ctx c = {.name = cx_embed_model_id(e), .dim = cx_embed_dim(e)};
    int r = cx_vec_model_id(s, c.name, c.dim, false, &c.id);
    if (r == 0 && !c.id)
        r = cx_store_write(s, model_tx, &c);
    if (r == 0)
        *out = c.id;
    return r;
}

int cx_store_set_embedder(cx_store *s, cx_embedder *e) {
    if (!e || strcmp(cx_embed_model_id(e), cx_embed_model_id(s->builtin)) == 0) {
        s->model = NULL;
        s->model_id = 0;
        return 0;
    }
    int64_t id = 0;
    int r = model_id_create(s, e, &id);
    if (r)
        return r;
    s->model = e;
    s->model_id = id;
    return 0;
}

/* ---- embedding in batches (pending items, reindex) ---- */

#define CATCHUP_CHUNK 4096 /* rids queued per transaction by the catch-up */

typedef struct embed_batch {
    size_t n;
    int64_t rid[CX_EMBED_MAX_BATCH];
    int64_t gen[CX_EMBED_MAX_BATCH]; /* -1: not queued */
    char *text[CX_EMBED_MAX_BATCH];
    float *vec;                      /* n * dim */
    int dim;
    int64_t model;
} embed_batch;

static void batch_clear(embed_batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        free(b->text[i]);
        b->text[i] = NULL;
    }
    b->n = 0;
}

/* Reads the rows of a batch statement (rid, gen, title, body). */
static int batch_read(cx_store *s, sqlite3_stmt *st, embed_batch *b, const char *what) {
    int rc, r = 0;
    while (b->n < CX_EMBED_MAX_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t i = b->n;
        b->rid[i] = sqlite3_column_int64(st, 0);
        b->gen[i] = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
        b->text[i] = cx_vec_text((const char *)sqlite3_column_text(st, 2),
                                 (const char *)sqlite3_column_text(st, 3));
        if (!b->text[i]) {
            r = CX_ENOMEM;
            break;
        }
        b->n++;
    }
    if (r == 0 && b->n < CX_EMBED_MAX_BATCH && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, what);
    sqlite3_reset(st);
    return r;
}

/* Embeds the batch's texts (outside any transaction). */
static int batch_embed(embed_batch *b, cx_embedder *e) {
    int r = cx_embed_probe(e); /* an http embedder learns its dimension */
    if (r)
        return r;
    int dim = cx_embed_dim(e);
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM)
        return cx_error_set(CX_EFAIL, "the embedder %s has no usable dimension (%d)",
                            cx_embed_model_id(e), dim);
    if (!b->vec || b->dim != dim) {
        free(b->vec);
        b->vec = malloc(sizeof(float) * (size_t)dim * CX_EMBED_MAX_BATCH);
        if (!b->vec)
            return CX_ENOMEM;
        b->dim = dim;
    }
    return cx_embed_batch(e, (const char *const *)b->text, b->n, b->vec);
}

/* Writes the batch's vectors; a queued item is taken off the queue only
 * when its text did not change since it was read (same gen). */
static int batch_write_tx(cx_store *s, void *ud) {
    embed_batch *b = ud;
    sqlite3_stmt *st;
    int r;
    for (size_t i = 0; i < b->n; i++) {
        if ((r = vec_write(s, b->model, b->rid[i], b->vec + i * (size_t)b->dim, b->dim)))
            return r;
        if (b->gen[i] >= 0) {
            if ((r = cx_store_prepare(s, SQL_VEC_DEQUEUE_GEN, &st)))
                return r;
            sqlite3_bind_int64(st, 1, b->model);
            sqlite3_bind_int64(st, 2, b->rid[i]);
            sqlite3_bind_int64(st, 3, b->gen[i]);
            if ((r = cx_store_exec_stmt(s, st, "updating the embed queue")))
                return r;
        }
    }
    if ((r = cx_store_prepare(s, SQL_MODEL_DIM, &st)))
        return r;
    sqlite3_bind_int64(st, 1, b->model);
    sqlite3_bind_int(st, 2, b->dim);
    return cx_store_exec_stmt(s, st, "recording a model's dimension");
}

static const char SQL_COVERAGE[] =
    "SELECT covered_rid, (SELECT coalesce(max(rid), 0) FROM items) FROM embed_models"
    " WHERE id = ?1";
static const char SQL_CATCHUP[] =
    "INSERT OR IGNORE INTO embed_queue (model, rid) SELECT ?1, rid FROM items"
    " WHERE rid > ?2 AND rid <= ?3"
    " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.model = ?1 AND v.rid = items.rid)";
static const char SQL_COVERED[] = "UPDATE embed_models SET covered_rid = ?2 WHERE id = ?1";
static const char SQL_QUEUE_BATCH[] =
    "SELECT q.rid, q.gen, i.title, i.body FROM embed_queue q JOIN items i ON i.rid = q.rid"
    " WHERE q.model = ?1 ORDER BY q.rid LIMIT ?2";
static const char SQL_NOVEC_BATCH[] =
    "SELECT rid, NULL, title, body FROM items WHERE vec IS NULL ORDER BY rid LIMIT ?2";

typedef struct catchup_ctx {
    int64_t model;
    bool more; /* items remain beyond the chunk */
} catchup_ctx;

/* Queues the next chunk of items that were never queued for a model other
 * than the built-in one. */
static int catchup_tx(cx_store *s, void *ud) {
    catchup_ctx *c = ud;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_COVERAGE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    int64_t covered = 0, max = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        covered = sqlite3_column_int64(st, 0);
        max = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading embedding coverage");
    c->more = false;
    if (covered >= max)
        return 0;
    int64_t hi = max - covered > CATCHUP_CHUNK ? covered + CATCHUP_CHUNK : max;
    if ((r = cx_store_prepare(s, SQL_CATCHUP, &st)))
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    sqlite3_bind_int64(st, 2, covered);
    sqlite3_bind_int64(st, 3, hi);
    if ((r = cx_store_exec_stmt(s, st, "queueing items to embed")))
        return r;
    if ((r = cx_store_prepare(s, SQL_COVERED, &st)))
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "recording embedding coverage")))
        return r;
    c->more = hi < max;
    return 0;
}

/* True when items were added since the model's last catch-up. */
static int needs_catchup(cx_store *s, int64_t model, bool *out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_COVERAGE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, model);
    *out = false;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0) < sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : cx_store_sqlerr(s, rc, "reading coverage");
}

static int embed_pending_model(cx_store *s, cx_embedder *e, int64_t model, size_t max,
                               size_t *done) {
    embed_batch *b = calloc(1, sizeof *b);
    int r = 0;
    if (!b)
        return CX_ENOMEM;
    b->model = model;
    bool builtin = model == s->builtin_model;
    while (max == 0 || *done < max) {
        bool more = false;
        /* Items are queued for another model as far as they were written
         * (the built-in one needs no catch-up: a new item has its vector,
         * and items_novec lists those without). */
        if (!builtin && (r = needs_catchup(s, model, &more)))
            break;
        if (more) {
            catchup_ctx c = {.model = model};
            if ((r = cx_store_write(s, catchup_tx, &c)))
                break;
        }
        sqlite3_stmt *st;
        size_t want = CX_EMBED_MAX_BATCH;
        if (max && max - *done < want)
            want = max - *done;
        for (int k = 0; k < (builtin ? 2 : 1) && r == 0 && b->n == 0; k++) {
            if ((r = cx_store_prepare(s, k ? SQL_NOVEC_BATCH : SQL_QUEUE_BATCH, &st)))
                break;
            sqlite3_bind_int64(st, 1, model);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)want);
            r = batch_read(s, st, b, "reading the items to embed");
        }
        if (r || b->n == 0)
            break;
        if ((r = batch_embed(b, e)) == 0)
            r = cx_store_write(s, batch_write_tx, b);
        if (r)
            break;
        *done += b->n;
        batch_clear(b);
    }
    batch_clear(b);
    free(b->vec);
    free(b);
    return r;
}

int cx_store_embed_pending(cx_store *s, size_t max, size_t *done) {
    size_t n = 0;
    int r = embed_pending_model(s, s->builtin, s->builtin_model, max, &n);
    if (r == 0 && s->model && (max == 0 || n < max))
        r = embed_pending_model(s, s->model, s->model_id, max, &n);
    if (done)
        *done = n;
    return r;
}

static const char SQL_ITEM_COUNT[] = "SELECT count(*), coalesce(max(rid), 0) FROM items";
static const char SQL_REINDEX_BATCH[] =
    "SELECT i.rid, q.gen, i.title, i.body FROM items i"
    " LEFT JOIN embed_queue q ON q.model = ?1 AND q.rid = i.rid"
    " WHERE i.rid > ?2 AND i.rid <= ?3 ORDER BY i.rid LIMIT ?4";

int cx_store_reindex(cx_store *s, cx_embedder *e, cx_progress_fn progress, void *ud) {
    cx_embedder *emb = e ? e : s->builtin;
    embed_batch *b = NULL;
    int64_t model = 0, total = 0, max_rid = 0, last = 0;
    size_t done = 0;
    sqlite3_stmt *st;
    int r = model_id_create(s, emb, &model), rc;
    if (r)
        return r;
    if ((r = cx_store_prepare(s, SQL_ITEM_COUNT, &st)))
        return r;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        total = sqlite3_column_int64(st, 0);
        max_rid = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "counting items");
    b = calloc(1, sizeof *b);
    if (!b)
        return CX_ENOMEM;
    b->model = model;
    for (;;) {
        if ((r = cx_store_prepare(s, SQL_REINDEX_BATCH, &st)))
            break;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int64(st, 2, last);
        sqlite3_bind_int64(st, 3, max_rid);
        sqlite3_bind_int(st, 4, CX_EMBED_MAX_BATCH);
        if ((r = batch_read(s, st, b, "reading items to embed")) || b->n == 0)
            break;
        last = b->rid[b->n - 1];
        if ((r = batch_embed(b, emb)) == 0)
            r = cx_store_write(s, batch_write_tx, b);
        if (r)
            break;
        done += b->n;
        batch_clear(b);
        if (progress && progress(ud, done, (size_t)total) != 0) {
            r = cx_error_set(CX_ECANCELED, "reindexing was canceled after %zu of %lld items; "
                                           "the rest keep their vectors or stay pending",
                             done, (long long)total);
            break;
        }
    }
    if (r == 0 && max_rid > 0 && model != s->builtin_model) {
        /* everything up to max_rid has a vector now: nothing to catch up */
        catchup_ctx c = {.model = model};
        bool more = true;
        while (r == 0 && more) {
            r = cx_store_write(s, catchup_tx, &c);
            more = c.more;
        }
    }
    batch_clear(b);
    free(b->vec);
    free(b);
    return r;
}

/* ---- status ---- */

static const char SQL_COUNT_KINDS[] = "SELECT kind, count(*) FROM items GROUP BY kind";
static const char SQL_COUNT_PENDING[] =
    "SELECT count(*) FROM items WHERE kind = 'draft' AND status IN ('pending','changes_requested')";
static const char SQL_COUNT_OUTBOX[] =
    "SELECT count(*) FILTER (WHERE rejected_reason IS NULL),"
    " count(*) FILTER (WHERE rejected_reason IS NOT NULL) FROM outbox";
static const char SQL_BLOB_BYTES[] = "SELECT coalesce(sum(size), 0) FROM blobs";
static const char SQL_MODELS[] =
    "SELECT m.id, m.name, m.dim,"
    " CASE WHEN m.id = ?1 THEN (SELECT count(*) FROM items WHERE vec IS NOT NULL)"
    "  ELSE (SELECT count(*) FROM vectors v WHERE v.model = m.id) END,"
    " (SELECT count(*) FROM embed_queue q WHERE q.model = m.id)"
    " + CASE WHEN m.id = ?1 THEN (SELECT count(*) FROM items WHERE vec IS NULL)"
    "  ELSE (SELECT count(*) FROM items i WHERE i.rid > m.covered_rid AND NOT EXISTS"
    "    (SELECT 1 FROM vectors v WHERE v.model = m.id AND v.rid = i.rid)) END"
    " FROM embed_models m ORDER BY m.id";

/* {"model": the search model, "models": [{model, dim, vectors, pending}…]} */
static int embed_status(cx_store *s, json_t **out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_MODELS, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, s->builtin_model);
    json_t *arr = json_array();
    json_t *o = json_pack("{s:s}", "model", cx_embed_model_id(s->model ? s->model : s->builtin));
    if (!arr || !o) {
        json_decref(arr);
        json_decref(o);
        return CX_ENOMEM;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *m = json_pack("{s:s, s:I, s:I, s:I}", "model",
                              (const char *)sqlite3_column_text(st, 1), "dim",
                              (json_int_t)sqlite3_column_int64(st, 2), "vectors",
                              (json_int_t)sqlite3_column_int64(st, 3), "pending",
                              (json_int_t)sqlite3_column_int64(st, 4));
        if (!m || json_array_append_new(arr, m) != 0) {
            r = CX_ENOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading embedding models");
    if (r) {
        json_decref(arr);
        json_decref(o);
        return r;
    }
    json_object_set_new(o, "models", arr);
    *out = o;
    return 0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

int cx_store_status(cx_store *s, json_t **out) {
    int r = 0, rc;
    sqlite3_stmt *st = NULL;
    json_t *o = json_object(), *items = json_object(), *outbox = json_object();
    if (!o || !items || !outbox) {
        r = CX_ENOMEM;
        goto out;
    }
    r = cx_store_read_begin(s);
    if (r)
        goto out;
    static const char *const kinds[] = {"observation", "draft", "thread", "comment", "artifact"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        json_object_set_new(items, kinds[i], json_integer(0));
    int64_t total = 0;
    if ((r = cx_store_prepare(s, SQL_COUNT_KINDS, &st)))
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 1);
        json_object_set_new(items, (const char *)sqlite3_column_text(st, 0), json_integer(n));
        total += n;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        r = cx_store_sqlerr(s, rc, "counting items");
        goto out;
    }
    json_object_set_new(items, "total", json_integer(total));

    int64_t pending = 0, ob_pending = 0, ob_rejected = 0, blob_bytes = 0;
    if ((r = cx_store_prepare(s, SQL_COUNT_PENDING, &st)))
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        pending = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        r = cx_store_sqlerr(s, rc, "counting drafts");
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_COUNT_OUTBOX, &st)))
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ob_pending = sqlite3_column_int64(st, 0);
        ob_rejected = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        r = cx_store_sqlerr(s, rc, "counting the outbox");
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_BLOB_BYTES, &st)))
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        blob_bytes = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        r = cx_store_sqlerr(s, rc, "summing blobs");
        goto out;
    }
    json_t *emb = NULL;
    if ((r = embed_status(s, &emb)))
        goto out;
    json_object_set_new(o, "embeddings", emb);
    cx_store_read_end(s);

    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", s->db_path);
    json_object_set_new(o, "db_path", json_string(s->db_path));
    json_object_set_new(o, "db_bytes", json_integer(file_size(s->db_path) + file_size(wal)));
    json_object_set_new(o, "blob_bytes", json_integer(blob_bytes));
    json_object_set_new(o, "items", items);
    items = NULL;
    json_object_set_new(o, "drafts_pending", json_integer(pending));
    json_object_set_new(outbox, "pending", json_integer(ob_pending));
    json_object_set_new(outbox, "rejected", json_integer(ob_rejected));
    json_object_set_new(o, "outbox", outbox);
    outbox = NULL;
    json_object_set_new(o, "schema_version", json_integer(CX_STORE_SCHEMA_VERSION));
    json_object_set_new(o, "sqlite_version", json_string(sqlite3_libversion()));
    *out = o;
    o = NULL;
out:
    cx_store_read_end(s);
    json_decref(o);
    json_decref(items);
    json_decref(outbox);
    return r;
}
