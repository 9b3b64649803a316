/* SPDX-License-Identifier: Apache-2.0 */
/* Snippets of results with the query's matches marked.
 *
 * Snippets are cut here rather than by FTS5's snippet(): that needs an FTS
 * query positioned on each result row, and seeking a row in long posting
 * lists costs 50-250 µs a row. The body is tokenized with the index's own
 * tokenizer and the query's phrases are matched in it (an identifier's
 * parts match it), so the highlighted words are the ones FTS5 matched:
 * a few dozen tokens around the best cluster of matches (the whole text
 * when it is short), matches in «», "…" where text was left out. */
#include "search/search-internal.h"

#include "proto/jsonrpc.h"
#include "redact/redact.h"
#include "text/tokenizer.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>


static int add_qtoken(void *ctx, int flags, const char *tok, int n, int start, int end) {
    cx_qterms *t = ctx;
    if (t->full || n <= 0)
        return SQLITE_OK;
    if (t->ntok >= CX_SNIPPET_MAX_QTOKENS || t->len + (size_t)n > t->cap) {
        t->full = true;
        return SQLITE_OK;
    }
    if (tok[0] == CX_TEXT_STEM_MARK) {
        unsigned c = n > 1 ? (unsigned)(unsigned char)tok[1] - 'a' : 26u;
        t->stem_initials |= c < 26u ? 1u << c : UINT32_MAX;
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
int cx_snippet_terms(cx_search_ext *e, const char *expr, cx_qterms *t) {
    size_t n = strlen(expr);
    *t = (cx_qterms){.cap = n + 1};
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
    dtok *v;   /* local until it outgrows it, then malloc()ed */
    dtok *local;
    size_t n, cap;
    const cx_qterms *t;
    uint64_t initial[4]; /* the first bytes of the query's tokens, a set */
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
            dtok *v = d->v == d->local ? malloc(cap * sizeof *v) : realloc(d->v, cap * sizeof *v);
            if (!v) {
                d->oom = true;
                return SQLITE_NOMEM;
            }
            if (d->v == d->local && d->n)
                memcpy(v, d->local, d->n * sizeof *v);
            d->v = v;
            d->cap = cap;
        }
        x = &d->v[d->n++];
        *x = (dtok){.start = start, .end = end};
    }
    unsigned char c0 = n > 0 ? (unsigned char)tok[0] : 0;
    if (n <= 0 || !((d->initial[c0 >> 6] >> (c0 & 63)) & 1u))
        return SQLITE_OK; /* most tokens: no query token starts so */
    const cx_qterms *t = d->t;
    for (int k = 0; k < t->ntok; k++) {
        int qn = t->n[k];
        const char *q = t->arena + t->off[k];
        /* the first byte before memcmp(): most query tokens differ there */
        if ((n == qn || (t->prefix[k] && n > qn)) && tok[0] == q[0] &&
            memcmp(tok, q, (size_t)qn) == 0)
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

/* About `tokens` tokens of text around its best cluster of matches; all
 * of it when it is at most `whole` bytes. */
json_t *cx_snippet_make(cx_search_ext *e, const cx_qterms *t, const char *text, size_t tokens,
                        size_t whole) {
    size_t len = strlen(text);
    dtok local[256]; /* a result's tokens, mostly: no allocation */
    dtoks d = {.t = t, .v = local, .local = local, .cap = sizeof local / sizeof *local};
    json_t *out = NULL;
    if (len > INT32_MAX / 2)
        len = INT32_MAX / 2;
    for (int k = 0; k < t->ntok; k++) {
        unsigned char c0 = (unsigned char)t->arena[t->off[k]];
        d.initial[c0 >> 6] |= 1ull << (c0 & 63);
    }
    cx_text_tokenize_snippet(e->tok, &d, text, (int)len, t->stem_initials, add_dtoken);
    if (d.oom || d.n == 0) {
        size_t keep = cx_utf8_cut(text, len, 200);
        out = cx_rpc_string(text, keep);
        goto done;
    }
    /* phrase occurrences: consecutive tokens matching the phrase's tokens,
     * starting at a token that matches something */
    for (size_t i = 0; i < d.n; i++) {
        if (!(d.v[i].m[0] | d.v[i].m[1]))
            continue;
        for (int p = 0; p < t->nph; p++) {
            int f = t->ph[p].first, m = t->ph[p].ntok;
            if (i + (size_t)m > d.n)
                continue;
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
    /* a short text whole: an excerpt of it would save little and cost a get */
    size_t w = d.n < tokens || len <= whole ? d.n : tokens, best = 0;
    long best_score = -1;
    /* slid along the text: per phrase bit, how many of the window's tokens
     * start one, so that the distinct count is kept as tokens enter and
     * leave (the window [i + 1 - w, i]) */
    unsigned cnt[64] = {0};
    long distinct = 0, hits = 0;
    for (size_t i = 0; w > 0 && i < d.n; i++) {
        hits += d.v[i].hit;
        for (uint64_t b = d.v[i].starts; b; b &= b - 1)
            distinct += cnt[__builtin_ctzll(b)]++ == 0;
        if (i >= w) {
            const dtok *gone = &d.v[i - w];
            hits -= gone->hit;
            for (uint64_t b = gone->starts; b; b &= b - 1)
                distinct -= --cnt[__builtin_ctzll(b)] == 0;
        }
        if (i + 1 < w)
            continue;
        long score = distinct * 1000 + hits;
        if (score > best_score) {
            best_score = score;
            best = i + 1 - w;
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
    size_t from = (size_t)d.v[lo].start, to = (size_t)d.v[hi].end, ms, me;
    /* never cut a "[REDACTED:rule]" marker in two: a cut inside one moves
     * out to take it whole (its tokens are the rule's words); most texts
     * have none, which one memchr() tells */
    bool marked = memchr(text, '[', len) &&
                  memmem(text, len, CX_REDACT_PREFIX, sizeof CX_REDACT_PREFIX - 1);
    if (marked && cx_redact_in_marker(text, len, from, &ms, &me)) {
        while (lo > 0 && (size_t)d.v[lo - 1].start >= ms)
            lo--;
        from = ms;
    }
    if (marked && cx_redact_in_marker(text, len, to, &ms, &me)) {
        while (hi + 1 < d.n && (size_t)d.v[hi + 1].end <= me)
            hi++;
        to = me;
    }
    /* a window at either end of the text keeps what is around its tokens
     * there (a closing '.', an opening '`'): a short text comes out whole */
    if (lo == 0)
        from = 0;
    if (hi + 1 == d.n)
        to = len;
    sbuf b = {.cap = (to - from) + 8 * (hi - lo + 1) + 16};
    b.p = malloc(b.cap);
    if (!b.p)
        goto done;
    if (lo > 0)
        sb_put(&b, "\xe2\x80\xa6", 3);
    /* the text from `from` to `to` (tokens never overlap), with « before
     * each run of hits and » after it: one copy per run of text */
    size_t pos = from;
    for (size_t i = lo; i <= hi; i++) {
        if (!d.v[i].hit)
            continue;
        if (i == lo || !d.v[i - 1].hit) { /* opens */
            sb_put(&b, text + pos, (size_t)d.v[i].start - pos);
            sb_put(&b, "\xc2\xab", 2);
            pos = (size_t)d.v[i].start;
        }
        if (i == hi || !d.v[i + 1].hit) { /* closes */
            sb_put(&b, text + pos, (size_t)d.v[i].end - pos);
            sb_put(&b, "\xc2\xbb", 2);
            pos = (size_t)d.v[i].end;
        }
    }
    sb_put(&b, text + pos, to - pos); /* a marker's closing "]" */
    if (hi + 1 < d.n)
        sb_put(&b, "\xe2\x80\xa6", 3);
    out = cx_rpc_string(b.p, b.len);
    free(b.p);
done:
    if (d.v != local)
        free(d.v);
    return out ? out : json_string("");
}

