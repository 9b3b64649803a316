/* SPDX-License-Identifier: Apache-2.0 */
/* Search: a keyword list (BM25 over the store's FTS5 indexes), a semantic
 * list (cosine similarity of vectors kept in memory), their fusion, and
 * the answer (trust, recency, staleness, filters, snippets, token budget).
 *
 * Keyword list. Every word must match first (AND), up to LIST_N items; when
 * that finds fewer than the answer's limit, items matching any word (OR)
 * fill the list, ranked after them. Identifiers match whole or by their parts (fts.c and
 * the "cortex" tokenizer in store.c).
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
 * Semantic list. Per connection and per model, the vectors are loaded
 * into memory on first use or by cx_search_warm(), then topped up at every
 * search (new items by rid and vec_log for the built-in model, `vectors.seq`
 * for others). While they fit the connection's budget (cx_search_set_memory)
 * they are kept as int8, dimension-major in blocks of VBLOCK items, and
 * every item is scored exactly: a query's vector is sparse (a short query
 * of the built-in model has some 30 non-zero dimensions of 256), and only
 * those columns are read, about 0.5-1 ms for 100k items. Beyond the budget
 * only two bits a dimension stay in memory (sign, non-zero); a scan of
 * those (agreements minus disagreements where both are non-zero) picks
 * SEM_CANDIDATES that are then read from SQLite and scored exactly. Hits at
 * or above the model's similarity floor are kept. With a model other than
 * the built-in one, items that have no vector of it yet (a model change
 * re-embeds in the background) are ranked by their built-in vectors in a
 * second semantic list. Kind and subcortex are checked in the scan; every
 * filter is checked again against the row.
 *
 * Fusion. Hybrid sums 1/(RRF_K + rank) over the lists an item is in; with
 * one list only (the other found nothing or could not run) that list's own
 * score is used. Then trust, recency and staleness multiply it (see
 * search.h). The staleness callback is asked lazily, best first, only
 * while an item could still make the answer.
 *
 * Snippets are cut here rather than by FTS5's snippet(): that needs an FTS
 * query positioned on each result row, and seeking a row in long posting
 * lists costs 50-250 µs a row. The body is tokenized with the index's own
 * tokenizer and the query's phrases are matched in it (an identifier's
 * parts match it), so the highlighted words are the ones FTS5 matched:
 * about 24 tokens around the best cluster of matches, matches in «», "…"
 * where text was left out. */
#include "search/search.h"

#include "proto/wire.h"
#include "search/fts-internal.h"
#include "store/store-search.h"
#include "text/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES 500
#define CURATED_CANDIDATES 200
#define SAMPLE 256
#define MAX_CAND (CANDIDATES + CURATED_CANDIDATES)
#define SNIPPET_TOKENS 24
#define MAX_QTOKENS 128 /* query tokens the snippet matches (two 64-bit masks) */

#define LIST_N CX_SEARCH_MAX_LIMIT /* items in each ranked list */
#define RRF_K 60.0
#define RRF_TIE 1e-4 /* weight of the lists' own scores, to break RRF ties */
#define SEM_CANDIDATES 1024        /* read and scored after a scan of sign bits */
#define SEM_EXACT_BELOW 2048       /* ... unless there are fewer items than this */
#define SEM_VERIFY 200             /* semantic hits checked against filters */
#define VEC_RAM_BUDGET CX_SEARCH_VECTOR_MEMORY
#define VBLOCK 4096                /* slots per block of the vector index */
#define MAX_HITS (LIST_N + 2 * SEM_VERIFY)

/* Similarity floors. With the built-in embedder a query's cosine to the
 * notes of a store averages 0.0-0.07 with a standard deviation of 0.06-0.09
 * (fixtures/relevance), and a note that answers a misspelt query scores
 * 0.19-0.5: 0.18 keeps those and leaves out nearly all noise (a one-word
 * query that matches nothing stays empty). For other models, whose scale is
 * unknown, the floor comes from the query's own distribution (see
 * sem_floor). */
#define SEM_FLOOR_BUILTIN 0.18
#define SEM_FLOOR_Z 2.5
#define SEM_SAMPLE 256 /* items whose similarity sets the floor of other models */

/* Trust factors (DESIGN.md: canon thread > accepted artifact > published
 * artifact > draft > observation), recency and staleness. */
#define STALE_FACTOR 0.6
#define RECENCY_FLOOR 0.9      /* the factor for very old items */
#define RECENCY_HALF_DAYS 90.0 /* the recency bonus halves every 90 days */

/* ---- per-connection state ---- */

/* One block of the in-memory vector index. */
typedef struct vblock {
    int64_t rid[VBLOCK];
    float scale[VBLOCK];
    uint32_t sub[VBLOCK];   /* hash of the subcortex */
    uint8_t kind[VBLOCK];   /* kind_code() */
    uint64_t *sig;          /* vectors in SQLite: per slot, `words` sign bits then
                             * `words` non-zero bits; or NULL */
    int8_t *q;              /* dim * VBLOCK, dimension-major (in memory), or NULL */
} vblock;

/* The vectors of one model on this connection. */
typedef struct vindex {
    int64_t model;          /* embed_models.id, 0 = none */
    int dim, words;
    bool in_ram;
    bool loaded;
    size_t n;               /* slots in use */
    vblock **blocks;
    size_t nblocks, capblocks;
    int64_t last_seq;       /* vectors.seq (vec_log.seq for the built-in model) loaded */
    int64_t last_rid;       /* built-in model: items.rid loaded up to */
    size_t expect;          /* vectors there were at the first load */
    int64_t *map_rid;       /* open addressing: rid -> slot (0 = empty) */
    uint32_t *map_slot;
    size_t map_cap, map_n;
    uint16_t *dist;         /* scratch: Hamming distance per slot */
    size_t dist_cap;
} vindex;

/* The best hits so far: a min-heap on (sim, rid) of at most `max`. */
typedef struct sem_heap {
    struct sem_hit *h;
    size_t n, max;
} sem_heap;

/* Per store: the tokenizer the indexes use (to tell whether a non-ASCII
 * word has any token in it, see fts-internal.h, and to cut snippets), the
 * hand-over of document frequencies and the average length from the window
 * pass to the curated pass, so that their scores compare, and the vector
 * indexes. */
typedef struct search_ext {
    fts5_tokenizer tok_api;
    Fts5Tokenizer *tok;
    bool reuse_idf;         /* the curated pass scores with the window's idf */
    int nidf;               /* phrases in idf[], -1 = none yet */
    double avgdl;
    double idf[CX_FTS_MAX_TERMS];
    vindex builtin;         /* the built-in model */
    vindex other;           /* the model of the query embedder, when another */
    size_t ram_used;        /* bytes of int8 vectors in memory */
    size_t ram_budget;      /* ... at most (cx_search_set_memory) */
} search_ext;

static void vindex_free(vindex *v) {
    for (size_t i = 0; i < v->nblocks; i++) {
        free(v->blocks[i]->sig);
        free(v->blocks[i]->q);
        free(v->blocks[i]);
    }
    free(v->blocks);
    free(v->map_rid);
    free(v->map_slot);
    free(v->dist);
    memset(v, 0, sizeof *v);
}

static void ext_free(void *p) {
    search_ext *e = p;
    if (!e)
        return;
    if (e->tok)
        e->tok_api.xDelete(e->tok);
    vindex_free(&e->builtin);
    vindex_free(&e->other);
    free(e);
}

/* ---- the scorer ---- */

typedef struct sample {
    int64_t n, first, last;
} sample;

static int sample_hit(const Fts5ExtensionApi *api, Fts5Context *fts, void *ud) {
    sample *sm = ud;
    int64_t rid = api->xRowid(fts);
    if (sm->n == 0)
        sm->first = rid;
    sm->last = rid;
    return ++sm->n >= SAMPLE ? SQLITE_DONE : SQLITE_OK;
}

typedef struct rank_data {
    int nphrase;
    double avgdl;
    double *idf, *freq;
} rank_data;

static rank_data *rank_setup(search_ext *e, const Fts5ExtensionApi *api, Fts5Context *fts,
                             int *rc) {
    int np = api->xPhraseCount(fts);
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
    bool reuse = e->reuse_idf && e->nidf == np;
    if (reuse)
        d->avgdl = e->avgdl;
    for (int i = 0; *rc == SQLITE_OK && i < np; i++) {
        if (reuse) {
            d->idf[i] = e->idf[i];
            continue;
        }
        sample sm = {0};
        *rc = api->xQueryPhrase(fts, i, &sm, sample_hit);
        double hits = (double)sm.n;
        if (sm.n >= SAMPLE && sm.last > sm.first) {
            /* extrapolate from the density over the row ids it covered */
            hits = (double)sm.n * (double)nrow / (double)(sm.last - sm.first + 1);
            if (hits > (double)nrow)
                hits = (double)nrow;
            if (hits < (double)sm.n)
                hits = (double)sm.n;
        }
        double idf = log(((double)nrow - hits + 0.5) / (hits + 0.5));
        d->idf[i] = idf <= 0.0 ? 1e-6 : idf;
    }
    if (*rc == SQLITE_OK && !reuse && np <= CX_FTS_MAX_TERMS) {
        e->nidf = np;
        e->avgdl = d->avgdl;
        memcpy(e->idf, d->idf, sizeof(double) * (size_t)np);
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
static void cx_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int nval,
                    sqlite3_value **vals) {
    const double k1 = 1.2, b = 0.75;
    search_ext *e = api->xUserData(fts);
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
    if (rc == SQLITE_OK)
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

static int count_token(void *ctx, int flags, const char *tok, int n, int start, int end) {
    (*(int *)ctx)++;
    return SQLITE_DONE; /* one is enough */
}

static bool has_tokens(void *ud, const char *word, size_t len) {
    search_ext *e = ud;
    int count = 0;
    e->tok_api.xTokenize(e->tok, &count, FTS5_TOKENIZE_QUERY, word, (int)len, count_token);
    return count > 0;
}

/* The per-store search state, made on first use: the store's "cortex"
 * tokenizer and the cx_bm25 function on this connection. */
static int get_ext(cx_store *s, search_ext **out) {
    search_ext *have = cx_store_search_ext(s);
    if (have) {
        *out = have;
        return 0;
    }
    sqlite3 *db = cx_store_sqlite(s);
    fts5_api *api = cx_text_fts5_api(db);
    if (!api)
        return cx_error_set(CX_EFAIL, "this SQLite has no FTS5; search needs it");
    search_ext *e = calloc(1, sizeof *e);
    if (!e)
        return CX_ENOMEM;
    e->nidf = -1;
    e->ram_budget = VEC_RAM_BUDGET;
    void *ud = NULL;
    if (api->xFindTokenizer(api, CX_TEXT_TOKENIZER, &ud, &e->tok_api) != SQLITE_OK ||
        e->tok_api.xCreate(ud, NULL, 0, &e->tok) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_bm25", e, cx_bm25, NULL) != SQLITE_OK) {
        ext_free(e);
        return cx_error_set(CX_EFAIL, "cannot set up FTS5 search: %s", sqlite3_errmsg(db));
    }
    cx_store_search_ext_set(s, e, ext_free);
    *out = e;
    return 0;
}

/* ---- helpers ---- */

/* The query as JSON even when it is not UTF-8: bad bytes become U+FFFD. */
static json_t *echo_query(const char *text) {
    size_t n = strlen(text);
    if (cx_utf8_valid(text, n))
        return json_string(text);
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !cx_utf8_valid(text + i, k))
            k++;
        if (k <= 4 && i + k <= n) {
            memcpy(buf + o, text + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

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

/* ---- snippets ---- */

/* The query's phrases as the tokenizer sees them. */
typedef struct qterms {
    char *arena;
    size_t len, cap;
    size_t off[MAX_QTOKENS];
    int n[MAX_QTOKENS];
    bool prefix[MAX_QTOKENS]; /* a prefix token (last of a phrase with '*') */
    int ntok;
    struct {
        int first, ntok;
    } ph[CX_FTS_MAX_TERMS];
    int nph;
    bool full; /* out of room: later tokens are not matched */
} qterms;

static int add_qtoken(void *ctx, int flags, const char *tok, int n, int start, int end) {
    qterms *t = ctx;
    if (t->full || n <= 0)
        return SQLITE_OK;
    if (t->ntok >= MAX_QTOKENS || t->len + (size_t)n > t->cap) {
        t->full = true;
        return SQLITE_OK;
    }
    memcpy(t->arena + t->len, tok, (size_t)n);
    t->off[t->ntok] = t->len;
    t->n[t->ntok] = n;
    t->prefix[t->ntok] = false;
    t->len += (size_t)n;
    t->ntok++;
    return SQLITE_OK;
}

/* Reads the phrases back out of an expression cx_fts_build_query made:
 * "…" strings with '"' doubled, each maybe followed by '*'. */
static int parse_terms(search_ext *e, const char *expr, qterms *t) {
    size_t n = strlen(expr);
    *t = (qterms){.cap = n + 1};
    t->arena = malloc(t->cap);
    char *content = malloc(n + 1);
    if (!t->arena || !content) {
        free(content);
        return CX_ENOMEM;
    }
    const char *p = expr;
    while (*p && t->nph < CX_FTS_MAX_TERMS) {
        if (*p++ != '"')
            continue;
        size_t k = 0;
        for (; *p; p++) {
            if (*p == '"') {
                if (p[1] != '"')
                    break;
                p++;
            }
            content[k++] = *p;
        }
        if (*p == '"')
            p++;
        int first = t->ntok;
        e->tok_api.xTokenize(e->tok, t, FTS5_TOKENIZE_QUERY, content, (int)k, add_qtoken);
        if (t->full) {
            t->ntok = first; /* a phrase only partly kept would match wrongly */
            break;
        }
        if (t->ntok > first) {
            if (*p == '*')
                t->prefix[t->ntok - 1] = true;
            t->ph[t->nph].first = first;
            t->ph[t->nph].ntok = t->ntok - first;
            t->nph++;
        }
    }
    free(content);
    return 0;
}

typedef struct dtok {
    int start, end;
    uint64_t m[2];   /* query tokens this token matches */
    uint64_t starts; /* phrases whose occurrence starts here */
    bool hit;
} dtok;

typedef struct dtoks {
    dtok *v;
    size_t n, cap;
    const qterms *t;
    bool oom;
} dtoks;

static int add_dtoken(void *ctx, int flags, const char *tok, int n, int start, int end) {
    dtoks *d = ctx;
    dtok *x;
    if (flags & FTS5_TOKEN_COLOCATED) {
        /* a part of the identifier just seen: a match of it is a match of
         * the identifier, which is what gets highlighted */
        if (d->n == 0)
            return SQLITE_OK;
        x = &d->v[d->n - 1];
    } else {
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 256;
            dtok *v = realloc(d->v, cap * sizeof *v);
            if (!v) {
                d->oom = true;
                return SQLITE_NOMEM;
            }
            d->v = v;
            d->cap = cap;
        }
        x = &d->v[d->n++];
        *x = (dtok){.start = start, .end = end};
    }
    const qterms *t = d->t;
    for (int k = 0; k < t->ntok; k++) {
        int qn = t->n[k];
        const char *q = t->arena + t->off[k];
        if ((n == qn || (t->prefix[k] && n > qn)) && memcmp(tok, q, (size_t)qn) == 0)
            x->m[k / 64] |= 1ull << (k % 64);
    }
    return SQLITE_OK;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->len + n < b->cap) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* About SNIPPET_TOKENS tokens of text around its best cluster of matches. */
static json_t *make_snippet(search_ext *e, const qterms *t, const char *text) {
    size_t len = strlen(text);
    dtoks d = {.t = t};
    json_t *out = NULL;
    if (len > INT32_MAX / 2)
        len = INT32_MAX / 2;
    e->tok_api.xTokenize(e->tok, &d, FTS5_TOKENIZE_DOCUMENT, text, (int)len, add_dtoken);
    if (d.oom || d.n == 0) {
        size_t keep = cx_utf8_cut(text, len, 200);
        out = json_stringn(text, keep);
        goto done;
    }
    /* phrase occurrences: consecutive tokens matching the phrase's tokens */
    for (int p = 0; p < t->nph; p++) {
        int f = t->ph[p].first, m = t->ph[p].ntok;
        for (size_t i = 0; i + (size_t)m <= d.n; i++) {
            bool ok = true;
            for (int j = 0; ok && j < m; j++)
                ok = (d.v[i + (size_t)j].m[(f + j) / 64] >> ((f + j) % 64)) & 1u;
            if (!ok)
                continue;
            d.v[i].starts |= 1ull << (p % 64);
            for (int j = 0; j < m; j++)
                d.v[i + (size_t)j].hit = true;
        }
    }
    /* the window with the most distinct phrases, then the most hits */
    size_t w = d.n < SNIPPET_TOKENS ? d.n : SNIPPET_TOKENS, best = 0;
    long best_score = -1;
    for (size_t a = 0; a + w <= d.n; a++) {
        uint64_t ph = 0;
        long hits = 0;
        for (size_t i = a; i < a + w; i++) {
            ph |= d.v[i].starts;
            hits += d.v[i].hit;
        }
        long score = (long)__builtin_popcountll(ph) * 1000 + hits;
        if (score > best_score) {
            best_score = score;
            best = a;
        }
    }
    /* centre the matches in the window */
    size_t first = best, last = best;
    for (size_t i = best; i < best + w; i++) {
        if (!d.v[i].hit)
            continue;
        if (!d.v[first].hit)
            first = i;
        last = i;
    }
    if (d.v[first].hit) {
        size_t span = last - first + 1, pad = span < w ? (w - span) / 2 : 0;
        best = first > pad ? first - pad : 0;
        if (best + w > d.n)
            best = d.n - w;
    }
    size_t lo = best, hi = best + w - 1;
    size_t from = (size_t)d.v[lo].start, to = (size_t)d.v[hi].end;
    sbuf b = {.cap = (to - from) + 8 * w + 16};
    b.p = malloc(b.cap);
    if (!b.p)
        goto done;
    if (lo > 0)
        sb_put(&b, "\xe2\x80\xa6", 3);
    size_t pos = from;
    for (size_t i = lo; i <= hi; i++) {
        sb_put(&b, text + pos, (size_t)d.v[i].start - pos);
        bool open = d.v[i].hit && (i == lo || !d.v[i - 1].hit);
        bool close = d.v[i].hit && (i == hi || !d.v[i + 1].hit);
        if (open)
            sb_put(&b, "\xc2\xab", 2);
        sb_put(&b, text + d.v[i].start, (size_t)(d.v[i].end - d.v[i].start));
        if (close)
            sb_put(&b, "\xc2\xbb", 2);
        pos = (size_t)d.v[i].end;
    }
    if (hi + 1 < d.n)
        sb_put(&b, "\xe2\x80\xa6", 3);
    out = json_stringn(b.p, b.len);
    free(b.p);
done:
    free(d.v);
    return out ? out : json_string("");
}

/* ---- the vector index ---- */

/* The kind kept per slot: a cx_kind, or KIND_OTHER for a name the wire
 * model does not know. */
#define KIND_OTHER CX_KIND_COUNT

static uint8_t kind_code(const char *k) {
    cx_kind c = cx_kind_parse(k);
    return c == CX_KIND_INVALID ? KIND_OTHER : (uint8_t)c;
}

static uint32_t str_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* What the scan can rule out before looking at a vector. */
typedef struct prefilter {
    unsigned kinds; /* bit per kind_code(): the kinds that may pass */
    bool has_sub;
    uint32_t sub;
} prefilter;

static size_t map_pos(const vindex *v, int64_t rid) {
    return (size_t)(((uint64_t)rid * 0x9e3779b97f4a7c15ull) >> 20) & (v->map_cap - 1);
}

/* The slot of rid, or SIZE_MAX. */
static size_t map_find(const vindex *v, int64_t rid) {
    if (!v->map_cap)
        return SIZE_MAX;
    for (size_t i = map_pos(v, rid);; i = (i + 1) & (v->map_cap - 1)) {
        if (v->map_rid[i] == 0)
            return SIZE_MAX;
        if (v->map_rid[i] == rid)
            return v->map_slot[i];
    }
}

static void map_put(vindex *v, int64_t rid, uint32_t slot) {
    size_t i = map_pos(v, rid);
    while (v->map_rid[i] != 0 && v->map_rid[i] != rid)
        i = (i + 1) & (v->map_cap - 1);
    if (v->map_rid[i] == 0)
        v->map_n++;
    v->map_rid[i] = rid;
    v->map_slot[i] = slot;
}

static int map_grow(vindex *v) {
    if (v->map_n * 2 < v->map_cap)
        return 0;
    size_t cap = v->map_cap ? v->map_cap * 2 : 8192;
    int64_t *old_rid = v->map_rid;
    uint32_t *old_slot = v->map_slot;
    size_t old_cap = v->map_cap;
    v->map_rid = calloc(cap, sizeof *v->map_rid);
    v->map_slot = calloc(cap, sizeof *v->map_slot);
    if (!v->map_rid || !v->map_slot) {
        free(v->map_rid);
        free(v->map_slot);
        v->map_rid = old_rid;
        v->map_slot = old_slot;
        return CX_ENOMEM;
    }
    v->map_cap = cap;
    v->map_n = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old_rid[i])
            map_put(v, old_rid[i], old_slot[i]);
    free(old_rid);
    free(old_slot);
    return 0;
}

/* Adds or replaces the vector of rid. */
static int vindex_put(search_ext *e, vindex *v, int64_t rid, float scale, const int8_t *q,
                      uint8_t kind, uint32_t sub) {
    size_t slot = map_find(v, rid);
    int r;
    if (slot == SIZE_MAX) {
        slot = v->n;
        if (slot / VBLOCK >= v->nblocks) {
            if (v->nblocks == v->capblocks) {
                size_t cap = v->capblocks ? v->capblocks * 2 : 16;
                vblock **b = realloc(v->blocks, cap * sizeof *b);
                if (!b)
                    return CX_ENOMEM;
                v->blocks = b;
                v->capblocks = cap;
            }
            vblock *b = calloc(1, sizeof *b);
            if (!b)
                return CX_ENOMEM;
            if (v->in_ram)
                b->q = calloc((size_t)VBLOCK, (size_t)v->dim);
            else
                b->sig = calloc((size_t)VBLOCK * 2 * (size_t)v->words, sizeof *b->sig);
            if (v->in_ram ? !b->q : !b->sig) {
                free(b->sig);
                free(b->q);
                free(b);
                return CX_ENOMEM;
            }
            if (v->in_ram)
                e->ram_used += (size_t)VBLOCK * (size_t)v->dim;
            v->blocks[v->nblocks++] = b;
        }
        if ((r = map_grow(v)))
            return r;
        map_put(v, rid, (uint32_t)slot);
        v->n++;
    }
    vblock *b = v->blocks[slot / VBLOCK];
    size_t k = slot % VBLOCK;
    b->rid[k] = rid;
    b->scale[k] = scale;
    b->kind[k] = kind;
    b->sub[k] = sub;
    if (b->q) {
        for (int i = 0; i < v->dim; i++)
            b->q[(size_t)i * VBLOCK + k] = q[i];
    } else {
        uint64_t *sig = b->sig + k * 2 * (size_t)v->words, *nzm = sig + v->words;
        memset(sig, 0, sizeof *sig * 2 * (size_t)v->words);
        for (int i = 0; i < v->dim; i++) {
            if (q[i] > 0)
                sig[i / 64] |= 1ull << (i % 64);
            if (q[i] != 0)
                nzm[i / 64] |= 1ull << (i % 64);
        }
    }
    return 0;
}

static const char SQL_VEC_COUNT[] =
    "SELECT CASE WHEN ?2 THEN (SELECT count(*) FROM items)"
    " ELSE (SELECT count(*) FROM vectors WHERE model = ?1) END,"
    " (SELECT dim FROM embed_models WHERE id = ?1),"
    " (SELECT coalesce(max(seq), 0) FROM vec_log)";
/* new rows since the last load, in seq order (the primary key, not the
 * (model, rid) index) */
static const char SQL_VEC_LOAD[] =
    "SELECT v.seq, v.rid, v.scale, v.v, i.kind, i.subcortex FROM vectors v"
    " JOIN items i ON i.rid = v.rid WHERE v.seq > ?2 AND +v.model = ?1 ORDER BY v.seq LIMIT ?3";
/* the built-in model: items written since, then vectors made since */
static const char SQL_VEC_LOAD_ITEMS[] =
    "SELECT rid, rid, vec_scale, vec, kind, subcortex FROM items WHERE rid > ?1 ORDER BY rid"
    " LIMIT ?2";
static const char SQL_VEC_LOAD_LOG[] =
    "SELECT l.seq, l.rid, i.vec_scale, i.vec, i.kind, i.subcortex FROM vec_log l"
    " JOIN items i ON i.rid = l.rid WHERE l.seq > ?1 ORDER BY l.seq";

/* Adds the rows of a load statement (key, rid, scale, vector, kind,
 * subcortex); *last gets the last key, *rows (may be NULL) their number. */
static int vindex_load(cx_store *s, search_ext *e, vindex *v, sqlite3_stmt *st, int64_t *last,
                       int64_t *rows) {
    int rc, r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *last = sqlite3_column_int64(st, 0);
        if (rows)
            (*rows)++;
        if (sqlite3_column_bytes(st, 3) != v->dim)
            continue; /* none yet, or another dimension: not comparable */
        r = vindex_put(e, v, sqlite3_column_int64(st, 1), (float)sqlite3_column_double(st, 2),
                       sqlite3_column_blob(st, 3),
                       kind_code((const char *)sqlite3_column_text(st, 4)),
                       str_hash((const char *)sqlite3_column_text(st, 5)));
        if (r) {
            sqlite3_reset(st);
            return r;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "loading vectors");
}

/* Brings the index of `model` up to date (inside a read transaction), or
 * by at most `chunk` rows (-1: no bound); *more tells whether it stopped
 * short. */
static int vindex_refresh_some(cx_store *s, search_ext *e, vindex *v, int64_t model,
                               int64_t chunk, bool *more) {
    sqlite3_stmt *st;
    int64_t rows = 0;
    int r, rc;
    *more = false;
    bool builtin = model == cx_store_builtin_model(s);
    if (v->model != model) {
        if (v->in_ram)
            e->ram_used -= v->nblocks * (size_t)VBLOCK * (size_t)v->dim;
        vindex_free(v);
        v->model = model;
    }
    if (!model)
        return 0;
    if (!v->loaded) {
        if ((r = cx_store_prepare(s, SQL_VEC_COUNT, &st)))
            return r;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int(st, 2, builtin);
        int64_t count = 0, dim = 0, log = 0;
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            count = sqlite3_column_int64(st, 0);
            dim = sqlite3_column_int64(st, 1);
            log = sqlite3_column_int64(st, 2);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return cx_store_sqlerr(s, rc, "counting vectors");
        if (dim <= 0 || dim > CX_EMBED_MAX_DIM)
            return 0; /* no vector yet: try again next time */
        v->dim = (int)dim;
        v->words = (v->dim + 63) / 64;
        size_t need = (size_t)(count + VBLOCK) * (size_t)dim;
        v->in_ram = e->ram_used + need <= e->ram_budget;
        v->loaded = true;
        v->expect = (size_t)count;
        if (builtin)
            v->last_seq = log; /* the rows hold every vector logged so far */
    }
    if (!builtin) {
        if ((r = cx_store_prepare(s, SQL_VEC_LOAD, &st)))
            return r;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int64(st, 2, v->last_seq);
        sqlite3_bind_int64(st, 3, chunk);
        r = vindex_load(s, e, v, st, &v->last_seq, &rows);
        *more = r == 0 && chunk >= 0 && rows >= chunk;
        return r;
    }
    if ((r = cx_store_prepare(s, SQL_VEC_LOAD_ITEMS, &st)))
        return r;
    sqlite3_bind_int64(st, 1, v->last_rid);
    sqlite3_bind_int64(st, 2, chunk);
    if ((r = vindex_load(s, e, v, st, &v->last_rid, &rows)))
        return r;
    if (chunk >= 0 && rows >= chunk) {
        *more = true; /* the log after the rows */
        return 0;
    }
    if ((r = cx_store_prepare(s, SQL_VEC_LOAD_LOG, &st)))
        return r;
    sqlite3_bind_int64(st, 1, v->last_seq);
    return vindex_load(s, e, v, st, &v->last_seq, NULL);
}

static int vindex_refresh(cx_store *s, search_ext *e, vindex *v, int64_t model) {
    bool more;
    return vindex_refresh_some(s, e, v, model, -1, &more);
}

/* For every slot, how far its signs are from the query's: over the
 * dimensions where both are non-zero (sparse vectors say nothing about the
 * others), agreements minus disagreements, as dim - that (0 = best,
 * 2 * dim = worst), and the histogram of those; 0xffff for slots the
 * prefilter rules out. *count: the slots it lets through. */
#define HAMMING_BODY                                                                      \
    for (size_t slot = 0; slot < v->n; slot++) {                                          \
        const vblock *b = v->blocks[slot / VBLOCK];                                       \
        size_t k = slot % VBLOCK;                                                         \
        if (!((pf->kinds >> b->kind[k]) & 1u) || (pf->has_sub && b->sub[k] != pf->sub)) { \
            v->dist[slot] = 0xffff;                                                       \
            continue;                                                                     \
        }                                                                                 \
        const uint64_t *sig = b->sig + k * 2 * (size_t)v->words, *nzm = sig + v->words;   \
        int agree = 0, both = 0;                                                          \
        for (int w = 0; w < v->words; w++) {                                              \
            uint64_t m = nzm[w] & qnz[w];                                                 \
            agree += __builtin_popcountll(~(sig[w] ^ qsig[w]) & m);                       \
            both += __builtin_popcountll(m);                                              \
        }                                                                                 \
        unsigned d = (unsigned)(v->dim - (2 * agree - both));                             \
        v->dist[slot] = (uint16_t)d;                                                      \
        hist[d]++;                                                                        \
        (*count)++;                                                                       \
    }

static void hamming_plain(vindex *v, const uint64_t *qsig, const uint64_t *qnz,
                          const prefilter *pf, size_t *hist, size_t *count) {
    HAMMING_BODY
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt"))) static void
hamming_popcnt(vindex *v, const uint64_t *qsig, const uint64_t *qnz, const prefilter *pf,
               size_t *hist, size_t *count) {
    HAMMING_BODY
}
#endif

static void hamming(vindex *v, const uint64_t *qsig, const uint64_t *qnz, const prefilter *pf,
                    size_t *hist, size_t *count) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("popcnt")) {
        hamming_popcnt(v, qsig, qnz, pf, hist, count);
        return;
    }
#endif
    hamming_plain(v, qsig, qnz, pf, hist, count);
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

typedef struct sem_hit {
    int64_t rid;
    double sim;
} sem_hit;

static int by_sim(const void *a, const void *b) {
    const sem_hit *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim > y->sim ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid; /* newer first */
}

static const char SQL_VEC_ONE[] = "SELECT scale, v FROM vectors WHERE model = ?1 AND rid = ?2";
static const char SQL_VEC_ONE_BUILTIN[] = "SELECT vec_scale, vec FROM items WHERE rid = ?2";

/* The cosine similarity of slot to the quantized query. */
static int slot_sim(cx_store *s, vindex *v, size_t slot, const int8_t *qq, double qscale,
                    double *sim) {
    vblock *b = v->blocks[slot / VBLOCK];
    size_t k = slot % VBLOCK;
    if (b->q) {
        int32_t dot = 0;
        for (int i = 0; i < v->dim; i++)
            dot += (int32_t)qq[i] * b->q[(size_t)i * VBLOCK + k];
        *sim = dot * qscale * b->scale[k];
        return 0;
    }
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, v->model == cx_store_builtin_model(s) ? SQL_VEC_ONE_BUILTIN : SQL_VEC_ONE,
                             &st), rc;
    if (r)
        return r;
    if (v->model != cx_store_builtin_model(s))
        sqlite3_bind_int64(st, 1, v->model);
    sqlite3_bind_int64(st, 2, b->rid[k]);
    *sim = -1.0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_bytes(st, 1) == v->dim)
        *sim = dot_i8(qq, sqlite3_column_blob(st, 1), v->dim) * qscale *
               sqlite3_column_double(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "reading a vector");
}

/* The similarity floor for a model whose scale is unknown: the query's
 * similarity to a typical item plus a few standard deviations (fewer in
 * a small store, where the spread says less). With the built-in model this
 * rule would give about its fixed floor. */
static double sem_floor(double mean, double sd, size_t n) {
    double z = n >= 200 ? SEM_FLOOR_Z : n >= 50 ? 2.0 : 1.0;
    double f = mean + z * sd;
    return f > 0.0 ? f : 0.0;
}

/* ---- exact scoring of an index in memory ----
 * The built-in vectors of short queries are sparse (a two-word query has
 * some 30 non-zero dimensions of 256), so sign bits say little about them;
 * but scoring only those dimensions is cheap when the vectors are stored
 * dimension-major: one int8 column per dimension and block, added into
 * int32 accumulators. The result is exact (int8) for every item. */

static bool heap_less(const sem_hit *a, const sem_hit *b) {
    return a->sim < b->sim || (a->sim == b->sim && a->rid < b->rid);
}

static void heap_sift(sem_heap *H, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < H->n && heap_less(&H->h[l], &H->h[m]))
            m = l;
        if (l + 1 < H->n && heap_less(&H->h[l + 1], &H->h[m]))
            m = l + 1;
        if (m == i)
            return;
        sem_hit t = H->h[i];
        H->h[i] = H->h[m];
        H->h[m] = t;
        i = m;
    }
}

/* Would x enter the heap? */
static bool heap_wants(const sem_heap *H, const sem_hit *x) {
    return H->n < H->max || heap_less(&H->h[0], x);
}

static void heap_push(sem_heap *H, sem_hit x) {
    if (H->n < H->max) {
        size_t i = H->n++;
        H->h[i] = x;
        while (i > 0 && heap_less(&H->h[i], &H->h[(i - 1) / 2])) {
            sem_hit t = H->h[i];
            H->h[i] = H->h[(i - 1) / 2];
            H->h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (heap_less(&H->h[0], &x)) {
        H->h[0] = x;
        heap_sift(H, 0);
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
__attribute__((target_clones("avx2", "default")))
#endif
static void axpy_i8(int32_t *restrict acc, const int8_t *restrict col, int32_t w, size_t n) {
    for (size_t k = 0; k < n; k++)
        acc[k] += w * col[k];
}

/* Scores every slot the prefilter lets through; the best `max` at or
 * above the floor go to out, best first. */
static int exact_search(vindex *v, const int8_t *qq, float qscale, bool builtin,
                        const prefilter *pf, const vindex *exclude, sem_hit *out, size_t max,
                        size_t *nout) {
    int nz[CX_EMBED_MAX_DIM], m = 0;
    for (int i = 0; i < v->dim; i++)
        if (qq[i])
            nz[m++] = i;
    if (!builtin && v->dist_cap < v->n * 2) { /* float similarities, in the scratch array */
        size_t cap = v->n * 2 + VBLOCK;
        uint16_t *d = realloc(v->dist, cap * sizeof *d);
        if (!d)
            return CX_ENOMEM;
        v->dist = d;
        v->dist_cap = cap;
    }
    float *sims = (float *)(void *)v->dist;
    int32_t *acc = malloc(sizeof *acc * VBLOCK);
    if (!acc)
        return CX_ENOMEM;
    /* the built-in model's floor is known: pick the best as we go; for
     * others it depends on all the similarities, so a second pass picks */
    double floor = SEM_FLOOR_BUILTIN, sum = 0.0, sum2 = 0.0;
    size_t count = 0;
    sem_heap H = {.h = out, .max = max};
    for (size_t bi = 0; bi < v->nblocks; bi++) {
        const vblock *b = v->blocks[bi];
        size_t base = bi * VBLOCK, cnt = v->n - base < VBLOCK ? v->n - base : VBLOCK;
        memset(acc, 0, sizeof *acc * cnt);
        for (int j = 0; j < m; j++)
            axpy_i8(acc, b->q + (size_t)nz[j] * VBLOCK, qq[nz[j]], cnt);
        for (size_t k = 0; k < cnt; k++) {
            float sim = (float)acc[k] * qscale * b->scale[k];
            bool pass = ((pf->kinds >> b->kind[k]) & 1u) && (!pf->has_sub || b->sub[k] == pf->sub);
            if (!builtin) {
                sims[base + k] = pass ? sim : -2.0f;
                if (pass) {
                    sum += sim;
                    sum2 += (double)sim * sim;
                    count++;
                }
                continue;
            }
            sem_hit x = {b->rid[k], sim};
            if (pass && sim >= floor && heap_wants(&H, &x) &&
                !(exclude && map_find(exclude, x.rid) != SIZE_MAX))
                heap_push(&H, x);
        }
    }
    free(acc);
    if (!builtin && count > 0) {
        double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
        floor = sem_floor(mean, var > 0 ? sqrt(var) : 0.0, count);
        for (size_t i = 0; i < v->n; i++) {
            if (sims[i] < floor)
                continue;
            sem_hit x = {v->blocks[i / VBLOCK]->rid[i % VBLOCK], sims[i]};
            if (heap_wants(&H, &x) && !(exclude && map_find(exclude, x.rid) != SIZE_MAX))
                heap_push(&H, x);
        }
    }
    qsort(out, H.n, sizeof *out, by_sim);
    *nout = H.n;
    return 0;
}

/* The semantic list over index v for the query vector qv: up to `max`
 * hits, best first, above the model's floor; slots whose rid `exclude`
 * holds are left out (items the other model already ranks). */
static int vindex_search(cx_store *s, vindex *v, const float *qv, bool builtin,
                         const prefilter *pf, const vindex *exclude, sem_hit *out, size_t max,
                         size_t *nout) {
    int r = 0;
    *nout = 0;
    if (v->n == 0 || v->dim <= 0)
        return 0;
    int8_t qq[CX_EMBED_MAX_DIM];
    uint64_t qsig[CX_EMBED_MAX_DIM / 64], qnz[CX_EMBED_MAX_DIM / 64];
    float qscale;
    cx_vec_quantize(qv, v->dim, qq, &qscale);
    if (!(qscale > 0.0f))
        return 0; /* nothing to compare: a query without words */
    if (v->in_ram)
        return exact_search(v, qq, qscale, builtin, pf, exclude, out, max, nout);
    /* Vectors in SQLite: a Hamming scan of the sign bits picks candidates
     * (fine for the dense vectors of real models), which are then read and
     * scored exactly. */
    memset(qsig, 0, sizeof qsig);
    memset(qnz, 0, sizeof qnz);
    for (int i = 0; i < v->dim; i++) {
        if (qq[i] > 0)
            qsig[i / 64] |= 1ull << (i % 64);
        if (qq[i] != 0)
            qnz[i / 64] |= 1ull << (i % 64);
    }

    if (v->dist_cap < v->n) {
        size_t cap = v->n + VBLOCK;
        uint16_t *d = realloc(v->dist, cap * sizeof *d);
        if (!d)
            return CX_ENOMEM;
        v->dist = d;
        v->dist_cap = cap;
    }
    size_t count = 0, *hist = calloc((size_t)(2 * v->dim + 1), sizeof *hist);
    if (!hist)
        return CX_ENOMEM;
    hamming(v, qsig, qnz, pf, hist, &count);
    if (count == 0) {
        free(hist);
        return 0;
    }
    /* The candidates: every slot below the cut-off distance that keeps about
     * SEM_CANDIDATES, then the newest of those at it (ties are many). */
    unsigned cutoff = 0xfffe;
    size_t below = 0;
    if (count > SEM_EXACT_BELOW) {
        for (cutoff = 0; cutoff < 2 * (unsigned)v->dim; cutoff++) {
            if (below + hist[cutoff] >= SEM_CANDIDATES)
                break;
            below += hist[cutoff];
        }
    }
    free(hist);
    size_t cap = count < SEM_CANDIDATES * 2 ? count : SEM_CANDIDATES * 2;
    size_t room = cap - (below < cap ? below : cap), nat = 0, nb = 0;
    uint32_t *slots = malloc(sizeof *slots * (cap + room + 1));
    sem_hit *c = malloc(sizeof *c * cap);
    if (!slots || !c) {
        free(slots);
        free(c);
        return CX_ENOMEM;
    }
    uint32_t *at = slots + cap; /* a ring of the newest slots at the cut-off */
    for (size_t i = 0; i < v->n; i++) {
        unsigned d = v->dist[i];
        if (d < cutoff && nb < cap)
            slots[nb++] = (uint32_t)i;
        else if (d == cutoff && room > 0)
            at[nat++ % room] = (uint32_t)i;
    }
    for (size_t i = 0; i < nat && i < room && nb < cap; i++)
        slots[nb++] = at[i];
    size_t nc = 0;
    double esum = 0.0, esum2 = 0.0;
    for (size_t j = 0; j < nb && r == 0; j++) {
        size_t i = slots[j];
        int64_t rid = v->blocks[i / VBLOCK]->rid[i % VBLOCK];
        if (exclude && map_find(exclude, rid) != SIZE_MAX)
            continue;
        double sim;
        if ((r = slot_sim(s, v, i, qq, qscale, &sim)))
            break;
        c[nc++] = (sem_hit){rid, sim};
        esum += sim;
        esum2 += sim * sim;
    }
    free(slots);
    if (r) {
        free(c);
        return r;
    }
    double floor;
    if (builtin) {
        floor = SEM_FLOOR_BUILTIN;
    } else if (count <= SEM_EXACT_BELOW && nc > 0) {
        /* every item was scored exactly */
        double mean = esum / (double)nc, var = esum2 / (double)nc - mean * mean;
        floor = sem_floor(mean, var > 0 ? sqrt(var) : 0.0, nc);
    } else {
        /* the query's similarity to an even sample of the whole store */
        double ssum = 0.0, ssum2 = 0.0, sim;
        size_t step = v->n > SEM_SAMPLE ? v->n / SEM_SAMPLE : 1, ns = 0;
        for (size_t i = 0; i < v->n && ns < SEM_SAMPLE; i += step, ns++) {
            if ((r = slot_sim(s, v, i, qq, qscale, &sim))) {
                free(c);
                return r;
            }
            ssum += sim;
            ssum2 += sim * sim;
        }
        double mean = ssum / (double)ns, var = ssum2 / (double)ns - mean * mean;
        floor = sem_floor(mean, var > 0 ? sqrt(var) : 0.0, v->n);
    }
    size_t k = 0;
    for (size_t i = 0; i < nc; i++)
        if (c[i].sim >= floor)
            c[k++] = c[i];
    qsort(c, k, sizeof *c, by_sim);
    *nout = k < max ? k : max;
    memcpy(out, c, sizeof *c * *nout);
    free(c);
    return 0;
}

/* ---- the keyword list ---- */

#define SCORE(t) "cx_bm25(" t ", 4.0, 1.0, 2.0)"
#define FILTERS                                                                           \
    " AND (?3 IS NULL OR i.kind = ?3) AND (?4 IS NULL OR i.status = ?4)"                   \
    " AND (?5 IS NULL OR i.subcortex = ?5)"                                                \
    " AND (?6 IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(?6) q"                        \
    "      WHERE q.value NOT IN (SELECT value FROM json_each(i.tags))))"

/* Newest matches first: FTS5 walks the posting lists by row id, no sort. */
static const char SQL_CAND[] =
    "SELECT rowid, " SCORE("items_fts") " FROM items_fts WHERE items_fts MATCH ?1"
    " ORDER BY rowid DESC LIMIT ?2";
static const char SQL_CAND_FILTERED[] =
    "SELECT f.rowid, " SCORE("items_fts") " FROM items_fts f JOIN items i ON i.rid = f.rowid"
    " WHERE items_fts MATCH ?1" FILTERS " ORDER BY f.rowid DESC LIMIT ?2";
static const char SQL_CURATED[] =
    "SELECT rowid, " SCORE("items_curated_fts") " FROM items_curated_fts"
    " WHERE items_curated_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2";
static const char SQL_CURATED_FILTERED[] =
    "SELECT f.rowid, " SCORE("items_curated_fts") " FROM items_curated_fts f"
    " JOIN items i ON i.rid = f.rowid"
    " WHERE items_curated_fts MATCH ?1" FILTERS " ORDER BY f.rowid DESC LIMIT ?2";

typedef struct cand {
    int64_t rid;
    double score; /* cx_bm25: lower is better */
    int pass;     /* 0 = every word, 1 = any word */
} cand;

typedef struct kwrun {
    cx_store *s;
    search_ext *e;
    const cx_search_query *q;
    const char *tags; /* JSON array text or NULL */
    bool filtered;
    bool curated_only; /* the filters admit only drafts, threads, artifacts */
    cand chosen[LIST_N];
    size_t nchosen, limit;
    cand buf[MAX_CAND];
} kwrun;

/* Appends up to k candidates for `expr` to buf[*n]. *full tells whether k
 * were found (older matches may exist). */
static int collect(kwrun *R, const char *sql, const char *expr, int pass, size_t k, size_t *n,
                   bool *full) {
    sqlite3_stmt *st;
    const cx_search_query *q = R->q;
    int r = cx_store_prepare(R->s, sql, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)k);
    if (R->filtered) {
        cx_store_bind_text(st, 3, q->kind && *q->kind ? q->kind : NULL);
        cx_store_bind_text(st, 4, q->status && *q->status ? q->status : NULL);
        cx_store_bind_text(st, 5, q->subcortex && *q->subcortex ? q->subcortex : NULL);
        cx_store_bind_text(st, 6, R->tags);
    }
    size_t got = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < MAX_CAND) {
        R->buf[*n] = (cand){.rid = sqlite3_column_int64(st, 0),
                            .score = sqlite3_column_double(st, 1), .pass = pass};
        (*n)++;
        got++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(R->s, rc, "searching");
    *full = got >= k;
    return 0;
}

static int by_rid(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return x->rid < y->rid ? -1 : x->rid > y->rid;
}

static int by_score(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid; /* newer first */
}

static bool chosen_already(const kwrun *R, int64_t rid) {
    for (size_t i = 0; i < R->nchosen; i++)
        if (R->chosen[i].rid == rid)
            return true;
    return false;
}

/* Ranks the candidates for one expression and adds the best to chosen. */
static int rank_pass(kwrun *R, const char *expr, int pass) {
    size_t n = 0;
    bool full = false;
    R->e->reuse_idf = false;
    R->e->nidf = -1;
    /* Filters that only curated items pass: their small index is enough. */
    const char *sql = R->curated_only ? SQL_CURATED_FILTERED
                      : R->filtered   ? SQL_CAND_FILTERED
                                      : SQL_CAND;
    int r = collect(R, sql, expr, pass, CANDIDATES, &n, &full);
    if (r == 0 && full && !R->curated_only && R->e->nidf >= 0) {
        bool cfull;
        R->e->reuse_idf = true;
        r = collect(R, R->filtered ? SQL_CURATED_FILTERED : SQL_CURATED, expr, pass,
                    CURATED_CANDIDATES, &n, &cfull);
        R->e->reuse_idf = false;
        if (r)
            return r;
        /* a row found by both passes is one candidate */
        qsort(R->buf, n, sizeof R->buf[0], by_rid);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (w > 0 && R->buf[w - 1].rid == R->buf[i].rid)
                continue;
            R->buf[w++] = R->buf[i];
        }
        n = w;
    }
    if (r)
        return r;
    qsort(R->buf, n, sizeof R->buf[0], by_score);
    for (size_t i = 0; i < n && R->nchosen < R->limit; i++)
        if (!chosen_already(R, R->buf[i].rid))
            R->chosen[R->nchosen++] = R->buf[i];
    return 0;
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

/* One item found by any list. */
typedef struct hit {
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
} hit;

typedef struct fuse {
    cx_store *s;
    const cx_search_query *q;
    json_t *want_tags; /* the tags filter, or NULL */
    hit h[MAX_HITS];
    size_t n;
} fuse;

static hit *hit_get(fuse *F, int64_t rid) {
    for (size_t i = 0; i < F->n; i++)
        if (F->h[i].rid == rid)
            return &F->h[i];
    if (F->n == MAX_HITS)
        return NULL;
    hit *h = &F->h[F->n++];
    *h = (hit){.rid = rid, .trust = CX_TRUST_OTHER};
    return h;
}

static const char SQL_META[] =
    "SELECT kind, status, subcortex, tags, updated_at, provenance FROM items WHERE rid = ?1";

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

/* Reads what ranking needs of an item and whether it passes the filters
 * (an item that is gone passes nothing). */
static int hit_meta(fuse *F, hit *h) {
    if (h->meta)
        return 0;
    sqlite3_stmt *st;
    const cx_search_query *q = F->q;
    int r = cx_store_prepare(F->s, SQL_META, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, h->rid);
    h->meta = true;
    h->pass = false;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(st, 0);
        const char *status = (const char *)sqlite3_column_text(st, 1);
        const char *sub = (const char *)sqlite3_column_text(st, 2);
        kind = kind ? kind : "";
        status = status ? status : "";
        sub = sub ? sub : "";
        h->trust = cx_trust_of(cx_kind_parse(kind), cx_status_parse(status));
        h->updated = sqlite3_column_int64(st, 4);
        h->prov = cx_item_parse_provenance((const char *)sqlite3_column_text(st, 5));
        h->pass = (!q->kind || !*q->kind || strcmp(q->kind, kind) == 0) &&
                  (!q->status || !*q->status || strcmp(q->status, status) == 0) &&
                  (!q->subcortex || !*q->subcortex || strcmp(q->subcortex, sub) == 0) &&
                  has_all_tags(F->want_tags, (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : cx_store_sqlerr(F->s, rc, "reading a result");
}

/* Adds a semantic list: hits that pass the filters get ranks 1.. */
static int add_semantic(fuse *F, const sem_hit *sh, size_t n, int list, size_t *ranked) {
    int rank = 0, r;
    for (size_t i = 0; i < n && rank < LIST_N; i++) {
        hit *h = hit_get(F, sh[i].rid);
        if (!h)
            break;
        if ((r = hit_meta(F, h)))
            return r;
        if (!h->pass || h->sem_rank)
            continue;
        h->sem_rank = ++rank;
        h->sem_list = list;
        h->sim = sh[i].sim;
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
    const hit *x = *(const hit *const *)a, *y = *(const hit *const *)b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->base != y->base)
        return x->base > y->base ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid;
}

static int by_final(const void *a, const void *b) {
    const hit *x = *(const hit *const *)a, *y = *(const hit *const *)b;
    if (x->tier != y->tier)
        return x->tier < y->tier ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid;
}

/* The `limit` best hits, in order, into best[] (*n of them). Staleness is
 * asked best first and only while a hit could still make the cut: it only
 * ever lowers a score. */
static void rank_hits(fuse *F, size_t limit, hit **best, size_t *nbest) {
    const cx_search_query *q = F->q;
    hit **order = malloc(sizeof *order * (F->n ? F->n : 1));
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
        hit *h = order[i];
        const hit *last = m >= limit ? best[limit - 1] : NULL;
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

static const char SQL_ROW[] =
    "SELECT id, kind, status, subcortex, title, tags, updated_at, body FROM items WHERE rid = ?1";

static json_t *why_of(const hit *h) {
    json_t *why = json_object(), *lists = json_array();
    if (!why || !lists) {
        json_decref(why);
        json_decref(lists);
        return NULL;
    }
    if (h->kw_rank)
        json_array_append_new(lists, json_string("keyword"));
    if (h->sem_rank)
        json_array_append_new(lists, json_string("semantic"));
    json_object_set_new(why, "lists", lists);
    if (h->kw_rank) {
        json_object_set_new(why, "keyword_rank", json_integer(h->kw_rank));
        json_object_set_new(why, "bm25", json_real(h->bm25));
    }
    if (h->sem_rank) {
        json_object_set_new(why, "semantic_rank", json_integer(h->sem_rank));
        json_object_set_new(why, "similarity", json_real(round(h->sim * 10000.0) / 10000.0));
        if (h->sem_list == 1)
            json_object_set_new(why, "semantic_model", json_string("builtin"));
    }
    json_object_set_new(why, "trust", json_string(cx_trust_name(h->trust)));
    json_object_set_new(why, "stale", json_boolean(h->stale));
    json_object_set_new(why, "score", json_real(h->score));
    return why;
}

/* The result object for a hit, or *out NULL when the row is gone. */
static int result_row(cx_store *s, search_ext *e, const qterms *t, const hit *h, json_t **out) {
    sqlite3_stmt *st;
    *out = NULL;
    int r = cx_store_prepare(s, SQL_ROW, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, h->rid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        json_t *o = json_object();
        char iso[CX_ISO_LEN];
        const char *v;
        if (!o) {
            sqlite3_reset(st);
            return CX_ENOMEM;
        }
#define TEXT(col) ((v = (const char *)sqlite3_column_text(st, col)) ? v : "")
        json_object_set_new(o, "id", json_string(TEXT(0)));
        json_object_set_new(o, "kind", json_string(TEXT(1)));
        json_object_set_new(o, "status", json_string(TEXT(2)));
        json_object_set_new(o, "subcortex", json_string(TEXT(3)));
        json_object_set_new(o, "title", json_string(TEXT(4)));
        const char *body = TEXT(7);
        json_object_set_new(o, "snippet", make_snippet(e, t, *body ? body : TEXT(4)));
        json_object_set_new(o, "score", json_real(h->score));
        json_object_set_new(o, "tags",
                            cx_item_parse_array((const char *)sqlite3_column_text(st, 5)));
        cx_clock_format((uint64_t)sqlite3_column_int64(st, 6), iso);
        json_object_set_new(o, "updated_at", json_string(iso));
#undef TEXT
        if (h->prov)
            json_object_set_new(o, "provenance", json_incref(h->prov));
        json_object_set_new(o, "stale", json_boolean(h->stale));
        if (h->stale)
            json_object_set_new(o, "changed", json_incref(h->changed));
        json_object_set_new(o, "why", why_of(h));
        *out = o;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading a search result");
    return 0;
}

/* ---- the query embedding ---- */

typedef struct qvecs {
    float *main;          /* the query embedder's vector */
    float *builtin;       /* the built-in one, when the query embedder is another */
    int64_t main_model;   /* embed_models.id (0: no vectors of it in this store) */
    bool main_is_builtin;
} qvecs;

/* Embeds the query; on failure of the query embedder *degraded says why. */
static int embed_query(cx_store *s, const cx_search_query *q, qvecs *v, char **degraded) {
    cx_embedder *builtin = cx_store_builtin_embedder(s), *model = cx_store_embedder(s);
    cx_embedder *qe = q->embedder ? q->embedder : model ? model : builtin;
    int r;
    v->main_is_builtin = qe == builtin ||
                         strcmp(cx_embed_model_id(qe), cx_embed_model_id(builtin)) == 0;
    if (v->main_is_builtin) {
        v->main_model = cx_store_builtin_model(s);
        qe = builtin;
    } else if (qe == model) {
        v->main_model = cx_store_embedder_model(s);
    } else if ((r = cx_vec_model_id(s, cx_embed_model_id(qe), 0, false, &v->main_model))) {
        return r;
    }
    int dim = cx_embed_dim(qe);
    if (!v->main_is_builtin && (r = cx_embed_probe(qe)) == 0)
        dim = cx_embed_dim(qe);
    else if (!v->main_is_builtin)
        goto failed;
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM) {
        r = cx_error_set(CX_EFAIL, "the embedder %s has no usable dimension", cx_embed_model_id(qe));
        goto failed;
    }
    if (!(v->main = malloc(sizeof(float) * (size_t)dim)))
        return CX_ENOMEM;
    if ((r = cx_embed_batch(qe, &q->text, 1, v->main)))
        goto failed;
    if (!v->main_is_builtin) {
        if (!(v->builtin = malloc(sizeof(float) * (size_t)cx_embed_dim(builtin))))
            return CX_ENOMEM;
        if ((r = cx_vec_builtin(s, q->text, v->builtin)))
            return r;
    }
    return 0;
failed:
    if (r == CX_ENOMEM)
        return r;
    free(v->main);
    v->main = NULL;
    char msg[512];
    snprintf(msg, sizeof msg, "semantic unavailable: %s", cx_error_last());
    *degraded = strdup(msg);
    return *degraded ? 0 : CX_ENOMEM;
}

/* ---- the search ---- */

static prefilter make_prefilter(const cx_search_query *q) {
    prefilter pf = {.kinds = ~0u};
    if (q->kind && *q->kind) {
        uint8_t k = kind_code(q->kind);
        pf.kinds = 1u << k;
        if (k == CX_KIND_THREAD)
            pf.kinds |= 1u << CX_KIND_DRAFT; /* a draft approved since it was loaded */
    }
    if (q->status && *q->status) {
        unsigned m;
        cx_status st = cx_status_parse(q->status);
        if (st == CX_STATUS_RECORDED)
            m = 1u << CX_KIND_OBSERVATION | 1u << CX_KIND_COMMENT | 1u << CX_KIND_SUBCORTEX |
                1u << KIND_OTHER;
        else if (st == CX_STATUS_PUBLISHED || st == CX_STATUS_ACCEPTED)
            m = 1u << CX_KIND_ARTIFACT;
        else
            m = 1u << CX_KIND_DRAFT | 1u << CX_KIND_THREAD;
        pf.kinds &= m;
    }
    if (q->subcortex && *q->subcortex) {
        pf.has_sub = true;
        pf.sub = str_hash(q->subcortex);
    }
    return pf;
}

int cx_search_mode_parse(const char *name, cx_search_mode *out) {
    if (!name || !*name || strcmp(name, "hybrid") == 0)
        *out = CX_SEARCH_HYBRID;
    else if (strcmp(name, "keyword") == 0)
        *out = CX_SEARCH_KEYWORD;
    else if (strcmp(name, "semantic") == 0)
        *out = CX_SEARCH_SEMANTIC;
    else
        return cx_error_set(CX_EINVAL, "mode \"%.40s\" is unknown; use hybrid, keyword or semantic",
                            name);
    return 0;
}

const char *cx_search_mode_name(cx_search_mode mode) {
    switch (mode) {
    case CX_SEARCH_KEYWORD:
        return "keyword";
    case CX_SEARCH_SEMANTIC:
        return "semantic";
    default:
        return "hybrid";
    }
}

int cx_search_set_memory(cx_store *s, size_t bytes) {
    search_ext *e = NULL;
    int r = get_ext(s, &e);
    if (r == 0)
        e->ram_budget = bytes;
    return r;
}

#define WARM_CHUNK 8192 /* rows loaded per read transaction by cx_search_warm */

int cx_search_warm(cx_store *s) {
    return cx_search_warm_ex(s, NULL, NULL);
}

int cx_search_warm_ex(cx_store *s, cx_progress_fn progress, void *ud) {
    search_ext *e = NULL;
    int r = get_ext(s, &e);
    for (int k = 0; r == 0 && k < 2; k++) {
        vindex *v = k ? &e->other : &e->builtin;
        int64_t model = k ? cx_store_embedder_model(s) : cx_store_builtin_model(s);
        if (k && !(cx_store_embedder(s) && model))
            break;
        for (bool more = true; r == 0 && more;) {
            if ((r = cx_store_read_begin(s)))
                break;
            r = vindex_refresh_some(s, e, v, model, WARM_CHUNK, &more);
            cx_store_read_end(s);
            size_t done = e->builtin.n + (k ? v->n : 0);
            size_t total = e->builtin.expect + (k ? v->expect : 0);
            if (r == 0 && progress && progress(ud, done, total > done ? total : done) != 0)
                r = cx_error_set(CX_ECANCELED, "loading the vector index was canceled; "
                                               "searches load the rest as they need it");
        }
    }
    return r;
}

int cx_search_run(cx_store *s, const cx_search_query *q, json_t **out) {
    int r = 0;
    char *all = NULL, *any = NULL, *tags_text = NULL, *degraded = NULL;
    json_t *res = NULL, *tags = NULL, *results = NULL;
    kwrun *R = NULL;
    fuse *F = NULL;
    sem_hit *sh = NULL;
    qvecs qv = {0};
    qterms terms = {0};
    bool reading = false;
    if (!q->text)
        return cx_error_set(CX_EINVAL, "query is required");
    size_t limit = q->limit ? q->limit : 10;
    if (limit > CX_SEARCH_MAX_LIMIT)
        return cx_error_set(CX_ELIMIT, "limit is %zu; it must be 1 to %d", limit,
                            CX_SEARCH_MAX_LIMIT);
    if (q->mode != CX_SEARCH_HYBRID && q->mode != CX_SEARCH_KEYWORD &&
        q->mode != CX_SEARCH_SEMANTIC)
        return cx_error_set(CX_EINVAL, "mode is unknown; use hybrid, keyword or semantic");
    if (q->kind && *q->kind && cx_kind_parse(q->kind) == CX_KIND_INVALID)
        return cx_error_set(CX_EINVAL, "kind \"%.40s\" is unknown; use observation, draft, "
                                       "thread, comment or artifact",
                            q->kind);
    if (q->status && *q->status && cx_status_parse(q->status) == CX_STATUS_INVALID)
        return cx_error_set(CX_EINVAL, "status \"%.40s\" is unknown; use recorded, pending, "
                                       "approved, rejected, changes_requested, canon, published "
                                       "or accepted",
                            q->status);
    if ((r = cx_item_check_text("subcortex", q->subcortex, CX_STORE_MAX_TAG, false, true)))
        return r;
    if ((r = cx_item_check_tags("tags", q->tags, &tags)))
        return r;
    search_ext *e = NULL;
    if ((r = get_ext(s, &e)))
        goto out;
    if (q->tags.n > 0 && !(tags_text = json_dumps(tags, JSON_COMPACT))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_fts_build_query_keep(q->text, CX_FTS_ALL, has_tokens, e, &all)))
        goto out;
    if (all && (r = cx_fts_build_query_keep(q->text, CX_FTS_ANY, has_tokens, e, &any)))
        goto out;

    res = json_object();
    results = json_array();
    json_t *echo = echo_query(q->text);
    if (!res || !results || !echo) {
        json_decref(echo);
        r = CX_ENOMEM;
        goto out;
    }
    json_object_set_new(res, "query", echo);
    json_object_set_new(res, "mode", json_string(cx_search_mode_name(q->mode)));
    size_t tokens = q->max_tokens ? q->max_tokens : 2000;
    size_t budget = tokens > SIZE_MAX / 8 ? SIZE_MAX / 2 : tokens * 4;
    size_t used = json_dumpb(res, NULL, 0, JSON_COMPACT) + 48; /* results, count, truncated */
    bool truncated = false;

    if (all) {
        bool want_kw = q->mode != CX_SEARCH_SEMANTIC, want_sem = q->mode != CX_SEARCH_KEYWORD;
        R = calloc(1, sizeof *R);
        F = calloc(1, sizeof *F);
        if (!R || !F || (r = parse_terms(e, all, &terms)) != 0) {
            r = r ? r : CX_ENOMEM;
            goto out;
        }
        F->s = s;
        F->q = q;
        F->want_tags = q->tags.n ? tags : NULL;
        /* the remote model first, with no transaction open */
        if (want_sem && (r = embed_query(s, q, &qv, &degraded)))
            goto out;
        if (degraded) {
            want_sem = false;
            want_kw = true;
        }
        if (want_kw && (r = cx_store_fts_sync(s, 0)))
            goto out;
        if ((r = cx_store_read_begin(s)))
            goto out;
        reading = true;

        size_t nkw = 0, nsem = 0, nfb = 0;
        if (want_kw) {
            *R = (kwrun){.s = s, .e = e, .q = q, .tags = tags_text, .limit = LIST_N,
                         .filtered = (q->kind && *q->kind) || (q->status && *q->status) ||
                                     (q->subcortex && *q->subcortex) || tags_text,
                         .curated_only = kind_curated(cx_kind_parse(q->kind)) ||
                                         status_curated(cx_status_parse(q->status))};
            /* the OR pass (a second scan of long posting lists) only when
             * every word together found too few for the answer */
            r = rank_pass(R, all, 0);
            if (r == 0 && R->nchosen < limit && strcmp(all, any) != 0)
                r = rank_pass(R, any, 1);
            if (r)
                goto out;
            for (size_t i = 0; i < R->nchosen; i++) {
                hit *h = hit_get(F, R->chosen[i].rid);
                if (!h)
                    break;
                h->kw_rank = (int)i + 1;
                h->kw_pass = R->chosen[i].pass;
                h->bm25 = -R->chosen[i].score;
                if ((r = hit_meta(F, h)))
                    goto out;
                nkw++;
            }
        }
        if (want_sem) {
            prefilter pf = make_prefilter(q);
            vindex *main = qv.main_is_builtin ? &e->builtin : &e->other;
            size_t n = 0;
            if (!(sh = malloc(sizeof *sh * SEM_VERIFY))) {
                r = CX_ENOMEM;
                goto out;
            }
            if ((r = vindex_refresh(s, e, main, qv.main_model)))
                goto out;
            if ((r = vindex_search(s, main, qv.main, qv.main_is_builtin, &pf, NULL, sh,
                                   SEM_VERIFY, &n)) ||
                (r = add_semantic(F, sh, n, 0, &nsem)))
                goto out;
            if (!qv.main_is_builtin) {
                /* items the model has no vector of yet: their built-in ones */
                if ((r = vindex_refresh(s, e, &e->builtin, cx_store_builtin_model(s))))
                    goto out;
                if (e->other.n < e->builtin.n &&
                    ((r = vindex_search(s, &e->builtin, qv.builtin, true, &pf, &e->other, sh,
                                        SEM_VERIFY, &n)) ||
                     (r = add_semantic(F, sh, n, 1, &nfb))))
                    goto out;
            }
        }
        /* base scores: RRF when there is something to fuse, else the one
         * list's own score */
        int lists = (nkw > 0) + (nsem > 0) + (nfb > 0);
        double maxbm = 1e-9, maxsim = 1e-9; /* for the tie-break */
        for (size_t i = 0; i < F->n; i++) {
            if (F->h[i].kw_rank && F->h[i].bm25 > maxbm) maxbm = F->h[i].bm25;
            if (F->h[i].sem_rank && F->h[i].sim > maxsim) maxsim = F->h[i].sim;
        }
        uint64_t now = cx_clock_now_ms();
        for (size_t i = 0; i < F->n; i++) {
            hit *h = &F->h[i];
            if (!h->pass)
                continue;
            if (lists > 1) {
                h->base = (h->kw_rank ? 1.0 / (RRF_K + h->kw_rank) : 0.0) +
                          (h->sem_rank ? 1.0 / (RRF_K + h->sem_rank) : 0.0) +
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
        hit *best[CX_SEARCH_MAX_LIMIT];
        size_t nbest = 0;
        rank_hits(F, limit, best, &nbest);
        for (size_t i = 0; r == 0 && i < nbest; i++) {
            json_t *o = NULL;
            r = result_row(s, e, &terms, best[i], &o);
            if (r == 0 && o && !cx_item_budget_add(results, o, &used, budget, "snippet",
                                                    &truncated))
                break;
        }
        if (r)
            goto out;
    }
    json_object_set_new(res, "count", json_integer((json_int_t)json_array_size(results)));
    json_object_set_new(res, "results", results);
    results = NULL;
    json_object_set_new(res, "truncated", json_boolean(truncated));
    if (degraded)
        json_object_set_new(res, "degraded", json_string(degraded));
    *out = res;
    res = NULL;
out:
    if (reading)
        cx_store_read_end(s);
    if (F)
        for (size_t i = 0; i < F->n; i++) {
            json_decref(F->h[i].prov);
            json_decref(F->h[i].changed);
        }
    free(F);
    free(sh);
    free(qv.main);
    free(qv.builtin);
    free(degraded);
    free(terms.arena);
    free(R);
    free(all);
    free(any);
    free(tags_text);
    json_decref(tags);
    json_decref(results);
    json_decref(res);
    return r;
}
