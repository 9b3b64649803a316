/* SPDX-License-Identifier: Apache-2.0 */
/* Keyword search: BM25 over the store's FTS5 indexes (title weighted over
 * tags over body), filters, snippets and a token budget.
 *
 * Every word must match first (AND); when that finds fewer than `limit`
 * items, items matching any word (OR) fill the rest, ranked after them.
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
 * index alone.
 *
 * Snippets are cut here rather than by FTS5's snippet(): that needs an FTS
 * query positioned on each result row, and seeking a row in long posting
 * lists costs 50-250 µs a row. The body is tokenized with the index's own
 * tokenizer and the query's phrases are matched in it, so the highlighted
 * words are the ones FTS5 matched: about 24 tokens around the best cluster
 * of matches, matches in «», "…" where text was left out. */
#include "search/search.h"

#include "search/fts-internal.h"
#include "store/store-internal.h"
#include "util/clock.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES 500
#define CURATED_CANDIDATES 200
#define SAMPLE 256
#define MAX_CAND (CANDIDATES + CURATED_CANDIDATES)
#define SNIPPET_TOKENS 24
#define MAX_QTOKENS 128 /* query tokens the snippet matches (two 64-bit masks) */

/* Per store: the tokenizer the indexes use (to tell whether a non-ASCII
 * word has any token in it, see fts-internal.h, and to cut snippets) and
 * the hand-over of document frequencies and the average length from the
 * window pass to the curated pass, so that their scores compare. */
typedef struct search_ext {
    fts5_tokenizer tok_api;
    Fts5Tokenizer *tok;
    bool reuse_idf;         /* the curated pass scores with the window's idf */
    int nidf;               /* phrases in idf[], -1 = none yet */
    double avgdl;
    double idf[CX_FTS_MAX_TERMS];
} search_ext;

static void ext_free(void *p) {
    search_ext *e = p;
    if (e && e->tok)
        e->tok_api.xDelete(e->tok);
    free(e);
}

/* ---- the scorer ---- */

typedef struct sample {
    int64_t n, first, last;
} sample;

static int sample_hit(const Fts5ExtensionApi *api, Fts5Context *fts, void *ud) {
    sample *s = ud;
    int64_t rid = api->xRowid(fts);
    if (s->n == 0)
        s->first = rid;
    s->last = rid;
    return ++s->n >= SAMPLE ? SQLITE_DONE : SQLITE_OK;
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

/* The per-store search state, made on first use: the tokenizer and the
 * cx_bm25 function on this connection. */
static int get_ext(cx_store *s, search_ext **out) {
    if (s->search.ptr) {
        *out = s->search.ptr;
        return 0;
    }
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    sqlite3 *db = cx_store_sqlite(s);
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (!api)
        return cx_error_set(CX_EFAIL, "this SQLite has no FTS5; search needs it");
    search_ext *e = calloc(1, sizeof *e);
    if (!e)
        return CX_ENOMEM;
    e->nidf = -1;
    void *ud = NULL;
    const char *args[] = {"remove_diacritics", "2"};
    if (api->xFindTokenizer(api, "unicode61", &ud, &e->tok_api) != SQLITE_OK ||
        e->tok_api.xCreate(ud, args, 2, &e->tok) != SQLITE_OK ||
        api->xCreateFunction(api, "cx_bm25", e, cx_bm25, NULL) != SQLITE_OK) {
        ext_free(e);
        return cx_error_set(CX_EFAIL, "cannot set up FTS5 search: %s", sqlite3_errmsg(db));
    }
    s->search.ptr = e;
    s->search.free_fn = ext_free;
    *out = e;
    return 0;
}

/* ---- helpers ---- */

/* The query as JSON even when it is not UTF-8: bad bytes become U+FFFD. */
static json_t *echo_query(const char *text) {
    size_t n = strlen(text);
    if (cx_store_utf8_valid(text, n))
        return json_string(text);
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !cx_store_utf8_valid(text + i, k))
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

static bool one_of(const char *v, const char *const *list) {
    for (; *list; list++)
        if (strcmp(v, *list) == 0)
            return true;
    return false;
}

static const char *const kinds[] = {"observation", "draft", "thread", "comment", "artifact",
                                    "subcortex", NULL};
static const char *const statuses[] = {"recorded", "pending", "approved", "rejected",
                                       "changes_requested", "canon", "published", "accepted",
                                       NULL};
/* What only drafts, threads and artifacts can be. */
static const char *const curated_kinds[] = {"draft", "thread", "artifact", NULL};
static const char *const curated_statuses[] = {"pending", "approved", "rejected",
                                               "changes_requested", "canon", "published",
                                               "accepted", NULL};

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
    if (flags & FTS5_TOKEN_COLOCATED)
        return SQLITE_OK;
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
    dtok *x = &d->v[d->n++];
    *x = (dtok){.start = start, .end = end};
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
        size_t keep = cx_store_utf8_cut(text, len, 200);
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

/* ---- queries ---- */

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
static const char SQL_ROW[] =
    "SELECT id, kind, status, subcortex, title, tags, updated_at, body FROM items WHERE rid = ?1";

typedef struct cand {
    int64_t rid;
    double score; /* cx_bm25: lower is better */
    int pass;     /* 0 = every word, 1 = any word */
} cand;

typedef struct run {
    cx_store *s;
    search_ext *e;
    const cx_search_query *q;
    const char *tags; /* JSON array text or NULL */
    bool filtered;
    bool curated_only; /* the filters admit only drafts, threads, artifacts */
    cand chosen[CX_SEARCH_MAX_LIMIT];
    size_t nchosen, limit;
    cand buf[MAX_CAND];
} run;

/* Appends up to k candidates for `expr` to buf[*n]. *full tells whether k
 * were found (older matches may exist). */
static int collect(run *R, const char *sql, const char *expr, int pass, size_t k, size_t *n,
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

static bool chosen_already(const run *R, int64_t rid) {
    for (size_t i = 0; i < R->nchosen; i++)
        if (R->chosen[i].rid == rid)
            return true;
    return false;
}

/* Ranks the candidates for one expression and adds the best to chosen. */
static int rank_pass(run *R, const char *expr, int pass) {
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

/* The result object for a chosen row, or *out NULL when the row is gone. */
static int result_row(run *R, const qterms *t, const cand *c, json_t **out) {
    sqlite3_stmt *st;
    *out = NULL;
    int r = cx_store_prepare(R->s, SQL_ROW, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, c->rid);
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
        json_object_set_new(o, "snippet", make_snippet(R->e, t, *body ? body : TEXT(4)));
        json_object_set_new(o, "score", json_real(-c->score));
        json_object_set_new(o, "tags",
                            cx_item_parse_array((const char *)sqlite3_column_text(st, 5)));
        cx_clock_format((uint64_t)sqlite3_column_int64(st, 6), iso);
        json_object_set_new(o, "updated_at", json_string(iso));
#undef TEXT
        *out = o;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(R->s, rc, "reading a search result");
    return 0;
}

int cx_search_run(cx_store *s, const cx_search_query *q, json_t **out) {
    int r = 0;
    char *all = NULL, *any = NULL, *tags_text = NULL;
    json_t *res = NULL, *tags = NULL, *results = NULL;
    run *R = NULL;
    qterms terms = {0};
    if (!q->text)
        return cx_error_set(CX_EINVAL, "query is required");
    size_t limit = q->limit ? q->limit : 10;
    if (limit > CX_SEARCH_MAX_LIMIT)
        return cx_error_set(CX_ELIMIT, "limit is %zu; it must be 1 to %d", limit,
                            CX_SEARCH_MAX_LIMIT);
    if (q->kind && *q->kind && !one_of(q->kind, kinds))
        return cx_error_set(CX_EINVAL, "kind \"%.40s\" is unknown; use observation, draft, "
                                       "thread, comment or artifact",
                            q->kind);
    if (q->status && *q->status && !one_of(q->status, statuses))
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
    size_t tokens = q->max_tokens ? q->max_tokens : 2000;
    size_t budget = tokens > SIZE_MAX / 8 ? SIZE_MAX / 2 : tokens * 4;
    size_t used = json_dumpb(res, NULL, 0, JSON_COMPACT) + 48; /* results, count, truncated */
    bool truncated = false;

    if (all) {
        R = calloc(1, sizeof *R);
        if (!R || (r = parse_terms(e, all, &terms)) != 0) {
            r = r ? r : CX_ENOMEM;
            goto out;
        }
        *R = (run){.s = s, .e = e, .q = q, .tags = tags_text, .limit = limit,
                   .filtered = (q->kind && *q->kind) || (q->status && *q->status) ||
                               (q->subcortex && *q->subcortex) || tags_text,
                   .curated_only = (q->kind && one_of(q->kind, curated_kinds)) ||
                                   (q->status && one_of(q->status, curated_statuses))};
        if ((r = cx_store_fts_sync(s, 0)))
            goto out;
        if ((r = cx_store_read_begin(s)))
            goto out;
        r = rank_pass(R, all, 0);
        if (r == 0 && R->nchosen < limit && strcmp(all, any) != 0)
            r = rank_pass(R, any, 1);
        for (size_t i = 0; r == 0 && i < R->nchosen; i++) {
            json_t *o = NULL;
            r = result_row(R, &terms, &R->chosen[i], &o);
            if (r == 0 && o && !cx_item_budget_add(results, o, &used, budget, "snippet",
                                                    &truncated))
                break;
        }
        cx_store_read_end(s);
        if (r)
            goto out;
    }
    json_object_set_new(res, "count", json_integer((json_int_t)json_array_size(results)));
    json_object_set_new(res, "results", results);
    results = NULL;
    json_object_set_new(res, "truncated", json_boolean(truncated));
    *out = res;
    res = NULL;
out:
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
