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

/* One statement for all of a word's neighbours: json_each walks the list,
 * each a point look-up in the primary key (CROSS JOIN keeps that order). */
static const char SQL_TERMS_KNOWN[] =
    "SELECT t.term FROM json_each(?1) j CROSS JOIN typo_terms t ON t.term = j.value";

int cx_store_terms_known_each(cx_store *s, const char *json,
                              bool (*fn)(void *ud, const char *term, size_t len), void *ud) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_TERMS_KNOWN, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *term = (const char *)sqlite3_column_text(st, 0);
        if (term && !fn(ud, term, (size_t)sqlite3_column_bytes(st, 0))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "reading the typo dictionary");
}
