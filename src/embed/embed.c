/* SPDX-License-Identifier: Apache-2.0 */
/* The embedder object shared by every implementation: the public entry
 * points, their argument checks, and the vector helpers. What an embedder
 * does lives in builtin.c and http.c behind cx_embed_ops. */
#include "embed/embed-impl.h"

#include "util/error.h"

#include <assert.h>
#include <math.h>

void cx_embed_free(cx_embedder *e) {
    if (e)
        e->ops->free(e);
}

const char *cx_embed_model_id(const cx_embedder *e) {
    assert(e);
    return e->model_id;
}

int cx_embed_dim(const cx_embedder *e) {
    assert(e);
    return e->dim;
}

bool cx_embed_is_local(const cx_embedder *e) {
    assert(e);
    return e->local;
}

int cx_embed_probe(cx_embedder *e) {
    assert(e);
    if (e->dim > 0 || !e->ops->probe)
        return 0;
    return e->ops->probe(e);
}

int cx_embed_batch(cx_embedder *e, const char *const *texts, size_t n, float *out) {
    assert(e);
    if (n == 0)
        return 0;
    if (n > CX_EMBED_MAX_BATCH)
        return cx_error_set(CX_EINVAL, "embed: %zu texts in one batch (at most %d)", n,
                            CX_EMBED_MAX_BATCH);
    if (!texts || !out)
        return cx_error_set(CX_EINVAL, "embed: texts and out must not be NULL");
    for (size_t i = 0; i < n; i++)
        if (!texts[i])
            return cx_error_set(CX_EINVAL, "embed: text %zu is NULL", i);
    if (e->dim <= 0)
        return cx_error_set(CX_EINVAL,
                            "embed: the dimension of %s is not known yet; call "
                            "cx_embed_probe() first",
                            e->model_id);
    return e->ops->batch(e, texts, n, out);
}

float cx_embed_dot(const float *a, const float *b, int dim) {
    /* Four partial sums: lets the compiler vectorise without -ffast-math,
     * and the order is fixed, so the result is the same on every run. */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

void cx_embed_normalize(float *v, int dim) {
    double ss = 0;
    for (int i = 0; i < dim; i++)
        ss += (double)v[i] * v[i];
    if (ss <= 0)
        return;
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}
