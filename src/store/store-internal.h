/* SPDX-License-Identifier: Apache-2.0 */
/* What the store's own files (store.c, item.c, blob.c, outbox.c) and the
 * search module share and nothing else should use: the cx_store struct, the
 * prepared-statement cache, the write-transaction runner with busy retry,
 * the one place SQLite errors are translated, input validation helpers and
 * the item envelope.
 *
 * Layering: only src/store and src/search include this header. */
#pragma once

#include "store/store.h"

#include <sqlite3.h>

#define CX_STORE_SCHEMA_VERSION 1
#define CX_STORE_MAX_PATH 1024 /* bytes of one entry of `files` */
#define CX_STORE_MAX_ID 64     /* bytes of an id given by a caller */
#define CX_STORE_STMT_CACHE 64

/* What search keeps per store (tokenizer, scorer state); freed with the
 * store through `free_fn`. */
typedef struct cx_store_ext {
    void *ptr;
    void (*free_fn)(void *ptr);
} cx_store_ext;

struct cx_store {
    sqlite3 *db;
    char *dir;
    char *db_path;
    char *blob_dir;
    uint64_t busy_since_ns;  /* when the current busy wait began */
    uint64_t deadline_ns;    /* end of the current write's total wait */
    unsigned rng;            /* jitter for the busy back-off */
    struct {
        const char *sql;     /* key: the address of a static SQL string */
        sqlite3_stmt *stmt;
    } stmts[CX_STORE_STMT_CACHE];
    size_t nstmts;
    cx_store_ext search;
    int64_t fts_lag;         /* rows a write may leave unindexed (see fts_sync) */
    int64_t fts_chunk;       /* rows indexed per write transaction */
};

/* The connection, borrowed; used by search for its queries. */
sqlite3 *cx_store_sqlite(cx_store *s);

/* A prepared statement for `sql`, which must have static storage duration
 * (the cache is keyed by its address). The statement is reset with its
 * bindings cleared; the caller resets it again when done so that no read
 * transaction stays open. Borrowed. */
int cx_store_prepare(cx_store *s, const char *sql, sqlite3_stmt **out);

/* Translates a SQLite result code once: CX_EBUSY for BUSY/LOCKED (the write
 * runner retries those), CX_EIO for I/O, disk and corruption errors,
 * CX_ENOMEM, else CX_EFAIL; the detail names `what` and sqlite3_errmsg(). */
int cx_store_sqlerr(cx_store *s, int rc, const char *what);

/* Steps a statement that returns no rows, translating errors. */
int cx_store_exec_stmt(cx_store *s, sqlite3_stmt *st, const char *what);

/* Runs fn inside BEGIN IMMEDIATE … COMMIT. A CX_EBUSY from anywhere in the
 * transaction rolls back and reruns the whole of fn (with back-off) until
 * about 30 s have passed; then CX_EBUSY. Any other failure rolls back and is
 * returned. fn must be safe to run again from the start. */
typedef int (*cx_store_tx_fn)(cx_store *s, void *ctx);
int cx_store_write(cx_store *s, cx_store_tx_fn fn, void *ctx);

/* Brings the FTS indexes up to date with the items table when more than
 * `lag_ok` rows wait to be indexed (0: any). Search calls it with 0 first;
 * writers with CX_STORE_FTS_LAG after their commit. */
#define CX_STORE_FTS_LAG 256
int cx_store_fts_sync(cx_store *s, int64_t lag_ok);

/* A read snapshot over several statements (BEGIN … COMMIT). */
int cx_store_read_begin(cx_store *s);
void cx_store_read_end(cx_store *s);

/* Binds a string or NULL. */
int cx_store_bind_text(sqlite3_stmt *st, int i, const char *v);

/* ---- validation (item.c) ---- */

/* True when the n bytes at s are well-formed UTF-8. */
bool cx_store_utf8_valid(const char *s, size_t n);
/* The longest prefix of s, at most max bytes, that ends on a character
 * boundary. */
size_t cx_store_utf8_cut(const char *s, size_t len, size_t max);

/* ---- items (item.c) ---- */

/* The envelope of the item the statement's current row holds, read from
 * the columns listed in CX_ITEM_COLUMNS. */
#define CX_ITEM_COLUMNS                                                                   \
    "id, kind, status, subcortex, title, body, tags, files, evidence, author, agent, "    \
    "created_at, updated_at, server_seq, visibility, parent_id, seen, review"
int cx_item_envelope(sqlite3_stmt *st, json_t **out);

/* The envelope of item `id` (CX_ENOTFOUND when there is none). */
int cx_item_load(cx_store *s, const char *id, json_t **out);

/* Inserts an item row; the FTS index follows through triggers. Strings
 * borrowed; tags/files/evidence are JSON array texts. */
typedef struct cx_item_row {
    const char *id, *kind, *status, *subcortex, *title, *body;
    const char *tags, *files, *evidence;
    const char *author, *agent, *visibility, *parent_id, *content_hash;
    uint64_t now_ms;
} cx_item_row;
int cx_item_insert(cx_store *s, const cx_item_row *row);

/* Validates who made a change (lengths, UTF-8). */
int cx_item_check_actor(const cx_actor *who);

/* Copies a caller's id into buf (upper-cased when it is a ULID, as stored)
 * after checking its length; `field` names it in the message. */
int cx_item_norm_id(const char *field, const char *id, char buf[CX_STORE_MAX_ID + 1]);

/* Token budgets: 4 bytes a token over the serialised answer. Appends `item`
 * (reference stolen) to `arr` when it fits in `budget` bytes given `*used`,
 * and returns true. When it does not fit it is dropped and *truncated set,
 * except that the first item always goes in, its `cut_field` string cut
 * short to fit as far as it can. */
bool cx_item_budget_add(json_t *arr, json_t *item, size_t *used, size_t budget,
                        const char *cut_field, bool *truncated);

/* A JSON array (text column) as a jansson array; "[]" on anything odd. */
json_t *cx_item_parse_array(const char *text);

/* Validates a text field: optional (NULL/"" allowed) unless `required`,
 * at most max bytes, UTF-8, no control characters other than tab/newline
 * when `oneline` is false (none at all when true). `field` names it in the
 * message. */
int cx_item_check_text(const char *field, const char *v, size_t max, bool required, bool oneline);

/* Validates and normalises tags: returns a JSON array, sorted and without
 * duplicates. */
int cx_item_check_tags(const char *field, cx_strv tags, json_t **out);

/* Validates a subcortex (NULL or "" = the default); *out borrowed. */
int cx_item_check_subcortex(const char *field, const char *v, const char **out);

/* ---- blobs (blob.c) ---- */

/* Lower-case hex sha-256 of data into out[65]. */
void cx_blob_sha256(const void *data, size_t len, char out[65]);

/* Makes sure blobs/<aa>/<sha> holds the content (written atomically when
 * absent). */
int cx_blob_put(cx_store *s, const void *data, size_t len, const char sha[65]);

/* ---- outbox (outbox.c) ---- */

/* Appends an op to the outbox inside the current write transaction.
 * `payload` is borrowed. */
int cx_outbox_push(cx_store *s, const char *op, const char *item_id, json_t *payload);
