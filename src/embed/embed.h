/* SPDX-License-Identifier: Apache-2.0 */
/* Embedders: text in, L2-normalised float vectors out, behind one small
 * interface so the store and search never know which model is behind it.
 *
 * - builtin: deterministic, no model files: hashed word and character
 *   n-grams into a fixed dimension. Microseconds per item; never fails
 *   except on out of memory.
 * - http: any OpenAI-compatible POST {base_url}/v1/embeddings endpoint
 *   (Ollama, llama.cpp server, vLLM, OpenAI) via libcurl, with batching,
 *   timeouts, retries with backoff and a circuit breaker.
 *
 * An embedder is used by one thread at a time; create one per thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cx_embedder cx_embedder;

#define CX_EMBED_BUILTIN_DIM 320
#define CX_EMBED_MAX_DIM 4096
#define CX_EMBED_MAX_BATCH 256

/* The built-in embedder with `dim` dimensions (0 = CX_EMBED_BUILTIN_DIM). */
int cx_embed_builtin_new(cx_embedder **out, int dim);

typedef struct cx_embed_http_config {
    const char *base_url;   /* e.g. "http://127.0.0.1:11434" (…/v1/embeddings is appended;
                             * to a base_url that already ends in /v1, only /embeddings) */
    const char *model;      /* sent as "model" */
    const char *api_key;    /* sent as "Authorization: Bearer …"; NULL for none */
    const char *ca_file;    /* custom CA bundle, or NULL */
    int dim;                /* expected dimension; 0 = learn from the first answer */
    int timeout_ms;         /* per request; 0 = 10000 */
    int max_batch;          /* texts per request; 0 = 64 */
    int retries;            /* extra attempts on 429/5xx/transport errors; 0 = 2, -1 = none */
    int breaker_failures;   /* consecutive failed calls that open the breaker; 0 = 3 */
    int breaker_cooldown_ms;/* how long it stays open; 0 = 30000 */
} cx_embed_http_config;

/* An HTTP embedder. Nothing is sent until the first cx_embed_batch(). */
int cx_embed_http_new(cx_embedder **out, const cx_embed_http_config *cfg);

void cx_embed_free(cx_embedder *e);

/* The model id under which vectors are stored: "builtin-ngram-v3-320" or
 * "http:<model>". Changing it means every stored vector must be redone.
 * Borrowed. */
const char *cx_embed_model_id(const cx_embedder *e);

/* The dimension, or 0 while an http embedder has not yet learned it. */
int cx_embed_dim(const cx_embedder *e);

/* Makes sure the dimension is known, so that the caller can size `out`:
 * an http embedder configured with dim 0 sends one small request to learn
 * it. A no-op (0) when it is known. Errors as cx_embed_batch(). */
int cx_embed_probe(cx_embedder *e);

/* True when vectors are cheap enough to compute inside a write (builtin). */
bool cx_embed_is_local(const cx_embedder *e);

/* Embeds n texts (n ≤ CX_EMBED_MAX_BATCH; the http embedder splits into
 * requests of max_batch) into out[n * dim], each row L2-normalised.
 * A text with nothing to embed gives an all-zero row (similarity 0 with
 * everything): for the builtin, one without a letter or digit; for http,
 * an empty or whitespace-only one, which is not sent (several services
 * reject empty input).
 * Errors: CX_EINVAL for n > CX_EMBED_MAX_BATCH, a NULL text, or a dimension
 * not known yet (see cx_embed_probe()); CX_EBUSY while the circuit breaker
 * is open (fail fast, no network), CX_EIO for transport failures, timeouts
 * and non-2xx answers after the retries, CX_EFAIL for malformed answers
 * (wrong count or dimension, non-finite numbers), CX_ENOMEM. On failure the
 * contents of out are unspecified. The detail (cx_error_last()) never
 * contains the API key. */
int cx_embed_batch(cx_embedder *e, const char *const *texts, size_t n, float *out);

/* Cosine similarity of two L2-normalised vectors. */
float cx_embed_dot(const float *a, const float *b, int dim);
