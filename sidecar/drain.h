/* SPDX-License-Identifier: Apache-2.0 */
/* The push/pull drain loop, in one place for the two programs that sync:
 * cortexd's background sync thread (sync.c) and `cortex sync`. Push sends
 * outbox batches until the outbox is empty; pull applies pages until the
 * core has no more. What to do with a failed step is the caller's: the
 * background thread gives up and backs off itself, `cortex sync` retries
 * transient failures until its deadline. Neither loop can spin: a step that
 * succeeds has moved something (engine.h requires progress of the core). */
#pragma once

#include "store/store.h"
#include "sync/client.h"
#include "sync/engine.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cx_drain_hooks {
    /* After each step that moved something (push: ops sent; pull: every
     * page). NULL = nothing. */
    void (*step)(void *ud, bool push, const cx_engine_step *st);
    /* A step failed with r: true to try it again (the callee waits as it
     * sees fit), false to give up. NULL = give up at once. */
    bool (*retry)(void *ud, bool push, int r, long retry_after_s);
    const atomic_int *stop; /* checked between pull pages; NULL = never set */
    void *ud;
} cx_drain_hooks;

typedef struct cx_drain_stats {
    size_t sent, pushed, rejected, blobs; /* push: ops sent, acknowledged, rejected; blobs */
    size_t pulled;                        /* pull: changes applied */
    size_t skipped;                       /* pull: changes skipped as invalid (see cortex status) */
    size_t fetch_failed;                  /* pull: artifact contents the core did not serve right */
    long retry_after_s;                   /* of the step that failed last */
    bool remote;   /* the step that failed last: the core or the network failed */
    bool protocol; /* the step that failed last: the core broke the protocol */
    long status;   /* the step that failed last: its last HTTP status (0 = none) */
} cx_drain_stats;

/* Pushes until the outbox is empty. 0, or the failed step's CX_E code
 * (detail in cx_error_last()) once `retry` gives up. Adds to *st. */
int cx_drain_push(cx_store *s, cx_client *c, const cx_drain_hooks *h, cx_drain_stats *st);

/* Pulls until caught up (or stopped). As cx_drain_push. */
int cx_drain_pull(cx_store *s, cx_client *c, const cx_drain_hooks *h, cx_drain_stats *st);
