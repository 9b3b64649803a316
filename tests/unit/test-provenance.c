/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for sidecar/provenance on real git repositories made in
 * temporary directories with the git command line (the code under test uses
 * libgit2): remote credentials stripped, branch and HEAD against `git
 * rev-parse`, blob ids against `git hash-object`, missing and outside paths,
 * staleness after edits, deletes and reverts, detached HEAD, an empty
 * repository, a linked worktree, a plain directory outside git, paths that escape the
 * workspace (never read: they are fifos, which would block an open), and the
 * cost of a staleness check when nothing changed. */
#include "test.h"

#include "provenance.h"
#include "util/clock.h"
#include "util/fsx.h"
#include "workspace.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static char *top; /* every directory of this run lives under it */

/* Runs argv (searched in PATH) in `dir`, stdout into out[cap] with trailing
 * newlines trimmed (when out is given). Returns the exit status, -1 when it
 * could not run. */
static int run_in(const char *dir, char *out, size_t cap, const char *const *argv) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd) || chdir(dir) != 0) {
        close(fds[0]);
        close(fds[1]);
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    pid_t pid;
    int sr = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    if (chdir(cwd) != 0)
        sr = sr ? sr : -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t len = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; out && i < n && len + 1 < cap; i++)
            out[len++] = buf[i];
    }
    close(fds[0]);
    if (out) {
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
            len--;
        out[len] = '\0';
    }
    if (sr != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs a command that must succeed; RUN_OUT keeps its output in `out`. */
#define RUN_OUT(dir, out, ...)                                                             \
    do {                                                                                   \
        const char *argv_[] = {__VA_ARGS__, NULL};                                         \
        int rs_ = run_in(dir, out, sizeof out, argv_);                                     \
        cx_test_report(rs_ == 0, __FILE__, __LINE__, #__VA_ARGS__, "command failed");       \
    } while (0)
#define RUN(dir, ...)                                                                      \
    do {                                                                                   \
        const char *argv_[] = {__VA_ARGS__, NULL};                                         \
        int rs_ = run_in(dir, NULL, 0, argv_);                                             \
        cx_test_report(rs_ == 0, __FILE__, __LINE__, #__VA_ARGS__, "command failed");       \
    } while (0)

static char *mkdir_in(const char *name) {
    char *d = cx_fs_join(top, name);
    if (!d || mkdir(d, 0755) != 0) {
        fprintf(stderr, "mkdir %s failed\n", name);
        exit(2);
    }
    return d;
}

static void write_at(const char *dir, const char *rel, const char *text) {
    char *p = cx_fs_join(dir, rel);
    FILE *f = p ? fopen(p, "w") : NULL;
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p ? p : rel);
        exit(2);
    }
    free(p);
}

static void remove_at(const char *dir, const char *rel) {
    char *p = cx_fs_join(dir, rel);
    CX_CHECK(p && unlink(p) == 0);
    free(p);
}

/* A repository with user config (the test never touches global config). */
static char *new_repo(const char *name, const char *branch) {
    char *d = mkdir_in(name);
    RUN(d, "git", "init", "-q", "-b", branch);
    RUN(d, "git", "config", "user.name", "Test");
    RUN(d, "git", "config", "user.email", "test@example.com");
    return d;
}

static cx_prov *open_prov(const char *dir, cx_workspace **ws) {
    cx_prov *p = NULL;
    *ws = NULL;
    CX_CHECK_OK(cx_workspace_find(ws, dir, false));
    if (*ws)
        CX_CHECK_OK(cx_prov_open(&p, *ws));
    if (!p) {
        fprintf(stderr, "cannot open provenance for %s\n", dir);
        exit(2);
    }
    return p;
}

static json_t *capture(cx_prov *p, const char *const *files, size_t n) {
    cx_strv v = {files, n};
    json_t *out = NULL;
    CX_CHECK_OK(cx_prov_capture(p, &v, &out));
    return out;
}

/* The files entry for path, or NULL. */
static json_t *file_of(json_t *prov, const char *path) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(prov, "files"), i, f) {
        const char *fp = json_string_value(json_object_get(f, "path"));
        if (fp && strcmp(fp, path) == 0)
            return f;
    }
    return NULL;
}

static const char *sget(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* cx_prov_changed as one comma-separated string ("" = nothing changed). */
static const char *changed(cx_prov *p, json_t *prov) {
    static char buf[1024];
    json_t *arr = NULL;
    buf[0] = '\0';
    int r = cx_prov_changed(p, prov, &arr);
    CX_CHECK_OK(r);
    CX_CHECK(r != 0 || json_is_array(arr));
    size_t i, len = 0;
    json_t *v;
    json_array_foreach(arr, i, v) {
        int k = snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "", json_string_value(v));
        if (k > 0 && (size_t)k < sizeof buf - len)
            len += (size_t)k;
    }
    json_decref(arr);
    return buf;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: provenance blocked opening a fifo (it read a path it "
                              "must not read)\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing else to do */
    }
    _exit(1);
}

static void test_strip_url(void) {
    static const char *const cases[][2] = {
        {"https://alice:s3cret@example.com/org/repo.git", "https://example.com/org/repo.git"},
        {"https://ghp_token123@github.com/o/r", "https://github.com/o/r"},
        {"http://u:p@host:8080/x?private_token=abc#frag", "http://host:8080/x"},
        {"https://user:pa/ss@host/x.git", "https://host/x.git"},
        {"https://host:8443/x.git", "https://host:8443/x.git"},
        {"ssh://git:pw@example.com:22/o/r.git", "ssh://git@example.com:22/o/r.git"},
        {"ssh://git@example.com/o/r.git", "ssh://git@example.com/o/r.git"},
        {"git+ssh://me:pw@host/r", "git+ssh://me@host/r"},
        {"git@github.com:o/r.git", "git@github.com:o/r.git"},
        {"me:pw@host:o/r.git", "me@host:o/r.git"},
        {"/srv/git/r.git", "/srv/git/r.git"},
        {"file:///srv/git/r.git", "file:///srv/git/r.git"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = cx_prov_strip_url(cases[i][0]);
        CX_CHECK_STR(s, cases[i][1]);
        free(s);
    }
}

/* A token in a branch name, a remote's path or a file's path is redacted
 * at capture; the redacted path keeps no state and is never stale. */
static void test_redacted(void) {
    const char *ghp = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A7B";
    char branch[96], file[96], url[160];
    snprintf(branch, sizeof branch, "feat/%s", ghp);
    snprintf(file, sizeof file, "notes-%s.md", ghp);
    snprintf(url, sizeof url, "https://example.com/org/%s.git", ghp);
    char *d = new_repo("tokens", branch);
    write_at(d, file, "about the deploy\n");
    write_at(d, "a.c", "int a;\n");
    RUN(d, "git", "add", "-A");
    RUN(d, "git", "commit", "-q", "-m", "first");
    RUN(d, "git", "remote", "add", "origin", url);
    cx_workspace *ws = NULL;
    cx_prov *p = open_prov(d, &ws);
    const char *files[] = {file, "a.c"};
    json_t *prov = capture(p, files, 2);
    char *dump = prov ? json_dumps(prov, JSON_COMPACT) : NULL;
    CX_CHECK(dump && !strstr(dump, ghp + 4));
    free(dump);
    CX_CHECK_STR(sget(prov, "branch"), "feat/[REDACTED:github-pat]");
    CX_CHECK_STR(sget(prov, "remote"), "https://example.com/org/[REDACTED:github-pat].git");
    json_t *f = file_of(prov, "notes-[REDACTED:github-pat].md");
    CX_CHECK(json_is_true(json_object_get(f, "redacted")) && !json_object_get(f, "blob"));
    CX_CHECK(sget(file_of(prov, "a.c"), "blob") != NULL);
    CX_CHECK_STR(changed(p, prov), "");
    write_at(d, file, "changed\n");
    CX_CHECK_STR(changed(p, prov), ""); /* it names no file any more */
    json_decref(prov);
    cx_prov_free(p);
    cx_workspace_free(ws);
    free(d);
}

/* Is libgit2 mapped into this process? */
static bool libgit2_loaded(void) {
    char *maps = NULL;
    size_t len = 0;
    bool yes = cx_fs_read_file("/proc/self/maps", 1u << 24, &maps, &len) == 0 &&
               strstr(maps, "libgit2") != NULL;
    free(maps);
    return yes;
}

/* A workspace outside git is found without loading libgit2 (its start-up
 * costs cortexd's first answer 30-70 ms), explicitly and by search from a
 * subdirectory; one that may be a repository still asks libgit2. Runs
 * before anything else in this process loads it. */
static void test_workspace_without_git(void) {
    if (libgit2_loaded()) {
        fprintf(stderr, "libgit2 is linked in: the lazy load cannot be checked\n");
        CX_CHECK(false);
        return;
    }
    char *plain = mkdir_in("nogit"), *sub = cx_fs_join(plain, "sub");
    CX_CHECK(sub && mkdir(sub, 0755) == 0);
    cx_workspace *ws = NULL;
    CX_CHECK_OK(cx_workspace_find(&ws, sub, false));
    CX_CHECK(ws && strcmp(ws->root, sub) == 0 && ws->git_dir == NULL);
    cx_workspace_free(ws);
    char cwd[4096];
    CX_CHECK(getcwd(cwd, sizeof cwd) != NULL && chdir(sub) == 0);
    ws = NULL;
    CX_CHECK_OK(cx_workspace_find(&ws, NULL, false));
    CX_CHECK(ws && strcmp(ws->root, sub) == 0 && ws->git_dir == NULL);
    cx_workspace_free(ws);
    CX_CHECK(chdir(cwd) == 0);
    CX_CHECK(!libgit2_loaded());
    /* a HEAD file may be a bare repository's: libgit2 decides (it is not one) */
    write_at(sub, "HEAD", "ref: refs/heads/main\n");
    ws = NULL;
    CX_CHECK_OK(cx_workspace_find(&ws, sub, false));
    CX_CHECK(ws && strcmp(ws->root, sub) == 0 && ws->git_dir == NULL);
    cx_workspace_free(ws);
    CX_CHECK(libgit2_loaded());
    free(sub);
    free(plain);
}

int main(void) {
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    unsetenv("CORTEX_WORKSPACE");
    signal(SIGALRM, on_alarm);
    alarm(60);

    char *made = cx_test_tmpdir();
    top = made ? realpath(made, NULL) : NULL;
    free(made);
    if (!top)
        return fprintf(stderr, "no temp dir\n"), 2;
    setenv("HOME", top, 1); /* libgit2 reads ~/.gitconfig: keep it empty */
    uint64_t t0 = cx_clock_mono_ns();

    test_workspace_without_git();
    test_strip_url();
    test_redacted();

    /* The files for the cost measurement, made first: their stat must be
     * over two seconds old before the cache trusts it (see RACY_NS). */
    char *bench = new_repo("bench", "main");
    write_at(bench, "one.c", "int one;\n");
    write_at(bench, "two.c", "int two;\n");
    write_at(bench, "three.h", "int three;\n");

    /* --- a repository with a credentialed remote --------------------------- */
    char *repo = new_repo("repo", "main");
    char *sub = cx_fs_join(repo, "sub");
    CX_CHECK(sub && mkdir(sub, 0755) == 0);
    write_at(repo, "a.c", "int main(void) { return 0; }\n");
    write_at(repo, "b.c", "int b;\n");
    write_at(repo, "sub/c.c", "int c;\n");
    RUN(repo, "git", "add", "-A");
    RUN(repo, "git", "commit", "-q", "-m", "first");
    RUN(repo, "git", "remote", "add", "origin",
        "https://alice:s3cret@example.com/org/repo.git");

    /* Things outside the workspace that must never be opened: fifos (an
     * open would block until the alarm fires), reached through "..", an
     * absolute path, and a symlinked directory. */
    char *outside = mkdir_in("outside");
    char *fifo = cx_fs_join(outside, "fifo");
    CX_CHECK(fifo && mkfifo(fifo, 0644) == 0);
    char *link = cx_fs_join(repo, "link");
    CX_CHECK(link && symlink(outside, link) == 0);
    char *inner_fifo = cx_fs_join(repo, "pipe");
    CX_CHECK(inner_fifo && mkfifo(inner_fifo, 0644) == 0);

    cx_workspace *ws = NULL;
    cx_prov *p = open_prov(repo, &ws);
    CX_CHECK(cx_prov_in_git(p));
    char abs_b[4200];
    snprintf(abs_b, sizeof abs_b, "%s/b.c", repo);
    const char *files[] = {"a.c",  "./sub//c.c", "nope.c", "../outside/fifo", fifo,
                           abs_b,  "sub/",       "link/fifo", "pipe", "a.c",
                           "sub/../b.c"};
    json_t *prov = capture(p, files, sizeof files / sizeof files[0]);
    CX_CHECK(prov != NULL);
    char out[128];
    CX_CHECK_STR(sget(prov, "remote"), "https://example.com/org/repo.git");
    char *dump = json_dumps(prov, JSON_COMPACT);
    CX_CHECK(dump && !strstr(dump, "s3cret") && !strstr(dump, "alice"));
    free(dump);
    CX_CHECK_STR(sget(prov, "branch"), "main");
    RUN_OUT(repo, out, "git", "rev-parse", "HEAD");
    CX_CHECK_STR(sget(prov, "head"), out);
    RUN_OUT(repo, out, "git", "hash-object", "a.c");
    CX_CHECK_STR(sget(file_of(prov, "a.c"), "blob"), out);
    RUN_OUT(repo, out, "git", "hash-object", "sub/c.c");
    CX_CHECK_STR(sget(file_of(prov, "sub/c.c"), "blob"), out);
    RUN_OUT(repo, out, "git", "hash-object", "b.c");
    CX_CHECK_STR(sget(file_of(prov, "b.c"), "blob"), out); /* absolute inside → relative */
    CX_CHECK(json_is_true(json_object_get(file_of(prov, "nope.c"), "missing")));
    CX_CHECK(json_is_true(json_object_get(file_of(prov, "sub"), "directory")));
    CX_CHECK(json_is_true(json_object_get(file_of(prov, "pipe"), "special")));
    json_t *esc = file_of(prov, "../outside/fifo");
    CX_CHECK(json_is_true(json_object_get(esc, "outside")) && !json_object_get(esc, "blob"));
    esc = file_of(prov, fifo);
    CX_CHECK(json_is_true(json_object_get(esc, "outside")) && !json_object_get(esc, "blob"));
    esc = file_of(prov, "link/fifo");
    CX_CHECK(json_is_true(json_object_get(esc, "outside")) && !json_object_get(esc, "blob"));
    /* a.c twice and sub/../b.c (= b.c) are recorded once */
    CX_CHECK_INT(json_array_size(json_object_get(prov, "files")), 9);
    CX_CHECK_STR(changed(p, prov), "");

    /* /etc/passwd and a recorded escape are never read at check time either,
     * whoever recorded them. */
    json_t *hostile = json_pack("{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:b}]}", "files", "path",
                                "/etc/passwd", "blob", "0000000000000000000000000000000000000000",
                                "path", "../outside/fifo", "blob",
                                "0000000000000000000000000000000000000000", "path", fifo, "blob",
                                "0000000000000000000000000000000000000000", "path",
                                "../../../../../../etc/passwd", "missing", 1);
    CX_CHECK_STR(changed(p, hostile), "");
    json_decref(hostile);
    json_t *via_link = json_pack("{s:[{s:s,s:s}]}", "files", "path", "link/fifo", "blob",
                                 "0000000000000000000000000000000000000000");
    CX_CHECK_STR(changed(p, via_link), "link/fifo"); /* gone from the workspace, unread */
    json_decref(via_link);
    char slashes[4200];
    snprintf(slashes, sizeof slashes, "//%s/./sub/../a.c", repo);
    const char *passwd[] = {"/etc/passwd", "//etc/passwd", slashes, "/"};
    json_t *pw = capture(p, passwd, 4);
    CX_CHECK(json_is_true(json_object_get(file_of(pw, "/etc/passwd"), "outside")));
    CX_CHECK(json_is_true(json_object_get(file_of(pw, "//etc/passwd"), "outside")));
    CX_CHECK(json_is_true(json_object_get(file_of(pw, "/"), "outside")));
    CX_CHECK_STR(sget(file_of(pw, "a.c"), "blob"), sget(file_of(prov, "a.c"), "blob"));
    json_decref(pw);

    /* --- staleness ------------------------------------------------------------ */
    const char *three[] = {"a.c", "sub/c.c", "nope.c"};
    json_t *item = capture(p, three, 3);
    CX_CHECK_STR(changed(p, item), "");
    write_at(repo, "a.c", "int main(void) { return 1; }\n"); /* same size, same second */
    CX_CHECK_STR(changed(p, item), "a.c");
    CX_CHECK_STR(changed(p, item), "a.c"); /* and again, from whatever is cached */
    write_at(repo, "a.c", "int main(void) { return 0; }\n");
    CX_CHECK_STR(changed(p, item), "");
    remove_at(repo, "sub/c.c");
    CX_CHECK_STR(changed(p, item), "sub/c.c");
    write_at(repo, "sub/c.c", "int c;\n");
    CX_CHECK_STR(changed(p, item), "");
    write_at(repo, "nope.c", "now here\n"); /* recorded missing, now exists */
    CX_CHECK_STR(changed(p, item), "nope.c");
    remove_at(repo, "nope.c");
    write_at(repo, "a.c", "changed\n");
    remove_at(repo, "sub/c.c");
    CX_CHECK_STR(changed(p, item), "a.c,sub/c.c");
    write_at(repo, "a.c", "int main(void) { return 0; }\n");
    write_at(repo, "sub/c.c", "int c;\n");
    CX_CHECK_STR(changed(p, item), "");
    /* A file replaced by a directory. */
    remove_at(repo, "b.c");
    char *bdir = cx_fs_join(repo, "b.c");
    CX_CHECK(bdir && mkdir(bdir, 0755) == 0);
    json_t *b_item = json_pack("{s:[{s:s,s:s}]}", "files", "path", "b.c", "blob",
                               sget(file_of(prov, "b.c"), "blob"));
    CX_CHECK_STR(changed(p, b_item), "b.c");
    CX_CHECK(bdir && rmdir(bdir) == 0);
    write_at(repo, "b.c", "int b;\n");
    CX_CHECK_STR(changed(p, b_item), "");
    json_decref(b_item);
    free(bdir);

    /* The recorded remote decides whether the paths are this repository's:
     * another URL form of the same repository compares; another repository
     * is never stale here. */
    json_t *other = json_pack("{s:s,s:[{s:s,s:s}]}", "remote", "https://example.com/org/other",
                              "files", "path", "a.c", "blob",
                              "0000000000000000000000000000000000000000");
    CX_CHECK_STR(changed(p, other), "");
    json_object_set_new(other, "remote", json_string("git@EXAMPLE.com:org/repo.git/"));
    CX_CHECK_STR(changed(p, other), "a.c");
    json_object_del(other, "remote");
    CX_CHECK_STR(changed(p, other), "a.c");
    json_decref(other);
    /* Malformed provenance is "nothing recorded". */
    json_t *junk = json_pack("{s:[i,s,{s:i},{s:s,s:s}]}", "files", 1, "x", "path", 2, "path",
                             "a.c", "blob", "not-hex");
    CX_CHECK_STR(changed(p, junk), "");
    CX_CHECK_STR(changed(p, NULL), "");
    json_decref(junk);

    /* Symlinks are recorded as git stores them: the blob of their text. */
    char *ln = cx_fs_join(repo, "ln");
    CX_CHECK(ln && symlink("../outside/fifo", ln) == 0);
    const char *lnf[] = {"ln"};
    json_t *lp = capture(p, lnf, 1);
    RUN(repo, "git", "add", "ln");
    RUN_OUT(repo, out, "git", "rev-parse", ":ln");
    CX_CHECK_STR(sget(file_of(lp, "ln"), "blob"), out);
    json_decref(lp);
    free(ln);

    /* The remote URL follows the config, read again when it changes. */
    RUN(repo, "git", "remote", "set-url", "origin", "ssh://git:pw@example.com/org/repo2.git");
    json_t *again = capture(p, NULL, 0);
    CX_CHECK_STR(sget(again, "remote"), "ssh://git@example.com/org/repo2.git");
    CX_CHECK(json_is_array(json_object_get(again, "files")));
    json_decref(again);

    /* Too many files is the caller's error. */
    const char *many[CX_STORE_MAX_FILES + 1];
    for (size_t i = 0; i < CX_STORE_MAX_FILES + 1; i++)
        many[i] = "a.c";
    cx_strv mv = {many, CX_STORE_MAX_FILES + 1};
    json_t *none = NULL;
    CX_CHECK_INT(cx_prov_capture(p, &mv, &none), CX_ELIMIT);
    CX_CHECK(none == NULL);

    /* --- detached HEAD ---------------------------------------------------------- */
    write_at(repo, "b.c", "int b2;\n");
    RUN(repo, "git", "commit", "-q", "-am", "second");
    RUN(repo, "git", "checkout", "-q", "--detach", "HEAD~1");
    json_t *det = capture(p, NULL, 0);
    CX_CHECK(det && !json_object_get(det, "branch"));
    RUN_OUT(repo, out, "git", "rev-parse", "HEAD");
    CX_CHECK_STR(sget(det, "head"), out);
    json_decref(det);
    cx_prov_free(p);
    cx_workspace_free(ws);

    /* --- a linked worktree: its own HEAD, the main repository's remotes ----------- */
    char *wt = cx_fs_join(top, "wt");
    RUN(repo, "git", "worktree", "add", "-q", "-b", "feature", wt, "main");
    p = open_prov(wt, &ws);
    const char *wf[] = {"a.c"};
    json_t *wp = capture(p, wf, 1);
    CX_CHECK_STR(sget(wp, "branch"), "feature");
    CX_CHECK_STR(sget(wp, "remote"), "ssh://git@example.com/org/repo2.git");
    RUN_OUT(wt, out, "git", "rev-parse", "HEAD");
    CX_CHECK_STR(sget(wp, "head"), out);
    RUN_OUT(wt, out, "git", "hash-object", "a.c");
    CX_CHECK_STR(sget(file_of(wp, "a.c"), "blob"), out);
    write_at(wt, "a.c", "edited in the worktree\n");
    CX_CHECK_STR(changed(p, wp), "a.c");
    json_decref(wp);
    cx_prov_free(p);
    cx_workspace_free(ws);
    free(wt);

    /* --- an empty repository, without a remote ----------------------------------- */
    char *empty = new_repo("empty", "trunk");
    write_at(empty, "new.c", "int n;\n");
    p = open_prov(empty, &ws);
    const char *nf[] = {"new.c"};
    json_t *ep = capture(p, nf, 1);
    CX_CHECK(ep && !json_object_get(ep, "head") && !json_object_get(ep, "remote"));
    CX_CHECK_STR(sget(ep, "branch"), "trunk");
    RUN_OUT(empty, out, "git", "hash-object", "new.c");
    CX_CHECK_STR(sget(file_of(ep, "new.c"), "blob"), out);
    CX_CHECK_STR(changed(p, ep), "");
    write_at(empty, "new.c", "int m;\n");
    CX_CHECK_STR(changed(p, ep), "new.c");
    cx_prov_free(p);
    cx_workspace_free(ws);

    /* --- outside git: no provenance, never stale ---------------------------------- */
    char *plain = mkdir_in("plain");
    write_at(plain, "a.c", "x\n");
    p = open_prov(plain, &ws);
    CX_CHECK(!cx_prov_in_git(p));
    const char *pf[] = {"a.c"};
    json_t *pp = (json_t *)1;
    cx_strv pv = {pf, 1};
    CX_CHECK_OK(cx_prov_capture(p, &pv, &pp));
    CX_CHECK(pp == NULL);
    CX_CHECK_STR(changed(p, ep), ""); /* an item recorded elsewhere */
    cx_prov_free(p);
    cx_workspace_free(ws);
    json_decref(ep);

    /* --- cost of a staleness check when nothing changed --------------------------- */
    p = open_prov(bench, &ws);
    const char *bf[] = {"one.c", "two.c", "three.h"};
    json_t *bp = capture(p, bf, 3);
    /* Not trusted from the cache yet (changed under two seconds ago). */
    const int fresh_calls = 200;
    int bad = 0;
    uint64_t s0 = cx_clock_mono_ns();
    for (int i = 0; i < fresh_calls; i++) {
        json_t *arr = NULL;
        bad += cx_prov_changed(p, bp, &arr) != 0 || json_array_size(arr) != 0;
        json_decref(arr);
    }
    double fresh_us = (double)(cx_clock_mono_ns() - s0) / 1e3 / fresh_calls;
    uint64_t waited = cx_clock_mono_ns() - t0;
    if (waited < 2300000000ULL)
        usleep((useconds_t)((2300000000ULL - waited) / 1000));
    const int calls = 20000;
    CX_CHECK_STR(changed(p, bp), ""); /* hashes once more, now cached */
    s0 = cx_clock_mono_ns();
    for (int i = 0; i < calls; i++) {
        json_t *arr = NULL;
        bad += cx_prov_changed(p, bp, &arr) != 0 || json_array_size(arr) != 0;
        json_decref(arr);
    }
    double cached_us = (double)(cx_clock_mono_ns() - s0) / 1e3 / calls;
    CX_CHECK_INT(bad, 0);
    s0 = cx_clock_mono_ns();
    cx_strv bv = {bf, 3};
    for (int i = 0; i < 2000; i++) {
        json_t *c = NULL;
        bad += cx_prov_capture(p, &bv, &c) != 0 || json_array_size(json_object_get(c, "files")) != 3;
        json_decref(c);
    }
    CX_CHECK_INT(bad, 0);
    double capture_us = (double)(cx_clock_mono_ns() - s0) / 1e3 / 2000;
    /* The cache must still see an edit. */
    write_at(bench, "two.c", "int TWO;\n");
    CX_CHECK_STR(changed(p, bp), "two.c");
    fprintf(stderr,
            "bench: cx_prov_changed, 3 files unchanged: %.2f us/call cached, %.2f us/call "
            "re-hashing (files touched < 2 s ago); cx_prov_capture, 3 files: %.2f us/call\n",
            cached_us, fresh_us, capture_us);
    json_decref(bp);
    cx_prov_free(p);
    cx_workspace_free(ws);

    json_decref(item);
    json_decref(prov);
    free(fifo);
    free(link);
    free(inner_fifo);
    free(sub);
    free(outside);
    free(repo);
    free(empty);
    free(plain);
    free(bench);
    cx_test_rmrf(top);
    free(top);
    return cx_test_done();
}
