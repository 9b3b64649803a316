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
#define CX_KV_TEAM "sync.team"             /* the team the workspace is bound to */
#define CX_KV_TEAM_KEY_ID "sync.team_key_id" /* the key id it first synced with */
#define CX_KV_TEAM_PRINCIPAL "sync.team_principal" /* and that key's principal */

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

/* Binds the workspace to `team` (with the key id and principal it first
 * synced with; either may be NULL) when it is bound to no team yet, in one
 * transaction. 0 when the workspace is (now) bound to `team`; CX_ECONFLICT
 * when it is bound to another team, with that team in *bound (malloc'd,
 * the caller frees it; untouched otherwise). Nothing is written then. */
int cx_kv_bind_team(cx_store *s, const char *team, const char *key_id, const char *principal,
                    char **bound);

/* Forgets the team binding and resets the pull cursor to 0, in one
 * transaction (`cortex remote set --rebind`): the next sync binds the
 * workspace to the team of the key it uses and pulls that team's feed from
 * the start. */
int cx_kv_unbind_team(cx_store *s);
