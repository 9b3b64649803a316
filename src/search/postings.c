/* SPDX-License-Identifier: Apache-2.0 */
/* The posting cache: the rows each phrase of the keyword index matches,
 * kept in memory between searches, and the rows an expression of them
 * matches.
 *
 * Why. FTS5 hands a query's matches to a scorer one row at a time, through
 * the SQL engine and its auxiliary-function API: about 3 k instructions a
 * row. A word found in half of 100k notes is 50k rows at every search that
 * has it. Kept here as flat arrays (row id, weighted hits, row length: 8
 * bytes a row), the same rows are scored in a few nanoseconds each, and a
 * phrase's document frequency is its list's length.
 *
 * A list. For one phrase as the query builder wrote it (fts.c: the quoted
 * string, with its '*' when a prefix), every row of items_fts that the
 * phrase alone matches, in rid order, with its hits weighted by column as
 * cx_bm25 weighs them (title 4, body 1, tags 2) and the row's length in
 * tokens: all that bm25 needs of that row and phrase. It is read from FTS5
 * (the phrase alone as the MATCH) the first time a search needs it.
 *
 * Staying true. The index grows in rid order, and every other change to
 * it moves fts_state.edits (store schema 7). Each search reads both inside
 * its snapshot: when edits moved, or indexed_rid went back, every list is
 * dropped; when indexed_rid grew, a list is extended by the rows after the
 * last it saw (MATCH ... AND rowid > upto) when a search next needs it.
 * The index's totals (rows, tokens) are read again whenever the state
 * moved.
 *
 * Memory. Lists stay while their bytes are within e->post_budget
 * (CX_SEARCH_POSTINGS_MEMORY by default), the least recently used dropped
 * first, at the start of the next match; a list larger than half the
 * budget serves one search and is dropped.
 *
 * What it does not do. It knows the expressions fts.c and rank.c write:
 * phrases, AND, OR, NOT and parentheses. Anything else (a column filter,
 * NEAR), a row id of 2^24 or more, a row with 65,535 tokens or weighted
 * hits or more, or lists of more than MAX_MATCH_ROWS rows in all (a
 * query of dozens of common words, whose decoded rows would take more
 * memory than ranking them through FTS5): *ok is false, and the keyword
 * pass ranks through FTS5 (rank.c). */
#include "search/search-internal.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 8192  /* lists kept, at most */
#define MAX_NODES 4096    /* nodes of one expression, at most */
#define MAX_MATCH_ROWS (2u << 20) /* rows of all its lists one match decodes, at most */
#define U16_LIMIT 65535   /* a count this large or larger: not kept here */
#define MAX_ROWID (INT64_C(1) << 24) /* larger row ids: FTS5 ranks them (32 MiB of lengths at most) */

/* One phrase's rows. */
typedef struct cx_pentry plist;
struct cx_pentry {
    char *key;          /* the phrase as written in the expression */
    size_t klen;
    uint8_t *data;      /* per row: varint((rid - previous rid) * 2 + (hits != 1)),
                         * then varint(hits) when not 1 */
    size_t bytes, cap;
    size_t n;           /* rows */
    uint32_t last;      /* the last row's id */
    int64_t upto;       /* the index's rows up to this rid are in the list */
    uint64_t used;      /* the match that last used it (least recent first out) */
    uint32_t *drid;     /* the first dn rows decoded: their ids and hits */
    uint16_t *dhits;
    size_t dn, dcap;    /* rows decoded, room for */
    size_t doff;        /* the bytes of data those came from */
    bool transient;     /* not in the table: freed with the match */
    bool bad;           /* a count the arrays cannot hold: not usable */
    plist *next;        /* the table's chain */
};

#define BUCKETS 4096

struct cx_postings {
    bool known;              /* the state below was read */
    int64_t indexed, edits;  /* fts_state when the lists were last true */
    bool totals_known;
    int64_t nrow, ntok;      /* the index's totals in that state */
    plist *bucket[BUCKETS];
    size_t count, bytes;
    size_t dbytes;           /* of bytes, those of decoded rows */
    uint64_t clock;
    uint16_t *len;           /* each row's length in tokens, by rid (0: not read) */
    size_t nlen;
    uint64_t epoch;          /* moves when every list is dropped */
    char *memo_expr;         /* the last match, and the state it was made in */
    cx_pmatch memo;
    bool memo_ok;
    int64_t memo_indexed, memo_edits;
    uint64_t memo_epoch;
};

static size_t list_bytes(const plist *p) {
    return p->cap + p->klen + sizeof *p + p->dcap * (sizeof *p->drid + sizeof *p->dhits);
}

/* Drops p's decoded rows (the encoded ones stay). */
static void list_undecode(plist *p) {
    free(p->drid);
    free(p->dhits);
    p->drid = NULL;
    p->dhits = NULL;
    p->dn = p->dcap = p->doff = 0;
}

static void list_free(plist *p) {
    if (!p)
        return;
    list_undecode(p);
    free(p->key);
    free(p->data);
    free(p);
}

static uint64_t key_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 31);
}

static void drop_all(cx_postings *P) {
    for (size_t b = 0; b < BUCKETS; b++) {
        plist *p = P->bucket[b];
        while (p) {
            plist *next = p->next;
            list_free(p);
            p = next;
        }
        P->bucket[b] = NULL;
    }
    P->count = P->bytes = P->dbytes = 0;
    free(P->len);
    P->len = NULL;
    P->nlen = 0;
    P->epoch++;
}

static void match_free(cx_pmatch *m);

void cx_postings_free(cx_postings *P) {
    if (!P)
        return;
    match_free(&P->memo);
    free(P->memo_expr);
    drop_all(P);
    free(P);
}

static int by_used(const void *a, const void *b) {
    const plist *x = *(const plist *const *)a, *y = *(const plist *const *)b;
    return x->used < y->used ? -1 : x->used > y->used;
}

/* The bytes of decoded rows the cache keeps: the whole budget for an
 * index of up to DECODED_FULL rows, less in proportion beyond (at 100k
 * rows a tenth: a large store's memory goes to its vectors, and the
 * resident size stays within 64 MB). */
#define DECODED_FULL 10000
static size_t decoded_cap(const cx_postings *P, size_t budget) {
    if (P->nrow <= DECODED_FULL)
        return budget;
    return (size_t)((double)budget * DECODED_FULL / (double)P->nrow);
}

/* Drops the decoded rows of p (the encoded ones stay), counted. */
static void drop_decoded(cx_postings *P, plist *p) {
    size_t before = list_bytes(p);
    list_undecode(p);
    P->bytes -= before - list_bytes(p);
    P->dbytes -= before - list_bytes(p);
}

/* Drops the least recently used lists until the cache is within three
 * quarters of its budget and entries, and decoded rows until those are
 * within three quarters of theirs. No match is in progress. */
static void evict(cx_postings *P, size_t budget) {
    size_t dcap = decoded_cap(P, budget);
    if (P->bytes <= budget && P->count <= MAX_ENTRIES && P->dbytes <= dcap)
        return;
    plist **all = malloc(sizeof *all * (P->count ? P->count : 1));
    if (!all) { /* no memory to choose: drop everything */
        drop_all(P);
        return;
    }
    size_t n = 0;
    for (size_t b = 0; b < BUCKETS; b++)
        for (plist *p = P->bucket[b]; p; p = p->next)
            all[n++] = p;
    qsort(all, n, sizeof *all, by_used);
    /* the decoded rows first: they cost a decode to make again, a list a
     * read of FTS5 */
    for (size_t i = 0; i < n && (P->bytes > budget / 4 * 3 || P->dbytes > dcap / 4 * 3); i++)
        drop_decoded(P, all[i]);
    for (size_t i = 0; i < n && (P->bytes > budget / 4 * 3 || P->count > MAX_ENTRIES / 4 * 3);
         i++) {
        plist *victim = all[i];
        plist **at = &P->bucket[key_hash(victim->key, victim->klen) % BUCKETS];
        while (*at != victim)
            at = &(*at)->next;
        *at = victim->next;
        P->bytes -= list_bytes(victim);
        P->dbytes -= victim->dcap * (sizeof *victim->drid + sizeof *victim->dhits);
        P->count--;
        list_free(victim);
    }
    free(all);
}

/* ---- reading lists from FTS5 ---- */

/* What cx_phrase_rows fills: set by list_extend around its statement. */
typedef struct cx_pfetch {
    cx_postings *P;
    plist *p;
    double w[3];   /* the weights of title, body, tags */
    int err;       /* CX_ENOMEM */
} fetch;

static int list_push(plist *p, uint32_t rid, unsigned hits);

/* Records row rid's length. */
static int set_len(cx_postings *P, uint32_t rid, unsigned tokens) {
    if (rid >= P->nlen) {
        size_t n = P->nlen ? P->nlen : 4096;
        while (n <= rid)
            n *= 2;
        uint16_t *len = realloc(P->len, n * sizeof *len);
        if (!len)
            return CX_ENOMEM;
        memset(len + P->nlen, 0, (n - P->nlen) * sizeof *len);
        P->len = len;
        P->nlen = n;
    }
    P->len[rid] = (uint16_t)tokens;
    return 0;
}

/* For each row of the phrase: its weighted hits, appended when after the
 * list's last row, and its length. */
static int fetch_row(const Fts5ExtensionApi *api, Fts5Context *fts, void *ud) {
    cx_search_ext *e = ud; /* a phrase's own cursor has no user data */
    fetch *F = e->fetching;
    plist *p = F->p;
    int64_t rid = api->xRowid(fts);
    if (rid <= p->upto)
        return SQLITE_OK;
    Fts5PhraseIter it;
    int col = -1, off = 0, rc = api->xPhraseFirst(fts, 0, &it, &col, &off);
    double hits = 0.0;
    for (; rc == SQLITE_OK && col >= 0; api->xPhraseNext(fts, &it, &col, &off))
        hits += col < 3 ? F->w[col] : 1.0;
    int tokens = 0;
    if (rc == SQLITE_OK && rid > 0 && (uint64_t)rid < F->P->nlen)
        tokens = F->P->len[rid];
    if (rc == SQLITE_OK && tokens == 0 && (tokens = cx_rank_row_len(e, rid)) < 0)
        rc = api->xColumnSize(fts, -1, &tokens);
    if (rc != SQLITE_OK)
        return rc;
    if (rid <= 0 || rid >= MAX_ROWID || (p->n > 0 && (uint32_t)rid <= p->last) || hits < 0.0 ||
        hits >= U16_LIMIT || hits != (double)(int64_t)hits || tokens <= 0 ||
        tokens >= U16_LIMIT) {
        p->bad = true; /* not in order, or out of range: FTS5 ranks it */
        return SQLITE_DONE;
    }
    if ((F->err = set_len(F->P, (uint32_t)rid, (unsigned)tokens)) ||
        (F->err = list_push(p, (uint32_t)rid, (unsigned)hits)))
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

/* cx_phrase_rows(items_fts, w_title, w_body, w_tags), called on the first
 * row matching the one phrase of the MATCH: walks every row of that phrase
 * (xQueryPhrase: no SQL step per row) into the list being fetched, and
 * returns the index's rows and tokens (rows * 2^40 + tokens ... as two
 * calls would cost a second walk, the totals go to the fetch state). */
void cx_postings_rows_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                         int nval, sqlite3_value **vals) {
    cx_search_ext *e = api->xUserData(fts);
    fetch *F = e->fetching;
    if (!F) {
        sqlite3_result_error(ctx, "cx_phrase_rows: no list is being read", -1);
        return;
    }
    for (int i = 0; i < 3; i++)
        F->w[i] = i < nval ? sqlite3_value_double(vals[i]) : 1.0;
    int rc = api->xQueryPhrase(fts, 0, e, fetch_row);
    if (rc == SQLITE_DONE) /* fetch_row stopped at a row it cannot keep (SQLite 3.40 says so) */
        rc = SQLITE_OK;
    sqlite3_int64 nrow = 0, ntok = 0;
    if (rc == SQLITE_OK)
        rc = api->xRowCount(fts, &nrow);
    if (rc == SQLITE_OK)
        rc = api->xColumnTotalSize(fts, -1, &ntok);
    if (rc != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    e->postings->nrow = nrow;
    e->postings->ntok = ntok;
    e->postings->totals_known = true;
    sqlite3_result_null(ctx);
}

/* cx_fts_tokens(items_fts): the tokens of every row of the index. */
void cx_postings_tokens_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                           int nval, sqlite3_value **vals) {
    (void)nval;
    (void)vals;
    sqlite3_int64 n = 0;
    int rc = api->xColumnTotalSize(fts, -1, &n);
    if (rc != SQLITE_OK)
        sqlite3_result_error_code(ctx, rc);
    else
        sqlite3_result_int64(ctx, n);
}

static const char SQL_ROWS[] =
    "SELECT cx_phrase_rows(items_fts, 4.0, 1.0, 2.0) FROM items_fts"
    " WHERE items_fts MATCH ?1 LIMIT 1";
static const char SQL_TOTALS[] =
    "SELECT cx_fts_rows(items_fts), cx_fts_tokens(items_fts) FROM items_fts"
    " WHERE items_fts MATCH ?1 LIMIT 1";

static size_t put_varint(uint8_t *o, uint32_t v) {
    size_t k = 0;
    while (v >= 0x80) {
        o[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[k++] = (uint8_t)v;
    return k;
}

static uint32_t get_varint32(const uint8_t **pp) {
    const uint8_t *p = *pp;
    uint32_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *p++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *pp = p;
    return v;
}

static int list_push(plist *p, uint32_t rid, unsigned hits) {
    if (p->cap - p->bytes < 10) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        uint8_t *d = realloc(p->data, cap);
        if (!d)
            return CX_ENOMEM;
        p->data = d;
        p->cap = cap;
    }
    /* the gap with one bit more: set when hits follow (else it is 1, a
     * word once in the body: most rows of most lists) */
    uint32_t gap = rid - (p->n ? p->last : 0);
    if (gap >= (UINT32_C(1) << 31)) {
        p->bad = true;
        return 0;
    }
    p->bytes += put_varint(p->data + p->bytes, gap << 1 | (hits != 1));
    if (hits != 1)
        p->bytes += put_varint(p->data + p->bytes, hits);
    p->last = rid;
    p->n++;
    return 0;
}

/* Rows from..p->n of p, which start at byte *off of its data and follow
 * row id `at`, into rid and hits (indexed from 0 at row `from`); *off
 * moves past them. */
static void list_decode(const plist *p, size_t from, size_t *off, uint32_t at, uint32_t *rid,
                        uint16_t *hits) {
    const uint8_t *d = p->data + *off;
    for (size_t i = from; i < p->n; i++) {
        uint32_t v = get_varint32(&d);
        at += v >> 1;
        rid[i - from] = at;
        hits[i - from] = v & 1 ? (uint16_t)get_varint32(&d) : 1;
    }
    *off = (size_t)(d - p->data);
}

/* Brings p's decoded rows up to all its rows, kept with it: a list is
 * decoded once, not at every search that uses it (a common word's rows
 * cost ~9 instructions each to decode). False when there is no memory. */
static bool list_decoded(plist *p) {
    if (p->dn == p->n)
        return p->n == 0 || p->drid;
    if (p->dcap < p->n) {
        size_t cap = p->n + p->n / 8;
        uint32_t *rid = realloc(p->drid, cap * sizeof *rid);
        if (rid)
            p->drid = rid;
        uint16_t *hits = rid ? realloc(p->dhits, cap * sizeof *hits) : NULL;
        if (!hits) {
            list_undecode(p);
            return false;
        }
        p->dhits = hits;
        p->dcap = cap;
    }
    list_decode(p, p->dn, &p->doff, p->dn ? p->drid[p->dn - 1] : 0, p->drid + p->dn,
                p->dhits + p->dn);
    p->dn = p->n;
    return true;
}

/* Adds the rows of the index after p->upto that match p's phrase. */
static int list_extend(cx_search_ext *e, cx_store *s, plist *p, int64_t indexed) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_ROWS, &st), rc;
    if (r)
        return r;
    fetch F = {.P = e->postings, .p = p};
    e->fetching = &F;
    sqlite3_bind_text(st, 1, p->key, (int)p->klen, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    e->fetching = NULL;
    if (F.err)
        return F.err;
    if (rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading a phrase's rows");
    p->upto = indexed;
    if (p->cap - p->bytes > 64 && p->cap - p->bytes > p->bytes / 8) { /* no slack kept */
        uint8_t *d = realloc(p->data, p->bytes + 16);
        if (d) {
            p->data = d;
            p->cap = p->bytes + 16;
        }
    }
    return 0;
}

/* ---- expressions ---- */

enum { N_PHRASE, N_AND, N_OR, N_NOT };

typedef struct node {
    int op;
    int a, b;   /* children; N_PHRASE: a is the phrase's number */
} node;

typedef struct parser {
    const char *p;
    node *nodes;
    int nnodes;
    const char **ps; /* each phrase's text and length, in order */
    size_t *pn;
    size_t nphrase, capphrase;
    bool bad;
} parser;

static void skip_space(parser *X) {
    while (*X->p == ' ' || *X->p == '\t' || *X->p == '\n')
        X->p++;
}

static bool keyword(parser *X, const char *kw) {
    skip_space(X);
    size_t n = strlen(kw);
    if (strncmp(X->p, kw, n) != 0)
        return false;
    char c = X->p[n];
    if (c != ' ' && c != '(' && c != '"' && c != '\t' && c != '\n')
        return false;
    X->p += n;
    return true;
}

static int new_node(parser *X, int op, int a, int b) {
    if (X->nnodes >= MAX_NODES) {
        X->bad = true;
        return -1;
    }
    X->nodes[X->nnodes] = (node){.op = op, .a = a, .b = b};
    return X->nnodes++;
}

static int parse_or(parser *X);

static int parse_primary(parser *X) {
    skip_space(X);
    if (*X->p == '(') {
        X->p++;
        int n = parse_or(X);
        skip_space(X);
        if (*X->p != ')') {
            X->bad = true;
            return -1;
        }
        X->p++;
        return n;
    }
    if (*X->p != '"') {
        X->bad = true;
        return -1;
    }
    const char *start = X->p++;
    while (*X->p && !(*X->p == '"' && X->p[1] != '"'))
        X->p += *X->p == '"' ? 2 : 1;
    if (*X->p != '"') {
        X->bad = true;
        return -1;
    }
    X->p++;
    if (*X->p == '*')
        X->p++;
    if (X->nphrase == X->capphrase) {
        size_t cap = X->capphrase ? X->capphrase * 2 : 16;
        const char **ps = realloc(X->ps, cap * sizeof *ps);
        size_t *pn = ps ? realloc(X->pn, cap * sizeof *pn) : NULL;
        if (ps)
            X->ps = ps;
        if (!ps || !pn) {
            X->bad = true;
            return -1;
        }
        X->pn = pn;
        X->capphrase = cap;
    }
    X->ps[X->nphrase] = start;
    X->pn[X->nphrase] = (size_t)(X->p - start);
    return new_node(X, N_PHRASE, (int)X->nphrase++, 0);
}

static int parse_not(parser *X) {
    int n = parse_primary(X);
    while (!X->bad && keyword(X, "NOT"))
        n = new_node(X, N_NOT, n, parse_primary(X));
    return n;
}

static int parse_and(parser *X) {
    int n = parse_not(X);
    for (;;) {
        if (X->bad)
            return -1;
        if (!keyword(X, "AND")) {
            skip_space(X);
            if (*X->p != '"' && *X->p != '(')
                return n;
        }
        n = new_node(X, N_AND, n, parse_not(X));
    }
}

static int parse_or(parser *X) {
    int n = parse_and(X);
    while (!X->bad && keyword(X, "OR"))
        n = new_node(X, N_OR, n, parse_and(X));
    return n;
}

/* ---- sets of rows ---- */

typedef struct rset {
    const uint32_t *v;
    size_t n;
    uint32_t *own; /* v when the set was made here */
} rset;

static void rset_free(rset *s) {
    free(s->own);
    *s = (rset){0};
}

/* The first index i >= from with v[i] >= x (n if none): galloping. */
static size_t seek(const uint32_t *v, size_t n, size_t from, uint32_t x) {
    size_t step = 1, lo = from, hi = from;
    while (hi < n && v[hi] < x) {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    if (hi > n)
        hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int set_and(rset *a, rset *b, rset *out) {
    if (a->n > b->n) {
        rset *t = a;
        a = b;
        b = t;
    }
    uint32_t *o = malloc(sizeof *o * (a->n ? a->n : 1));
    if (!o)
        return CX_ENOMEM;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < a->n && j < b->n; i++) {
        j = seek(b->v, b->n, j, a->v[i]);
        if (j < b->n && b->v[j] == a->v[i])
            o[k++] = a->v[i];
    }
    *out = (rset){.v = o, .n = k, .own = o};
    return 0;
}

static int set_or(const rset *a, const rset *b, rset *out) {
    uint32_t *o = malloc(sizeof *o * (a->n + b->n ? a->n + b->n : 1));
    if (!o)
        return CX_ENOMEM;
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < b->n) {
        uint32_t x = a->v[i], y = b->v[j];
        o[k++] = x <= y ? x : y;
        i += x <= y;
        j += y <= x;
    }
    while (i < a->n)
        o[k++] = a->v[i++];
    while (j < b->n)
        o[k++] = b->v[j++];
    *out = (rset){.v = o, .n = k, .own = o};
    return 0;
}

static int set_not(const rset *a, const rset *b, rset *out) {
    uint32_t *o = malloc(sizeof *o * (a->n ? a->n : 1));
    if (!o)
        return CX_ENOMEM;
    size_t k = 0, j = 0;
    for (size_t i = 0; i < a->n; i++) {
        j = seek(b->v, b->n, j, a->v[i]);
        if (j == b->n || b->v[j] != a->v[i])
            o[k++] = a->v[i];
    }
    *out = (rset){.v = o, .n = k, .own = o};
    return 0;
}

static int eval(const parser *X, const cx_pmatch *m, int at, rset *out) {
    const node *nd = &X->nodes[at];
    if (nd->op == N_PHRASE) {
        const cx_plist *l = &m->list[nd->a];
        *out = (rset){.v = l->rid, .n = l->n};
        return 0;
    }
    rset a = {0}, b = {0};
    int r = eval(X, m, nd->a, &a);
    if (r == 0)
        r = eval(X, m, nd->b, &b);
    if (r == 0)
        r = nd->op == N_AND ? set_and(&a, &b, out)
            : nd->op == N_OR ? set_or(&a, &b, out)
                             : set_not(&a, &b, out);
    rset_free(&a);
    rset_free(&b);
    return r;
}

/* ---- the match ---- */

/* The list of phrase ps[0..n), made or brought up to date. */
static int get_list(cx_postings *P, cx_search_ext *e, cx_store *s, const char *ps, size_t n,
                    plist **out) {
    plist **head = &P->bucket[key_hash(ps, n) % BUCKETS];
    plist *p = *head;
    while (p && !(p->klen == n && memcmp(p->key, ps, n) == 0))
        p = p->next;
    bool fresh = !p;
    if (fresh) {
        if (!(p = calloc(1, sizeof *p)) || !(p->key = malloc(n + 1))) {
            free(p);
            return CX_ENOMEM;
        }
        memcpy(p->key, ps, n);
        p->key[n] = '\0';
        p->klen = n;
    }
    size_t before = fresh ? 0 : list_bytes(p);
    int r = p->upto < P->indexed ? list_extend(e, s, p, P->indexed) : 0;
    if (r) {
        if (fresh)
            list_free(p);
        return r;
    }
    p->used = P->clock;
    if (fresh && list_bytes(p) > e->post_budget / 2) {
        p->transient = true; /* one search's */
    } else if (fresh) {
        p->next = *head;
        *head = p;
        P->count++;
        P->bytes += list_bytes(p);
    } else {
        P->bytes += list_bytes(p) - before;
    }
    *out = p;
    return 0;
}

/* Reads the index's state and drops what it no longer says. */
static int check_state(cx_postings *P, cx_store *s) {
    int64_t indexed = 0, edits = 0;
    int r = cx_store_fts_generation(s, &indexed, &edits);
    if (r)
        return r;
    if (!P->known || edits != P->edits || indexed < P->indexed)
        drop_all(P);
    if (!P->known || edits != P->edits || indexed != P->indexed)
        P->totals_known = false;
    P->known = true;
    P->indexed = indexed;
    P->edits = edits;
    return 0;
}

static int read_totals(cx_postings *P, cx_store *s, const cx_pmatch *m) {
    if (P->totals_known)
        return 0;
    const cx_plist *with = NULL;
    for (size_t i = 0; i < m->nphrase && !with; i++)
        if (m->list[i].n > 0)
            with = &m->list[i];
    if (!with)
        return 0; /* nothing matches: no totals needed */
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_TOTALS, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, with->key, (int)with->klen, SQLITE_STATIC);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        P->nrow = sqlite3_column_int64(st, 0);
        P->ntok = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the index's totals");
    P->totals_known = true;
    return 0;
}

/* The first phrase of m with the same list as phrase i. */
static size_t first_of(const cx_pmatch *m, size_t i) {
    size_t j = 0;
    while (m->owner[j] != m->owner[i])
        j++;
    return j;
}

/* Frees what match m holds: its arrays and the lists only it had. */
static void match_free(cx_pmatch *m) {
    /* only the lists no table holds: a list of the table may be gone */
    for (size_t i = 0; i < m->nown; i++)
        list_free(m->own[i]);
    free(m->own);
    free(m->owner);
    free(m->list);
    free(m->rows_own);
    free(m->dec);
    *m = (cx_pmatch){0};
}

/* Makes m, the match of expr (see cx_postings_match). */
static int build_match(cx_search_ext *e, cx_store *s, const char *expr, cx_pmatch *m, bool *ok) {
    cx_postings *P = e->postings;
    *ok = false; /* until the whole match is made */
    *m = (cx_pmatch){0};
    parser X = {.p = expr};
    int r = 0, root;
    if (!(X.nodes = malloc(sizeof *X.nodes * MAX_NODES)))
        return CX_ENOMEM;
    root = parse_or(&X);
    skip_space(&X);
    if (X.bad || root < 0 || *X.p) /* not an expression this knows */
        goto out;
    evict(P, e->post_budget);
    if ((r = cx_rank_cache_begin(e, s)))
        goto out;
    P->clock++;
    m->nphrase = X.nphrase;
    if (!(m->list = calloc(X.nphrase ? X.nphrase : 1, sizeof *m->list)) ||
        !(m->owner = calloc(X.nphrase ? X.nphrase : 1, sizeof *m->owner)) ||
        !(m->own = calloc(X.nphrase ? X.nphrase : 1, sizeof *m->own))) {
        r = CX_ENOMEM;
        goto out;
    }
    /* every list first (a list may grow), then the views of them */
    for (size_t i = 0; i < X.nphrase; i++) {
        for (size_t j = 0; j < i && !m->owner[i]; j++)
            if (X.pn[j] == X.pn[i] && memcmp(X.ps[j], X.ps[i], X.pn[i]) == 0)
                m->owner[i] = m->owner[j];
        if (!m->owner[i] && (r = get_list(P, e, s, X.ps[i], X.pn[i], &m->owner[i]))) {
            P->known = false; /* a list may be half read: all are dropped next time */
            goto out;
        }
        if (m->owner[i]->transient && first_of(m, i) == i)
            m->own[m->nown++] = m->owner[i];
        if (m->owner[i]->bad)
            goto out; /* FTS5 ranks this one */
    }
    /* each list's rows decoded: the table's lists keep theirs; a list
     * only this match has (transient), or one no memory was found for,
     * into one block of the match's own */
    size_t total = 0, own = 0;
    for (size_t i = 0; i < X.nphrase; i++)
        if (first_of(m, i) == i)
            total += m->owner[i]->n;
    if (total > MAX_MATCH_ROWS)
        goto out; /* a query of very many common words: FTS5 ranks it, in less memory */
    size_t dcap = decoded_cap(P, e->post_budget);
    for (size_t i = 0; i < X.nphrase; i++) {
        plist *p = m->owner[i];
        if (first_of(m, i) != i)
            continue;
        size_t before = list_bytes(p);
        /* kept decoded while there is room (eviction makes it at the next
         * match, least recently used first) */
        bool room = p->dn == p->n ||
                    P->dbytes + (p->n - p->dn) * (sizeof *p->drid + sizeof *p->dhits) <= dcap;
        bool kept = !p->transient && room && list_decoded(p);
        if (!kept)
            own += p->n;
        if (!p->transient) { /* what it holds now (a failed decode drops its rows) */
            P->bytes = P->bytes - before + list_bytes(p);
            P->dbytes = P->dbytes - before + list_bytes(p);
        }
    }
    if (own && !(m->dec = malloc(own * (sizeof(uint32_t) + sizeof(uint16_t))))) {
        r = CX_ENOMEM;
        goto out;
    }
    uint32_t *rid = m->dec;
    uint16_t *hits = (uint16_t *)(m->dec + own);
    for (size_t i = 0; i < X.nphrase; i++) {
        const plist *p = m->owner[i];
        size_t j = first_of(m, i);
        if (j < i) {
            m->list[i] = m->list[j];
            continue;
        }
        m->list[i] = (cx_plist){.key = p->key, .klen = p->klen, .rid = p->drid,
                                .hits = p->dhits, .n = p->n};
        if (p->transient || p->dn != p->n || (p->n && !p->drid)) {
            size_t off = 0;
            list_decode(p, 0, &off, 0, rid, hits);
            m->list[i].rid = rid;
            m->list[i].hits = hits;
            rid += p->n;
            hits += p->n;
        }
    }
    m->len = P->len;
    m->nlen = P->nlen;
    if ((r = read_totals(P, s, m)))
        goto out;
    m->nrow = P->nrow;
    m->ntok = P->ntok;
    rset rows = {0};
    if ((r = eval(&X, m, root, &rows)))
        goto out;
    m->rows = rows.v;
    m->nrows = rows.n;
    m->rows_own = rows.own;
    *ok = true;
out:
    free(X.nodes);
    free(X.ps);
    free(X.pn);
    return r;
}

int cx_postings_match(cx_search_ext *e, cx_store *s, const char *expr, const cx_pmatch **out,
                      bool *ok) {
    *ok = false;
    *out = NULL;
    if (!e->postings && !(e->postings = calloc(1, sizeof *e->postings)))
        return CX_ENOMEM;
    cx_postings *P = e->postings;
    int r = check_state(P, s);
    if (r)
        return r;
    /* the last match again (a search asks for its every-word expression
     * twice: whether a word needs correcting, then to rank it) */
    if (P->memo_expr && strcmp(P->memo_expr, expr) == 0 && P->memo_indexed == P->indexed &&
        P->memo_edits == P->edits && P->memo_epoch == P->epoch) {
        *ok = P->memo_ok;
        *out = &P->memo;
        return 0;
    }
    match_free(&P->memo);
    free(P->memo_expr);
    P->memo_expr = NULL;
    if ((r = build_match(e, s, expr, &P->memo, &P->memo_ok)) || !(P->memo_expr = strdup(expr))) {
        match_free(&P->memo);
        P->memo_ok = false;
        return r ? r : CX_ENOMEM;
    }
    P->memo_indexed = P->indexed;
    P->memo_edits = P->edits;
    P->memo_epoch = P->epoch;
    *ok = P->memo_ok;
    *out = &P->memo;
    return 0;
}
