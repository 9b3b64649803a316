/* SPDX-License-Identifier: Apache-2.0 */
/* Private to src/embed: the common embedder object and the vtable each
 * implementation (builtin.c, http.c) fills in. embed.c owns the public
 * entry points and their argument checks; the implementations see only
 * checked arguments. */
#pragma once

#include "embed/embed.h"

#include <stdbool.h>
#include <stddef.h>

#define CX_EMBED_MODEL_ID_MAX 256

typedef struct cx_embed_ops {
    /* n ≥ 1, n ≤ CX_EMBED_MAX_BATCH, every texts[i] non-NULL, dim > 0,
     * out has n * dim floats. */
    int (*batch)(cx_embedder *e, const char *const *texts, size_t n, float *out);
    /* Learns the dimension when it is not known yet; NULL when always known. */
    int (*probe)(cx_embedder *e);
    void (*free)(cx_embedder *e);
} cx_embed_ops;

/* The first member of every implementation's struct. */
struct cx_embedder {
    const cx_embed_ops *ops;
    char model_id[CX_EMBED_MODEL_ID_MAX];
    int dim;    /* 0 while an http embedder has not learned it */
    bool local; /* cheap enough to compute inside a write */
};

/* Scales v to unit length; leaves an all-zero vector as it is. */
void cx_embed_normalize(float *v, int dim);
