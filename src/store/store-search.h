/* SPDX-License-Identifier: Apache-2.0 */
/* The store as search sees it: the narrow interface through which
 * src/search reads the workspace database. It lends the connection and its
 * statement cache for read-only queries, opens read snapshots, brings the
 * FTS indexes up to date, names the embedders and their model ids, keeps
 * one slot of per-store state for search, and offers the few item helpers
 * that answers need (validation of filters, provenance and staleness,
 * token budgets). struct cx_store stays private to src/store
 * (store-internal.h); search includes this header and not that one.
 *
 * Search writes nothing through this interface: every statement it
 * prepares is a SELECT (or an FTS5 MATCH). */
#pragma once

#include "embed/embed.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- the connection (store.c) ---- */

/* The connection, borrowed, for reads and for registering SQL functions
 * (search's cx_bm25) on it. */
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

/* Binds a string or NULL. */
int cx_store_bind_text(sqlite3_stmt *st, int i, const char *v);

/* A read snapshot over several statements (BEGIN … COMMIT). */
int cx_store_read_begin(cx_store *s);
void cx_store_read_end(cx_store *s);

/* Brings the FTS indexes up to date with the items table when more than
 * `lag_ok` rows wait to be indexed (0: any). Search calls it with 0 first;
 * writers with CX_STORE_FTS_LAG after their commit. */
#define CX_STORE_FTS_LAG 256
int cx_store_fts_sync(cx_store *s, int64_t lag_ok);

/* The rows the FTS indexes have still to take (0: up to date), read in
 * the caller's snapshot when one is open. */
int cx_store_fts_backlog(cx_store *s, int64_t *rows);

/* What the keyword index holds, inside a read snapshot: the rows up to
 * *indexed (rid order), and *edits, a count that moves with every other
 * change to it (an indexed item updated or deleted, the index emptied).
 * While *edits stays the same, what a reader read of the index before is
 * still true of the rows up to the *indexed it saw then. */
int cx_store_fts_generation(cx_store *s, int64_t *indexed, int64_t *edits);

/* ---- row lengths (lengths.c) ----
 * The length in tokens of every row of items_fts (what BM25 needs of a
 * row), kept a block of CX_STORE_LENGTHS_BLOCK row ids at a time for row
 * ids below CX_STORE_LENGTHS_BLOCK * CX_STORE_LENGTHS_MAX_BLOCKS. */
#define CX_STORE_LENGTHS_BLOCK 4096
#define CX_STORE_LENGTHS_MAX_BLOCKS 4096

/* The lengths of block blk's rows up to `indexed` into lens
 * (CX_STORE_LENGTHS_BLOCK of them; 0 for a row the index has not; 65535
 * for that many tokens or more), where `edits` and `indexed` are what
 * cx_store_fts_generation gave in the same snapshot: *got when the block
 * was stored at those edits (the rows past what it holds read from FTS5),
 * or, with `whole`, read from FTS5 row by row (~1 k instructions a row)
 * when it was not. */
int cx_store_lengths_get(cx_store *s, int64_t blk, int64_t edits, int64_t indexed, bool whole,
                         uint16_t *lens, bool *got);

/* The first row id of the index at or after `from` (*have false if
 * none): row ids may jump, so whoever walks the blocks asks for the next
 * one that holds a row. */
int cx_store_lengths_next_row(cx_store *s, int64_t from, int64_t *rid, bool *have);

/* The length in tokens that an items_fts_docsize row `sz` (n bytes of
 * varints, one a column) gives, saturated at 65535. */
uint16_t cx_store_lengths_of_docsize(const void *sz, size_t n);

/* ---- the typo dictionary (terms.c) ----
 * Every distinct term of 4 to 64 bytes of [a-z_] that the "cortex"
 * tokenizer gave a document (words, whole identifiers, identifier parts,
 * as the index holds them), kept as documents are indexed. Terms of
 * deleted items may stay: check a term's documents before using it. */
#define CX_STORE_TERM_MIN 4
#define CX_STORE_TERM_MAX 64

/* Whether term[0..n) is in the dictionary (one point look-up). */
int cx_store_term_known(cx_store *s, const char *term, size_t n, bool *known);

/* Calls fn for each of the `ncands` strings of `cands` (NUL-terminated,
 * end to end) that is in the dictionary, in their order, until fn returns
 * false. Those starting with `prefix` (nprefix bytes of [a-z_], at most 8;
 * most neighbours of a word share its first letters) are checked against
 * one scan of the dictionary's range for it, the others by one look-up
 * each. fn may run other statements. */
int cx_store_terms_known_each(cx_store *s, const char *cands, size_t ncands, const char *prefix,
                              size_t nprefix, bool (*fn)(void *ud, const char *term, size_t len),
                              void *ud);

/* ---- search's per-store state (store.c) ---- */

/* What search keeps per store (tokenizer, scorer state, vector indexes),
 * borrowed; NULL until set. */
void *cx_store_search_ext(cx_store *s);

/* Hands search's state to the store, which frees it with free_fn(ptr) in
 * cx_store_free (or when another state replaces it). */
void cx_store_search_ext_set(cx_store *s, void *ptr, void (*free_fn)(void *ptr));

/* ---- embedders and models (store.c, vec.c) ---- */

/* The built-in embedder (owned by the store; borrowed) and its
 * embed_models id. */
cx_embedder *cx_store_builtin_embedder(cx_store *s);
int64_t cx_store_builtin_model(cx_store *s);

/* The embedder set with cx_store_set_embedder() (borrowed; NULL = the
 * built-in one only) and its embed_models id (0 while it has none). */
cx_embedder *cx_store_embedder(cx_store *s);
int64_t cx_store_embedder_model(cx_store *s);

/* Quantizes an L2-normalised vector as the store keeps it: q[dim] int8
 * and one float scale (x[i] ~= q[i] * scale). */
void cx_vec_quantize(const float *v, int dim, int8_t *q, float *scale);

/* Embeds `text` with the store's built-in embedder into out[dim]. */
int cx_vec_builtin(cx_store *s, const char *text, float *out);

/* The embed_models id of a model name: created when `create` (inside a
 * write transaction), else 0 in *out when unknown. */
int cx_vec_model_id(cx_store *s, const char *name, int dim, bool create, int64_t *out);

/* ---- what answers need of items (item.c) ---- */

/* Reads an item's provenance (JSON text or NULL) and asks `stale` about it
 * when both are given: *stale and *changed (an array of paths, owned by the
 * caller, NULL when fresh). A failing callback counts as fresh. */
void cx_item_check_stale(cx_stale_fn stale, void *ud, const json_t *provenance, bool *is_stale,
                         json_t **changed);

/* The row ids of the items that item `rid` cites as evidence (a draft's
 * ids, which the thread it becomes keeps) and that this store holds, in
 * the order cited, at most `max` of them into out[] (*n). An id this store
 * does not hold is left out. Inside the caller's read snapshot. (read.c) */
int cx_item_evidence_rids(cx_store *s, int64_t rid, int64_t *out, size_t max, size_t *n);

/* Token budgets: 4 bytes a token over the serialised answer. Appends `item`
 * (reference stolen) to `arr` when it fits in `budget` bytes given `*used`,
 * and returns true. When it does not fit it is dropped and *truncated set,
 * except that the first item always goes in, its `cut_field` string cut
 * short to fit as far as it can. */
bool cx_item_budget_add(json_t *arr, json_t *item, size_t *used, size_t budget,
                        const char *cut_field, bool *truncated);

/* A provenance column as an object, NULL when there is none (or it is not
 * an object). */
json_t *cx_item_parse_provenance(const char *text);

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
