/* SPDX-License-Identifier: Apache-2.0 */
/* cortexd's background sync: one thread per process that, when the
 * workspace has an upstream, takes the workspace's sync lock (flock on
 * .cortex/sync.lock; whoever holds it is the one process that syncs) and
 * then pushes the outbox whenever it has work and pulls every few seconds
 * (and right after a push), backing off with full jitter on failures, and
 * for longer (10 s doubling up to 10 min) when the core broke the protocol
 * (a pull that does not advance, a push answer without every result). It
 * uses its own store connection, so agents' tool calls never wait on it or
 * on the network. */
#pragma once

#include "workspace.h"

#include <jansson.h>
#include <stdbool.h>

/* Starts the thread for `ws` (copied) when `.cortex/upstream` exists.
 * Returns 0 when started, CX_ENOTFOUND when no upstream is configured,
 * CX_EINVAL when already running. */
int cx_sync_start(const cx_workspace *ws);

/* Stops the thread: requests in flight are aborted, so this returns within
 * about a second. Harmless when not running. */
void cx_sync_stop(void);

/* The thread's state: {"running", "lock_held", "last_push_ms", "last_pull_ms",
 * "last_error", "backlog", "rejected"}; NULL members when unknown. */
json_t *cx_sync_state(void);

/* Takes the workspace's sync lock without waiting: 1 and *fd when taken
 * (close fd to release), 0 when another process holds it, or a negative
 * CX_E... code. */
int cx_sync_lock_try(const char *state_dir, int *fd);

/* The pull interval in ms: $CORTEX_SYNC_INTERVAL_MS, else sync.intervalMs of
 * the workspace config (read by cx_sync_start), else 10 s. */
unsigned long cx_sync_interval_ms(void);
