/* SPDX-License-Identifier: Apache-2.0 */
/* The store's schema: the SQL of every version and the migrations that
 * move a database from one to the next at open. */
#include "store/store-internal.h"

#include "text/tokenizer.h"
#include "util/error.h"

#include <stdio.h>

/* The triggers that keep already indexed rows of both FTS indexes in step
 * with the items table; versions 1 and 2 create the same ones. */
#define SQL_TRIGGER_FTS_DELETE_BODY \
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items" \
    "  WHEN old.rid <= (SELECT indexed_rid FROM fts_state) BEGIN" \
    "  INSERT INTO items_fts(items_fts, rowid, title, body, tags)" \
    "    VALUES ('delete', old.rid, old.title, old.body, old.tags);" \
    "  INSERT INTO items_curated_fts(items_curated_fts, rowid, title, body, tags)" \
    "    SELECT 'delete', old.rid, old.title, old.body, old.tags" \
    "    WHERE old.kind IN ('draft', 'thread', 'artifact');"
#define SQL_TRIGGER_FTS_DELETE SQL_TRIGGER_FTS_DELETE_BODY "END"

#define SQL_TRIGGER_FTS_UPDATE_BODY \
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
    "    WHERE new.kind IN ('draft', 'thread', 'artifact');"
#define SQL_TRIGGER_FTS_UPDATE SQL_TRIGGER_FTS_UPDATE_BODY "END"

/* From version 7 the triggers also count the change (fts_state.edits):
 * a reader that keeps what the index held (search's posting cache) may
 * then extend it by the rows indexed since, as long as the count has not
 * moved; any other change to the index moves it. */
#define SQL_FTS_EDITED "  UPDATE fts_state SET edits = edits + 1;"
#define SQL_TRIGGER_FTS_DELETE_V7 SQL_TRIGGER_FTS_DELETE_BODY SQL_FTS_EDITED "END"
#define SQL_TRIGGER_FTS_UPDATE_V7 SQL_TRIGGER_FTS_UPDATE_BODY SQL_FTS_EDITED "END"

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

/* Version 3: artifacts that travel whole (see apply.c and blob.c).
 * - Names are no longer unique: an artifact is its id, and two workspaces
 *   that publish the same name before either has pulled the other's keep
 *   two artifacts; a pull never drops one for its name (it used to fail
 *   the unique index and be skipped). A publish by name adds a version to
 *   the oldest artifact of that name (cx_store_publish).
 * - Acceptance is kept per version: who accepted it and when.
 * - A blob row may describe content this machine does not hold yet (a
 *   pulled version whose bytes the sync engine fetches from the core):
 *   `present` says whether the file is there, `fetch_error` and
 *   `fetch_at` why and when the last fetch failed.
 * - Pulled observations have the content hash observe gives (apply.c). */
static const char *const schema_v3[] = {
    "DROP INDEX items_artifact_name",
    "CREATE INDEX items_artifact_name ON items(title, created_at) WHERE kind = 'artifact'",
    "ALTER TABLE artifact_versions ADD COLUMN accepted_by TEXT",
    "ALTER TABLE artifact_versions ADD COLUMN accepted_at INTEGER",
    "ALTER TABLE blobs ADD COLUMN present INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE blobs ADD COLUMN fetch_error TEXT",
    "ALTER TABLE blobs ADD COLUMN fetch_at INTEGER",
    "CREATE INDEX blobs_absent ON blobs(sha256) WHERE present = 0",
    /* Observations pulled before version 3 came without a content hash:
     * each text gets it once (the oldest row of a text; none when a shared
     * observation here has that hash already), so that observing it again
     * folds as a repeat, as it does for what is pulled from now on. */
    "CREATE TEMP TABLE v3_hash AS SELECT rid, cx_content_hash(body) AS h FROM items"
    "  WHERE kind = 'observation' AND visibility = 'shared' AND content_hash IS NULL",
    "UPDATE items SET content_hash = (SELECT h FROM v3_hash WHERE v3_hash.rid = items.rid)"
    "  WHERE rid IN (SELECT min(rid) FROM v3_hash WHERE h NOT IN (SELECT content_hash FROM items"
    "    WHERE kind = 'observation' AND visibility = 'shared' AND content_hash IS NOT NULL)"
    "    GROUP BY h)",
    "DROP TABLE v3_hash",
    NULL,
};

/* Version 4: the version of the tokenizer the FTS indexes were built with
 * (CX_TEXT_TOKENIZER_VERSION); indexes from before it was recorded are of
 * version 1. cx_schema_tokenizer rebuilds them when it differs. */
static const char *const schema_v4[] = {
    "ALTER TABLE fts_state ADD COLUMN tokenizer INTEGER NOT NULL DEFAULT 1",
    NULL,
};

/* Version 5: the typo dictionary (terms.c): the base terms of the index
 * that a misspelt query word may be corrected to. What the index holds
 * already is read from its vocabulary (fts5vocab walks the term list, not
 * the documents); rows indexed from now on add theirs as they are
 * indexed. The filter is the one terms.c applies: 4 to 64 bytes of
 * [a-z_], which also leaves out the marked stems (~) and exact forms (=). */
static const char *const schema_v5[] = {
    "CREATE TABLE IF NOT EXISTS typo_terms (term TEXT PRIMARY KEY) WITHOUT ROWID, STRICT",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.typo_v5_vocab USING fts5vocab(main, items_fts, row)",
    "INSERT OR IGNORE INTO typo_terms(term) SELECT term FROM temp.typo_v5_vocab"
    "  WHERE length(term) BETWEEN 4 AND 64 AND term NOT GLOB '*[^a-z_]*'",
    "DROP TABLE IF EXISTS temp.typo_v5_vocab",
    NULL,
};

/* Version 6: the built-in vectors move out of the items' rows into a
 * narrow table of their own. Loading the vector index (cortexd's warm-up,
 * a search connection's first search) read every wide items row, text
 * included, for 320 bytes of vector: 96 MB of pages at 100k items. The
 * narrow rows carry the item's kind and subcortex (the index's prefilter,
 * kept in step by a trigger) so that a load reads this table alone.
 * `items.sig` stays (the near-duplicate index reads it), and it is set
 * exactly when the item has a built-in vector, so "sig IS NULL" lists the
 * items still to embed (items_nosig, as items_novec did). The copy is in
 * migrate_v6 (C: it runs only where `items.vec` still holds vectors, so
 * that the step is safe to run again). items.vec and items.vec_scale stay
 * in the table, NULL: each ALTER TABLE DROP COLUMN rewrites every row
 * (2.2 s apiece at 100k items, against 0.9 s for the copy and 1.6 s for
 * clearing them, sqlite3 shell, idle machine; the whole migration took
 * 4.6 s in cortexd on a busy one), and neither frees a page without a
 * VACUUM. */
static const char *const schema_v6[] = {
    "CREATE TABLE IF NOT EXISTS builtin_vectors ("
    "  rid INTEGER PRIMARY KEY,"          /* the item's rid */
    "  kind TEXT NOT NULL,"
    "  subcortex TEXT NOT NULL,"
    "  scale REAL NOT NULL,"
    "  v BLOB NOT NULL"                    /* int8, the model's dimension */
    ") STRICT",
    "CREATE TRIGGER IF NOT EXISTS items_bvec_delete AFTER DELETE ON items BEGIN"
    "  DELETE FROM builtin_vectors WHERE rid = old.rid;"
    "END",
    "CREATE TRIGGER IF NOT EXISTS items_bvec_move AFTER UPDATE OF kind, subcortex ON items BEGIN"
    "  UPDATE builtin_vectors SET kind = new.kind, subcortex = new.subcortex"
    "    WHERE rid = new.rid;"
    "END",
    /* A cortex from before version 6 that was already running when the
     * store moved on (a background daemon during an upgrade) still writes
     * the vector into the row: moved where this version reads it, so that
     * the item is not left without a vector that its sig says it has. */
    "CREATE TRIGGER IF NOT EXISTS items_bvec_compat_insert AFTER INSERT ON items"
    "  WHEN new.vec IS NOT NULL AND new.vec_scale IS NOT NULL BEGIN"
    "  INSERT OR REPLACE INTO builtin_vectors (rid, kind, subcortex, scale, v)"
    "    VALUES (new.rid, new.kind, new.subcortex, new.vec_scale, new.vec);"
    "  UPDATE items SET vec = NULL, vec_scale = NULL WHERE rid = new.rid;"
    "END",
    "CREATE TRIGGER IF NOT EXISTS items_bvec_compat_update AFTER UPDATE OF vec ON items"
    "  WHEN new.vec IS NOT NULL AND new.vec_scale IS NOT NULL BEGIN"
    "  INSERT OR REPLACE INTO builtin_vectors (rid, kind, subcortex, scale, v)"
    "    VALUES (new.rid, new.kind, new.subcortex, new.vec_scale, new.vec);"
    "  UPDATE items SET vec = NULL, vec_scale = NULL WHERE rid = new.rid;"
    "END",
    NULL,
};

/* Version 7: fts_state.edits, the count of changes to the index other
 * than rows added in rid order (an indexed item updated or deleted, the
 * index emptied for a new tokenizer). Search keeps posting lists in memory
 * between searches (search/postings.c) and extends them by the rows
 * indexed since while the count stays the same. */
static const char *const schema_v7[] = {
    NULL, /* all in migrate_v7: the column is added only where it is missing */
};

/* Version 8: the keyword index's row lengths, a block of 4,096 row ids a
 * row as 16-bit counts, current for the rows up to `upto` while
 * fts_state.edits equals `edits` (store/lengths.c): a process's first
 * search ranks from them instead of reading FTS5's docsize table row by
 * row. */
static const char *const schema_v8[] = {
    "CREATE TABLE IF NOT EXISTS fts_lengths ("
    "  blk INTEGER PRIMARY KEY,"  /* row ids blk * 4096 ... blk * 4096 + 4095 */
    "  edits INTEGER NOT NULL,"   /* fts_state.edits when written */
    "  upto INTEGER NOT NULL,"    /* the last row id it is current for */
    "  lens BLOB NOT NULL"        /* 4096 little-endian uint16 */
    ") STRICT",
    NULL,
};

static const char *const migrate_v7_sql[] = {
    "DROP TRIGGER IF EXISTS items_fts_delete",
    "DROP TRIGGER IF EXISTS items_fts_update",
    SQL_TRIGGER_FTS_DELETE_V7,
    SQL_TRIGGER_FTS_UPDATE_V7,
    NULL,
};

static int migrate_v7(cx_store *s) {
    int64_t has = 0;
    int r = cx_store_pragma_int(s,
                                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('fts_state')"
                                " WHERE name = 'edits')",
                                &has);
    if (r == 0 && !has)
        r = cx_store_exec_sql(s, "ALTER TABLE fts_state ADD COLUMN edits INTEGER NOT NULL DEFAULT 0",
                              "counting the search index's changes");
    for (const char *const *stmt = migrate_v7_sql; r == 0 && *stmt; stmt++)
        r = cx_store_exec_sql(s, *stmt, "counting the search index's changes");
    return r;
}

static const char *const migrate_v6_sql[] = {
    "INSERT OR REPLACE INTO builtin_vectors (rid, kind, subcortex, scale, v)"
    "  SELECT rid, kind, subcortex, vec_scale, vec FROM items"
    "  WHERE vec IS NOT NULL AND vec_scale IS NOT NULL",
    /* "no vector" is "sig IS NULL" from now on */
    "UPDATE items SET sig = NULL WHERE sig IS NOT NULL AND (vec IS NULL OR vec_scale IS NULL)",
    "UPDATE items SET vec = NULL, vec_scale = NULL WHERE vec IS NOT NULL OR vec_scale IS NOT NULL",
    NULL,
};

static int migrate_v6(cx_store *s) {
    int64_t has_vec = 0;
    int r = cx_store_pragma_int(s,
                                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('items')"
                                " WHERE name = 'vec') AND EXISTS (SELECT 1 FROM items"
                                " WHERE vec IS NOT NULL OR vec_scale IS NOT NULL)",
                                &has_vec);
    for (const char *const *stmt = migrate_v6_sql; r == 0 && has_vec && *stmt; stmt++)
        r = cx_store_exec_sql(s, *stmt, "moving the built-in vectors to their own table");
    /* every new item would go into items_novec (its vec is NULL now) */
    if (r == 0)
        r = cx_store_exec_sql(s, "DROP INDEX IF EXISTS items_novec",
                              "dropping the index of items without a vector");
    if (r == 0)
        r = cx_store_exec_sql(s, "CREATE INDEX IF NOT EXISTS items_nosig ON items(rid)"
                                 " WHERE sig IS NULL", "indexing the items without a vector");
    return r;
}

static const char *const *const migrations[] = {
    schema_v1, /* 0 -> 1 */
    schema_v2, /* 1 -> 2 */
    schema_v3, /* 2 -> 3 */
    schema_v4, /* 3 -> 4 */
    schema_v5, /* 4 -> 5 */
    schema_v6, /* 5 -> 6 */
    schema_v7, /* 6 -> 7 */
    schema_v8, /* 7 -> 8 */
};
_Static_assert(sizeof migrations / sizeof migrations[0] == CX_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* What a migration does after its SQL, where SQL alone cannot say it. */
static int (*const migration_steps[])(cx_store *) = {
    NULL, NULL, NULL, NULL, NULL, migrate_v6, migrate_v7, NULL,
};
_Static_assert(sizeof migration_steps / sizeof migration_steps[0] == CX_STORE_SCHEMA_VERSION,
               "one step (or NULL) per schema version");

static int migrate_tx(cx_store *s, void *ctx) {
    int64_t v = 0;
    int r = cx_store_pragma_int(s, "PRAGMA user_version", &v);
    if (r)
        return r;
    if (v > CX_STORE_SCHEMA_VERSION)
        return cx_error_set(CX_EFAIL,
                            "%s has schema version %lld, newer than this cortex knows (%d); "
                            "upgrade cortex",
                            s->db_path, (long long)v, CX_STORE_SCHEMA_VERSION);
    for (int64_t i = v; i < CX_STORE_SCHEMA_VERSION; i++) {
        for (const char *const *stmt = migrations[i]; *stmt; stmt++) {
            r = cx_store_exec_sql(s, *stmt, "migrating the store schema");
            if (r)
                return r;
        }
        if (migration_steps[i] && (r = migration_steps[i](s)))
            return r;
    }
    if (v < CX_STORE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", CX_STORE_SCHEMA_VERSION);
        r = cx_store_exec_sql(s, sql, "recording the schema version");
    }
    return r;
}

int cx_schema_migrate(cx_store *s) {
    int64_t v = 0;
    int r = cx_store_pragma_int(s, "PRAGMA user_version", &v);
    if (r)
        return r;
    if (v == CX_STORE_SCHEMA_VERSION)
        return 0;
    return cx_store_write(s, migrate_tx, NULL);
}

/* ---- the tokenizer's version ----
 * An FTS index can only be read with the tokenizer that wrote it: a query
 * is cut into the tokens of today's tokenizer, and the index holds those of
 * the one that built it. So when fts_state.tokenizer is not
 * CX_TEXT_TOKENIZER_VERSION, both indexes are emptied and fts_state goes
 * back to 0: the rows are indexed again like any backlog, in chunks, by
 * cx_store_fts_sync (before the next search, or by background
 * maintenance). */

static int tokenizer_tx(cx_store *s, void *ctx) {
    int64_t *was = ctx;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, "SELECT tokenizer FROM fts_state", &st);
    if (r)
        return r;
    int rc = sqlite3_step(st);
    *was = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the search index state");
    if (*was == CX_TEXT_TOKENIZER_VERSION)
        return 0;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO items_fts(items_fts) VALUES('delete-all');"
             "INSERT INTO items_curated_fts(items_curated_fts) VALUES('delete-all');"
             "UPDATE fts_state SET indexed_rid = 0, tokenizer = %d, edits = edits + 1",
             CX_TEXT_TOKENIZER_VERSION);
    return cx_store_exec_sql(s, sql, "resetting the search index for a new tokenizer");
}

int cx_schema_tokenizer(cx_store *s, bool *rebuilt) {
    int64_t was = 0;
    *rebuilt = false;
    int r = cx_store_write(s, tokenizer_tx, &was);
    if (r == 0 && was != CX_TEXT_TOKENIZER_VERSION)
        *rebuilt = true;
    return r;
}
