/* SPDX-License-Identifier: Apache-2.0 */
/* Agent hooks (see hooks.h): the SessionStart briefing and the Stop digest
 * of Claude Code's hooks contract, and the per-session state they share in
 * <workspace>/.cortex/sessions/.
 *
 * Session files. session-start writes sessions/<id>.json ({"session_id",
 * "started_at", "started_ms"}); stop adds "draft_id" (the session's digest
 * awaiting review), "draft_observations" (the ids it covers),
 * "earlier_observations" (ids covered by earlier digests of the session that
 * were decided meanwhile) and "digested_ms" (when the last digest was made).
 * sessions/.last-digest.json ({"at_ms", "draft_id", "session_id"}) records
 * the workspace's last digest, for a stop whose session never had a
 * session-start. A session id is used as a file name only when it is made
 * of [A-Za-z0-9._-] and does not start with '.', else a hash names it, so
 * no id can reach outside the directory or collide with the dotfile.
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
#include "hooks.h"

#include "session.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"
#include "util/utf8.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TOKENS 1500
#define MAX_TOKENS 200000            /* a budget beyond this is taken as this */
#define INPUT_MAX (1u << 20)         /* bytes of hook JSON read from stdin */
#define TIME_BUDGET_NS 900000000ull  /* steps start only before this */
#define SESSION_TTL_MS (7ull * 24 * 3600 * 1000)
#define FALLBACK_MS (24ull * 3600 * 1000) /* how far back a stop without a session looks */
#define SLACK_MS 2000                /* overlap between one stop's window and the next */
#define SID_MAX 128                  /* bytes of a session id used as a file name */
#define MAX_SESSION_FILE (256u * 1024)
#define MAX_EARLIER 2000             /* ids remembered from decided digests */
#define PRUNE_MAX_ENTRIES 1000       /* directory entries looked at per prune */
#define LAST_DIGEST ".last-digest.json"

#define RECENT_PAGE 100              /* the store's largest recent page */
#define MAX_DIGEST 500               /* observations in one digest */
#define CANON_PER_SUBCORTEX 20
#define STALE_SCAN 200               /* items with provenance checked for staleness */
#define MAX_OWN_DRAFTS 50
#define MAX_REASONS 5                /* review reasons fetched for the briefing */
#define LIST_BYTES (256u * 1024)     /* summaries asked of recent per page */

#define TITLE_MAX 120                /* bytes of an item's title in a line */
#define SNIPPET_MAX 160
#define PATHS_SHOWN 5                /* changed paths named per stale item */
#define BODY_MAX (64u * 1024)        /* bytes of a digest's body */
#define HOOK_AGENT "cortex-hook"

/* ---- small utilities --------------------------------------------------- */

typedef struct hook {
    const cx_hook_opts *o;
    FILE *out, *err;
    uint64_t deadline;
    bool verbose;
    json_t *input;          /* the hook's JSON object, or NULL */
    const char *session_id; /* borrowed from input, or NULL */
    char sid[SID_MAX + 1];  /* the session's file name stem, "" when none */
    char *author;           /* this workspace's user */
    cx_session *session;    /* the workspace; ws, cfg, store and prov are its parts */
    const cx_workspace *ws;
    const cx_config *cfg;   /* the workspace config, or an empty one (the defaults) */
    cx_store *store;
    cx_prov *prov;
    bool prov_failed;
    char *sessions_dir;
} hook;

/* One line "cortex hook: …" on err, newlines flattened. */
__attribute__((format(printf, 2, 3)))
static void say(hook *h, const char *fmt, ...) {
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

static bool late(const hook *h) { return cx_clock_mono_ns() >= h->deadline; }

static const char *jstr(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

static bool blank(const char *s) {
    if (!s)
        return true;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* A growable string with a hard cap (max bytes, excluding the NUL). Adding
 * what does not fit adds nothing and returns false. */
typedef struct text {
    char *p;
    size_t len, cap, max;
    bool oom;
} text;

static bool text_add(text *t, const char *s, size_t n) {
    if (t->oom || n > t->max - t->len)
        return false;
    if (t->len + n + 1 > t->cap) {
        size_t want = t->cap ? t->cap : 256;
        while (want < t->len + n + 1)
            want *= 2;
        if (want > t->max + 1)
            want = t->max + 1;
        char *q = realloc(t->p, want);
        if (!q) {
            t->oom = true;
            return false;
        }
        t->p = q;
        t->cap = want;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
    return true;
}

static bool text_put(text *t, const char *s) { return text_add(t, s, strlen(s)); }

/* `s` on one line, for markdown: control characters and whitespace runs
 * become one space, the ends trimmed; in a code span (`code`) backticks
 * become quotes. At most max bytes, cut on a character boundary with "…".
 * Returns a malloc'd string, or NULL when out of memory. */
static char *one_line(const char *s, size_t max, bool code) {
    if (!s)
        s = "";
    size_t cap = max + 8;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t n = 0;
    bool space = false, more = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = n > 0;
            continue;
        }
        if (n + (space ? 1 : 0) + 1 > max + 4) {
            more = true;
            break;
        }
        if (space)
            b[n++] = ' ';
        space = false;
        b[n++] = (char)(code && c == '`' ? '\'' : c);
    }
    if (more || n > max) {
        size_t keep = max >= 3 ? cx_utf8_cut(b, n, max - 3) : 0;
        while (keep > 0 && b[keep - 1] == ' ')
            keep--;
        if (max >= 3) {
            memcpy(b + keep, "\xE2\x80\xA6", 3);
            keep += 3;
        }
        n = keep;
    }
    b[n] = '\0';
    return b;
}

/* A list of owned strings. */
typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static bool list_take(strlist *l, char *s) {
    if (!s)
        return false;
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, c * sizeof *v);
        if (!v) {
            free(s);
            return false;
        }
        l->v = v;
        l->cap = c;
    }
    l->v[l->n++] = s;
    return true;
}

static void list_clear(strlist *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* A line assembled from pieces, each already made safe; NULL pieces end it. */
static char *concat(const char *first, ...) {
    text t = {.max = SIZE_MAX / 2};
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        text_put(&t, s);
    va_end(ap);
    if (t.oom || !t.p) {
        free(t.p);
        return t.oom ? NULL : strdup("");
    }
    return t.p;
}

/* ---- input ------------------------------------------------------------- */

/* Reads the hook's JSON (at most INPUT_MAX bytes). Absent, empty or a
 * terminal: no input, silently. Too large or malformed: said, no input. */
static void read_input(hook *h, FILE *in) {
    if (!in || isatty(fileno(in)))
        return;
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        say(h, "out of memory reading the hook input, ignoring it");
        return;
    }
    for (;;) {
        if (len == cap) {
            if (cap > INPUT_MAX)
                break;
            size_t c = cap * 2 > INPUT_MAX + 1 ? INPUT_MAX + 1 : cap * 2;
            char *q = realloc(buf, c);
            if (!q) {
                say(h, "out of memory reading the hook input, ignoring it");
                free(buf);
                return;
            }
            buf = q;
            cap = c;
        }
        size_t k = fread(buf + len, 1, cap - len, in);
        len += k;
        if (k == 0)
            break;
    }
    if (len > INPUT_MAX) {
        say(h, "the hook input is larger than 1 MiB, ignoring it");
        goto out;
    }
    bool empty = true;
    for (size_t i = 0; i < len && empty; i++)
        empty = buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r';
    if (empty)
        goto out;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        if (root)
            say(h, "the hook input is not a JSON object, ignoring it");
        else
            say(h, "the hook input is not valid JSON (%s, line %d), ignoring it", jerr.text,
                jerr.line);
        json_decref(root);
        goto out;
    }
    h->input = root;
    const char *sid = jstr(root, "session_id");
    h->session_id = sid && *sid ? sid : NULL;
out:
    free(buf);
}

static uint64_t fnv1a(const char *s, uint64_t seed) {
    uint64_t x = seed;
    for (; *s; s++) {
        x ^= (unsigned char)*s;
        x *= 0x100000001b3ull;
    }
    return x;
}

/* The file name stem for a session id: the id itself when it is made of
 * [A-Za-z0-9._-], at most SID_MAX bytes and does not start with '.', else
 * "h-" and a hash of it. */
static void sanitise_sid(const char *id, char out[SID_MAX + 1]) {
    out[0] = '\0';
    if (!id || !*id)
        return;
    size_t n = strlen(id);
    bool ok = n <= SID_MAX && id[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (ok) {
        memcpy(out, id, n + 1);
        return;
    }
    snprintf(out, SID_MAX + 1, "h-%016llx%016llx",
             (unsigned long long)fnv1a(id, 0xcbf29ce484222325ull),
             (unsigned long long)fnv1a(id, 0x84222325cbf29ce4ull));
}

/* ---- workspace --------------------------------------------------------- */

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
static bool find_workspace(hook *h) {
    const char *cwd = h->input ? jstr(h->input, "cwd") : NULL;
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
        say(h, "no workspace: %s", cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    h->ws = cx_session_workspace(h->session);
    if (!exists_at(h->ws->state_dir, "cortex.db", true)) {
        say(h, "no Cortex memory in %s yet (run 'cortex start' there); nothing to do",
            h->ws->root);
        return false;
    }
    h->sessions_dir = cx_fs_join(h->ws->state_dir, "sessions");
    if (!h->sessions_dir) {
        say(h, "out of memory");
        return false;
    }
    (void)cx_session_add(h->session, CX_SESSION_CONFIG);
    const char *why = cx_session_problem(h->session, CX_SESSION_CONFIG);
    if (why)
        say(h, "%s, using the default subcortex", why);
    if (cx_session_config(h->session))
        h->cfg = cx_session_config(h->session);
    return true;
}

static bool open_store(hook *h) {
    int r = cx_session_add(h->session, CX_SESSION_STORE);
    if (r == 0)
        h->store = cx_session_store(h->session);
    if (r != 0) {
        say(h, "cannot open the store in %s: %s", h->ws->state_dir,
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    return true;
}

static cx_prov *get_prov(hook *h) {
    if (!h->prov && !h->prov_failed) {
        (void)cx_session_add(h->session, CX_SESSION_PROV);
        h->prov = cx_session_prov(h->session);
        if (!h->prov) {
            h->prov_failed = true;
            say(h, "cannot read the repository: %s; staleness not checked",
                cx_session_problem(h->session, CX_SESSION_PROV));
        }
    }
    return h->prov;
}

/* ---- session files ----------------------------------------------------- */

static char *session_path(const hook *h, const char *stem) {
    char name[SID_MAX + 8];
    snprintf(name, sizeof name, "%s.json", stem);
    return cx_fs_join(h->sessions_dir, name);
}

/* The JSON object in a state file, or NULL (absent, unreadable, malformed:
 * the latter two said). */
static json_t *load_state(hook *h, const char *path) {
    char *data = NULL;
    size_t len = 0;
    int r = cx_fs_read_file(path, MAX_SESSION_FILE, &data, &len);
    if (r == CX_ENOTFOUND)
        return NULL;
    if (r != 0) {
        say(h, "%s, ignoring it", cx_error_last());
        return NULL;
    }
    json_t *o = json_loadb(data, len, 0, NULL);
    free(data);
    if (!json_is_object(o)) {
        say(h, "%s is not a session record, ignoring it", path);
        json_decref(o);
        return NULL;
    }
    return o;
}

static int save_state(hook *h, const char *path, const json_t *o) {
    int r = cx_fs_mkdir_p(h->sessions_dir, 0700);
    if (r != 0) {
        say(h, "%s, not recording the session", cx_error_last());
        return r;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    if (!s) {
        say(h, "out of memory recording the session");
        return CX_ENOMEM;
    }
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves room for nothing more: rewrite the NUL */
    r = cx_fs_write_atomic(path, s, n + 1, 0600);
    free(s);
    if (r != 0)
        say(h, "%s, not recording the session", cx_error_last());
    return r;
}

static uint64_t json_ms(const json_t *o, const char *key) {
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* Removes regular files older than SESSION_TTL_MS from sessions/. */
static void prune_sessions(hook *h, uint64_t now_ms) {
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
            say(h, "cannot remove old session file %s: %s, ignoring", e->d_name, strerror(errno));
    }
    closedir(d);
}

/* session-start: notes when the session began, unless it is already known
 * (a resumed or compacted session keeps its start and its digest). */
static void record_session(hook *h, uint64_t now_ms) {
    if (!h->sid[0])
        return;
    char *path = session_path(h, h->sid);
    if (!path) {
        say(h, "out of memory");
        return;
    }
    json_t *old = load_state(h, path);
    if (old && json_ms(old, "started_ms") > 0) {
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
        save_state(h, path, o);
    else
        say(h, "out of memory recording the session");
    json_decref(o);
    free(path);
}

/* ---- session-start: the briefing --------------------------------------- */

typedef struct section {
    const char *heading;
    strlist lines;
} section;

static int by_updated_desc(const void *a, const void *b) {
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *ux = jstr(x, "updated_at"), *uy = jstr(y, "updated_at");
    int c = strcmp(uy ? uy : "", ux ? ux : "");
    if (c)
        return c;
    const char *ix = jstr(x, "id"), *iy = jstr(y, "id");
    return strcmp(iy ? iy : "", ix ? ix : "");
}

/* Appends to arr (a JSON array) the summaries of recent(kind, subcortex). */
static int recent_into(hook *h, json_t *arr, const char *kind, const char *subcortex,
                       size_t limit) {
    json_t *res = NULL;
    cx_recent_query q = {.kind = kind, .subcortex = subcortex, .limit = limit,
                         .max_tokens = LIST_BYTES / 4};
    cx_error_clear();
    int r = cx_store_recent(h->store, &q, &res);
    if (r != 0) {
        say(h, "cannot list recent %ss: %s", kind,
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return r;
    }
    json_array_extend(arr, json_object_get(res, "items"));
    json_decref(res);
    return 0;
}

/* "<title or snippet>", on one line. */
static char *item_label(const json_t *it, size_t max) {
    const char *t = jstr(it, "title");
    return one_line(!blank(t) ? t : jstr(it, "snippet"), max, false);
}

static bool awaiting_review(const char *status) {
    return status && (strcmp(status, "pending") == 0 || strcmp(status, "changes_requested") == 0);
}

static bool is_canon(const json_t *it) {
    const char *kind = jstr(it, "kind"), *st = jstr(it, "status");
    return kind && strcmp(kind, "thread") == 0 && st && strcmp(st, "canon") == 0;
}

static bool in_subcortexes(const hook *h, const json_t *it) {
    const char *sc = jstr(it, "subcortex");
    return sc && (strcmp(sc, cx_config_subcortex(h->cfg)) == 0 ||
                  strcmp(sc, CX_STORE_DEFAULT_SUBCORTEX) == 0);
}

/* What the briefing is made of, read once: the newest threads, the newest
 * observations and the review queue. A kind-filtered listing walks the
 * store's updated_at index, so few listings are made: one per kind, and
 * per-subcortex listings of threads only when this workspace's canon may
 * be crowded out of the newest threads by other subcortexes'. */
typedef struct brief_data {
    json_t *threads; /* summaries, newest first */
    json_t *observations;
    json_t *queue;   /* cx_store_review_list's "drafts", oldest first */
    json_t *queue_res;
} brief_data;

static void gather(hook *h, brief_data *b) {
    b->threads = json_array();
    b->observations = json_array();
    if (!b->threads || !b->observations)
        return;
    recent_into(h, b->threads, "thread", NULL, RECENT_PAGE);
    size_t mine = 0, i;
    json_t *it;
    json_array_foreach(b->threads, i, it)
        mine += is_canon(it) && in_subcortexes(h, it);
    if (json_array_size(b->threads) == RECENT_PAGE && mine < CANON_PER_SUBCORTEX) {
        json_t *more = json_array();
        const char *own = cx_config_subcortex(h->cfg);
        if (more && !late(h))
            recent_into(h, more, "thread", own, CANON_PER_SUBCORTEX);
        if (more && strcmp(own, CX_STORE_DEFAULT_SUBCORTEX) != 0 && !late(h))
            recent_into(h, more, "thread", CX_STORE_DEFAULT_SUBCORTEX, CANON_PER_SUBCORTEX);
        json_array_foreach(more, i, it) {
            bool dup = false;
            size_t j;
            json_t *t;
            json_array_foreach(b->threads, j, t) {
                if ((dup = strcmp(jstr(t, "id") ? jstr(t, "id") : "",
                                  jstr(it, "id") ? jstr(it, "id") : "") == 0))
                    break;
            }
            if (!dup)
                json_array_append(b->threads, it);
        }
        json_decref(more);
    }
    if (!late(h))
        recent_into(h, b->observations, "observation", NULL, RECENT_PAGE);
    if (!late(h)) {
        cx_error_clear();
        int r = cx_store_review_list(h->store, &b->queue_res);
        if (r != 0)
            say(h, "cannot list drafts: %s", cx_error_code() ? cx_error_last() : cx_strerror(r));
        b->queue = json_object_get(b->queue_res, "drafts");
    }
}

static void brief_data_clear(brief_data *b) {
    json_decref(b->threads);
    json_decref(b->observations);
    json_decref(b->queue_res);
}

/* Canon threads in this workspace's subcortex and "general", newest first. */
static void canon_lines(hook *h, const brief_data *b, section *sec) {
    size_t n = json_array_size(b->threads), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        json_t *it = json_array_get(b->threads, i);
        if (is_canon(it) && in_subcortexes(h, it))
            v[k++] = it;
    }
    if (v)
        qsort(v, k, sizeof *v, by_updated_desc);
    for (size_t i = 0; v && i < k; i++) {
        char *title = item_label(v[i], TITLE_MAX);
        char *snip = one_line(jstr(v[i], "snippet"), SNIPPET_MAX, false);
        char *sc = one_line(jstr(v[i], "subcortex"), CX_STORE_MAX_TAG, false);
        const char *id = jstr(v[i], "id");
        if (title && snip && sc)
            list_take(&sec->lines, concat("- ", title, " (", id ? id : "?", ", ", sc, "): ",
                                          snip, (const char *)NULL));
        free(title);
        free(snip);
        free(sc);
    }
    free(v);
}

/* Items whose recorded files changed: of the newest observations, canon
 * threads and drafts awaiting review, the STALE_SCAN newest that have a
 * provenance, checked newest first until the deadline. */
static void stale_lines(hook *h, const brief_data *b, section *sec) {
    cx_prov *p = get_prov(h);
    if (!p || !cx_prov_in_git(p))
        return;
    const json_t *lists[] = {b->threads, b->observations, b->queue};
    size_t n = 0, k = 0;
    for (size_t l = 0; l < 3; l++)
        n += json_array_size(lists[l]);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t l = 0; v && l < 3; l++) {
        size_t i;
        json_t *it;
        json_array_foreach(lists[l], i, it) {
            const char *kind = jstr(it, "kind");
            if (!kind || !json_is_object(json_object_get(it, "provenance")))
                continue;
            if ((strcmp(kind, "thread") == 0 && !is_canon(it)) ||
                (strcmp(kind, "draft") == 0 && !awaiting_review(jstr(it, "status"))))
                continue;
            v[k++] = it;
        }
    }
    if (v)
        qsort(v, k, sizeof *v, by_updated_desc);
    size_t checked = 0, todo = k < STALE_SCAN ? k : STALE_SCAN;
    for (size_t i = 0; v && i < todo; i++) {
        if (late(h)) {
            say(h, "staleness checked for %zu of %zu items before the deadline", checked, todo);
            break;
        }
        json_t *changed = NULL;
        int r = cx_prov_changed(p, json_object_get(v[i], "provenance"), &changed);
        checked++;
        size_t nc = json_array_size(changed);
        if (r == 0 && nc > 0) {
            text paths = {.max = 4096};
            for (size_t j = 0; j < nc && j < PATHS_SHOWN; j++) {
                char *path = one_line(json_string_value(json_array_get(changed, j)), 200, true);
                if (path) {
                    text_put(&paths, j ? ", `" : "`");
                    text_put(&paths, path);
                    text_put(&paths, "`");
                }
                free(path);
            }
            if (nc > PATHS_SHOWN) {
                char more[48];
                snprintf(more, sizeof more, " and %zu more", nc - PATHS_SHOWN);
                text_put(&paths, more);
            }
            char *title = item_label(v[i], TITLE_MAX);
            const char *id = jstr(v[i], "id"), *kind = jstr(v[i], "kind");
            if (title && paths.p)
                list_take(&sec->lines, concat("- ", title, " (", id ? id : "?", ", ", kind,
                                              "): changed ", paths.p, (const char *)NULL));
            free(title);
            free(paths.p);
        }
        json_decref(changed);
    }
    free(v);
}

/* Drafts by this workspace's user awaiting review, newest first, with the
 * reviewer's reason when changes were requested. */
static void draft_lines(hook *h, const brief_data *b, section *sec) {
    size_t reasons = 0;
    for (size_t i = json_array_size(b->queue); i-- > 0 && sec->lines.n < MAX_OWN_DRAFTS;) {
        json_t *d = json_array_get(b->queue, i);
        const char *author = jstr(d, "author"), *id = jstr(d, "id"), *st = jstr(d, "status");
        if (!author || strcmp(author, h->author) != 0 || !id)
            continue;
        bool sent_back = st && strcmp(st, "changes_requested") == 0;
        char *reason = NULL;
        if (sent_back && reasons < MAX_REASONS && !late(h)) {
            json_t *full = NULL;
            reasons++;
            if (cx_store_get(h->store, id, &full) == 0)
                reason = one_line(jstr(json_object_get(full, "review"), "reason"), SNIPPET_MAX,
                                  false);
            json_decref(full);
        }
        char *title = item_label(d, TITLE_MAX);
        if (title)
            list_take(&sec->lines,
                      concat("- ", title, " (", id, "): ",
                             sent_back ? "changes requested" : "pending review",
                             reason && *reason ? ": " : "", reason && *reason ? reason : "",
                             (const char *)NULL));
        free(title);
        free(reason);
    }
}

static size_t trailer_len(size_t n) {
    char b[64];
    return (size_t)snprintf(b, sizeof b, "(%zu more not shown)\n", n);
}

static void add_trailer(text *t, size_t n) {
    char b[64];
    snprintf(b, sizeof b, "(%zu more not shown)\n", n);
    text_put(t, b);
}

/* How many "(N more not shown)" lines the briefing needs when shown[s] of
 * each section's lines are shown: one per section cut short, and one for
 * the sections left out entirely. */
static size_t trailers(const section *secs, const size_t *shown, size_t nsec) {
    size_t k = 0;
    bool left_out = false;
    for (size_t s = 0; s < nsec; s++) {
        size_t n = secs[s].lines.n;
        k += shown[s] > 0 && shown[s] < n;
        left_out |= n > 0 && shown[s] == 0;
    }
    return k + left_out;
}

static char *heading_of(const section *sec, char *buf, size_t cap) {
    snprintf(buf, cap, "\n## %s\n", sec->heading);
    return buf;
}

/* The markdown, at most `budget` bytes: the header, then the sections in
 * order. Lines are dealt to the sections in turns, so one long section
 * cannot crowd out the others, and only while the "(N more not shown)"
 * lines that the result needs still fit; lines are never cut. */
static char *render(const char *header, section *secs, size_t nsec, size_t budget) {
    text t = {.max = budget};
    size_t total = 0, shown[8] = {0}, used = 0;
    char heading[64];
    assert(nsec <= 8);
    for (size_t i = 0; i < nsec; i++)
        total += secs[i].lines.n;
    size_t tl = trailer_len(total), hl = strlen(header);
    size_t avail = budget > (total ? tl : 0) ? budget - (total ? tl : 0) : 0;
    if (hl + 1 <= avail) {
        text_add(&t, header, hl);
        text_put(&t, "\n");
    } else if (avail >= 16) { /* a header cut short, on a character boundary */
        text_add(&t, header, cx_utf8_cut(header, hl, avail - 4));
        text_put(&t, "\xE2\x80\xA6\n");
    }
    used = t.len;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t s = 0; s < nsec; s++) {
            if (shown[s] >= secs[s].lines.n)
                continue;
            size_t need = strlen(secs[s].lines.v[shown[s]]) + 1 +
                          (shown[s] == 0 ? strlen(heading_of(&secs[s], heading, sizeof heading)) : 0);
            shown[s]++;
            if (used + need + trailers(secs, shown, nsec) * tl <= budget) {
                used += need;
                progress = true;
            } else {
                shown[s]--;
            }
        }
    }
    size_t unreported = 0;
    for (size_t s = 0; s < nsec; s++) {
        size_t n = secs[s].lines.n;
        if (shown[s] == 0) {
            unreported += n;
            continue;
        }
        text_put(&t, heading_of(&secs[s], heading, sizeof heading));
        for (size_t i = 0; i < shown[s]; i++) {
            text_put(&t, secs[s].lines.v[i]);
            text_put(&t, "\n");
        }
        if (shown[s] < n)
            add_trailer(&t, n - shown[s]);
    }
    if (unreported)
        add_trailer(&t, unreported);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    return t.p ? t.p : strdup("");
}

static int session_start(hook *h) {
    uint64_t now = cx_clock_now_ms();
    if (!find_workspace(h) || !open_store(h))
        return 0;
    record_session(h, now);
    prune_sessions(h, now);

    size_t tokens = h->o->max_tokens ? h->o->max_tokens : DEFAULT_TOKENS;
    if (tokens > MAX_TOKENS)
        tokens = MAX_TOKENS;
    section secs[3] = {{.heading = "Canon"}, {.heading = "Stale"},
                       {.heading = "Your pending drafts"}};
    brief_data b = {0};
    gather(h, &b);
    canon_lines(h, &b, &secs[0]);
    draft_lines(h, &b, &secs[2]);
    if (!late(h))
        stale_lines(h, &b, &secs[1]);
    if (late(h))
        say(h, "the briefing was cut short by the deadline");
    brief_data_clear(&b);

    char *name = one_line(h->ws->name, 120, true), *header = NULL, *md = NULL;
    bool empty = !secs[0].lines.n && !secs[1].lines.n && !secs[2].lines.n;
    if (name)
        header = concat("Cortex, the team's shared memory, for workspace `", name,
                        "`: use its `search` tool before digging into code, `observe` to record "
                        "what you learn, `draft` to propose knowledge for review.",
                        empty ? "\nNothing in this workspace's memory yet: no canon, no stale "
                                "items, no drafts of yours awaiting review."
                              : "",
                        (const char *)NULL);
    if (header)
        md = render(header, secs, empty ? 0 : 3, tokens * 4);
    json_t *o = md ? json_pack("{s:{s:s, s:s}}", "hookSpecificOutput", "hookEventName",
                               "SessionStart", "additionalContext", md)
                   : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        fputs(s, h->out);
        fputc('\n', h->out);
        fflush(h->out);
        if (h->verbose)
            say(h, "session-start: briefing of %zu bytes (canon %zu, stale %zu, drafts %zu)",
                strlen(md), secs[0].lines.n, secs[1].lines.n, secs[2].lines.n);
    } else {
        say(h, "out of memory writing the briefing");
    }
    free(s);
    json_decref(o);
    free(md);
    free(header);
    free(name);
    for (size_t i = 0; i < 3; i++)
        list_clear(&secs[i].lines);
    return 0;
}

/* ---- stop: the session digest ------------------------------------------ */

/* One observation of the digest (fields borrowed from `item`). */
typedef struct obs {
    json_t *item; /* cx_store_get's envelope, owned */
    const char *id;
} obs;

typedef struct obsv {
    obs *v;
    size_t n, cap;
} obsv;

static bool obsv_take(obsv *l, json_t *item) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        obs *v = realloc(l->v, c * sizeof *v);
        if (!v) {
            json_decref(item);
            return false;
        }
        l->v = v;
        l->cap = c;
    }
    l->v[l->n].item = item;
    l->v[l->n].id = jstr(item, "id");
    l->n++;
    return true;
}

static void obsv_clear(obsv *l) {
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].item);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int obs_by_id(const void *a, const void *b) {
    return strcmp(((const obs *)a)->id, ((const obs *)b)->id);
}

static bool id_in(const json_t *arr, const char *id) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, id) == 0)
            return true;
    }
    return false;
}

/* An array of the valid id strings in `v` (a JSON value from a session
 * file), the newest `keep` when there are more. */
static json_t *id_array(const json_t *v, size_t keep) {
    json_t *a = json_array();
    size_t n = json_array_size(v), from = n > keep ? n - keep : 0;
    for (size_t i = from; a && i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (s && strlen(s) == CX_ULID_LEN)
            json_array_append_new(a, json_string(s));
    }
    return a;
}

/* The item when it counts for the session: an observation, shared, by this
 * workspace's user, created at or after since_ms. NULL otherwise. */
static json_t *session_observation(hook *h, const char *id, uint64_t since_ms) {
    json_t *it = NULL;
    if (cx_store_get(h->store, id, &it) != 0)
        return NULL;
    const char *kind = jstr(it, "kind"), *vis = jstr(it, "visibility"),
               *author = jstr(it, "author"), *created = jstr(it, "created_at");
    uint64_t ms = 0;
    if (kind && strcmp(kind, "observation") == 0 && vis && strcmp(vis, "shared") == 0 &&
        author && strcmp(author, h->author) == 0 && created && cx_clock_parse(created, &ms) == 0 &&
        ms >= since_ms && jstr(it, "id"))
        return it;
    json_decref(it);
    return NULL;
}

/* Observations of the session recorded since `from_ms` that no digest of
 * it covers yet. The store lists at most RECENT_PAGE items per call, newest
 * first; Claude Code runs Stop after every turn, so that is per turn.
 * Returns false when the deadline passed (nothing is kept then). */
static bool new_observations(hook *h, uint64_t start_ms, uint64_t from_ms, const json_t *covered1,
                             const json_t *covered2, obsv *out) {
    char since[CX_ISO_LEN];
    cx_clock_format(from_ms > 0 ? from_ms - 1 : 0, since);
    json_t *res = NULL;
    cx_recent_query q = {.since = since, .kind = "observation", .limit = RECENT_PAGE,
                         .max_tokens = LIST_BYTES / 4};
    cx_error_clear();
    int r = cx_store_recent(h->store, &q, &res);
    if (r != 0) {
        say(h, "cannot list the session's observations: %s",
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    json_t *items = json_object_get(res, "items");
    /* A full page may hide older observations; when its oldest one is
     * already covered, so are (as a rule) those before it. */
    size_t got = json_array_size(items);
    bool full = got == RECENT_PAGE || json_is_true(json_object_get(res, "truncated"));
    const char *oldest = full && got ? jstr(json_array_get(items, got - 1), "id") : NULL;
    if (oldest && !id_in(covered1, oldest) && !id_in(covered2, oldest))
        say(h, "more than %d observations since the last digest; the digest takes the newest %d",
            RECENT_PAGE, RECENT_PAGE);
    size_t i;
    json_t *s;
    bool ok = true;
    json_array_foreach(items, i, s) {
        const char *id = jstr(s, "id"), *author = jstr(s, "author");
        if (!id || !author || strcmp(author, h->author) != 0 || id_in(covered1, id) ||
            id_in(covered2, id))
            continue;
        if (late(h)) {
            ok = false;
            break;
        }
        json_t *it = session_observation(h, id, start_ms);
        if (it && !obsv_take(out, it)) {
            ok = false;
            break;
        }
    }
    json_decref(res);
    return ok;
}

/* Counting strings: (key, observation index) pairs sorted by key. */
typedef struct pair {
    const char *key;
    size_t obs;
} pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->obs > y->obs) - (x->obs < y->obs);
}

typedef struct group {
    const char *key;
    size_t first, count; /* a run in the sorted pairs */
} group;

static int group_cmp(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* Pairs of every string in member `field` (an array) of each observation,
 * grouped by string, most frequent first. */
static int tally(const obsv *ov, const char *field, pair **pairs_out, group **groups_out,
                 size_t *ngroups) {
    size_t np = 0, cap = 0;
    pair *pairs = NULL;
    for (size_t i = 0; i < ov->n; i++) {
        json_t *arr = json_object_get(ov->v[i].item, field);
        size_t j;
        json_t *v;
        json_array_foreach(arr, j, v) {
            const char *s = json_string_value(v);
            if (!s || !*s)
                continue;
            if (np == cap) {
                size_t c = cap ? cap * 2 : 64;
                pair *q = realloc(pairs, c * sizeof *q);
                if (!q) {
                    free(pairs);
                    return CX_ENOMEM;
                }
                pairs = q;
                cap = c;
            }
            pairs[np++] = (pair){s, i};
        }
    }
    if (np)
        qsort(pairs, np, sizeof *pairs, pair_cmp);
    group *groups = calloc(np ? np : 1, sizeof *groups);
    if (!groups) {
        free(pairs);
        return CX_ENOMEM;
    }
    size_t ng = 0;
    for (size_t i = 0; i < np;) {
        size_t j = i;
        size_t distinct = 0;
        while (j < np && strcmp(pairs[j].key, pairs[i].key) == 0) {
            if (j == i || pairs[j].obs != pairs[j - 1].obs)
                distinct++;
            j++;
        }
        groups[ng++] = (group){pairs[i].key, i, distinct};
        i = j;
    }
    qsort(groups, ng, sizeof *groups, group_cmp);
    *pairs_out = pairs;
    *groups_out = groups;
    *ngroups = ng;
    return 0;
}

/* The line of one observation: "- <title or first line> (<id>)". */
static char *obs_line(const obs *o) {
    const char *t = jstr(o->item, "title");
    char *label = NULL;
    if (!blank(t)) {
        label = one_line(t, TITLE_MAX, false);
    } else {
        const char *body = jstr(o->item, "body");
        if (!body)
            body = "";
        while (*body == '\n' || *body == '\r' || *body == ' ' || *body == '\t')
            body++;
        size_t n = strcspn(body, "\n");
        char *first = strndup(body, n > 4096 ? 4096 : n);
        label = first ? one_line(first, TITLE_MAX, false) : NULL;
        free(first);
    }
    char *line = label ? concat("- ", label, " (", o->id, ")\n", (const char *)NULL) : NULL;
    free(label);
    return line;
}

typedef struct digest {
    char title[CX_STORE_MAX_TITLE + 1];
    text body;
    const char **tags, **files, **evidence;
    size_t ntags, nfiles, nevidence;
    const char *subcortex;
    pair *fpairs, *tpairs;
    group *fgroups, *tgroups;
    size_t nfg, ntg;
} digest;

static void digest_clear(digest *d) {
    free(d->body.p);
    free(d->tags);
    free(d->files);
    free(d->evidence);
    free(d->fpairs);
    free(d->tpairs);
    free(d->fgroups);
    free(d->tgroups);
}

/* Adds a line to the body unless the body is full; counts what is left out. */
static void body_line(digest *d, char *line, size_t *left_out) {
    if (!line || !text_put(&d->body, line))
        (*left_out)++;
    free(line);
}

static int make_digest(hook *h, obsv *ov, uint64_t start_ms, uint64_t now_ms, digest *d) {
    qsort(ov->v, ov->n, sizeof *ov->v, obs_by_id); /* ULIDs: oldest first */
    int r;
    if ((r = tally(ov, "files", &d->fpairs, &d->fgroups, &d->nfg)) ||
        (r = tally(ov, "tags", &d->tpairs, &d->tgroups, &d->ntg)))
        return r;

    /* the most common subcortex; ties go to the earliest observation's */
    size_t best = 0, best_n = 0;
    for (size_t i = 0; i < ov->n; i++) {
        const char *sc = jstr(ov->v[i].item, "subcortex");
        size_t c = 0;
        for (size_t j = 0; sc && j < ov->n; j++) {
            const char *o = jstr(ov->v[j].item, "subcortex");
            c += o && strcmp(o, sc) == 0;
        }
        if (c > best_n) {
            best_n = c;
            best = i;
        }
    }
    d->subcortex = ov->n ? jstr(ov->v[best].item, "subcortex") : NULL;

    /* title: "Session digest: N observations on a.c, b.c and 3 more files" */
    int k = snprintf(d->title, sizeof d->title, "Session digest: %zu observation%s on ", ov->n,
                     ov->n == 1 ? "" : "s");
    size_t tl = (size_t)k, room = CX_STORE_MAX_TITLE;
    if (d->nfg == 0) {
        char *sc = one_line(d->subcortex ? d->subcortex : CX_STORE_DEFAULT_SUBCORTEX,
                            room - tl, false);
        if (!sc)
            return CX_ENOMEM;
        snprintf(d->title + tl, sizeof d->title - tl, "%s", sc);
        free(sc);
    } else {
        size_t shown = 0;
        for (; shown < d->nfg; shown++) {
            char *f = one_line(d->fgroups[shown].key, room, false);
            if (!f)
                return CX_ENOMEM;
            size_t fl = strlen(f), sep = shown ? 2 : 0;
            size_t tail = shown + 1 < d->nfg ? 24 : 0; /* " and NNNN more files" */
            if (tl + sep + fl + tail > room) {
                if (shown == 0) { /* one long path: cut it */
                    char *cut = one_line(d->fgroups[0].key, room - tl - 24, false);
                    if (cut) {
                        snprintf(d->title + tl, sizeof d->title - tl, "%s", cut);
                        tl = strlen(d->title);
                        shown = 1;
                    }
                    free(cut);
                }
                free(f);
                break;
            }
            snprintf(d->title + tl, sizeof d->title - tl, "%s%s", sep ? ", " : "", f);
            tl += sep + fl;
            free(f);
        }
        if (shown < d->nfg)
            snprintf(d->title + tl, sizeof d->title - tl, " and %zu more file%s", d->nfg - shown,
                     d->nfg - shown == 1 ? "" : "s");
    }

    /* body */
    d->body.max = BODY_MAX - 64;
    char start_iso[CX_ISO_LEN], now_iso[CX_ISO_LEN];
    cx_clock_format(start_ms, start_iso);
    cx_clock_format(now_ms, now_iso);
    char *sid = one_line(h->session_id ? h->session_id : "unknown", 128, true);
    char head[512];
    snprintf(head, sizeof head,
             "Observations recorded during agent session `%s` (%s to %s), grouped by file. "
             "Made by `cortex hook stop` without a language model: approve it to keep it as "
             "canon, request changes, or reject it.\n",
             sid ? sid : "?", start_iso, now_iso);
    free(sid);
    text_put(&d->body, head);
    size_t left_out = 0;
    text_put(&d->body, "\n## By file\n");
    for (size_t g = 0; g < d->nfg; g++) {
        char *f = one_line(d->fgroups[g].key, 512, true);
        char cnt[32];
        snprintf(cnt, sizeof cnt, "` (%zu)\n", d->fgroups[g].count);
        body_line(d, f ? concat("\n### `", f, cnt, (const char *)NULL) : NULL, &left_out);
        free(f);
        const pair *p = d->fpairs + d->fgroups[g].first;
        for (size_t i = 0; i < d->fgroups[g].count; p++) {
            if (i > 0 && p->obs == p[-1].obs)
                continue; /* a file named twice in one observation */
            body_line(d, obs_line(&ov->v[p->obs]), &left_out);
            i++;
        }
    }
    size_t other = 0;
    for (size_t i = 0; i < ov->n; i++)
        other += json_array_size(json_object_get(ov->v[i].item, "files")) == 0;
    if (other) {
        char hd[48];
        snprintf(hd, sizeof hd, "\n### Other (%zu)\n", other);
        body_line(d, strdup(hd), &left_out);
        for (size_t i = 0; i < ov->n; i++)
            if (json_array_size(json_object_get(ov->v[i].item, "files")) == 0)
                body_line(d, obs_line(&ov->v[i]), &left_out);
    }
    if (d->ntg) {
        body_line(d, strdup("\n## Tags\n\n"), &left_out);
        for (size_t g = 0; g < d->ntg; g++) {
            char *t = one_line(d->tgroups[g].key, CX_STORE_MAX_TAG, true);
            char cnt[32];
            snprintf(cnt, sizeof cnt, "`: %zu\n", d->tgroups[g].count);
            body_line(d, t ? concat("- `", t, cnt, (const char *)NULL) : NULL, &left_out);
            free(t);
        }
    }
    if (left_out) {
        d->body.max = BODY_MAX;
        char more[64];
        snprintf(more, sizeof more, "\n(%zu more not shown)\n", left_out);
        text_put(&d->body, more);
    }
    if (d->body.oom || !d->body.p)
        return CX_ENOMEM;

    /* tags, files, evidence */
    d->tags = calloc(CX_STORE_MAX_TAGS, sizeof *d->tags);
    d->files = calloc(CX_STORE_MAX_FILES, sizeof *d->files);
    d->evidence = calloc(CX_STORE_MAX_EVIDENCE, sizeof *d->evidence);
    if (!d->tags || !d->files || !d->evidence)
        return CX_ENOMEM;
    d->tags[d->ntags++] = "session-digest";
    for (size_t g = 0; g < d->ntg && d->ntags < CX_STORE_MAX_TAGS; g++)
        if (strcmp(d->tgroups[g].key, "session-digest") != 0)
            d->tags[d->ntags++] = d->tgroups[g].key;
    for (size_t g = 0; g < d->nfg && d->nfiles < CX_STORE_MAX_FILES; g++)
        d->files[d->nfiles++] = d->fgroups[g].key;
    for (size_t i = 0; i < ov->n && d->nevidence < CX_STORE_MAX_EVIDENCE; i++)
        d->evidence[d->nevidence++] = ov->v[i].id;
    return 0;
}

/* Gets the observations with the given ids (those still in the store). */
static bool fetch_ids(hook *h, const json_t *ids, obsv *out) {
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (late(h))
            return false;
        json_t *it = NULL;
        const char *id = json_string_value(v);
        if (id && cx_store_get(h->store, id, &it) == 0 && jstr(it, "id")) {
            if (!obsv_take(out, it))
                return false;
        } else {
            json_decref(it);
        }
    }
    return true;
}

static json_t *ids_of(const obsv *ov) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < ov->n; i++)
        json_array_append_new(a, json_string(ov->v[i].id));
    return a;
}

/* Makes the digest of ov (replacing what d and *prov held) and the
 * provenance of its files. */
static int build_digest(hook *h, obsv *ov, uint64_t start, uint64_t now, digest *d,
                        json_t **prov) {
    digest_clear(d);
    memset(d, 0, sizeof *d);
    json_decref(*prov);
    *prov = NULL;
    int r = make_digest(h, ov, start, now, d);
    if (r != 0) {
        say(h, "stop: out of memory making the digest");
        return r;
    }
    cx_prov *p = !late(h) ? get_prov(h) : NULL;
    cx_strv files = {d->files, d->nfiles};
    if (p && cx_prov_capture(p, &files, prov) != 0) {
        say(h, "stop: %s; the digest has no provenance", cx_error_last());
        *prov = NULL;
    }
    return 0;
}

static cx_note note_of(const digest *d, const json_t *prov) {
    return (cx_note){
        .title = d->title,
        .body = d->body.p,
        .subcortex = d->subcortex,
        .tags = {d->tags, d->ntags},
        .files = {d->files, d->nfiles},
        .evidence = {d->evidence, d->nevidence},
        .provenance = prov,
    };
}

static int stop(hook *h) {
    int r;
    uint64_t now = cx_clock_now_ms();
    json_t *sess = NULL, *draft_obs = NULL, *earlier = NULL, *res = NULL, *prov = NULL;
    json_t *last = NULL;
    char *path = NULL, *last_path = NULL;
    obsv ov = {0};
    digest d = {0};
    char draft_id[CX_ULID_LEN + 1] = "";

    if (!h->input) {
        say(h, "stop: no hook input on stdin; nothing to do");
        return 0;
    }
    if (!find_workspace(h))
        return 0;
    last_path = cx_fs_join(h->sessions_dir, LAST_DIGEST);
    path = h->sid[0] ? session_path(h, h->sid) : NULL;
    if (!last_path || (h->sid[0] && !path)) {
        say(h, "out of memory");
        goto out;
    }
    sess = path ? load_state(h, path) : NULL;
    uint64_t start = sess ? json_ms(sess, "started_ms") : 0;
    if (!start) { /* no session-start seen: since the last digest, at most a day back */
        last = load_state(h, last_path);
        uint64_t floor = now > FALLBACK_MS ? now - FALLBACK_MS : 0, at = json_ms(last, "at_ms");
        start = at > floor ? at : floor;
        json_decref(sess);
        char iso[CX_ISO_LEN];
        cx_clock_format(start, iso);
        sess = json_pack("{s:s?, s:s, s:I, s:b}", "session_id", h->session_id, "started_at", iso,
                         "started_ms", (json_int_t)start, "inferred", 1);
        if (!sess) {
            say(h, "out of memory");
            goto out;
        }
    }
    const char *did = jstr(sess, "draft_id");
    if (did && strlen(did) == CX_ULID_LEN)
        memcpy(draft_id, did, sizeof draft_id);
    draft_obs = id_array(json_object_get(sess, "draft_observations"), MAX_DIGEST);
    earlier = id_array(json_object_get(sess, "earlier_observations"), MAX_EARLIER);
    if (!draft_obs || !earlier) {
        say(h, "out of memory");
        goto out;
    }
    uint64_t digested = json_ms(sess, "digested_ms");
    uint64_t from = digested > start + SLACK_MS ? digested - SLACK_MS : start;

    if (!open_store(h))
        goto out;
    if (!new_observations(h, start, from, draft_obs, earlier, &ov)) {
        if (late(h))
            say(h, "stop: ran out of time; the next stop will pick these observations up");
        goto out;
    }
    size_t fresh = ov.n;
    if (fresh == 0) {
        if (h->verbose)
            say(h, "stop: no new observations in this session");
        goto out;
    }

    /* revise the session's digest while it awaits review, else start anew */
    bool revise = false;
    if (draft_id[0]) {
        json_t *dj = NULL;
        if (cx_store_get(h->store, draft_id, &dj) == 0) {
            const char *kind = jstr(dj, "kind");
            revise = kind && strcmp(kind, "draft") == 0 && awaiting_review(jstr(dj, "status"));
        }
        json_decref(dj);
        if (revise && json_array_size(draft_obs) + fresh > MAX_DIGEST)
            revise = false; /* full: the rest goes into a new digest */
        if (!revise) {
            json_array_extend(earlier, draft_obs);
            json_array_clear(draft_obs);
            draft_id[0] = '\0';
        }
    }
    if (revise && !fetch_ids(h, draft_obs, &ov)) {
        say(h, "stop: ran out of time; the next stop will pick these observations up");
        goto out;
    }
    if ((r = build_digest(h, &ov, start, now, &d, &prov)) != 0)
        goto out;
    cx_note note = note_of(&d, prov);
    cx_actor who = {.author = h->author, .agent = HOOK_AGENT};
    cx_error_clear();
    if (revise) {
        r = cx_store_draft_revise(h->store, &who, draft_id, &note, &res);
        if (r == CX_ECONFLICT || r == CX_ENOTFOUND) {
            /* decided a moment ago: the new observations make a new digest */
            say(h, "stop: the session's digest %s was decided meanwhile; starting a new one",
                draft_id);
            revise = false;
            json_array_extend(earlier, draft_obs);
            json_array_clear(draft_obs);
            for (size_t i = ov.n; i-- > 0;)
                if (id_in(earlier, ov.v[i].id)) {
                    json_decref(ov.v[i].item);
                    ov.v[i] = ov.v[--ov.n];
                }
            if ((r = build_digest(h, &ov, start, now, &d, &prov)) != 0)
                goto out;
            note = note_of(&d, prov);
            cx_error_clear();
        }
    }
    if (!revise)
        r = cx_store_draft(h->store, &who, &note, &res);
    if (r != 0) {
        say(h, "stop: cannot %s the session digest: %s", revise ? "revise" : "make",
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        goto out;
    }
    const char *id = jstr(res, "id");
    if (!id || strlen(id) != CX_ULID_LEN) {
        say(h, "stop: the store answered without a draft id");
        goto out;
    }
    memcpy(draft_id, id, sizeof draft_id);

    /* remember it: in the session file, and as the workspace's last digest */
    json_t *ids = ids_of(&ov);
    json_t *trimmed = id_array(earlier, MAX_EARLIER);
    if (ids && trimmed) {
        json_object_set_new(sess, "draft_id", json_string(draft_id));
        json_object_set_new(sess, "draft_observations", ids);
        json_object_set_new(sess, "earlier_observations", trimmed);
        json_object_set_new(sess, "digested_ms", json_integer((json_int_t)now));
        ids = trimmed = NULL;
        if (path)
            save_state(h, path, sess);
    } else {
        say(h, "stop: out of memory recording the digest");
    }
    json_decref(ids);
    json_decref(trimmed);
    json_t *ld = json_pack("{s:I, s:s, s:s?}", "at_ms", (json_int_t)now, "draft_id", draft_id,
                           "session_id", h->session_id);
    if (ld)
        save_state(h, last_path, ld);
    json_decref(ld);
    if (h->verbose)
        say(h, "stop: digest %s %s: %zu observation%s (%zu new)", draft_id,
            revise ? "revised" : "made", ov.n, ov.n == 1 ? "" : "s", fresh);
out:
    digest_clear(&d);
    obsv_clear(&ov);
    json_decref(prov);
    json_decref(res);
    json_decref(sess);
    json_decref(last);
    json_decref(draft_obs);
    json_decref(earlier);
    free(path);
    free(last_path);
    return 0;
}

/* ---- entry ------------------------------------------------------------- */

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
        say(&h, "unknown event '%s'; the events are session-start and stop",
            event ? event : "(none)");
        return 2;
    }
    h.author = strdup(h.o->author && *h.o->author ? h.o->author : "unknown");
    if (!h.author) {
        say(&h, "out of memory");
        return 0;
    }
    read_input(&h, in);
    sanitise_sid(h.session_id, h.sid);
    if (start)
        session_start(&h);
    else
        stop(&h);
    cx_session_free(h.session);
    json_decref(h.input);
    free(h.sessions_dir);
    free(h.author);
    return 0;
}
