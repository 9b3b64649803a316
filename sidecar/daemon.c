/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace's background cortexd (see daemon.h). */
#include "daemon.h"

#include "maint.h"
#include "sync.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOG_ROTATE_BYTES (1024 * 1024)
#define TICK_MS 200
#define MAINTAIN_EVERY_MS 2000
#define UPSTREAM_POLL_MS 3000

static bool lock_held(const char *state_dir) {
    int fd = -1;
    int r = cx_fs_lock(state_dir, CX_DAEMON_LOCK, 0, &fd);
    if (r == 1)
        close(fd);
    return r == 0;
}

static void read_pid(const char *state_dir, cx_daemon_info *out) {
    char *path = cx_fs_join(state_dir, CX_DAEMON_PID), *text = NULL;
    size_t len = 0;
    if (path && cx_fs_read_file(path, 64, &text, &len) == 0) {
        char *end = NULL;
        long v = strtol(text, &end, 10);
        if (end != text && v > 0 && v < INT_MAX)
            out->pid = (pid_t)v;
        struct stat st;
        if (stat(path, &st) == 0)
            out->started_ms = (uint64_t)st.st_mtim.tv_sec * 1000u +
                              (uint64_t)st.st_mtim.tv_nsec / 1000000u;
    }
    cx_error_clear();
    free(text);
    free(path);
}

int cx_daemon_status(const char *state_dir, cx_daemon_info *out) {
    *out = (cx_daemon_info){0};
    if (!cx_fs_is_dir(state_dir))
        return 0;
    out->running = lock_held(state_dir);
    if (out->running)
        read_pid(state_dir, out);
    return 0;
}

/* The last non-empty line of the daemon's log, for an error message. */
static void last_log_line(const char *state_dir, char *buf, size_t cap) {
    buf[0] = '\0';
    char *path = cx_fs_join(state_dir, CX_DAEMON_LOG), *text = NULL;
    size_t len = 0;
    if (path && cx_fs_read_file(path, 4u * 1024 * 1024, &text, &len) == 0 && len > 0) {
        size_t end = len;
        while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
            end--;
        size_t start = end;
        while (start > 0 && text[start - 1] != '\n')
            start--;
        snprintf(buf, cap, "%.*s", (int)(end - start), text + start);
    }
    cx_error_clear();
    free(text);
    free(path);
}

/* Opens the log for appending, moving a big one aside first. */
static int open_log(const char *state_dir) {
    char *path = cx_fs_join(state_dir, CX_DAEMON_LOG);
    if (!path)
        return -1;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > LOG_ROTATE_BYTES) {
        size_t n = strlen(path) + 3;
        char *old = malloc(n);
        if (old) {
            snprintf(old, n, "%s.1", path);
            (void)rename(path, old);
            free(old);
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    free(path);
    return fd;
}

static bool is_cortexd(pid_t pid);

int cx_daemon_start(const cx_workspace *ws, const char *cortexd, unsigned wait_ms, pid_t *pid,
                    bool *already) {
    *already = false;
    *pid = 0;
    cx_daemon_info info;
    cx_daemon_status(ws->state_dir, &info);
    if (info.running) {
        *already = true;
        *pid = info.pid;
        return 0;
    }
    if (access(cortexd, X_OK) != 0)
        return cx_error_set(CX_ENOTFOUND, "cannot run %s: %s", cortexd, strerror(errno));
    int logfd = open_log(ws->state_dir);
    if (logfd < 0)
        return cx_error_set(CX_EIO, "cannot open %s/%s: %s", ws->state_dir, CX_DAEMON_LOG,
                            strerror(errno));
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) {
        close(logfd);
        return cx_error_set(CX_EIO, "cannot start the daemon: %s", strerror(errno));
    }
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(logfd);
        close(ready[0]);
        close(ready[1]);
        return cx_error_set(CX_EIO, "cannot start the daemon: %s", strerror(e));
    }
    if (child == 0) {
        /* First child: a new session, then fork again so that the daemon is
         * no session leader and is reparented away from the caller. */
        close(ready[0]);
        if (setsid() < 0)
            _exit(1);
        pid_t grand = fork();
        if (grand < 0)
            _exit(1);
        if (grand > 0) {
            ssize_t w = write(ready[1], &grand, sizeof grand);
            _exit(w == (ssize_t)sizeof grand ? 0 : 1);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
            dup2(logfd, STDERR_FILENO) < 0)
            _exit(1);
        if (chdir(ws->root) != 0)
            _exit(1);
        umask(077);
        execl(cortexd, cortexd, "--background", "--workspace", ws->root, (char *)NULL);
        _exit(127);
    }
    close(logfd);
    close(ready[1]);
    pid_t grand = 0;
    ssize_t got;
    do {
        got = read(ready[0], &grand, sizeof grand);
    } while (got < 0 && errno == EINTR);
    close(ready[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != (ssize_t)sizeof grand || grand <= 0)
        return cx_error_set(CX_EIO, "cannot start the daemon (fork failed)");
    *pid = grand;
    /* Ready when it holds the lock; failed when it is gone. */
    uint64_t deadline = cx_clock_mono_ms() + wait_ms;
    for (;;) {
        cx_daemon_status(ws->state_dir, &info);
        if (info.running && info.pid == grand)
            return 0;
        /* The lock is taken before the pid file is written: a pid file that
         * names no running cortexd (a crashed daemon's, maybe a zombie) is
         * not yet the new daemon's, so wait for it. */
        if (info.running && info.pid != 0 && info.pid != grand && is_cortexd(info.pid)) {
            /* another start won the race; ours exits on its own */
            *already = true;
            *pid = info.pid;
            return 0;
        }
        if (kill(grand, 0) != 0 && errno == ESRCH) {
            cx_daemon_status(ws->state_dir, &info);
            if (info.running) {
                *already = true;
                *pid = info.pid;
                return 0;
            }
            char line[512];
            last_log_line(ws->state_dir, line, sizeof line);
            return cx_error_set(CX_EIO, "the daemon exited at start%s%s (see %s/%s)",
                                line[0] ? ": " : "", line, ws->state_dir, CX_DAEMON_LOG);
        }
        if (cx_clock_mono_ms() >= deadline)
            return cx_error_set(CX_EIO, "the daemon (pid %ld) did not get ready within %u ms; "
                                        "see %s/%s",
                                (long)grand, wait_ms, ws->state_dir, CX_DAEMON_LOG);
        cx_clock_sleep_ms(20);
    }
}

/* Does /proc say that pid runs cortexd? (Guards against a reused pid.) */
static bool is_cortexd(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    return strncmp(base, "cortexd", 7) == 0;
}

int cx_daemon_stop(const char *state_dir, unsigned wait_ms, pid_t *pid, bool *was_running) {
    cx_daemon_info info;
    cx_daemon_status(state_dir, &info);
    *was_running = info.running;
    *pid = info.pid;
    if (!info.running)
        return 0;
    if (info.pid <= 0 || !is_cortexd(info.pid))
        return cx_error_set(CX_EIO,
                            "the daemon lock in %s is held, but %s names no running cortexd; "
                            "find the process with: fuser %s/%s",
                            state_dir, CX_DAEMON_PID, state_dir, CX_DAEMON_LOCK);
    if (kill(info.pid, SIGTERM) != 0 && errno != ESRCH)
        return cx_error_set(CX_EIO, "cannot stop pid %ld: %s", (long)info.pid, strerror(errno));
    uint64_t deadline = cx_clock_mono_ms() + wait_ms;
    bool killed = false;
    for (;;) {
        bool held = lock_held(state_dir);
        bool alive = kill(info.pid, 0) == 0 || errno != ESRCH;
        if (!held && !alive)
            return 0;
        if (!held && alive && !is_cortexd(info.pid))
            return 0; /* gone, and the pid was reused already */
        if (cx_clock_mono_ms() >= deadline) {
            if (killed)
                return cx_error_set(CX_EIO, "pid %ld did not exit after SIGKILL", (long)info.pid);
            cx_log(CX_LOG_WARNING, "the daemon (pid %ld) ignored SIGTERM for %u ms; killing it",
                   (long)info.pid, wait_ms);
            (void)kill(info.pid, SIGKILL);
            killed = true;
            deadline = cx_clock_mono_ms() + 5000;
        }
        cx_clock_sleep_ms(20);
    }
}

/* ---- the daemon itself ---- */

static volatile sig_atomic_t stop_sig;

#define STOP_GRACE_US 1500000 /* SIGTERM ends the daemon within 2 s (see cortexd.c) */

/* The orderly stop did not finish in time (a store locked by another
 * process, a slow disk): leave as kill -9 would, which the store survives. */
static void on_late(int sig) {
    (void)sig;
    _exit(0);
}

static void on_stop(int sig) {
    if (!stop_sig) {
        struct itimerval late = {.it_value = {STOP_GRACE_US / 1000000, STOP_GRACE_US % 1000000}};
        setitimer(ITIMER_REAL, &late, NULL);
    }
    stop_sig = sig;
}

static int write_pid(const char *state_dir) {
    char *path = cx_fs_join(state_dir, CX_DAEMON_PID);
    if (!path)
        return CX_ENOMEM;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    int r = cx_fs_write_atomic(path, buf, (size_t)n, 0600);
    free(path);
    return r;
}

static void remove_pid(const char *state_dir) {
    char *path = cx_fs_join(state_dir, CX_DAEMON_PID);
    if (path)
        (void)unlink(path);
    free(path);
}

static bool has_upstream(const char *state_dir) {
    char *path = cx_fs_join(state_dir, "upstream");
    bool yes = path && access(path, F_OK) == 0;
    free(path);
    return yes;
}

int cx_daemon_run(const cx_workspace *ws) {
    int lock_fd = -1;
    /* Status probes (cx_daemon_status) hold the lock for an instant: only a
     * lock that stays taken for a second means another daemon. */
    int r = cx_fs_lock(ws->state_dir, CX_DAEMON_LOCK, 1000, &lock_fd);
    if (r < 0) {
        log_warn("%s", cx_error_last());
        return 1;
    }
    if (r == 0) {
        cx_log(CX_LOG_NOTICE, "another cortexd already runs in the background for %s; exiting",
               ws->root);
        return 3;
    }
    if (write_pid(ws->state_dir) != 0) {
        log_warn("cannot write the pid file: %s", cx_error_last());
        close(lock_fd);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_stop}, la = {.sa_handler = on_late};
    sigemptyset(&sa.sa_mask);
    sigemptyset(&la.sa_mask);
    sigaction(SIGALRM, &la, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    cx_log(CX_LOG_NOTICE, "background daemon started for %s (pid %ld)", ws->root,
           (long)getpid());

    cx_maint *mt = NULL;
    if (cx_maint_open(&mt, ws) != 0) {
        log_warn("cannot open the store: %s; only sync runs", cx_error_last());
        mt = NULL;
    }

    bool syncing = false;
    uint64_t next_maint = 0, next_upstream = 0;
    while (!stop_sig) {
        uint64_t now = cx_clock_mono_ms();
        if (!syncing && now >= next_upstream) {
            next_upstream = now + UPSTREAM_POLL_MS;
            if (has_upstream(ws->state_dir)) {
                int sr = cx_sync_start(ws);
                syncing = sr == 0 || sr == CX_EINVAL;
                if (syncing)
                    cx_log(CX_LOG_NOTICE, "background sync started");
            }
        }
        if (mt && now >= next_maint) {
            next_maint = now + MAINTAIN_EVERY_MS;
            if (cx_maint_tick(mt))
                next_maint = now; /* more may be waiting */
        }
        cx_clock_sleep_ms(TICK_MS);
    }
    cx_log(CX_LOG_NOTICE, "stopping (signal %d)", (int)stop_sig);
    cx_sync_stop();
    cx_maint_close(mt, true);
    remove_pid(ws->state_dir);
    close(lock_fd);
    cx_log(CX_LOG_NOTICE, "stopped");
    return 0;
}

/* ---- finding our programs ---- */

static char *exe_dir(void) {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return strdup(buf);
}

static char *try_path(const char *dir, const char *rel, const char *name) {
    size_t n = strlen(dir) + strlen(rel) + strlen(name) + 3;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s%s%s", dir, rel, *rel ? "/" : "", name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
        char *real = realpath(p, NULL);
        free(p);
        return real;
    }
    free(p);
    return NULL;
}

char *cx_daemon_find_program(const char *name, const char *env) {
    const char *over = env ? getenv(env) : NULL;
    if (over && *over) {
        if (access(over, X_OK) == 0) {
            char *real = realpath(over, NULL);
            if (real)
                return real;
        }
        cx_error_set(CX_ENOTFOUND, "$%s = %s is not an executable file", env, over);
        return NULL;
    }
    char *dir = exe_dir(), *found = NULL;
    if (dir) {
        static const char *const rels[] = {"", "../bin", "../sidecar", "../sbin"};
        for (size_t i = 0; i < sizeof rels / sizeof rels[0] && !found; i++)
            found = try_path(dir, rels[i], name);
        free(dir);
        if (found)
            return found;
    }
    const char *path = getenv("PATH");
    char *copy = path ? strdup(path) : NULL, *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
         d = strtok_r(NULL, ":", &save))
        if (*d)
            found = try_path(d, "", name);
    free(copy);
    if (!found)
        cx_error_set(CX_ENOTFOUND, "%s not found next to this program or on $PATH", name);
    return found;
}
