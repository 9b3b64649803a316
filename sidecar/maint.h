/* SPDX-License-Identifier: Apache-2.0 */
/* Store maintenance on a connection of its own: search indexing, vectors
 * still to compute (a configured model, items from sync) and WAL
 * checkpoints, done in ticks by a background thread (cortexd's warm-up
 * thread) or loop (the background daemon) instead of inside an agent's
 * call. One tick is the same work wherever it runs. */
#pragma once

#include "workspace.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cx_maint cx_maint;

/* Opens a maintenance connection to ws's store (ws copied) with the
 * configured embedder (with retries; the built-in model when none is
 * configured or it cannot be made, which is logged). *out owned by the
 * caller; errors those of cx_store_open, detail in cx_error_last(). */
int cx_maint_open(cx_maint **out, const cx_workspace *ws);

/* One tick: cx_store_maintain, then up to 256 pending embeddings. Failures
 * are logged and retried on the next tick (an embedding outage is said
 * once, and its end once). True when the next tick should come soon:
 * items were embedded (more may be waiting), or this process's writes
 * never paused during the tick (cx_store_maintain_busy). */
bool cx_maint_tick(cx_maint *mt);

/* Closes the connection; with `final_pass`, one last maintenance run on
 * the built-in model first (a clean stop leaves the store tidy). */
void cx_maint_close(cx_maint *mt, bool final_pass);
