/* SPDX-License-Identifier: Apache-2.0 */
/* The "cortex" FTS5 tokenizer (see tokenizer.h): a wrapper around
 * unicode61 that joins words into identifiers and emits their parts. */
#include "text/tokenizer.h"

#include "text/ident.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* ---- the "cortex" FTS5 tokenizer ----
 * unicode61 (remove_diacritics 2 unless other arguments are given) finds
 * and folds the words; this wrapper joins words separated by one joiner
 * (cx_text_ident_joiner) into identifiers: `parse_config`,
 * `retry.policy.max`, `src/billing/invoice.c`. For a document it emits
 * each identifier whole and lower-cased, then each of its parts (the
 * words, each cut at camelCase and digit boundaries) as
 * FTS5_TOKEN_COLOCATED synonyms at the same position: `parseConfigFile`
 * is indexed as parseconfigfile = parse = config = file. For a query it
 * emits only the whole identifier, so that `parse_config` in a query
 * matches the identifier; the query builder (src/search/fts.c) adds the
 * parts itself. Positions count identifiers, so phrases work as before. */

#define TOK_GROUP_MAX 16  /* words joined into one identifier, at most */
#define TOK_WHOLE_MAX 256 /* bytes of a whole identifier token */
#define TOK_PARTS_MAX 32  /* camelCase parts of one word, at most */

typedef struct ctok {
    fts5_tokenizer u61;
    Fts5Tokenizer *inst;
} ctok;

typedef struct ctok_word {
    int off, len;   /* normalised bytes in the arena */
    int start, end; /* the word in the text */
} ctok_word;

typedef struct ctok_run {
    const char *text;
    bool query;
    void *uctx;
    int (*xtoken)(void *, int, const char *, int, int, int);
    ctok_word w[TOK_GROUP_MAX];
    int nw, alen;
    char arena[TOK_WHOLE_MAX];
    char buf[TOK_WHOLE_MAX];
} ctok_run;

static int ctok_create(void *ud, const char **args, int nargs, Fts5Tokenizer **out) {
    fts5_api *api = ud;
    void *u61ud = NULL;
    static const char *const defaults[] = {"remove_diacritics", "2"};
    ctok *t = sqlite3_malloc(sizeof *t);
    if (!t)
        return SQLITE_NOMEM;
    memset(t, 0, sizeof *t);
    int rc = api->xFindTokenizer(api, "unicode61", &u61ud, &t->u61);
    if (rc == SQLITE_OK)
        rc = t->u61.xCreate(u61ud, nargs ? args : (const char **)defaults, nargs ? nargs : 2,
                            &t->inst);
    if (rc != SQLITE_OK) {
        sqlite3_free(t);
        return rc;
    }
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void ctok_delete(Fts5Tokenizer *p) {
    ctok *t = (ctok *)p;
    if (t && t->inst)
        t->u61.xDelete(t->inst);
    sqlite3_free(t);
}

/* Emits the parts of word w (colocated), skipping one equal to `skip`. */
static int ctok_parts(ctok_run *R, const ctok_word *w, const char *skip, int nskip) {
    const char *norm = R->arena + w->off;
    cx_text_span parts[TOK_PARTS_MAX];
    size_t np = cx_text_ident_parts(R->text + w->start, (size_t)(w->end - w->start), parts,
                                     TOK_PARTS_MAX);
    /* a folded word (é -> e) may differ in length from its text: one part */
    if (np > 1 && w->end - w->start != w->len)
        np = 1;
    for (size_t i = 0; i < np; i++) {
        const char *p = norm;
        int n = w->len, start = w->start, end = w->end;
        char low[TOK_WHOLE_MAX];
        if (np > 1) {
            n = (int)parts[i].len;
            for (int k = 0; k < n; k++)
                low[k] = (char)tolower((unsigned char)R->text[w->start + (int)parts[i].off + k]);
            p = low;
            start = w->start + (int)parts[i].off;
            end = start + n;
        }
        if (n == nskip && memcmp(p, skip, (size_t)n) == 0)
            continue;
        int rc = R->xtoken(R->uctx, FTS5_TOKEN_COLOCATED, p, n, start, end);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int ctok_flush(ctok_run *R) {
    int rc = SQLITE_OK, nw = R->nw;
    if (nw == 0)
        return rc;
    R->nw = 0;
    R->alen = 0;
    const ctok_word *w = R->w;
    if (nw == 1) {
        rc = R->xtoken(R->uctx, 0, R->arena + w->off, w->len, w->start, w->end);
        if (rc == SQLITE_OK && !R->query)
            rc = ctok_parts(R, w, R->arena + w->off, w->len);
        return rc;
    }
    /* the whole identifier: the folded words with the joiners between them */
    int n = 0;
    for (int i = 0; i < nw; i++) {
        if (i > 0) {
            int gap = w[i].start - w[i - 1].end;
            memcpy(R->buf + n, R->text + w[i - 1].end, (size_t)gap);
            n += gap;
        }
        memcpy(R->buf + n, R->arena + w[i].off, (size_t)w[i].len);
        n += w[i].len;
    }
    rc = R->xtoken(R->uctx, 0, R->buf, n, w[0].start, w[nw - 1].end);
    for (int i = 0; rc == SQLITE_OK && !R->query && i < nw; i++)
        rc = ctok_parts(R, &w[i], NULL, -1);
    return rc;
}

static int ctok_word_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    ctok_run *R = ctx;
    int rc;
    if (n <= 0)
        return SQLITE_OK;
    if (n > TOK_WHOLE_MAX / 2) { /* a huge word: on its own, as unicode61 gives it */
        if ((rc = ctok_flush(R)) != SQLITE_OK)
            return rc;
        return R->xtoken(R->uctx, tflags, tok, n, start, end);
    }
    if (R->nw > 0) {
        const ctok_word *last = &R->w[R->nw - 1];
        int gap = start - last->end;
        bool join = R->nw < TOK_GROUP_MAX && gap > 0 && gap <= 2 &&
                    cx_text_ident_joiner(R->text + last->end, (size_t)gap) &&
                    R->alen + n + 2 * (R->nw + 1) <= TOK_WHOLE_MAX;
        if (!join && (rc = ctok_flush(R)) != SQLITE_OK)
            return rc;
    }
    memcpy(R->arena + R->alen, tok, (size_t)n);
    R->w[R->nw++] = (ctok_word){.off = R->alen, .len = n, .start = start, .end = end};
    R->alen += n;
    return SQLITE_OK;
}

static int ctok_tokenize(Fts5Tokenizer *p, void *uctx, int flags, const char *text, int ntext,
                         int (*xtoken)(void *, int, const char *, int, int, int)) {
    ctok *t = (ctok *)p;
    ctok_run *R = sqlite3_malloc(sizeof *R);
    if (!R)
        return SQLITE_NOMEM;
    R->text = text;
    R->query = (flags & FTS5_TOKENIZE_QUERY) != 0;
    R->uctx = uctx;
    R->xtoken = xtoken;
    R->nw = 0;
    R->alen = 0;
    int rc = t->u61.xTokenize(t->inst, R, flags, text, ntext, ctok_word_cb);
    if (rc == SQLITE_OK)
        rc = ctok_flush(R);
    sqlite3_free(R);
    return rc;
}

/* The fts5_api of a connection (NULL without FTS5). */
fts5_api *cx_text_fts5_api(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

int cx_text_tokenizer_register(sqlite3 *db) {
    fts5_api *api = cx_text_fts5_api(db);
    if (!api)
        return SQLITE_ERROR;
    fts5_tokenizer tk = {ctok_create, ctok_delete, ctok_tokenize};
    return api->xCreateTokenizer(api, CX_TEXT_TOKENIZER, api, &tk, NULL);
}
