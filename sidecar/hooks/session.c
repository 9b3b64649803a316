/* SPDX-License-Identifier: Apache-2.0 */
/* Agent hooks (see hooks.h): the entry point, the hook's context (input,
 * deadline, workspace session, store, provenance) and the per-session state
 * that the SessionStart briefing (briefing.c) and the Stop digest
 * (digest.c) share in <workspace>/.cortex/sessions/.
 *
 * Session files. session-start writes sessions/<id>.json ({"session_id",
 * "started_at", "started_ms"}); stop adds "draft_id" (the session's digest
 * awaiting review), "draft_observations" (the ids it covers),
 * "earlier_observations" (ids covered by earlier digests of the session that
 * were decided meanwhile) and "digested_ms" (when the last digest was made).
 * sessions/.last-digest.json ({"at_ms", "draft_id", "session_id"}) records
 * the workspace's last digest, for a stop whose session never had a
 * session-start. The session id is redacted as it is read (a hook's input
 * is as untrusted as a note: a token in it would land in these files), and
 * a file is named "s-" and a sha-256 prefix of the redacted id, never the
 * id itself: no id can reach outside the directory, collide with the
 * dotfile, or put a secret in a file name.
 *
 * Which observations belong to a session: kind observation, visibility
 * shared, author this workspace's user, created at or after the session's
 * start, and not covered by an earlier digest of the session. The store is
 * shared by every agent in the workspace, so two sessions running at once
 * in one workspace see each other's observations; nothing in an item says
 * which session made it.
 *
 * Everything is bounded: 1 MiB of input, 100 observations picked up per
 * stop, 500 per digest, 200 items checked for staleness, and a deadline
 * checked between steps so that a hook returns within about a second. */
#include "hook.h"

#include "redact/redact.h"
#include "store/blob.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One line "cortex hook: …" on err, newlines flattened. */
__attribute__((format(printf, 2, 3)))
void cx_hook_say(hook *h, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (h->err) {
        fprintf(h->err, "cortex hook: %s\n", msg);
        fflush(h->err);
    }
}

bool cx_hook_late(const hook *h) { return cx_clock_mono_ns() >= h->deadline; }

/* Reads the hook's JSON (at most INPUT_MAX bytes). Absent, empty or a
 * terminal: no input, silently. Too large or malformed: said, no input. */
static void read_input(hook *h, FILE *in) {
    if (!in || isatty(fileno(in)))
        return;
    cx_buf b;
    cx_buf_init(&b, INPUT_MAX); /* more than INPUT_MAX bytes are refused whole */
    for (;;) {
        size_t room = b.max - b.len, k;
        if (room == 0) { /* full: one byte more means too large */
            char extra;
            if (fread(&extra, 1, 1, in) == 1) {
                cx_hook_say(h, "the hook input is larger than 1 MiB, ignoring it");
                goto out;
            }
            break;
        }
        size_t want = room < 64 * 1024 ? room : 64 * 1024;
        char *space;
        if (cx_buf_reserve(&b, want, &space) != 0) {
            cx_hook_say(h, "out of memory reading the hook input, ignoring it");
            goto out;
        }
        k = fread(space, 1, want, in);
        cx_buf_commit(&b, k);
        if (k == 0)
            break;
    }
    const char *buf = cx_buf_str(&b);
    size_t len = b.len;
    bool empty = true;
    for (size_t i = 0; i < len && empty; i++)
        empty = buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r';
    if (empty)
        goto out;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        if (root)
            cx_hook_say(h, "the hook input is not a JSON object, ignoring it");
        else
            cx_hook_say(h, "the hook input is not valid JSON (%s, line %d), ignoring it", jerr.text,
                jerr.line);
        json_decref(root);
        goto out;
    }
    h->input = root;
    const char *sid = cx_hook_jstr(root, "session_id");
    char *clean = NULL;
    if (sid && *sid && cx_redact_text(sid, strlen(sid), &clean, NULL, NULL) != 0) {
        cx_hook_say(h, "cannot redact the session id (%s), ignoring it", cx_error_last());
        sid = NULL;
    } else if (clean) { /* the input holds the redacted id from now on */
        if (json_object_set_new(root, "session_id", json_string(clean)) != 0)
            json_object_del(root, "session_id");
        free(clean);
        sid = cx_hook_jstr(root, "session_id");
    }
    h->session_id = sid && *sid ? sid : NULL;
out:
    cx_buf_free(&b);
}

/* The file name stem for a session id: "s-" and the first 32 hex digits of
 * the sha-256 of the (redacted) id; "" for none. */
static void sanitise_sid(const char *id, char out[SID_MAX + 1]) {
    out[0] = '\0';
    if (!id || !*id)
        return;
    char hex[65];
    cx_blob_sha256(id, strlen(id), hex);
    snprintf(out, SID_MAX + 1, "s-%.32s", hex);
}

static bool exists_at(const char *dir, const char *name, bool want_file) {
    char *p = cx_fs_join(dir, name);
    struct stat st;
    bool ok = p && lstat(p, &st) == 0 && (!want_file || S_ISREG(st.st_mode));
    free(p);
    return ok;
}

/* From a directory the agent works in (perhaps deep in a repository) to
 * its workspace: the nearest directory at or above it that holds a Cortex
 * store, stopping at the first repository root (as the CLI would take that
 * root). *out is a malloc'd path; CX_ENOTFOUND / CX_EIO when dir is bad. */
static int workspace_dir_for(const char *dir, char **out) {
    char *p = realpath(dir, NULL);
    if (!p)
        return cx_error_set(errno == ENOENT || errno == ENOTDIR ? CX_ENOTFOUND : CX_EIO,
                            "workspace %s: %s", dir, strerror(errno));
    char *cur = strdup(p);
    if (!cur) {
        free(p);
        return CX_ENOMEM;
    }
    for (int depth = 0; depth < 256; depth++) {
        if (exists_at(cur, ".cortex/cortex.db", true)) {
            free(p);
            *out = cur;
            return 0;
        }
        if (exists_at(cur, ".git", false))
            break;
        char *slash = strrchr(cur, '/');
        if (!slash || slash == cur)
            break;
        *slash = '\0';
    }
    free(cur);
    *out = p; /* no store above: the directory itself, reported as such */
    return 0;
}

/* Finds the workspace: --workspace, the payload's cwd, $CLAUDE_PROJECT_DIR,
 * else the usual discovery. Says what went wrong and returns false. */
bool cx_hook_find_workspace(hook *h) {
    const char *cwd = h->input ? cx_hook_jstr(h->input, "cwd") : NULL;
    const char *proj = getenv("CLAUDE_PROJECT_DIR");
    char *dir = NULL;
    int r;
    if (h->o->workspace && *h->o->workspace) {
        r = cx_session_open(&h->session, h->o->workspace, 0);
    } else if ((cwd && *cwd) || (proj && *proj)) {
        r = workspace_dir_for(cwd && *cwd ? cwd : proj, &dir);
        if (r == 0)
            r = cx_session_open(&h->session, dir, 0);
    } else {
        r = cx_session_open(&h->session, NULL, 0);
    }
    free(dir);
    if (r != 0) {
        cx_hook_say(h, "no workspace: %s", cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    h->ws = cx_session_workspace(h->session);
    if (!exists_at(h->ws->state_dir, "cortex.db", true)) {
        cx_hook_say(h, "no Cortex memory in %s yet (run 'cortex start' there); nothing to do",
            h->ws->root);
        return false;
    }
    h->sessions_dir = cx_fs_join(h->ws->state_dir, "sessions");
    if (!h->sessions_dir) {
        cx_hook_say(h, "out of memory");
        return false;
    }
    (void)cx_session_add(h->session, CX_SESSION_CONFIG);
    const char *why = cx_session_problem(h->session, CX_SESSION_CONFIG);
    if (why)
        cx_hook_say(h, "%s, using the default subcortex", why);
    if (cx_session_config(h->session))
        h->cfg = cx_session_config(h->session);
    return true;
}

bool cx_hook_open_store(hook *h) {
    int r = cx_session_add(h->session, CX_SESSION_STORE);
    if (r == 0)
        h->store = cx_session_store(h->session);
    if (r != 0) {
        cx_hook_say(h, "cannot open the store in %s: %s", h->ws->state_dir,
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    return true;
}

cx_prov *cx_hook_get_prov(hook *h) {
    if (!h->prov && !h->prov_failed) {
        (void)cx_session_add(h->session, CX_SESSION_PROV);
        h->prov = cx_session_prov(h->session);
        if (!h->prov) {
            h->prov_failed = true;
            cx_hook_say(h, "cannot read the repository: %s; staleness not checked",
                cx_session_problem(h->session, CX_SESSION_PROV));
        }
    }
    return h->prov;
}

char *cx_hook_session_path(const hook *h, const char *stem) {
    char name[SID_MAX + 8];
    snprintf(name, sizeof name, "%s.json", stem);
    return cx_fs_join(h->sessions_dir, name);
}

/* The JSON object in a state file, or NULL (absent, unreadable, malformed:
 * the latter two said). */
json_t *cx_hook_load_state(hook *h, const char *path) {
    char *data = NULL;
    size_t len = 0;
    int r = cx_fs_read_file(path, MAX_SESSION_FILE, &data, &len);
    if (r == CX_ENOTFOUND)
        return NULL;
    if (r != 0) {
        cx_hook_say(h, "%s, ignoring it", cx_error_last());
        return NULL;
    }
    json_t *o = json_loadb(data, len, 0, NULL);
    free(data);
    if (!json_is_object(o)) {
        cx_hook_say(h, "%s is not a session record, ignoring it", path);
        json_decref(o);
        return NULL;
    }
    return o;
}

int cx_hook_save_state(hook *h, const char *path, const json_t *o) {
    int r = cx_fs_mkdir_p(h->sessions_dir, 0700);
    if (r != 0) {
        cx_hook_say(h, "%s, not recording the session", cx_error_last());
        return r;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) {
        cx_hook_say(h, "out of memory recording the session");
        return CX_ENOMEM;
    }
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves room for nothing more: rewrite the NUL */
    r = cx_fs_write_atomic(path, s, n + 1, 0600);
    free(s);
    if (r != 0)
        cx_hook_say(h, "%s, not recording the session", cx_error_last());
    return r;
}

uint64_t cx_hook_json_ms(const json_t *o, const char *key) {
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* Removes regular files older than SESSION_TTL_MS from sessions/. */
void cx_hook_prune_sessions(hook *h, uint64_t now_ms) {
    DIR *d = opendir(h->sessions_dir);
    if (!d)
        return;
    int fd = dirfd(d);
    struct dirent *e;
    for (int seen = 0; seen < PRUNE_MAX_ENTRIES && (e = readdir(d)) != NULL; seen++) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000u + (uint64_t)st.st_mtim.tv_nsec / 1000000u;
        if (mtime + SESSION_TTL_MS < now_ms && unlinkat(fd, e->d_name, 0) != 0)
            cx_hook_say(h, "cannot remove old session file %s: %s, ignoring", e->d_name, strerror(errno));
    }
    closedir(d);
}

/* session-start: notes when the session began, unless it is already known
 * (a resumed or compacted session keeps its start and its digest). */
void cx_hook_record_session(hook *h, uint64_t now_ms) {
    if (!h->sid[0])
        return;
    char *path = cx_hook_session_path(h, h->sid);
    if (!path) {
        cx_hook_say(h, "out of memory");
        return;
    }
    json_t *old = cx_hook_load_state(h, path);
    if (old && cx_hook_json_ms(old, "started_ms") > 0) {
        (void)utimensat(AT_FDCWD, path, NULL, 0); /* keeps it from being pruned */
        json_decref(old);
        free(path);
        return;
    }
    json_decref(old);
    char iso[CX_ISO_LEN];
    cx_clock_format(now_ms, iso);
    json_t *o = json_pack("{s:s, s:s, s:I}", "session_id", h->session_id, "started_at", iso,
                          "started_ms", (json_int_t)now_ms);
    if (o)
        cx_hook_save_state(h, path, o);
    else
        cx_hook_say(h, "out of memory recording the session");
    json_decref(o);
    free(path);
}

int cx_hook_run(const char *event, const cx_hook_opts *o, FILE *in, FILE *out, FILE *err) {
    static const cx_hook_opts none = {0};
    static const cx_config defaults = {0};
    hook h = {
        .o = o ? o : &none,
        .cfg = &defaults,
        .out = out,
        .err = err,
        .deadline = cx_clock_mono_ns() + TIME_BUDGET_NS,
    };
    const char *v = getenv("CORTEX_HOOK_VERBOSE");
    h.verbose = v && strcmp(v, "1") == 0;
    bool start = event && strcmp(event, "session-start") == 0;
    if (!start && !(event && strcmp(event, "stop") == 0)) {
        cx_hook_say(&h, "unknown event '%s'; the events are session-start and stop",
            event ? event : "(none)");
        return 2;
    }
    h.author = strdup(h.o->author && *h.o->author ? h.o->author : "unknown");
    if (!h.author) {
        cx_hook_say(&h, "out of memory");
        return 0;
    }
    read_input(&h, in);
    sanitise_sid(h.session_id, h.sid);
    if (start)
        cx_hook_session_start(&h);
    else
        cx_hook_stop(&h);
    cx_session_free(h.session);
    json_decref(h.input);
    free(h.sessions_dir);
    free(h.author);
    return 0;
}
