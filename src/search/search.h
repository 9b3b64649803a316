/* SPDX-License-Identifier: Apache-2.0 */
/* Search over the store: keyword (FTS5 BM25 with the title weighted over
 * the body, identifiers split), semantic (vectors scanned in memory) and
 * hybrid (both lists fused by reciprocal rank fusion), adjusted by trust,
 * recency and staleness; filters, snippets with highlighted matches, and a
 * token budget on the answer. */
#pragma once

#include "embed/embed.h"
#include "store/store.h"

#define CX_SEARCH_MAX_LIMIT 50
#define CX_SEARCH_MAX_QUERY 2000
#define CX_SEARCH_VECTOR_MEMORY (40u << 20) /* default of cx_search_set_memory() */
/* Snippets: tokens around the matches, and the bytes up to which a body
 * is given whole, in the compact answer and with explain. */
#define CX_SEARCH_SNIPPET_TOKENS 16
#define CX_SEARCH_WHOLE_BODY 200
#define CX_SEARCH_EXPLAIN_SNIPPET_TOKENS 24

typedef enum cx_search_mode {
    CX_SEARCH_HYBRID = 0, /* keyword and semantic lists, fused (the default) */
    CX_SEARCH_KEYWORD,    /* BM25 only */
    CX_SEARCH_SEMANTIC,   /* vectors only */
} cx_search_mode;

typedef struct cx_search_query {
    const char *text;      /* user text; any content is valid */
    const char *kind;      /* NULL = any */
    const char *status;    /* NULL = any */
    const char *subcortex; /* NULL = any */
    cx_strv tags;          /* items must carry all of these */
    size_t limit;          /* 1..CX_SEARCH_MAX_LIMIT; 0 = 10 */
    size_t max_tokens;     /* answer budget in tokens, see cx_store_budget_bytes */
    cx_search_mode mode;
    /* false: the compact answer an agent reads; true: every field, and why
     * each result ranked (see cx_search_run). */
    bool explain;
    /* Embeds the query for the semantic list (borrowed; used by this call
     * only). NULL = the embedder set with cx_store_set_embedder(), else the
     * store's built-in one. Items that have no vector of its model yet are
     * ranked by their built-in vectors in a list of their own. When it
     * cannot embed (an http embedder that is down: CX_EBUSY, CX_EIO...),
     * the search runs on keywords alone and says so in "degraded". */
    cx_embedder *embedder;
    /* Staleness of results that have a provenance (NULL = never stale);
     * called only for results that may still make the answer. */
    cx_stale_fn stale;
    void *stale_ud;
} cx_search_query;

/* Ranked results. *out: {"query":…, "mode":"hybrid"|"keyword"|"semantic",
 * "results":[…], "count":N, "truncated":bool, "degraded": "semantic
 * unavailable: …" (only when the semantic side could not run)}.
 *
 * A result, compact (q->explain false): {id, kind, status, title (left
 * out when empty), snippet, stale: true and changed (the paths; both only
 * when stale)}: what an agent acts on. With q->explain: {id, kind, status,
 * subcortex, title, snippet, score, tags, updated_at, provenance (when
 * set), stale, changed (when stale), why}.
 *
 * snippet: the text that matched (the body, else the title), matches
 * marked with «…» (U+00AB/U+00BB), "…" where text was left out. Compact:
 * the whole body when it is at most CX_SEARCH_WHOLE_BODY bytes, else
 * about CX_SEARCH_SNIPPET_TOKENS tokens around its best cluster of
 * matches; with explain, CX_SEARCH_EXPLAIN_SNIPPET_TOKENS tokens (what
 * the CLI shows).
 *
 * why: {"lists": ["keyword", "semantic"] (those the item came from),
 * "keyword_rank": n, "bm25": x (when in the keyword list), "semantic_rank":
 * n, "similarity": x (when in a semantic list), "semantic_model":
 * "builtin" (only when it was ranked by its built-in vector because the
 * query's model has none of it yet), "trust": "canon" |
 * "accepted" | "published" | "draft" | "rejected" | "observation" |
 * "comment", "above_evidence": true (only on a canon thread lifted above
 * its evidence, below), "stale": bool, "score": the final score}.
 *
 * Scores (higher is better): hybrid sums 1/(60 + rank) over the lists an
 * item is in (when more than one list found something; ties are broken by
 * the lists' own scores); with one list, its own score: BM25 (items with
 * every word ranked before those with some) or the cosine similarity.
 * Each is then multiplied by the trust factor (canon 1.125, accepted
 * artifact 1.09, published 1.06, draft 1.03, observation and comment 1.0,
 * rejected draft 0.95), a recency factor (1.0 for new items, 0.95 at 90
 * days, towards 0.9) and 0.6 when stale. A canon thread found together
 * with items it cites as evidence (the draft's evidence, kept by the
 * thread) is then lifted just above the best of them before staleness: the
 * reviewed summary comes before the raw notes it was made from. A thread
 * no list found is not added for its evidence.
 * A query with no searchable words returns no results (not an error). */
int cx_search_run(cx_store *s, const cx_search_query *q, json_t **out);

/* Loads the length of every indexed row (a block of 4,096 per read
 * transaction: about 30 ms and 200 KB at 100k items; a keyword search
 * needs them to read a phrase's rows) and this connection's vector index
 * (the built-in model's, and that of the embedder set with
 * cx_store_set_embedder()) into memory, so that the first search does not
 * pay for them: vectors about 0.2 s and 30 MB at 100k items, in read
 * transactions of 512 items. Later searches pick up new vectors
 * incrementally. Optional; for cortexd right after opening, off the
 * initialize path. */
int cx_search_warm(cx_store *s);

/* The same, calling progress(ud, done, total) after each chunk (done is
 * 0 after a block of row lengths, else the vectors loaded), outside
 * any transaction (another caller may use the store there, as cortexd's
 * worker does between chunks); a non-zero return stops with CX_ECANCELED
 * and keeps what was loaded (the next search loads the rest), so that a
 * process shutting down need not wait for it. While it runs, and from
 * cx_search_warm_expect until it runs, searches rank semantically by the
 * vectors loaded so far and say so in `degraded`, instead of loading the
 * rest themselves. */
int cx_search_warm_ex(cx_store *s, cx_progress_fn progress, void *ud);

/* Says that cx_search_warm_ex will be called on this store (by another
 * thread): searches until it ends use what it has loaded. */
int cx_search_warm_expect(cx_store *s);

/* Bytes of int8 vectors this connection keeps in memory for exact scoring
 * (default CX_SEARCH_VECTOR_MEMORY, 40 MiB: 130k items of the built-in
 * model, 320 bytes each). An index that does not fit stays in SQLite: a
 * scan of two bits a dimension kept in memory (signs, non-zero) picks
 * candidates that are then read and scored exactly; approximate, and
 * slower. Takes effect when an index is loaded: call it before the first
 * search or cx_search_warm(). */
int cx_search_set_memory(cx_store *s, size_t bytes);

/* Bytes of posting lists this connection keeps in memory between
 * searches (search/postings.c; default CX_SEARCH_POSTINGS_MEMORY). 0 keeps
 * none: every search reads the lists it needs from FTS5 again. */
int cx_search_set_postings_memory(cx_store *s, size_t bytes);

/* With `on`, the keyword list is ranked through FTS5, scoring every item
 * that matches, instead of from the posting cache or skipping those that
 * cannot make the list (rank.c): slower, and the same ranking, which is
 * what it is for (bench/relevance/scale.py --exact-check; cortexd sets it
 * from CORTEX_SEARCH_EXHAUSTIVE=1). */
int cx_search_set_exhaustive(cx_store *s, bool on);

/* "hybrid", "keyword" or "semantic" (NULL = hybrid) to a mode; CX_EINVAL
 * naming the choices otherwise. */
int cx_search_mode_parse(const char *name, cx_search_mode *out);

/* The name of a mode. */
const char *cx_search_mode_name(cx_search_mode mode);
