/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite implementation of the core's storage interface (storage.h):
 * one database in WAL mode, one connection shared by the server's threads
 * under a mutex, statements prepared per call (the schema is small and the
 * statement cache of a busy server would be a later optimisation). */
#include "core/storage.h"

#include "proto/wire.h"
#include "util/error.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cx_storage {
    sqlite3 *db;
    pthread_mutex_t lock;
};

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
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema', '1');";

static int sqlerr(cx_storage *st, int rc, const char *what) {
    int code = rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? CX_EBUSY
             : rc == SQLITE_NOMEM                       ? CX_ENOMEM
                                                        : CX_EIO;
    return cx_error_set(code, "%s: %s", what, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

static int prepare(cx_storage *st, const char *sql, sqlite3_stmt **out) {
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    return rc == SQLITE_OK ? 0 : sqlerr(st, rc, "preparing a statement");
}

/* Steps a statement that returns no rows and finalizes it. */
static int exec_stmt(cx_storage *st, sqlite3_stmt *s, const char *what) {
    int rc = sqlite3_step(s);
    int r = rc == SQLITE_DONE ? 0 : sqlerr(st, rc, what);
    sqlite3_finalize(s);
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

int cx_storage_open(cx_storage **out, const char *path, int flags) {
    cx_storage *st = calloc(1, sizeof *st);
    if (!st)
        return CX_ENOMEM;
    pthread_mutex_init(&st->lock, NULL);
    int r = 0;
    if (!(flags & CX_STORAGE_CREATE) && access(path, F_OK) != 0) {
        r = cx_error_set(CX_ENOTFOUND, "no database at %s (run cortex-core init first)", path);
        goto out;
    }
    int oflags = (flags & CX_STORAGE_READONLY) ? SQLITE_OPEN_READONLY
                                               : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &st->db, oflags | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = sqlerr(st, rc, "opening the database");
        goto out;
    }
    sqlite3_busy_timeout(st->db, 10000);
    if (!(flags & CX_STORAGE_READONLY)) {
        char *err = NULL;
        rc = sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL,
                          NULL, &err);
        if (rc == SQLITE_OK && (flags & CX_STORAGE_CREATE))
            rc = sqlite3_exec(st->db, SCHEMA, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
            r = cx_error_set(CX_EIO, "setting up the database: %s", err ? err : sqlite3_errstr(rc));
            sqlite3_free(err);
            goto out;
        }
    }
out:
    if (r) {
        cx_storage_free(st);
        return r;
    }
    *out = st;
    return 0;
}

void cx_storage_free(cx_storage *st) {
    if (!st)
        return;
    sqlite3_close_v2(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int cx_storage_begin(cx_storage *st, bool write) {
    pthread_mutex_lock(&st->lock);
    int rc = sqlite3_exec(st->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int r = sqlerr(st, rc, "starting a transaction");
        pthread_mutex_unlock(&st->lock);
        return r;
    }
    return 0;
}

int cx_storage_commit(cx_storage *st) {
    int rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    int r = 0;
    if (rc != SQLITE_OK) {
        r = sqlerr(st, rc, "committing");
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&st->lock);
    return r;
}

void cx_storage_rollback(cx_storage *st) {
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&st->lock);
}

int cx_storage_end(cx_storage *st, int r) {
    if (r == 0)
        return cx_storage_commit(st);
    cx_storage_rollback(st);
    return r;
}

int cx_storage_key_put(cx_storage *st, const cx_storage_key *k) {
    sqlite3_stmt *s;
    int r = prepare(st,
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
    return exec_stmt(st, s, "storing a key");
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

int cx_storage_key_get(cx_storage *st, const char *key_id, cx_storage_key *out) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT " KEY_COLS " FROM keys WHERE key_id = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, key_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_key(s, out);
    else if (rc == SQLITE_DONE)
        r = cx_error_set(CX_ENOTFOUND, "no key %s", key_id);
    else
        r = sqlerr(st, rc, "reading a key");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_key_list(cx_storage *st, int (*fn)(void *ud, const cx_storage_key *k), void *ud) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT " KEY_COLS " FROM keys ORDER BY team, created_ms, key_id", &s);
    if (r)
        return r;
    int rc;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        cx_storage_key k;
        read_key(s, &k);
        r = fn(ud, &k);
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = sqlerr(st, rc, "listing keys");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_key_revoke(cx_storage *st, const char *key_id, int64_t now_ms) {
    cx_storage_key k;
    int r = cx_storage_key_get(st, key_id, &k);
    if (r)
        return r;
    if (k.revoked_ms)
        return cx_error_set(CX_ECONFLICT, "key %s is already revoked", key_id);
    sqlite3_stmt *s;
    if ((r = prepare(st, "UPDATE keys SET revoked_ms = ?2 WHERE key_id = ?1", &s)))
        return r;
    bind_text(s, 1, key_id);
    sqlite3_bind_int64(s, 2, now_ms > 0 ? now_ms : 1);
    return exec_stmt(st, s, "revoking a key");
}

int cx_storage_seq_next(cx_storage *st, const char *team, int64_t *seq) {
    sqlite3_stmt *s;
    int r = prepare(st,
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
        r = sqlerr(st, rc, "advancing the sequence");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_horizon(cx_storage *st, const char *team, int64_t *horizon) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT horizon FROM teams WHERE team = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc = sqlite3_step(s);
    *horizon = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(st, rc, "reading the horizon");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_seq_last(cx_storage *st, const char *team, int64_t *seq) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT seq FROM teams WHERE team = ?1", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    int rc = sqlite3_step(s);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(st, rc, "reading the sequence");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_compact(cx_storage *st, const char *team, int64_t before, int64_t *dropped) {
    sqlite3_stmt *s;
    int r = prepare(st, "DELETE FROM items WHERE team = ?1 AND deleted = 1 AND seq < ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, before);
    if ((r = exec_stmt(st, s, "dropping tombstones")))
        return r;
    *dropped = sqlite3_changes(st->db);
    if ((r = prepare(st,
                     "INSERT INTO teams(team, seq, horizon) VALUES (?1, 0, ?2)"
                     " ON CONFLICT(team) DO UPDATE SET horizon = max(horizon, ?2)",
                     &s)))
        return r;
    bind_text(s, 1, team);
    sqlite3_bind_int64(s, 2, before);
    return exec_stmt(st, s, "recording the tombstone horizon");
}

int cx_storage_op_get(cx_storage *st, const char *team, const char *op_id, uint8_t digest[32],
                      int64_t *seq) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT digest, seq FROM ops WHERE team = ?1 AND op_id = ?2", &s);
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
        r = sqlerr(st, rc, "reading an op");
    }
    sqlite3_finalize(s);
    return r;
}

int cx_storage_op_put(cx_storage *st, const char *team, const char *op_id,
                      const uint8_t digest[32], int64_t seq) {
    sqlite3_stmt *s;
    int r = prepare(st, "INSERT INTO ops(team, op_id, digest, seq) VALUES (?1, ?2, ?3, ?4)", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, op_id);
    sqlite3_bind_blob(s, 3, digest, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, seq);
    return exec_stmt(st, s, "recording an op");
}

int cx_storage_item_get(cx_storage *st, const char *team, const char *id, char **json,
                        int64_t *seq, bool *deleted) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT json, seq, deleted FROM items WHERE team = ?1 AND id = ?2", &s);
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
        r = sqlerr(st, rc, "reading an item");
    }
    sqlite3_finalize(s);
    return r;
}

int cx_storage_item_put(cx_storage *st, const char *team, const char *id, const char *kind,
                        const char *status, int64_t seq, bool deleted, const char *json) {
    sqlite3_stmt *s;
    int r = prepare(st,
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
    return exec_stmt(st, s, "writing an item");
}

int cx_storage_changes(cx_storage *st, const char *team, int64_t since, int limit,
                       int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                       void *ud) {
    sqlite3_stmt *s;
    int r = prepare(st,
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
        r = sqlerr(st, rc, "reading changes");
    sqlite3_finalize(s);
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

int cx_storage_queue(cx_storage *st, const char *team, int limit,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total) {
    sqlite3_stmt *s;
    int r = prepare(st,
                    "SELECT count(*) FROM items WHERE team = ?1 AND " AWAITING " AND deleted = 0",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_awaiting(s);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        r = sqlerr(st, rc, "counting the queue");
        sqlite3_finalize(s);
        return r;
    }
    *total = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if ((r = prepare(st,
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
        r = sqlerr(st, rc, "reading the queue");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_queue_depth(cx_storage *st, int64_t *depth) {
    sqlite3_stmt *s;
    int r = prepare(st,
                    "SELECT count(*) FROM items WHERE " AWAITING " AND deleted = 0", &s);
    if (r)
        return r;
    bind_awaiting(s);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *depth = sqlite3_column_int64(s, 0);
    else
        r = sqlerr(st, rc, "counting the queue");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_blob_has(cx_storage *st, const char *team, const char *sha, bool *has) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT 1 FROM blobs WHERE team = ?1 AND sha256 = ?2", &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    int rc = sqlite3_step(s);
    *has = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sqlerr(st, rc, "looking up a blob");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_blob_put(cx_storage *st, const char *team, const char *sha, const void *data,
                        size_t len, bool *created) {
    bool has = false;
    int r = cx_storage_blob_has(st, team, sha, &has);
    if (r)
        return r;
    *created = !has;
    if (has)
        return 0;
    sqlite3_stmt *s;
    if ((r = prepare(st, "INSERT INTO blobs(team, sha256, size, data) VALUES (?1, ?2, ?3, ?4)",
                     &s)))
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)len);
    sqlite3_bind_blob64(s, 4, len ? data : "", len, SQLITE_TRANSIENT);
    return exec_stmt(st, s, "storing a blob");
}

int cx_storage_blob_get(cx_storage *st, const char *team, const char *sha, void **data,
                        size_t *len) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT data FROM blobs WHERE team = ?1 AND sha256 = ?2", &s);
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
        r = sqlerr(st, rc, "reading a blob");
    }
    sqlite3_finalize(s);
    return r;
}

int cx_storage_blob_drop_unused(cx_storage *st, const char *team, const char *sha, bool *deleted) {
    sqlite3_stmt *s;
    int r = prepare(st,
                    "DELETE FROM blobs WHERE team = ?1 AND sha256 = ?2 AND NOT EXISTS"
                    " (SELECT 1 FROM items WHERE team = ?1 AND deleted = 0"
                    " AND instr(json, ?2) > 0)",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, team);
    bind_text(s, 2, sha);
    if ((r = exec_stmt(st, s, "dropping a blob")))
        return r;
    *deleted = sqlite3_changes(st->db) > 0;
    return 0;
}

int cx_storage_audit_last(cx_storage *st, int64_t *n, char hash[65]) {
    sqlite3_stmt *s;
    int r = prepare(st, "SELECT n, hash FROM audit ORDER BY n DESC LIMIT 1", &s);
    if (r)
        return r;
    int rc = sqlite3_step(s);
    *n = 0;
    hash[0] = '\0';
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(s, 0);
        copy_col(hash, 65, s, 1);
    } else if (rc != SQLITE_DONE) {
        r = sqlerr(st, rc, "reading the audit log");
    }
    sqlite3_finalize(s);
    return r;
}

int cx_storage_audit_put(cx_storage *st, const cx_storage_audit *a) {
    sqlite3_stmt *s;
    int r = prepare(st,
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
    return exec_stmt(st, s, "appending to the audit log");
}

static const char *col_text(sqlite3_stmt *s, int i) {
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? v : "";
}

int cx_storage_audit_each(cx_storage *st, int (*fn)(void *ud, const cx_storage_audit *a),
                          void *ud) {
    sqlite3_stmt *s;
    int r = prepare(st,
                    "SELECT n, ts_ms, team, actor, action, detail, prev, hash FROM audit ORDER BY n",
                    &s);
    if (r)
        return r;
    int rc;
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
        r = sqlerr(st, rc, "reading the audit log");
    sqlite3_finalize(s);
    return r;
}

int cx_storage_backup(cx_storage *st, const char *dest) {
    if (access(dest, F_OK) == 0)
        return cx_error_set(CX_ECONFLICT, "%s already exists; back up to a new file", dest);
    sqlite3 *out = NULL;
    int rc = sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    int r = 0;
    if (rc != SQLITE_OK) {
        r = cx_error_set(CX_EIO, "cannot create %s: %s", dest, sqlite3_errstr(rc));
        goto out;
    }
    sqlite3_backup *b = sqlite3_backup_init(out, "main", st->db, "main");
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
    if (r)
        unlink(dest);
    return r;
}
