/* SPDX-License-Identifier: Apache-2.0 */
/* Applying what a core sends: a page of its change feed, or the rebuild
 * after it answered 410 Gone to an old cursor.
 *
 * What comes from a core is input like anything an agent writes: each
 * pulled item is checked against the wire envelope (cx_wire_item_check),
 * its id normalised (a lower-case copy of an id reaches the same row), each
 * of its texts redacted, and it is written through the store's own item
 * insert and update. An item that fails the check (a field past its limit,
 * a kind or status this sidecar does not know or that the kind cannot hold,
 * a bad time, or a status only a reviewer's decision sets without that
 * decision: a thread or approved draft without a review {decision:
 * approve}, a rejected or changes_requested draft without that decision,
 * an accepted artifact without a version a reviewer accepted) is skipped
 * whole, never cut nor downgraded: the skip is counted and its id
 * and reason kept in the sync state (sync.skipped, sync.last_skip), the
 * cursor moves past it and the rest of the page is applied. A tombstone
 * whose id is not an item id is skipped likewise.
 *
 * Rules kept: a pulled change never overwrites an item that still has
 * unpushed ops, except that a reviewer's decision turns a local draft into
 * what the reviewer made of it (the local text stays); a tombstone deletes
 * an item unless it has unpushed ops; a private local item is never
 * overwritten or deleted by a core; a pulled draft keeps the private
 * items its local copy cites as evidence (the outbox never pushed their
 * ids); a parent id that does not exist here is dropped. */
#pragma once

#include "proto/wire.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CX_APPLY_MAX_REASON 256

/* What one page did. */
typedef struct cx_apply_result {
    int64_t next;      /* the cursor now stored */
    bool more;         /* the core has more after it */
    size_t applied;    /* changes written (items inserted or updated, tombstones) */
    size_t skipped;    /* changes skipped as invalid (see above) */
    char last_skip_id[CX_WIRE_MAX_ID + 1];   /* of the last skipped change ("" = none or
                                              * not an item id) */
    char last_skip[CX_APPLY_MAX_REASON];     /* its reason, naming the field */
} cx_apply_result;

/* Validates a pull page ({"changes":[…], "next":N, "more":bool}) and
 * applies it with the cursor `next` in one transaction (also sync.last_pull,
 * and sync.last_error cleared). CX_EINVAL for a page that does not have
 * that shape (nothing applied); a bad item inside a well-formed page is a
 * skip, not an error. *res (may be NULL) reports the page. */
int cx_apply_page(cx_store *s, const json_t *page, cx_apply_result *res);

/* After a 410: drops items that came from the core and have no unpushed
 * work (artifacts are kept, their versions are local; private and unpushed
 * items never came from it), and sets the cursor to 0, in one transaction;
 * the next pulls fill the cache again. */
int cx_apply_rebuild(cx_store *s);
