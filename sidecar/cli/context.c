/* SPDX-License-Identifier: Apache-2.0 */
/* What every command works in: the workspace session (opened on first
 * need), operands and stdin as note text, --file paths made
 * workspace-relative, --limit, and small JSON accessors. */
#include "cli.h"

#include "proto/wire.h"
#include "provenance.h"
#include "search/search.h"
#include "util/error.h"
#include "util/fsx.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cx_cli_jstr(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

long long cx_cli_jint(const json_t *o, const char *key, long long def) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

bool cx_cli_jtrue(const json_t *o, const char *key) {
    return json_is_true(json_object_get(o, key));
}

cx_strv cx_cli_strv(const strlist *l) {
    return (cx_strv){.v = (const char *const *)l->v, .n = l->n};
}

int cx_cli_print_json(const json_t *j) {
    if (json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
        return cx_cli_fail(RC_STORE, "cannot write JSON to standard output");
    fputc('\n', stdout);
    return RC_OK;
}

/* Joins operands with single spaces into a malloc'd string. */
char *cx_cli_join_words(const strlist *l) {
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        size_t k = strlen(l->v[i]);
        if (i > 0)
            *p++ = ' ';
        memcpy(p, l->v[i], k);
        p += k;
    }
    *p = '\0';
    return s;
}

bool cx_cli_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* Reads all of stdin, at most CX_STORE_MAX_TEXT bytes, into *out. */
int cx_cli_read_stdin(const char *what, const char *cmd, char **out) {
    size_t cap = CX_STORE_MAX_TEXT + 1, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return cx_cli_oom();
    for (;;) {
        size_t k = fread(buf + used, 1, cap - used, stdin);
        used += k;
        if (k == 0 || used == cap)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return cx_cli_fail(RC_STORE, "cannot read standard input: %s", strerror(errno));
    }
    if (used > CX_STORE_MAX_TEXT) {
        free(buf);
        return cx_cli_usage_error(cmd, "%s on standard input is larger than %u KiB, the limit for one text",
                           what, CX_STORE_MAX_TEXT / 1024);
    }
    if (memchr(buf, '\0', used)) {
        free(buf);
        return cx_cli_usage_error(cmd, "%s on standard input contains a NUL byte; it must be UTF-8 text", what);
    }
    buf[used] = '\0';
    *out = buf;
    return RC_OK;
}

/* The text of observe/draft: the operands joined, or stdin for "-". */
int cx_cli_operand_text(ctx *c, const char *what, char **out) {
    const strlist *pos = &c->a->pos;
    const char *cmd = c->cmd->name;
    char *text = NULL;
    int rc;
    if (pos->n == 0)
        return cx_cli_usage_error(cmd, "%s needs %s (or '-' to read it from standard input)", cmd, what);
    if (pos->n == 1 && strcmp(pos->v[0], "-") == 0) {
        rc = cx_cli_read_stdin(what, cmd, &text);
        if (rc != RC_OK)
            return rc;
    } else {
        text = cx_cli_join_words(pos);
        if (!text)
            return cx_cli_oom();
    }
    if (cx_cli_blank(text)) {
        free(text);
        return cx_cli_usage_error(cmd, "%s is empty; there is nothing to record", what);
    }
    *out = text;
    return RC_OK;
}

int cx_cli_parse_limit(const ctx *c, size_t *out) {
    const char *s = c->a->val[O_LIMIT];
    *out = 0;
    if (!s)
        return RC_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CX_SEARCH_MAX_LIMIT)
        return cx_cli_usage_error(c->cmd->name, "--limit wants a whole number from 1 to %d, not '%s'",
                           CX_SEARCH_MAX_LIMIT, s);
    *out = (size_t)v;
    return RC_OK;
}

bool cx_cli_known_kind(const char *k) {
    return cx_kind_parse(k) != CX_KIND_INVALID;
}

int cx_cli_find_workspace(ctx *c, bool create) {
    if (c->ws)
        return RC_OK;
    int r = cx_session_open(&c->session, c->a->val[O_WORKSPACE],
                            create ? CX_SESSION_CREATE : 0u);
    if (r < 0) {
        if (r == CX_ENOTFOUND && c->a->val[O_WORKSPACE])
            return cx_cli_fail(RC_STORE, "workspace %s does not exist", c->a->val[O_WORKSPACE]);
        return cx_cli_fail(RC_STORE, "cannot find the workspace: %s", cx_cli_engine_msg(r));
    }
    c->ws = cx_session_workspace(c->session);
    return RC_OK;
}

/* 1 when the workspace has a store, 0 when not, or a negative RC_ on error. */
int cx_cli_has_store(ctx *c) {
    int h = cx_session_has_store(c->session);
    if (h == CX_ENOMEM)
        return -cx_cli_oom();
    if (h < 0) {
        cx_cli_fail(RC_STORE, "%s", cx_error_last());
        return -RC_STORE;
    }
    return h;
}

/* Opens the workspace's store (and provenance: without it nothing reads
 * as stale). `create` is for commands that record something: they create
 * the state directory and database when missing. Without it, a workspace
 * that has no store yet is an error (exit 3) and nothing is created. */
int cx_cli_open_store(ctx *c, bool create) {
    int rc = cx_cli_find_workspace(c, create);
    if (rc != RC_OK)
        return rc;
    if (!create) {
        int h = cx_cli_has_store(c);
        if (h < 0)
            return -h;
        if (h == 0)
            return cx_cli_fail(RC_STORE,
                        "no Cortex memory in %s yet; run: cortex start",
                        c->ws->root);
    }
    int r = cx_session_add(c->session, CX_SESSION_PROV);
    if (r == 0)
        r = cx_session_add(c->session, CX_SESSION_STORE);
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot open the store in %s: %s", c->ws->state_dir, cx_cli_engine_msg(r));
    c->prov = cx_session_prov(c->session);
    c->store = cx_session_store(c->session);
    return RC_OK;
}

/* The subcortex for a new note: --subcortex, else the workspace's
 * (workspace.subcortex), else the store's default. */
const char *cx_cli_note_subcortex(ctx *c) {
    if (c->a->val[O_SUBCORTEX])
        return c->a->val[O_SUBCORTEX];
    if (!c->session)
        return NULL;
    (void)cx_session_add(c->session, CX_SESSION_CONFIG);
    cx_error_clear();
    return cx_session_subcortex(c->session);
}

/* Where a note is made: remote, branch, HEAD and its files' blob ids (NULL
 * outside git or when provenance is unavailable; a failure costs the note
 * its provenance, never its recording). */
json_t *cx_cli_capture_provenance(ctx *c, const cx_strv *files) {
    json_t *pv = NULL;
    if (c->prov && cx_prov_capture(c->prov, files, &pv) != 0)
        pv = NULL;
    return pv;
}

/* A --file argument as a workspace-relative path (malloc'd into *out). */
static int workspace_path(ctx *c, const char *path, char **out) {
    const char *root = c->ws->root;
    size_t n = strlen(root);
    char *cwd = NULL, *abs = NULL, *canon = NULL;
    int rc = RC_OK;
    if (path[0] == '\0')
        return cx_cli_usage_error(c->cmd->name, "--file wants a path");
    if (path[0] == '/') {
        abs = strdup(path);
    } else {
        cwd = getcwd(NULL, 0);
        bool inside = cwd && strncmp(cwd, root, n) == 0 && (cwd[n] == '/' || cwd[n] == '\0' || n == 1);
        abs = cx_fs_join(inside ? cwd : root, path);
    }
    if (!abs) {
        rc = cx_cli_oom();
        goto out;
    }
    cx_error_clear();
    int r = cx_fs_resolve_within(root, abs, &canon);
    if (r == CX_ENOTFOUND) {
        rc = cx_cli_usage_error(c->cmd->name, "--file %s: no such file", path);
        goto out;
    } else if (r == CX_EINVAL) {
        rc = cx_cli_usage_error(c->cmd->name, "--file %s is outside the workspace %s", path, root);
        goto out;
    } else if (r < 0) {
        rc = cx_cli_fail(RC_STORE, "--file %s: %s", path, cx_cli_engine_msg(r));
        goto out;
    }
    const char *rel = n == 1 ? canon + 1 : canon + n + (canon[n] == '/');
    if (*rel == '\0') {
        rc = cx_cli_usage_error(c->cmd->name, "--file %s is the workspace itself; name a file inside it", path);
        goto out;
    }
    *out = strdup(rel);
    if (!*out)
        rc = cx_cli_oom();
out:
    free(cwd);
    free(abs);
    free(canon);
    return rc;
}

/* Converts every --file to a workspace-relative path. `rel` gets malloc'd
 * strings the caller frees with free_strlist. */
int cx_cli_workspace_paths(ctx *c, strlist *rel) {
    const strlist *files = &c->a->files;
    rel->n = 0;
    rel->v = calloc(files->n + 1, sizeof *rel->v);
    if (!rel->v)
        return cx_cli_oom();
    for (size_t i = 0; i < files->n; i++) {
        char *p = NULL;
        int rc = workspace_path(c, files->v[i], &p);
        if (rc != RC_OK)
            return rc;
        rel->v[rel->n++] = p;
    }
    return RC_OK;
}

void cx_cli_free_strlist(strlist *l) {
    for (size_t i = 0; l->v && i < l->n; i++)
        free((char *)l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
