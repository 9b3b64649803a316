/* SPDX-License-Identifier: Apache-2.0 */
/* What the files of the search module share and nothing else uses: the
 * query builder's hook (fts.c), the per-store state (search.c), the vector
 * index (vindex.c), the keyword list and ranking (rank.c), snippets
 * (snippet.c) and the answer (answer.c). search.c runs a search through
 * these in order: query expressions, keyword list, semantic lists, fusion,
 * the best hits, the answer.
 *
 * Layering: only src/search includes this header. It reaches the store
 * through store/store-search.h alone. */
#pragma once

#include "proto/wire.h"
#include "search/fts.h"
#include "search/search.h"
#include "store/store-search.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define CX_SEARCH_LIST_N CX_SEARCH_MAX_LIMIT /* items in each ranked list */
#define CX_SEARCH_SEM_VERIFY 200             /* semantic hits checked against filters */
#define CX_SEARCH_MAX_HITS (CX_SEARCH_LIST_N + 2 * CX_SEARCH_SEM_VERIFY)
#define CX_VINDEX_BLOCK 4096                 /* slots per block of the vector index */
#define CX_VINDEX_KIND_OTHER CX_KIND_COUNT   /* a kind the wire model does not know */
#define CX_SNIPPET_MAX_QTOKENS 128 /* query tokens the snippet matches (two 64-bit masks) */

/* ---- the query builder (fts.c) ----
 * With a hook for the search module: `keep` decides whether a word that is
 * not plain ASCII is searchable at all (the tokenizer may see nothing in
 * it, such as "«" or "—"), because FTS5 treats a phrase without tokens as
 * matching nothing, which would empty an AND. */

#define CX_FTS_MAX_TERMS 64 /* words or phrases used from one query */

typedef bool (*cx_fts_keep_fn)(void *ud, const char *word, size_t len);

int cx_fts_build_query_keep(const char *text, cx_fts_mode mode, cx_fts_keep_fn keep, void *ud,
                            char **out);

/* Typo corrections (see fts.c and typo.c). */
#define CX_TYPO_MAX_FIX 2          /* corrections of one word, at most */
#define CX_FTS_FIX_WEIGHT 0.6f     /* the weight of a correction's phrases */
#define CX_FTS_MAX_PHRASES 1024    /* phrases whose weights are reported */

/* The corrections of word[0..len) (lower-case [a-z_], CX_STORE_TERM_MIN
 * to CX_STORE_TERM_MAX bytes, or from CX_TYPO_PART_MIN for a `part`: one
 * part of an identifier of several, matched as written and beside its
 * sibling parts) into fix[], NUL-terminated, best first: how many (0 to
 * CX_TYPO_MAX_FIX). */
typedef size_t (*cx_fts_fix_fn)(void *ud, const char *word, size_t len, bool part,
                                char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1]);

/* How to build an expression, and the weights of its phrases. */
typedef struct cx_fts_opts {
    cx_fts_mode mode;
    cx_fts_keep_fn keep; /* NULL: every word is kept */
    void *keep_ud;
    cx_fts_fix_fn fix;   /* NULL: no corrections */
    void *fix_ud;
    /* out: the weight of each phrase (FTS5 numbers the quoted strings of an
     * expression in order), 1.0 for a word as typed, CX_FTS_FIX_WEIGHT for
     * a correction; nphrase counts them all, weight[] holds the first
     * CX_FTS_MAX_PHRASES */
    float weight[CX_FTS_MAX_PHRASES];
    int nphrase;
} cx_fts_opts;

/* cx_fts_build_query with the hooks of o, and its phrases' weights into o. */
int cx_fts_build_query_opts(const char *text, cx_fts_opts *o, char **out);

/* ---- typo correction (typo.c) ----
 * A query word (or identifier part, or whole identifier) of 4 to 64
 * ASCII letters or '_' with few documents (none, or fewer than
 * CX_TYPO_RARE while a neighbour has CX_TYPO_RATIO times more; counted
 * with the word's stem) is
 * corrected to the terms of the typo dictionary (store-search.h) one
 * Damerau edit away (a deletion, transposition of neighbours,
 * substitution or insertion over [a-z_]) that have documents: the best
 * two by document frequency. A query spends at most CX_TYPO_BUDGET
 * look-ups on it. */
#define CX_TYPO_RARE 3
#define CX_TYPO_RATIO 10
#define CX_TYPO_DF_CAP 256    /* documents counted per term, at most */
#define CX_TYPO_BUDGET 6000   /* dictionary probes (a document count costs 8) */
#define CX_TYPO_MEMO 128      /* words looked at per query, at most */
#define CX_TYPO_BIG_STORE 2000 /* items past which a correction needs 2 documents */
#define CX_TYPO_SHORT 5       /* shorter words: corrected by transpositions only */
#define CX_TYPO_PART_MIN 3    /* an identifier part this short is corrected too */

/* One query's corrections. */
typedef struct cx_typo {
    cx_store *s;
    int budget;
    struct {
        char word[CX_STORE_TERM_MAX + 1];
        char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1];
        uint8_t nfix;
        bool part;
    } memo[CX_TYPO_MEMO];
    size_t nmemo;
    bool big; /* more than CX_TYPO_BIG_STORE items */
    int err;  /* the first store error (later look-ups are skipped) */
} cx_typo;

/* Starts t for a search of store s (inside its read snapshot); s may be
 * NULL for t's pure functions (cx_typo_embed_text). A store error is kept in
 * t->err. */
void cx_typo_init(cx_typo *t, cx_store *s);

/* Whether any word of the query can need a correction: false when the
 * every-word expression `all` matches CX_TYPO_RARE items or more (each of
 * its words then has that many: none is rare). One count. */
int cx_typo_needed(cx_typo *t, const char *all, bool *needed);

/* The cx_fts_fix_fn of typo.c: ud is a cx_typo. */
size_t cx_typo_fix(void *ud, const char *word, size_t len, bool part,
                   char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1]);

/* Whether any word was corrected. */
bool cx_typo_any(const cx_typo *t);

/* {"word as typed, lower-cased": "its best correction", ...}, or NULL when
 * nothing was corrected (or out of memory). */
json_t *cx_typo_corrected(const cx_typo *t);

/* The text the semantic list embeds for a corrected query: the query as
 * typed, then the best correction of each corrected word (a correction
 * adds what a misspelt word meant; a word that was no typo keeps its
 * meaning: measured better than replacing the words, on
 * fixtures/relevance and on bench/relevance/scale.py at 10k). *out
 * malloc'd, NULL when nothing was corrected. CX_ENOMEM. */
int cx_typo_embed_text(const cx_typo *t, const char *text, char **out);

/* Calls fn for every string one Damerau edit from word[0..n) over
 * [a-z_] (deletions, transpositions of neighbours, substitutions,
 * insertions; a string may come more than once), each at most
 * CX_STORE_TERM_MAX bytes, until fn returns false: how many it was
 * called for. */
size_t cx_typo_neighbours(const char *word, size_t n,
                          bool (*fn)(void *ud, const char *cand, size_t len), void *ud);

/* The optimal-string-alignment Damerau distance of a and b (each at most
 * CX_STORE_TERM_MAX bytes; longer strings give -1). */
int cx_typo_distance(const char *a, size_t na, const char *b, size_t nb);

/* ---- the vector index (vindex.c) ---- */

/* One block of the in-memory vector index. */
typedef struct cx_vblock {
    int64_t rid[CX_VINDEX_BLOCK];
    float scale[CX_VINDEX_BLOCK];
    uint32_t sub[CX_VINDEX_BLOCK]; /* hash of the subcortex */
    uint8_t kind[CX_VINDEX_BLOCK]; /* a cx_kind, or CX_VINDEX_KIND_OTHER */
    uint64_t *sig;  /* vectors in SQLite: per slot, `words` sign bits then
                     * `words` non-zero bits; or NULL */
    int8_t *q;      /* dim * CX_VINDEX_BLOCK, dimension-major (in memory), or NULL */
} cx_vblock;

/* The vectors of one model on this connection. */
typedef struct cx_vindex {
    int64_t model;          /* embed_models.id, 0 = none */
    int dim, words;
    bool in_ram;
    bool loaded;
    size_t n;               /* slots in use */
    cx_vblock **blocks;
    size_t nblocks, capblocks;
    int64_t last_seq;       /* vectors.seq (vec_log.seq for the built-in model) loaded */
    int64_t last_rid;       /* built-in model: items.rid loaded up to */
    size_t expect;          /* vectors there were at the first load */
    int64_t *map_rid;       /* open addressing: rid -> slot (0 = empty) */
    uint32_t *map_slot;
    size_t map_cap, map_n;
    uint16_t *dist;         /* scratch: Hamming distance per slot */
    size_t dist_cap;
} cx_vindex;

/* What the scan can rule out before looking at a vector. */
typedef struct cx_prefilter {
    unsigned kinds; /* bit per kind (cx_vblock.kind): the kinds that may pass */
    bool has_sub;
    uint32_t sub;
} cx_prefilter;

/* A semantic hit: an item and its cosine similarity to the query. */
typedef struct cx_sem_hit {
    int64_t rid;
    double sim;
} cx_sem_hit;

/* ---- the posting cache (postings.c) ---- */

#define CX_SEARCH_POSTINGS_MEMORY (8u << 20) /* bytes of posting lists kept, by default */

typedef struct cx_postings cx_postings;
typedef struct cx_pentry cx_pentry;
typedef struct cx_search_ext cx_search_ext;

/* One phrase's rows for one match: ascending row ids and the phrase's
 * hits in each, weighted by column as cx_bm25 weighs them. */
typedef struct cx_plist {
    const char *key;
    size_t klen;
    const uint32_t *rid;
    const uint16_t *hits;
    size_t n;
} cx_plist;

/* What an expression matches. */
typedef struct cx_pmatch {
    size_t nphrase;         /* phrases, in FTS5's numbering */
    cx_plist *list;         /* each phrase's rows */
    const uint32_t *rows;   /* the rows the whole expression matches, ascending */
    size_t nrows;
    int64_t nrow, ntok;     /* the index's rows and tokens */
    const uint16_t *len;    /* the length in tokens of every row of a list, by rid */
    size_t nlen;
    cx_pentry **owner, **own; /* private to postings.c */
    size_t nown;
    uint32_t *rows_own, *dec;
} cx_pmatch;

/* The rows `expr` (an expression of fts.c's or rank.c's) matches, from
 * e's posting cache, each of its phrases' lists read from FTS5 or brought
 * up to date first (inside the caller's read snapshot). *ok is false when
 * the cache cannot answer it (see postings.c): rank through FTS5 then.
 * *m is borrowed from the cache until its next match. CX_ENOMEM, store
 * errors. */
int cx_postings_match(cx_search_ext *e, cx_store *s, const char *expr, const cx_pmatch **m,
                      bool *ok);
void cx_postings_free(cx_postings *P);

/* The SQL functions the cache reads with (user data: the cx_search_ext):
 * cx_phrase_rows(fts, w_title, w_body, w_tags) and cx_fts_tokens(fts). */
void cx_postings_rows_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                         int nval, sqlite3_value **vals);
void cx_postings_tokens_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                           int nval, sqlite3_value **vals);

/* ---- per-store state (search.c) ---- */

/* Document frequencies a store keeps between searches (rank.c). */
typedef struct cx_rank_cache cx_rank_cache;

/* Per store: the tokenizer the indexes use (to tell whether a non-ASCII
 * word has any token in it, see cx_fts_build_query_keep, and to cut
 * snippets), the idf of each phrase of the expression being ranked (set by
 * the keyword pass for the scorer), the cache of document frequencies and
 * the vector indexes. */
typedef struct cx_search_ext {
    fts5_tokenizer tok_api;
    Fts5Tokenizer *tok;
    const double *idf;      /* the idf of the first nidf phrases, or NULL */
    int nidf;               /* phrases that score; later ones only select rows */
    cx_rank_cache *rank_cache;
    cx_postings *postings;  /* posting lists kept between searches (postings.c) */
    size_t post_budget;     /* ... in at most these bytes */
    struct cx_pfetch *fetching; /* the list cx_phrase_rows fills (postings.c) */
    bool exhaustive;        /* score every match through FTS5 (cx_search_set_exhaustive) */
    bool warming;           /* cx_search_warm_ex is loading the vector indexes */
    cx_vindex builtin;      /* the built-in model */
    cx_vindex other;        /* the model of the query embedder, when another */
    size_t ram_used;        /* bytes of int8 vectors in memory */
    size_t ram_budget;      /* ... at most (cx_search_set_memory) */
} cx_search_ext;

/* This store's search state, made on first use (the tokenizer, the
 * cx_bm25 SQL function on its connection); *out borrowed, owned by the
 * store. CX_EFAIL without FTS5, CX_ENOMEM. */
int cx_search_ext_get(cx_store *s, cx_search_ext **out);

/* ---- vector index functions (vindex.c) ---- */

/* Frees what an index holds and zeroes it (it may be loaded again). */
void cx_vindex_free(cx_vindex *v);

/* Brings the index of `model` up to date, inside a read transaction: the
 * first call loads it (into memory while it fits e's budget, else as sign
 * bits), later ones add the vectors written since. Another model than the
 * one it holds starts it afresh; model 0 leaves it empty. */
int cx_vindex_refresh(cx_store *s, cx_search_ext *e, cx_vindex *v, int64_t model);

/* At most how many rows of `model` index v has still to load (inside a
 * read transaction; cheap: two index lookups). */
int cx_vindex_pending(cx_store *s, const cx_vindex *v, int64_t model, int64_t *out);

/* What the scan can rule out from the query's kind, status and
 * subcortex filters (every filter is checked again on the row). */
cx_prefilter cx_vindex_prefilter(const cx_search_query *q);

/* The semantic list over index v for the query vector qv: up to `max`
 * hits in out, best first, above the model's floor (`builtin`: the
 * built-in model's fixed floor, else one from the query's own
 * similarities); slots whose rid `exclude` holds are left out (items the
 * other model already ranks). */
int cx_vindex_search(cx_store *s, cx_vindex *v, const float *qv, bool builtin,
                     const cx_prefilter *pf, const cx_vindex *exclude, cx_sem_hit *out,
                     size_t max, size_t *nout);

/* The best `max` of hits[0..n) whose similarity is at least thr, best
 * first (a higher similarity, then the newer item), into out (room for
 * max): the selection cx_vindex_search makes of what its scan finds, fed
 * the same way. For tests. */
int cx_vindex_best(const cx_sem_hit *hits, size_t n, size_t max, double thr, cx_sem_hit *out,
                   size_t *nout);

/* ---- ranking (rank.c) ---- */

/* One item found by any list. */
typedef struct cx_hit {
    int64_t rid;
    int kw_rank, sem_rank; /* 1-based; 0 = not in that list */
    int sem_list;          /* 0 = the query model, 1 = built-in stand-in */
    double bm25, sim;
    int kw_pass;           /* 0: every word matched, 1: some */
    int tier;              /* ranked before any hit of a higher tier */
    double base, score;
    bool meta, pass;       /* metadata read; passes the filters */
    cx_trust trust;
    int64_t updated;
    json_t *prov;
    bool stale_done, stale;
    json_t *changed;
    bool lifted;           /* a canon thread lifted above its evidence */
} cx_hit;

/* The hits of one search, at most CX_SEARCH_MAX_HITS, found by rid in an
 * open-addressed table at most half full. */
#define CX_FUSE_SLOTS 1024
/* The hits of one search, at most CX_SEARCH_MAX_HITS. */
typedef struct cx_fuse {
    cx_store *s;
    const cx_search_query *q;
    json_t *want_tags; /* the tags filter, or NULL */
    bool sem_builtin;  /* the semantic list is the built-in embedder's */
    bool meta_checked; /* the cache of items' metadata was checked (rank.c) */
    cx_hit h[CX_SEARCH_MAX_HITS];
    size_t n;
    uint16_t at[CX_FUSE_SLOTS]; /* by hash of rid: 1 + the index of its hit, 0 free */
} cx_fuse;

/* The SQL function cx_bm25(fts, w_title, w_body, w_tags): FTS5's bm25
 * with exact document frequencies (see rank.c); user data: the
 * cx_search_ext. */
void cx_rank_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                  sqlite3_value **vals);

/* The SQL function cx_fts_rows(fts): the rows of the index. */
void cx_rank_rows(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                  sqlite3_value **vals);

/* Makes e's cache of document counts and row lengths true of the read
 * snapshot s has open (emptied when the store changed). CX_ENOMEM, store
 * errors. */
int cx_rank_cache_begin(cx_search_ext *e, cx_store *s);

/* Loads one more block of the row lengths (inside a read snapshot, for
 * the warm-up); *more says whether any is left. */
int cx_rank_warm_lengths(cx_search_ext *e, cx_store *s, bool *more);

/* The length in tokens of row rid of items_fts, from the cache of row
 * lengths, or -1 when FTS5 should be asked (after cx_rank_cache_begin in
 * the same snapshot). */
int cx_rank_row_len(cx_search_ext *e, int64_t rid);

/* Frees a cache of document frequencies; NULL is fine. */
void cx_rank_cache_free(cx_rank_cache *c);

/* An empty set of hits for query q; want_tags (borrowed) is the tags
 * filter or NULL. NULL when out of memory. */
cx_fuse *cx_rank_fuse_new(cx_store *s, const cx_search_query *q, json_t *want_tags);

/* Frees F and what its hits hold; NULL is fine. */
void cx_rank_fuse_free(cx_fuse *F);

/* The keyword list (inside a read transaction): the CX_SEARCH_LIST_N best
 * items by bm25 over every item matching every word (`all`), then, while
 * that found fewer than `limit`, over those matching any word (`any`),
 * whatever their age; its hits go into F with their keyword ranks and *nkw
 * says how many. tags_text: the tags filter as JSON text, or NULL. wall,
 * wany: the weights of the phrases of each expression (NULL: all 1.0). */
int cx_rank_keyword(cx_fuse *F, cx_search_ext *e, const char *tags_text, const char *all,
                    const char *any, size_t limit, size_t *nkw, const cx_fts_opts *wall,
                    const cx_fts_opts *wany);

/* Adds a semantic list (list 0: the query's model, 1: built-in stand-in):
 * hits that pass the filters get ranks 1..; *ranked says how many. */
int cx_rank_add_semantic(cx_fuse *F, const cx_sem_hit *sh, size_t n, int list, size_t *ranked);

/* The base score of every hit that passes the filters: RRF when `lists`
 * (the lists that found something) is more than one, else that list's own
 * score; times trust and recency. */
void cx_rank_fuse(cx_fuse *F, int lists);

/* Canon above its evidence (rank.c): after cx_rank_fuse, each canon
 * thread found is lifted just above the best-scored hit found that it
 * cites as evidence (inside the read snapshot). CX_ENOMEM, store errors. */
int cx_rank_canon_over_evidence(cx_fuse *F);

/* The `limit` best hits, in order, into best[] (*nbest of them), staleness
 * asked lazily (it only ever lowers a score). */
void cx_rank_best(cx_fuse *F, size_t limit, cx_hit **best, size_t *nbest);

/* ---- snippets (snippet.c) ---- */

/* The query's phrases as the tokenizer sees them. */
typedef struct cx_qterms {
    char *arena;
    size_t len, cap;
    size_t off[CX_SNIPPET_MAX_QTOKENS];
    int n[CX_SNIPPET_MAX_QTOKENS];
    bool prefix[CX_SNIPPET_MAX_QTOKENS]; /* a prefix token (last of a phrase with '*') */
    int ntok;
    struct {
        int first, ntok;
    } ph[CX_FTS_MAX_TERMS];
    int nph;
    bool full; /* out of room: later tokens are not matched */
    uint32_t stem_initials; /* first letters of the stems (bit c - 'a') */
} cx_qterms;

/* Reads the phrases of an expression cx_fts_build_query made into t, as
 * the tokenizer sees them; t->arena is the caller's to free (also on
 * failure). CX_ENOMEM. */
int cx_snippet_terms(cx_search_ext *e, const char *expr, cx_qterms *t);

/* About `tokens` tokens of `text` around its best cluster of the query's
 * matches (all of it when it is at most `whole` bytes or `tokens`
 * tokens), marked with «…»; "…" where text was left out. Never NULL
 * unless out of memory for the string itself. */
json_t *cx_snippet_make(cx_search_ext *e, const cx_qterms *t, const char *text, size_t tokens,
                        size_t whole);

/* ---- the answer (answer.c) ---- */

typedef struct cx_answer {
    json_t *res, *results;
    size_t used, budget; /* bytes of the serialised answer (cx_store_budget_bytes) */
    bool truncated;
    bool explain; /* every field and why (cx_search_query.explain) */
    json_t *corrected; /* owned: the words corrected (typo.c), or NULL */
} cx_answer;

/* Starts the answer to q: the query echoed (bad UTF-8 as U+FFFD), the mode,
 * and the budget of q->max_tokens. CX_ENOMEM. */
int cx_answer_begin(cx_answer *a, const cx_search_query *q);

/* Adds the result objects of best[0..n) while they fit the budget (the
 * first always goes in, its snippet cut); a hit whose row is gone is
 * skipped. */
int cx_answer_add(cx_answer *a, cx_store *s, cx_search_ext *e, const cx_qterms *t,
                  cx_hit *const *best, size_t n);

/* Ends the answer (count, results, truncated, degraded when set,
 * corrected when a->corrected is set) into *out, which the caller owns. */
void cx_answer_end(cx_answer *a, const char *degraded, json_t **out);

/* Frees what an unfinished answer holds. */
void cx_answer_free(cx_answer *a);
