/* SPDX-License-Identifier: Apache-2.0 */
/* What the store's own files (store.c, gate.c, hash.c, sqlite.c, schema.c, vec.c, item-check.c,
 * envelope.c, fold.c, item.c, read.c, blob.c, outbox.c, kv.c, apply.c)
 * share and nothing else should use: the cx_store struct, the
 * write-transaction runner with busy retry, input validation helpers and
 * the item envelope. What search may use of the store is in
 * store-search.h, which this header includes.
 *
 * Layering: only src/store includes this header; src/search includes
 * store-search.h alone. */
#pragma once

#include "embed/embed.h"
#include "store/gate.h"
#include "store/hash.h"
#include "store/sqlite.h"
#include "store/store-search.h"
#include "store/store.h"
#include "util/buf.h"

#include <sqlite3.h>

#define CX_STORE_SCHEMA_VERSION 8
#define CX_STORE_MAX_PATH CX_WIRE_MAX_PATH /* bytes of one entry of `files` */
#define CX_STORE_MAX_ID CX_WIRE_MAX_ID     /* bytes of an id given by a caller */
#define CX_STORE_STMT_CACHE 64

typedef struct cx_store_terms cx_store_terms;

/* What search keeps per store (cx_store_search_ext_set); freed with the
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
    cx_embedder *builtin;    /* owned: embeds inside every write */
    int64_t builtin_model;   /* its embed_models.id */
    cx_embedder *model;      /* borrowed (cx_store_set_embedder), NULL = builtin only */
    int64_t model_id;        /* embed_models.id of `model`, 0 while it has none */
    cx_store_terms *terms;   /* the typo dictionary's sink (terms.c) */
    cx_buf scratch;          /* text built inside a write (an outbox payload), reused */
    cx_store_gate *gate;     /* this process's turn-taking on the file (gate.h) */
    bool background;         /* writes yield to this process's other writers */
    bool fts_yield;          /* FTS chunks end early for a waiting writer */
    int64_t fts_go_last;     /* last rid a background FTS chunk took (fts_go) */
    int64_t fts_go_rows;     /* rows it took */
    bool fts_go_stop;        /* it stopped early for a waiting writer */
    bool maint_ckpt_off;     /* cx_store_maintain turned automatic checkpoints off */
    bool maint_busy;         /* its last run found no pause in this process's writes */
    bool lengths_known;      /* cx_store_lengths_fill's scan (lengths.c): at edits */
    int64_t lengths_edits;   /* lengths_edits, every block up to lengths_indexed */
    int64_t lengths_indexed; /* was current (-1: not yet), and it goes on */
    int64_t lengths_next;    /* from this row id */
};

/* The cap on s->scratch: a largest item's envelope with every byte escaped. */
#define CX_STORE_SCRATCH_MAX (8u << 20)

/* Steps a statement that returns no rows, translating errors. */
int cx_store_exec_stmt(cx_store *s, sqlite3_stmt *st, const char *what);

/* Runs fn inside BEGIN IMMEDIATE … COMMIT. A CX_EBUSY from anywhere in the
 * transaction rolls back and reruns the whole of fn (with back-off) until
 * about 30 s have passed; then CX_EBUSY. Any other failure rolls back and is
 * returned. fn must be safe to run again from the start. */
typedef int (*cx_store_tx_fn)(cx_store *s, void *ctx);
int cx_store_write(cx_store *s, cx_store_tx_fn fn, void *ctx);

/* Inside a write transaction that indexed rows [from, to] (in rid order):
 * brings the stored lengths of their blocks up to date (lengths.c). */
int cx_store_lengths_indexed(cx_store *s, int64_t from, int64_t to);

/* Rewrites the next stored block of lengths that an edit of the index
 * left behind (one write transaction, once this process's writes have
 * paused for quiet_ns, given up at until_ns); *more when there may be
 * others. Cheap when there are none: it remembers the state it found
 * current. */
int cx_store_lengths_fill(cx_store *s, uint64_t quiet_ns, uint64_t until_ns, bool *more);

/* Inside a write transaction that added rows up to row id max_rid: *behind
 * is true when the search index would then lag by more than a write may
 * leave (s->fts_lag), so the writer should call cx_store_fts_sync after
 * committing. Asking here, in the transaction the write holds anyway,
 * spares a read transaction of its own after every write. */
int cx_store_fts_behind(cx_store *s, int64_t max_rid, bool *behind);

/* Runs SQL text (one or more statements, not cached), translating errors;
 * `what` names it in the message. */
int cx_store_exec_sql(cx_store *s, const char *sql, const char *what);

/* The integer the first row of a PRAGMA (or any query) gives, 0 when it
 * gives no row. */
int cx_store_pragma_int(cx_store *s, const char *sql, int64_t *out);

/* ---- schema (schema.c) ---- */

/* Brings the database to CX_STORE_SCHEMA_VERSION in one write transaction
 * (nothing to do when it is there). CX_EFAIL for a database newer than
 * this cortex. */
int cx_schema_migrate(cx_store *s);

/* Empties both FTS indexes for rebuilding when they were built by another
 * version of the tokenizer than CX_TEXT_TOKENIZER_VERSION, and records
 * this one; *rebuilt says whether it did. Run at open, after the
 * migrations. */
int cx_schema_tokenizer(cx_store *s, bool *rebuilt);

/* ---- the typo dictionary (terms.c) ---- */

/* Sets up the sink of the store's tokenizer that collects the terms of
 * indexed documents. CX_ENOMEM. */
int cx_store_terms_open(cx_store *s);

/* Clears the sink and frees it; fine when never opened. */
void cx_store_terms_free(cx_store *s);

/* cx_store_write around each attempt: terms are taken from begin on; flush
 * writes those not in the table yet (inside the transaction, before its
 * COMMIT); end says whether the transaction committed (a rollback forgets
 * what the cache learnt). */
void cx_store_terms_begin(cx_store *s);
int cx_store_terms_flush(cx_store *s);
void cx_store_terms_end(cx_store *s, bool committed);

/* ---- vectors (vec.c) ----
 * Vectors are stored per model as int8 with one float scale each
 * (x[i] ~= v[i] * scale): the built-in model's in `builtin_vectors`, one
 * narrow row per item under the item's rid with its kind and subcortex
 * (vec_log lists rows whose vector changed after the item was written),
 * other models' in `vectors`. `items.sig` keeps 64 sign bits of the
 * built-in vector for the near-duplicate check; it is NULL exactly when
 * the item has no built-in vector (items_nosig lists those). */

#define CX_STORE_EMBED_TEXT_MAX 8192 /* bytes of title + body that are embedded */
#define CX_STORE_FOLD_CANDIDATES 16  /* newest observations compared when folding */

/* The text an item is embedded from: title, a blank line, body; cut at
 * CX_STORE_EMBED_TEXT_MAX bytes on a character boundary. malloc'd. */
char *cx_vec_text(const char *title, const char *body);

/* The 64 sign bits kept in items.sig. */
uint64_t cx_vec_sig(const float *v, int dim);

/* Writes (or replaces) the vector of item `rid` for `model` inside the
 * current write transaction (a new item's built-in vector goes in with its
 * row instead, see cx_item_insert). CX_VEC_DEQUEUE: also take the item off
 * the model's embed queue (whatever its gen). */
#define CX_VEC_DEQUEUE 1u
int cx_vec_put(cx_store *s, int64_t model, int64_t rid, const float *v, int dim, unsigned flags);

/* The embed_models id of embedder e's model, recorded in a write
 * transaction of its own when it is new. */
int cx_vec_model_create(cx_store *s, cx_embedder *e, int64_t *out);

/* The built-in embedder's model id, recorded when new; a new one drops every
 * item's built-in vector (a model before it made them) in the same
 * transaction, for cx_store_embed_pending() to redo. */
int cx_vec_builtin_model(cx_store *s, cx_embedder *e, int64_t *out);

/* ---- near-duplicates (fold.c) ---- */

/* The key under which observations may fold into each other: visibility,
 * subcortex, the set of files, the files of the provenance, and the
 * sequence of "marked" tokens of the title and of the body (numbers,
 * versions, identifiers, paths), so that two notes that differ in a number
 * or an identifier never fold. */
int64_t cx_item_fold_key(const char *visibility, const char *subcortex, const json_t *files,
                         const json_t *provenance, const char *title, const char *body);

/* The content hash of an observation's text (items.content_hash, what an
 * exact repeat is recognised by): sha-256 of the text with whitespace runs
 * collapsed to one space and the ends trimmed, streamed without a copy,
 * into out[65] as lower-case hex. Local observations and pulled ones
 * (apply.c) are hashed by this one function, so that they fold alike. */
void cx_item_content_hash(const char *text, char out[65]);

/* Registers the SQL functions cx_fold_key(visibility, subcortex, files,
 * provenance, title, body) and cx_content_hash(text) (the migrations
 * compute old rows' keys and hashes with them).
 * Returns a SQLite result code. */
int cx_item_register_sql(sqlite3 *db);


/* ---- validation (item-check.c) ---- */

/* Whitespace as the store's texts count it (ASCII space, \t \n \r \f \v). */
static inline bool cx_item_is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A list of paths or ids as a JSON array (*out, owned by the caller), in
 * order, without duplicates: at most max_n entries of at most max_len
 * bytes, each one line of UTF-8. */
int cx_item_check_list(const char *field, cx_strv l, size_t max_n, size_t max_len, json_t **out);

/* "shared" (also for NULL or "") or "private" into *out (borrowed);
 * CX_EINVAL otherwise. */
int cx_item_check_visibility(const char *field, const char *v, const char **out);

/* The provenance as compact JSON text (*out malloc'd; NULL when there is
 * none): an object of at most CX_STORE_MAX_PROVENANCE bytes as JSON. */
int cx_item_check_provenance(const char *field, const json_t *prov, char **out);

/* ---- the envelope (envelope.c) ---- */

/* A text column as a JSON string ("" for NULL). */
json_t *cx_item_json_text(const unsigned char *v);
/* A time column (ms) as an ISO 8601 UTC JSON string. */
json_t *cx_item_json_time(int64_t ms);
/* Sets o[key] to the text of column `col` unless it is NULL. */
void cx_item_set_text_opt(json_t *o, const char *key, sqlite3_stmt *st, int col);

/* ---- items (item.c, envelope.c, read.c) ---- */

/* The envelope of the item the statement's current row holds, read from
 * the columns listed in CX_ITEM_COLUMNS. */
#define CX_ITEM_COLUMNS                                                                   \
    "id, kind, status, subcortex, title, body, tags, files, evidence, author, agent, "    \
    "created_at, updated_at, server_seq, visibility, parent_id, seen, review, provenance"
int cx_item_envelope(sqlite3_stmt *st, json_t **out);

/* The envelope of item `id` (CX_ENOTFOUND when there is none). */
int cx_item_load(cx_store *s, const char *id, json_t **out);

/* Inserts an item row; the FTS index follows through triggers. Strings
 * borrowed; tags/files/evidence are JSON array texts. The caller has
 * validated and redacted every field. */
typedef struct cx_item_row {
    const char *id, *kind, *status, *subcortex, *title, *body;
    const char *tags, *files, *evidence;
    const char *author, *agent, *visibility, *parent_id, *content_hash;
    const char *provenance;  /* JSON text or NULL */
    const char *review;      /* JSON text or NULL: the last decision (pulled items) */
    const float *vec;        /* the built-in vector, or NULL */
    int64_t fold_key;        /* observations only */
    bool has_fold_key;
    uint64_t now_ms;
    uint64_t created_ms;     /* 0 = now_ms (pulled items keep the core's times) */
    uint64_t updated_ms;     /* 0 = now_ms */
    int64_t server_seq;      /* 0 = none (not from the core yet) */
} cx_item_row;
/* Inserts an item row (and its built-in vector when `vec` is set); *rid
 * (may be NULL) receives its row id. */
int cx_item_insert(cx_store *s, const cx_item_row *row, int64_t *rid);

/* The envelope of `row` as cx_item_envelope reads it back once
 * cx_item_insert has stored it (a new row: `seen` is 1, times default to
 * now_ms), as compact JSON text in b (emptied first; empty again on
 * failure), for an item.put that may leave the machine: the members the
 * core owns (review, server_seq) and evidence are not written, so it is
 * for a new observation only (asserted). row->tags, files and provenance
 * are the compact JSON text the checks made. CX_ELIMIT past b's cap,
 * CX_ENOMEM. */
int cx_item_envelope_text(const cx_item_row *row, cx_buf *b);

/* Rewrites the existing row row->id with the envelope of `row` (kind,
 * status, subcortex, title, body, tags, files, evidence, author, agent,
 * created/updated times, server_seq, parent_id, review, provenance) and
 * clears its sync_rejected; its visibility, fold key, content hash and
 * `seen` stay. With CX_ITEM_DECISION only kind, status, review and
 * updated_at change (a reviewer's decision on a draft whose local text
 * still waits to be pushed). Search's index and the vectors follow through
 * triggers. Inside a write transaction. */
#define CX_ITEM_DECISION 1u
int cx_item_update(cx_store *s, const cx_item_row *row, unsigned flags);

/* Redaction of a caller's string before it is stored (see redact/redact.h):
 * *use = in when nothing matched, else the redacted copy in *owned (the
 * caller frees it). rep may be NULL. */
struct cx_redact_report;
int cx_item_redact(const char *in, char **owned, const char **use, struct cx_redact_report *rep);
/* Adds {"redacted": {"count", "rules"}} to o when anything was redacted. */
int cx_item_add_redacted(json_t *o, const struct cx_redact_report *rep);

/* Validates who made a change (lengths, UTF-8). */
int cx_item_check_actor(const cx_actor *who);

/* Copies a caller's id into buf (upper-cased when it is a ULID, as stored)
 * after checking its length; `field` names it in the message. */
int cx_item_norm_id(const char *field, const char *id, char buf[CX_STORE_MAX_ID + 1]);


/* Validates a subcortex (NULL or "" = the default); *out borrowed. */
int cx_item_check_subcortex(const char *field, const char *v, const char **out);

/* ---- blobs (blob.c) ---- */

/* cx_blob_sha256: in store/blob.h. */

/* Makes sure blobs/<aa>/<sha> holds the content (written atomically when
 * absent). */
int cx_blob_put(cx_store *s, const void *data, size_t len, const char sha[65]);

/* ---- outbox (outbox.c) ---- */

/* Appends an op to the outbox inside the current write transaction.
 * `payload` is borrowed and changed in place to what may leave the
 * machine: its item loses the members the core owns (review, server_seq)
 * and the ids of private items in its evidence. */
int cx_outbox_push(cx_store *s, const char *op, const char *item_id, json_t *payload);

/* As cx_outbox_push, with the payload as JSON text of `len` bytes (borrowed)
 * that is already what may leave the machine: the write path of a new
 * observation builds it straight from its row (cx_item_envelope_text), so
 * it is neither read back nor parsed and dumped again. */
int cx_outbox_push_text(cx_store *s, const char *op, const char *item_id, const char *payload,
                        size_t len);

/* ---- kv (kv.c) ---- */

/* Sets `key` (NULL value: deletes it) inside the current write transaction. */
int cx_kv_put(cx_store *s, const char *key, const char *value);
int cx_kv_put_int(cx_store *s, const char *key, int64_t v);

/* The value of `key` as an integer, `def` when unset or not a number. */
int64_t cx_kv_int(cx_store *s, const char *key, int64_t def);

/* The name of the VFS every store connection opens with (walvfs.c: the
 * default VFS, each WAL frame written in one call), registered on first
 * use; NULL (SQLite's default) if it cannot be. */
#define CX_STORE_VFS "cortex-wal"
const char *cx_store_vfs(void);
