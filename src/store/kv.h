/* SPDX-License-Identifier: Apache-2.0 */
/* Small named values of a workspace kept in the store's kv table: the sync
 * state (the pull cursor, the core it belongs to, when the last push and
 * pull happened, the last error, the pulled items skipped). Only the store
 * writes them; the sync engine and the programs read and set them here. */
#pragma once

#include "store/store.h"

#include <stdint.h>

/* The keys of the sync state (values are text). */
#define CX_KV_CURSOR "sync.cursor"         /* the pull cursor, a decimal seq */
#define CX_KV_UPSTREAM "sync.upstream"     /* the core the cursor belongs to */
#define CX_KV_LAST_PUSH "sync.last_push"   /* ms since the epoch */
#define CX_KV_LAST_PULL "sync.last_pull"   /* ms since the epoch */
#define CX_KV_LAST_ERROR "sync.last_error" /* text */
#define CX_KV_SKIPPED "sync.skipped"       /* pulled changes skipped so far, decimal */
#define CX_KV_LAST_SKIP "sync.last_skip"   /* {"id", "reason"} as JSON text */

/* The value of `key`: *value malloc'd (the caller frees it); CX_ENOTFOUND
 * when unset. */
int cx_kv_get(cx_store *s, const char *key, char **value);

/* Sets `key` to `value` (NULL deletes it), in a transaction of its own. */
int cx_kv_set(cx_store *s, const char *key, const char *value);

/* The pull cursor: 0 when none is stored (or it is not a number). */
int cx_kv_cursor(cx_store *s, int64_t *out);

/* Makes the cursor belong to `url`: when the stored sync.upstream differs,
 * it becomes `url` and the cursor goes back to 0 (a different core has a
 * different seq), in one transaction. */
int cx_kv_bind_upstream(cx_store *s, const char *url);
