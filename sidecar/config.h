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
 *   [workspace]
 *     subcortex = myrepo               (where notes go when a call names no
 *                                       subcortex; `cortex start` writes the
 *                                       repository's name; default general)
 *     agents = claude,codex            (the agents `cortex start --agent`
 *                                       wired; `cortex doctor` checks them)
 *   [upstream]
 *     url = https://core.example:8443  (the team's cortex-core; `cortex start`
 *     caFile = /path/ca.pem             and `cortex remote set` write it and
 *                                       the sync engine's .cortex/upstream)
 *   [sync]
 *     intervalMs = 10000               (how often background sync pulls)
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
    bool embed_provider_set; /* embed.provider is in the file */
    char *subcortex;        /* workspace.subcortex, or NULL */
    char *agents;           /* workspace.agents: agents `cortex start` wired, e.g.
                             * "claude,codex"; or NULL */
    char *upstream_url;     /* upstream.url, or NULL */
    char *upstream_ca_file; /* upstream.caFile, or NULL */
    int sync_interval_ms;   /* sync.intervalMs, 0 = default */
} cx_config;

/* Reads the workspace's config into *out (every string malloc'd or NULL;
 * release with cx_config_clear). CX_EINVAL, naming the key, for a value that
 * is not understood, so a typo is reported rather than silently ignored. */
int cx_config_load(const cx_workspace *ws, cx_config *out);
void cx_config_clear(cx_config *c);

/* The subcortex for notes that name none: workspace.subcortex, else
 * "general". Borrowed from c or static. */
const char *cx_config_subcortex(const cx_config *c);

/* A subcortex name derived from a repository name: lower case, runs of
 * characters other than [a-z0-9._-] become one '-', trimmed, at most 64
 * bytes; "general" when nothing is left. Written to buf (>= 65 bytes). */
void cx_config_derive_subcortex(const char *repo_name, char *buf, size_t cap);

/* Sets string keys in the workspace config (creating the file), through
 * libgit2's config API: keys[i] = values[i] for i < n; a NULL value
 * deletes the key. Other keys and sections are kept. */
int cx_config_set(const cx_workspace *ws, const char *const *keys, const char *const *values,
                  size_t n);

/* The embedder the config selects for semantic search: *out = NULL for
 * "builtin" (the store's own), else a new http embedder (caller frees).
 * `for_queries` makes one that never retries (a search falls back to
 * keywords instead of waiting). CX_EINVAL when provider is http but url or
 * model is missing. */
int cx_config_embedder(const cx_config *c, cx_embedder **out, bool for_queries);
