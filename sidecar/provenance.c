/* SPDX-License-Identifier: Apache-2.0 */
/* Provenance capture and staleness checks over libgit2 (see provenance.h):
 * path normalisation and confinement to the workspace, blob ids of working
 * tree files behind a stat cache, HEAD and remote lookup, credential
 * stripping of remote URLs, and redaction of every text captured (remote,
 * branch, paths: a token in a branch name or a file name is no safer than
 * one in a note; the store redacts the provenance again). */
#include "provenance.h"

#include "gitlib.h"
#include "redact/redact.h"
#include "util/error.h"
#include "util/utf8.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEX_LEN GIT_OID_HEXSZ
/* Cached blob ids; the table is emptied when it holds this many. */
#define CACHE_MAX 4096u
/* A file whose mtime or ctime is this close to the moment it was hashed may
 * change again without its stat changing (coarse file system clocks: a
 * jiffy on Linux, 1 s on ext3 and HFS+, 2 s on FAT), so its id is not
 * trusted from the cache until it is older (git's "racy git" problem). */
#define RACY_NS (2 * 1000000000LL)
/* Remotes remembered per repository; more are ignored. */
#define MAX_REMOTES 64
/* Attempts to hash a file that keeps changing while it is read. */
#define HASH_TRIES 3

typedef enum {
    ST_OUTSIDE, /* escapes the workspace: never read */
    ST_MISSING,
    ST_BLOB, /* a regular file or a symlink, with its blob id */
    ST_DIRECTORY,
    ST_SPECIAL,    /* fifo, socket, device: never opened */
    ST_UNREADABLE, /* exists, but stat or read failed (permissions) */
} state_kind;

typedef struct state {
    state_kind kind;
    char blob[HEX_LEN + 1];
} state;

/* What stat() said about a file when its blob id was computed. */
typedef struct ident {
    dev_t dev;
    ino_t ino;
    off_t size;
    mode_t mode;
    int64_t mtime, ctime;
} ident;

typedef struct entry {
    char *path; /* workspace-relative; NULL = empty slot */
    ident id;
    char blob[HEX_LEN + 1];
} entry;

typedef struct remote {
    char *name;
    char *url; /* credentials stripped */
    char *key; /* host:path, for comparing URLs of one repository */
} remote;

struct cx_prov {
    const cx_git *git;
    git_repository *repo; /* NULL outside git */
    char *root;           /* workspace root, real path, no trailing '/' */
    size_t root_len;
    char *config_path; /* <common dir>/config */
    ident config_id;   /* when the remotes below were read */
    bool remotes_read;
    remote *remotes; /* "origin" first when present */
    size_t n_remotes;
    entry *slots;
    size_t cap, count; /* cap is 0 or a power of two */
};

/* --- small helpers ------------------------------------------------------ */

static int64_t ts_ns(struct timespec t) {
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static ident ident_of(const struct stat *st) {
    return (ident){.dev = st->st_dev,
                   .ino = st->st_ino,
                   .size = st->st_size,
                   .mode = st->st_mode,
                   .mtime = ts_ns(st->st_mtim),
                   .ctime = ts_ns(st->st_ctim)};
}

static bool ident_eq(const ident *a, const ident *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
           a->mtime == b->mtime && a->ctime == b->ctime;
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return ts_ns(t);
}

static bool is_hex_id(const char *s) {
    if (!s || strlen(s) != HEX_LEN)
        return false;
    for (size_t i = 0; i < HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int git_fail(const cx_git *git, const char *what) {
    int r = cx_error_set(CX_EFAIL, "git: %s: %s", what, cx_git_error_message(git, "unknown error"));
    git->error_clear();
    return r;
}

/* --- paths ---------------------------------------------------------------- */

/* Normalises `in` to a path relative to root: "." and empty components
 * dropped, ".." applied lexically. *rel is malloc'd ("." for the root
 * itself). Returns 1 when the path leaves the workspace (then *rel is NULL),
 * 0 on success, CX_ENOMEM. Symlinks are the caller's business (confine()). */
static int normalise(const char *root, size_t root_len, const char *in, char **rel) {
    *rel = NULL;
    size_t n = strlen(in);
    if (n >= PATH_MAX)
        return 1;
    const char *s = in;
    if (in[0] == '/') {
        /* Absolute: must be under the root (lexically, once normalised). */
        char *abs = NULL;
        const char *from_top = in;
        while (*from_top == '/')
            from_top++;
        int r = normalise(root, root_len, from_top, &abs);
        if (r != 0)
            return r;
        size_t an = strlen(abs);
        /* abs is relative to "/" now: compare with root minus its '/'. */
        const char *rt = root + 1;
        size_t rn = root_len - 1;
        if (rn == 0) { /* the workspace is "/" itself */
            *rel = abs;
            return 0;
        }
        if (an >= rn && memcmp(abs, rt, rn) == 0 && (abs[rn] == '/' || abs[rn] == '\0')) {
            const char *tail = abs[rn] ? abs + rn + 1 : ".";
            *rel = strdup(tail);
            free(abs);
            return *rel ? 0 : CX_ENOMEM;
        }
        free(abs);
        return 1;
    }
    char *out = malloc(n + 2);
    if (!out)
        return CX_ENOMEM;
    size_t len = 0;
    while (*s) {
        size_t c = strcspn(s, "/");
        if (c == 0 || (c == 1 && s[0] == '.')) {
            /* nothing */
        } else if (c == 2 && s[0] == '.' && s[1] == '.') {
            if (len == 0) {
                free(out);
                return 1;
            }
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the '/' before the dropped component */
        } else {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, s, c);
            len += c;
        }
        s += c;
        if (*s == '/')
            s++;
    }
    if (len == 0)
        out[len++] = '.';
    out[len] = '\0';
    *rel = out;
    return 0;
}

/* root + "/" + rel into buf (PATH_MAX); false when too long. */
static bool join_abs(const cx_prov *p, const char *rel, char *buf) {
    size_t rl = strlen(rel);
    if (strcmp(rel, ".") == 0) {
        memcpy(buf, p->root, p->root_len + 1);
        return true;
    }
    bool slash = p->root_len > 0 && p->root[p->root_len - 1] != '/';
    if (p->root_len + slash + rl + 1 > PATH_MAX)
        return false;
    memcpy(buf, p->root, p->root_len);
    if (slash)
        buf[p->root_len] = '/';
    memcpy(buf + p->root_len + slash, rel, rl + 1);
    return true;
}

/* True when abs's parent directory, with every symlink followed, lies
 * inside the root: the final component itself is never followed (it is
 * lstat'ed, and a symlink is hashed as its text). */
static bool confined(const cx_prov *p, const char *rel, const char *abs) {
    const char *slash = strrchr(rel, '/');
    if (!slash)
        return true; /* the parent is the root, which is a real path */
    size_t dn = strlen(abs) - strlen(slash);
    char dir[PATH_MAX];
    memcpy(dir, abs, dn);
    dir[dn] = '\0';
    char *real = realpath(dir, NULL);
    if (!real)
        return false;
    size_t rn = strlen(real);
    bool ok = p->root_len == 1 ||
              (rn >= p->root_len && memcmp(real, p->root, p->root_len) == 0 &&
               (real[p->root_len] == '/' || real[p->root_len] == '\0'));
    free(real);
    return ok;
}

/* --- the stat cache ------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static entry *cache_find(cx_prov *p, const char *path) {
    if (p->cap == 0)
        return NULL;
    for (size_t i = hash_str(path) & (p->cap - 1);; i = (i + 1) & (p->cap - 1)) {
        if (!p->slots[i].path)
            return NULL;
        if (strcmp(p->slots[i].path, path) == 0)
            return &p->slots[i];
    }
}

static void cache_clear(cx_prov *p) {
    for (size_t i = 0; i < p->cap; i++)
        free(p->slots[i].path);
    free(p->slots);
    p->slots = NULL;
    p->cap = p->count = 0;
}

static entry *slot_for(entry *slots, size_t cap, const char *path) {
    size_t i = hash_str(path) & (cap - 1);
    while (slots[i].path && strcmp(slots[i].path, path) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Remembers path's blob id; a failure to allocate only costs a re-hash. */
static void cache_put(cx_prov *p, const char *path, const ident *id, const char *blob) {
    entry *e = cache_find(p, path);
    if (!e) {
        if (p->count >= CACHE_MAX)
            cache_clear(p);
        if ((p->count + 1) * 2 > p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 64;
            entry *slots = calloc(cap, sizeof *slots);
            if (!slots)
                return;
            for (size_t i = 0; i < p->cap; i++)
                if (p->slots[i].path)
                    *slot_for(slots, cap, p->slots[i].path) = p->slots[i];
            free(p->slots);
            p->slots = slots;
            p->cap = cap;
        }
        e = slot_for(p->slots, p->cap, path);
        if (!(e->path = strdup(path)))
            return;
        p->count++;
    }
    e->id = *id;
    memcpy(e->blob, blob, HEX_LEN + 1);
}

/* --- what a path is now ----------------------------------------------------- */

/* The blob id of the file or symlink at abs, described by *st (lstat). On a
 * change during the read, *st is updated and the hash taken again. */
static int hash_path(cx_prov *p, const char *abs, struct stat *st, char *blob) {
    git_oid oid;
    /* libgit2 opens the path again for a regular file (streaming it, so
     * large files cost no memory). Should it be swapped for a symlink after
     * lstat, the stat taken afterwards differs and the hash is thrown away;
     * a fifo swapped in would block that open, which only a hostile local
     * process winning a microsecond race could arrange. */
    for (int attempt = 0; attempt < HASH_TRIES; attempt++) {
        if (S_ISLNK(st->st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(abs, target, sizeof target);
            if (n < 0 || (size_t)n >= sizeof target)
                return CX_EIO;
            if (p->git->odb_hash(&oid, target, (size_t)n, GIT_OBJECT_BLOB) != 0)
                return git_fail(p->git, abs);
        } else if (p->git->odb_hashfile(&oid, abs, GIT_OBJECT_BLOB) != 0) {
            p->git->error_clear();
            return CX_EIO;
        }
        struct stat after;
        if (lstat(abs, &after) != 0)
            return CX_EIO;
        ident a = ident_of(st), b = ident_of(&after);
        *st = after;
        if (ident_eq(&a, &b) && (S_ISREG(after.st_mode) || S_ISLNK(after.st_mode))) {
            p->git->oid_tostr(blob, HEX_LEN + 1, &oid);
            return 0;
        }
        if (!S_ISREG(after.st_mode) && !S_ISLNK(after.st_mode))
            return CX_EINVAL; /* became something else: the caller looks again */
    }
    return CX_EIO; /* kept changing */
}

/* The state of workspace-relative `rel` now. Reads nothing outside the
 * workspace; opens only regular files. */
static void probe(cx_prov *p, const char *rel, state *out) {
    char abs[PATH_MAX];
    struct stat st;
    memset(out, 0, sizeof *out);
    if (!join_abs(p, rel, abs)) {
        out->kind = ST_OUTSIDE;
        return;
    }
    if (lstat(abs, &st) != 0) {
        out->kind = (errno == ENOENT || errno == ENOTDIR) ? ST_MISSING : ST_UNREADABLE;
        return;
    }
    ident id = ident_of(&st);
    entry *e = cache_find(p, rel);
    if (e && ident_eq(&e->id, &id) && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) {
        /* The same inode with the same size and times as when it was hashed
         * (and old enough then to be trusted): reading it again would give
         * the same id. Nothing is read, so no confinement check is needed. */
        out->kind = ST_BLOB;
        memcpy(out->blob, e->blob, HEX_LEN + 1);
        return;
    }
    if (!confined(p, rel, abs)) {
        out->kind = ST_OUTSIDE;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        out->kind = ST_DIRECTORY;
        return;
    }
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
        out->kind = ST_SPECIAL;
        return;
    }
    int64_t started = now_ns();
    int r = hash_path(p, abs, &st, out->blob);
    if (r == CX_EINVAL) { /* replaced by a directory or special file meanwhile */
        out->kind = S_ISDIR(st.st_mode) ? ST_DIRECTORY : ST_SPECIAL;
        return;
    }
    if (r != 0) {
        out->kind = ST_UNREADABLE;
        return;
    }
    out->kind = ST_BLOB;
    id = ident_of(&st);
    if ((id.mtime > id.ctime ? id.mtime : id.ctime) < started - RACY_NS)
        cache_put(p, rel, &id, out->blob);
}

/* --- remotes ---------------------------------------------------------------- */

static bool scheme_len(const char *url, size_t *n) {
    size_t i = 0;
    while ((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z') ||
           (url[i] >= '0' && url[i] <= '9') || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    if (i == 0 || strncmp(url + i, "://", 3) != 0)
        return false;
    *n = i;
    return true;
}

static bool is_ssh_scheme(const char *url, size_t n) {
    return (n == 3 && strncasecmp(url, "ssh", 3) == 0) ||
           (n == 7 && (strncasecmp(url, "git+ssh", 7) == 0 || strncasecmp(url, "ssh+git", 7) == 0));
}

char *cx_prov_strip_url(const char *url) {
    size_t n = strlen(url), sn;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    if (!scheme_len(url, &sn)) {
        /* scp-like "user@host:path" (no password in that syntax, but drop
         * one if someone wrote "user:pw@host:path") or a local path. */
        const char *at = strchr(url, '@'), *slash = strchr(url, '/');
        const char *colon = strchr(url, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            size_t k = (size_t)(colon - url);
            memcpy(out, url, k);
            memcpy(out + k, at, n - (size_t)(at - url) + 1);
        } else {
            memcpy(out, url, n + 1);
        }
        return out;
    }
    const char *rest = url + sn + 3;
    size_t auth = strcspn(rest, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth; i++)
        if (rest[i] == '@')
            at = rest + i;
    if (!at) {
        /* "user:pa/ss@host": a password with an unencoded '/', '?' or '#'
         * ends the authority early. A ':' not followed by a port number
         * there means exactly that; strip through the last '@'. */
        const char *colon = memchr(rest, ':', auth);
        bool port = colon != NULL;
        for (const char *c = colon ? colon + 1 : NULL; c && c < rest + auth; c++)
            port = port && *c >= '0' && *c <= '9';
        if (colon && !port)
            at = strrchr(rest, '@');
    }
    size_t k = sn + 3;
    memcpy(out, url, k);
    const char *host = rest;
    if (at) {
        if (is_ssh_scheme(url, sn)) { /* keep the user name */
            size_t user = strcspn(rest, ":@");
            memcpy(out + k, rest, user);
            k += user;
            out[k++] = '@';
        }
        host = at + 1;
    }
    size_t keep = strcspn(host, "?#"); /* tokens hide in queries too */
    memcpy(out + k, host, keep);
    out[k + keep] = '\0';
    return out;
}

/* "host:path" with user, port, scheme, a trailing ".git" and slashes gone,
 * the host in lower case; ":path" for local repositories. */
static char *remote_key(const char *url) {
    char *s = cx_prov_strip_url(url);
    if (!s)
        return NULL;
    size_t n = strlen(s), sn;
    char *key = malloc(n + 2);
    if (!key) {
        free(s);
        return NULL;
    }
    const char *host = "", *path = s;
    size_t host_len = 0;
    if (scheme_len(s, &sn)) {
        const char *a = s + sn + 3;
        size_t auth = strcspn(a, "/");
        const char *at = memchr(a, '@', auth);
        host = at ? at + 1 : a;
        host_len = auth - (size_t)(host - a);
        const char *colon = memchr(host, ':', host_len);
        if (colon)
            host_len = (size_t)(colon - host);
        path = a + auth;
    } else {
        const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
        if (colon && (!slash || colon < slash)) { /* scp-like */
            const char *at = memchr(s, '@', (size_t)(colon - s));
            host = at ? at + 1 : s;
            host_len = (size_t)(colon - host);
            path = colon + 1;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < host_len; i++) {
        char c = host[i];
        key[k++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    key[k++] = ':';
    while (*path == '/' || *path == '~')
        path++;
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (pl >= 4 && memcmp(path + pl - 4, ".git", 4) == 0)
        pl -= 4;
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    memcpy(key + k, path, pl);
    key[k + pl] = '\0';
    free(s);
    return key;
}

static void remotes_clear(cx_prov *p) {
    for (size_t i = 0; i < p->n_remotes; i++) {
        free(p->remotes[i].name);
        free(p->remotes[i].url);
        free(p->remotes[i].key);
    }
    free(p->remotes);
    p->remotes = NULL;
    p->n_remotes = 0;
    p->remotes_read = false;
}

/* Records remote `name` (name_len bytes) with its first URL; later URLs of
 * the same remote (more fetch URLs) are ignored, as git does for fetching. */
static int add_remote(cx_prov *p, const char *name, size_t name_len, const char *url,
                      size_t *cap) {
    for (size_t i = 0; i < p->n_remotes; i++)
        if (strlen(p->remotes[i].name) == name_len &&
            memcmp(p->remotes[i].name, name, name_len) == 0)
            return 0;
    if (p->n_remotes >= MAX_REMOTES || !cx_utf8_valid(url, strlen(url)))
        return 0;
    if (p->n_remotes == *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        remote *grown = realloc(p->remotes, n * sizeof *grown);
        if (!grown)
            return CX_ENOMEM;
        p->remotes = grown;
        *cap = n;
    }
    remote x = {.name = strndup(name, name_len),
                .url = cx_prov_strip_url(url),
                .key = remote_key(url)};
    if (!x.name || !x.url || !x.key) {
        free(x.name);
        free(x.url);
        free(x.key);
        return CX_ENOMEM;
    }
    p->remotes[p->n_remotes++] = x;
    return 0;
}

/* Reads the remotes again when the repository's config file changed since
 * they were last read: "remote.<name>.url" entries of a config snapshot, in
 * config order with "origin" moved first. URLs are taken as written
 * (url.<base>.insteadOf rewrites, often used to add credentials, are not
 * applied). */
static int remotes_refresh(cx_prov *p) {
    struct stat st;
    ident id = {0};
    if (stat(p->config_path, &st) == 0)
        id = ident_of(&st);
    if (p->remotes_read && ident_eq(&id, &p->config_id))
        return 0;
    remotes_clear(p);
    git_config *cfg = NULL;
    git_config_iterator *it = NULL;
    git_config_entry *e;
    size_t cap = 0;
    int r = 0, g;
    if (p->git->repository_config_snapshot(&cfg, p->repo) != 0 ||
        p->git->config_iterator_new(&it, cfg) != 0) {
        r = git_fail(p->git, "reading the repository config");
        goto out;
    }
    while ((g = p->git->config_next(&e, it)) == 0) {
        size_t n = strlen(e->name);
        if (n > 11 && strncmp(e->name, "remote.", 7) == 0 &&
            strcmp(e->name + n - 4, ".url") == 0 && e->value &&
            (r = add_remote(p, e->name + 7, n - 11, e->value, &cap)) != 0)
            goto out;
    }
    if (g != GIT_ITEROVER) {
        r = git_fail(p->git, "reading the repository config");
        goto out;
    }
    for (size_t i = 1; i < p->n_remotes; i++) {
        if (strcmp(p->remotes[i].name, "origin") == 0) {
            remote origin = p->remotes[i];
            memmove(p->remotes + 1, p->remotes, i * sizeof *p->remotes);
            p->remotes[0] = origin;
            break;
        }
    }
    p->config_id = id;
    p->remotes_read = true;
out:
    if (it)
        p->git->config_iterator_free(it);
    if (cfg)
        p->git->config_free(cfg);
    if (r != 0)
        remotes_clear(p);
    return r;
}

/* --- the API ---------------------------------------------------------------- */

int cx_prov_open(cx_prov **out, const cx_workspace *ws) {
    assert(ws && ws->root);
    int r = 0;
    cx_prov *p = calloc(1, sizeof *p);
    if (!p)
        return CX_ENOMEM;
    p->root = strdup(ws->root);
    if (!p->root) {
        r = CX_ENOMEM;
        goto out;
    }
    p->root_len = strlen(p->root);
    while (p->root_len > 1 && p->root[p->root_len - 1] == '/')
        p->root[--p->root_len] = '\0';
    if (ws->git_dir) {
        if (!(p->git = cx_git_get())) {
            r = cx_error_code();
            goto out;
        }
        if (p->git->repository_open_ext(&p->repo, p->root, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) !=
            0) {
            p->repo = NULL;
            r = git_fail(p->git, p->root);
            goto out;
        }
        const char *common = p->git->repository_commondir(p->repo);
        size_t cn = strlen(common);
        if (!(p->config_path = malloc(cn + sizeof "/config"))) {
            r = CX_ENOMEM;
            goto out;
        }
        memcpy(p->config_path, common, cn);
        memcpy(p->config_path + cn, cn && common[cn - 1] == '/' ? "config" : "/config",
               cn && common[cn - 1] == '/' ? sizeof "config" : sizeof "/config");
    }
    *out = p;
    p = NULL;
out:
    cx_prov_free(p);
    return r;
}

void cx_prov_free(cx_prov *p) {
    if (!p)
        return;
    cache_clear(p);
    remotes_clear(p);
    if (p->repo)
        p->git->repository_free(p->repo);
    free(p->config_path);
    free(p->root);
    free(p);
}

bool cx_prov_in_git(const cx_prov *p) {
    return p && p->repo;
}

/* Sets obj[key] to a string; invalid UTF-8 is left out (a path or URL that
 * JSON cannot carry), allocation failure is CX_ENOMEM. */
static int set_str(json_t *obj, const char *key, const char *val) {
    if (!cx_utf8_valid(val, strlen(val))) /* jansson accepts nothing else */
        return 0;
    return json_object_set_new(obj, key, json_string(val)) == 0 ? 0 : CX_ENOMEM;
}

/* set_str for a text (a remote, a branch, a path): redacted first. Sets
 * *redacted (may be NULL) when something was. */
static int set_text(json_t *obj, const char *key, const char *val, bool *redacted) {
    char *clean = NULL;
    int r = cx_redact_text(val, strlen(val), &clean, NULL, NULL);
    if (r == 0)
        r = set_str(obj, key, clean ? clean : val);
    if (redacted)
        *redacted = clean != NULL;
    free(clean);
    return r;
}

/* branch and head of HEAD into obj. */
static int capture_head(cx_prov *p, json_t *obj) {
    git_reference *head = NULL;
    int r = 0;
    if (p->git->reference_lookup(&head, p->repo, "HEAD") != 0)
        return git_fail(p->git, "reading HEAD");
    if (p->git->reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
        const char *target = p->git->reference_symbolic_target(head);
        if (target && strncmp(target, "refs/heads/", 11) == 0)
            target += 11;
        if (target && (r = set_text(obj, "branch", target, NULL)) != 0)
            goto out;
    }
    git_oid oid;
    int g = p->git->reference_name_to_id(&oid, p->repo, "HEAD");
    if (g == 0) {
        char hex[HEX_LEN + 1];
        p->git->oid_tostr(hex, sizeof hex, &oid);
        r = set_str(obj, "head", hex);
    } else if (g == GIT_ENOTFOUND || g == GIT_EUNBORNBRANCH) {
        p->git->error_clear(); /* no commit yet */
    } else {
        r = git_fail(p->git, "resolving HEAD");
    }
out:
    p->git->reference_free(head);
    return r;
}

/* A file's entry. A path that held a secret is recorded redacted, with
 * "redacted": true and no state: it names no file any more, so it is never
 * checked for staleness. */
static int file_entry(const char *path, const state *s, json_t **out) {
    json_t *f = json_object();
    if (!f)
        return CX_ENOMEM;
    bool redacted = false;
    int r = set_text(f, "path", path, &redacted);
    if (r == 0 && redacted) {
        r = json_object_set_new(f, "redacted", json_true()) ? CX_ENOMEM : 0;
        goto out;
    }
    switch (s->kind) {
    case ST_BLOB:
        r = r ? r : set_str(f, "blob", s->blob);
        break;
    case ST_MISSING:
        r = r ? r : (json_object_set_new(f, "missing", json_true()) ? CX_ENOMEM : 0);
        break;
    case ST_DIRECTORY:
        r = r ? r : (json_object_set_new(f, "directory", json_true()) ? CX_ENOMEM : 0);
        break;
    case ST_SPECIAL:
        r = r ? r : (json_object_set_new(f, "special", json_true()) ? CX_ENOMEM : 0);
        break;
    case ST_UNREADABLE:
        r = r ? r : (json_object_set_new(f, "unreadable", json_true()) ? CX_ENOMEM : 0);
        break;
    case ST_OUTSIDE:
        r = r ? r : (json_object_set_new(f, "outside", json_true()) ? CX_ENOMEM : 0);
        break;
    }
out:
    if (r != 0 || !json_object_get(f, "path")) {
        json_decref(f);
        f = NULL; /* a path JSON cannot carry is left out */
    }
    *out = f;
    return r;
}

int cx_prov_capture(cx_prov *p, const cx_strv *files, json_t **out) {
    size_t n = files ? files->n : 0;
    if (n > CX_STORE_MAX_FILES)
        return cx_error_set(CX_ELIMIT, "at most %d files, got %zu", CX_STORE_MAX_FILES, n);
    if (!p->repo) {
        *out = NULL;
        return 0;
    }
    int r = 0;
    char *seen[CX_STORE_MAX_FILES];
    size_t n_seen = 0;
    json_t *obj = json_object(), *arr = json_array();
    if (!obj || !arr || json_object_set(obj, "files", arr) != 0) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = remotes_refresh(p)) != 0)
        goto out;
    if (p->n_remotes > 0 && (r = set_text(obj, "remote", p->remotes[0].url, NULL)) != 0)
        goto out;
    if ((r = capture_head(p, obj)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *in = files->v[i];
        if (!in)
            continue;
        char *rel = NULL;
        state s = {.kind = ST_OUTSIDE};
        int k = normalise(p->root, p->root_len, in, &rel);
        if (k < 0) {
            r = k;
            goto out;
        }
        const char *shown = k == 0 ? rel : in;
        bool dup = false;
        for (size_t j = 0; j < n_seen && !dup; j++)
            dup = strcmp(seen[j], shown) == 0;
        if (dup) {
            free(rel);
            continue;
        }
        if (!(seen[n_seen] = strdup(shown))) {
            free(rel);
            r = CX_ENOMEM;
            goto out;
        }
        n_seen++;
        if (k == 0)
            probe(p, rel, &s);
        json_t *f = NULL;
        r = file_entry(shown, &s, &f);
        free(rel);
        if (r != 0)
            goto out;
        if (f && json_array_append_new(arr, f) != 0) {
            r = CX_ENOMEM;
            goto out;
        }
    }
    *out = obj;
    obj = NULL;
out:
    for (size_t j = 0; j < n_seen; j++)
        free(seen[j]);
    json_decref(arr);
    json_decref(obj);
    return r;
}

/* Whether `recorded` (a remote URL from another time or machine) names one
 * of this repository's remotes. Unknown on either side counts as the same. */
static int same_repository(cx_prov *p, const json_t *provenance, bool *same) {
    *same = true;
    const char *url = json_string_value(json_object_get(provenance, "remote"));
    if (!url)
        return 0;
    int r = remotes_refresh(p);
    if (r != 0 || p->n_remotes == 0)
        return r == CX_ENOMEM ? r : 0;
    char *key = remote_key(url);
    if (!key)
        return CX_ENOMEM;
    *same = false;
    for (size_t i = 0; i < p->n_remotes && !*same; i++)
        *same = strcmp(key, p->remotes[i].key) == 0;
    free(key);
    return 0;
}

int cx_prov_changed(cx_prov *p, const json_t *provenance, json_t **changed) {
    json_t *arr = json_array();
    if (!arr)
        return CX_ENOMEM;
    int r = 0;
    const json_t *files = json_object_get(provenance, "files");
    if (!p->repo || !json_is_array(files) || json_array_size(files) == 0)
        goto done;
    bool same;
    if ((r = same_repository(p, provenance, &same)) != 0)
        goto out;
    if (!same)
        goto done;
    size_t n = json_array_size(files);
    if (n > CX_STORE_MAX_FILES)
        n = CX_STORE_MAX_FILES;
    for (size_t i = 0; i < n; i++) {
        const json_t *f = json_array_get(files, i);
        const char *path = json_string_value(json_object_get(f, "path"));
        if (!path)
            continue;
        state was = {.kind = ST_UNREADABLE};
        const char *blob = json_string_value(json_object_get(f, "blob"));
        if (is_hex_id(blob)) {
            was.kind = ST_BLOB;
            memcpy(was.blob, blob, HEX_LEN + 1);
        } else if (json_is_true(json_object_get(f, "missing"))) {
            was.kind = ST_MISSING;
        } else if (json_is_true(json_object_get(f, "directory"))) {
            was.kind = ST_DIRECTORY;
        } else if (json_is_true(json_object_get(f, "special"))) {
            was.kind = ST_SPECIAL;
        } else {
            continue; /* outside, unreadable or unknown: no baseline */
        }
        char *rel = NULL;
        int k = normalise(p->root, p->root_len, path, &rel);
        if (k < 0) {
            r = k;
            goto out;
        }
        if (k > 0)
            continue; /* never read what lies outside, whoever recorded it */
        state now;
        probe(p, rel, &now);
        bool differs = now.kind != was.kind ||
                       (now.kind == ST_BLOB && strcmp(now.blob, was.blob) != 0);
        bool listed = false;
        for (size_t j = 0; differs && !listed && j < json_array_size(arr); j++)
            listed = strcmp(json_string_value(json_array_get(arr, j)), rel) == 0;
        if (differs && !listed && json_array_append_new(arr, json_string(rel)) != 0)
            r = CX_ENOMEM;
        free(rel);
        if (r != 0)
            goto out;
    }
done:
    *changed = arr;
    return 0;
out:
    json_decref(arr);
    return r;
}

int cx_prov_stale(void *ud, const json_t *provenance, json_t **changed) {
    json_t *ch = NULL;
    int r = cx_prov_changed(ud, provenance, &ch);
    if (r != 0)
        return r;
    if (json_array_size(ch) == 0) {
        json_decref(ch);
        return 0;
    }
    *changed = ch;
    return 1;
}
