/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace session (see session.h): workspace, config, store,
 * provenance, embedder and actor, each opened once, on request, in one
 * place for every sidecar program. */
#include "session.h"

#include "search/search.h"

#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUERY_EMBED_TIMEOUT_MS 2000 /* a search never waits longer on a model */

struct cx_session {
    cx_workspace *ws;
    cx_config cfg;
    bool cfg_tried, cfg_ok;
    cx_store *store;
    cx_prov *prov;
    bool prov_tried;
    cx_embedder *embedder;
    bool embed_tried, embed_set;
    char *author;
    char *problem_config, *problem_prov, *problem_embed;
};

static void note_problem(char **slot) {
    free(*slot);
    *slot = strdup(cx_error_code() ? cx_error_last() : "unknown error");
}

char *cx_session_author_name(void) {
    const char *env = getenv("CORTEX_AUTHOR");
    bool set = false;
    for (const char *p = env; p && *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\v' && *p != '\f')
            set = true;
    if (set)
        return strdup(env);
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name && *pw->pw_name)
        return strdup(pw->pw_name);
    char uid[32];
    snprintf(uid, sizeof uid, "uid-%lu", (unsigned long)getuid());
    return strdup(uid);
}

int cx_session_has_store(const cx_session *s) {
    char *db = cx_fs_join(s->ws->state_dir, "cortex.db");
    if (!db)
        return CX_ENOMEM;
    int ok = access(db, F_OK), e = errno;
    int r = 1;
    if (ok != 0 && (e == ENOENT || e == ENOTDIR))
        r = 0;
    else if (ok != 0)
        r = cx_error_set(CX_EIO, "cannot access %s: %s", db, strerror(e));
    free(db);
    return r;
}

static void load_config(cx_session *s) {
    if (s->cfg_tried)
        return;
    s->cfg_tried = true;
    cx_error_clear();
    if (cx_config_load(s->ws, &s->cfg) != 0) {
        note_problem(&s->problem_config); /* s->cfg is untouched: all defaults */
        cx_error_clear();
        return;
    }
    s->cfg_ok = true;
}

static void open_embedder(cx_session *s, bool for_queries) {
    if (s->embed_tried)
        return;
    s->embed_tried = true;
    load_config(s);
    if (!s->cfg_ok) {
        free(s->problem_embed);
        s->problem_embed = s->problem_config ? strdup(s->problem_config) : NULL;
        return;
    }
    cx_config c = s->cfg; /* shallow: only the timeout differs */
    if (for_queries && (c.embed_timeout_ms == 0 || c.embed_timeout_ms > QUERY_EMBED_TIMEOUT_MS))
        c.embed_timeout_ms = QUERY_EMBED_TIMEOUT_MS;
    cx_error_clear();
    if (cx_config_embedder(&c, &s->embedder, for_queries) != 0) {
        note_problem(&s->problem_embed);
        s->embedder = NULL;
        cx_error_clear();
    }
}

/* The embedder serves the store once both are there. */
static void bind_embedder(cx_session *s) {
    if (s->embed_set || !s->embedder || !s->store)
        return;
    s->embed_set = true;
    cx_error_clear();
    if (cx_store_set_embedder(s->store, s->embedder) != 0) {
        note_problem(&s->problem_embed);
        cx_embed_free(s->embedder);
        s->embedder = NULL;
        cx_error_clear();
    }
}

static int open_store(cx_session *s, unsigned flags) {
    if (s->store)
        return 0;
    if (flags & CX_SESSION_EXISTING) {
        int h = cx_session_has_store(s);
        if (h < 0)
            return h;
        if (h == 0)
            return cx_error_set(CX_ENOTFOUND, "no Cortex memory in %s yet", s->ws->root);
    }
    cx_error_clear();
    int r = cx_store_open(&s->store, s->ws->state_dir);
    if (r == 0 && (flags & CX_SESSION_DEFER_MAINT))
        r = cx_store_defer_maintenance(s->store);
    const char *ex = getenv("CORTEX_SEARCH_EXHAUSTIVE");
    if (r == 0 && ex && strcmp(ex, "1") == 0)
        r = cx_search_set_exhaustive(s->store, true);
    const char *mb = getenv("CORTEX_SEARCH_POSTINGS_MB");
    if (r == 0 && mb && *mb) {
        char *end;
        errno = 0;
        long v = strtol(mb, &end, 10);
        if (errno || *end || v < 0 || v > 4096)
            cx_log(CX_LOG_WARNING, "CORTEX_SEARCH_POSTINGS_MB=%.20s is not a number of "
                                   "megabytes from 0 to 4096; using the default", mb);
        else
            r = cx_search_set_postings_memory(s->store, (size_t)v << 20);
    }
    if (r != 0) {
        cx_store_free(s->store);
        s->store = NULL;
    }
    return r;
}

int cx_session_add(cx_session *s, unsigned flags) {
    int r = 0;
    if (flags & (CX_SESSION_CONFIG | CX_SESSION_EMBED_QUERY | CX_SESSION_EMBED_BACKGROUND))
        load_config(s);
    if ((flags & CX_SESSION_STORE) && (r = open_store(s, flags)) != 0)
        return r;
    if ((flags & CX_SESSION_PROV) && !s->prov_tried) {
        s->prov_tried = true;
        cx_error_clear();
        if (cx_prov_open(&s->prov, s->ws) != 0) {
            note_problem(&s->problem_prov);
            s->prov = NULL;
            cx_error_clear();
        }
    }
    if (flags & (CX_SESSION_EMBED_QUERY | CX_SESSION_EMBED_BACKGROUND))
        open_embedder(s, (flags & CX_SESSION_EMBED_QUERY) != 0);
    bind_embedder(s);
    return 0;
}

static int finish_open(cx_session **out, cx_session *s, unsigned flags) {
    int r = cx_session_add(s, flags);
    if (r != 0) {
        cx_session_free(s);
        return r;
    }
    *out = s;
    return 0;
}

int cx_session_open(cx_session **out, const char *start_dir, unsigned flags) {
    cx_session *s = calloc(1, sizeof *s);
    if (!s)
        return CX_ENOMEM;
    cx_error_clear();
    int r = cx_workspace_find(&s->ws, start_dir, (flags & CX_SESSION_CREATE) != 0);
    if (r != 0) {
        free(s);
        return r;
    }
    return finish_open(out, s, flags);
}

int cx_session_open_ws(cx_session **out, const cx_workspace *ws, unsigned flags) {
    cx_session *s = calloc(1, sizeof *s);
    if (!s)
        return CX_ENOMEM;
    if (cx_workspace_dup(&s->ws, ws) != 0) {
        free(s);
        return CX_ENOMEM;
    }
    return finish_open(out, s, flags);
}

void cx_session_free(cx_session *s) {
    if (!s)
        return;
    if (s->store && s->embed_set)
        cx_store_set_embedder(s->store, NULL);
    cx_store_free(s->store);
    cx_embed_free(s->embedder);
    cx_prov_free(s->prov);
    cx_config_clear(&s->cfg);
    cx_workspace_free(s->ws);
    free(s->author);
    free(s->problem_config);
    free(s->problem_prov);
    free(s->problem_embed);
    free(s);
}

const cx_workspace *cx_session_workspace(const cx_session *s) { return s ? s->ws : NULL; }
cx_store *cx_session_store(const cx_session *s) { return s ? s->store : NULL; }
cx_prov *cx_session_prov(const cx_session *s) { return s ? s->prov : NULL; }
cx_embedder *cx_session_embedder(const cx_session *s) { return s ? s->embedder : NULL; }

const cx_config *cx_session_config(const cx_session *s) {
    return s && s->cfg_ok ? &s->cfg : NULL;
}

const char *cx_session_problem(const cx_session *s, unsigned part) {
    switch (part) {
    case CX_SESSION_CONFIG: return s->problem_config;
    case CX_SESSION_PROV: return s->problem_prov;
    case CX_SESSION_EMBED_QUERY:
    case CX_SESSION_EMBED_BACKGROUND: return s->problem_embed;
    default: return NULL;
    }
}

const char *cx_session_subcortex(const cx_session *s) {
    return s && s->cfg_ok && s->cfg.subcortex && *s->cfg.subcortex ? s->cfg.subcortex : NULL;
}

cx_actor cx_session_actor(cx_session *s, const char *agent) {
    if (!s->author)
        s->author = cx_session_author_name();
    return (cx_actor){.author = s->author ? s->author : "unknown", .agent = agent};
}
