/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox as the sync engine sees it: read in batches of protocol ops,
 * then what the core said about each op recorded, and the sync state
 * summed up for `cortex status`.
 *
 * Rules kept here: an op leaves the outbox only when the core acknowledged
 * it (applied or duplicate); a rejected op stays with its reason (also set
 * on the item as sync_rejected) and is not sent again; private items are
 * never read for a push (they never get outbox rows). */
#pragma once

#include "proto/wire.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CX_OUTBOX_MAX_OPS CX_WIRE_MAX_OPS
#define CX_OUTBOX_MAX_BYTES (CX_WIRE_MAX_PUSH_BYTES - 64 * 1024) /* room for the envelope */

/* The oldest unrejected outbox ops as protocol ops, at most max_ops and
 * about max_bytes of JSON: *ops = [{"op_id","op","item","version"?,
 * "review"?}…] (empty when there is nothing to push); *blobs = the sha256
 * of every artifact version among them (may repeat). Both owned by the
 * caller. An outbox row whose payload cannot be read is marked rejected
 * (locally) and skipped. */
int cx_outbox_batch(cx_store *s, size_t max_ops, size_t max_bytes, json_t **ops, json_t **blobs);

/* Records the core's per-op results for a batch sent (results as the push
 * answer's "results"), in one transaction: applied/duplicate delete the row
 * and set the item's server_seq; rejected keep the row with the reason.
 * Ops of the batch without a result count one more attempt. Also sets
 * sync.last_push. *acked counts rows removed, *rejected rows rejected (both
 * may be NULL). */
int cx_outbox_ack(cx_store *s, const json_t *ops, const json_t *results, size_t *acked,
                  size_t *rejected);

/* Counts a failed attempt on every op of the batch with `error` as
 * last_error, and records it as sync.last_error. */
int cx_outbox_fail(cx_store *s, const json_t *ops, const char *error);

/* Marks the ops rejected locally with `reason` (e.g. too large to send). */
int cx_outbox_reject(cx_store *s, const json_t *ops, const char *reason);

/* *out: {"cursor":N, "backlog":N, "rejected":N, "last_push":ms|null,
 * "last_pull":ms|null, "last_error":text|null, "rejected_ops":[{"op_id",
 * "op","item_id","reason"}…] (at most 20), "skipped":N (pulled changes
 * skipped as invalid so far), "last_skip":{"id","reason"}|null}. Owned by
 * the caller. */
int cx_outbox_state(cx_store *s, json_t **out);
