/* SPDX-License-Identifier: Apache-2.0 */
/* The vector index and the semantic lists it gives (see search.c for how
 * they are fused).
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
 * filter is checked again against the row. */
#include "search/search-internal.h"

#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VBLOCK CX_VINDEX_BLOCK     /* slots per block of the vector index */
#define SEM_CANDIDATES 1024        /* read and scored after a scan of sign bits */
#define SEM_EXACT_BELOW 2048       /* ... unless there are fewer items than this */

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

void cx_vindex_free(cx_vindex *v) {
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

/* The kind kept per slot: a cx_kind, or CX_VINDEX_KIND_OTHER for a name
 * the wire model does not know. */
static uint8_t kind_code(const char *k) {
    cx_kind c = cx_kind_parse(k);
    return c == CX_KIND_INVALID ? CX_VINDEX_KIND_OTHER : (uint8_t)c;
}

static uint32_t str_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static size_t map_pos(const cx_vindex *v, int64_t rid) {
    return (size_t)(((uint64_t)rid * 0x9e3779b97f4a7c15ull) >> 20) & (v->map_cap - 1);
}

/* The slot of rid, or SIZE_MAX. */
static size_t map_find(const cx_vindex *v, int64_t rid) {
    if (!v->map_cap)
        return SIZE_MAX;
    for (size_t i = map_pos(v, rid);; i = (i + 1) & (v->map_cap - 1)) {
        if (v->map_rid[i] == 0)
            return SIZE_MAX;
        if (v->map_rid[i] == rid)
            return v->map_slot[i];
    }
}

static void map_put(cx_vindex *v, int64_t rid, uint32_t slot) {
    size_t i = map_pos(v, rid);
    while (v->map_rid[i] != 0 && v->map_rid[i] != rid)
        i = (i + 1) & (v->map_cap - 1);
    if (v->map_rid[i] == 0)
        v->map_n++;
    v->map_rid[i] = rid;
    v->map_slot[i] = slot;
}

static int map_grow(cx_vindex *v) {
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

/* The slot of rid, a new one at the end when it has none. */
static int vindex_slot(cx_search_ext *e, cx_vindex *v, int64_t rid, size_t *out) {
    size_t slot = map_find(v, rid);
    int r;
    if (slot == SIZE_MAX) {
        slot = v->n;
        if (slot / VBLOCK >= v->nblocks) {
            if (v->nblocks == v->capblocks) {
                size_t cap = v->capblocks ? v->capblocks * 2 : 16;
                cx_vblock **b = realloc(v->blocks, cap * sizeof *b);
                if (!b)
                    return CX_ENOMEM;
                v->blocks = b;
                v->capblocks = cap;
            }
            cx_vblock *b = calloc(1, sizeof *b);
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
    *out = slot;
    return 0;
}

/* ---- vectors into their slots ----
 * An index in memory keeps each block dimension-major, so a vector is
 * written as one byte into each of `dim` columns VBLOCK bytes apart: 320
 * scattered stores an item, most of the warm-up's instructions. Rows that
 * go to consecutive slots are staged TILE at a time and written as
 * TILE x TILE byte transposes (SSE2 where there is SSE2). */
#define TILE 16

typedef struct stage {
    size_t slot0; /* slot of row 0 */
    int n;        /* rows staged */
    int8_t row[TILE][CX_EMBED_MAX_DIM];
} stage;

#if defined(__SSE2__)
#include <emmintrin.h>

/* dst[d * stride + j] = src[j][i0 + d] for d, j < 16 */
static void transpose16(const stage *g, int i0, int8_t *dst, size_t stride) {
    __m128i a[16], b[16];
    for (int j = 0; j < 16; j++)
        a[j] = _mm_loadu_si128((const __m128i *)(const void *)(g->row[j] + i0));
    /* each stage interleaves pairs of rows at twice the width of the last */
    for (int j = 0; j < 8; j++) {
        b[j] = _mm_unpacklo_epi8(a[2 * j], a[2 * j + 1]);     /* dims 0-7 */
        b[j + 8] = _mm_unpackhi_epi8(a[2 * j], a[2 * j + 1]); /* dims 8-15 */
    }
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 4; j++) {
            a[h * 8 + j] = _mm_unpacklo_epi16(b[h * 8 + 2 * j], b[h * 8 + 2 * j + 1]);
            a[h * 8 + j + 4] = _mm_unpackhi_epi16(b[h * 8 + 2 * j], b[h * 8 + 2 * j + 1]);
        }
    for (int h = 0; h < 4; h++)
        for (int j = 0; j < 2; j++) {
            b[h * 4 + j] = _mm_unpacklo_epi32(a[h * 4 + 2 * j], a[h * 4 + 2 * j + 1]);
            b[h * 4 + j + 2] = _mm_unpackhi_epi32(a[h * 4 + 2 * j], a[h * 4 + 2 * j + 1]);
        }
    for (int h = 0; h < 8; h++) {
        a[h * 2] = _mm_unpacklo_epi64(b[h * 2], b[h * 2 + 1]);
        a[h * 2 + 1] = _mm_unpackhi_epi64(b[h * 2], b[h * 2 + 1]);
    }
    /* a[d] now holds the 16 rows of dimension i0 + d: stage 1 put dims
     * 0-7 in b[0..7] and 8-15 in b[8..15], and each later stage splits the
     * dims of its pair the same way, low half first */
    for (int d = 0; d < 16; d++)
        _mm_storeu_si128((__m128i *)(void *)(dst + (size_t)d * stride), a[d]);
}
#endif

/* Writes the staged rows into their slots (all in one block). */
static void stage_flush(cx_vindex *v, stage *g) {
    if (g->n == 0)
        return;
    cx_vblock *b = v->blocks[g->slot0 / VBLOCK];
    size_t k0 = g->slot0 % VBLOCK;
    int i = 0;
#if defined(__SSE2__)
    if (g->n == TILE)
        for (; i + TILE <= v->dim; i += TILE)
            transpose16(g, i, b->q + (size_t)i * VBLOCK + k0, VBLOCK);
#endif
    for (; i < v->dim; i++)
        for (int j = 0; j < g->n; j++)
            b->q[(size_t)i * VBLOCK + k0 + (size_t)j] = g->row[j][i];
    g->n = 0;
}

/* Adds or replaces the vector of rid: into the stage when the index is in
 * memory (g not NULL; rows to consecutive slots of one block are written
 * together by stage_flush), else as sign bits. */
static int vindex_put(cx_search_ext *e, cx_vindex *v, stage *g, int64_t rid, float scale,
                      const int8_t *q, uint8_t kind, uint32_t sub) {
    size_t slot;
    int r = vindex_slot(e, v, rid, &slot);
    if (r)
        return r;
    cx_vblock *b = v->blocks[slot / VBLOCK];
    size_t k = slot % VBLOCK;
    b->rid[k] = rid;
    b->scale[k] = scale;
    b->kind[k] = kind;
    b->sub[k] = sub;
    if (b->q) {
        if (g->n > 0 && (g->n == TILE || slot != g->slot0 + (size_t)g->n ||
                         slot / VBLOCK != g->slot0 / VBLOCK))
            stage_flush(v, g);
        if (g->n == 0)
            g->slot0 = slot;
        memcpy(g->row[g->n++], q, (size_t)v->dim);
        if (g->n == TILE)
            stage_flush(v, g);
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
/* the built-in model: items written since, then vectors made since; the
 * narrow rows alone (schema 6), never the items' text pages */
static const char SQL_VEC_LOAD_ITEMS[] =
    "SELECT rid, rid, scale, v, kind, subcortex FROM builtin_vectors WHERE rid > ?1"
    " ORDER BY rid LIMIT ?2";
static const char SQL_VEC_LOAD_LOG[] =
    "SELECT l.seq, l.rid, b.scale, b.v, b.kind, b.subcortex FROM vec_log l"
    " JOIN builtin_vectors b ON b.rid = l.rid WHERE l.seq > ?1 ORDER BY l.seq";

/* Adds the rows of a load statement (key, rid, scale, vector, kind,
 * subcortex); *last gets the last key, *rows (may be NULL) their number. */
static int vindex_load(cx_store *s, cx_search_ext *e, cx_vindex *v, sqlite3_stmt *st,
                       int64_t *last, int64_t *rows) {
    int rc, r = 0;
    stage *g = NULL;
    if (v->in_ram && !(g = malloc(sizeof *g)))
        return CX_ENOMEM;
    if (g)
        g->n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *last = sqlite3_column_int64(st, 0);
        if (rows)
            (*rows)++;
        if (sqlite3_column_bytes(st, 3) != v->dim)
            continue; /* none yet, or another dimension: not comparable */
        r = vindex_put(e, v, g, sqlite3_column_int64(st, 1), (float)sqlite3_column_double(st, 2),
                       sqlite3_column_blob(st, 3),
                       kind_code((const char *)sqlite3_column_text(st, 4)),
                       str_hash((const char *)sqlite3_column_text(st, 5)));
        if (r)
            break;
    }
    if (g)
        stage_flush(v, g); /* also after a failure: the slots are taken */
    free(g);
    sqlite3_reset(st);
    if (r)
        return r;
    return rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "loading vectors");
}

/* Brings the index of `model` up to date (inside a read transaction), or
 * by at most `chunk` rows (-1: no bound); *more tells whether it stopped
 * short. */
static int vindex_refresh_some(cx_store *s, cx_search_ext *e, cx_vindex *v, int64_t model,
                               int64_t chunk, bool *more) {
    sqlite3_stmt *st;
    int64_t rows = 0;
    int r, rc;
    *more = false;
    bool builtin = model == cx_store_builtin_model(s);
    if (v->model != model) {
        if (v->in_ram)
            e->ram_used -= v->nblocks * (size_t)VBLOCK * (size_t)v->dim;
        cx_vindex_free(v);
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

int cx_vindex_pending(cx_store *s, const cx_vindex *v, int64_t model, int64_t *out) {
    bool builtin = model == cx_store_builtin_model(s);
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, builtin ? "SELECT coalesce(max(rid), 0) FROM builtin_vectors"
                                        : "SELECT coalesce(max(seq), 0) FROM vectors",
                             &st), rc;
    if (r)
        return r;
    int64_t top = (rc = sqlite3_step(st)) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "counting vectors");
    int64_t have = v->model != model ? 0 : builtin ? v->last_rid : v->last_seq;
    *out = top > have ? top - have : 0;
    return 0;
}

int cx_vindex_refresh(cx_store *s, cx_search_ext *e, cx_vindex *v, int64_t model) {
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
        const cx_vblock *b = v->blocks[slot / VBLOCK];                                    \
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

static void hamming_plain(cx_vindex *v, const uint64_t *qsig, const uint64_t *qnz,
                          const cx_prefilter *pf, size_t *hist, size_t *count) {
    HAMMING_BODY
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("popcnt"))) static void
hamming_popcnt(cx_vindex *v, const uint64_t *qsig, const uint64_t *qnz, const cx_prefilter *pf,
               size_t *hist, size_t *count) {
    HAMMING_BODY
}
#endif

static void hamming(cx_vindex *v, const uint64_t *qsig, const uint64_t *qnz, const cx_prefilter *pf,
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

static const char SQL_VEC_ONE[] = "SELECT scale, v FROM vectors WHERE model = ?1 AND rid = ?2";
static const char SQL_VEC_ONE_BUILTIN[] = "SELECT scale, v FROM builtin_vectors WHERE rid = ?2";

/* The cosine similarity of slot to the quantized query. */
static int slot_sim(cx_store *s, cx_vindex *v, size_t slot, const int8_t *qq, double qscale,
                    double *sim) {
    cx_vblock *b = v->blocks[slot / VBLOCK];
    size_t k = slot % VBLOCK;
    if (b->q) {
        int32_t dot = 0;
        for (int i = 0; i < v->dim; i++)
            dot += (int32_t)qq[i] * b->q[(size_t)i * VBLOCK + k];
        *sim = dot * qscale * b->scale[k];
        return 0;
    }
    sqlite3_stmt *st;
    bool builtin = v->model == cx_store_builtin_model(s);
    int r = cx_store_prepare(s, builtin ? SQL_VEC_ONE_BUILTIN : SQL_VEC_ONE, &st), rc;
    if (r)
        return r;
    if (!builtin)
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

/* The order of a semantic list: a higher similarity first, then the
 * newer item. Row ids are unique, so the order is total and any way of
 * choosing the best gives the same list. */
static inline bool hit_better(const cx_sem_hit *a, const cx_sem_hit *b) {
    return a->sim > b->sim || (a->sim == b->sim && a->rid > b->rid);
}

static inline void hit_swap(cx_sem_hit *a, cx_sem_hit *b) {
    cx_sem_hit t = *a;
    *a = *b;
    *b = t;
}

/* Partitions a[lo..hi] (hi > lo) around the median of its first, middle
 * and last: the better ones before it. Returns the pivot's index. */
static size_t hits_partition(cx_sem_hit *a, size_t lo, size_t hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (hit_better(&a[mid], &a[lo]))
        hit_swap(&a[mid], &a[lo]);
    if (hit_better(&a[hi], &a[lo]))
        hit_swap(&a[hi], &a[lo]);
    if (hit_better(&a[hi], &a[mid]))
        hit_swap(&a[hi], &a[mid]);
    hit_swap(&a[mid], &a[hi]); /* the median is the pivot, at hi */
    size_t at = lo;
    for (size_t i = lo; i < hi; i++)
        if (hit_better(&a[i], &a[hi]))
            hit_swap(&a[i], &a[at++]);
    hit_swap(&a[at], &a[hi]);
    return at;
}

/* Moves the k best of a[0..n) to a[0..k) (k < n), the k-th best at a[k - 1], the
 * others in no particular order. */
static void hits_select(cx_sem_hit *a, size_t n, size_t k) {
    if (k == 0 || k >= n)
        return;
    size_t lo = 0, hi = n - 1, t = k - 1; /* the k-th best goes to t */
    while (hi > lo) {
        size_t p = hits_partition(a, lo, hi);
        if (p == t)
            return;
        if (p > t)
            hi = p - 1;
        else
            lo = p + 1;
    }
}

/* Sorts a[0..n) best first. A few hundred hits: glibc's qsort (a merge
 * sort, a comparison through a pointer) cost more than the scan that
 * found them. */
static void hits_sort(cx_sem_hit *a, size_t n) {
    while (n > 16) {
        size_t p = hits_partition(a, 0, n - 1);
        /* the smaller side by recursion, the larger by the loop */
        if (p < n - 1 - p) {
            hits_sort(a, p);
            a += p + 1;
            n -= p + 1;
        } else {
            hits_sort(a + p + 1, n - 1 - p);
            n = p;
        }
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && hit_better(&a[j], &a[j - 1]); j--)
            hit_swap(&a[j], &a[j - 1]);
}

/* The best `max` hits of a scan. Candidates at or above `thr` go to a
 * buffer of `cap` (more than max); when it fills, the best max stay and
 * thr rises to the worst of them, which a later candidate below it cannot
 * beat. (A min-heap of max did the same with a sift of ~185 instructions
 * for each of the ~400 candidates of a search at 10k items, then a
 * qsort.) */
typedef struct sem_sel {
    cx_sem_hit *c;
    size_t n, cap, max;
    float thr;
} sem_sel;

static void sel_trim(sem_sel *S) {
    if (S->n <= S->max)
        return;
    hits_select(S->c, S->n, S->max); /* the max-th best ends at c[max - 1] */
    S->n = S->max;
    if (S->max > 0 && (float)S->c[S->max - 1].sim > S->thr)
        S->thr = (float)S->c[S->max - 1].sim;
}

static void sel_add(sem_sel *S, int64_t rid, float sim) {
    if (S->n == S->cap)
        sel_trim(S);
    S->c[S->n++] = (cx_sem_hit){rid, sim};
}

/* The best max of the selection, best first, into out; their number. */
static size_t sel_finish(sem_sel *S, cx_sem_hit *out) {
    sel_trim(S);
    hits_sort(S->c, S->n);
    memcpy(out, S->c, sizeof *out * S->n);
    return S->n;
}

/* The smallest float at or above the double f: a float similarity passes
 * `sim >= f` exactly when it passes `sim >= floor_f(f)`. */
static float floor_f(double f) {
    float t = (float)f;
    return (double)t < f ? nextafterf(t, INFINITY) : t;
}

/* Which of x[k..k+16) (those below n) are at or above t: bit i for
 * x[k + i]. Most slots are below the floor: four SSE compares look at 16
 * of them, and the caller visits only the set bits. */
static unsigned mask16_at_least(const float *x, size_t k, size_t n, float t) {
    unsigned m = 0;
#if defined(__SSE2__)
    if (k + 16 <= n) {
        __m128 tv = _mm_set1_ps(t);
        return (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + k), tv)) |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + k + 4), tv)) << 4 |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + k + 8), tv)) << 8 |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(x + k + 12), tv)) << 12;
    }
#endif
    for (size_t i = 0; i < 16 && k + i < n; i++)
        m |= (unsigned)(x[k + i] >= t) << i;
    return m;
}

/* A walk of the indexes of x[0..n) at or above a threshold, 16 slots at
 * a time, visiting only the set bits of each mask. */
typedef struct at_least {
    const float *x;
    size_t n, next; /* the next 16 slots to look at */
    size_t base;    /* the slots m is of */
    unsigned m;
} at_least;

static at_least at_least_start(const float *x, size_t n) {
    return (at_least){.x = x, .n = n};
}

/* The next index at or above t into *k; false at the end. t may rise
 * between calls (candidates coming in raise the selection's threshold). */
static bool at_least_next(at_least *it, float t, size_t *k) {
    for (;;) {
        while (it->m) {
            size_t i = it->base + (size_t)__builtin_ctz(it->m);
            it->m &= it->m - 1;
            if (it->x[i] >= t) {
                *k = i;
                return true;
            }
        }
        if (it->next >= it->n)
            return false;
        it->base = it->next;
        it->m = mask16_at_least(it->x, it->next, it->n, t);
        it->next += 16;
    }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
__attribute__((target_clones("avx2", "default")))
#endif
static void axpy_i8(int32_t *restrict acc, const int8_t *restrict col, int32_t w, size_t n) {
    for (size_t k = 0; k < n; k++)
        acc[k] += w * col[k];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
__attribute__((target_clones("avx2", "default")))
#endif
static void axpy_set_i8(int32_t *restrict acc, const int8_t *restrict col, int32_t w, size_t n) {
    for (size_t k = 0; k < n; k++)
        acc[k] = w * col[k];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__)
__attribute__((target_clones("avx2", "default")))
#endif
static void sims_of(float *restrict out, const int32_t *restrict acc, float qscale,
                    const float *restrict scale, size_t n) {
    for (size_t k = 0; k < n; k++)
        out[k] = (float)acc[k] * qscale * scale[k]; /* as exact_search always computed it */
}

/* Scores every slot the prefilter lets through; the best `max` at or
 * above the floor go to out, best first. */
static int exact_search(cx_vindex *v, const int8_t *qq, float qscale, bool builtin,
                        const cx_prefilter *pf, const cx_vindex *exclude, cx_sem_hit *out,
                        size_t max, size_t *nout) {
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
    float *bsim = malloc(sizeof *bsim * VBLOCK); /* one block's similarities */
    sem_sel S = {.cap = 4 * (max ? max : 1), .max = max};
    S.c = malloc(sizeof *S.c * S.cap);
    if (!acc || !bsim || !S.c) {
        free(acc);
        free(bsim);
        free(S.c);
        return CX_ENOMEM;
    }
    /* the built-in model's floor is known: pick the best as we go; for
     * others it depends on all the similarities, so a second pass picks */
    double floor = SEM_FLOOR_BUILTIN, sum = 0.0, sum2 = 0.0;
    size_t count = 0;
    S.thr = floor_f(floor);
    for (size_t bi = 0; bi < v->nblocks; bi++) {
        const cx_vblock *b = v->blocks[bi];
        size_t base = bi * VBLOCK, cnt = v->n - base < VBLOCK ? v->n - base : VBLOCK;
        if (m == 0)
            memset(acc, 0, sizeof *acc * cnt);
        else /* the first column sets the sums: no pass to zero them */
            axpy_set_i8(acc, b->q + (size_t)nz[0] * VBLOCK, qq[nz[0]], cnt);
        for (int j = 1; j < m; j++)
            axpy_i8(acc, b->q + (size_t)nz[j] * VBLOCK, qq[nz[j]], cnt);
        if (builtin) {
            /* the similarities first (a loop the compiler vectorizes), then
             * the few at or above the threshold, found 16 at a time:
             * testing the filters on every slot cost ~37 instructions a
             * slot, and the floor alone ~8 */
            sims_of(bsim, acc, qscale, b->scale, cnt);
            size_t k;
            for (at_least it = at_least_start(bsim, cnt); at_least_next(&it, S.thr, &k);) {
                bool pass =
                    ((pf->kinds >> b->kind[k]) & 1u) && (!pf->has_sub || b->sub[k] == pf->sub);
                if (pass && !(exclude && map_find(exclude, b->rid[k]) != SIZE_MAX))
                    sel_add(&S, b->rid[k], bsim[k]);
            }
            continue;
        }
        for (size_t k = 0; k < cnt; k++) {
            float sim = (float)acc[k] * qscale * b->scale[k];
            bool pass = ((pf->kinds >> b->kind[k]) & 1u) && (!pf->has_sub || b->sub[k] == pf->sub);
            sims[base + k] = pass ? sim : -2.0f;
            if (pass) {
                sum += sim;
                sum2 += (double)sim * sim;
                count++;
            }
        }
    }
    free(acc);
    free(bsim);
    if (!builtin && count > 0) {
        double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
        floor = sem_floor(mean, var > 0 ? sqrt(var) : 0.0, count);
        S.thr = floor_f(floor);
        size_t i;
        for (at_least it = at_least_start(sims, v->n); at_least_next(&it, S.thr, &i);) {
            int64_t rid = v->blocks[i / VBLOCK]->rid[i % VBLOCK];
            if (!(exclude && map_find(exclude, rid) != SIZE_MAX))
                sel_add(&S, rid, sims[i]);
        }
    }
    *nout = sel_finish(&S, out);
    free(S.c);
    return 0;
}

int cx_vindex_best(const cx_sem_hit *hits, size_t n, size_t max, double thr, cx_sem_hit *out,
                   size_t *nout) {
    sem_sel S = {.cap = 4 * (max ? max : 1), .max = max, .thr = floor_f(thr)};
    *nout = 0;
    if (!(S.c = malloc(sizeof *S.c * S.cap)))
        return CX_ENOMEM;
    float *sim = malloc(sizeof *sim * (n ? n : 1));
    if (!sim) {
        free(S.c);
        return CX_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        sim[i] = (float)hits[i].sim;
    size_t i;
    for (at_least it = at_least_start(sim, n); at_least_next(&it, S.thr, &i);)
        sel_add(&S, hits[i].rid, sim[i]);
    *nout = sel_finish(&S, out);
    free(sim);
    free(S.c);
    return 0;
}

/* The semantic list over index v for the query vector qv: up to `max`
 * hits, best first, above the model's floor; slots whose rid `exclude`
 * holds are left out (items the other model already ranks). */
int cx_vindex_search(cx_store *s, cx_vindex *v, const float *qv, bool builtin,
                     const cx_prefilter *pf, const cx_vindex *exclude, cx_sem_hit *out,
                     size_t max, size_t *nout) {
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
    cx_sem_hit *c = malloc(sizeof *c * cap);
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
        c[nc++] = (cx_sem_hit){rid, sim};
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
    *nout = k < max ? k : max;
    hits_select(c, k, *nout);
    hits_sort(c, *nout);
    memcpy(out, c, sizeof *c * *nout);
    free(c);
    return 0;
}

cx_prefilter cx_vindex_prefilter(const cx_search_query *q) {
    cx_prefilter pf = {.kinds = ~0u};
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
                1u << CX_VINDEX_KIND_OTHER;
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

int cx_search_set_memory(cx_store *s, size_t bytes) {
    cx_search_ext *e = NULL;
    int r = cx_search_ext_get(s, &e);
    if (r == 0)
        e->ram_budget = bytes;
    return r;
}

#define WARM_CHUNK 512 /* rows loaded per read transaction by cx_search_warm (a
                          * request waits for at most one chunk, see cortexd) */

int cx_search_warm(cx_store *s) {
    return cx_search_warm_ex(s, NULL, NULL);
}

int cx_search_warm_expect(cx_store *s) {
    cx_search_ext *e = NULL;
    int r = cx_search_ext_get(s, &e);
    if (r == 0)
        e->warming = true;
    return r;
}

int cx_search_warm_ex(cx_store *s, cx_progress_fn progress, void *ud) {
    cx_search_ext *e = NULL;
    int r = cx_search_ext_get(s, &e);
    if (r == 0)
        e->warming = true; /* searches between chunks use what is loaded */
    /* the row lengths first (a keyword search reads a phrase's rows with
     * them; ~1 k instructions a row to load), a block per snapshot */
    for (bool more = true; r == 0 && more;) {
        if ((r = cx_store_read_begin(s)))
            break;
        r = cx_rank_warm_lengths(e, s, &more);
        cx_store_read_end(s);
        if (r == 0 && progress && progress(ud, 0, 1) != 0)
            r = cx_error_set(CX_ECANCELED, "loading the search index was canceled; "
                                           "searches load the rest as they need it");
    }
    for (int k = 0; r == 0 && k < 2; k++) {
        cx_vindex *v = k ? &e->other : &e->builtin;
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
    if (e)
        e->warming = false;
    return r;
}

