/* SPDX-License-Identifier: Apache-2.0 */
/* The typo dictionary: table typo_terms, one row per distinct index term
 * that a misspelt query word may be corrected to (src/search/typo.c probes
 * it for the words one edit away).
 *
 * What goes in: the base tokens the "cortex" tokenizer emits for a
 * document (words, whole identifiers, identifier parts; never the
 * colocated stems and exact forms, bigrams or emoji), folded and
 * lower-cased as the index holds them, of 4 to 64 bytes of [a-z_] only.
 * Digits are left out on purpose: hashes, build numbers and ticket refs
 * would make most of the table and are never what a typo meant; so are
 * paths and dotted names (their joiners), and every non-ASCII word (the
 * query side corrects ASCII only).
 *
 * How: the tokenizer hands each base token of a document to this file's
 * sink (cx_text_tokenizer_sink) while a write transaction runs: every
 * path that indexes text does so inside cx_store_write (the lazy FTS
 * catch-up that indexes observed and pulled items and rebuilds the index
 * after a tokenizer upgrade, and the triggers that re-index edited or
 * pulled items). The sink may not run SQL (it is called from inside
 * FTS5), so new terms wait in a buffer and cx_store_terms_flush writes
 * them with INSERT OR IGNORE just before the transaction commits. A
 * direct-mapped cache of the hashes of terms seen recently (TERMS_CACHE
 * slots, 128 KiB) keeps common words from costing more than a hash: only
 * a term missing from it is queued. The cache only ever holds terms that
 * are in the table or queued in the open transaction; a rollback empties
 * it. Memory is bounded: the cache is fixed, the queue capped per
 * transaction (a term past the cap is dropped: it only loses a
 * correction).
 *
 * Deleted or edited items leave their terms behind: harmless, a
 * correction is only used when its term has documents (typo.c checks). */
#include "store/store-internal.h"

#include "text/tokenizer.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TERMS_CACHE 16384             /* slots of the seen-cache (a power of two) */
#define TERMS_QUEUE_MAX (16u << 20)   /* bytes of terms queued in one transaction */

struct cx_store_terms {
    uint64_t seen[TERMS_CACHE]; /* hashes of terms in the table or queued; 0 = empty */
    cx_buf queue;               /* per term: its length (one byte), its bytes */
    bool writing;               /* inside cx_store_write: take terms */
};

/* The FNV-1a hash of a term that belongs in the dictionary, else 0. */
static uint64_t term_hash(const char *t, int n) {
    if (n < CX_STORE_TERM_MIN || n > CX_STORE_TERM_MAX)
        return 0;
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!((c >= 'a' && c <= 'z') || c == '_'))
            return 0;
        h = (h ^ c) * 1099511628211ull;
    }
    return h | 1; /* never 0, the empty slot */
}

static void terms_sink(void *ud, const char *term, int len) {
    cx_store_terms *T = ud;
    if (!T->writing)
        return;
    uint64_t h = term_hash(term, len);
    if (!h)
        return;
    uint64_t *slot = &T->seen[(h >> 17) & (TERMS_CACHE - 1)];
    if (*slot == h)
        return;
    unsigned char n = (unsigned char)len;
    if (T->queue.len + 1u + (size_t)len > T->queue.max || cx_buf_add(&T->queue, &n, 1) ||
        cx_buf_add(&T->queue, term, (size_t)len))
        return; /* over the cap (or out of memory): only a correction is lost */
    *slot = h;
}

int cx_store_terms_open(cx_store *s) {
    cx_store_terms *T = calloc(1, sizeof *T);
    if (!T)
        return CX_ENOMEM;
    cx_buf_init(&T->queue, TERMS_QUEUE_MAX);
    if (cx_text_tokenizer_sink(s->db, terms_sink, T) != SQLITE_OK) {
        cx_buf_free(&T->queue);
        free(T);
        return cx_error_set(CX_EFAIL, "internal: the cortex tokenizer is not registered");
    }
    s->terms = T;
    return 0;
}

void cx_store_terms_free(cx_store *s) {
    if (!s->terms)
        return;
    if (s->db)
        (void)cx_text_tokenizer_sink(s->db, NULL, NULL);
    cx_buf_free(&s->terms->queue);
    free(s->terms);
    s->terms = NULL;
}

void cx_store_terms_begin(cx_store *s) {
    if (s->terms)
        s->terms->writing = true;
}

static const char SQL_TERM_ADD[] = "INSERT OR IGNORE INTO typo_terms(term) VALUES (?1)";

int cx_store_terms_flush(cx_store *s) {
    cx_store_terms *T = s->terms;
    if (!T || T->queue.len == 0)
        return 0;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_TERM_ADD, &st);
    const unsigned char *q = (const unsigned char *)T->queue.data;
    for (size_t i = 0; r == 0 && i < T->queue.len; i += 1u + q[i]) {
        sqlite3_bind_text(st, 1, (const char *)q + i + 1, q[i], SQLITE_STATIC);
        r = cx_store_exec_stmt(s, st, "adding to the typo dictionary");
    }
    cx_buf_reset(&T->queue);
    return r;
}

void cx_store_terms_end(cx_store *s, bool committed) {
    cx_store_terms *T = s->terms;
    if (!T)
        return;
    T->writing = false;
    if (!committed) /* what was queued or written is gone with the rollback */
        memset(T->seen, 0, sizeof T->seen);
    cx_buf_reset(&T->queue);
    if (T->queue.alloc > (1u << 20)) { /* a rebuild's queue: give the memory back */
        cx_buf_free(&T->queue);
        cx_buf_init(&T->queue, TERMS_QUEUE_MAX);
    }
}

static const char SQL_TERM_KNOWN[] = "SELECT 1 FROM typo_terms WHERE term = ?1";

int cx_store_term_known(cx_store *s, const char *term, size_t n, bool *known) {
    sqlite3_stmt *st;
    *known = false;
    int r = cx_store_prepare(s, SQL_TERM_KNOWN, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, term, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *known = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : cx_store_sqlerr(s, rc, "reading the typo dictionary");
}

/* The dictionary's terms that start with a prefix, in key order: one range
 * of the primary key's B-tree. */
static const char SQL_TERMS_RANGE[] =
    "SELECT term FROM typo_terms WHERE term >= ?1 AND term < ?2 LIMIT ?3";

#define RANGE_MAX 8192 /* terms a range scan reads; past it, a look-up each */

static uint64_t term_key(const char *t, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)t[i]) * 0x100000001b3ull;
    return h | 1; /* 0 marks an empty slot */
}

/* The terms of the dictionary starting with prefix (1 to 8 bytes of
 * [a-z_]) of nmin to nmax bytes, as a set of 64-bit keys (*set, *mask+1
 * slots; NULL when the range holds more than RANGE_MAX terms). Two
 * strings with one key would make a neighbour look known: its documents
 * are counted before it is used, and it has none. */
static int range_set(cx_store *s, const char *prefix, size_t np, size_t nmin, size_t nmax,
                     uint64_t **set, size_t *mask) {
    char lo[9], hi[9];
    *set = NULL;
    memcpy(lo, prefix, np);
    memcpy(hi, prefix, np);
    hi[np - 1] = (char)(hi[np - 1] + 1); /* [a-z_] + 1: still below 0x80 */
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_TERMS_RANGE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, lo, (int)np, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hi, (int)np, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, RANGE_MAX + 1);
    size_t cap = 64, used = 0, rows = 0;
    uint64_t *v = calloc(cap, sizeof *v);
    rc = SQLITE_DONE;
    while (v && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (++rows > RANGE_MAX) {
            free(v);
            v = NULL;
            rc = SQLITE_DONE;
            break;
        }
        if (!t || n < nmin || n > nmax)
            continue;
        if (2 * (used + 1) > cap) { /* at most half full */
            uint64_t *w = calloc(cap * 2, sizeof *w);
            if (!w) {
                free(v);
                v = NULL;
                break;
            }
            for (size_t i = 0; i < cap; i++)
                for (size_t j = v[i] & (cap * 2 - 1); v[i]; j = (j + 1) & (cap * 2 - 1))
                    if (!w[j]) {
                        w[j] = v[i];
                        break;
                    }
            free(v);
            v = w;
            cap *= 2;
        }
        uint64_t k = term_key(t, n);
        for (size_t j = k & (cap - 1);; j = (j + 1) & (cap - 1))
            if (!v[j] || v[j] == k) {
                used += !v[j];
                v[j] = k;
                break;
            }
    }
    sqlite3_reset(st);
    if (!v && rows <= RANGE_MAX)
        return CX_ENOMEM;
    if (v && rc != SQLITE_DONE) {
        free(v);
        return cx_store_sqlerr(s, rc, "reading the typo dictionary");
    }
    *set = v;
    *mask = cap - 1;
    return 0;
}

static bool in_set(const uint64_t *set, size_t mask, const char *t, size_t n) {
    uint64_t k = term_key(t, n);
    for (size_t j = k & mask;; j = (j + 1) & mask) {
        if (set[j] == k)
            return true;
        if (!set[j])
            return false;
    }
}

int cx_store_terms_known_each(cx_store *s, const char *cands, size_t ncands, const char *prefix,
                              size_t nprefix, bool (*fn)(void *ud, const char *term, size_t len),
                              void *ud) {
    uint64_t *set = NULL;
    size_t mask = 0, nmin = SIZE_MAX, nmax = 0;
    int r = 0;
    const char *c = cands;
    for (size_t i = 0; i < ncands; i++, c += strlen(c) + 1) {
        size_t n = strlen(c);
        if (nprefix > 0 && n >= nprefix && memcmp(c, prefix, nprefix) == 0) {
            nmin = n < nmin ? n : nmin;
            nmax = n > nmax ? n : nmax;
        }
    }
    if (nprefix > 0 && nprefix <= 8 && nmax > 0 &&
        (r = range_set(s, prefix, nprefix, nmin, nmax, &set, &mask)))
        return r;
    c = cands;
    for (size_t i = 0; r == 0 && i < ncands; i++, c += strlen(c) + 1) {
        size_t n = strlen(c);
        bool known = false;
        if (set && n >= nprefix && memcmp(c, prefix, nprefix) == 0)
            known = in_set(set, mask, c, n);
        else
            r = cx_store_term_known(s, c, n, &known);
        if (r == 0 && known && !fn(ud, c, n))
            break;
    }
    free(set);
    return r;
}
