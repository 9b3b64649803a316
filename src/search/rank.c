/* SPDX-License-Identifier: Apache-2.0 */
/* The keyword list and the ranking of every list's hits.
 *
 * Keyword list. Every word must match first (AND), up to CX_SEARCH_LIST_N
 * items; when that finds fewer than the answer's limit, items matching any
 * word (OR) fill the list, ranked after them. Identifiers match whole or by
 * their parts (fts.c and the "cortex" tokenizer in text/tokenizer.c).
 *
 * Bounded ranking. FTS5's own `ORDER BY rank` scores every matching row, and
 * its bm25() first walks the whole posting list of every phrase to count
 * documents; for a word found in half of 100k notes that is ~100 ms. So a
 * search scores a bounded set of candidates: the newest CANDIDATES rows that
 * match (FTS5 walks posting lists newest first cheaply, without scoring),
 * and, when that window was full, the newest CURATED_CANDIDATES matches
 * among drafts, threads and artifacts (a second, small index of the items a
 * team trusts most), so that an older canon thread is still found. The
 * scorer, cx_bm25(), is FTS5's bm25 with the document frequency of each
 * phrase counted over at most SAMPLE hits and extrapolated from the row-id
 * range they cover, instead of over the whole posting list. When a query
 * matches fewer rows than the window and each phrase fewer than SAMPLE
 * rows, ranking and scores are exactly bm25(items_fts, 4.0, 1.0, 2.0).
 * A kind or status filter that only curated items pass searches the small
 * index alone. Older matches beyond the window are what the semantic list
 * is for.
 *
 * Fusion. Hybrid sums 1/(RRF_K + rank) over the lists an item is in, the
 * built-in embedder's list at half weight (SEM_BUILTIN_WEIGHT: a hashed
 * n-gram vector is a weaker witness than a word match, and at 100k items
 * its near misses outvoted exact keyword hits; a configured model's list,
 * and the built-in stand-in for items it has not embedded yet, count
 * fully); with one list only (the other found nothing or could not
 * run) that list's own score is used. Then trust, recency and staleness multiply it (see
 * search.h). The staleness callback is asked lazily, best first, only
 * while an item could still make the answer.
 *
 * Canon above its evidence. A canon thread is a reviewed draft, and a
 * draft cites the items it was made from as evidence (a session digest
 * cites the session's observations). When the same search found a canon
 * thread and items that are its own evidence, the thread inherits their
 * match: its score is lifted just above the best of them (and its keyword
 * tier to theirs), whatever the trust factors alone would give. The
 * reviewed summary of a fact thus comes before the raw notes it was made
 * from, while the factors stay gentle for everything else (an unrelated
 * observation that matches better still ranks first). A thread that no
 * list found is not added: every result matches the query. Staleness
 * applies after the lift. */
#include "search/search-internal.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RRF_K 60.0
#define RRF_TIE 1e-4 /* weight of the lists' own scores, to break RRF ties */
#define SEM_BUILTIN_WEIGHT 0.5 /* the built-in embedder's list in the fusion */

/* Trust factors (DESIGN.md: canon thread > accepted artifact > published
 * artifact > draft > observation), recency and staleness. */
#define STALE_FACTOR 0.6
#define RECENCY_FLOOR 0.9      /* the factor for very old items */
#define RECENCY_HALF_DAYS 90.0 /* the recency bonus halves every 90 days */

/* ---- the keyword list ---- */

/* The kinds of the curated index (items_curated_fts): drafts, threads and
 * artifacts. */
static bool kind_curated(cx_kind k) {
    return k == CX_KIND_DRAFT || k == CX_KIND_THREAD || k == CX_KIND_ARTIFACT;
}

/* A status that only curated kinds may hold (every status but recorded). */
static bool status_curated(cx_status st) {
    if (st == CX_STATUS_INVALID)
        return false;
    for (int k = 0; k < CX_KIND_COUNT; k++)
        if (!kind_curated((cx_kind)k) && cx_status_allowed((cx_kind)k, st))
            return false;
    return true;
}

#define SCORE(t) "cx_bm25(" t ", 4.0, 1.0, 2.0)"
#define FILTERS                                                                           \
    " AND (?3 IS NULL OR i.kind = ?3) AND (?4 IS NULL OR i.status = ?4)"                   \
    " AND (?5 IS NULL OR i.subcortex = ?5)"                                                \
    " AND (?6 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?6) q"                        \
    "      WHERE q.value NOT IN (SELECT value FROM json_each(i.tags))))"

/* Every match, scored (FTS5 walks the posting lists; no sort, no limit). */
static const char *const SQL_SCAN[2][2] = {
    {"SELECT rowid, " SCORE("items_fts") " FROM items_fts WHERE items_fts MATCH ?1",
     "SELECT f.rowid, " SCORE("items_fts") " FROM items_fts f JOIN items i ON i.rid = f.rowid"
     " WHERE items_fts MATCH ?1" FILTERS},
    {"SELECT rowid, " SCORE("items_curated_fts") " FROM items_curated_fts"
     " WHERE items_curated_fts MATCH ?1",
     "SELECT f.rowid, " SCORE("items_curated_fts") " FROM items_curated_fts f"
     " JOIN items i ON i.rid = f.rowid WHERE items_curated_fts MATCH ?1" FILTERS}};
static const char *const SQL_DF[2] = {
    "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1",
    "SELECT count(*) FROM items_curated_fts WHERE items_curated_fts MATCH ?1"};

/* ---- exact document frequencies ---- */

/* One FTS5 phrase of an expression: its quoted string as written there,
 * with its '*' when a prefix. */
typedef struct phrase {
    const char *s;
    size_t n;
    int64_t df;
    double ub; /* the most it can add to a score: idf * (k1 + 1) */
} phrase;

/* The phrases of an expression fts.c built, in FTS5's numbering (the order
 * their strings appear). *n of them into out[0..max); the count even when
 * larger than max. */
static size_t expr_phrases(const char *expr, phrase *out, size_t max) {
    size_t n = 0;
    for (const char *p = expr; *p;) {
        if (*p != '"') {
            p++;
            continue;
        }
        const char *start = p++;
        while (*p && !(*p == '"' && p[1] != '"'))
            p += *p == '"' ? 2 : 1;
        if (*p == '"')
            p++;
        if (*p == '*')
            p++;
        if (n < max)
            out[n] = (phrase){.s = start, .n = (size_t)(p - start)};
        n++;
    }
    return n;
}

#define DF_SLOTS 8192 /* phrases whose counts a store keeps between searches */

typedef struct df_slot {
    char *key; /* the index ('m' or 'c') and the phrase's string */
    int64_t df;
} df_slot;

/* Counts of phrases, valid while the store has not changed. */
struct cx_rank_cache {
    int64_t changes, version; /* sqlite3_total_changes64, PRAGMA data_version */
    bool valid;
    int64_t nrow[2];          /* rows of each index, -1 = not known yet */
    df_slot slot[DF_SLOTS];
    size_t used;
    /* what ranking reads of an item when the query has no filters: its
     * trust, time and provenance (one SQL row each, ~5 k instructions) */
    struct meta_slot *meta;   /* META_SLOTS, open addressing by rid */
    size_t meta_used;
    /* the length in tokens of each row, a block of DL_BLOCK row ids at a
     * time: the store's copy (store/lengths.c) when it has one at these
     * edits; else FTS5 is asked per row (items_fts_docsize, ~4 k
     * instructions a row) until DL_LOAD_AFTER rows of the block were, and
     * then the block is read from FTS5 whole (~1 k a row): a rare word
     * scoring a few hundred rows spread over the store must not read
     * every block */
    cx_store *s;
    bool dl_known;      /* the index's state when the lengths were read: */
    int64_t dl_indexed, dl_edits;
    uint16_t *dl;       /* by row id; saturates at UINT16_MAX */
    uint8_t *dl_loaded; /* by block: DL_NOT_TRIED, DL_LOADED, DL_NOT_STORED */
    uint16_t *dl_asked; /* by block: rows asked for while not loaded */
    size_t dl_blocks;
    int dl_err;         /* the first error loading, reported after the scan */
};

#define META_SLOTS 16384 /* items whose metadata a store keeps between searches */

typedef struct meta_slot {
    int64_t rid; /* 0: empty */
    int64_t updated;
    json_t *prov;
    cx_trust trust;
} meta_slot;

/* The counts and the items' metadata: true until the store changes at
 * all. */
static void cache_clear(cx_rank_cache *c) {
    for (size_t i = 0; i < DF_SLOTS; i++) {
        free(c->slot[i].key);
        c->slot[i].key = NULL;
    }
    c->used = 0;
    c->nrow[0] = c->nrow[1] = -1;
    for (size_t i = 0; c->meta && c->meta_used && i < META_SLOTS; i++) {
        json_decref(c->meta[i].prov);
        c->meta[i] = (meta_slot){0};
    }
    c->meta_used = 0;
}

/* The row lengths: true until an indexed row changes (a row added since
 * has none yet and is asked of FTS5). */
static void lengths_clear(cx_rank_cache *c) {
    if (c->dl_loaded)
        memset(c->dl_loaded, 0, c->dl_blocks);
    if (c->dl_asked)
        memset(c->dl_asked, 0, c->dl_blocks * sizeof *c->dl_asked);
}

void cx_rank_cache_free(cx_rank_cache *c) {
    if (!c)
        return;
    cache_clear(c);
    lengths_clear(c);
    free(c->meta);
    free(c->dl);
    free(c->dl_loaded);
    free(c->dl_asked);
    free(c);
}

#define DL_BLOCK CX_STORE_LENGTHS_BLOCK
#define DL_LOAD_AFTER 256 /* rows of a block asked for before FTS5 is read for it */
#define DL_MAX_ROWID ((int64_t)CX_STORE_LENGTHS_BLOCK * CX_STORE_LENGTHS_MAX_BLOCKS)

enum { DL_NOT_TRIED, DL_LOADED, DL_NOT_STORED }; /* dl_loaded[] */


/* Makes room for the block holding row id `rid`. */
static int dl_grow(cx_rank_cache *c, int64_t rid) {
    size_t blk = (size_t)(rid / DL_BLOCK);
    if (blk < c->dl_blocks)
        return 0;
    size_t nb = blk + 1 + (blk + 1) / 2;
    uint16_t *dl = realloc(c->dl, nb * DL_BLOCK * sizeof *dl);
    if (!dl)
        return CX_ENOMEM;
    c->dl = dl;
    uint8_t *ld = realloc(c->dl_loaded, nb);
    if (!ld)
        return CX_ENOMEM;
    memset(ld + c->dl_blocks, 0, nb - c->dl_blocks);
    c->dl_loaded = ld;
    uint16_t *asked = realloc(c->dl_asked, nb * sizeof *asked);
    if (!asked)
        return CX_ENOMEM;
    memset(asked + c->dl_blocks, 0, (nb - c->dl_blocks) * sizeof *asked);
    c->dl_asked = asked;
    c->dl_blocks = nb;
    return 0;
}

/* Loads the lengths of the block holding row id `rid`: as the store keeps
 * them, or with `whole` from FTS5 when it has none at these edits. */
static int dl_load(cx_rank_cache *c, int64_t rid, bool whole) {
    size_t blk = (size_t)(rid / DL_BLOCK);
    bool got = false;
    int r = cx_store_lengths_get(c->s, (int64_t)blk, c->dl_edits, c->dl_indexed, whole,
                                 c->dl + blk * DL_BLOCK, &got);
    if (r == 0)
        c->dl_loaded[blk] = got ? DL_LOADED : DL_NOT_STORED;
    return r;
}

/* The length in tokens of row `rid`, or -1 when FTS5 should be asked. */
static int dl_get(cx_rank_cache *c, int64_t rid) {
    if (!c || !c->s || rid < 0 || rid >= DL_MAX_ROWID || c->dl_err)
        return -1;
    size_t blk = (size_t)(rid / DL_BLOCK);
    if (blk >= c->dl_blocks || c->dl_loaded[blk] != DL_LOADED) {
        int r = dl_grow(c, rid);
        if (r == 0 && c->dl_loaded[blk] == DL_NOT_TRIED)
            r = dl_load(c, rid, false); /* a copy of a few KiB, when the store has one */
        else if (r == 0 && ++c->dl_asked[blk] >= DL_LOAD_AFTER)
            r = dl_load(c, rid, true);
        if (r) {
            c->dl_err = r;
            return -1;
        }
        if (c->dl_loaded[blk] != DL_LOADED)
            return -1; /* FTS5 reads this row's length */
    }
    uint16_t v = c->dl[rid];
    return v == UINT16_MAX || v == 0 ? -1 : v; /* 0: a row added since; ask FTS5 */
}

/* Empties the cache when the store changed since it was filled. */
static int cache_check(cx_store *s, cx_rank_cache *c) {
    sqlite3 *db = cx_store_sqlite(s);
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, "PRAGMA data_version", &st), rc;
    if (r)
        return r;
    int64_t version = (rc = sqlite3_step(st)) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the data version");
    int64_t changes = sqlite3_total_changes64(db);
    if (!c->valid || c->changes != changes || c->version != version) {
        cache_clear(c);
        c->changes = changes;
        c->version = version;
        c->valid = true;
    }
    return 0;
}

int cx_rank_cache_begin(cx_search_ext *e, cx_store *s) {
    if (!e->rank_cache && !(e->rank_cache = calloc(1, sizeof *e->rank_cache)))
        return CX_ENOMEM;
    cx_rank_cache *c = e->rank_cache;
    int64_t indexed = 0, edits = 0;
    int r = cache_check(s, c);
    if (r == 0)
        r = cx_store_fts_generation(s, &indexed, &edits);
    if (r)
        return r;
    if (!c->dl_known || edits != c->dl_edits || indexed < c->dl_indexed)
        lengths_clear(c);
    c->dl_known = true;
    c->dl_indexed = indexed;
    c->dl_edits = edits;
    c->s = s;
    c->dl_err = 0;
    return 0;
}

int cx_rank_warm_lengths(cx_search_ext *e, cx_store *s, bool *more) {
    *more = false;
    int r = cx_rank_cache_begin(e, s);
    if (r)
        return r;
    cx_rank_cache *c = e->rank_cache;
    /* the next block that holds a row (row ids may be sparse: blocks
     * without rows are never allocated) and is not loaded yet */
    for (int64_t from = 0; from < DL_MAX_ROWID;) {
        int64_t rid = 0;
        bool have = false;
        if ((r = cx_store_lengths_next_row(s, from, &rid, &have)))
            return r;
        if (!have || rid >= DL_MAX_ROWID)
            return 0;
        size_t blk = (size_t)(rid / DL_BLOCK);
        from = (int64_t)(blk + 1) * DL_BLOCK;
        if (blk < c->dl_blocks && c->dl_loaded[blk] == DL_LOADED)
            continue;
        if ((r = dl_grow(c, rid)) || (r = dl_load(c, rid, true)))
            return r;
        *more = true;
        return 0; /* one block a call: a request waits for one at most */
    }
    return 0;
}

int cx_rank_row_len(cx_search_ext *e, int64_t rid) {
    return dl_get(e->rank_cache, rid);
}

static uint64_t hash_bytes(char idx, const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (unsigned char)idx;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static int run_count(cx_store *s, const char *sql, const char *arg, size_t n, int64_t *out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st), rc;
    if (r)
        return r;
    if (arg)
        sqlite3_bind_text(st, 1, arg, (int)n, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(s, rc, "counting matches");
}

/* The number of rows of index idx (0: all items, 1: curated) holding
 * phrase p: counted by FTS5 over the whole posting list, or from the
 * cache. */
static int phrase_df(cx_store *s, cx_rank_cache *c, int idx, const phrase *p, int64_t *df) {
    char tag = idx ? 'c' : 'm';
    uint64_t h = hash_bytes(tag, p->s, p->n);
    size_t at = (size_t)(h % DF_SLOTS);
    for (size_t probe = 0; probe < DF_SLOTS; probe++, at = (at + 1) % DF_SLOTS) {
        df_slot *sl = &c->slot[at];
        if (!sl->key)
            break;
        if (sl->key[0] == tag && strlen(sl->key + 1) == p->n && memcmp(sl->key + 1, p->s, p->n) == 0) {
            *df = sl->df;
            return 0;
        }
    }
    int r = run_count(s, SQL_DF[idx], p->s, p->n, df);
    if (r || c->used >= DF_SLOTS / 2) /* half full: stop adding, probes stay short */
        return r;
    df_slot *sl = &c->slot[at];
    if (sl->key || !(sl->key = malloc(p->n + 2)))
        return 0; /* not kept: counted again next time */
    sl->key[0] = tag;
    memcpy(sl->key + 1, p->s, p->n);
    sl->key[p->n + 1] = '\0';
    sl->df = *df;
    c->used++;
    return 0;
}

static const char *const SQL_NROW[2] = {
    "SELECT cx_fts_rows(items_fts) FROM items_fts WHERE items_fts MATCH ?1 LIMIT 1",
    "SELECT cx_fts_rows(items_curated_fts) FROM items_curated_fts"
    " WHERE items_curated_fts MATCH ?1 LIMIT 1"};

/* cx_fts_rows(fts): the rows of the index (FTS5 keeps the count). */
void cx_rank_rows(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                  sqlite3_value **vals) {
    (void)nval;
    (void)vals;
    sqlite3_int64 n = 0;
    int rc = api->xRowCount(fts, &n);
    if (rc != SQLITE_OK)
        sqlite3_result_error_code(ctx, rc);
    else
        sqlite3_result_int64(ctx, n);
}

/* Document frequency, idf and bound of every phrase, and *nrow. A phrase
 * no row holds gets idf 0 (it adds nothing). */
static int phrase_stats(cx_store *s, cx_rank_cache *c, int idx, phrase *ph, size_t np,
                        int64_t *nrow) {
    int r;
    for (size_t i = 0; i < np; i++)
        if ((r = phrase_df(s, c, idx, &ph[i], &ph[i].df)))
            return r;
    if (c->nrow[idx] < 0) {
        for (size_t i = 0; i < np && c->nrow[idx] < 0; i++)
            if (ph[i].df > 0 && (r = run_count(s, SQL_NROW[idx], ph[i].s, ph[i].n, &c->nrow[idx])))
                return r;
    }
    *nrow = c->nrow[idx] > 0 ? c->nrow[idx] : 0;
    return 0;
}

static double idf_of(int64_t nrow, int64_t df) {
    if (df <= 0)
        return 0.0;
    double idf = log(((double)nrow - (double)df + 0.5) / ((double)df + 0.5));
    return idf <= 0.0 ? 1e-6 : idf; /* as FTS5's bm25 */
}

/* ---- ranking every match ---- */

typedef struct cand {
    int64_t rid;
    double score; /* cx_bm25: lower is better */
    int pass;     /* 0 = every word, 1 = any word */
} cand;

/* a ranks below b: a higher score, or the same and older */
static bool worse(const cand *a, const cand *b) {
    return a->score > b->score || (a->score == b->score && a->rid < b->rid);
}

typedef struct kwrun {
    cx_store *s;
    cx_search_ext *e;
    const cx_search_query *q;
    const char *tags; /* JSON array text or NULL */
    bool filtered;
    int idx;          /* 0: items_fts; 1: items_curated_fts (filters only curated pass) */
    cand chosen[CX_SEARCH_LIST_N];
    size_t nchosen;
    int64_t taken[CX_SEARCH_LIST_N]; /* rids of chosen, sorted */
    cand heap[CX_SEARCH_LIST_N];     /* the best of a pass; the worst at [0] */
    size_t nheap, k;
    cx_buf expr;
} kwrun;

static void heap_down(cand *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_offer(kwrun *R, const cand *c) {
    if (R->nheap < R->k) {
        size_t i = R->nheap++;
        R->heap[i] = *c;
        while (i > 0 && worse(&R->heap[i], &R->heap[(i - 1) / 2])) { /* the worst rises */
            cand t = R->heap[i];
            R->heap[i] = R->heap[(i - 1) / 2];
            R->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (R->k > 0 && worse(&R->heap[0], c)) {
        R->heap[0] = *c;
        heap_down(R->heap, R->nheap, 0);
    }
}

static int cmp_rid(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Scores every row matching expr (the first e->nidf phrases score) and
 * keeps the best k not chosen already. */
static int scan(kwrun *R, const char *expr, int pass) {
    sqlite3_stmt *st;
    const cx_search_query *q = R->q;
    int r = cx_store_prepare(R->s, SQL_SCAN[R->idx][R->filtered], &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
    if (R->filtered) {
        cx_store_bind_text(st, 3, q->kind && *q->kind ? q->kind : NULL);
        cx_store_bind_text(st, 4, q->status && *q->status ? q->status : NULL);
        cx_store_bind_text(st, 5, q->subcortex && *q->subcortex ? q->subcortex : NULL);
        cx_store_bind_text(st, 6, R->tags);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cand c = {.rid = sqlite3_column_int64(st, 0), .score = sqlite3_column_double(st, 1),
                  .pass = pass};
        if (R->nchosen && bsearch(&c.rid, R->taken, R->nchosen, sizeof R->taken[0], cmp_rid))
            continue;
        heap_offer(R, &c);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cx_store_sqlerr(R->s, rc, "searching");
}

/* Appends the heap, best first, to chosen. The heap sorts itself (the
 * worst, at its root, goes to the end each time); the rids taken are kept
 * sorted by insertion: fifty at most, cheaper than two qsorts. */
static void take_heap(kwrun *R) {
    for (size_t n = R->nheap; n > 1; n--) {
        cand t = R->heap[0];
        R->heap[0] = R->heap[n - 1];
        R->heap[n - 1] = t;
        heap_down(R->heap, n - 1, 0);
    }
    for (size_t i = 0; i < R->nheap && R->nchosen < CX_SEARCH_LIST_N; i++) {
        int64_t rid = R->heap[i].rid;
        size_t j = R->nchosen;
        R->chosen[R->nchosen++] = R->heap[i];
        for (; j > 0 && R->taken[j - 1] > rid; j--)
            R->taken[j] = R->taken[j - 1];
        R->taken[j] = rid;
    }
    R->nheap = 0;
}

static int by_bound(const void *a, const void *b) {
    const phrase *x = *(const phrase *const *)a, *y = *(const phrase *const *)b;
    if (x->ub != y->ub)
        return x->ub > y->ub ? -1 : 1;
    return x->df < y->df ? -1 : x->df > y->df;
}

/* Appends "(p1 OR p2 ...)" of ord[from..to) to the expression buffer. */
static int put_or(cx_buf *b, phrase *const *ord, size_t from, size_t to) {
    int r = cx_buf_add(b, "(", 1);
    for (size_t i = from; r == 0 && i < to; i++) {
        if (i > from)
            r = cx_buf_add(b, " OR ", 4);
        if (r == 0)
            r = cx_buf_add(b, ord[i]->s, ord[i]->n);
    }
    return r ? r : cx_buf_add(b, ")", 1);
}

#define FIRST_ROWS 2000 /* rows the first step of a pass may score (at least one phrase) */
#define K1_PLUS_1 2.2   /* bm25's k1 + 1: a phrase adds less than idf * 2.2 */

/* One pass over expression expr: exact document frequencies, then its
 * best matches into chosen, as if every match were scored, without
 * scoring rows that cannot make the list (MaxScore). A phrase adds less
 * than its bound (idf * (k1 + 1)) to any row's score. Phrases are taken
 * most informative first: a first step scores the rows holding the
 * rarest phrases (FIRST_ROWS rows or one phrase), each later step those
 * holding the next phrases and none taken before, until the bounds of the
 * phrases not taken add up to less than the score of the list's last
 * row: a row holding none of the phrases taken cannot reach the list. No
 * row is scored twice. The expression's own phrases come first in each
 * step's expression, so they keep their numbers and alone score. */
static int rank_pass(kwrun *R, const char *expr, int pass, const cx_fts_opts *w) {
    cx_search_ext *e = R->e;
    size_t np = expr_phrases(expr, NULL, 0);
    phrase *ph = calloc(np ? np : 1, sizeof *ph);
    phrase **ord = calloc(np ? np : 1, sizeof *ord);
    double *idf = calloc(np ? np : 1, sizeof *idf);
    int64_t nrow = 0;
    int r = 0;
    if (!ph || !ord || !idf) {
        r = CX_ENOMEM;
        goto out;
    }
    expr_phrases(expr, ph, np);
    if ((r = phrase_stats(R->s, e->rank_cache, R->idx, ph, np, &nrow)))
        goto out;
    double rest = 0.0;
    size_t live = 0;
    for (size_t i = 0; i < np; i++) {
        /* a correction weighs less than the word as typed (fts.c) */
        double wt = w && i < (size_t)w->nphrase && i < CX_FTS_MAX_PHRASES ? w->weight[i] : 1.0;
        idf[i] = idf_of(nrow, ph[i].df) * wt;
        ph[i].ub = idf[i] * K1_PLUS_1;
        if (ph[i].df > 0) {
            ord[live++] = &ph[i];
            rest += ph[i].ub;
        }
    }
    if (live == 0)
        goto out; /* nothing matches */
    e->idf = idf;
    e->nidf = (int)np;
    R->k = CX_SEARCH_LIST_N - R->nchosen;
    qsort(ord, live, sizeof *ord, by_bound);
    size_t next = 0;
    int64_t rows = 0;
    while (r == 0 && next < live) {
        size_t from = next;
        if (from == 0) { /* the rarest phrases up to FIRST_ROWS rows, at least one */
            do
                rows += ord[next++]->df;
            while (next < live && (e->exhaustive || rows + ord[next]->df <= FIRST_ROWS));
        } else { /* enough that what is left cannot reach the list */
            double theta = R->nheap == R->k ? -R->heap[0].score : -HUGE_VAL;
            do
                rest -= ord[next++]->ub;
            while (next < live && rest >= theta);
        }
        if (from == 0)
            for (size_t i = 0; i < next; i++)
                rest -= ord[i]->ub;
        /* (expr) AND ((new) NOT (earlier)): the expression's own phrases
         * come first, so they keep their numbers and alone score */
        cx_buf_reset(&R->expr);
        if (next == live && from == 0) {
            r = cx_buf_adds(&R->expr, expr);
        } else {
            if ((r = cx_buf_adds(&R->expr, "(")) == 0 && (r = cx_buf_adds(&R->expr, expr)) == 0 &&
                (r = cx_buf_adds(&R->expr, ") AND (")) == 0)
                r = put_or(&R->expr, ord, from, next);
            if (r == 0 && from > 0 && (r = cx_buf_adds(&R->expr, " NOT ")) == 0)
                r = put_or(&R->expr, ord, 0, from);
            if (r == 0)
                r = cx_buf_add(&R->expr, ")", 1);
        }
        if (r == 0)
            r = scan(R, cx_buf_str(&R->expr), pass);
        if (r == 0 && R->nheap == R->k && R->k > 0 && next < live &&
            rest < -R->heap[0].score)
            break; /* no row left unscored can make the list */
    }
    if (r == 0)
        take_heap(R);
out:
    e->idf = NULL;
    e->nidf = 0;
    free(ph);
    free(ord);
    free(idf);
    return r;
}

/* One pass from the posting cache (postings.c) instead of FTS5: the rows
 * expr matches, each scored as cx_bm25 scores it (the same statistics, the
 * same sums in the same order, so the same doubles), the best k not
 * chosen already kept. *done is false when the cache cannot answer expr. */
static int rank_pass_mem(kwrun *R, const char *expr, int pass, const cx_fts_opts *w,
                         bool *done) {
    const double k1 = 1.2, b = 0.75;
    const cx_pmatch *M = NULL;
    bool ok = false;
    double *idf = NULL, *freq = NULL, *bound = NULL;
    size_t *at = NULL, *held = NULL;
    int r = cx_postings_match(R->e, R->s, expr, &M, &ok);
    *done = r == 0 && ok;
    if (!*done)
        goto out;
    const cx_pmatch m = *M;
    size_t np = m.nphrase;
    if (!(idf = calloc(np ? np : 1, sizeof *idf)) || !(freq = calloc(np ? np : 1, sizeof *freq)) ||
        !(bound = calloc(np ? np : 1, sizeof *bound)) || !(at = calloc(np ? np : 1, sizeof *at)) ||
        !(held = calloc(np ? np : 1, sizeof *held))) {
        r = CX_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        double wt = w && i < (size_t)w->nphrase && i < CX_FTS_MAX_PHRASES ? w->weight[i] : 1.0;
        idf[i] = idf_of(m.nrow, (int64_t)m.list[i].n) * wt;
        bound[i] = idf[i] * (k1 + 1.0); /* a phrase adds less than this to a row */
    }
    double avgdl = m.nrow > 0 && m.ntok > 0 ? (double)m.ntok / (double)m.nrow : 1.0;
    R->k = CX_SEARCH_LIST_N - R->nchosen;
    size_t t = 0; /* rows and the rids taken both ascend: one walk of each */
    for (size_t j = 0; j < m.nrows; j++) {
        int64_t rid = m.rows[j];
        while (t < R->nchosen && R->taken[t] < rid)
            t++;
        if (t < R->nchosen && R->taken[t] == rid)
            continue;
        /* the phrases the row holds, in order, and the bound of its score */
        size_t nheld = 0;
        double ub = 0.0;
        for (size_t i = 0; i < np; i++) {
            const cx_plist *l = &m.list[i];
            size_t k = at[i];
            while (k < l->n && l->rid[k] < (uint32_t)rid) /* short steps: rows ascend */
                k++;
            at[i] = k;
            if (k < l->n && l->rid[k] == (uint32_t)rid && l->hits[k] > 0) {
                freq[i] = (double)l->hits[k];
                held[nheld++] = i;
                ub += bound[i];
            }
        }
        /* a row whose phrases cannot reach the list's last score is not
         * scored (the margin covers rounding) */
        if (R->nheap == R->k && (R->k == 0 || ub * (1.0 + 1e-9) < -R->heap[0].score))
            continue;
        int tokens = (size_t)rid < m.nlen ? m.len[rid] : 0; /* every row of a list has it */
        double score = 0.0, norm = k1 * (1 - b + b * (double)tokens / avgdl);
        for (size_t h = 0; h < nheld; h++) { /* an absent phrase adds an exact 0: skipped */
            size_t i = held[h];
            score += idf[i] * (freq[i] * (k1 + 1.0)) / (freq[i] + norm);
        }
        cand c = {.rid = rid, .score = -score, .pass = pass};
        heap_offer(R, &c);
    }
    take_heap(R);
out:
    free(idf);
    free(freq);
    free(bound);
    free(at);
    free(held);
    return r;
}

/* ---- the scorer ---- */

static int count_hit(const Fts5ExtensionApi *api, Fts5Context *fts, void *ud) {
    (void)api;
    (void)fts;
    (*(int64_t *)ud)++;
    return SQLITE_OK;
}

typedef struct rank_data {
    int nphrase; /* phrases that score */
    double avgdl;
    double *idf, *freq;
} rank_data;

/* The statistics of one query: the average length, and the idf of each
 * phrase as the keyword pass computed it (rank_pass), or else counted here
 * over each whole posting list. */
static rank_data *rank_setup(cx_search_ext *e, const Fts5ExtensionApi *api, Fts5Context *fts,
                             int *rc) {
    int np = api->xPhraseCount(fts);
    if (e->idf && e->nidf <= np)
        np = e->nidf; /* the rest of the expression only selects rows */
    rank_data *d = sqlite3_malloc64(sizeof *d + sizeof(double) * 2 * (size_t)(np > 0 ? np : 1));
    if (!d) {
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    d->nphrase = np;
    d->idf = (double *)(d + 1);
    d->freq = d->idf + (np > 0 ? np : 1);
    sqlite3_int64 nrow = 0, ntok = 0;
    *rc = api->xRowCount(fts, &nrow);
    if (*rc == SQLITE_OK)
        *rc = api->xColumnTotalSize(fts, -1, &ntok);
    d->avgdl = nrow > 0 && ntok > 0 ? (double)ntok / (double)nrow : 1.0;
    for (int i = 0; *rc == SQLITE_OK && i < np; i++) {
        if (e->idf) {
            d->idf[i] = e->idf[i];
            continue;
        }
        int64_t hits = 0;
        *rc = api->xQueryPhrase(fts, i, &hits, count_hit);
        d->idf[i] = idf_of(nrow, hits);
    }
    if (*rc != SQLITE_OK) {
        sqlite3_free(d);
        return NULL;
    }
    *rc = api->xSetAuxdata(fts, d, sqlite3_free);
    return *rc == SQLITE_OK ? d : NULL;
}

/* cx_bm25(items_fts, w_title, w_body, w_tags): bm25 as FTS5 computes it
 * (k1 = 1.2, b = 0.75, negative: lower is better), document frequencies as
 * described at the top of this file. */
void cx_rank_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                  sqlite3_value **vals) {
    const double k1 = 1.2, b = 0.75;
    cx_search_ext *e = api->xUserData(fts);
    int rc = SQLITE_OK;
    rank_data *d = api->xGetAuxdata(fts, 0);
    if (!d && !(d = rank_setup(e, api, fts, &rc))) {
        sqlite3_result_error_code(ctx, rc == SQLITE_OK ? SQLITE_ERROR : rc);
        return;
    }
    for (int i = 0; i < d->nphrase; i++)
        d->freq[i] = 0.0;
    int ninst = 0, tokens = 0;
    rc = api->xInstCount(fts, &ninst);
    for (int i = 0; rc == SQLITE_OK && i < ninst; i++) {
        int ip, ic, io;
        rc = api->xInst(fts, i, &ip, &ic, &io);
        if (rc == SQLITE_OK && ip >= 0 && ip < d->nphrase)
            d->freq[ip] += ic < nval ? sqlite3_value_double(vals[ic]) : 1.0;
    }
    if (rc == SQLITE_OK && (tokens = dl_get(e->rank_cache, api->xRowid(fts))) < 0)
        rc = api->xColumnSize(fts, -1, &tokens);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double score = 0.0, norm = k1 * (1 - b + b * (double)tokens / d->avgdl);
    for (int i = 0; i < d->nphrase; i++)
        score += d->idf[i] * (d->freq[i] * (k1 + 1.0)) / (d->freq[i] + norm);
    sqlite3_result_double(ctx, -score);
}

/* ---- fusion ---- */

/* Indexed by cx_trust (proto/wire.h). Gentle on purpose: RRF scores are
 * flat (ranks 1 and 5 of one list differ by 7%), so canon x1.125 lifts a
 * thread over an observation a few ranks better in both lists, not over
 * the best match of the query. Tuned on fixtures/relevance (trust queries:
 * canon first in every one). */
static const double trust_factors[CX_TRUST_COUNT] = {
    [CX_TRUST_CANON] = 1.125,  [CX_TRUST_ACCEPTED] = 1.09,   [CX_TRUST_PUBLISHED] = 1.06,
    [CX_TRUST_DRAFT] = 1.03,   [CX_TRUST_REJECTED] = 0.95,   [CX_TRUST_OBSERVATION] = 1.0,
    [CX_TRUST_COMMENT] = 1.0,  [CX_TRUST_OTHER] = 1.0,
};

_Static_assert(CX_FUSE_SLOTS >= 2 * CX_SEARCH_MAX_HITS && CX_SEARCH_MAX_HITS < UINT16_MAX &&
                   (CX_FUSE_SLOTS & (CX_FUSE_SLOTS - 1)) == 0,
               "the table of hits stays at most half full");

/* The hit of rid, added when new; NULL when the hits are full. */
static cx_hit *hit_get(cx_fuse *F, int64_t rid) {
    size_t k = (size_t)(((uint64_t)rid * UINT64_C(0x9e3779b97f4a7c15)) >> 40) & (CX_FUSE_SLOTS - 1);
    for (; F->at[k]; k = (k + 1) & (CX_FUSE_SLOTS - 1))
        if (F->h[F->at[k] - 1].rid == rid)
            return &F->h[F->at[k] - 1];
    if (F->n == CX_SEARCH_MAX_HITS)
        return NULL;
    cx_hit *h = &F->h[F->n++];
    *h = (cx_hit){.rid = rid, .trust = CX_TRUST_OTHER};
    F->at[k] = (uint16_t)F->n;
    return h;
}

#define META_BATCH 32 /* items read by one statement */

static const char SQL_META[] =
    "SELECT rid, kind, status, subcortex, tags, updated_at, provenance FROM items"
    " WHERE rid IN (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32)";

static bool has_all_tags(const json_t *want, const char *have_text) {
    if (!want || json_array_size(want) == 0)
        return true;
    json_t *have = cx_item_parse_array(have_text);
    bool ok = true;
    size_t i, j;
    json_t *w, *h;
    json_array_foreach(want, i, w) {
        bool found = false;
        json_array_foreach(have, j, h) found = found || json_equal(w, h);
        ok = ok && found;
    }
    json_decref(have);
    return ok;
}

/* What ranking needs of the item in the statement's row. */
static void meta_read(cx_fuse *F, cx_hit *h, sqlite3_stmt *st) {
    const cx_search_query *q = F->q;
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    const char *status = (const char *)sqlite3_column_text(st, 2);
    const char *sub = (const char *)sqlite3_column_text(st, 3);
    kind = kind ? kind : "";
    status = status ? status : "";
    sub = sub ? sub : "";
    h->trust = cx_trust_of(cx_kind_parse(kind), cx_status_parse(status));
    h->updated = sqlite3_column_int64(st, 5);
    h->prov = cx_item_parse_provenance((const char *)sqlite3_column_text(st, 6));
    h->pass = (!q->kind || !*q->kind || strcmp(q->kind, kind) == 0) &&
              (!q->status || !*q->status || strcmp(q->status, status) == 0) &&
              (!q->subcortex || !*q->subcortex || strcmp(q->subcortex, sub) == 0) &&
              has_all_tags(F->want_tags, (const char *)sqlite3_column_text(st, 4));
}

/* Reads what ranking needs of items hs[0..n) and whether each passes the
 * filters (an item that is gone passes nothing), META_BATCH a statement:
 * one statement per item cost ~7 k instructions, most of it the
 * statement's own stepping and reset. */
static meta_slot *meta_find(cx_rank_cache *c, int64_t rid, bool *found) {
    size_t at = (size_t)((uint64_t)rid * 0x9E3779B97F4A7C15ull >> 50) % META_SLOTS;
    for (size_t probe = 0; probe < META_SLOTS; probe++, at = (at + 1) % META_SLOTS) {
        meta_slot *m = &c->meta[at];
        if (m->rid == rid || m->rid == 0) {
            *found = m->rid == rid;
            return m;
        }
    }
    *found = false;
    return NULL;
}

/* The cache of items' metadata, true of this snapshot, when the query has
 * no filter (a filter reads the row for what it compares); NULL if none. */
static cx_rank_cache *meta_cache(cx_fuse *F) {
    const cx_search_query *q = F->q;
    if ((q->kind && *q->kind) || (q->status && *q->status) || (q->subcortex && *q->subcortex) ||
        F->want_tags)
        return NULL;
    cx_search_ext *e = NULL;
    if (cx_search_ext_get(F->s, &e) || (!F->meta_checked && cx_rank_cache_begin(e, F->s)))
        return NULL;
    F->meta_checked = true;
    cx_rank_cache *c = e->rank_cache;
    if (c && !c->meta && !(c->meta = calloc(META_SLOTS, sizeof *c->meta)))
        return NULL;
    return c;
}

static int hits_meta(cx_fuse *F, cx_hit **hs, size_t n) {
    cx_rank_cache *c = meta_cache(F);
    for (size_t i = 0; i < n;) {
        cx_hit *batch[META_BATCH];
        size_t k = 0;
        for (; i < n && k < META_BATCH; i++) {
            cx_hit *h = hs[i];
            bool found = false;
            meta_slot *m = c && !h->meta ? meta_find(c, h->rid, &found) : NULL;
            if (found) {
                h->meta = h->pass = true;
                h->trust = m->trust;
                h->updated = m->updated;
                h->prov = json_incref(m->prov);
            } else if (!h->meta) {
                batch[k++] = h;
                h->meta = true;
                h->pass = false;
            }
        }
        if (k == 0)
            continue;
        sqlite3_stmt *st;
        int r = cx_store_prepare(F->s, SQL_META, &st), rc;
        if (r)
            return r;
        for (size_t j = 0; j < META_BATCH; j++)
            if (j < k)
                sqlite3_bind_int64(st, (int)j + 1, batch[j]->rid);
            else
                sqlite3_bind_null(st, (int)j + 1);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t rid = sqlite3_column_int64(st, 0);
            for (size_t j = 0; j < k; j++) { /* each hit is in a batch once */
                if (batch[j]->rid != rid)
                    continue;
                meta_read(F, batch[j], st);
                bool found = false;
                meta_slot *m = c && c->meta_used < META_SLOTS / 4 * 3 ? meta_find(c, rid, &found)
                                                                   : NULL;
                if (m && !found) {
                    *m = (meta_slot){.rid = rid, .updated = batch[j]->updated,
                                     .prov = json_incref(batch[j]->prov),
                                     .trust = batch[j]->trust};
                    c->meta_used++;
                }
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return cx_store_sqlerr(F->s, rc, "reading a result");
    }
    return 0;
}

/* Adds a semantic list: hits that pass the filters get ranks 1.. */
int cx_rank_add_semantic(cx_fuse *F, const cx_sem_hit *sh, size_t n, int list, size_t *ranked) {
    int rank = 0, r;
    bool full = false;
    /* a batch of hits at a time, until the list is full */
    for (size_t at = 0; at < n && rank < CX_SEARCH_LIST_N && !full; at += META_BATCH) {
        cx_hit *batch[META_BATCH];
        size_t k = 0;
        for (size_t i = at; i < n && i < at + META_BATCH; i++) {
            if (!(batch[k] = hit_get(F, sh[i].rid))) {
                full = true; /* no room for more hits */
                break;
            }
            k++;
        }
        if ((r = hits_meta(F, batch, k)))
            return r;
        for (size_t j = 0; j < k && rank < CX_SEARCH_LIST_N; j++) {
            cx_hit *h = batch[j];
            if (!h->pass || h->sem_rank)
                continue;
            h->sem_rank = ++rank;
            h->sem_list = list;
            h->sim = sh[at + j].sim;
        }
    }
    *ranked = (size_t)rank;
    return 0;
}

static double recency(int64_t updated_ms, uint64_t now_ms) {
    double age_days = (double)((int64_t)now_ms - updated_ms) / 86400000.0;
    if (age_days < 0)
        age_days = 0;
    return RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * exp2(-age_days / RECENCY_HALF_DAYS);
}

static int by_base(const void *a, const void *b) {
    const cx_hit *x = *(const cx_hit *const *)a, *y = *(const cx_hit *const *)b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->base != y->base)
        return x->base > y->base ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid;
}

static int by_final(const void *a, const void *b) {
    const cx_hit *x = *(const cx_hit *const *)a, *y = *(const cx_hit *const *)b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid;
}

/* The `limit` best hits, in order, into best[] (*n of them). Staleness is
 * asked best first and only while a hit could still make the cut: it only
 * ever lowers a score. */
void cx_rank_best(cx_fuse *F, size_t limit, cx_hit **best, size_t *nbest) {
    const cx_search_query *q = F->q;
    cx_hit **order = malloc(sizeof *order * (F->n ? F->n : 1));
    *nbest = 0;
    if (!order)
        return;
    size_t n = 0;
    for (size_t i = 0; i < F->n; i++)
        if (F->h[i].pass && (F->h[i].kw_rank || F->h[i].sem_rank))
            order[n++] = &F->h[i];
    qsort(order, n, sizeof *order, by_base);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        cx_hit *h = order[i];
        const cx_hit *last = m >= limit ? best[limit - 1] : NULL;
        if (last && (h->tier > last->tier || (h->tier == last->tier && h->base < last->score)))
            break; /* even fresh it would not make it */
        h->score = h->base;
        if (q->stale && h->prov && !h->stale_done) {
            cx_item_check_stale(q->stale, q->stale_ud, h->prov, &h->stale, &h->changed);
            h->stale_done = true;
        }
        if (h->stale)
            h->score *= STALE_FACTOR;
        /* insert into best[0..m) by final score */
        size_t pos = m < limit ? m : limit;
        while (pos > 0 && by_final(&h, &best[pos - 1]) < 0)
            pos--;
        if (pos < limit) {
            size_t end = m < limit ? m : limit - 1;
            memmove(best + pos + 1, best + pos, (end - pos) * sizeof *best);
            best[pos] = h;
            if (m < limit)
                m++;
        }
    }
    *nbest = m;
    free(order);
}

/* ---- canon above its evidence ---- */

static bool found(const cx_hit *h) {
    return h->pass && (h->kw_rank || h->sem_rank);
}

static int by_rid_hit(const void *a, const void *b) {
    const cx_hit *x = *(const cx_hit *const *)a, *y = *(const cx_hit *const *)b;
    return x->rid < y->rid ? -1 : x->rid > y->rid;
}

/* Whether e would rank at or above h before staleness. */
static bool at_or_above(const cx_hit *e, const cx_hit *h) {
    return e->tier < h->tier || (e->tier == h->tier && e->base >= h->base);
}

/* Puts h just above e: the smallest step that stays a step once both are
 * multiplied by the stale factor. */
static void lift_above(cx_hit *h, const cx_hit *e) {
    double up = e->base + fabs(e->base) * 1e-9;
    h->tier = e->tier;
    h->base = up > e->base ? up : nextafter(e->base, HUGE_VAL);
    h->lifted = true;
}

typedef struct canon_link {
    cx_hit *thread;
    size_t first, n; /* its evidence hits: ev[first .. first + n) */
} canon_link;

int cx_rank_canon_over_evidence(cx_fuse *F) {
    size_t nfound = 0, ncanon = 0;
    for (size_t i = 0; i < F->n; i++) {
        nfound += found(&F->h[i]);
        ncanon += found(&F->h[i]) && F->h[i].trust == CX_TRUST_CANON;
    }
    if (ncanon == 0)
        return 0;
    int r = 0;
    cx_hit **byrid = malloc(sizeof *byrid * nfound);
    cx_hit **ev = malloc(sizeof *ev * ncanon * CX_STORE_MAX_EVIDENCE);
    canon_link *L = calloc(ncanon, sizeof *L);
    int64_t *rids = malloc(sizeof *rids * CX_STORE_MAX_EVIDENCE);
    if (!byrid || !ev || !L || !rids) {
        r = CX_ENOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < F->n; i++)
        if (found(&F->h[i]))
            byrid[k++] = &F->h[i];
    qsort(byrid, nfound, sizeof *byrid, by_rid_hit);
    /* each canon hit's evidence among the hits found */
    size_t nl = 0, m = 0;
    for (size_t i = 0; i < nfound; i++) {
        cx_hit *t = byrid[i];
        if (t->trust != CX_TRUST_CANON)
            continue;
        size_t n = 0;
        if ((r = cx_item_evidence_rids(F->s, t->rid, rids, CX_STORE_MAX_EVIDENCE, &n)))
            goto out;
        L[nl] = (canon_link){.thread = t, .first = m};
        for (size_t j = 0; j < n; j++) {
            cx_hit key = {.rid = rids[j]}, *kp = &key;
            cx_hit **e = bsearch(&kp, byrid, nfound, sizeof *byrid, by_rid_hit);
            if (e && *e != t)
                ev[m + L[nl].n++] = *e;
        }
        m += L[nl].n;
        nl += L[nl].n > 0;
    }
    /* a thread may cite a thread: repeat while something moves, at most
     * once per thread (a cycle of citations just stops there) */
    bool moved = true;
    for (size_t pass = 0; moved && pass <= nl; pass++) {
        moved = false;
        for (size_t i = 0; i < nl; i++)
            for (size_t j = 0; j < L[i].n; j++) {
                const cx_hit *e = ev[L[i].first + j];
                if (at_or_above(e, L[i].thread)) {
                    lift_above(L[i].thread, e);
                    moved = true;
                }
            }
    }
out:
    free(byrid);
    free(ev);
    free(L);
    free(rids);
    return r;
}

/* ---- the steps search.c runs ---- */

int cx_rank_keyword(cx_fuse *F, cx_search_ext *e, const char *tags_text, const char *all,
                    const char *any, size_t limit, size_t *nkw, const cx_fts_opts *wall,
                    const cx_fts_opts *wany) {
    const cx_search_query *q = F->q;
    kwrun *R = calloc(1, sizeof *R);
    int r;
    *nkw = 0;
    if (!R)
        return CX_ENOMEM;
    *R = (kwrun){.s = F->s, .e = e, .q = q, .tags = tags_text,
                 .filtered = (q->kind && *q->kind) || (q->status && *q->status) ||
                             (q->subcortex && *q->subcortex) || tags_text,
                 /* filters that only curated items pass: their small index */
                 .idx = kind_curated(cx_kind_parse(q->kind)) ||
                        status_curated(cx_status_parse(q->status))};
    cx_buf_init(&R->expr, 8 * strlen(any) + 4096);
    if ((r = cx_rank_cache_begin(e, F->s)))
        goto out;
    /* the any-word pass only when every word together found too few for
     * the answer */
    /* from the posting cache when it can answer (no filters: those join
     * the items table), else through FTS5 */
    bool mem = !R->filtered && R->idx == 0 && !e->exhaustive, done = false;
    if (mem)
        r = rank_pass_mem(R, all, 0, wall, &done);
    if (r == 0 && !done)
        r = rank_pass(R, all, 0, wall);
    if (r == 0 && R->nchosen < limit && strcmp(all, any) != 0) {
        done = false;
        if (mem)
            r = rank_pass_mem(R, any, 1, wany, &done);
        if (r == 0 && !done)
            r = rank_pass(R, any, 1, wany);
    }
    cx_hit *hs[CX_SEARCH_LIST_N];
    size_t nh = 0;
    for (size_t i = 0; r == 0 && i < R->nchosen; i++) {
        cx_hit *h = hit_get(F, R->chosen[i].rid);
        if (!h)
            break;
        h->kw_rank = (int)i + 1;
        h->kw_pass = R->chosen[i].pass;
        h->bm25 = -R->chosen[i].score;
        hs[nh++] = h;
    }
    if (r == 0 && (r = hits_meta(F, hs, nh)) == 0)
        *nkw = nh;
out:
    cx_buf_free(&R->expr);
    free(R);
    return r;
}

void cx_rank_fuse(cx_fuse *F, int lists) {
    double maxbm = 1e-9, maxsim = 1e-9; /* for the tie-break */
    for (size_t i = 0; i < F->n; i++) {
        if (F->h[i].kw_rank && F->h[i].bm25 > maxbm) maxbm = F->h[i].bm25;
        if (F->h[i].sem_rank && F->h[i].sim > maxsim) maxsim = F->h[i].sim;
    }
    uint64_t now = cx_clock_now_ms();
    for (size_t i = 0; i < F->n; i++) {
        cx_hit *h = &F->h[i];
        if (!h->pass)
            continue;
        if (lists > 1) {
            /* the stand-in list (list 1) stands for the configured model */
            double ws = F->sem_builtin ? SEM_BUILTIN_WEIGHT : 1.0;
            h->base = (h->kw_rank ? 1.0 / (RRF_K + h->kw_rank) : 0.0) +
                      (h->sem_rank ? ws / (RRF_K + h->sem_rank) : 0.0) +
                      RRF_TIE * ((h->kw_rank ? h->bm25 / maxbm : 0.0) +
                                 (h->sem_rank ? h->sim / maxsim : 0.0));
        } else if (h->kw_rank) {
            /* BM25 alone: items with every word before those with some */
            h->base = h->bm25;
            h->tier = h->kw_pass;
        } else {
            h->base = h->sim;
        }
        h->base *= trust_factors[h->trust] * recency(h->updated, now);
    }
}

cx_fuse *cx_rank_fuse_new(cx_store *s, const cx_search_query *q, json_t *want_tags) {
    /* not calloc: the hits (~50 KB) are set as they are added (hit_get) */
    cx_fuse *F = malloc(sizeof *F);
    if (!F)
        return NULL;
    F->s = s;
    F->q = q;
    F->want_tags = want_tags;
    F->sem_builtin = false;
    F->meta_checked = false;
    F->n = 0;
    memset(F->at, 0, sizeof F->at);
    return F;
}

void cx_rank_fuse_free(cx_fuse *F) {
    if (!F)
        return;
    for (size_t i = 0; i < F->n; i++) {
        json_decref(F->h[i].prov);
        json_decref(F->h[i].changed);
    }
    free(F);
}
