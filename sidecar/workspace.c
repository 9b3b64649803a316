/* SPDX-License-Identifier: Apache-2.0 */
/* Workspace discovery: explicit dir, $CORTEX_WORKSPACE, enclosing git work
 * tree (libgit2), or the current directory; and the state directory. */
#include "workspace.h"

#include "gitlib.h"
#include "util/error.h"
#include "util/fsx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXCLUDE_LINE "/.cortex/"

void cx_workspace_free(cx_workspace *ws) {
    if (!ws)
        return;
    free(ws->root);
    free(ws->state_dir);
    free(ws->git_dir);
    free(ws->name);
    free(ws);
}

int cx_workspace_dup(cx_workspace **out, const cx_workspace *ws) {
    cx_workspace *c = calloc(1, sizeof *c);
    if (!c)
        return CX_ENOMEM;
    c->root = strdup(ws->root);
    c->state_dir = strdup(ws->state_dir);
    c->git_dir = ws->git_dir ? strdup(ws->git_dir) : NULL;
    c->name = strdup(ws->name);
    if (!c->root || !c->state_dir || (ws->git_dir && !c->git_dir) || !c->name) {
        cx_workspace_free(c);
        return CX_ENOMEM;
    }
    *out = c;
    return 0;
}

/* Does an info/exclude text have a line that excludes the state directory? */
static bool has_exclude_line(const char *text) {
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if ((n == strlen(EXCLUDE_LINE) && memcmp(p, EXCLUDE_LINE, n) == 0) ||
            (n == 8 && memcmp(p, ".cortex/", 8) == 0) || (n == 7 && memcmp(p, ".cortex", 7) == 0))
            return true;
        p = nl ? nl + 1 : p + n;
    }
    return false;
}

bool cx_workspace_excluded(const cx_workspace *ws) {
    if (!ws->git_dir)
        return false;
    char *path = cx_fs_join(ws->git_dir, "info/exclude"), *text = NULL;
    size_t len = 0;
    bool yes = path && cx_fs_read_file(path, 1u << 20, &text, &len) == 0 && has_exclude_line(text);
    cx_error_clear();
    free(text);
    free(path);
    return yes;
}

/* Whether text has the line `line`, or the same without its leading '/'. */
static bool has_line(const char *text, const char *line) {
    const char *alt = line[0] == '/' ? line + 1 : line;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if ((n == strlen(line) && memcmp(p, line, n) == 0) || (n == strlen(alt) && memcmp(p, alt, n) == 0))
            return true;
        p = nl ? nl + 1 : p + n;
    }
    return false;
}

/* Adds `line` (after a "# comment" line) to <common git dir>/info/exclude
 * unless a line already says it. Failures only cost a noisy `git status`,
 * so they are ignored. */
static void add_exclude(const char *common_dir, const char *line, const char *comment) {
    char *info = cx_fs_join(common_dir, "info");
    char *path = info ? cx_fs_join(info, "exclude") : NULL;
    char *old = NULL;
    size_t len = 0;
    if (!path || cx_fs_mkdir_p(info, 0755) != 0)
        goto out;
    int r = cx_fs_read_file(path, 1u << 20, &old, &len);
    if (r != 0 && r != CX_ENOTFOUND)
        goto out;
    if (strcmp(line, EXCLUDE_LINE) == 0 ? has_exclude_line(old) : has_line(old, line))
        goto out;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    char buf[512];
    int k = snprintf(buf, sizeof buf, "%s# %s\n%s\n",
                     (len > 0 && old[len - 1] != '\n') ? "\n" : "", comment, line);
    if (k > 0 && (size_t)k < sizeof buf && write(fd, buf, (size_t)k) != k) { /* best effort */
    }
    close(fd);
out:
    free(old);
    free(path);
    free(info);
}

int cx_workspace_exclude(const cx_workspace *ws, const char *line, const char *comment) {
    if (!ws->git_dir)
        return 0;
    const cx_git *git = cx_git_get();
    if (!git)
        return cx_error_code();
    git_repository *repo = NULL;
    if (git->repository_open_ext(&repo, ws->root, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
        git->error_clear();
        return 0;
    }
    add_exclude(git->repository_commondir(repo), line, comment);
    git->repository_free(repo);
    return 0;
}

static char *strip_slash(const char *p) {
    char *s = strdup(p);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
    return s;
}

/* Can libgit2 find a repository from dir (only dir itself with
 * `no_search`, else dir and every parent)? Not when no directory on the way
 * has a `.git` entry (a directory or a gitfile) or a `HEAD` (a git
 * directory itself, bare or `.git`): libgit2 needs one of those, and without
 * GIT_REPOSITORY_OPEN_FROM_ENV it reads no environment. The answer "maybe"
 * costs loading libgit2 (dlopen and its CA bundle: 30-70 ms of wall clock,
 * bench/README.md), which a directory outside git then does not pay. */
static bool repository_possible(const char *dir, bool no_search) {
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n + sizeof "/.git" > sizeof path)
        return true;
    memcpy(path, dir, n + 1);
    for (;;) {
        struct stat st;
        for (int k = 0; k < 2; k++) {
            const char *leaf = k ? "/HEAD" : "/.git";
            memcpy(path + n, n == 1 ? leaf + 1 : leaf, strlen(leaf) + (n == 1 ? 0 : 1));
            if (lstat(path, &st) == 0 || errno != ENOENT)
                return true; /* there, or cannot tell */
        }
        if (no_search || n <= 1)
            return false;
        while (n > 1 && path[n - 1] != '/')
            n--;
        if (n > 1)
            n--; /* the parent, without its trailing '/' */
        path[n] = '\0';
    }
}

int cx_workspace_find(cx_workspace **out, const char *explicit_dir, bool create) {
    int r = 0;
    git_repository *repo = NULL;
    char *start = NULL;
    cx_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return CX_ENOMEM;

    const char *dir = explicit_dir && *explicit_dir ? explicit_dir : getenv("CORTEX_WORKSPACE");
    bool from_flag = dir && *dir;
    start = realpath(from_flag ? dir : ".", NULL);
    if (!start) {
        r = cx_error_set(errno == ENOENT ? CX_ENOTFOUND : CX_EIO, "workspace %s: %s",
                         from_flag ? dir : ".", strerror(errno));
        goto out;
    }
    if (!cx_fs_is_dir(start)) {
        r = cx_error_set(CX_EINVAL, "workspace %s is not a directory", start);
        goto out;
    }

    /* An explicit directory is the workspace itself; it is still linked to
     * its repository when it is a repository's work tree. */
    unsigned flags = from_flag ? GIT_REPOSITORY_OPEN_NO_SEARCH : 0;
    const cx_git *git = NULL;
    if (repository_possible(start, from_flag) && !(git = cx_git_get())) {
        r = cx_error_code();
        goto out;
    }
    if (git && git->repository_open_ext(&repo, start, flags, NULL) == 0 &&
        !git->repository_is_bare(repo)) {
        ws->root = strip_slash(git->repository_workdir(repo));
        ws->git_dir = strip_slash(git->repository_path(repo));
        char *real = ws->root ? realpath(ws->root, NULL) : NULL;
        if (real) {
            free(ws->root);
            ws->root = real;
        }
    } else {
        ws->root = strdup(start);
    }
    if (git)
        git->error_clear();
    if (!ws->root) {
        r = CX_ENOMEM;
        goto out;
    }
    const char *base = strrchr(ws->root, '/');
    ws->name = strdup(base && base[1] ? base + 1 : ws->root);
    ws->state_dir = cx_fs_join(ws->root, ".cortex");
    if (!ws->name || !ws->state_dir) {
        r = CX_ENOMEM;
        goto out;
    }
    if (create) {
        if ((r = cx_fs_mkdir_p(ws->state_dir, 0700)) != 0)
            goto out;
        if (repo)
            add_exclude(git->repository_commondir(repo), EXCLUDE_LINE, "Cortex workspace state");
    }
    *out = ws;
    ws = NULL;
out:
    if (repo)
        cx_git_get()->repository_free(repo);
    free(start);
    cx_workspace_free(ws);
    return r;
}
