/* SPDX-License-Identifier: Apache-2.0 */
/* bench-mcp: end-to-end figures for cortexd over stdio, measured the way an
 * MCP client sees them (fork/exec, newline-delimited JSON-RPC over pipes,
 * CLOCK_MONOTONIC). It prints figures; it never asserts on time. The only
 * failures are protocol failures (no answer, a JSON-RPC error, a tool error).
 *
 *   bench-mcp [options] [CORTEXD]        (or CORTEXD=... in the environment)
 *     --items N,M,...   populated workspace sizes (default 10000,100000)
 *     --quick           small counts for a smoke run
 *     --workdir DIR     where workspaces are built and cached
 *                       (default $TMPDIR/cortex-bench-$UID)
 *     --json            print one JSON object instead of lines
 *     --runs N          spawn->initialize runs per workspace (default 50)
 *     --observe N       sequential single observe calls (default 5000)
 *     --queries N       search queries per size (default 1000)
 *     --rebuild         ignore cached workspaces
 *     --log FILE        append cortexd's stderr there (default /dev/null)
 *     --dump N          print N corpus items and N queries, then exit
 *     --only LIST       run only these phases: init, observe, search
 *                       (search includes populating; default all)
 *     --trace FILE      append one line per search query: items, kind, ms,
 *                       results, query (to find the slow ones)
 *
 * See bench/README.md for what each figure means. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corpus.h"

#define BENCH_SEED UINT64_C(0x636F72746578) /* "cortex" */
#define BATCH 500
#define MAX_SIZES 8
#define PROTOCOL_VERSION "2025-11-25"
#define REPLY_TIMEOUT_MS 120000
#define EXIT_TIMEOUT_MS 5000

/* ---- small utilities ------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-mcp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-mcp: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

__attribute__((format(printf, 1, 2))) static char *fmt_alloc(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("vsnprintf failed");
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        note("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdir_p(const char *path) {
    char *tmp = xstrdup(path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            die("mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        die("mkdir %s: %s", tmp, strerror(errno));
    free(tmp);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Bytes under a directory (the workspace's state: database, WAL, blobs). */
static uint64_t du_total;
static int du_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        du_total += (uint64_t)sb->st_size;
    return 0;
}

static uint64_t dir_bytes(const char *path) {
    du_total = 0;
    if (file_exists(path))
        nftw(path, du_cb, 16, FTW_PHYS);
    return du_total;
}

/* ---- statistics -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    size_t n;
    double min, p50, p90, p95, p99, max, mean;
} stats;

/* Nearest-rank percentile of sorted v: the smallest value with at least
 * p*n values at or below it. */
static double rank(const double *v, size_t n, double p) {
    size_t k = (size_t)ceil(p * (double)n);
    return v[k > 0 ? (k <= n ? k - 1 : n - 1) : 0];
}

/* Nearest-rank percentiles. Sorts v in place. */
static stats stats_of(double *v, size_t n) {
    stats s = {0};
    s.n = n;
    if (n == 0)
        return s;
    qsort(v, n, sizeof *v, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    s.min = v[0];
    s.p50 = rank(v, n, 0.50);
    s.p90 = rank(v, n, 0.90);
    s.p95 = rank(v, n, 0.95);
    s.p99 = rank(v, n, 0.99);
    s.max = v[n - 1];
    s.mean = sum / (double)n;
    return s;
}

/* ---- options ------------------------------------------------------------------- */

typedef struct opts {
    const char *cortexd;
    const char *workdir;
    const char *log;
    const char *trace;
    uint64_t sizes[MAX_SIZES];
    size_t nsizes;
    uint64_t runs, observe_n, queries, dump;
    bool json, quick, rebuild;
    bool do_init, do_observe, do_search; /* --only */
    char *owned[2];                      /* resolved paths, freed at exit */
} opts;

static void usage(FILE *f) {
    fputs("usage: bench-mcp [--items N,M] [--quick] [--workdir DIR] [--json] [--runs N]\n"
          "                 [--observe N] [--queries N] [--rebuild] [--log FILE] [--dump N]\n"
          "                 [--trace FILE] [--only init,observe,search]\n"
          "                 [CORTEXD]\n",
          f);
}

static void parse_sizes(opts *o, const char *arg) {
    o->nsizes = 0;
    char *copy = xstrdup(arg);
    for (char *tok = copy; tok;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        uint64_t v;
        if (!parse_u64(tok, &v) || v == 0 || o->nsizes == MAX_SIZES)
            die("bad --items: %s", arg);
        o->sizes[o->nsizes++] = v;
        tok = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (o->nsizes == 0)
        die("bad --items: %s", arg);
}

static void parse_opts(opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    const char *items = NULL, *only = NULL;
    int64_t runs = -1, obs = -1, queries = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define NEEDARG()                                                                                  \
    do {                                                                                           \
        if (i + 1 >= argc)                                                                         \
            die("%s needs an argument", a);                                                        \
        val = argv[++i];                                                                           \
    } while (0)
        uint64_t v;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(a, "--rebuild") == 0) {
            o->rebuild = true;
        } else if (strcmp(a, "--items") == 0) {
            NEEDARG();
            items = val;
        } else if (strcmp(a, "--workdir") == 0) {
            NEEDARG();
            o->workdir = val;
        } else if (strcmp(a, "--log") == 0) {
            NEEDARG();
            o->log = val;
        } else if (strcmp(a, "--trace") == 0) {
            NEEDARG();
            o->trace = val;
        } else if (strcmp(a, "--only") == 0) {
            NEEDARG();
            only = val;
        } else if (strcmp(a, "--cortexd") == 0) {
            NEEDARG();
            o->cortexd = val;
        } else if (strcmp(a, "--dump") == 0) {
            NEEDARG();
            if (!parse_u64(val, &o->dump) || o->dump == 0)
                die("bad --dump");
        } else if (strcmp(a, "--runs") == 0) {
            NEEDARG();
            if (!parse_u64(val, &v) || v == 0 || v > 100000)
                die("bad --runs");
            runs = (int64_t)v;
        } else if (strcmp(a, "--observe") == 0) {
            NEEDARG();
            if (!parse_u64(val, &v) || v > 10000000)
                die("bad --observe");
            obs = (int64_t)v;
        } else if (strcmp(a, "--queries") == 0) {
            NEEDARG();
            if (!parse_u64(val, &v) || v > 10000000)
                die("bad --queries");
            queries = (int64_t)v;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (a[0] == '-') {
            usage(stderr);
            die("unknown option %s", a);
        } else {
            o->cortexd = a;
        }
#undef NEEDARG
    }
    if (o->dump)
        return;
    if (!o->cortexd)
        o->cortexd = getenv("CORTEXD");
    if (!o->cortexd || !*o->cortexd)
        die("no cortexd: pass its path or set CORTEXD");
    if (access(o->cortexd, X_OK) != 0)
        die("%s: %s", o->cortexd, strerror(errno));
    char *abs = realpath(o->cortexd, NULL); /* the child runs in the workspace */
    if (!abs)
        die("%s: %s", o->cortexd, strerror(errno));
    o->cortexd = o->owned[0] = abs;
    o->runs = runs >= 0 ? (uint64_t)runs : o->quick ? 5 : 50;
    o->observe_n = obs >= 0 ? (uint64_t)obs : o->quick ? 200 : 5000;
    o->queries = queries >= 0 ? (uint64_t)queries : o->quick ? 50 : 1000;
    parse_sizes(o, items ? items : o->quick ? "300,1200" : "10000,100000");
    o->do_init = o->do_observe = o->do_search = !only;
    for (const char *p = only; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncmp(p, "init", 4) == 0)
            o->do_init = true;
        else if (n == 7 && strncmp(p, "observe", 7) == 0)
            o->do_observe = true;
        else if (n == 6 && strncmp(p, "search", 6) == 0)
            o->do_search = true;
        else
            die("bad --only: %s (use init, observe, search)", only);
        p += n + (p[n] == ',');
    }
    if (!o->workdir) {
        const char *tmp = getenv("TMPDIR");
        o->workdir =
            fmt_alloc("%s/cortex-bench-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
    }
}

/* ---- a cortexd child over pipes -------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int wfd, rfd;
    char *buf; /* bytes read from the child, not yet consumed */
    size_t start, len, cap;
    int64_t next_id;
    size_t last_len; /* bytes of the last answer child_await returned, newline excluded */
    bool eof;
    struct rusage ru;
    int status;
    bool reaped;
} child;

static const opts *g_opts;

/* Fork/exec cortexd in `ws` (also passed as CORTEX_WORKSPACE). */
static void child_spawn(child *c, const char *ws) {
    memset(c, 0, sizeof *c);
    c->next_id = 1;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    int errfd = g_opts->log ? open(g_opts->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
                            : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (errfd < 0)
        die("open log: %s", strerror(errno));
    if (setenv("CORTEX_WORKSPACE", ws, 1) != 0)
        die("setenv: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(errfd, 2) < 0)
            _exit(126);
        if (chdir(ws) != 0)
            _exit(126);
        char *const av[] = {(char *)g_opts->cortexd, NULL};
        execv(g_opts->cortexd, av);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(errfd);
    c->pid = pid;
    c->wfd = in[1];
    c->rfd = out[0];
    c->cap = 1 << 16;
    c->buf = xmalloc(c->cap);
}

/* Reads what is available from the child into the buffer. -1 on error. */
static int child_fill(child *c) {
    if (c->start > 0 && c->start == c->len) {
        c->start = c->len = 0;
    } else if (c->start > c->cap / 2) {
        memmove(c->buf, c->buf + c->start, c->len - c->start);
        c->len -= c->start;
        c->start = 0;
    }
    if (c->cap - c->len < 4096) {
        c->cap *= 2;
        char *nb = realloc(c->buf, c->cap);
        if (!nb)
            die("out of memory");
        c->buf = nb;
    }
    ssize_t n = read(c->rfd, c->buf + c->len, c->cap - c->len);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        return -1;
    }
    if (n == 0)
        c->eof = true;
    c->len += (size_t)n;
    return 0;
}

/* Writes all of data, reading the child's output meanwhile so neither side can
 * block the other. 0, or -1 when the child has gone. */
static int child_send(child *c, const char *data, size_t len) {
    size_t off = 0;
    while (off < len) {
        struct pollfd p[2] = {{c->wfd, POLLOUT, 0}, {c->rfd, POLLIN, 0}};
        int np = c->eof ? 1 : 2;
        int rc = poll(p, (nfds_t)np, REPLY_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        if (np == 2 && (p[1].revents & (POLLIN | POLLHUP)) && child_fill(c) != 0)
            return -1;
        if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            return -1;
        if (p[0].revents & POLLOUT) {
            ssize_t n = write(c->wfd, data + off, len - off);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                return -1;
            }
            off += (size_t)n;
        }
    }
    return 0;
}

/* Next complete line (without the newline, NUL-terminated in place), valid
 * until the next call. NULL on EOF or timeout. */
static char *child_line(child *c, int timeout_ms, size_t *out_len) {
    double deadline = now_ms() + timeout_ms;
    size_t scanned = c->start;
    for (;;) {
        char *nl = memchr(c->buf + scanned, '\n', c->len - scanned);
        if (nl) {
            char *line = c->buf + c->start;
            *nl = '\0';
            *out_len = (size_t)(nl - line);
            if (*out_len > 0 && line[*out_len - 1] == '\r')
                line[--*out_len] = '\0';
            c->start = (size_t)(nl - c->buf) + 1;
            return line;
        }
        if (c->eof)
            return NULL;
        size_t consumed = scanned - c->start;
        double left = deadline - now_ms();
        if (left <= 0)
            return NULL;
        struct pollfd p = {c->rfd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return NULL;
        if (child_fill(c) != 0) /* may move the buffer */
            return NULL;
        scanned = c->start + consumed;
    }
}

/* Reads messages until the response with `id`; *t_done is the time its line
 * had been read completely (before parsing). Other messages (notifications,
 * server requests) are skipped. NULL when the child died or went silent. */
static json_t *child_await(child *c, int64_t id, double *t_done) {
    for (;;) {
        size_t len = 0;
        char *line = child_line(c, REPLY_TIMEOUT_MS, &len);
        if (!line)
            return NULL;
        double t = now_ms();
        json_error_t err;
        json_t *msg = json_loadb(line, len, 0, &err);
        if (!msg) {
            note("unparsable line from cortexd (%s): %.200s", err.text, line);
            continue;
        }
        json_t *jid = json_object_get(msg, "id");
        if (json_is_integer(jid) && json_integer_value(jid) == id &&
            (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
            if (t_done)
                *t_done = t;
            c->last_len = len;
            return msg;
        }
        json_decref(msg);
    }
}

/* Closes stdin, waits for the child to exit (SIGTERM, then SIGKILL, if it
 * lingers) and collects its rusage. Returns ms from EOF to exit. */
static double child_finish(child *c) {
    double t0 = now_ms();
    if (c->wfd >= 0)
        close(c->wfd);
    c->wfd = -1;
    double deadline = t0 + EXIT_TIMEOUT_MS;
    int stage = 0;
    while (!c->eof) {
        double left = deadline - now_ms();
        if (left <= 0) {
            if (stage == 0) {
                note("cortexd (pid %d) did not exit within %d ms of EOF: SIGTERM", (int)c->pid,
                     EXIT_TIMEOUT_MS);
                kill(c->pid, SIGTERM);
                deadline = now_ms() + 2000;
                stage = 1;
                continue;
            }
            if (stage == 1) {
                note("cortexd (pid %d) ignored SIGTERM: SIGKILL", (int)c->pid);
                kill(c->pid, SIGKILL);
                stage = 2;
            }
            break;
        }
        struct pollfd p = {c->rfd, POLLIN, 0};
        int rc = poll(&p, 1, (int)left + 1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0) {
            c->start = c->len = 0; /* discard late output */
            if (child_fill(c) != 0)
                break;
        }
    }
    pid_t r;
    do
        r = wait4(c->pid, &c->status, 0, &c->ru);
    while (r < 0 && errno == EINTR);
    double t1 = now_ms();
    c->reaped = r == c->pid;
    close(c->rfd);
    free(c->buf);
    c->buf = NULL;
    if (c->reaped && stage == 0 && !(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)) {
        if (WIFSIGNALED(c->status))
            note("cortexd exited on signal %d", WTERMSIG(c->status));
        else
            note("cortexd exited with status %d", WEXITSTATUS(c->status));
    }
    return t1 - t0;
}

static double child_cpu_ms(const child *c) {
    return (double)(c->ru.ru_utime.tv_sec + c->ru.ru_stime.tv_sec) * 1e3 +
           (double)(c->ru.ru_utime.tv_usec + c->ru.ru_stime.tv_usec) / 1e3;
}

/* A request line: compact JSON plus "\n". */
typedef struct req {
    char *p;
    size_t len;
    int64_t id;
} req;

static req make_req(int64_t id, const char *method, json_t *params /* stolen */) {
    json_t *m =
        json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", (json_int_t)id, "method", method);
    if (!m)
        die("json_pack");
    if (params)
        json_object_set_new(m, "params", params);
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (!s)
        die("json_dumps");
    req r = {0};
    r.len = strlen(s) + 1;
    r.p = xmalloc(r.len + 1);
    memcpy(r.p, s, r.len - 1);
    r.p[r.len - 1] = '\n';
    r.p[r.len] = '\0';
    r.id = id;
    free(s);
    return r;
}

static req make_call(int64_t id, const char *tool, json_t *args /* stolen */) {
    return make_req(id, "tools/call", json_pack("{s:s, s:o}", "name", tool, "arguments", args));
}

static const char *rpc_error_text(json_t *resp) {
    static char msg[512];
    json_t *e = json_object_get(resp, "error");
    if (e) {
        snprintf(msg, sizeof msg, "JSON-RPC error %" JSON_INTEGER_FORMAT ": %s",
                 json_integer_value(json_object_get(e, "code")),
                 json_string_value(json_object_get(e, "message"))
                     ? json_string_value(json_object_get(e, "message"))
                     : "?");
        return msg;
    }
    json_t *res = json_object_get(resp, "result");
    if (json_is_true(json_object_get(res, "isError"))) {
        json_t *content = json_array_get(json_object_get(res, "content"), 0);
        const char *t = json_string_value(json_object_get(content, "text"));
        snprintf(msg, sizeof msg, "tool error: %.400s", t ? t : "(no text)");
        return msg;
    }
    if (!json_is_object(res))
        return "no result object";
    return NULL;
}

/* The structured result of a tools/call (structuredContent, or the JSON text
 * block for servers that send only text). Borrowed or new: *owned tells. */
static json_t *call_result(json_t *resp, json_t **owned) {
    *owned = NULL;
    json_t *res = json_object_get(resp, "result");
    json_t *sc = json_object_get(res, "structuredContent");
    if (json_is_object(sc))
        return sc;
    json_t *content = json_array_get(json_object_get(res, "content"), 0);
    const char *t = json_string_value(json_object_get(content, "text"));
    if (t)
        *owned = json_loads(t, 0, NULL);
    return *owned;
}

/* Spawns cortexd in ws and completes the handshake. Returns ms from fork to
 * the initialize response read in full, or a negative value on failure. */
static double session_open(child *c, const char *ws) {
    json_t *params =
        json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", PROTOCOL_VERSION, "capabilities",
                  "clientInfo", "name", "cortex-bench", "version", "1");
    req init = make_req(1, "initialize", params);
    double t0 = now_ms();
    child_spawn(c, ws);
    double t1 = t0;
    json_t *resp = NULL;
    if (child_send(c, init.p, init.len) == 0)
        resp = child_await(c, 1, &t1);
    free(init.p);
    if (!resp) {
        note("no initialize response from %s (exited? see --log)", g_opts->cortexd);
        return -1;
    }
    const char *err = rpc_error_text(resp);
    if (err) {
        note("initialize failed: %s", err);
        json_decref(resp);
        return -1;
    }
    const char *v =
        json_string_value(json_object_get(json_object_get(resp, "result"), "protocolVersion"));
    if (!v || strcmp(v, PROTOCOL_VERSION) != 0)
        note("initialize answered protocolVersion %s (asked %s)", v ? v : "(none)",
             PROTOCOL_VERSION);
    json_decref(resp);
    static const char initialized[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
    if (child_send(c, initialized, sizeof initialized - 1) != 0)
        return -1;
    c->next_id = 2;
    return t1 - t0;
}

/* Sends one request and waits for its answer. *ms: round trip. */
static json_t *roundtrip(child *c, const req *r, double *ms) {
    double t0 = now_ms(), t1 = 0;
    if (child_send(c, r->p, r->len) != 0)
        return NULL;
    json_t *resp = child_await(c, r->id, &t1);
    *ms = t1 - t0;
    return resp;
}

/* ---- observations as JSON ------------------------------------------------------- */

static json_t *item_json(const bench_item *it) {
    json_t *o = json_pack("{s:s, s:s}", "text", it->text, "subcortex", it->subcortex);
    if (it->title[0])
        json_object_set_new(o, "title", json_string(it->title));
    if (it->ntags) {
        json_t *a = json_array();
        for (size_t i = 0; i < it->ntags; i++)
            json_array_append_new(a, json_string(it->tags[i]));
        json_object_set_new(o, "tags", a);
    }
    if (it->nfiles) {
        json_t *a = json_array();
        for (size_t i = 0; i < it->nfiles; i++)
            json_array_append_new(a, json_string(it->files[i]));
        json_object_set_new(o, "files", a);
    }
    return o;
}

/* ---- results ----------------------------------------------------------------------- */

static json_t *g_out; /* the --json object */
static bool g_failed;

static long peak_rss_kb(const child *c) {
    return c->reaped ? c->ru.ru_maxrss : -1;
}

/* ---- initialize --------------------------------------------------------------------- */

static void bench_initialize(const opts *o, const char *ws, uint64_t items) {
    double *v = xmalloc(o->runs * sizeof *v);
    double *ex = xmalloc(o->runs * sizeof *ex);
    size_t n = 0;
    long rss = 0;
    for (uint64_t i = 0; i < o->runs; i++) {
        child c;
        double ms = session_open(&c, ws);
        double e = child_finish(&c);
        if (ms < 0) {
            g_failed = true;
            break;
        }
        v[n] = ms;
        ex[n] = e;
        n++;
        if (peak_rss_kb(&c) > rss)
            rss = peak_rss_kb(&c);
    }
    stats s = stats_of(v, n), se = stats_of(ex, n);
    if (n) {
        if (!o->json)
            printf("initialize_ms median=%.2f p90=%.2f min=%.2f max=%.2f runs=%zu items=%" PRIu64
                   " exit_after_eof_ms_median=%.2f peak_rss_kb=%ld\n",
                   s.p50, s.p90, s.min, s.max, n, items, se.p50, rss);
        json_array_append_new(json_object_get(g_out, "initialize"),
                              json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:I}", "items",
                                        (json_int_t)items, "runs", (json_int_t)n, "median_ms",
                                        s.p50, "p90_ms", s.p90, "min_ms", s.min, "max_ms", s.max,
                                        "exit_after_eof_median_ms", se.p50, "peak_rss_kb",
                                        (json_int_t)rss));
        fflush(stdout);
    }
    free(v);
    free(ex);
}

/* ---- observe, one call at a time ------------------------------------------------------ */

static void bench_observe(const opts *o, const bench_corpus *corp) {
    if (o->observe_n == 0)
        return;
    char *ws = fmt_alloc("%s/ws-observe", o->workdir);
    rm_rf(ws);
    mkdir_p(ws);
    note("observe: %" PRIu64 " sequential calls", o->observe_n);

    req *reqs = xmalloc(o->observe_n * sizeof *reqs);
    bench_item it;
    for (uint64_t i = 0; i < o->observe_n; i++) {
        bench_corpus_item(corp, BENCH_STREAM_OBSERVE, i, &it);
        reqs[i] = make_call((int64_t)i + 2, "observe", item_json(&it));
    }
    double *lat = xmalloc(o->observe_n * sizeof *lat);
    child c;
    size_t done = 0, errors = 0, repeats = 0;
    double t0 = 0, t1 = 0;
    if (session_open(&c, ws) >= 0) {
        t0 = now_ms();
        for (; done < o->observe_n; done++) {
            json_t *resp = roundtrip(&c, &reqs[done], &lat[done]);
            if (!resp) {
                note("observe: no response to call %zu", done);
                break;
            }
            const char *err = rpc_error_text(resp);
            if (err) {
                if (errors++ == 0)
                    note("observe: %s", err);
            } else {
                json_t *owned, *r = call_result(resp, &owned);
                repeats += (size_t)json_integer_value(json_object_get(r, "repeats"));
                json_decref(owned);
            }
            json_decref(resp);
        }
        t1 = now_ms();
    }
    child_finish(&c);
    if (done < o->observe_n || errors)
        g_failed = true;
    double secs = (t1 - t0) / 1e3;
    double slow_ms = 0, all_ms = 0; /* share of the time in calls of 1 ms or more */
    size_t slow = 0;
    for (size_t i = 0; i < done; i++) {
        all_ms += lat[i];
        if (lat[i] >= 1.0) {
            slow_ms += lat[i];
            slow++;
        }
    }
    double slow_pct = all_ms > 0 ? 100.0 * slow_ms / all_ms : 0;
    stats s = stats_of(lat, done);
    uint64_t bytes = dir_bytes(ws);
    if (done) {
        double rate = (double)done / secs;
        if (!o->json)
            printf(
                "observe calls=%zu seconds=%.3f per_sec=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
                "max_ms=%.2f slow_calls=%zu slow_time_pct=%.0f errors=%zu repeats=%zu "
                "peak_rss_kb=%ld cpu_ms=%.0f state_bytes=%" PRIu64 "\n",
                done, secs, rate, s.p50, s.p90, s.p99, s.max, slow, slow_pct, errors, repeats,
                peak_rss_kb(&c), child_cpu_ms(&c), bytes);
        json_object_set_new(g_out, "observe",
                            json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:I}",
                                      "calls", (json_int_t)done, "seconds", secs, "per_sec", rate,
                                      "p50_ms", s.p50, "p99_ms", s.p99, "max_ms", s.max, "errors",
                                      (json_int_t)errors, "repeats", (json_int_t)repeats,
                                      "peak_rss_kb", (json_int_t)peak_rss_kb(&c), "cpu_ms",
                                      child_cpu_ms(&c), "state_bytes", (json_int_t)bytes));
        json_t *ob = json_object_get(g_out, "observe");
        json_object_set_new(ob, "p90_ms", json_real(s.p90));
        json_object_set_new(ob, "slow_calls", json_integer((json_int_t)slow));
        json_object_set_new(ob, "slow_time_pct", json_real(slow_pct));
        fflush(stdout);
    }
    for (uint64_t i = 0; i < o->observe_n; i++)
        free(reqs[i].p);
    free(reqs);
    free(lat);
    free(ws);
}

/* ---- populate (cached) ------------------------------------------------------------------ */

/* Opens a session on ws and checks that the cortexd under test can use it:
 * `status` answers (its store.schema_version goes to *schema, -1 if absent)
 * and one search succeeds. A cache built by an older cortexd whose schema
 * changed in place fails here and is rebuilt. */
static bool probe_ws(const char *ws, json_int_t *schema) {
    child c;
    bool ok = session_open(&c, ws) >= 0;
    *schema = -1;
    if (ok) {
        req r = make_call(c.next_id++, "status", json_object());
        double ms;
        json_t *resp = roundtrip(&c, &r, &ms);
        free(r.p);
        const char *err = resp ? rpc_error_text(resp) : "no response";
        if (err) {
            note("cache probe: status: %s", err);
            ok = false;
        } else {
            json_t *owned, *res = call_result(resp, &owned);
            json_t *v = json_object_get(json_object_get(res, "store"), "schema_version");
            if (json_is_integer(v))
                *schema = json_integer_value(v);
            json_decref(owned);
        }
        json_decref(resp);
    }
    if (ok) {
        req r =
            make_call(c.next_id++, "search", json_pack("{s:s, s:i}", "query", "cache", "limit", 1));
        double ms;
        json_t *resp = roundtrip(&c, &r, &ms);
        free(r.p);
        const char *err = resp ? rpc_error_text(resp) : "no response";
        if (err) {
            note("cache probe: search: %s", err);
            ok = false;
        }
        json_decref(resp);
    }
    child_finish(&c);
    return ok;
}

/* Ensures ws holds `items` corpus items, building it through cortexd with
 * batch observe when the cache is missing or unusable. Returns false on
 * failure. */
static bool populate(const opts *o, const bench_corpus *corp, const char *ws, uint64_t items) {
    char *marker = fmt_alloc("%s/.bench-populated.json", ws);
    json_t *cached = (!o->rebuild && file_exists(marker)) ? json_load_file(marker, 0, NULL) : NULL;
    json_int_t schema = -1;
    if (cached && (uint64_t)json_integer_value(json_object_get(cached, "items")) == items) {
        bool usable = probe_ws(ws, &schema);
        json_t *was = json_object_get(cached, "schema_version");
        if (usable && json_is_integer(was) && json_integer_value(was) != schema)
            usable = false;
        if (!usable) {
            note("populate %" PRIu64
                 ": the cached workspace does not suit this cortexd; rebuilding",
                 items);
            json_decref(cached);
            cached = NULL;
        }
    }
    if (cached) {
        json_object_set_new(cached, "cached", json_true());
        double rate = json_real_value(json_object_get(cached, "per_sec"));
        note("populate %" PRIu64 ": cached in %s", items, ws);
        if (!o->json)
            printf("populate items=%" PRIu64
                   " batch=%d seconds=%.2f per_sec=%.0f peak_rss_kb=%" JSON_INTEGER_FORMAT
                   " state_bytes=%" JSON_INTEGER_FORMAT " cached=yes\n",
                   items, BATCH, json_real_value(json_object_get(cached, "seconds")), rate,
                   json_integer_value(json_object_get(cached, "peak_rss_kb")),
                   json_integer_value(json_object_get(cached, "state_bytes")));
        json_array_append_new(json_object_get(g_out, "populate"), cached);
        free(marker);
        return true;
    }
    json_decref(cached);
    rm_rf(ws);
    mkdir_p(ws);
    note("populate %" PRIu64 ": building %s (batches of %d)", items, ws, BATCH);

    child c;
    bool ok = session_open(&c, ws) >= 0;
    double busy = 0, t0 = now_ms();
    uint64_t recorded = 0, repeats = 0;
    bench_item it;
    for (uint64_t i = 0; ok && i < items; i += BATCH) {
        uint64_t n = items - i < BATCH ? items - i : BATCH;
        json_t *arr = json_array();
        for (uint64_t k = 0; k < n; k++) {
            bench_corpus_item(corp, BENCH_STREAM_POPULATE, i + k, &it);
            json_array_append_new(arr, item_json(&it));
        }
        req r = make_call(c.next_id++, "observe", json_pack("{s:o}", "observations", arr));
        double ms = 0;
        json_t *resp = roundtrip(&c, &r, &ms);
        free(r.p);
        busy += ms;
        const char *err = resp ? rpc_error_text(resp) : "no response";
        if (err) {
            note("populate: batch at %" PRIu64 ": %s", i, err);
            ok = false;
        } else {
            json_t *owned, *res = call_result(resp, &owned);
            recorded += (uint64_t)json_integer_value(json_object_get(res, "recorded"));
            repeats += (uint64_t)json_integer_value(json_object_get(res, "repeats"));
            json_decref(owned);
        }
        json_decref(resp);
        if (ok && (i / BATCH) % 20 == 19)
            note("populate %" PRIu64 ": %" PRIu64 " items, %.0f/s", items, i + n,
                 (double)(i + n) / (busy / 1e3));
    }
    double wall = now_ms() - t0;
    double exit_ms = child_finish(&c);
    if (!ok) {
        g_failed = true;
        free(marker);
        return false;
    }
    uint64_t bytes = dir_bytes(ws);
    double rate = (double)items / (busy / 1e3);
    if (!probe_ws(ws, &schema)) {
        note("populate %" PRIu64 ": the new workspace fails its probe", items);
        g_failed = true;
        free(marker);
        return false;
    }
    json_t *rec = json_pack(
        "{s:I, s:i, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:i, s:s}", "items", (json_int_t)items,
        "batch", BATCH, "seconds", busy / 1e3, "wall_seconds", wall / 1e3, "per_sec", rate,
        "recorded", (json_int_t)recorded, "repeats", (json_int_t)repeats, "peak_rss_kb",
        (json_int_t)peak_rss_kb(&c), "state_bytes", (json_int_t)bytes, "exit_after_eof_ms", exit_ms,
        "corpus_version", BENCH_CORPUS_VERSION, "cortexd", o->cortexd);
    json_object_set_new(rec, "schema_version", json_integer(schema));
    if (json_dump_file(rec, marker, JSON_INDENT(1)) != 0)
        note("cannot write %s", marker);
    if (!o->json)
        printf("populate items=%" PRIu64 " batch=%d seconds=%.2f per_sec=%.0f recorded=%" PRIu64
               " repeats=%" PRIu64 " peak_rss_kb=%ld state_bytes=%" PRIu64
               " exit_after_eof_ms=%.1f cached=no\n",
               items, BATCH, busy / 1e3, rate, recorded, repeats, peak_rss_kb(&c), bytes, exit_ms);
    json_object_set_new(rec, "cached", json_false());
    json_array_append_new(json_object_get(g_out, "populate"), rec);
    fflush(stdout);
    free(marker);
    return true;
}

/* ---- search --------------------------------------------------------------------------------- */

static const char *const kind_names[] = {"word1", "word2", "word3", "identifier", "miss"};

static void bench_search(const opts *o, const bench_corpus *corp, const char *ws, uint64_t items) {
    uint64_t nq = o->queries;
    req *reqs = xmalloc((nq + 1) * sizeof *reqs);
    bench_query_kind *kinds = xmalloc((nq + 1) * sizeof *kinds);
    char q[512];
    for (uint64_t i = 0; i <= nq; i++) {
        /* query 0 is the warm-up (reported as first_ms) */
        kinds[i] = bench_corpus_query(corp, i, q, sizeof q);
        reqs[i] =
            make_call((int64_t)i + 2, "search", json_pack("{s:s, s:i}", "query", q, "limit", 10));
    }
    double *lat = xmalloc(nq * sizeof *lat);
    double *bykind[5];
    size_t nbykind[5] = {0};
    for (int k = 0; k < 5; k++)
        bykind[k] = xmalloc((nq + 1) * sizeof(double));
    size_t done = 0, errors = 0, empty = 0, results = 0;
    /* bytes of the answers with 10 results: the whole JSON-RPC line, and
     * the text block an agent reads */
    double *line_bytes = xmalloc(nq * sizeof *line_bytes);
    double *text_bytes = xmalloc(nq * sizeof *text_bytes);
    size_t nfull = 0;
    double first = -1;
    child c;
    FILE *trace = o->trace ? fopen(o->trace, "a") : NULL;
    if (o->trace && !trace)
        die("%s: %s", o->trace, strerror(errno));
    note("search %" PRIu64 ": %" PRIu64 " queries", items, nq);
    if (session_open(&c, ws) >= 0) {
        for (uint64_t i = 0; i <= nq; i++) {
            double ms = 0;
            json_t *resp = roundtrip(&c, &reqs[i], &ms);
            if (!resp) {
                note("search: no response to query %" PRIu64, i);
                break;
            }
            const char *err = rpc_error_text(resp);
            if (err) {
                if (errors++ == 0)
                    note("search: %s", err);
            }
            if (i == 0) {
                first = ms;
            } else {
                lat[done++] = ms;
                bykind[kinds[i]][nbykind[kinds[i]]++] = ms;
                size_t cnt = 0;
                if (!err) {
                    json_t *owned, *r = call_result(resp, &owned);
                    cnt = json_array_size(json_object_get(r, "results"));
                    results += cnt;
                    empty += cnt == 0;
                    json_t *block = json_array_get(
                        json_object_get(json_object_get(resp, "result"), "content"), 0);
                    if (cnt == 10 && json_is_string(json_object_get(block, "text"))) {
                        line_bytes[nfull] = (double)c.last_len;
                        text_bytes[nfull++] =
                            (double)json_string_length(json_object_get(block, "text"));
                    }
                    json_decref(owned);
                }
                if (trace) {
                    char qtext[512];
                    bench_corpus_query(corp, i, qtext, sizeof qtext);
                    fprintf(trace, "%" PRIu64 "\t%s\t%.3f\t%zu\t%s\n", items, kind_names[kinds[i]],
                            ms, cnt, qtext);
                }
            }
            json_decref(resp);
        }
    }
    child_finish(&c);
    if (trace)
        fclose(trace);
    if (done < nq || errors)
        g_failed = true;
    stats s = stats_of(lat, done);
    double cpu_per_q = done ? child_cpu_ms(&c) / (double)(done + 1) : 0;
    if (done) {
        if (!o->json) {
            printf("search_ms items=%" PRIu64 " queries=%zu p50=%.3f p95=%.3f p99=%.3f max=%.2f "
                   "mean=%.3f first=%.2f avg_results=%.1f empty=%zu errors=%zu\n",
                   items, done, s.p50, s.p95, s.p99, s.max, s.mean, first,
                   (double)results / (double)done, empty, errors);
            printf("search_by_kind items=%" PRIu64, items);
        }
        json_t *by = json_object();
        for (int k = 0; k < 5; k++) {
            stats sk = stats_of(bykind[k], nbykind[k]);
            if (!o->json)
                printf(" %s_p50=%.3f %s_p99=%.3f", kind_names[k], sk.p50, kind_names[k], sk.p99);
            json_object_set_new(by, kind_names[k],
                                json_pack("{s:I, s:f, s:f}", "n", (json_int_t)sk.n, "p50_ms",
                                          sk.p50, "p99_ms", sk.p99));
        }
        stats sl = stats_of(line_bytes, nfull), st = stats_of(text_bytes, nfull);
        if (!o->json) {
            printf("\npeak_rss_kb items=%" PRIu64 " session=search max=%ld cpu_ms_per_query=%.3f\n",
                   items, peak_rss_kb(&c), cpu_per_q);
            printf("search_answer_bytes items=%" PRIu64 " answers_of_10=%zu line_p50=%.0f "
                   "text_p50=%.0f text_p95=%.0f\n",
                   items, nfull, sl.p50, st.p50, st.p95);
        }
        json_array_append_new(
            json_object_get(g_out, "search"),
            json_pack("{s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:f, s:o}",
                      "items", (json_int_t)items, "queries", (json_int_t)done, "p50_ms", s.p50,
                      "p95_ms", s.p95, "p99_ms", s.p99, "max_ms", s.max, "mean_ms", s.mean,
                      "first_ms", first, "avg_results", (double)results / (double)done, "empty",
                      (json_int_t)empty, "errors", (json_int_t)errors, "peak_rss_kb",
                      (json_int_t)peak_rss_kb(&c), "cpu_ms_per_query", cpu_per_q, "by_kind", by));
        json_object_set_new(
            json_array_get(json_object_get(g_out, "search"),
                           json_array_size(json_object_get(g_out, "search")) - 1),
            "answer_bytes",
            json_pack("{s:I, s:f, s:f, s:f}", "answers_of_10", (json_int_t)nfull, "line_p50",
                      sl.p50, "text_p50", st.p50, "text_p95", st.p95));
        fflush(stdout);
    }
    for (uint64_t i = 0; i <= nq; i++)
        free(reqs[i].p);
    for (int k = 0; k < 5; k++)
        free(bykind[k]);
    free(reqs);
    free(kinds);
    free(lat);
    free(line_bytes);
    free(text_bytes);
}

/* ---- machine ------------------------------------------------------------------------------------
 */

/* The 1-minute load average: the machine may be shared, and a busy
 * neighbour inflates every wall-clock figure. */
static double loadavg1(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static void machine_info(json_t *m) {
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *colon = strchr(line, ':');
                if (colon) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t')
                        colon++;
                    size_t n = strcspn(colon, "\n");
                    snprintf(model, sizeof model, "%.*s", (int)n, colon);
                }
                break;
            }
        }
        fclose(f);
    }
    json_object_set_new(m, "cpu", json_string(model));
    json_object_set_new(m, "nproc", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
}

int main(int argc, char **argv) {
    opts o;
    parse_opts(&o, argc, argv);
    g_opts = &o;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    bench_corpus *corp = bench_corpus_new(BENCH_SEED);
    if (!corp)
        die("out of memory");

    if (o.dump) { /* print corpus samples: N items, then N queries */
        bench_item it;
        for (uint64_t i = 0; i < o.dump; i++) {
            bench_corpus_item(corp, BENCH_STREAM_POPULATE, i, &it);
            json_t *j = item_json(&it);
            char *s = json_dumps(j, JSON_COMPACT);
            if (s)
                puts(s);
            free(s);
            json_decref(j);
        }
        char q[512];
        for (uint64_t i = 0; i < o.dump; i++) {
            bench_query_kind k = bench_corpus_query(corp, i, q, sizeof q);
            printf("query %-10s %s\n", kind_names[k], q);
        }
        bench_corpus_free(corp);
        return 0;
    }
    mkdir_p(o.workdir);
    char *absdir = realpath(o.workdir, NULL); /* the child runs elsewhere */
    if (!absdir)
        die("%s: %s", o.workdir, strerror(errno));
    o.workdir = o.owned[1] = absdir;

    double load_start = loadavg1();
    g_out = json_object();
    json_object_set_new(g_out, "loadavg_start", json_real(load_start));
    json_t *machine = json_object();
    machine_info(machine);
    json_object_set_new(g_out, "machine", machine);
    json_object_set_new(g_out, "cortexd", json_string(o.cortexd));
    json_object_set_new(g_out, "corpus_version", json_integer(BENCH_CORPUS_VERSION));
    json_object_set_new(g_out, "initialize", json_array());
    json_object_set_new(g_out, "populate", json_array());
    json_object_set_new(g_out, "search", json_array());
    if (!o.json)
        printf("machine nproc=%" JSON_INTEGER_FORMAT " cpu=\"%s\" cortexd=%s\n",
               json_integer_value(json_object_get(machine, "nproc")),
               json_string_value(json_object_get(machine, "cpu")), o.cortexd);

    /* corpus shape, so a reader can judge the figures */
    {
        bench_item it;
        size_t total = 0, mn = SIZE_MAX, mx = 0, n = 1000;
        for (size_t i = 0; i < n; i++) {
            bench_corpus_item(corp, BENCH_STREAM_POPULATE, i, &it);
            size_t l = strlen(it.text);
            total += l;
            mn = l < mn ? l : mn;
            mx = l > mx ? l : mx;
        }
        if (!o.json)
            printf("corpus version=%d text_bytes_avg=%.0f min=%zu max=%zu\n", BENCH_CORPUS_VERSION,
                   (double)total / (double)n, mn, mx);
        json_object_set_new(g_out, "corpus",
                            json_pack("{s:f, s:I, s:I}", "text_bytes_avg",
                                      (double)total / (double)n, "text_bytes_min", (json_int_t)mn,
                                      "text_bytes_max", (json_int_t)mx));
    }

    /* 1. spawn -> initialize on an empty workspace */
    char *ws_empty = fmt_alloc("%s/ws-empty", o.workdir);
    rm_rf(ws_empty);
    mkdir_p(ws_empty);
    if (o.do_init) {
        note("initialize: %" PRIu64 " runs on an empty workspace", o.runs);
        bench_initialize(&o, ws_empty, 0);
    }
    free(ws_empty);

    /* 2. observe, one at a time */
    if (!g_failed && o.do_observe)
        bench_observe(&o, corp);

    /* 3. populated workspaces: search, then spawn -> initialize on the largest */
    uint64_t largest = 0;
    char *ws_largest = NULL;
    for (size_t i = 0; i < o.nsizes && !g_failed && (o.do_search || o.do_init); i++) {
        char *ws = fmt_alloc("%s/ws-%" PRIu64 "-v%d", o.workdir, o.sizes[i], BENCH_CORPUS_VERSION);
        if (populate(&o, corp, ws, o.sizes[i])) {
            if (o.do_search)
                bench_search(&o, corp, ws, o.sizes[i]);
            if (o.sizes[i] > largest) {
                largest = o.sizes[i];
                free(ws_largest);
                ws_largest = xstrdup(ws);
            }
        }
        free(ws);
    }
    if (ws_largest && !g_failed && o.do_init) {
        note("initialize: %" PRIu64 " runs on the %" PRIu64 "-item workspace", o.runs, largest);
        bench_initialize(&o, ws_largest, largest);
    }
    free(ws_largest);

    json_object_set_new(g_out, "ok", json_boolean(!g_failed));
    json_object_set_new(g_out, "loadavg_end", json_real(loadavg1()));
    if (!o.json)
        printf("loadavg start=%.2f end=%.2f\n", load_start, loadavg1());
    if (o.json) {
        char *s = json_dumps(g_out, JSON_INDENT(2));
        if (s)
            puts(s);
        free(s);
    }
    json_decref(g_out);
    bench_corpus_free(corp);
    free(o.owned[0]);
    free(o.owned[1]);
    if (g_failed)
        note("FAILED: see the messages above");
    return g_failed ? 1 : 0;
}
