/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace configuration: <workspace>/.cortex/config, in git-config
 * format, read with libgit2's config API. A missing file or key means the
 * default. Keys (case-insensitive, as in git):
 *
 *   [embed]
 *     provider = builtin | http        (default builtin)
 *     url = http://127.0.0.1:11434     (http: the OpenAI-compatible server)
 *     model = nomic-embed-text         (http: the model name it is sent)
 *     apiKeyEnv = OPENAI_API_KEY       (http: environment variable holding
 *                                       the key; never the key itself)
 *     dim = 768  timeoutMs = 10000  batch = 64  caFile = /path/ca.pem
 *     breakerCooldownMs = 30000        (how long to stop asking a failing
 *                                       service before trying again)
 */
#pragma once

#include "embed/embed.h"
#include "workspace.h"

typedef struct cx_config {
    char *embed_provider; /* "builtin" or "http" */
    char *embed_url;
    char *embed_model;
    char *embed_api_key_env;
    char *embed_ca_file;
    int embed_dim;
    int embed_timeout_ms;
    int embed_batch;
    int embed_breaker_cooldown_ms;
} cx_config;

/* Reads the workspace's config into *out (every string malloc'd or NULL;
 * release with cx_config_clear). CX_EINVAL, naming the key, for a value that
 * is not understood, so a typo is reported rather than silently ignored. */
int cx_config_load(const cx_workspace *ws, cx_config *out);
void cx_config_clear(cx_config *c);

/* The embedder the config selects for semantic search: *out = NULL for
 * "builtin" (the store's own), else a new http embedder (caller frees).
 * `for_queries` makes one that never retries (a search falls back to
 * keywords instead of waiting). CX_EINVAL when provider is http but url or
 * model is missing. */
int cx_config_embedder(const cx_config *c, cx_embedder **out, bool for_queries);
