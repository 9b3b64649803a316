/* SPDX-License-Identifier: Apache-2.0 */
/* Typo correction of query words (issue 12 item 3): the hook the query
 * builder (fts.c) asks for the corrections of each word, identifier part
 * and whole identifier.
 *
 * A word is corrected when it has few documents: none, or fewer than
 * CX_TYPO_RARE while a term one edit away has CX_TYPO_RATIO times more
 * (a correct rare word next to a common one, `parsr` beside `parse`, is
 * both kept and corrected; a correct rare word with no common neighbour is
 * left alone). Its neighbours are every string one Damerau edit away over
 * [a-z_] (the typo dictionary holds no digits): deletions, transpositions
 * of neighbouring letters, substitutions and insertions, about 55 n
 * strings for a word of n letters, looked up in the store's typo
 * dictionary (store-search.h, a table of every base term the index holds):
 * those that keep the word's first two letters (three for a word of five
 * or more), most of them, by one scan of the dictionary's range for that
 * prefix, the others by a look-up each (a look-up costs ~3 k instructions,
 * a row of the scan a tenth of that). A neighbour in the dictionary is used when it has
 * documents (terms of deleted items stay in the dictionary), the best two
 * by their number of documents.
 *
 * Two guards against correcting words that are no typos, only absent from
 * the store: a word of four letters (shorter than CX_TYPO_SHORT) is
 * corrected by a transposition only, since one letter more, less or other
 * makes another real word of so short a word too often (edge -> edee,
 * same -> safe, past -> last) (a part of an identifier of several parts
 * is not held to that: its sibling parts must match too, which is context
 * enough, so `qeue` in rotateQeueWindow becomes queue and `pth` in
 * validate_tenant_pth, of three letters, path; and it is counted as
 * written, not with its stem, as the index matches parts); and in a store of more than
 * CX_TYPO_BIG_STORE items a correction of a word with no documents needs
 * two, since there a term of one note is as often noise (a fragment of a
 * hash, a name, the note's own typo) as the word meant. Measured on
 * bench/relevance/scale.py at 10k: without them hybrid recall@5 of
 * paraphrase queries fell from 0.292 to 0.236; with them it holds.
 *
 * Document frequency: counted by FTS5 over items_fts, stopping at
 * CX_TYPO_DF_CAP (SELECT count(*) FROM (... MATCH ... LIMIT cap)), which
 * reads the first entries of one posting list only; exact below the cap,
 * and a term with more is plenty for a correction. The query word itself
 * is counted up to CX_TYPO_RARE only, with its stem when it is a word of
 * letters: a word whose other forms are indexed is no typo.
 *
 * Cost: nothing more than one count when every word of the query together
 * is in CX_TYPO_RARE items or more (then each word is: cx_typo_needed);
 * else a count per candidate word of the query, and for a rare one the
 * look-ups of its neighbours; a query spends at most CX_TYPO_BUDGET
 * look-ups in all (hostile input, a query of nothing but misspelt words,
 * stays within milliseconds), and each distinct word is looked at once (the
 * every-word and the any-word expressions share the memo). */
#include "search/search-internal.h"

#include "text/tokenizer.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

#define DF_COST 8 /* a document count against the budget, in look-ups */

static const char ALPHABET[] = "abcdefghijklmnopqrstuvwxyz_";

static const char SQL_SIZE[] = "SELECT coalesce(max(rid), 0) FROM items";

void cx_typo_init(cx_typo *t, cx_store *s) {
    t->s = s;
    t->budget = CX_TYPO_BUDGET;
    t->nmemo = 0;
    t->err = 0;
    t->big = false;
    sqlite3_stmt *st;
    if (!s || (t->err = cx_store_prepare(s, SQL_SIZE, &st)))
        return;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        t->big = sqlite3_column_int64(st, 0) > CX_TYPO_BIG_STORE;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        t->err = cx_store_sqlerr(s, rc, "reading the store's size");
}

bool cx_typo_any(const cx_typo *t) {
    for (size_t i = 0; i < t->nmemo; i++)
        if (t->memo[i].nfix > 0)
            return true;
    return false;
}

json_t *cx_typo_corrected(const cx_typo *t) {
    if (!cx_typo_any(t))
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; o && i < t->nmemo; i++)
        if (t->memo[i].nfix > 0 &&
            json_object_set_new(o, t->memo[i].word, json_string(t->memo[i].fix[0])) != 0) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

int cx_typo_embed_text(const cx_typo *t, const char *text, char **out) {
    *out = NULL;
    if (!cx_typo_any(t))
        return 0;
    size_t n = strlen(text);
    cx_buf b;
    cx_buf_init(&b, n + CX_TYPO_MEMO * (CX_STORE_TERM_MAX + 1) + 1);
    int r = cx_buf_add(&b, text, n);
    for (size_t i = 0; r == 0 && i < t->nmemo; i++)
        if (t->memo[i].nfix > 0 && (r = cx_buf_add(&b, " ", 1)) == 0)
            r = cx_buf_adds(&b, t->memo[i].fix[0]);
    if (r == 0 && !(*out = cx_buf_take(&b, NULL)))
        r = CX_ENOMEM;
    cx_buf_free(&b);
    return r;
}

/* ---- neighbours and distance ---- */

size_t cx_typo_neighbours(const char *w, size_t n,
                          bool (*fn)(void *ud, const char *cand, size_t len), void *ud) {
    char c[CX_STORE_TERM_MAX + 1];
    size_t calls = 0;
    if (n == 0 || n > CX_STORE_TERM_MAX)
        return 0;
#define EMIT(len)                                                                         \
    do {                                                                                  \
        calls++;                                                                          \
        if (!fn(ud, c, (len)))                                                            \
            return calls;                                                                 \
    } while (0)
    /* deletions */
    for (size_t i = 0; n > 1 && i < n; i++) {
        if (i > 0 && w[i] == w[i - 1])
            continue; /* deleting either of two equal letters gives one string */
        memcpy(c, w, i);
        memcpy(c + i, w + i + 1, n - i - 1);
        EMIT(n - 1);
    }
    /* transpositions of neighbours */
    for (size_t i = 0; i + 1 < n; i++) {
        if (w[i] == w[i + 1])
            continue;
        memcpy(c, w, n);
        c[i] = w[i + 1];
        c[i + 1] = w[i];
        EMIT(n);
    }
    /* substitutions */
    for (size_t i = 0; i < n; i++) {
        memcpy(c, w, n);
        for (const char *a = ALPHABET; *a; a++) {
            if (*a == w[i])
                continue;
            c[i] = *a;
            EMIT(n);
        }
    }
    /* insertions */
    for (size_t i = 0; n < CX_STORE_TERM_MAX && i <= n; i++) {
        memcpy(c, w, i);
        memcpy(c + i + 1, w + i, n - i);
        for (const char *a = ALPHABET; *a; a++) {
            if (i > 0 && *a == w[i - 1])
                continue; /* the same string as inserting it after w[i-1]'s twin */
            c[i] = *a;
            EMIT(n + 1);
        }
    }
#undef EMIT
    return calls;
}

int cx_typo_distance(const char *a, size_t na, const char *b, size_t nb) {
    if (na > CX_STORE_TERM_MAX || nb > CX_STORE_TERM_MAX)
        return -1;
    /* three rows of the optimal string alignment table */
    int r0[CX_STORE_TERM_MAX + 1], r1[CX_STORE_TERM_MAX + 1], r2[CX_STORE_TERM_MAX + 1];
    int *pp = r0, *p = r1, *cur = r2;
    for (size_t j = 0; j <= nb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = p[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        int *t = pp;
        pp = p;
        p = cur;
        cur = t;
    }
    return p[nb];
}

/* ---- look-ups ---- */

static const char SQL_DF[] =
    "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ?1 LIMIT ?2)";

/* The documents of term (lower-case [a-z_]: it needs no escaping) in the
 * index, counted up to cap; with `stem`, of the term or its stem (a word
 * whose other forms are indexed is no typo: `migrations` where only
 * `migration` is). */
static int df(cx_typo *t, const char *term, size_t n, bool stem, int cap, int *out) {
    char expr[2 * CX_STORE_TERM_MAX + 16];
    sqlite3_stmt *st;
    *out = 0;
    t->budget -= DF_COST;
    int r = cx_store_prepare(t->s, SQL_DF, &st);
    if (r)
        return r;
    for (size_t i = 0; stem && i < n; i++)
        stem = term[i] != '_';
    int len = stem ? snprintf(expr, sizeof expr, "\"%.*s\" OR \"%c%.*s\"", (int)n, term,
                              CX_TEXT_STEM_MARK, (int)n, term)
                   : snprintf(expr, sizeof expr, "\"%.*s\"", (int)n, term);
    sqlite3_bind_text(st, 1, expr, len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, cap);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(t->s, rc, "counting a term's documents");
}

int cx_typo_needed(cx_typo *t, const char *all, bool *needed) {
    sqlite3_stmt *st;
    *needed = false;
    if (!all || t->err)
        return t->err;
    int r = cx_store_prepare(t->s, SQL_DF, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, all, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, CX_TYPO_RARE);
    int rc = sqlite3_step(st);
    *needed = rc == SQLITE_ROW && sqlite3_column_int(st, 0) < CX_TYPO_RARE;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(t->s, rc, "counting the query's matches");
}

/* The search over one word's neighbours. */
typedef struct probe {
    cx_typo *t;
    const char *word;
    size_t n;
    bool part; /* an identifier part: every edit, whatever its length */
    int need;  /* documents a correction needs, at least */
    struct {
        char term[CX_STORE_TERM_MAX + 1];
        int df;
    } best[CX_TYPO_MAX_FIX];
    int nbest;
    char seen[8][CX_STORE_TERM_MAX + 1]; /* neighbours found in the dictionary */
    int nseen;
    cx_buf cands; /* the neighbours to look up, NUL-terminated, end to end */
    size_t ncands;
} probe;

/* Whether b is a with two neighbouring letters swapped. */
static bool swapped(const char *a, const char *b, size_t nb, size_t na) {
    if (na != nb)
        return false;
    size_t i = 0;
    while (i < na && a[i] == b[i])
        i++;
    return i + 1 < na && a[i] == b[i + 1] && a[i + 1] == b[i] &&
           memcmp(a + i + 2, b + i + 2, na - i - 2) == 0;
}

/* Adds a neighbour worth looking up to P->cands. */
static bool probe_one(void *ud, const char *cand, size_t len) {
    probe *P = ud;
    cx_typo *t = P->t;
    if (t->budget <= 0)
        return false;
    if (len < CX_STORE_TERM_MIN || cand[0] == '_' || cand[len - 1] == '_')
        return true; /* no such term in the dictionary */
    if (P->n < CX_TYPO_SHORT && !P->part && !swapped(P->word, cand, len, P->n))
        return true; /* a short word: transpositions only */
    t->budget--;
    if (cx_buf_add(&P->cands, cand, len) || cx_buf_add(&P->cands, "", 1)) {
        t->err = CX_ENOMEM;
        return false;
    }
    P->ncands++;
    return true;
}

/* A neighbour the dictionary holds: a correction when it has documents
 * enough, kept among the best two. */
static bool probe_known(void *ud, const char *cand, size_t len) {
    probe *P = ud;
    cx_typo *t = P->t;
    for (int i = 0; i < P->nseen; i++)
        if (strlen(P->seen[i]) == len && memcmp(P->seen[i], cand, len) == 0)
            return true;
    if (P->nseen < (int)(sizeof P->seen / sizeof P->seen[0])) {
        memcpy(P->seen[P->nseen], cand, len);
        P->seen[P->nseen++][len] = '\0';
    }
    int d = 0;
    if ((t->err = df(t, cand, len, false, CX_TYPO_DF_CAP, &d)))
        return false;
    if (d < P->need)
        return true;
    /* keep the best two by documents; the first found wins a tie */
    int at = P->nbest;
    while (at > 0 && P->best[at - 1].df < d)
        at--;
    if (at >= CX_TYPO_MAX_FIX)
        return true;
    int last = P->nbest < CX_TYPO_MAX_FIX ? P->nbest : CX_TYPO_MAX_FIX - 1;
    for (int i = last; i > at; i--)
        P->best[i] = P->best[i - 1];
    memcpy(P->best[at].term, cand, len);
    P->best[at].term[len] = '\0';
    P->best[at].df = d;
    if (P->nbest < CX_TYPO_MAX_FIX)
        P->nbest++;
    return true;
}

size_t cx_typo_fix(void *ud, const char *word, size_t len, bool part,
                   char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1]) {
    cx_typo *t = ud;
    if (len < (part ? CX_TYPO_PART_MIN : CX_STORE_TERM_MIN) || len > CX_STORE_TERM_MAX)
        return 0;
    for (size_t i = 0; i < t->nmemo; i++) {
        if (t->memo[i].part == part && strlen(t->memo[i].word) == len &&
            memcmp(t->memo[i].word, word, len) == 0) {
            for (size_t k = 0; k < t->memo[i].nfix; k++)
                memcpy(fix[k], t->memo[i].fix[k], CX_STORE_TERM_MAX + 1);
            return t->memo[i].nfix;
        }
    }
    if (t->err || t->budget <= 0 || t->nmemo >= CX_TYPO_MEMO)
        return 0;
    /* a word is counted with its stem (the dictionary holds no stems: a
     * word absent from it may still have its forms indexed); an identifier
     * part as written, the way the index matches it */
    int d0 = 0;
    if ((t->err = df(t, word, len, !part, CX_TYPO_RARE, &d0)))
        return 0;
    size_t nfix = 0;
    if (d0 < CX_TYPO_RARE) {
        probe P = {.t = t, .word = word, .n = len, .part = part,
                   .need = d0 > 0 ? d0 * CX_TYPO_RATIO : t->big ? 2 : 1};
        /* about 55 n neighbours of at most n + 4 bytes each in the list */
        cx_buf_init(&P.cands, (len + 5) * (60 * len + 60));
        cx_typo_neighbours(word, len, probe_one, &P);
        /* most neighbours keep the word's first letters: those are read
         * with one scan of the dictionary's range for them */
        if (!t->err && P.ncands > 0)
            t->err = cx_store_terms_known_each(t->s, P.cands.data, P.ncands, word,
                                               len >= 5 ? 3 : 2, probe_known, &P);
        cx_buf_free(&P.cands);
        if (t->err)
            return 0;
        nfix = (size_t)P.nbest;
        for (size_t k = 0; k < nfix; k++)
            memcpy(fix[k], P.best[k].term, CX_STORE_TERM_MAX + 1);
    }
    /* remembered, corrected or not (a word the budget cut short too) */
    memcpy(t->memo[t->nmemo].word, word, len);
    t->memo[t->nmemo].word[len] = '\0';
    t->memo[t->nmemo].part = part;
    for (size_t k = 0; k < nfix; k++)
        memcpy(t->memo[t->nmemo].fix[k], fix[k], CX_STORE_TERM_MAX + 1);
    t->memo[t->nmemo].nfix = (uint8_t)nfix;
    t->nmemo++;
    return nfix;
}
