/* SPDX-License-Identifier: Apache-2.0 */
/* Vectors: the text an item is embedded from, quantization, writing a
 * model's vectors, the embed_models table, the embedder a store uses, and
 * embedding in batches (items still waiting, a whole reindex). */
#include "store/store-internal.h"

#include "util/error.h"
#include "util/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

char *cx_vec_text(const char *title, const char *body) {
    size_t tl = title ? strlen(title) : 0, bl = body ? strlen(body) : 0;
    size_t n = tl + (tl ? 2 : 0) + bl;
    char *t = malloc(n + 1);
    if (!t)
        return NULL;
    size_t o = 0;
    if (tl) {
        memcpy(t, title, tl);
        memcpy(t + tl, "\n\n", 2);
        o = tl + 2;
    }
    if (bl)
        memcpy(t + o, body, bl);
    n = cx_utf8_cut(t, n, CX_STORE_EMBED_TEXT_MAX);
    t[n] = '\0';
    return t;
}

void cx_vec_quantize(const float *v, int dim, int8_t *q, float *scale) {
    float m = 0.0f;
    for (int i = 0; i < dim; i++) {
        float a = fabsf(v[i]);
        if (a > m)
            m = a;
    }
    if (!(m > 0.0f) || !isfinite(m)) {
        memset(q, 0, (size_t)dim);
        *scale = 0.0f;
        return;
    }
    float inv = 127.0f / m;
    for (int i = 0; i < dim; i++) {
        float x = v[i] * inv; /* within [-127, 127] */
        q[i] = (int8_t)(int)(x >= 0.0f ? x + 0.5f : x - 0.5f);
    }
    *scale = m / 127.0f;
}

uint64_t cx_vec_sig(const float *v, int dim) {
    uint64_t sig = 0;
    for (int i = 0; i < 64 && i < dim; i++)
        if (v[i] > 0.0f)
            sig |= 1ull << i;
    return sig;
}

int cx_vec_builtin(cx_store *s, const char *text, float *out) {
    return cx_embed_batch(s->builtin, &text, 1, out);
}

static const char SQL_VEC_PUT[] =
    "INSERT OR REPLACE INTO vectors (model, rid, scale, v)"
    " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM items WHERE rid = ?2)";
/* the built-in model: the narrow row, then the item's sign bits (whose
 * change count says whether the item exists, for the log) */
static const char SQL_VEC_PUT_BUILTIN[] =
    "INSERT OR REPLACE INTO builtin_vectors (rid, kind, subcortex, scale, v)"
    " SELECT rid, kind, subcortex, ?3, ?2 FROM items WHERE rid = ?1";
static const char SQL_VEC_SIG[] = "UPDATE items SET sig = ?2 WHERE rid = ?1";
static const char SQL_VEC_LOG[] = "INSERT INTO vec_log (rid) SELECT ?1 WHERE changes() > 0";
static const char SQL_VEC_DEQUEUE[] = "DELETE FROM embed_queue WHERE model = ?1 AND rid = ?2";
static const char SQL_VEC_DEQUEUE_GEN[] =
    "DELETE FROM embed_queue WHERE model = ?1 AND rid = ?2 AND gen = ?3";

/* Writes a vector (of an item that exists) and logs a built-in one. */
static int vec_write(cx_store *s, int64_t model, int64_t rid, const float *v, int dim) {
    int8_t q[CX_EMBED_MAX_DIM];
    float scale;
    sqlite3_stmt *st;
    int r;
    cx_vec_quantize(v, dim, q, &scale);
    if (model == s->builtin_model) {
        if ((r = cx_store_prepare(s, SQL_VEC_PUT_BUILTIN, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_blob(st, 2, q, dim, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, scale);
        if ((r = cx_store_exec_stmt(s, st, "storing a vector")))
            return r;
        if ((r = cx_store_prepare(s, SQL_VEC_SIG, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)cx_vec_sig(v, dim));
        if ((r = cx_store_exec_stmt(s, st, "storing a vector's sign bits")))
            return r;
        if ((r = cx_store_prepare(s, SQL_VEC_LOG, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rid);
        return cx_store_exec_stmt(s, st, "logging a vector");
    }
    if ((r = cx_store_prepare(s, SQL_VEC_PUT, &st)))
        return r;
    sqlite3_bind_int64(st, 1, model);
    sqlite3_bind_int64(st, 2, rid);
    sqlite3_bind_double(st, 3, scale);
    sqlite3_bind_blob(st, 4, q, dim, SQLITE_STATIC);
    return cx_store_exec_stmt(s, st, "storing a vector");
}

int cx_vec_put(cx_store *s, int64_t model, int64_t rid, const float *v, int dim, unsigned flags) {
    sqlite3_stmt *st;
    int r;
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM)
        return cx_error_set(CX_EFAIL, "a vector of %d dimensions cannot be stored", dim);
    if ((r = vec_write(s, model, rid, v, dim)))
        return r;
    if (flags & CX_VEC_DEQUEUE) {
        if ((r = cx_store_prepare(s, SQL_VEC_DEQUEUE, &st)))
            return r;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int64(st, 2, rid);
        if ((r = cx_store_exec_stmt(s, st, "updating the embed queue")))
            return r;
    }
    return 0;
}

static const char SQL_MODEL_GET[] = "SELECT id, dim FROM embed_models WHERE name = ?1";
static const char SQL_MODEL_ADD[] = "INSERT INTO embed_models (name, dim) VALUES (?1, ?2)";
static const char SQL_MODEL_DIM[] = "UPDATE embed_models SET dim = ?2 WHERE id = ?1 AND dim = 0";

int cx_vec_model_id(cx_store *s, const char *name, int dim, bool create, int64_t *out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_MODEL_GET, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t id = 0, have_dim = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        have_dim = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading embedding models");
    if (id && have_dim == 0 && dim > 0 && create) {
        if ((r = cx_store_prepare(s, SQL_MODEL_DIM, &st)))
            return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, dim);
        if ((r = cx_store_exec_stmt(s, st, "recording a model's dimension")))
            return r;
    }
    if (!id && create) {
        if ((r = cx_store_prepare(s, SQL_MODEL_ADD, &st)))
            return r;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, dim > 0 ? dim : 0);
        if ((r = cx_store_exec_stmt(s, st, "recording an embedding model")))
            return r;
        id = sqlite3_last_insert_rowid(s->db);
    }
    *out = id;
    return 0;
}

typedef struct model_ctx {
    const char *name;
    int dim;
    int64_t id;
} model_ctx;

static int model_tx(cx_store *s, void *ud) {
    model_ctx *c = ud;
    return cx_vec_model_id(s, c->name, c->dim, true, &c->id);
}

/* The model's id, recorded in a write transaction when it is new. */
int cx_vec_model_create(cx_store *s, cx_embedder *e, int64_t *out) {
    model_ctx c = {.name = cx_embed_model_id(e), .dim = cx_embed_dim(e)};
    int r = cx_vec_model_id(s, c.name, c.dim, false, &c.id);
    if (r == 0 && !c.id)
        r = cx_store_write(s, model_tx, &c);
    if (r == 0)
        *out = c.id;
    return r;
}

/* A new built-in model (its id changed with its features or dimension):
 * recorded, and in the same transaction every item's vector of the model
 * before it is dropped, so that cx_store_embed_pending() redoes them all
 * (items_nosig) and no search compares vectors of two models. The rows of
 * earlier built-in models go too (a built-in model keeps its vectors in
 * builtin_vectors, never in `vectors`), or status would list them as
 * pending for ever. */
static const char SQL_VEC_DROP_BUILTIN[] =
    "DELETE FROM builtin_vectors; UPDATE items SET sig = NULL WHERE sig IS NOT NULL";
#define OLD_BUILTIN                                                                        \
    "SELECT id FROM embed_models m WHERE m.id <> ?1 AND m.name LIKE 'builtin-ngram-%'"     \
    " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.model = m.id)"
static const char SQL_QUEUE_DROP_OLD_BUILTIN[] =
    "DELETE FROM embed_queue WHERE model IN (" OLD_BUILTIN ")";
static const char SQL_MODEL_DROP_OLD_BUILTIN[] =
    "DELETE FROM embed_models WHERE id IN (" OLD_BUILTIN ")";

static int builtin_tx(cx_store *s, void *ud) {
    model_ctx *c = ud;
    int64_t had = 0;
    sqlite3_stmt *st;
    int r = cx_vec_model_id(s, c->name, c->dim, false, &had);
    if (r == 0)
        r = cx_vec_model_id(s, c->name, c->dim, true, &c->id);
    if (r || had)
        return r;
    if ((r = cx_store_exec_sql(s, SQL_VEC_DROP_BUILTIN,
                               "dropping the vectors of the previous built-in model")))
        return r;
    const char *const drop[] = {SQL_QUEUE_DROP_OLD_BUILTIN, SQL_MODEL_DROP_OLD_BUILTIN};
    for (size_t i = 0; i < 2; i++) {
        if ((r = cx_store_prepare(s, drop[i], &st)))
            return r;
        sqlite3_bind_int64(st, 1, c->id);
        if ((r = cx_store_exec_stmt(s, st, "forgetting the previous built-in model")))
            return r;
    }
    return 0;
}

int cx_vec_builtin_model(cx_store *s, cx_embedder *e, int64_t *out) {
    model_ctx c = {.name = cx_embed_model_id(e), .dim = cx_embed_dim(e)};
    int r = cx_vec_model_id(s, c.name, c.dim, false, &c.id);
    if (r == 0 && !c.id)
        r = cx_store_write(s, builtin_tx, &c);
    if (r == 0)
        *out = c.id;
    return r;
}

int cx_store_set_embedder(cx_store *s, cx_embedder *e) {
    if (!e || strcmp(cx_embed_model_id(e), cx_embed_model_id(s->builtin)) == 0) {
        s->model = NULL;
        s->model_id = 0;
        return 0;
    }
    int64_t id = 0;
    int r = cx_vec_model_create(s, e, &id);
    if (r)
        return r;
    s->model = e;
    s->model_id = id;
    return 0;
}

/* ---- embedding in batches (pending items, reindex) ---- */

#define CATCHUP_CHUNK 4096 /* rids queued per transaction by the catch-up */

typedef struct embed_batch {
    size_t n;
    int64_t rid[CX_EMBED_MAX_BATCH];
    int64_t gen[CX_EMBED_MAX_BATCH]; /* -1: not queued */
    char *text[CX_EMBED_MAX_BATCH];
    float *vec;                      /* n * dim */
    int dim;
    int64_t model;
} embed_batch;

static void batch_clear(embed_batch *b) {
    for (size_t i = 0; i < b->n; i++) {
        free(b->text[i]);
        b->text[i] = NULL;
    }
    b->n = 0;
}

/* Reads the rows of a batch statement (rid, gen, title, body). */
static int batch_read(cx_store *s, sqlite3_stmt *st, embed_batch *b, const char *what) {
    int rc, r = 0;
    while (b->n < CX_EMBED_MAX_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t i = b->n;
        b->rid[i] = sqlite3_column_int64(st, 0);
        b->gen[i] = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
        b->text[i] = cx_vec_text((const char *)sqlite3_column_text(st, 2),
                                 (const char *)sqlite3_column_text(st, 3));
        if (!b->text[i]) {
            r = CX_ENOMEM;
            break;
        }
        b->n++;
    }
    if (r == 0 && b->n < CX_EMBED_MAX_BATCH && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, what);
    sqlite3_reset(st);
    return r;
}

/* Embeds the batch's texts (outside any transaction). */
static int batch_embed(embed_batch *b, cx_embedder *e) {
    int r = cx_embed_probe(e); /* an http embedder learns its dimension */
    if (r)
        return r;
    int dim = cx_embed_dim(e);
    if (dim <= 0 || dim > CX_EMBED_MAX_DIM)
        return cx_error_set(CX_EFAIL, "the embedder %s has no usable dimension (%d)",
                            cx_embed_model_id(e), dim);
    if (!b->vec || b->dim != dim) {
        free(b->vec);
        b->vec = malloc(sizeof(float) * (size_t)dim * CX_EMBED_MAX_BATCH);
        if (!b->vec)
            return CX_ENOMEM;
        b->dim = dim;
    }
    return cx_embed_batch(e, (const char *const *)b->text, b->n, b->vec);
}

/* Writes the batch's vectors; a queued item is taken off the queue only
 * when its text did not change since it was read (same gen). */
static int batch_write_tx(cx_store *s, void *ud) {
    embed_batch *b = ud;
    sqlite3_stmt *st;
    int r;
    for (size_t i = 0; i < b->n; i++) {
        if ((r = vec_write(s, b->model, b->rid[i], b->vec + i * (size_t)b->dim, b->dim)))
            return r;
        if (b->gen[i] >= 0) {
            if ((r = cx_store_prepare(s, SQL_VEC_DEQUEUE_GEN, &st)))
                return r;
            sqlite3_bind_int64(st, 1, b->model);
            sqlite3_bind_int64(st, 2, b->rid[i]);
            sqlite3_bind_int64(st, 3, b->gen[i]);
            if ((r = cx_store_exec_stmt(s, st, "updating the embed queue")))
                return r;
        }
    }
    if ((r = cx_store_prepare(s, SQL_MODEL_DIM, &st)))
        return r;
    sqlite3_bind_int64(st, 1, b->model);
    sqlite3_bind_int(st, 2, b->dim);
    return cx_store_exec_stmt(s, st, "recording a model's dimension");
}

static const char SQL_COVERAGE[] =
    "SELECT covered_rid, (SELECT coalesce(max(rid), 0) FROM items) FROM embed_models"
    " WHERE id = ?1";
static const char SQL_CATCHUP[] =
    "INSERT OR IGNORE INTO embed_queue (model, rid) SELECT ?1, rid FROM items"
    " WHERE rid > ?2 AND rid <= ?3"
    " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.model = ?1 AND v.rid = items.rid)";
static const char SQL_COVERED[] = "UPDATE embed_models SET covered_rid = ?2 WHERE id = ?1";
static const char SQL_QUEUE_BATCH[] =
    "SELECT q.rid, q.gen, i.title, i.body FROM embed_queue q JOIN items i ON i.rid = q.rid"
    " WHERE q.model = ?1 ORDER BY q.rid LIMIT ?2";
static const char SQL_NOVEC_BATCH[] =
    "SELECT rid, NULL, title, body FROM items WHERE sig IS NULL ORDER BY rid LIMIT ?2";

typedef struct catchup_ctx {
    int64_t model;
    bool more; /* items remain beyond the chunk */
} catchup_ctx;

/* Queues the next chunk of items that were never queued for a model other
 * than the built-in one. */
static int catchup_tx(cx_store *s, void *ud) {
    catchup_ctx *c = ud;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_COVERAGE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    int64_t covered = 0, max = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        covered = sqlite3_column_int64(st, 0);
        max = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading embedding coverage");
    c->more = false;
    if (covered >= max)
        return 0;
    int64_t hi = max - covered > CATCHUP_CHUNK ? covered + CATCHUP_CHUNK : max;
    if ((r = cx_store_prepare(s, SQL_CATCHUP, &st)))
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    sqlite3_bind_int64(st, 2, covered);
    sqlite3_bind_int64(st, 3, hi);
    if ((r = cx_store_exec_stmt(s, st, "queueing items to embed")))
        return r;
    if ((r = cx_store_prepare(s, SQL_COVERED, &st)))
        return r;
    sqlite3_bind_int64(st, 1, c->model);
    sqlite3_bind_int64(st, 2, hi);
    if ((r = cx_store_exec_stmt(s, st, "recording embedding coverage")))
        return r;
    c->more = hi < max;
    return 0;
}

/* True when items were added since the model's last catch-up. */
static int needs_catchup(cx_store *s, int64_t model, bool *out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_COVERAGE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, model);
    *out = false;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0) < sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
                                                 : cx_store_sqlerr(s, rc, "reading coverage");
}

static int embed_pending_model(cx_store *s, cx_embedder *e, int64_t model, size_t max,
                               size_t *done) {
    embed_batch *b = calloc(1, sizeof *b);
    int r = 0;
    if (!b)
        return CX_ENOMEM;
    b->model = model;
    bool builtin = model == s->builtin_model;
    while (max == 0 || *done < max) {
        bool more = false;
        /* Items are queued for another model as far as they were written
         * (the built-in one needs no catch-up: a new item has its vector,
         * and items_nosig lists those without). */
        if (!builtin && (r = needs_catchup(s, model, &more)))
            break;
        if (more) {
            catchup_ctx c = {.model = model};
            if ((r = cx_store_write(s, catchup_tx, &c)))
                break;
        }
        sqlite3_stmt *st;
        size_t want = CX_EMBED_MAX_BATCH;
        if (max && max - *done < want)
            want = max - *done;
        for (int k = 0; k < (builtin ? 2 : 1) && r == 0 && b->n == 0; k++) {
            if ((r = cx_store_prepare(s, k ? SQL_NOVEC_BATCH : SQL_QUEUE_BATCH, &st)))
                break;
            sqlite3_bind_int64(st, 1, model);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)want);
            r = batch_read(s, st, b, "reading the items to embed");
        }
        if (r || b->n == 0)
            break;
        if ((r = batch_embed(b, e)) == 0)
            r = cx_store_write(s, batch_write_tx, b);
        if (r)
            break;
        *done += b->n;
        batch_clear(b);
    }
    batch_clear(b);
    free(b->vec);
    free(b);
    return r;
}

int cx_store_embed_pending(cx_store *s, size_t max, size_t *done) {
    size_t n = 0;
    int r = embed_pending_model(s, s->builtin, s->builtin_model, max, &n);
    if (r == 0 && s->model && (max == 0 || n < max))
        r = embed_pending_model(s, s->model, s->model_id, max, &n);
    if (done)
        *done = n;
    return r;
}

static const char SQL_ITEM_COUNT[] = "SELECT count(*), coalesce(max(rid), 0) FROM items";
static const char SQL_REINDEX_BATCH[] =
    "SELECT i.rid, q.gen, i.title, i.body FROM items i"
    " LEFT JOIN embed_queue q ON q.model = ?1 AND q.rid = i.rid"
    " WHERE i.rid > ?2 AND i.rid <= ?3 ORDER BY i.rid LIMIT ?4";

int cx_store_reindex(cx_store *s, cx_embedder *e, cx_progress_fn progress, void *ud) {
    cx_embedder *emb = e ? e : s->builtin;
    embed_batch *b = NULL;
    int64_t model = 0, total = 0, max_rid = 0, last = 0;
    size_t done = 0;
    sqlite3_stmt *st;
    int r = cx_vec_model_create(s, emb, &model), rc;
    if (r)
        return r;
    if ((r = cx_store_prepare(s, SQL_ITEM_COUNT, &st)))
        return r;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        total = sqlite3_column_int64(st, 0);
        max_rid = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "counting items");
    b = calloc(1, sizeof *b);
    if (!b)
        return CX_ENOMEM;
    b->model = model;
    for (;;) {
        if ((r = cx_store_prepare(s, SQL_REINDEX_BATCH, &st)))
            break;
        sqlite3_bind_int64(st, 1, model);
        sqlite3_bind_int64(st, 2, last);
        sqlite3_bind_int64(st, 3, max_rid);
        sqlite3_bind_int(st, 4, CX_EMBED_MAX_BATCH);
        if ((r = batch_read(s, st, b, "reading items to embed")) || b->n == 0)
            break;
        last = b->rid[b->n - 1];
        if ((r = batch_embed(b, emb)) == 0)
            r = cx_store_write(s, batch_write_tx, b);
        if (r)
            break;
        done += b->n;
        batch_clear(b);
        if (progress && progress(ud, done, (size_t)total) != 0) {
            r = cx_error_set(CX_ECANCELED, "reindexing was canceled after %zu of %lld items; "
                                           "the rest keep their vectors or stay pending",
                             done, (long long)total);
            break;
        }
    }
    if (r == 0 && max_rid > 0 && model != s->builtin_model) {
        /* everything up to max_rid has a vector now: nothing to catch up */
        catchup_ctx c = {.model = model};
        bool more = true;
        while (r == 0 && more) {
            r = cx_store_write(s, catchup_tx, &c);
            more = c.more;
        }
    }
    batch_clear(b);
    free(b->vec);
    free(b);
    return r;
}
