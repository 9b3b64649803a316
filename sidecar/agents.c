/* SPDX-License-Identifier: Apache-2.0 */
/* Coding agents' MCP configuration and Claude Code hooks: writing them for
 * `cortex start --agent` and checking them for `cortex doctor` (agents.h).
 *
 * Writing is planned first and done second: every file the agent needs is
 * read, parsed and its new text computed; only when all of them can be
 * done is anything written, and only the files whose content changes. JSON
 * files are merged as jansson values (insertion order is kept, so other
 * keys stay where they were) and compared with the original to decide
 * whether anything changed; the TOML file is edited as text around the
 * byte ranges toml.c reports, and the result is parsed again before it is
 * written. */
#include "agents.h"

#include "toml.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/utf8.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG (4u << 20) /* larger than any agent config we have seen */
#define SETTINGS ".claude/settings.json"
#define SESSION_MATCHER "startup|resume|clear|compact"
#define HOOK_TIMEOUT 10
#define NOTHING_CHANGED "fix or move it aside — nothing was changed"

static const char *const agent_names[CX_AGENT_COUNT] = {"claude", "codex", "cursor", "gemini"};
static const char *const agent_paths[CX_AGENT_COUNT] = {".mcp.json", ".codex/config.toml",
                                                        ".cursor/mcp.json", ".gemini/settings.json"};
static const char *const codex_table[] = {"mcp_servers", "cortex"};

int cx_agent_parse(const char *name, cx_agent_kind *out) {
    for (int k = 0; k < CX_AGENT_COUNT; k++)
        if (name && strcmp(name, agent_names[k]) == 0) {
            *out = (cx_agent_kind)k;
            return 0;
        }
    return cx_error_set(CX_EINVAL, "unknown agent '%s'; the agents are claude, codex, cursor and gemini",
                        name ? name : "");
}

const char *cx_agent_name(cx_agent_kind k) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    return agent_names[k];
}

void cx_agent_list_parse(const char *list, bool out[CX_AGENT_COUNT]) {
    for (int k = 0; k < CX_AGENT_COUNT; k++)
        out[k] = false;
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ", ");
        for (int k = 0; k < CX_AGENT_COUNT; k++) {
            const char *name = cx_agent_name((cx_agent_kind)k);
            if (n == strlen(name) && memcmp(p, name, n) == 0)
                out[k] = true;
        }
        p += n;
        p += strspn(p, ", ");
    }
}

const char *cx_agent_config_path(cx_agent_kind k) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    return agent_paths[k];
}

/* ---- small helpers ------------------------------------------------------- */

static int check_wiring(const cx_agent_wiring *w) {
    const char *what[] = {"workspace root", "cortexd path", "cortex path"};
    const char *path[] = {w->root, w->cortexd, w->cortex};
    for (int j = 0; j < 3; j++) {
        if (!path[j] || path[j][0] != '/')
            return cx_error_set(CX_EINVAL, "the %s must be an absolute path, not '%s'", what[j],
                                path[j] ? path[j] : "");
        if (!cx_utf8_valid(path[j], strlen(path[j])))
            return cx_error_set(CX_EINVAL, "the %s '%s' is not valid UTF-8; agents' configs cannot hold it",
                                what[j], path[j]);
    }
    return 0;
}

/* Same file or directory: equal strings, or equal after resolving symlinks. */
static bool same_path(const char *a, const char *b) {
    if (strcmp(a, b) == 0)
        return true;
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

static bool is_executable(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *cx_agent_on_path(const char *name) {
    const char *path = getenv("PATH");
    if (!name || !*name || strchr(name, '/') || !path)
        return NULL;
    for (const char *p = path;;) {
        size_t n = strcspn(p, ":");
        if (n > 0 && n < PATH_MAX) {
            char dir[PATH_MAX];
            memcpy(dir, p, n);
            dir[n] = '\0';
            char *cand = cx_fs_join(dir, name);
            if (cand && is_executable(cand)) {
                char *real = realpath(cand, NULL);
                free(cand);
                if (real)
                    return real;
            } else {
                free(cand);
            }
        }
        if (!p[n])
            return NULL;
        p += n + 1;
    }
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* File text being built in util's capped buffer, and the first error
 * appending to it (later appends are skipped, so a run of appends is
 * checked once). */
typedef struct text {
    cx_buf b;
    int err;
} text;

/* A command or TOML line: two quoted paths (PATH_MAX each, at most six
 * bytes per byte quoted) and a few words never come near it. */
#define MAX_LINE (64u << 10)

static void text_init(text *t, size_t max) {
    cx_buf_init(&t->b, max);
    t->err = 0;
}

static void put(text *t, const char *s, size_t n) {
    if (!t->err)
        t->err = cx_buf_add(&t->b, s, n);
}

static void puts_(text *t, const char *s) {
    put(t, s, strlen(s));
}

/* The text as a malloc'd string, or NULL (with t freed either way). */
static char *text_take(text *t) {
    char *s = t->err ? NULL : cx_buf_take(&t->b, NULL);
    cx_buf_free(&t->b);
    return s;
}

/* ---- files ---------------------------------------------------------------- */

/* One file to write: what it held, and what it should hold. */
typedef struct plan {
    const char *rel; /* relative to the root, for messages and the report */
    char *path;
    bool exists;
    mode_t mode;
    char *old;
    size_t oldlen;
    char *text; /* the new content, or NULL to leave the file as it is */
    size_t len;
    mode_t new_mode; /* for a new file; 0 = 0644 */
} plan;

static void plan_clear(plan *f) {
    free(f->path);
    free(f->old);
    free(f->text);
    memset(f, 0, sizeof *f);
}

static int plan_read(plan *f, const char *root, const char *rel) {
    memset(f, 0, sizeof *f);
    f->rel = rel;
    f->path = cx_fs_join(root, rel);
    if (!f->path)
        return CX_ENOMEM;
    int r = cx_fs_read_file(f->path, MAX_CONFIG, &f->old, &f->oldlen);
    if (r == CX_ENOTFOUND) {
        cx_error_clear();
        return 0;
    }
    if (r != 0)
        return r;
    struct stat st;
    if (stat(f->path, &st) != 0)
        return cx_error_set(CX_EIO, "cannot stat %s: %s", f->path, strerror(errno));
    f->exists = true;
    f->mode = st.st_mode & 07777;
    return 0;
}

static int plan_write(const plan *f) {
    if (!f->text)
        return 0;
    if (!f->exists) {
        char *dir = strdup(f->path);
        if (!dir)
            return CX_ENOMEM;
        char *slash = strrchr(dir, '/');
        int r = 0;
        if (slash && slash != dir) {
            *slash = '\0';
            r = cx_fs_mkdir_p(dir, 0755);
        }
        free(dir);
        if (r != 0)
            return r;
    }
    /* An existing file keeps its mode exactly (not less the umask) and a
     * symlink to it is written through, so the link stays. A path that is
     * not there (or a dangling link) gets a new 0644 file, as before. */
    return cx_fs_write_atomic_ex(f->path, f->text, f->len,
                                 f->exists ? f->mode : f->new_mode ? f->new_mode : 0644,
                                 f->exists ? CX_FS_THROUGH_SYMLINK | CX_FS_EXACT_MODE : 0);
}

/* ---- JSON ------------------------------------------------------------------ */

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static bool blank(const char *s, size_t n) {
    for (size_t j = 0; j < n; j++)
        if (s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r')
            return false;
    return true;
}

/* The file's JSON object (an empty one for a missing or blank file). On
 * CX_EINVAL, msg says why ("cannot parse X at line L, column C: …"). */
static int load_json(const plan *f, json_t **out, char *msg, size_t msgsize) {
    if (!f->exists || blank(f->old, f->oldlen)) {
        *out = json_object();
        return *out ? 0 : CX_ENOMEM;
    }
    json_error_t e;
    json_t *doc = json_loadb(f->old, f->oldlen,
                             JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!doc) {
        snprintf(msg, msgsize, "cannot parse %s at line %d, column %d: %s", f->rel, e.line, e.column,
                 e.text);
        return CX_EINVAL;
    }
    if (!json_is_object(doc)) {
        snprintf(msg, msgsize, "cannot parse %s: its top level is %s, not an object", f->rel,
                 type_name(doc));
        json_decref(doc);
        return CX_EINVAL;
    }
    *out = doc;
    return 0;
}

/* obj[key] as an object or array, added at the end when missing. */
static int member(json_t *obj, const char *key, json_type want, const char *rel, const char *label,
                  json_t **out, char *msg, size_t msgsize) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        v = want == JSON_OBJECT ? json_object() : json_array();
        if (!v || json_object_set_new(obj, key, v) != 0)
            return CX_ENOMEM;
    } else if (json_typeof(v) != want) {
        snprintf(msg, msgsize, "cannot parse %s: \"%s\" is %s, not %s", rel, label, type_name(v),
                 want == JSON_OBJECT ? "an object" : "an array");
        return CX_EINVAL;
    }
    *out = v;
    return 0;
}

/* The fewest significant digits that print d so that it reads back equal. */
static int real_digits(double d) {
    for (int p = 1; p < 17; p++) {
        char b[40];
        snprintf(b, sizeof b, "%.*g", p, d);
        if (strtod(b, NULL) == d)
            return p;
    }
    return 17;
}

static int max_real_digits(const json_t *v) {
    int m = 1;
    if (json_is_real(v))
        return real_digits(json_real_value(v));
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int d = max_real_digits(x);
            m = d > m ? d : m;
        }
    } else if (json_is_array(v)) {
        size_t j;
        json_t *x;
        json_array_foreach(v, j, x) {
            int d = max_real_digits(x);
            m = d > m ? d : m;
        }
    }
    return m;
}

/* Sets f->text to doc as the agents' files are written (indent 2, UTF-8,
 * trailing newline), unless the file exists and doc equals orig. Numbers
 * print with as few digits as read back exactly (0.1, not
 * 0.10000000000000001). */
static int finish_json(plan *f, json_t *doc, json_t *orig) {
    if (f->exists && json_equal(doc, orig))
        return 0;
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(max_real_digits(doc)));
    if (!s)
        return CX_ENOMEM;
    size_t n = strlen(s);
    cx_buf b;
    cx_buf_init(&b, n + 1); /* the document and its newline, exactly */
    int r = cx_buf_add(&b, s, n);
    free(s);
    if (r == 0)
        r = cx_buf_add(&b, "\n", 1);
    if (r == 0 && !(f->text = cx_buf_take(&b, &f->len)))
        r = CX_ENOMEM;
    cx_buf_free(&b);
    return r;
}

/* The command and arguments the cortex entry should name: plain `cortexd`
 * and none when the configs are to be shared, else the binary in use and
 * --workspace ROOT. */
static const char *want_command(const cx_agent_wiring *w) {
    return w->portable ? "cortexd" : w->cortexd;
}

static size_t want_args(const cx_agent_wiring *w, const char *out[2]) {
    if (w->portable)
        return 0;
    out[0] = "--workspace";
    out[1] = w->root;
    return 2;
}

/* The cortex server entry as this agent wants it: the binary in use with
 * --workspace ROOT (and Gemini's cwd), or, when the configs are shared,
 * plain `cortexd` with no arguments, started by the agent in the project
 * (where cortexd finds the workspace from its current directory). */
static json_t *server_entry(cx_agent_kind k, const cx_agent_wiring *w) {
    const char *a[2];
    size_t na = want_args(w, a);
    json_t *args = json_array();
    for (size_t j = 0; args && j < na; j++)
        if (json_array_append_new(args, json_string(a[j])) != 0) {
            json_decref(args);
            return NULL;
        }
    if (!args)
        return NULL;
    switch (k) {
    case CX_AGENT_CLAUDE:
        return json_pack("{s:s, s:s, s:o, s:{}}", "type", "stdio", "command", want_command(w), "args", args,
                         "env");
    case CX_AGENT_GEMINI:
        return w->portable ? json_pack("{s:s, s:o}", "command", want_command(w), "args", args)
                           : json_pack("{s:s, s:o, s:s}", "command", want_command(w), "args", args, "cwd",
                                       w->root);
    default:
        return json_pack("{s:s, s:o, s:{}}", "command", want_command(w), "args", args, "env");
    }
}

/* Puts `want` (stolen) into servers.cortex: a stale entry is updated in
 * place, keeping its position, its env and any key we do not set. Keys that
 * would make it an HTTP server are removed, and so is a cwd that a shared
 * entry does not name. */
static int merge_server(json_t *servers, json_t *want) {
    json_t *have = json_object_get(servers, "cortex");
    if (!json_is_object(have))
        return json_object_set_new(servers, "cortex", want) == 0 ? 0 : CX_ENOMEM;
    const char *key;
    json_t *v;
    int r = 0;
    json_object_foreach(want, key, v) {
        if (strcmp(key, "env") == 0 && json_is_object(json_object_get(have, "env")))
            continue;
        if (json_object_set(have, key, v) != 0) {
            r = CX_ENOMEM;
            break;
        }
    }
    json_object_del(have, "url");
    json_object_del(have, "httpUrl");
    json_object_del(have, "headers");
    if (json_array_size(json_object_get(have, "args")) == 0) /* shared: the agent's cwd */
        json_object_del(have, "cwd");
    json_decref(want);
    return r;
}

static int plan_mcp_json(plan *f, cx_agent_kind k, const cx_agent_wiring *w) {
    char msg[512];
    json_t *doc = NULL, *orig = NULL, *servers;
    int r = load_json(f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL)
        return cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r != 0)
        return r;
    orig = json_deep_copy(doc);
    if (!orig) {
        r = CX_ENOMEM;
        goto out;
    }
    r = member(doc, "mcpServers", JSON_OBJECT, f->rel, "mcpServers", &servers, msg, sizeof msg);
    if (r == CX_EINVAL)
        r = cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r != 0)
        goto out;
    json_t *want = server_entry(k, w);
    if (!want) {
        r = CX_ENOMEM;
        goto out;
    }
    r = merge_server(servers, want);
    if (r == 0)
        r = finish_json(f, doc, orig);
out:
    json_decref(doc);
    json_decref(orig);
    return r;
}

/* ---- Claude Code hooks -------------------------------------------------------- */

/* Splits a command line into words the way sh does for a simple command:
 * blanks separate words; '…', "…" and backslashes quote. Returns the number
 * of words (pointers into buf, which must hold strlen(s) + 1 bytes), or -1
 * when there are more than max or the line has an operator, a redirection,
 * command substitution or a comment: such a command does more than run
 * `cortex hook EVENT`. Parameters ($HOME/bin/cortex) and ~ are kept as
 * written; only the program's name matters to the callers. */
static int split_command(const char *s, char *bufp, char **words, int max) {
    int n = 0;
    char *o = bufp;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return -1;
        words[n++] = o;
        if (*s == '#')
            return -1;
        while (*s && *s != ' ' && *s != '\t') {
            char c = *s;
            if (c == '\'') {
                for (s++; *s && *s != '\''; s++)
                    *o++ = *s;
                if (!*s)
                    return -1;
                s++;
            } else if (c == '"') {
                for (s++; *s && *s != '"'; s++) {
                    if (*s == '`' || (*s == '$' && s[1] == '('))
                        return -1;
                    if (*s == '\\' && s[1] && strchr("\"\\$`", s[1]))
                        s++;
                    *o++ = *s;
                }
                if (!*s)
                    return -1;
                s++;
            } else if (c == '\\') {
                if (!s[1] || s[1] == '\n')
                    return -1;
                *o++ = s[1];
                s += 2;
            } else if (strchr("|&;<>()`\n", c))
                return -1;
            else
                *o++ = *s++;
        }
        *o++ = '\0';
    }
}

/* 1 when cmd is `<…/cortex> hook <event>` (with *prog, malloc'd, the
 * program when prog is not NULL), 0 when not, CX_ENOMEM. */
static int cortex_hook(const char *cmd, const char *event, char **prog) {
    char *b = malloc(strlen(cmd) + 1);
    if (!b)
        return CX_ENOMEM;
    char *words[4];
    int n = split_command(cmd, b, words, 4);
    int r = n == 3 && strcmp(base_name(words[0]), "cortex") == 0 && strcmp(words[1], "hook") == 0 &&
            strcmp(words[2], event) == 0;
    if (r && prog) {
        *prog = strdup(words[0]);
        if (!*prog)
            r = CX_ENOMEM;
    }
    free(b);
    return r;
}

/* 'path' for sh, with ' written as '\''. */
static char *shell_quote(const char *s) {
    text b;
    text_init(&b, MAX_LINE);
    put(&b, "'", 1);
    for (; *s; s++) {
        if (*s == '\'')
            put(&b, "'\\''", 4);
        else
            put(&b, s, 1);
    }
    put(&b, "'", 1);
    return text_take(&b);
}

static char *hook_command(const char *cortex, const char *event) {
    char *q = shell_quote(cortex);
    if (!q)
        return NULL;
    text b;
    text_init(&b, MAX_LINE);
    puts_(&b, q);
    puts_(&b, " hook ");
    puts_(&b, event);
    free(q);
    return text_take(&b);
}

/* Whether a matcher group's matcher (NULL when absent) runs its hooks for
 * every source `want` lists: absent, "", "*" or `want` itself. */
static bool covers_all(const json_t *m, const char *want) {
    const char *s = json_string_value(m);
    return !m || (s && (!*s || strcmp(s, "*") == 0 || strcmp(s, want) == 0));
}

/* Makes hooks[key] hold exactly one cortex hook for event: the first one
 * found is updated where it is, later ones removed (with their group when
 * it empties); with none, a new group is appended. With a matcher
 * (SessionStart), the hook's group must run it for every source. */
static int merge_hook(json_t *hooks, const char *key, const char *event, const char *matcher,
                      const char *cortex, const char *rel, char *msg, size_t msgsize) {
    char label[64];
    snprintf(label, sizeof label, "hooks.%s", key);
    json_t *groups;
    int r = member(hooks, key, JSON_ARRAY, rel, label, &groups, msg, msgsize);
    if (r != 0)
        return r;
    char *command = hook_command(cortex, event);
    if (!command)
        return CX_ENOMEM;
    json_t *found = NULL, *found_group = NULL;
    size_t found_gi = 0;
    for (size_t gi = 0; gi < json_array_size(groups);) {
        json_t *g = json_array_get(groups, gi);
        json_t *hs = json_object_get(g, "hooks");
        bool removed = false;
        for (size_t hi = 0; json_is_array(hs) && hi < json_array_size(hs);) {
            const char *cmd = json_string_value(json_object_get(json_array_get(hs, hi), "command"));
            int c = cmd ? cortex_hook(cmd, event, NULL) : 0;
            if (c < 0) {
                r = c;
                goto out;
            }
            if (c && found) {
                json_array_remove(hs, hi);
                removed = true;
                continue;
            }
            if (c) {
                found = json_array_get(hs, hi);
                found_group = g;
                found_gi = gi;
            }
            hi++;
        }
        if (removed && json_array_size(hs) == 0)
            json_array_remove(groups, gi);
        else
            gi++;
    }
    if (found) {
        if (json_object_set_new(found, "type", json_string("command")) != 0 ||
            json_object_set_new(found, "command", json_string(command)) != 0 ||
            json_object_set_new(found, "timeout", json_integer(HOOK_TIMEOUT)) != 0) {
            r = CX_ENOMEM;
            goto out;
        }
        if (!matcher || covers_all(json_object_get(found_group, "matcher"), matcher))
            goto out;
        json_t *hs = json_object_get(found_group, "hooks");
        if (json_array_size(hs) == 1) { /* a group of its own: set its matcher */
            if (json_object_set_new(found_group, "matcher", json_string(matcher)) != 0)
                r = CX_ENOMEM;
            goto out;
        }
        /* a group shared with other hooks under a narrower matcher: the
         * user's matcher stays, the cortex hook moves to a group of its own
         * right after it */
        size_t hi = 0;
        while (json_array_get(hs, hi) != found)
            hi++;
        json_t *own = json_pack("{s:s, s:[O]}", "matcher", matcher, "hooks", found);
        if (!own || json_array_insert_new(groups, found_gi + 1, own) != 0 || json_array_remove(hs, hi) != 0)
            r = CX_ENOMEM;
        goto out;
    }
    json_t *g = matcher ? json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "matcher", matcher, "hooks", "type",
                                    "command", "command", command, "timeout", HOOK_TIMEOUT)
                        : json_pack("{s:[{s:s, s:s, s:i}]}", "hooks", "type", "command", "command",
                                    command, "timeout", HOOK_TIMEOUT);
    if (!g || json_array_append_new(groups, g) != 0)
        r = CX_ENOMEM;
out:
    free(command);
    return r;
}

/* The program Claude Code's hooks run: plain `cortex` in the shared form
 * when `cortex` on PATH is w->cortex, else its absolute path. */
static bool hook_bare(const cx_agent_wiring *w) {
    if (!w->portable)
        return false;
    char *found = cx_agent_on_path("cortex");
    bool same = found && same_path(found, w->cortex);
    free(found);
    return same;
}

static int plan_settings(plan *f, const cx_agent_wiring *w) {
    const char *prog = hook_bare(w) ? "cortex" : w->cortex;
    char msg[512];
    json_t *doc = NULL, *orig = NULL, *hooks;
    int r = load_json(f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL)
        return cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r != 0)
        return r;
    orig = json_deep_copy(doc);
    if (!orig) {
        r = CX_ENOMEM;
        goto out;
    }
    r = member(doc, "hooks", JSON_OBJECT, f->rel, "hooks", &hooks, msg, sizeof msg);
    if (r == 0)
        r = merge_hook(hooks, "SessionStart", "session-start", SESSION_MATCHER, prog, f->rel, msg,
                       sizeof msg);
    if (r == 0)
        r = merge_hook(hooks, "Stop", "stop", NULL, prog, f->rel, msg, sizeof msg);
    if (r == CX_EINVAL)
        r = cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r == 0)
        r = finish_json(f, doc, orig);
out:
    json_decref(doc);
    json_decref(orig);
    return r;
}

/* ---- TOML (Codex) ----------------------------------------------------------------- */

/* Whether the table already holds exactly the wanted command and args. */
static bool codex_matches(const cx_toml_table *t, const void *arg) {
    const cx_agent_wiring *w = arg;
    const char *cmd, *want[2];
    const char *const *args;
    size_t n, nw = want_args(w, want);
    if (cx_toml_table_string(t, "command", &cmd) != 0 || strcmp(cmd, want_command(w)) != 0 ||
        cx_toml_table_strings(t, "args", &args, &n) != 0 || n != nw)
        return false;
    for (size_t j = 0; j < n; j++)
        if (strcmp(args[j], want[j]) != 0)
            return false;
    return true;
}

static int toml_parse_error(const plan *f, const cx_toml_error *e, char *msg, size_t msgsize) {
    snprintf(msg, msgsize, "cannot parse %s at line %d, column %d: %s", f->rel, e->line, e->column,
             e->message);
    return CX_EINVAL;
}

typedef struct edit {
    size_t start, end;
    const char *text;
} edit;

#define MAX_TOML_KEYS 2

/* One table of a TOML file to bring to a state: `name` for messages
 * ("mcp_servers.cortex"), its key path, its header line without the line
 * end, the keys to set and their `key = value` lines without the line end,
 * and whether a table already is as wanted. */
typedef struct toml_want {
    const char *name;
    const char *const *path;
    size_t depth;
    const char *header;
    size_t nkeys;
    const char *keys[MAX_TOML_KEYS];
    const char *lines[MAX_TOML_KEYS];
    bool (*matches)(const cx_toml_table *t, const void *arg);
    const void *arg;
} toml_want;

/* Sets f->text to the file with the table as wanted: the lines for its keys
 * replaced where they are, missing ones added right after its header, or a
 * new table at the end; every other byte kept. Leaves f->text NULL when the
 * table already matches. */
static int plan_toml(plan *f, const toml_want *tw) {
    const char *doc = f->exists ? f->old : "";
    size_t len = f->exists ? f->oldlen : 0;
    cx_toml_table *t = NULL, *check = NULL;
    cx_toml_error e;
    text lines, kl[MAX_TOML_KEYS], out;
    text_init(&lines, MAX_LINE);
    for (size_t j = 0; j < MAX_TOML_KEYS; j++)
        text_init(&kl[j], MAX_LINE);
    text_init(&out, 2 * (size_t)MAX_CONFIG); /* the file read (<= MAX_CONFIG) and our lines */
    char msg[512];
    int r = cx_toml_find(doc, len, tw->path, tw->depth, &t, &e);
    if (r == CX_EINVAL) {
        toml_parse_error(f, &e, msg, sizeof msg);
        r = cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
        goto out;
    }
    if (r != 0)
        goto out;
    cx_toml_form form = cx_toml_table_form(t);
    if (form == CX_TOML_OTHER) {
        r = cx_error_set(CX_EINVAL,
                         "cannot edit %s: %s is defined as %s; rewrite it as a "
                         "%s table or move the file aside — nothing was changed",
                         f->rel, tw->name, cx_toml_table_how(t), tw->header);
        goto out;
    }
    if (form == CX_TOML_TABLE && tw->matches(t, tw->arg))
        goto out; /* unchanged */

    const char *nl = "\n"; /* new lines end like the file's first line */
    const char *lf = memchr(doc, '\n', len);
    if (lf && lf > doc && lf[-1] == '\r')
        nl = "\r\n";
    for (size_t j = 0; j < tw->nkeys; j++) {
        puts_(&kl[j], tw->lines[j]);
        puts_(&kl[j], nl);
        if ((r = kl[j].err) != 0)
            goto out;
    }

    if (form == CX_TOML_TABLE) {
        /* replace the key lines where they are; add missing ones right
         * after the header */
        size_t body = 0, s[MAX_TOML_KEYS], en[MAX_TOML_KEYS];
        edit ed[MAX_TOML_KEYS + 1];
        size_t ned = 0;
        bool missing = false;
        cx_toml_table_range(t, NULL, &body, NULL);
        for (size_t j = 0; j < tw->nkeys; j++) {
            int q = cx_toml_table_key_span(t, tw->keys[j], &s[j], &en[j]);
            if (q == CX_EINVAL) {
                r = cx_error_set(CX_EINVAL,
                                 "cannot edit %s: %s in %s is defined with dotted keys "
                                 "or as a table; " NOTHING_CHANGED,
                                 f->rel, tw->keys[j], tw->header);
                goto out;
            }
            if (q == CX_ENOTFOUND) {
                s[j] = en[j] = SIZE_MAX;
                puts_(&lines, cx_buf_str(&kl[j].b));
                missing = true;
            }
        }
        if ((r = lines.err) != 0)
            goto out;
        if (missing)
            ed[ned++] = (edit){body, body, lines.b.data};
        for (size_t j = 0; j < tw->nkeys; j++)
            if (s[j] != SIZE_MAX)
                ed[ned++] = (edit){s[j], en[j], kl[j].b.data};
        for (size_t a = 0; a < ned; a++) /* by position; at most three */
            for (size_t b = a + 1; b < ned; b++)
                if (ed[b].start < ed[a].start) {
                    edit tmp = ed[a];
                    ed[a] = ed[b];
                    ed[b] = tmp;
                }
        size_t at = 0;
        for (size_t a = 0; a < ned; a++) {
            put(&out, doc + at, ed[a].start - at);
            puts_(&out, ed[a].text ? ed[a].text : "");
            at = ed[a].end;
        }
        put(&out, doc + at, len - at);
    } else {
        /* a new block at the end, after a blank line */
        put(&out, doc, len);
        if (len > 0 && doc[len - 1] != '\n')
            puts_(&out, nl);
        if (len > 0)
            puts_(&out, nl);
        puts_(&out, tw->header);
        puts_(&out, nl);
        for (size_t j = 0; j < tw->nkeys; j++)
            puts_(&out, cx_buf_str(&kl[j].b));
    }
    if ((r = out.err) != 0)
        goto out;
    /* what is written must read back as wanted */
    r = cx_toml_find(cx_buf_str(&out.b), out.b.len, tw->path, tw->depth, &check, &e);
    if (r == CX_EINVAL ||
        (r == 0 && (cx_toml_table_form(check) != CX_TOML_TABLE || !tw->matches(check, tw->arg)))) {
        r = cx_error_set(CX_EFAIL, "the edited %s would not read back as written (%s); nothing was changed",
                         f->rel, r ? e.message : "the entry differs");
        goto out;
    }
    if (r != 0)
        goto out;
    if (!(f->text = cx_buf_take(&out.b, &f->len)))
        r = CX_ENOMEM;
out:
    cx_toml_table_free(t);
    cx_toml_table_free(check);
    cx_buf_free(&lines.b);
    for (size_t j = 0; j < MAX_TOML_KEYS; j++)
        cx_buf_free(&kl[j].b);
    cx_buf_free(&out.b);
    return r;
}

static int plan_codex(plan *f, const cx_agent_wiring *w) {
    char *qcmd = NULL, *qroot = NULL;
    text cmd_line, args_line;
    text_init(&cmd_line, MAX_LINE);
    text_init(&args_line, MAX_LINE);
    const char *cmd = want_command(w);
    int r;
    if ((r = cx_toml_quote(cmd, strlen(cmd), &qcmd)) != 0 ||
        (r = cx_toml_quote(w->root, strlen(w->root), &qroot)) != 0)
        goto out;
    puts_(&cmd_line, "command = ");
    puts_(&cmd_line, qcmd);
    if (w->portable) {
        puts_(&args_line, "args = []");
    } else {
        puts_(&args_line, "args = [\"--workspace\", ");
        puts_(&args_line, qroot);
        puts_(&args_line, "]");
    }
    if ((r = cmd_line.err) != 0 || (r = args_line.err) != 0)
        goto out;
    toml_want tw = {.name = "mcp_servers.cortex", .path = codex_table, .depth = 2,
                    .header = "[mcp_servers.cortex]", .nkeys = 2, .keys = {"command", "args"},
                    .lines = {cx_buf_str(&cmd_line.b), cx_buf_str(&args_line.b)},
                    .matches = codex_matches, .arg = w};
    r = plan_toml(f, &tw);
out:
    free(qcmd);
    free(qroot);
    cx_buf_free(&cmd_line.b);
    cx_buf_free(&args_line.b);
    return r;
}

/* ---- wire ------------------------------------------------------------------------ */

int cx_agent_wire(cx_agent_kind k, const cx_agent_wiring *w, json_t **report) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    plan plans[2];
    size_t np = 0;
    json_t *rep = NULL;
    memset(plans, 0, sizeof plans);
    int r = check_wiring(w);
    if (r != 0)
        return r;
    if (!cx_fs_is_dir(w->root))
        return cx_error_set(CX_ENOTFOUND, "the workspace %s does not exist", w->root);

    np = 1;
    r = plan_read(&plans[0], w->root, agent_paths[k]);
    if (r != 0)
        goto out;
    switch (k) {
    case CX_AGENT_CODEX:
        r = plan_codex(&plans[0], w);
        break;
    case CX_AGENT_CLAUDE:
        r = plan_mcp_json(&plans[0], k, w);
        if (r == 0) {
            np = 2;
            r = plan_read(&plans[1], w->root, SETTINGS);
        }
        if (r == 0)
            r = plan_settings(&plans[1], w);
        break;
    default:
        r = plan_mcp_json(&plans[0], k, w);
        break;
    }
    if (r != 0)
        goto out;

    json_t *files = json_array();
    rep = json_pack("{s:s, s:o}", "agent", agent_names[k], "files", files);
    if (!rep) {
        r = CX_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < np; j++) {
        const char *action = !plans[j].exists ? "created" : plans[j].text ? "updated" : "unchanged";
        if (json_array_append_new(files, json_pack("{s:s, s:s}", "path", plans[j].rel, "action", action)) != 0) {
            r = CX_ENOMEM;
            goto out;
        }
    }
    for (size_t j = 0; j < np; j++)
        if ((r = plan_write(&plans[j])) != 0)
            goto out;
    *report = rep;
    rep = NULL;
out:
    json_decref(rep);
    for (size_t j = 0; j < np; j++)
        plan_clear(&plans[j]);
    return r;
}

/* ---- check ------------------------------------------------------------------------- */

static json_t *new_check(const char *name, const char *rel) {
    return json_pack("{s:s, s:s, s:b}", "name", name, "path", rel, "ok", 1);
}

/* Marks check c as failed with a problem and a fix (each one line). */
static int problem(json_t *c, const char *fix, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int problem(json_t *c, const char *fix, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[cx_utf8_valid_prefix(msg, strlen(msg))] = '\0'; /* a cut may split a character */
    for (char *s = msg; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
    if (json_object_set_new(c, "ok", json_false()) != 0 ||
        json_object_set_new(c, "problem", json_string(msg)) != 0 ||
        json_object_set_new(c, "fix", json_string(fix)) != 0)
        return CX_ENOMEM;
    return 0;
}

/* Reads a file for a check; 1 when it is there, 0 when a problem was
 * recorded, CX_ENOMEM. */
static int check_read(json_t *c, plan *f, const char *root, const char *rel, const char *fix,
                      const char *missing) {
    int r = plan_read(f, root, rel);
    if (r == CX_ENOMEM)
        return r;
    if (r != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", cx_error_last());
        return problem(c, fix, "cannot read %s: %s", rel, why);
    }
    if (!f->exists)
        return problem(c, fix, "%s does not exist%s", rel, missing);
    return 1;
}

static int check_server(json_t *c, const cx_agent_wiring *w, const char *fix, const char *command,
                        const char *const *args, size_t nargs) {
    if (!command)
        return problem(c, fix, "the cortex server entry has no command");
    bool bare = !strchr(command, '/');
    if (bare) {
        /* a shared config: the agent finds the command on its PATH */
        char *found = cx_agent_on_path(command);
        if (!found) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", w->cortexd);
            char *slash = strrchr(dir, '/');
            if (slash)
                *slash = '\0';
            char fixp[PATH_MAX + 96];
            snprintf(fixp, sizeof fixp, "put %s on PATH (where the agent runs), or %s", dir, fix);
            return problem(c, fixp, "the cortex server runs `%s`, which is not on PATH", command);
        }
        bool same = same_path(found, w->cortexd);
        int r = same ? 0 : problem(c, fix, "the cortex server runs `%s`, which on PATH is %s, not %s",
                                   command, found, w->cortexd);
        free(found);
        if (r != 0 || !same)
            return r;
    } else if (!same_path(command, w->cortexd)) {
        return problem(c, fix, "the cortex server runs %s, not %s", command, w->cortexd);
    }
    if (!is_executable(w->cortexd))
        return problem(c, "reinstall cortex: its MCP server cortexd belongs there",
                       "%s is missing or not an executable file", w->cortexd);
    size_t j = 0;
    while (j < nargs && strcmp(args[j], "--workspace") != 0)
        j++;
    if (j < nargs && j + 1 >= nargs)
        return problem(c, fix, "the cortex server is given --workspace with no directory");
    if (j + 1 >= nargs) {
        /* no --workspace: the agent starts cortexd in the project, where it
         * finds the workspace (the shared form); an absolute command
         * without it was not written by cortex start */
        if (bare)
            return 0;
        return problem(c, fix, "the cortex server is not given --workspace %s", w->root);
    }
    if (!same_path(args[j + 1], w->root))
        return problem(c, fix, "the cortex server serves the workspace %s, not %s", args[j + 1], w->root);
    return 0;
}

static int check_mcp_json(json_t *c, cx_agent_kind k, const cx_agent_wiring *w, const char *fix) {
    plan f;
    json_t *doc = NULL;
    const char **args = NULL;
    char msg[512], fixp[256];
    int r = check_read(c, &f, w->root, agent_paths[k], fix, "");
    if (r != 1)
        goto out;
    r = load_json(&f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL) {
        snprintf(fixp, sizeof fixp, "fix or move %s aside, then %s", f.rel, fix);
        r = problem(c, fixp, "%s", msg);
        goto out;
    }
    if (r != 0)
        goto out;
    json_t *servers = json_object_get(doc, "mcpServers");
    json_t *e = json_object_get(servers, "cortex");
    if (!json_is_object(servers) || !e) {
        r = problem(c, fix, "%s has no \"cortex\" entry in mcpServers", f.rel);
        goto out;
    }
    if (!json_is_object(e)) {
        r = problem(c, fix, "the cortex entry in %s is %s, not an object", f.rel, type_name(e));
        goto out;
    }
    const char *type = json_string_value(json_object_get(e, "type"));
    if (k == CX_AGENT_CLAUDE && json_object_get(e, "type") && (!type || strcmp(type, "stdio") != 0)) {
        r = problem(c, fix, "the cortex server's type in %s is not \"stdio\"", f.rel);
        goto out;
    }
    json_t *a = json_object_get(e, "args");
    size_t n = json_array_size(a);
    args = calloc(n + 1, sizeof *args);
    if (!args) {
        r = CX_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < n; j++)
        if (!(args[j] = json_string_value(json_array_get(a, j)))) {
            r = problem(c, fix, "the cortex server's args in %s are not all strings", f.rel);
            goto out;
        }
    r = check_server(c, w, fix, json_string_value(json_object_get(e, "command")), args, n);
out:
    free(args);
    json_decref(doc);
    plan_clear(&f);
    return r < 0 ? r : 0;
}

static int check_codex(json_t *c, const cx_agent_wiring *w, const char *fix) {
    plan f;
    cx_toml_table *t = NULL;
    cx_toml_error e;
    char msg[512], fixp[256];
    int r = check_read(c, &f, w->root, agent_paths[CX_AGENT_CODEX], fix, "");
    if (r != 1)
        goto out;
    r = cx_toml_find(f.old, f.oldlen, codex_table, 2, &t, &e);
    if (r == CX_EINVAL) {
        toml_parse_error(&f, &e, msg, sizeof msg);
        snprintf(fixp, sizeof fixp, "fix or move %s aside, then %s", f.rel, fix);
        r = problem(c, fixp, "%s", msg);
        goto out;
    }
    if (r != 0)
        goto out;
    switch (cx_toml_table_form(t)) {
    case CX_TOML_OTHER:
        snprintf(fixp, sizeof fixp, "rewrite it as a [mcp_servers.cortex] table, then %s", fix);
        r = problem(c, fixp, "mcp_servers.cortex in %s is defined as %s, which cortex cannot update",
                    f.rel, cx_toml_table_how(t));
        goto out;
    case CX_TOML_ABSENT:
    case CX_TOML_IMPLICIT:
        r = problem(c, fix, "%s has no [mcp_servers.cortex] table", f.rel);
        goto out;
    case CX_TOML_TABLE:
        break;
    }
    const char *cmd = NULL;
    const char *const *args = NULL;
    size_t n = 0;
    int q = cx_toml_table_string(t, "command", &cmd);
    if (q == CX_EINVAL) {
        r = problem(c, fix, "command in [mcp_servers.cortex] of %s is not a string", f.rel);
        goto out;
    }
    q = cx_toml_table_strings(t, "args", &args, &n);
    if (q == CX_EINVAL) {
        r = problem(c, fix, "args in [mcp_servers.cortex] of %s is not an array of strings", f.rel);
        goto out;
    }
    r = check_server(c, w, fix, cmd, args, n);
out:
    cx_toml_table_free(t);
    plan_clear(&f);
    return r < 0 ? r : 0;
}

static int check_hooks(json_t *c, const cx_agent_wiring *w, const char *fix) {
    static const char *const keys[] = {"SessionStart", "Stop"};
    static const char *const events[] = {"session-start", "stop"};
    plan f;
    json_t *doc = NULL;
    char *prog = NULL;
    char msg[512], fixp[256];
    int r = check_read(c, &f, w->root, SETTINGS, fix, ", so Claude Code runs no cortex hooks");
    if (r != 1)
        goto out;
    r = load_json(&f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL) {
        snprintf(fixp, sizeof fixp, "fix or move %s aside, then %s", f.rel, fix);
        r = problem(c, fixp, "%s", msg);
        goto out;
    }
    if (r != 0)
        goto out;
    json_t *hooks = json_object_get(doc, "hooks");
    for (int j = 0; j < 2; j++) {
        json_t *groups = json_object_get(hooks, keys[j]), *g, *group = NULL;
        r = 0;
        size_t gi;
        json_array_foreach(groups, gi, g) {
            json_t *hs = json_object_get(g, "hooks"), *h;
            size_t hi;
            json_array_foreach(hs, hi, h) {
                const char *cmd = json_string_value(json_object_get(h, "command"));
                r = cmd ? cortex_hook(cmd, events[j], &prog) : 0;
                if (r != 0)
                    break;
            }
            if (r != 0) {
                group = g;
                break;
            }
        }
        if (r < 0)
            goto out;
        if (!prog) {
            r = problem(c, fix, "no cortex %s hook in %s", keys[j], f.rel);
            goto out;
        }
        if (!strchr(prog, '/')) { /* the shared form: found on PATH */
            char *found = cx_agent_on_path(prog);
            bool same = found && same_path(found, w->cortex);
            if (!same)
                r = found ? problem(c, fix, "the %s hook runs `%s`, which on PATH is %s, not %s", keys[j], prog,
                                    found, w->cortex)
                          : problem(c, fix, "the %s hook runs `%s`, which is not on PATH", keys[j], prog);
            free(found);
            if (!same)
                goto out;
        } else if (!same_path(prog, w->cortex)) {
            r = problem(c, fix, "the %s hook runs %s, not %s", keys[j], prog, w->cortex);
            goto out;
        }
        json_t *m = json_object_get(group, "matcher");
        if (j == 0 && !covers_all(m, SESSION_MATCHER)) {
            r = problem(c, fix, "the cortex SessionStart hook runs only for the matcher '%s', not for "
                        "every source (" SESSION_MATCHER ")",
                        json_is_string(m) ? json_string_value(m) : "(not a string)");
            goto out;
        }
        free(prog);
        prog = NULL;
    }
    r = 0;
    if (!is_executable(w->cortex))
        r = problem(c, "reinstall cortex", "%s is missing or not an executable file", w->cortex);
out:
    free(prog);
    json_decref(doc);
    plan_clear(&f);
    return r < 0 ? r : 0;
}

int cx_agent_check(cx_agent_kind k, const cx_agent_wiring *w, json_t **out) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    int r = check_wiring(w);
    if (r != 0)
        return r;
    char fix[64];
    snprintf(fix, sizeof fix, "run: cortex start --agent %s", agent_names[k]);
    json_t *checks = json_array();
    json_t *rep = json_pack("{s:s, s:o}", "agent", agent_names[k], "checks", checks);
    json_t *c = NULL;
    if (!rep)
        return CX_ENOMEM;
    c = new_check("mcp-config", agent_paths[k]);
    if (!c || json_array_append_new(checks, c) != 0) {
        r = CX_ENOMEM;
        goto out;
    }
    r = k == CX_AGENT_CODEX ? check_codex(c, w, fix) : check_mcp_json(c, k, w, fix);
    if (r == 0 && k == CX_AGENT_CLAUDE) {
        c = new_check("hooks", SETTINGS);
        if (!c || json_array_append_new(checks, c) != 0)
            r = CX_ENOMEM;
        else
            r = check_hooks(c, w, fix);
    }
out:
    if (r != 0) {
        json_decref(rep);
        return r;
    }
    *out = rep;
    return 0;
}

/* ---- access: Claude Code's approval, Gemini CLI's and Codex's trust ---------------- */

#define LOCAL_SETTINGS ".claude/settings.local.json"

static const char *const codex_projects = "projects";

/* The file the agent keeps its access decision in (malloc'd), and whether
 * it lives in the user's home (trust) rather than in the project. */
static char *access_file(cx_agent_kind k, const char *root) {
    const char *home = getenv("HOME");
    switch (k) {
    case CX_AGENT_CLAUDE:
        return cx_fs_join(root, LOCAL_SETTINGS);
    case CX_AGENT_GEMINI: {
        const char *over = getenv("GEMINI_CLI_TRUSTED_FOLDERS_PATH");
        if (over && *over)
            return strdup(over);
        char *dir = home && *home ? cx_fs_join(home, ".gemini") : NULL;
        char *p = dir ? cx_fs_join(dir, "trustedFolders.json") : NULL;
        free(dir);
        return p;
    }
    case CX_AGENT_CODEX: {
        const char *ch = getenv("CODEX_HOME");
        char *dir = ch && *ch ? strdup(ch) : home && *home ? cx_fs_join(home, ".codex") : NULL;
        char *p = dir ? cx_fs_join(dir, "config.toml") : NULL;
        free(dir);
        return p;
    }
    default:
        return NULL;
    }
}

/* A plan for a file named by its absolute path (rel = the path). */
static int plan_read_abs(plan *f, const char *path) {
    char *dir = strdup(path);
    if (!dir)
        return CX_ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {
        free(dir);
        return cx_error_set(CX_EINVAL, "not an absolute file path: %s", path);
    }
    *slash = '\0';
    int r = plan_read(f, dir, slash + 1);
    free(dir);
    f->rel = path;
    return r;
}

static bool json_has_string(const json_t *a, const char *s) {
    size_t j;
    json_t *v;
    json_array_foreach(a, j, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Gemini CLI's rule for a folder (its isPathTrusted): the longest rule
 * whose folder (a TRUST_PARENT rule's parent) holds root decides. 1 trusted,
 * 0 not trusted by a DO_NOT_TRUST rule, -1 no rule. */
static int gemini_rule(const json_t *doc, const char *root) {
    const char *key;
    json_t *v;
    size_t best = 0;
    int verdict = -1;
    json_object_foreach((json_t *)doc, key, v) {
        const char *level = json_string_value(v);
        if (!level)
            continue;
        char eff[PATH_MAX];
        snprintf(eff, sizeof eff, "%s", key);
        if (strcmp(level, "TRUST_PARENT") == 0) {
            char *slash = strrchr(eff, '/');
            if (slash)
                *(slash == eff ? slash + 1 : slash) = '\0';
        }
        char *real = realpath(eff, NULL);
        const char *e = real ? real : eff;
        size_t n = strlen(e);
        while (n > 1 && e[n - 1] == '/')
            n--;
        bool holds = strncmp(root, e, n) == 0 && (root[n] == '\0' || root[n] == '/' || n == 1);
        free(real);
        if (holds && strlen(key) + 1 > best) {
            best = strlen(key) + 1;
            verdict = strcmp(level, "DO_NOT_TRUST") == 0 ? 0 : 1;
        }
    }
    return verdict;
}

/* Codex's trust_level for root: "trusted", "untrusted", or NULL (absent);
 * CX_EINVAL when the file cannot be read as TOML or the table has a form
 * whose value cannot be read (how says which). */
static int codex_level(const plan *f, const char *root, char *level, size_t cap, char *msg, size_t msgsize) {
    const char *path[2] = {codex_projects, root};
    cx_toml_table *t = NULL;
    cx_toml_error e;
    level[0] = '\0';
    if (!f->exists)
        return 0;
    int r = cx_toml_find(f->old, f->oldlen, path, 2, &t, &e);
    if (r == CX_EINVAL)
        return toml_parse_error(f, &e, msg, msgsize);
    if (r != 0)
        return r;
    if (cx_toml_table_form(t) == CX_TOML_OTHER) {
        snprintf(msg, msgsize, "cannot read %s: projects.\"%s\" is defined as %s", f->rel, root,
                 cx_toml_table_how(t));
        r = CX_EINVAL;
    } else if (cx_toml_table_form(t) == CX_TOML_TABLE) {
        const char *s = NULL;
        if (cx_toml_table_string(t, "trust_level", &s) == 0)
            snprintf(level, cap, "%s", s);
    }
    cx_toml_table_free(t);
    return r;
}

static bool codex_trusted(const cx_toml_table *t, const void *arg) {
    (void)arg;
    const char *s;
    return cx_toml_table_string(t, "trust_level", &s) == 0 && strcmp(s, "trusted") == 0;
}

static int plan_claude_approval(plan *f) {
    char msg[512];
    json_t *doc = NULL, *orig = NULL, *on, *off;
    int r = load_json(f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL)
        return cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r != 0)
        return r;
    if (!(orig = json_deep_copy(doc))) {
        r = CX_ENOMEM;
        goto out;
    }
    r = member(doc, "enabledMcpjsonServers", JSON_ARRAY, f->rel, "enabledMcpjsonServers", &on, msg, sizeof msg);
    if (r == CX_EINVAL)
        r = cx_error_set(r, "%s; " NOTHING_CHANGED, msg);
    if (r != 0)
        goto out;
    if (!json_has_string(on, "cortex") && json_array_append_new(on, json_string("cortex")) != 0) {
        r = CX_ENOMEM;
        goto out;
    }
    off = json_object_get(doc, "disabledMcpjsonServers");
    for (size_t j = 0; json_is_array(off) && j < json_array_size(off);) {
        const char *s = json_string_value(json_array_get(off, j));
        if (s && strcmp(s, "cortex") == 0)
            json_array_remove(off, j);
        else
            j++;
    }
    r = finish_json(f, doc, orig);
out:
    json_decref(doc);
    json_decref(orig);
    return r;
}

static int plan_gemini_trust(plan *f, const char *root) {
    char msg[512];
    json_t *doc = NULL, *orig = NULL;
    int r = load_json(f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL)
        return cx_error_set(r, "%s (Gemini CLI also allows comments there, cortex does not); " NOTHING_CHANGED,
                            msg);
    if (r != 0)
        return r;
    if (!(orig = json_deep_copy(doc))) {
        r = CX_ENOMEM;
        goto out;
    }
    if (gemini_rule(doc, root) != 1 && json_object_set_new(doc, root, json_string("TRUST_FOLDER")) != 0) {
        r = CX_ENOMEM;
        goto out;
    }
    r = finish_json(f, doc, orig);
out:
    json_decref(doc);
    json_decref(orig);
    return r;
}

static int plan_codex_trust(plan *f, const char *root) {
    const char *path[2] = {codex_projects, root};
    char *q = NULL;
    text header;
    text_init(&header, MAX_LINE);
    int r = cx_toml_quote(root, strlen(root), &q);
    if (r != 0)
        return r;
    puts_(&header, "[projects.");
    puts_(&header, q);
    puts_(&header, "]");
    if ((r = header.err) == 0) {
        toml_want tw = {.name = "the project's table", .path = path, .depth = 2,
                        .header = cx_buf_str(&header.b), .nkeys = 1, .keys = {"trust_level"},
                        .lines = {"trust_level = \"trusted\""}, .matches = codex_trusted};
        r = plan_toml(f, &tw);
    }
    free(q);
    cx_buf_free(&header.b);
    return r;
}

char *cx_agent_grant_hint(cx_agent_kind k, const char *root) {
    char *file = access_file(k, root), *out = NULL;
    if (!file && k != CX_AGENT_CURSOR)
        return NULL;
    text b;
    text_init(&b, MAX_LINE);
    switch (k) {
    case CX_AGENT_CLAUDE:
        puts_(&b, "\"enabledMcpjsonServers\": [\"cortex\"] to " LOCAL_SETTINGS);
        break;
    case CX_AGENT_GEMINI:
        puts_(&b, "\"");
        puts_(&b, root);
        puts_(&b, "\": \"TRUST_FOLDER\" to ");
        puts_(&b, file);
        break;
    case CX_AGENT_CODEX:
        puts_(&b, "[projects.\"");
        puts_(&b, root);
        puts_(&b, "\"] trust_level = \"trusted\" to ");
        puts_(&b, file);
        break;
    default:
        break;
    }
    out = text_take(&b);
    free(file);
    return out;
}

int cx_agent_grant(cx_agent_kind k, const char *root, json_t **report) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    *report = NULL;
    if (!root || root[0] != '/')
        return cx_error_set(CX_EINVAL, "the workspace root must be an absolute path, not '%s'", root ? root : "");
    if (!cx_utf8_valid(root, strlen(root)))
        return cx_error_set(CX_EINVAL, "the workspace root '%s' is not valid UTF-8", root);
    if (k == CX_AGENT_CURSOR)
        return 0;
    char *file = access_file(k, root);
    if (!file)
        return cx_error_set(CX_ENOTFOUND, "$HOME is not set, so %s's own config cannot be found",
                            agent_names[k]);
    plan f;
    memset(&f, 0, sizeof f);
    int r = k == CX_AGENT_CLAUDE ? plan_read(&f, root, LOCAL_SETTINGS) : plan_read_abs(&f, file);
    if (r != 0)
        goto out;
    switch (k) {
    case CX_AGENT_CLAUDE: r = plan_claude_approval(&f); break;
    case CX_AGENT_GEMINI: r = plan_gemini_trust(&f, root); break;
    default: r = plan_codex_trust(&f, root); break;
    }
    if (r != 0)
        goto out;
    const char *action = !f.exists ? "created" : f.text ? "updated" : "unchanged";
    if (k != CX_AGENT_CLAUDE && !f.exists)
        f.new_mode = 0600; /* the user's own config: theirs alone, as the agents make it */
    if ((r = plan_write(&f)) != 0)
        goto out;
    *report = json_pack("{s:s, s:s, s:s}", "agent", agent_names[k], "path",
                        k == CX_AGENT_CLAUDE ? LOCAL_SETTINGS : file, "action", action);
    if (!*report)
        r = CX_ENOMEM;
out:
    plan_clear(&f);
    free(file);
    return r;
}

/* Whether the user turned Gemini CLI's folder trust off
 * (security.folderTrust.enabled = false in ~/.gemini/settings.json): then
 * every folder counts as trusted. */
static bool gemini_trust_off(void) {
    const char *home = getenv("HOME");
    char *dir = home && *home ? cx_fs_join(home, ".gemini") : NULL;
    char *path = dir ? cx_fs_join(dir, "settings.json") : NULL;
    json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
    json_t *en = json_object_get(json_object_get(json_object_get(doc, "security"), "folderTrust"), "enabled");
    bool off = json_is_false(en);
    json_decref(doc);
    free(path);
    free(dir);
    return off;
}

int cx_agent_check_access(cx_agent_kind k, const char *root, json_t **out) {
    assert(k >= 0 && k < CX_AGENT_COUNT);
    *out = NULL;
    if (k == CX_AGENT_CURSOR)
        return 0;
    char *file = access_file(k, root), *hint = cx_agent_grant_hint(k, root);
    const char *name = k == CX_AGENT_CLAUDE ? "approval" : "trust";
    char fix[PATH_MAX + 256], msg[512], level[32];
    json_t *c = NULL, *doc = NULL;
    plan f;
    memset(&f, 0, sizeof f);
    int r = 0;
    if (!file || !hint) {
        r = file ? CX_ENOMEM : cx_error_set(CX_ENOTFOUND, "$HOME is not set");
        goto out;
    }
    if (k == CX_AGENT_CLAUDE)
        snprintf(fix, sizeof fix, "run: cortex start --agent claude (it records your approval: %s)", hint);
    else
        snprintf(fix, sizeof fix, "run: cortex start --agent %s --trust (it adds %s)", agent_names[k], hint);
    c = json_pack("{s:s, s:s, s:b}", "name", name, "path", k == CX_AGENT_CLAUDE ? LOCAL_SETTINGS : file,
                  "ok", 1);
    if (!c) {
        r = CX_ENOMEM;
        goto out;
    }
    r = k == CX_AGENT_CLAUDE ? plan_read(&f, root, LOCAL_SETTINGS) : plan_read_abs(&f, file);
    if (r == CX_ENOMEM)
        goto out;
    if (r != 0) {
        r = problem(c, fix, "cannot read %s: %s", file, cx_error_last());
        goto out;
    }
    if (k == CX_AGENT_CODEX) {
        r = codex_level(&f, root, level, sizeof level, msg, sizeof msg);
        if (r == CX_EINVAL)
            r = problem(c, fix, "%s", msg);
        else if (r == 0 && strcmp(level, "trusted") != 0)
            r = problem(c, fix, "Codex does not trust this project (%s), so it ignores .codex/config.toml",
                        level[0] ? "trust_level is not \"trusted\"" : "no trust_level for it");
        goto out;
    }
    r = load_json(&f, &doc, msg, sizeof msg);
    if (r == CX_EINVAL) {
        r = problem(c, fix, "%s", msg);
        goto out;
    }
    if (r != 0)
        goto out;
    if (k == CX_AGENT_GEMINI) {
        const char *env = getenv("GEMINI_CLI_TRUST_WORKSPACE");
        int v = gemini_rule(doc, root);
        if ((env && strcmp(env, "true") == 0) || gemini_trust_off())
            r = 0;
        else if (v == 0)
            r = problem(c, fix, "a DO_NOT_TRUST rule in %s covers this folder, so Gemini CLI disables its MCP servers",
                        file);
        else if (v < 0)
            r = problem(c, fix, "Gemini CLI does not trust this folder, so it disables its MCP servers");
        goto out;
    }
    /* Claude Code: the approval of .mcp.json's cortex server, in any of
     * the settings it reads for it (local, project, user) */
    const char *rejected = NULL;
    bool approved = false;
    char *user_dir = getenv("HOME") ? cx_fs_join(getenv("HOME"), ".claude") : NULL;
    char *user = user_dir ? cx_fs_join(user_dir, "settings.json") : NULL;
    char *project = cx_fs_join(root, SETTINGS);
    const char *names[3] = {LOCAL_SETTINGS, SETTINGS, "~/.claude/settings.json"};
    for (int j = 0; j < 3; j++) {
        json_t *sd = j == 0 ? json_incref(doc) : json_load_file(j == 1 ? project : user, 0, NULL);
        if (json_has_string(json_object_get(sd, "disabledMcpjsonServers"), "cortex") && !rejected)
            rejected = names[j];
        approved |= json_has_string(json_object_get(sd, "enabledMcpjsonServers"), "cortex") ||
                    json_is_true(json_object_get(sd, "enableAllProjectMcpServers"));
        json_decref(sd);
    }
    free(user);
    free(user_dir);
    free(project);
    if (rejected)
        r = problem(c, fix, "the project's cortex server was rejected (disabledMcpjsonServers in %s)", rejected);
    else if (!approved)
        r = problem(c, fix, "Claude Code lists the project's cortex server as pending approval");
out:
    if (r == 0 && c) {
        *out = c;
        c = NULL;
    }
    json_decref(c);
    json_decref(doc);
    plan_clear(&f);
    free(file);
    free(hint);
    return r < 0 ? r : 0;
}
