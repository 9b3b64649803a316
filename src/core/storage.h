/* SPDX-License-Identifier: Apache-2.0 */
/* The core's storage interface: everything cortex-core keeps, behind calls
 * narrow enough that a PostgreSQL backend can implement them too. The only
 * implementation today is SQLite in WAL mode (storage.c).
 *
 * A handle is shared by the server's threads: cx_storage_begin() takes the
 * handle's lock and opens a transaction, commit/rollback end both. Every
 * other call must be made between them. Every call that touches team data
 * takes the team and filters by it; no call reads across teams. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cx_storage cx_storage;

#define CX_STORAGE_CREATE 1   /* create the schema if the file is new */
#define CX_STORAGE_READONLY 2 /* open for reading only (verify-audit, backup) */

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

typedef struct cx_storage_audit {
    int64_t n; /* 1, 2, 3 … */
    int64_t ts_ms;
    const char *team, *actor, *action, *detail; /* borrowed for the callback */
    const char *prev, *hash;                   /* 64 hex digits each */
} cx_storage_audit;

/* Opens (with CX_STORAGE_CREATE, creates) the database at path. *out is the
 * caller's, freed with cx_storage_free(). CX_ENOTFOUND, CX_EIO. */
int cx_storage_open(cx_storage **out, const char *path, int flags);
void cx_storage_free(cx_storage *st);

/* A transaction; `write` takes the write lock at once (BEGIN IMMEDIATE). */
int cx_storage_begin(cx_storage *st, bool write);
int cx_storage_commit(cx_storage *st);
void cx_storage_rollback(cx_storage *st);
/* Ends the open transaction by how the work in it went: commits when r is
 * 0 (returning the commit's result), else rolls back and returns r. */
int cx_storage_end(cx_storage *st, int r);

/* Keys. key_get: CX_ENOTFOUND when there is no such id. */
int cx_storage_key_put(cx_storage *st, const cx_storage_key *k);
int cx_storage_key_get(cx_storage *st, const char *key_id, cx_storage_key *out);
int cx_storage_key_list(cx_storage *st, int (*fn)(void *ud, const cx_storage_key *k), void *ud);
/* Sets revoked_ms on a valid key; CX_ENOTFOUND for an unknown id,
 * CX_ECONFLICT when it was already revoked. */
int cx_storage_key_revoke(cx_storage *st, const char *key_id, int64_t now_ms);

/* The team's next seq (last + 1), reserved in this transaction. */
int cx_storage_seq_next(cx_storage *st, const char *team, int64_t *seq);
/* The team's tombstone horizon: cursors below it are gone (0 = none). */
int cx_storage_horizon(cx_storage *st, const char *team, int64_t *horizon);

/* Op idempotency records. op_get: CX_ENOTFOUND when unseen. */
int cx_storage_op_get(cx_storage *st, const char *team, const char *op_id, uint8_t digest[32],
                      int64_t *seq);
int cx_storage_op_put(cx_storage *st, const char *team, const char *op_id,
                      const uint8_t digest[32], int64_t seq);

/* Items, stored as JSON text with their latest seq. item_get: *json is
 * malloc'd (the caller's); CX_ENOTFOUND when the team has no such id. */
int cx_storage_item_get(cx_storage *st, const char *team, const char *id, char **json,
                        int64_t *seq, bool *deleted);
int cx_storage_item_put(cx_storage *st, const char *team, const char *id, const char *kind,
                        const char *status, int64_t seq, bool deleted, const char *json);
/* Items with seq > since in seq order, at most limit; fn gets each (json
 * NULL for a tombstone). A non-zero return from fn stops and is returned. */
int cx_storage_changes(cx_storage *st, const char *team, int64_t since, int limit,
                       int (*fn)(void *ud, int64_t seq, const char *id, const char *json),
                       void *ud);
/* Tombstone compaction: deletes the team's tombstones with seq < before
 * and raises its horizon to `before` (never lowers it). *dropped counts the
 * tombstones removed. */
int cx_storage_compact(cx_storage *st, const char *team, int64_t before, int64_t *dropped);
/* The team's last seq (0 when it has none). */
int cx_storage_seq_last(cx_storage *st, const char *team, int64_t *seq);
/* Drafts waiting for review (pending or changes_requested), oldest first. */
int cx_storage_queue(cx_storage *st, const char *team, int limit,
                     int (*fn)(void *ud, const char *json), void *ud, int64_t *total);
/* Drafts waiting for review across every team, for the metrics gauge. */
int cx_storage_queue_depth(cx_storage *st, int64_t *depth);

/* Blobs, content-addressed per team. blob_get: *data malloc'd. */
int cx_storage_blob_has(cx_storage *st, const char *team, const char *sha, bool *has);
int cx_storage_blob_put(cx_storage *st, const char *team, const char *sha, const void *data,
                        size_t len, bool *created);
int cx_storage_blob_get(cx_storage *st, const char *team, const char *sha, void **data,
                        size_t *len);
/* Deletes the team's blob sha unless a live item still names it (its hash
 * appears in the item's JSON). *deleted says whether it went. */
int cx_storage_blob_drop_unused(cx_storage *st, const char *team, const char *sha, bool *deleted);

/* The audit log. audit_last: the last entry's n and hash (n 0 and NULL
 * hash when empty; hash written to out[65]). */
int cx_storage_audit_last(cx_storage *st, int64_t *n, char hash[65]);
int cx_storage_audit_put(cx_storage *st, const cx_storage_audit *a);
int cx_storage_audit_each(cx_storage *st, int (*fn)(void *ud, const cx_storage_audit *a),
                          void *ud);

/* A consistent copy of the database to dest (a new file) while others
 * write, through SQLite's online backup. */
int cx_storage_backup(cx_storage *st, const char *dest);
