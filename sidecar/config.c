/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the workspace configuration (git-config format, via libgit2). */
#include "config.h"

#include "gitlib.h"
#include "util/error.h"
#include "util/fsx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cx_config_clear(cx_config *c) {
    free(c->embed_provider);
    free(c->embed_url);
    free(c->embed_model);
    free(c->embed_api_key_env);
    free(c->embed_ca_file);
    free(c->subcortex);
    free(c->agents);
    free(c->upstream_url);
    free(c->upstream_ca_file);
    memset(c, 0, sizeof *c);
}

/* A string value, or NULL when the key is absent. */
static int get_str(const cx_git *git, git_config *cfg, const char *key, char **out) {
    git_config_entry *e = NULL;
    int rc = git->config_get_entry(&e, cfg, key);
    if (rc == GIT_ENOTFOUND)
        return 0;
    if (rc < 0)
        return cx_error_set(CX_EINVAL, "workspace config: cannot read %s: %s", key,
                            cx_git_error_message(git, "unreadable"));
    *out = strdup(e->value ? e->value : "");
    git->config_entry_free(e);
    return *out ? 0 : CX_ENOMEM;
}

static int get_int(const cx_git *git, git_config *cfg, const char *key, int lo, int hi, int *out) {
    char *s = NULL;
    int r = get_str(git, cfg, key, &s);
    if (r || !s)
        return r;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        r = cx_error_set(CX_EINVAL, "workspace config: %s = '%s' must be a number from %d to %d",
                         key, s, lo, hi);
    else
        *out = (int)v;
    free(s);
    return r;
}

int cx_config_load(const cx_workspace *ws, cx_config *out) {
    cx_config c = {0};
    git_config *cfg = NULL;
    int r = 0;
    char *path = cx_fs_join(ws->state_dir, "config");
    if (!path)
        return CX_ENOMEM;
    struct stat st;
    if (stat(path, &st) != 0)
        goto defaults; /* no file: every default */
    const cx_git *git = cx_git_get();
    if (!git) {
        r = cx_error_code();
        goto out;
    }
    if (git->config_open_ondisk(&cfg, path) < 0) {
        r = cx_error_set(CX_EINVAL, "workspace config %s: %s", path,
                         cx_git_error_message(git, "cannot be parsed"));
        goto out;
    }
    if ((r = get_str(git, cfg, "embed.provider", &c.embed_provider)) ||
        (r = get_str(git, cfg, "embed.url", &c.embed_url)) ||
        (r = get_str(git, cfg, "embed.model", &c.embed_model)) ||
        (r = get_str(git, cfg, "embed.apikeyenv", &c.embed_api_key_env)) ||
        (r = get_str(git, cfg, "embed.cafile", &c.embed_ca_file)) ||
        (r = get_int(git, cfg, "embed.dim", 1, CX_EMBED_MAX_DIM, &c.embed_dim)) ||
        (r = get_int(git, cfg, "embed.timeoutms", 100, 600000, &c.embed_timeout_ms)) ||
        (r = get_int(git, cfg, "embed.batch", 1, CX_EMBED_MAX_BATCH, &c.embed_batch)) ||
        (r = get_int(git, cfg, "embed.breakercooldownms", 100, 3600000,
                     &c.embed_breaker_cooldown_ms)) ||
        (r = get_str(git, cfg, "workspace.subcortex", &c.subcortex)) ||
        (r = get_str(git, cfg, "workspace.agents", &c.agents)) ||
        (r = get_str(git, cfg, "upstream.url", &c.upstream_url)) ||
        (r = get_str(git, cfg, "upstream.cafile", &c.upstream_ca_file)) ||
        (r = get_int(git, cfg, "sync.intervalms", 10, 3600000, &c.sync_interval_ms)))
        goto out;
defaults:
    c.embed_provider_set = c.embed_provider != NULL;
    if (!c.embed_provider && !(c.embed_provider = strdup("builtin"))) {
        r = CX_ENOMEM;
        goto out;
    }
    if (strcmp(c.embed_provider, "builtin") != 0 && strcmp(c.embed_provider, "http") != 0) {
        r = cx_error_set(CX_EINVAL,
                         "workspace config: embed.provider = '%s'; use builtin or http",
                         c.embed_provider);
        goto out;
    }
    if (c.subcortex && (!*c.subcortex || strlen(c.subcortex) > 64)) {
        r = cx_error_set(CX_EINVAL,
                         "workspace config: workspace.subcortex must be 1 to 64 bytes long");
        goto out;
    }
    *out = c;
    memset(&c, 0, sizeof c);
out:
    if (cfg)
        cx_git_get()->config_free(cfg);
    cx_config_clear(&c);
    free(path);
    return r;
}

int cx_config_embedder(const cx_config *c, cx_embedder **out, bool for_queries) {
    *out = NULL;
    if (!c->embed_provider || strcmp(c->embed_provider, "http") != 0)
        return 0;
    if (!c->embed_url || !*c->embed_url || !c->embed_model || !*c->embed_model)
        return cx_error_set(CX_EINVAL, "workspace config: embed.provider = http needs embed.url "
                                       "and embed.model");
    const char *key = c->embed_api_key_env ? getenv(c->embed_api_key_env) : NULL;
    cx_embed_http_config hc = {
        .base_url = c->embed_url,
        .model = c->embed_model,
        .api_key = key && *key ? key : NULL,
        .ca_file = c->embed_ca_file,
        .dim = c->embed_dim,
        .timeout_ms = c->embed_timeout_ms,
        .max_batch = c->embed_batch,
        .retries = for_queries ? -1 : 0,
        .breaker_cooldown_ms = c->embed_breaker_cooldown_ms,
    };
    return cx_embed_http_new(out, &hc);
}

const char *cx_config_subcortex(const cx_config *c) {
    return c && c->subcortex && *c->subcortex ? c->subcortex : "general";
}

void cx_config_derive_subcortex(const char *repo_name, char *buf, size_t cap) {
    size_t n = 0;
    bool dash = false;
    for (const char *p = repo_name ? repo_name : ""; *p && n + 1 < cap && n < 64; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-';
        if (!ok) {
            dash = n > 0;
            continue;
        }
        if (dash && n + 2 < cap && n < 63)
            buf[n++] = '-';
        dash = false;
        buf[n++] = ch;
    }
    while (n > 0 && (buf[n - 1] == '-' || buf[n - 1] == '.'))
        n--;
    buf[n] = '\0';
    if (n == 0)
        snprintf(buf, cap, "general");
}

int cx_config_set(const cx_workspace *ws, const char *const *keys, const char *const *values,
                  size_t n) {
    const cx_git *git = cx_git_get();
    if (!git)
        return cx_error_code();
    char *path = cx_fs_join(ws->state_dir, "config");
    if (!path)
        return CX_ENOMEM;
    git_config *cfg = NULL;
    int r = 0;
    if (git->config_open_ondisk(&cfg, path) < 0) {
        r = cx_error_set(CX_EINVAL, "workspace config %s: %s", path,
                         cx_git_error_message(git, "cannot be opened"));
        goto out;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        int rc;
        if (values[i]) {
            rc = git->config_set_string(cfg, keys[i], values[i]);
        } else {
            rc = git->config_delete_entry(cfg, keys[i]);
            if (rc == GIT_ENOTFOUND)
                rc = 0;
        }
        if (rc < 0)
            r = cx_error_set(CX_EIO, "workspace config %s: cannot set %s: %s", path, keys[i],
                             cx_git_error_message(git, "write failed"));
    }
out:
    if (cfg)
        git->config_free(cfg);
    free(path);
    return r;
}
