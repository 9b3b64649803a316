/* SPDX-License-Identifier: Apache-2.0 */
/* The store's side of sync: what the engine reads from and writes to the
 * workspace cache. Reads the outbox in batches, records what the core said
 * about each op, applies pull pages with their cursor in one transaction,
 * rebuilds after a 410, and keeps the sync state (cursor, last push and
 * pull, last error) in the kv table.
 *
 * Rules kept here: an op leaves the outbox only when the core acknowledged
 * it (applied or duplicate); a rejected op stays with its reason (also set
 * on the item as sync_rejected) and is not sent again; a pulled change never
 * overwrites an item that still has unpushed ops, except that a review
 * decision turns a local draft into what the reviewer made of it; private
 * items are never read for a push (they never get outbox rows). */
#pragma once

#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define CX_REPLICA_MAX_OPS 500
#define CX_REPLICA_MAX_BYTES (4u * 1024 * 1024 - 64 * 1024) /* body room for the envelope */

/* The oldest unrejected outbox ops as protocol ops, at most max_ops and
 * about max_bytes of JSON: *ops = [{"op_id","op","item","version"?,
 * "review"?}…] (empty when there is nothing to push); *blobs = the sha256
 * of every artifact version among them (may repeat). Both owned by the
 * caller. An outbox row whose payload cannot be read is marked rejected
 * (locally) and skipped. */
int cx_replica_batch(cx_store *s, size_t max_ops, size_t max_bytes, json_t **ops, json_t **blobs);

/* Records the core's per-op results for a batch sent (results as the push
 * answer's "results"), in one transaction: applied/duplicate delete the row
 * and set the item's server_seq; rejected keep the row with the reason.
 * Ops of the batch without a result count one more attempt. Also sets
 * sync.last_push. *acked counts rows removed, *rejected rows rejected (both
 * may be NULL). */
int cx_replica_ack(cx_store *s, const json_t *ops, const json_t *results, size_t *acked,
                   size_t *rejected);

/* Counts a failed attempt on every op of the batch with `error` as
 * last_error, and records it as sync.last_error. */
int cx_replica_fail(cx_store *s, const json_t *ops, const char *error);

/* Marks the ops rejected locally with `reason` (e.g. too large to send). */
int cx_replica_reject(cx_store *s, const json_t *ops, const char *reason);

/* Validates a pull page ({"changes":[…], "next":N, "more":bool}) and
 * applies it with the cursor `next` in one transaction. CX_EINVAL for a
 * page that does not have that shape (nothing applied). *next, *more and
 * *applied (may be NULL) report the page. */
int cx_replica_apply(cx_store *s, const json_t *page, int64_t *next, bool *more, size_t *applied);

/* After a 410: drops items that came from the core and have no unpushed
 * work (artifacts are kept, their versions are local), and sets the cursor
 * to 0, in one transaction; the next pulls fill the cache again. */
int cx_replica_rebuild(cx_store *s);

/* The pull cursor (0 when none). */
int cx_replica_cursor(cx_store *s, int64_t *out);

/* Small state in kv: get (*value malloc'd, CX_ENOTFOUND when unset) and set
 * (NULL deletes), each its own transaction. */
int cx_replica_kv_get(cx_store *s, const char *key, char **value);
int cx_replica_kv_set(cx_store *s, const char *key, const char *value);

/* Makes the cursor belong to `url`: when the stored sync.upstream differs,
 * the cursor goes back to 0 (a different core has a different seq). */
int cx_replica_bind_upstream(cx_store *s, const char *url);

/* *out: {"cursor":N, "backlog":N, "rejected":N, "last_push":ms|null,
 * "last_pull":ms|null, "last_error":text|null, "rejected_ops":[{"op_id",
 * "op","item_id","reason"}…] (at most 20)}. */
int cx_replica_state(cx_store *s, json_t **out);

/* The content of a stored blob (*data malloc'd). CX_ENOTFOUND when absent. */
int cx_replica_blob(cx_store *s, const char *sha, char **data, size_t *len);
