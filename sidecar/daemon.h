/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace's background cortexd (`cortex start` / `cortex stop`).
 *
 * `cortexd --background` serves no agent: it keeps the workspace's sync
 * running (it holds the sync lock, so it is the one process that talks to
 * the upstream; it notices an upstream configured later) and keeps the
 * store tidy (search indexing, pending embeddings, WAL checkpoints). Its
 * files, all in <workspace>/.cortex/:
 *
 *   daemon.lock   flock()ed for as long as it runs: the single-instance
 *                 guarantee (a second daemon exits at once) and the
 *                 liveness test (a stale pid file never fools anyone)
 *   cortexd.pid   its pid, written after it holds the lock, removed on exit
 *   cortexd.log   its log (stderr), appended; moved to cortexd.log.1 when it
 *                 passes 1 MiB at start
 *
 * SIGTERM or SIGINT stops it cleanly within about a second. */
#pragma once

#include "workspace.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CX_DAEMON_LOCK "daemon.lock"
#define CX_DAEMON_PID "cortexd.pid"
#define CX_DAEMON_LOG "cortexd.log"

typedef struct cx_daemon_info {
    bool running;        /* the lock is held */
    pid_t pid;           /* from the pid file; 0 when unknown */
    uint64_t started_ms; /* when the pid file was written; 0 when unknown */
} cx_daemon_info;

/* Whether the workspace's daemon runs, and which. */
int cx_daemon_status(const char *state_dir, cx_daemon_info *out);

/* Starts `cortexd` (absolute path) as the workspace's daemon, detached
 * (its own session, stdin from /dev/null, output to cortexd.log), and waits
 * up to `wait_ms` until it holds the lock. *already = true (and nothing is
 * started) when one runs. *pid is its pid. CX_EIO with the log's last line
 * when it exited instead; CX_ETIMEOUT when it did not get ready. */
int cx_daemon_start(const cx_workspace *ws, const char *cortexd, unsigned wait_ms, pid_t *pid,
                    bool *already);

/* Stops the daemon: SIGTERM, then waits up to `wait_ms` for the lock to be
 * released; SIGKILL after that. *was_running tells whether one ran; *pid
 * which. Only a process whose command line names cortexd is signalled. */
int cx_daemon_stop(const char *state_dir, unsigned wait_ms, pid_t *pid, bool *was_running);

/* The body of `cortexd --background`: returns the exit status (0 after a
 * clean stop, 3 when another daemon already runs for the workspace, 1 on
 * failure). Call with fd 0 at /dev/null. */
int cx_daemon_run(const cx_workspace *ws);

/* The absolute path of a program of this package: `name` next to the
 * running executable (both install into bindir), then in ../bin and
 * ../sidecar (a build tree) relative to it, then ../sbin (where earlier
 * builds installed cortexd), then on $PATH. `env` names an environment variable that overrides the search
 * (e.g. "CORTEX_CORTEXD"). malloc'd, or NULL (CX_ENOTFOUND set). */
char *cx_daemon_find_program(const char *name, const char *env);
