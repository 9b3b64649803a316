/* SPDX-License-Identifier: Apache-2.0 */
/* cortexd: the per-workspace MCP server on stdio.
 *
 * Threads: the main thread reads stdin into a bounded queue (applying
 * cancellations at once), a worker serves the queue in order, and a warm-up
 * thread opens the store so that `initialize` never waits for it. While the
 * queue is empty and the worker idle, the main thread answers the messages
 * that need no store (`initialize`, `ping`: cx_mcp_handle_quick) itself:
 * arrival order holds, and the first answer does not wait for a thread to
 * wake. The worker and the warm-up thread start once the lines waiting at
 * start are read, so that the `initialize` a client sends at once is
 * answered before two new threads compete with it for the CPU. A single
 * `observe` that arrives while the worker is idle is also served by the
 * main thread (serve_inline()): handing it to the worker cost a thread
 * wake-up on every call, a large share of a 0.15 ms call. The
 * protocol stream is moved to a private descriptor and fd 1 points at
 * stderr, so nothing but protocol messages can reach the client.
 *
 * SIGTERM and SIGINT end the process within 2 s whatever the threads are
 * doing: queued requests are dropped, the request in flight is asked to
 * stop at its next progress point, and a watchdog ends the process with
 * _exit(0) should a thread still be busy (blocked on a lock held by another
 * process, a slow disk, a client that stopped reading) SHUTDOWN_GRACE_MS
 * after the signal. Leaving that way is as safe as kill -9, which the store
 * is built to survive: nothing acknowledged is lost. */
#include "agents.h"
#include "daemon.h"
#include "maint.h"
#include "mcp.h"
#include "proto/jsonrpc.h"
#include "proto/wire.h"
#include "redact/redact.h"
#include "util/error.h"
#include "util/log.h"
#include "session.h"
#include "sync.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define VERSION "0.1.0"
#define QUEUE_MAX_BYTES (64u * 1024 * 1024)
#define SHUTDOWN_GRACE_MS 1500 /* after SIGTERM; the process ends within 2 s */

typedef struct qitem {
    struct qitem *next;
    size_t len;      /* SIZE_MAX-free: oversize lines carry their size here */
    bool oversize;
    char line[];
} qitem;

static struct {
    int proto_fd;
    pthread_mutex_t out_lock;
    bool out_broken;

    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    qitem *head, *tail;
    size_t q_bytes;
    bool busy;       /* the worker is serving a message */
    bool closing;    /* no more input: drain and stop */
    bool stop_now;   /* SIGTERM: finish the current request only */

    int sig_pipe[2];
    cx_mcp *mcp;
    bool started;    /* the worker and warm-up threads run (main thread only) */
    pthread_t worker_t, warm_t;
    bool maint_stop; /* under q_lock, signalled by maint_cond */
    pthread_cond_t maint_cond;
} g = {.proto_fd = -1, .sig_pipe = {-1, -1}};

static volatile sig_atomic_t signalled; /* set by on_signal, read without locks */
static volatile sig_atomic_t serving_inline; /* the main thread serves a request */

/* One message and its newline in one writev(): a reader waiting for the
 * line's end is woken once, not first for the JSON and then for "\n". */
static void write_line(void *ud, const char *json, size_t len) {
    (void)ud;
    pthread_mutex_lock(&g.out_lock);
    struct iovec iov[2] = {{(void *)json, len}, {(void *)"\n", 1}};
    struct iovec *v = iov;
    int nv = 2;
    while (!g.out_broken && nv > 0) {
        ssize_t k = writev(g.proto_fd, v, nv);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            g.out_broken = true; /* the client went away */
            break;
        }
        size_t done = (size_t)k;
        while (nv > 0 && done >= v->iov_len) { /* whole parts written */
            done -= v->iov_len;
            v++;
            nv--;
        }
        if (nv > 0) { /* a part written in part */
            v->iov_base = (char *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    pthread_mutex_unlock(&g.out_lock);
}

/* SIGALRM, armed by on_signal while the main thread serves a request: the
 * watchdog's _exit(0) for a request stuck where the main thread cannot see
 * the signal (another process holding the store's lock). */
static void on_alarm(int sig) {
    (void)sig;
    _exit(0);
}

static void on_signal(int sig) {
    int saved = errno;
    char c = (char)sig;
    signalled = 1;
    if (serving_inline)
        alarm(1); /* cancelled when the request ends (see serve_inline) */
    if (write(g.sig_pipe[1], &c, 1) < 0) { /* nothing to do */
    }
    errno = saved;
}

static void enqueue(const char *line, size_t len, bool oversize) {
    qitem *it = malloc(sizeof *it + (oversize ? 0 : len));
    if (!it) {
        cx_log(CX_LOG_ERROR, "out of memory queueing a message of %zu bytes, dropping it", len);
        return;
    }
    it->next = NULL;
    it->len = len;
    it->oversize = oversize;
    if (!oversize)
        memcpy(it->line, line, len);
    pthread_mutex_lock(&g.q_lock);
    while (g.q_bytes > QUEUE_MAX_BYTES && !g.stop_now && !signalled) {
        /* back-pressure on the client; a signal is noticed within 100 ms,
         * so a stuck worker with a full queue cannot hide a SIGTERM */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g.q_cond, &g.q_lock, &until);
    }
    if (g.tail)
        g.tail->next = it;
    else
        g.head = it;
    g.tail = it;
    g.q_bytes += oversize ? 0 : len;
    pthread_cond_broadcast(&g.q_cond);
    pthread_mutex_unlock(&g.q_lock);
}

/* Nothing queued and nothing being served: a line read now may be
 * answered by the reader without overtaking an earlier one. Only the
 * reader queues, so this stays true until it queues again. */
static bool worker_idle(void) {
    pthread_mutex_lock(&g.q_lock);
    bool idle = !g.head && !g.busy;
    pthread_mutex_unlock(&g.q_lock);
    return idle;
}

/* Lines the main thread serves itself while the worker is idle: a
 * tools/call of `observe` with one text, which takes well under a
 * millisecond (the common write of an agent), and of `search` (about a
 * millisecond; tens at 100k items for a session's first use of a common
 * word). Anything else that matches (a search for the word "observe") is
 * only served on the other thread than usual, with the same answer. A
 * batch (`observations`) may take a while and reports progress, so it
 * stays with the worker, where a cancellation can reach it. */
static bool names_search(const char *line, size_t len) {
    /* "name", optional blanks, ':', optional blanks, "search": written
     * compactly by most clients, with spaces by some (Python's json) */
    for (const char *p = line, *end = line + len;
         (p = memmem(p, (size_t)(end - p), "\"name\"", 6)) != NULL; p += 6) {
        const char *q = p + 6;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q == end || *q++ != ':')
            continue;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if ((size_t)(end - q) >= 8 && memcmp(q, "\"search\"", 8) == 0)
            return true;
    }
    return false;
}

static bool inline_line(const char *line, size_t len) {
    if (len > 2 * CX_WIRE_MAX_BODY || !memmem(line, len, "\"tools/call\"", 12))
        return false;
    if (names_search(line, len))
        return true;
    return memmem(line, len, "\"observe\"", 9) && !memmem(line, len, "\"observations\"", 14);
}

/* Serves a line on the main thread. Arrival order holds: nothing is
 * queued or being served, and only this thread queues. A cancellation for
 * this request is read after its answer (the MCP allows ignoring a
 * cancellation of a request that completed); a SIGTERM meanwhile arms a
 * 1 s alarm that ends the process should the request not finish. */
static void serve_inline(const char *line, size_t len) {
    serving_inline = 1;
    cx_mcp_handle_line(g.mcp, line, len);
    serving_inline = 0;
    if (signalled)
        alarm(0); /* the main loop sees the signal now: the usual shutdown */
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g.q_lock);
        while (!g.head && !g.closing && !g.stop_now)
            pthread_cond_wait(&g.q_cond, &g.q_lock);
        if (g.stop_now || (!g.head && g.closing)) {
            pthread_mutex_unlock(&g.q_lock);
            return NULL;
        }
        qitem *it = g.head;
        g.head = it->next;
        if (!g.head)
            g.tail = NULL;
        g.q_bytes -= it->oversize ? 0 : it->len;
        g.busy = true;
        pthread_cond_broadcast(&g.q_cond);
        pthread_mutex_unlock(&g.q_lock);
        if (it->oversize)
            cx_mcp_handle_oversize(g.mcp, it->len);
        else
            cx_mcp_handle_line(g.mcp, it->line, it->len);
        free(it);
        pthread_mutex_lock(&g.q_lock);
        g.busy = false;
        pthread_mutex_unlock(&g.q_lock);
    }
}

/* The client closed stdin or a signal came: what only prepares for later
 * calls is not worth starting (the exit would wait for it). */
static bool session_ending(void) {
    pthread_mutex_lock(&g.q_lock);
    bool ending = g.closing || g.stop_now || g.maint_stop;
    pthread_mutex_unlock(&g.q_lock);
    return ending;
}

/* Opens the workspace and store right after start, then keeps the store
 * tidy on a connection of its own (maint.h), on the other core, instead of
 * inside an agent's call. Each step is skipped once the session is ending:
 * a client that closes right after `initialize` (a health check) does not
 * wait for sync and maintenance to start only to stop them. The rules of
 * redaction compile on the first write if not here; the outbox waits for
 * the next sync. */
static void *warm(void *arg) {
    (void)arg;
    if (cx_mcp_warm(g.mcp) != 0 || session_ending())
        return NULL;
    const cx_workspace *ws = cx_mcp_workspace(g.mcp);
    (void)cx_redact_init(); /* compile the rules before the first write needs them */
    if (session_ending())
        return NULL;
    (void)cx_sync_start(ws); /* when an upstream is configured */
    if (session_ending())
        return NULL;
    cx_maint *mt = NULL;
    if (cx_maint_open(&mt, ws) != 0) {
        cx_log(CX_LOG_WARNING, "no background maintenance: %s", cx_error_last());
        return NULL;
    }
    pthread_mutex_lock(&g.q_lock);
    /* a tick every 200 ms, or 50 ms after one that found the agent's
     * writes never pausing (a tick waits for a pause itself, checkpointing
     * meanwhile): resting 200 ms at 4,000 observes/s let the WAL reach the
     * writers' backstop checkpoint, copied inside an agent's call (70-130
     * ms; 33-54 ms with the shorter rest; at once was no better and made
     * calls of 1 ms or more more frequent) */
    for (bool more = false; !g.maint_stop;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (more ? 50 : 200) * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g.maint_cond, &g.q_lock, &until);
        if (g.maint_stop)
            break;
        pthread_mutex_unlock(&g.q_lock);
        more = cx_maint_tick(mt);
        pthread_mutex_lock(&g.q_lock);
    }
    pthread_mutex_unlock(&g.q_lock);
    cx_maint_close(mt, false);
    return NULL;
}

/* Starts the worker and the warm-up thread, once: before the first line is
 * queued, or as soon as no line waits to be read. */
static int start_threads(void) {
    if (g.started)
        return 0;
    if (pthread_create(&g.worker_t, NULL, worker, NULL) != 0 ||
        pthread_create(&g.warm_t, NULL, warm, NULL) != 0) {
        fprintf(stderr, "cortexd: cannot start threads\n");
        return -1;
    }
    g.started = true;
    return 0;
}

/* Started on SIGTERM/SIGINT: ends the process should the orderly shutdown
 * not be over within SHUTDOWN_GRACE_MS. It writes nothing (stderr or the
 * protocol stream may be a full pipe; the main thread has logged why). */
static void *watchdog(void *arg) {
    (void)arg;
    struct timespec left = {SHUTDOWN_GRACE_MS / 1000, (SHUTDOWN_GRACE_MS % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
    _exit(0);
}

/* usage()'s "Limits" lines name these values */
_Static_assert(CX_WIRE_MAX_BODY == 256u * 1024, "cortexd --help: text 256 KiB");
_Static_assert(CX_WIRE_MAX_TITLE == 200, "cortexd --help: title 200");
_Static_assert(CX_WIRE_MAX_TAGS == 16 && CX_WIRE_MAX_TAG == 64, "cortexd --help: 16 tags of 64");
_Static_assert(CX_WIRE_MAX_BLOB == 64u * 1024 * 1024, "cortexd --help: version 64 MiB");
_Static_assert(CX_MCP_MAX_MESSAGE == 16u * 1024 * 1024, "cortexd --help: message 16 MiB");

static void usage(FILE *f) {
    fprintf(f,
            "Usage: cortexd [OPTIONS]\n"
            "\n"
            "Serve a workspace's Cortex memory to one coding agent over MCP on stdio\n"
            "(newline-delimited JSON-RPC 2.0). Agents start it themselves, e.g.\n"
            "(with cortexd on PATH; `cortex start --agent NAME` writes this for you):\n"
            "  claude mcp add cortex -- cortexd\n"
            "\n"
            "The workspace is --workspace DIR, else $CORTEX_WORKSPACE, else the git\n"
            "repository enclosing the current directory, else the current directory.\n"
            "State lives in <workspace>/.cortex/ (kept out of git).\n"
            "\n"
            "Options:\n"
            "  -w, --workspace DIR   serve this workspace\n"
            "  -l, --log-level LVL   stderr log level: debug, info, notice, warning (default),\n"
            "                        error; also $CORTEX_LOG_LEVEL\n"
            "      --page-size N     items per page of tools/list and resources lists (default 100)\n"
            "      --background      serve no agent: keep the workspace's sync and store\n"
            "                        maintenance running (what `cortex start` runs; logs to\n"
            "                        stderr, which `cortex start` points at .cortex/cortexd.log)\n"
            "  -h, --help            show this help and exit\n"
            "  -V, --version         show the version and exit\n"
            "\n"
            "Limits, the same for every writer (cortexd(8) lists them all): an\n"
            "observation's text or a draft's body 256 KiB, a title 200 characters,\n"
            "16 tags of 64, one artifact version 64 MiB, one MCP message 16 MiB.\n"
            "\n"
            "Exit status: 0 when the client closed the session or on SIGTERM/SIGINT\n"
            "(within 2 s: the request in flight is abandoned if it has not ended);\n"
            "1 when the workspace cannot be set up on a terminal (for an agent the\n"
            "failure is reported in every tool result instead); 2 on bad options;\n"
            "3 with --background when another background cortexd serves the workspace.\n");
}

int main(int argc, char **argv) {
    const char *ws_dir = NULL;
    const char *level_name = getenv("CORTEX_LOG_LEVEL");
    long page_size = 0;
    bool background = false;
    static const struct option opts[] = {
        {"workspace", required_argument, NULL, 'w'}, {"log-level", required_argument, NULL, 'l'},
        {"page-size", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {"background", no_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "w:l:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'w': ws_dir = optarg; break;
        case 'l': level_name = optarg; break;
        case 'p': {
            char *end;
            errno = 0;
            page_size = strtol(optarg, &end, 10);
            if (errno || *end || page_size < 1 || page_size > 1000) {
                fprintf(stderr, "cortexd: --page-size takes a number from 1 to 1000\n");
                return 2;
            }
            break;
        }
        case 'b': background = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': fprintf(stdout, "cortexd %s\n", VERSION); return 0;
        default: fprintf(stderr, "Try 'cortexd --help'.\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cortexd: unexpected argument '%s'\nTry 'cortexd --help'.\n", argv[optind]);
        return 2;
    }
    int level = level_name ? cx_log_level_parse(level_name) : CX_LOG_WARNING;
    if (level < 0) {
        fprintf(stderr, "cortexd: unknown log level '%s'\n", level_name);
        return 2;
    }
    if (background && !level_name)
        level = CX_LOG_NOTICE;
    cx_log_init("cortexd", (cx_log_level)level);

    if (background) {
        cx_session *bs = NULL;
        if (cx_session_open(&bs, ws_dir, CX_SESSION_CREATE) != 0) {
            fprintf(stderr, "cortexd: cannot use workspace: %s\n", cx_error_last());
            return 1;
        }
        int brc = cx_daemon_run(cx_session_workspace(bs));
        cx_session_free(bs);
        return brc;
    }

    /* The protocol stream gets a private descriptor; fd 1 becomes stderr so
     * that a stray printf from any library cannot corrupt it. */
    fflush(stdout);
    g.proto_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (g.proto_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        fprintf(stderr, "cortexd: cannot set up the protocol stream: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&g.out_lock, NULL);
    pthread_mutex_init(&g.q_lock, NULL);
    pthread_cond_init(&g.q_cond, NULL);
    pthread_cond_init(&g.maint_cond, NULL);
    if (pipe2(g.sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction al = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &al, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* On a terminal a person is waiting to read which workspace this is, so
     * resolve it now; for an agent, the warm-up thread does it after start. */
    cx_session *tty = NULL;
    const cx_workspace *ws = NULL;
    if (isatty(STDIN_FILENO)) {
        if (cx_session_open(&tty, ws_dir, CX_SESSION_CREATE) != 0) {
            fprintf(stderr, "cortexd: cannot use workspace: %s\n", cx_error_last());
            return 1;
        }
        ws = cx_session_workspace(tty);
        /* The command to give an agent: `cortexd` only when that name on
         * PATH is this very program; else its absolute path. */
        char *self = realpath("/proc/self/exe", NULL), *found = cx_agent_on_path("cortexd");
        const char *cmd = self && found && strcmp(self, found) == 0 ? "cortexd" : self ? self : "cortexd";
        fprintf(stderr,
                "cortexd %s: Cortex memory server (MCP over stdio) for workspace %s\n"
                "State: %s\n"
                "It waits for an MCP client on stdin. Connect an agent instead of typing here:\n"
                "  cortex start --agent claude        (or codex, cursor, gemini; in the workspace)\n"
                "or by hand:\n"
                "  claude mcp add cortex -- %s --workspace %s\n"
                "  codex mcp add cortex -- %s --workspace %s\n"
                "Press Ctrl-D to quit.\n",
                VERSION, ws->root, ws->state_dir, cmd, ws->root, cmd, ws->root);
        free(self);
        free(found);
    }

    cx_mcp_config cfg = {.ws = ws, .workspace_dir = ws_dir, .write = write_line,
                         .page_size = (size_t)page_size, .background_maintenance = true};
    if (cx_mcp_new(&g.mcp, &cfg) != 0)
        return 1;

    cx_linereader *lr = NULL;
    if (cx_linereader_new(&lr, STDIN_FILENO, CX_MCP_MAX_MESSAGE) != 0)
        return 1;
    bool terminated = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                              {.fd = g.sig_pipe[0], .events = POLLIN}};
        /* until the threads start, only look: see start_threads() */
        int n = poll(p, 2, cx_linereader_pending(lr) || !g.started ? 0 : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && p[1].revents) {
            terminated = true;
            break;
        }
        if (n <= 0 && !cx_linereader_pending(lr)) {
            if (start_threads() != 0)
                return 1;
            continue;
        }
        const char *line;
        size_t len;
        cx_line_status st = cx_linereader_next(lr, &line, &len);
        if (st == CX_LINE_AGAIN)
            continue;
        if (st == CX_LINE_EOF || st == CX_LINE_ERROR)
            break;
        if (st == CX_LINE_OVERSIZE) {
            if (start_threads() != 0)
                return 1;
            enqueue(NULL, len, true);
            continue;
        }
        if (cx_mcp_preview_cancel(g.mcp, line, len))
            continue;
        if (worker_idle() && cx_mcp_handle_quick(g.mcp, line, len))
            continue;
        if (start_threads() != 0)
            return 1;
        if (inline_line(line, len) && worker_idle()) {
            serve_inline(line, len);
            continue;
        }
        enqueue(line, len, false);
    }
    cx_linereader_free(lr);

    if (terminated) {
        /* the watchdog first: even logging may block (a full stderr pipe,
         * or the protocol stream's lock held by a worker stuck writing) */
        pthread_t wd;
        if (pthread_create(&wd, NULL, watchdog, NULL) == 0)
            pthread_detach(wd);
        else
            _exit(0); /* no watchdog: do not risk waiting */
        cx_mcp_abort(g.mcp);
    }
    cx_mcp_shutdown(g.mcp);
    pthread_mutex_lock(&g.q_lock);
    g.closing = true;
    if (terminated)
        g.stop_now = true;
    pthread_cond_broadcast(&g.q_cond);
    pthread_mutex_unlock(&g.q_lock);
    if (g.started)
        pthread_join(g.worker_t, NULL);
    pthread_mutex_lock(&g.q_lock);
    g.maint_stop = true;
    pthread_cond_broadcast(&g.maint_cond);
    pthread_mutex_unlock(&g.q_lock);
    if (g.started)
        pthread_join(g.warm_t, NULL);
    cx_sync_stop();

    while (g.head) {
        qitem *it = g.head;
        g.head = it->next;
        free(it);
    }
    cx_mcp_free(g.mcp);
    cx_session_free(tty);
    close(g.proto_fd);
    if (terminated)
        cx_log(CX_LOG_INFO, "terminated by signal, exiting");
    return 0;
}
