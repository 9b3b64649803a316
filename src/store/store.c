/* SPDX-License-Identifier: Apache-2.0 */
/* The store's connection: opening the database (WAL, pragmas, migrations),
 * the prepared-statement cache, the translation of SQLite errors, the write
 * transaction runner that makes several processes on one store safe, the
 * FTS catch-up and maintenance, the narrow interface search uses
 * (store-search.h), and the status summary. The schema and its migrations
 * are in schema.c, vectors and embedding in vec.c.
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
#include "util/fsx.h"

#include <assert.h>
#include <errno.h>
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
#define FTS_YIELD_MIN_ROWS 8 /* rows a yielding chunk indexes at least (~0.3 ms) */
#define MAINT_QUIET_NS (2ull * 1000 * 1000) /* a pause in writes that maintenance uses */
#define MAINT_GAP_WAIT_NS (200ull * 1000 * 1000) /* … waited for by one cx_store_maintain */
#define MAINT_FTS_PRESSING 4096 /* backlog that maintenance indexes without a pause */
#define MAINT_CHECKPOINT_NS (50ull * 1000 * 1000) /* … checkpointing this often meanwhile */
#define WAL_KEEP_BYTES (32ll * 1024 * 1024) /* a longer log is truncated in a pause */
#define WAL_RESTART_FRAMES 4096 /* a log this long (16 MiB) is made to start over */
#define DEFERRED_CHECKPOINT_PAGES 16384 /* backstop (64 MiB of WAL) likewise */

static void fts_go(sqlite3_context *ctx, int argc, sqlite3_value **argv);

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

const char *cx_store_sqlite_version(void) {
    return cx_store_sqlite_load() == 0 ? sqlite3_libversion() : "(not loaded)";
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
        /* this process's other connections first, without polling */
        if (s->gate && cx_store_gate_enter(s->gate, s->background, s->deadline_ns) != 0) {
            r = cx_error_set(CX_EBUSY,
                             "the store %s stayed busy with this process's other writes for "
                             "30 s; nothing was written, try again",
                             s->db_path);
            break;
        }
        r = exec_cached(s, SQL_BEGIN_IMMEDIATE, "starting a write");
        if (r == 0) {
            cx_store_terms_begin(s);
            r = fn(s, ctx);
            if (r == 0)
                r = cx_store_terms_flush(s);
            if (r == 0)
                r = exec_cached(s, SQL_COMMIT, "committing");
            if (r != 0 && !sqlite3_get_autocommit(s->db))
                (void)exec_cached(s, SQL_ROLLBACK, "rolling back");
            cx_store_terms_end(s, r == 0);
        }
        if (s->gate)
            cx_store_gate_leave(s->gate);
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

int cx_store_pragma_int(cx_store *s, const char *sql, int64_t *out) {
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

int cx_store_exec_sql(cx_store *s, const char *sql, const char *what) {
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

int cx_store_open(cx_store **out, const char *state_dir) {
    int r = 0;
    cx_store *s = NULL;
    if (!state_dir || !*state_dir)
        return cx_error_set(CX_EINVAL, "no state directory given for the store");
    if ((r = cx_store_sqlite_load()) != 0 || (r = cx_store_hash_load()) != 0)
        return r;
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
    cx_buf_init(&s->scratch, CX_STORE_SCRATCH_MAX);
    r = cx_fs_mkdir_p(state_dir, 0700);
    if (r)
        goto out;
    r = cx_fs_mkdir_p(s->blob_dir, 0700);
    if (r)
        goto out;

    int rc = sqlite3_open_v2(s->db_path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_PRIVATECACHE,
                             cx_store_vfs());
    if (rc != SQLITE_OK) {
        r = cx_error_set(CX_EIO, "cannot open %s: %s", s->db_path,
                         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_handler(s->db, on_busy, s);
    if ((r = cx_text_stemmer_load()) != 0) /* the tokenizer's; says what is missing */
        goto out;
    if ((rc = cx_store_register_sqlite(s->db)) != SQLITE_OK) {
        r = rc == SQLITE_ERROR && !cx_text_fts5_api(s->db)
                ? cx_error_set(CX_EFAIL, "this SQLite has no FTS5; the store needs it")
                : cx_store_sqlerr(s, rc, "registering the cortex tokenizer");
        goto out;
    }
    rc = sqlite3_create_function(s->db, "cx_fts_go", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, s,
                                 fts_go, NULL, NULL);
    if (rc != SQLITE_OK) {
        r = cx_store_sqlerr(s, rc, "registering cx_fts_go");
        goto out;
    }
    s->fts_lag = CX_STORE_FTS_LAG;
    s->fts_chunk = FTS_CHUNK;
    if ((r = cx_store_terms_open(s)))
        goto out;

    r = enable_wal(s);
    if (r)
        goto out;
    r = cx_store_gate_get(s->db_path, &s->gate);
    if (r)
        goto out;
    /* NORMAL: see the file comment. No mmap and a bounded page cache keep
     * the resident size small even at 100k items. */
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-%d;"
             "PRAGMA mmap_size=0; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=%d;",
             CACHE_KIB, 32 * 1024 * 1024);
    r = cx_store_exec_sql(s, pragmas, "configuring the connection");
    if (r)
        goto out;
    r = cx_schema_migrate(s);
    if (r)
        goto out;
    /* an index of another tokenizer is emptied here and refilled like any
     * backlog (the engine does not log; status shows the backlog) */
    bool rebuilt = false;
    r = cx_schema_tokenizer(s, &rebuilt);
    if (r)
        goto out;
    r = cx_embed_builtin_new(&s->builtin, 0);
    if (r)
        goto out;
    r = cx_vec_builtin_model(s, s->builtin, &s->builtin_model);
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
    cx_store_terms_free(s);
    cx_buf_free(&s->scratch);
    if (s->db)
        sqlite3_close(s->db);
    cx_store_gate_put(s->gate);
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
/* the same in rid order with fts_go() as the last filter (see fts_chunk_tx) */
static const char SQL_FTS_INDEX_BG[] =
    "INSERT INTO items_fts(rowid, title, body, tags)"
    " SELECT rid, title, body, tags FROM items WHERE rid > ?1 AND rid <= ?2 AND cx_fts_go(rid)";
static const char SQL_FTS_INDEX_CURATED[] =
    "INSERT INTO items_curated_fts(rowid, title, body, tags)"
    " SELECT rid, title, body, tags FROM items WHERE rid > ?1 AND rid <= ?2"
    " AND kind IN ('draft', 'thread', 'artifact')";
static const char SQL_FTS_MARK[] = "UPDATE fts_state SET indexed_rid = ?1";
/* the rid that ends a chunk of ?2 rows after ?1 (?3, the last, when fewer
 * are left): chunks count rows, not row ids, which may jump */
static const char SQL_FTS_CHUNK_END[] =
    "SELECT coalesce((SELECT rid FROM items WHERE rid > ?1 ORDER BY rid LIMIT 1 OFFSET ?2 - 1),"
    " ?3)";

/* cx_fts_go(rid): true while the background chunk may go on. It says
 * false from the first row after a foreground writer queued (never before
 * the chunk has FTS_YIELD_MIN_ROWS rows, so that each commit's fixed costs
 * are shared by a few rows and chunks make progress), and false for every
 * row after that, so the rows indexed are a prefix of the chunk ending at
 * s->fts_go_last. */
static void fts_go(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    cx_store *s = sqlite3_user_data(ctx);
    if (!s->fts_go_stop && s->fts_go_rows >= FTS_YIELD_MIN_ROWS && s->gate && cx_store_gate_wanted(s->gate))
        s->fts_go_stop = true;
    if (!s->fts_go_stop) {
        s->fts_go_last = sqlite3_value_int64(argv[0]);
        s->fts_go_rows++;
    }
    sqlite3_result_int(ctx, !s->fts_go_stop);
}

/* The two numbers the one-row statement `sql` (static) gives. */
static int fts_numbers(cx_store *s, const char *sql, int64_t *a, int64_t *b) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *a = sqlite3_column_int64(st, 0);
        *b = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(s, rc, "reading the search index state");
}

static int fts_state(cx_store *s, int64_t *indexed, int64_t *max) {
    return fts_numbers(s, SQL_FTS_STATE, indexed, max);
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
    int64_t hi = max;
    sqlite3_stmt *st;
    if (max - indexed > s->fts_chunk) {
        if ((r = cx_store_prepare(s, SQL_FTS_CHUNK_END, &st)))
            return r;
        sqlite3_bind_int64(st, 1, indexed);
        sqlite3_bind_int64(st, 2, s->fts_chunk);
        sqlite3_bind_int64(st, 3, max);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            hi = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return cx_store_sqlerr(s, rc, "updating the search index");
    }
    /* A yielding (background) chunk ends early, after the row being indexed,
     * when a write of this process waits for its turn (gate.h): fts_go()
     * stops the SELECT. One statement all the same, so FTS5 flushes once
     * per chunk (it flushes at every statement's savepoint). */
    s->fts_go_last = indexed;
    s->fts_go_rows = 0;
    s->fts_go_stop = false;
    if ((r = cx_store_prepare(s, s->fts_yield ? SQL_FTS_INDEX_BG : SQL_FTS_INDEX, &st)))
        return r;
    sqlite3_bind_int64(st, 1, indexed);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")))
        return r;
    if (s->fts_go_stop)
        hi = s->fts_go_last; /* the rows after it wait for the next chunk */
    if ((r = cx_store_prepare(s, SQL_FTS_INDEX_CURATED, &st)))
        return r;
    sqlite3_bind_int64(st, 1, indexed);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")))
        return r;
    if ((r = cx_store_prepare(s, SQL_FTS_MARK, &st)))
        return r;
    sqlite3_bind_int64(st, 1, hi);
    if ((r = cx_store_exec_stmt(s, st, "updating the search index")) ||
        (r = cx_store_lengths_indexed(s, indexed + 1, hi)))
        return r;
    *done = hi >= max;
    return 0;
}

static const char SQL_FTS_GENERATION[] = "SELECT indexed_rid, edits FROM fts_state";

int cx_store_fts_generation(cx_store *s, int64_t *indexed, int64_t *edits) {
    return fts_numbers(s, SQL_FTS_GENERATION, indexed, edits);
}

static const char SQL_FTS_INDEXED[] = "SELECT indexed_rid FROM fts_state";

int cx_store_fts_behind(cx_store *s, int64_t max_rid, bool *behind) {
    sqlite3_stmt *st;
    *behind = false;
    int r = cx_store_prepare(s, SQL_FTS_INDEXED, &st);
    if (r)
        return r;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *behind = max_rid - sqlite3_column_int64(st, 0) > s->fts_lag;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : cx_store_sqlerr(s, rc, "reading the search index state");
}

int cx_store_fts_backlog(cx_store *s, int64_t *rows) {
    int64_t indexed = 0, max = 0;
    int r = fts_state(s, &indexed, &max);
    *rows = r == 0 && max > indexed ? max - indexed : 0;
    return r;
}

int cx_store_fts_sync(cx_store *s, int64_t lag_ok) {
    int64_t backlog = 0;
    int r = cx_store_fts_backlog(s, &backlog);
    if (r || backlog <= lag_ok)
        return r;
    bool done = false;
    while (!done && r == 0)
        r = cx_store_write(s, fts_chunk_tx, &done);
    return r;
}

/* ---- background maintenance ---- */

int cx_store_defer_maintenance(cx_store *s) {
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%d; PRAGMA journal_size_limit=-1",
             DEFERRED_CHECKPOINT_PAGES);
    int r = cx_store_exec_sql(s, sql, "configuring checkpoints");
    if (r == 0)
        s->fts_lag = DEFERRED_FTS_LAG;
    return r;
}

/* Indexes the backlog in chunks, in the gaps between this process's other
 * writes (gate.h): a chunk starts once they have paused for MAINT_QUIET_NS
 * and ends early when one queues. Past MAINT_FTS_PRESSING rows of backlog
 * (writes that never pause) chunks start without a gap and run whole, so
 * the backlog a search must index first stays bounded. *no_gap when no
 * gap came by `until`: the next call goes on. */
static int maintain_fts(cx_store *s, uint64_t until, bool *no_gap) {
    for (;;) {
        int64_t indexed = 0, max = 0;
        int r = fts_state(s, &indexed, &max);
        if (r || indexed >= max)
            return r;
        bool pressing = max - indexed > MAINT_FTS_PRESSING;
        if (!pressing && s->gate && !cx_store_gate_quiet(s->gate, MAINT_QUIET_NS, until)) {
            *no_gap = true;
            return 0;
        }
        s->fts_yield = !pressing;
        bool done = false;
        if ((r = cx_store_write(s, fts_chunk_tx, &done)) || done)
            return r;
    }
}

/* PASSIVE copies what it can without waiting for, or blocking, anyone.
 * But writes that never pause append while it runs, so the log is never
 * all copied when the next write begins, which is when SQLite starts it
 * over: it grows until a writer's automatic checkpoint copies and syncs
 * it inside an agent's call (25-50 ms measured). So with a long log, the
 * frames that came meanwhile are copied while this process's writers wait
 * at the gate (a few ms), and the next write starts the log over. */
static int checkpoint(cx_store *s) {
    int n_log = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &n_log, NULL);
    if (rc == SQLITE_OK && n_log >= WAL_RESTART_FRAMES && s->gate &&
        cx_store_gate_enter(s->gate, true, cx_clock_mono_ns() + MAINT_CHECKPOINT_NS) == 0) {
        rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        cx_store_gate_leave(s->gate);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        return cx_store_sqlerr(s, rc, "checkpointing the write-ahead log");
    return 0;
}

/* cortexd's connections never truncate the log themselves: SQLite does it
 * in the first commit after the log starts over, with an ftruncate() of
 * tens of MiB inside an agent's call (25-130 ms measured). Here, in a
 * pause of this process's writes, a log file past WAL_KEEP_BYTES is
 * copied and truncated to nothing while they wait at the gate (50 ms at
 * most; a busy store is left for the next pause). */
static int shrink_wal(cx_store *s) {
    char wal[4096];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", s->db_path);
    if (!s->gate || stat(wal, &st) != 0 || st.st_size <= WAL_KEEP_BYTES)
        return 0;
    uint64_t now = cx_clock_mono_ns();
    if (!cx_store_gate_quiet(s->gate, MAINT_QUIET_NS, now) ||
        cx_store_gate_enter(s->gate, true, now + MAINT_CHECKPOINT_NS) != 0)
        return 0;
    s->deadline_ns = now + MAINT_CHECKPOINT_NS; /* bounds the busy handler */
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    s->deadline_ns = 0;
    cx_store_gate_leave(s->gate);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
        return cx_store_sqlerr(s, rc, "truncating the write-ahead log");
    return 0;
}

bool cx_store_maintain_busy(const cx_store *s) {
    return s->maint_busy;
}

int cx_store_maintain(cx_store *s) {
    /* Checkpoints happen here, outside any write, where they keep no
     * writer waiting; not in a commit of ours (the automatic one would,
     * fsyncs and all, while this process's writers queue at the gate). */
    if (!s->maint_ckpt_off) {
        int r = cx_store_exec_sql(s, "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=-1",
                                  "configuring checkpoints");
        if (r)
            return r;
        s->maint_ckpt_off = true;
    }
    /* While writes come without a pause, checkpoint every
     * MAINT_CHECKPOINT_NS of the wait for one: an observe appends about
     * 11 pages to the log, and a log that reaches a writer's automatic
     * checkpoint (DEFERRED_CHECKPOINT_PAGES) is copied and synced inside an
     * agent's call (100-200 ms measured). */
    uint64_t start = cx_clock_mono_ns(), until = start + MAINT_GAP_WAIT_NS;
    int r;
    for (;;) {
        uint64_t now = cx_clock_mono_ns();
        uint64_t step = now + MAINT_CHECKPOINT_NS < until ? now + MAINT_CHECKPOINT_NS : until;
        bool no_gap = false;
        s->fts_chunk = MAINT_FTS_CHUNK;
        s->background = true;
        r = maintain_fts(s, step, &no_gap);
        s->background = false;
        s->fts_yield = false;
        s->fts_chunk = FTS_CHUNK;
        if (r || (r = checkpoint(s)) || !no_gap || cx_clock_mono_ns() >= until) {
            s->maint_busy = r == 0 && no_gap;
            break;
        }
    }
    /* the stored row lengths an edit left behind, a block at a time while
     * this process's writes pause */
    s->background = true;
    for (bool more = true; r == 0 && more && cx_clock_mono_ns() < until;)
        r = cx_store_lengths_fill(s, MAINT_QUIET_NS, until, &more);
    s->background = false;
    if (r == 0)
        r = shrink_wal(s);
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
    " CASE WHEN m.id = ?1 THEN (SELECT count(*) FROM builtin_vectors)"
    "  ELSE (SELECT count(*) FROM vectors v WHERE v.model = m.id) END,"
    " (SELECT count(*) FROM embed_queue q WHERE q.model = m.id)"
    " + CASE WHEN m.id = ?1 THEN (SELECT count(*) FROM items WHERE sig IS NULL)"
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
    /* every kind an agent's work can be, at zero; subcortexes are not counted */
    for (int k = 0; k < CX_KIND_COUNT; k++)
        if (k != CX_KIND_SUBCORTEX)
            json_object_set_new(items, cx_kind_name((cx_kind)k), json_integer(0));
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
