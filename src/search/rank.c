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
 * Fusion. Hybrid sums 1/(RRF_K + rank) over the lists an item is in; with
 * one list only (the other found nothing or could not run) that list's own
 * score is used. Then trust, recency and staleness multiply it (see
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

#include "util/clock.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES 500
#define CURATED_CANDIDATES 200
#define SAMPLE 256
#define MAX_CAND (CANDIDATES + CURATED_CANDIDATES)
#define RRF_K 60.0
#define RRF_TIE 1e-4 /* weight of the lists' own scores, to break RRF ties */

/* Trust factors (DESIGN.md: canon thread > accepted artifact > published
 * artifact > draft > observation), recency and staleness. */
#define STALE_FACTOR 0.6
#define RECENCY_FLOOR 0.9      /* the factor for very old items */
#define RECENCY_HALF_DAYS 90.0 /* the recency bonus halves every 90 days */

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

static rank_data *rank_setup(cx_search_ext *e, const Fts5ExtensionApi *api, Fts5Context *fts,
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
    if (rc == SQLITE_OK)
        rc = api->xColumnSize(fts, -1, &tokens);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    double score = 0.0, norm = k1 * (1 - b + b * (double)tokens / d->avgdl);
    for (int i = 0; i < d->nphrase; i++)
        score += (i < e->npweight ? e->pweight[i] : 1.0) * d->idf[i] * (d->freq[i] * (k1 + 1.0)) /
                 (d->freq[i] + norm);
    sqlite3_result_double(ctx, -score);
}

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
    cx_search_ext *e;
    const cx_search_query *q;
    const char *tags; /* JSON array text or NULL */
    bool filtered;
    bool curated_only; /* the filters admit only drafts, threads, artifacts */
    cand chosen[CX_SEARCH_LIST_N];
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

static cx_hit *hit_get(cx_fuse *F, int64_t rid) {
    for (size_t i = 0; i < F->n; i++)
        if (F->h[i].rid == rid)
            return &F->h[i];
    if (F->n == CX_SEARCH_MAX_HITS)
        return NULL;
    cx_hit *h = &F->h[F->n++];
    *h = (cx_hit){.rid = rid, .trust = CX_TRUST_OTHER};
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
static int hit_meta(cx_fuse *F, cx_hit *h) {
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
int cx_rank_add_semantic(cx_fuse *F, const cx_sem_hit *sh, size_t n, int list, size_t *ranked) {
    int rank = 0, r;
    for (size_t i = 0; i < n && rank < CX_SEARCH_LIST_N; i++) {
        cx_hit *h = hit_get(F, sh[i].rid);
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
    *R = (kwrun){.s = F->s, .e = e, .q = q, .tags = tags_text, .limit = CX_SEARCH_LIST_N,
                 .filtered = (q->kind && *q->kind) || (q->status && *q->status) ||
                             (q->subcortex && *q->subcortex) || tags_text,
                 .curated_only = kind_curated(cx_kind_parse(q->kind)) ||
                                 status_curated(cx_status_parse(q->status))};
    /* the OR pass (a second scan of long posting lists) only when every
     * word together found too few for the answer */
    e->pweight = wall ? wall->weight : NULL; /* corrections weigh less (fts.c) */
    e->npweight = wall ? (wall->nphrase < CX_FTS_MAX_PHRASES ? wall->nphrase : CX_FTS_MAX_PHRASES) : 0;
    r = rank_pass(R, all, 0);
    e->pweight = wany ? wany->weight : NULL;
    e->npweight = wany ? (wany->nphrase < CX_FTS_MAX_PHRASES ? wany->nphrase : CX_FTS_MAX_PHRASES) : 0;
    if (r == 0 && R->nchosen < limit && strcmp(all, any) != 0)
        r = rank_pass(R, any, 1);
    e->pweight = NULL;
    e->npweight = 0;
    for (size_t i = 0; r == 0 && i < R->nchosen; i++) {
        cx_hit *h = hit_get(F, R->chosen[i].rid);
        if (!h)
            break;
        h->kw_rank = (int)i + 1;
        h->kw_pass = R->chosen[i].pass;
        h->bm25 = -R->chosen[i].score;
        if ((r = hit_meta(F, h)))
            break;
        (*nkw)++;
    }
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
}

cx_fuse *cx_rank_fuse_new(cx_store *s, const cx_search_query *q, json_t *want_tags) {
    cx_fuse *F = calloc(1, sizeof *F);
    if (!F)
        return NULL;
    F->s = s;
    F->q = q;
    F->want_tags = want_tags;
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
