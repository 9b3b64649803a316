/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP tools over the engine: argument extraction, the workspace rules
 * (paths stay inside it), token budgets, and one function per tool. */
#include "tools.h"

#include "proto/wire.h"
#include "search/search.h"
#include "sync.h"
#include "store/outbox.h"
#include "tools_table.h"
#include "sync/upstream.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/utf8.h"
#include "util/log.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What a tool runs against: the session's parts and the call's. */
struct cx_tool_env {
    cx_store *store;
    const cx_workspace *ws;
    cx_prov *prov;                 /* NULL: no provenance, nothing is stale */
    cx_embedder *query_embedder;   /* NULL: the store's built-in model */
    const char *default_subcortex; /* workspace.subcortex; NULL = the store's default */
    cx_actor actor;
    const char *protocol_version;
    cx_progress_fn progress;
    void *progress_ud;
};

/* The contract's limits are the engine's: a build where tools.json and the
 * engine disagree does not compile. */
_Static_assert(CX_TOOL_SEARCH_LIMIT_MAXIMUM == CX_SEARCH_MAX_LIMIT, "search.limit");
_Static_assert(CX_TOOL_SEARCH_QUERY_MAX_LENGTH == CX_SEARCH_MAX_QUERY, "search.query");
_Static_assert(CX_TOOL_OBSERVE_OBSERVATIONS_MAX_ITEMS == CX_STORE_MAX_BATCH, "observe batch");
/* one limit for a text, whoever records it (the CLI reads CX_STORE_MAX_TEXT) */
_Static_assert(CX_TOOL_OBSERVE_TEXT_MAX_LENGTH == CX_WIRE_MAX_BODY, "observe.text");
_Static_assert(CX_TOOL_OBSERVE_OBSERVATIONS_TEXT_MAX_LENGTH == CX_WIRE_MAX_BODY,
               "observe.observations[].text");
_Static_assert(CX_STORE_MAX_TEXT == CX_WIRE_MAX_BODY, "the CLI's text limit");
_Static_assert(CX_TOOL_OBSERVE_TITLE_MAX_LENGTH == CX_WIRE_MAX_TITLE, "observe.title");
_Static_assert(CX_TOOL_OBSERVE_TAGS_MAX_ITEMS == CX_WIRE_MAX_TAGS, "observe.tags");
_Static_assert(CX_TOOL_OBSERVE_SUBCORTEX_MAX_LENGTH == CX_WIRE_MAX_SUBCORTEX, "subcortex");
_Static_assert(CX_TOOL_OBSERVE_FILES_MAX_ITEMS == CX_WIRE_MAX_FILES, "observe.files");
_Static_assert(CX_TOOL_DRAFT_TITLE_MAX_LENGTH == CX_WIRE_MAX_TITLE, "draft.title");
_Static_assert(CX_TOOL_DRAFT_BODY_MAX_LENGTH == CX_WIRE_MAX_BODY, "draft.body");
_Static_assert(CX_TOOL_DRAFT_EVIDENCE_MAX_ITEMS == CX_WIRE_MAX_EVIDENCE, "draft.evidence");
_Static_assert(CX_TOOL_PUBLISH_NAME_MAX_LENGTH == CX_WIRE_MAX_TITLE, "publish.name");
_Static_assert(CX_TOOL_PUBLISH_CONTENT_MAX_LENGTH <= CX_WIRE_MAX_BLOB, "publish.content");
_Static_assert(CX_TOOL_PUBLISH_PATH_MAX_LENGTH == CX_WIRE_MAX_SOURCE_PATH, "publish.path");
_Static_assert(CX_TOOL_COMMENT_TARGET_ID_MAX_LENGTH == CX_WIRE_MAX_ID, "comment.target_id");
_Static_assert(CX_TOOL_SEARCH_MAX_TOKENS_DEFAULT == CX_STORE_DEFAULT_MAX_TOKENS, "search.max_tokens");
_Static_assert(CX_TOOL_RECENT_MAX_TOKENS_DEFAULT == CX_STORE_DEFAULT_MAX_TOKENS, "recent.max_tokens");

static json_t *defs;
static pthread_once_t defs_once = PTHREAD_ONCE_INIT;
/* each tool's name and definition, for cx_tools_find without hashing */
#define MAX_TOOLS 32
static struct {
    const char *name;
    const json_t *def;
} tool_index[MAX_TOOLS];
static size_t n_tools;

static void load_defs(void) {
    defs = json_loadb(cx_tools_json, cx_tools_json_len, 0, NULL);
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(defs, "tools"), i, t) {
        assert(n_tools < MAX_TOOLS);
        if (n_tools < MAX_TOOLS) {
            tool_index[n_tools].name = json_string_value(json_object_get(t, "name"));
            tool_index[n_tools++].def = t;
        }
    }
}

const json_t *cx_tools_definitions(void) {
    pthread_once(&defs_once, load_defs);
    return defs;
}

const json_t *cx_tools_find(const char *name) {
    pthread_once(&defs_once, load_defs);
    for (size_t i = 0; i < n_tools; i++)
        if (strcmp(tool_index[i].name, name) == 0)
            return tool_index[i].def;
    return NULL;
}

/* ---- argument helpers (arguments are already schema-valid) ------------ */

static const char *str_arg(const json_t *args, const char *key) {
    return json_string_value(json_object_get(args, key));
}

/* An integer argument, else its default from the tool's schema (one the
 * schema gives no default must be passed: a programmer error otherwise). */
static size_t int_arg(const cx_tool_def *def, const json_t *args, const char *key) {
    json_t *v = json_object_get(args, key);
    if (json_is_integer(v))
        return (size_t)json_integer_value(v);
    for (size_t i = 0; i < def->n_args; i++)
        if (strcmp(def->args[i].name, key) == 0) {
            assert(def->args[i].has_default);
            return (size_t)def->args[i].default_int;
        }
    assert(!"an argument the schema does not declare");
    return 0;
}

/* Borrows the strings of a JSON array into a malloc'd vector (free v.v). */
static int strv_arg(const json_t *args, const char *key, cx_strv *out) {
    json_t *a = json_object_get(args, key);
    out->v = NULL;
    out->n = 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    const char **v = calloc(json_array_size(a), sizeof *v);
    if (!v)
        return CX_ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) v[i] = json_string_value(e);
    out->v = v;
    out->n = json_array_size(a);
    return 0;
}

static void strv_free(cx_strv *s) {
    free((void *)s->v);
    s->v = NULL;
    s->n = 0;
}

/* Paths an item is about, made relative to the workspace when they point
 * inside it. The array holds new strings; free with files_free(). */
static int files_arg(const cx_tool_env *env, const json_t *args, cx_strv *out) {
    int r = strv_arg(args, "files", out);
    if (r || out->n == 0)
        return r;
    size_t rootlen = strlen(env->ws->root);
    for (size_t i = 0; i < out->n; i++) {
        const char *p = out->v[i];
        if (strncmp(p, env->ws->root, rootlen) == 0 && p[rootlen] == '/')
            p += rootlen + 1;
        while (p[0] == '.' && p[1] == '/')
            p += 2;
        ((const char **)out->v)[i] = strdup(p);
        if (!out->v[i])
            return CX_ENOMEM;
    }
    return 0;
}

static void files_free(cx_strv *s) {
    for (size_t i = 0; i < s->n; i++)
        free((void *)s->v[i]);
    strv_free(s);
}

/* ---- tools ---------------------------------------------------------------- */

static int fill_note(const cx_tool_env *env, const json_t *o, const char *body_key, cx_note *n) {
    memset(n, 0, sizeof *n);
    n->title = str_arg(o, "title");
    n->body = str_arg(o, body_key);
    n->subcortex = str_arg(o, "subcortex");
    if (!n->subcortex)
        n->subcortex = env->default_subcortex;
    n->visibility = str_arg(o, "visibility");
    int r = strv_arg(o, "tags", &n->tags);
    if (!r)
        r = files_arg(env, o, &n->files);
    if (!r)
        r = strv_arg(o, "evidence", &n->evidence);
    return r;
}

static void note_free(cx_note *n) {
    strv_free(&n->tags);
    files_free(&n->files);
    strv_free(&n->evidence);
    json_decref((json_t *)n->provenance);
    n->provenance = NULL;
}

/* Records where the note was made (remote, branch, HEAD, its files' blob
 * ids). Only a limit is the caller's problem; anything else costs the item
 * its provenance, not its recording. */
static int capture_provenance(const cx_tool_env *env, cx_note *n) {
    if (!env->prov)
        return 0;
    json_t *pv = NULL;
    int r = cx_prov_capture(env->prov, &n->files, &pv);
    if (r == CX_ELIMIT || r == CX_ENOMEM)
        return r;
    if (r != 0) {
        cx_log(CX_LOG_WARNING, "provenance not recorded: %s, ignoring", cx_error_last());
        return 0;
    }
    n->provenance = pv;
    return 0;
}


int cx_tools_run_observe(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                         json_t **out) {
    json_t *batch = json_object_get(args, "observations");
    bool single = json_object_get(args, "text") != NULL;
    if (single == (batch != NULL))
        return cx_error_set(CX_EINVAL, "give either `text` (one observation) or `observations` "
                                       "(a batch), not %s",
                            single ? "both" : "neither");
    size_t n = single ? 1 : json_array_size(batch);
    cx_note *notes = calloc(n, sizeof *notes);
    if (!notes)
        return CX_ENOMEM;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        r = fill_note(env, single ? args : json_array_get(batch, i), "text", &notes[i]);
        if (r == 0)
            r = capture_provenance(env, &notes[i]);
    }
    if (r == 0)
        r = cx_store_observe(env->store, &env->actor, notes, n, n > 1 ? env->progress : NULL,
                             env->progress_ud, out);
    for (size_t i = 0; i < n; i++)
        note_free(&notes[i]);
    free(notes);
    return r;
}

int cx_tools_run_draft(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                       json_t **out) {
    cx_note n;
    int r = fill_note(env, args, "body", &n);
    if (r == 0)
        r = capture_provenance(env, &n);
    if (r == 0)
        r = cx_store_draft(env->store, &env->actor, &n, out);
    note_free(&n);
    return r;
}

int cx_tools_run_comment(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                         json_t **out) {
    return cx_store_comment(env->store, &env->actor, str_arg(args, "target_id"),
                            str_arg(args, "body"), out);
}

int cx_tools_run_publish(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                         json_t **out) {
    const char *content = str_arg(args, "content");
    const char *path = str_arg(args, "path");
    if ((content != NULL) == (path != NULL))
        return cx_error_set(CX_EINVAL, "give either `content` or a workspace file `path`, not %s",
                            content ? "both" : "neither");
    cx_publish p = {.name = str_arg(args, "name"), .title = str_arg(args, "title"),
                    .subcortex = str_arg(args, "subcortex")};
    if (!p.subcortex)
        p.subcortex = env->default_subcortex;
    char *real = NULL, *data = NULL;
    int r = strv_arg(args, "tags", &p.tags);
    if (r)
        goto out;
    if (content) {
        p.data = content;
        p.len = strlen(content);
    } else {
        r = cx_fs_resolve_within(env->ws->root, path, &real);
        if (r)
            goto out;
        size_t sl = strlen(env->ws->state_dir);
        if (strncmp(real, env->ws->state_dir, sl) == 0 && (real[sl] == '/' || real[sl] == '\0')) {
            r = cx_error_set(CX_EINVAL, "'%s' is Cortex's own state; publish a project file", path);
            goto out;
        }
        size_t len = 0;
        r = cx_fs_read_file(real, CX_STORE_MAX_BLOB, &data, &len);
        if (r)
            goto out;
        p.data = data;
        p.len = len;
        size_t rl = strlen(env->ws->root);
        p.source_path = real[rl] == '/' ? real + rl + 1 : real;
    }
    r = cx_store_publish(env->store, &env->actor, &p, out);
out:
    strv_free(&p.tags);
    free(real);
    free(data);
    return r;
}

/* Cuts a string member to at most `max` bytes at a UTF-8 boundary. */
static bool cut_string(json_t *o, const char *key, size_t max) {
    const char *s = json_string_value(json_object_get(o, key));
    size_t n = s ? strlen(s) : 0;
    if (n <= max)
        return false;
    json_object_set_new(o, key, json_stringn(s, cx_utf8_cut(s, n, max)));
    return true;
}

int cx_tools_run_get(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                     json_t **out) {
    json_t *ids = json_object_get(args, "ids");
    size_t budget = cx_store_budget_bytes(int_arg(def, args, "max_tokens"));
    json_t *items = json_array(), *missing = json_array();
    bool truncated = false;
    int r = 0;
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        json_t *item = NULL;
        r = cx_store_get_ex(env->store, json_string_value(id), env->prov ? cx_prov_stale : NULL,
                            env->prov, &item);
        if (r == CX_ENOTFOUND) {
            json_array_append(missing, id);
            r = 0;
            continue;
        }
        if (r)
            goto out;
        json_array_append_new(items, item);
    }
    /* Share the budget evenly; cut bodies (and comments) that exceed it. */
    size_t n = json_array_size(items);
    if (n > 0) {
        size_t share = budget / n;
        json_t *item;
        json_array_foreach(items, i, item) {
            char *text = json_dumps(item, JSON_COMPACT);
            size_t len = text ? strlen(text) : 0;
            free(text);
            if (len <= share)
                continue;
            size_t body_max = share > 512 ? share - 512 : 256;
            json_t *comments = json_object_get(item, "comments");
            while (json_array_size(comments) > 3)
                json_array_remove(comments, 0); /* keep the newest three */
            cut_string(item, "body", body_max);
            json_object_set_new(item, "truncated", json_true());
            truncated = true;
        }
    }
    *out = json_pack("{s:o, s:o, s:b}", "items", items, "missing", missing, "truncated", truncated);
    return *out ? 0 : CX_ENOMEM;
out:
    json_decref(items);
    json_decref(missing);
    return r;
}

int cx_tools_run_search(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                        json_t **out) {
    cx_search_query q = {
        .text = str_arg(args, "query"),
        .embedder = env->query_embedder,
        .stale = env->prov ? cx_prov_stale : NULL,
        .stale_ud = env->prov,
        .kind = str_arg(args, "kind"),
        .status = str_arg(args, "status"),
        .subcortex = str_arg(args, "subcortex"),
        .limit = int_arg(def, args, "limit"),
        .max_tokens = int_arg(def, args, "max_tokens"),
        .explain = json_is_true(json_object_get(args, "explain")),
    };
    const char *mode = str_arg(args, "mode");
    int r = cx_search_mode_parse(mode ? mode : CX_TOOL_SEARCH_MODE_DEFAULT, &q.mode);
    if (r == 0)
        r = strv_arg(args, "tags", &q.tags);
    if (r == 0)
        r = cx_search_run(env->store, &q, out);
    strv_free(&q.tags);
    return r;
}

int cx_tools_run_recent(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                        json_t **out) {
    cx_recent_query q = {
        .since = str_arg(args, "since"),
        .kind = str_arg(args, "kind"),
        .subcortex = str_arg(args, "subcortex"),
        .limit = int_arg(def, args, "limit"),
        .max_tokens = int_arg(def, args, "max_tokens"),
        .stale = env->prov ? cx_prov_stale : NULL,
        .stale_ud = env->prov,
    };
    return cx_store_recent(env->store, &q, out);
}

/* The sync part of status: what the store recorded (cursor, backlog,
 * rejected ops, last push and pull, last error) and, when this process
 * runs the sync thread, its live state. */
static json_t *sync_status(const cx_tool_env *env) {
    cx_upstream *u = NULL;
    if (cx_upstream_read(env->ws->state_dir, &u) != 0)
        return json_pack("{s:s, s:n}", "state", "no upstream configured", "upstream");
    json_t *st = NULL;
    if (cx_outbox_state(env->store, &st) != 0 || !st)
        st = json_object();
    json_object_set_new(st, "upstream", json_string(u->url));
    json_object_set_new(st, "state", json_string("configured"));
    json_t *thread = cx_sync_state();
    if (thread)
        json_object_set_new(st, "this_process", thread);
    cx_upstream_free(u);
    return st;
}

int cx_tools_run_status(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                        json_t **out) {
    json_t *st = NULL;
    int r = cx_store_status(env->store, &st);
    if (r)
        return r;
    json_t *outbox = json_object_get(st, "outbox");
    *out = json_pack("{s:s, s:s, s:s*, s:O, s:O, s:o, s:{s:s, s:s, s:s, s:s}}", "workspace",
                     env->ws->root, "state_dir", env->ws->state_dir, "git_dir", env->ws->git_dir,
                     "store", st, "outbox", outbox ? outbox : json_object(), "sync",
                     sync_status(env), "versions", "cortexd", "0.1.0", "protocol",
                     env->protocol_version, "sqlite", cx_store_sqlite_version(), "jansson",
                     JANSSON_VERSION);
    json_decref(st);
    return *out ? 0 : CX_ENOMEM;
}

int cx_tools_session_open(cx_session **out, const cx_workspace *ws, const char *dir,
                          bool background_maintenance) {
    cx_session *s = NULL;
    int r = ws ? cx_session_open_ws(&s, ws, 0) : cx_session_open(&s, dir, CX_SESSION_CREATE);
    if (r != 0) {
        cx_log(CX_LOG_ERROR, "cannot set up the workspace: %s", cx_error_last());
        return r;
    }
    r = cx_session_add(s, CX_SESSION_STORE |
                              (background_maintenance ? CX_SESSION_DEFER_MAINT : 0u));
    if (r != 0) {
        cx_log(CX_LOG_ERROR, "cannot open the store in %s: %s", cx_session_workspace(s)->state_dir,
               cx_error_last());
        cx_session_free(s);
        return r;
    }
    /* Everything a search needs, prepared once: each part that fails
     * leaves a working, plainer server behind. */
    (void)cx_session_add(s, CX_SESSION_PROV | CX_SESSION_EMBED_QUERY);
    const char *why;
    if ((why = cx_session_problem(s, CX_SESSION_PROV)))
        cx_log(CX_LOG_WARNING, "provenance unavailable: %s, ignoring", why);
    if ((why = cx_session_problem(s, CX_SESSION_EMBED_QUERY)))
        cx_log(CX_LOG_WARNING, "%s; using the built-in embedder", why);
    (void)cx_search_warm_expect(cx_session_store(s)); /* cx_tools_session_warm follows */
    *out = s;
    return 0;
}

void cx_tools_session_warm(cx_session *s, cx_progress_fn between, void *ud) {
    int r = cx_search_warm_ex(cx_session_store(s), between, ud);
    if (r != 0 && r != CX_ECANCELED)
        cx_log(CX_LOG_WARNING, "vector index not loaded: %s, ignoring", cx_error_last());
}

int cx_tools_run(const char *name, const json_t *args, cx_session *session,
                 const cx_tool_call *call, json_t **out) {
    cx_tool_env env = {
        .store = cx_session_store(session),
        .ws = cx_session_workspace(session),
        .prov = cx_session_prov(session),
        .query_embedder = cx_session_embedder(session),
        .default_subcortex = cx_session_subcortex(session),
        .actor = cx_session_actor(session, call->agent),
        .protocol_version = call->protocol_version,
        .progress = call->progress,
        .progress_ud = call->progress_ud,
    };
    for (size_t i = 0; i < cx_tool_table_len; i++)
        if (strcmp(cx_tool_table[i].name, name) == 0)
            return cx_tool_table[i].run(&cx_tool_table[i], args, &env, out);
    return cx_error_set(CX_ENOTFOUND, "no tool named %s", name);
}
