/* SPDX-License-Identifier: Apache-2.0 */
/* One step of sync at a time, over a client and a store: push one batch of
 * the outbox (uploading the blobs the core lacks first), or pull one page of
 * the change feed. The caller (cortexd's sync thread, `cortex sync`) loops,
 * backs off and decides when to stop; nothing here sleeps or prints.
 *
 * Errors: CX_EIO for failures worth retrying soon (transport, 5xx, 429,
 * 408: `retry_after_s` says how long the core asked to wait), CX_EFAIL for
 * answers that will not change by themselves (401, 403, 400; the detail
 * says what to do), CX_ECANCELED when the client was aborted; store errors
 * as the store returns them. Every failure is also recorded as the store's
 * sync.last_error and, for a push, on the ops of the batch.
 *
 * Progress is required, so that a sync always ends: a pull page with
 * "more": true whose "next" does not pass the cursor, a "next" behind the
 * cursor, a page that is not {"changes", "next", "more"}, a push answered
 * 200 without a result (applied, duplicate or rejected) for every op sent:
 * each is a protocol error, CX_EFAIL with `protocol` set and a detail that
 * begins "the core broke the protocol: ". Nothing of such a page is
 * applied; the ops a broken push answer did acknowledge are.
 *
 * `remote` tells where a failure came from: the core or the network (set),
 * or this machine (the store, memory: clear), so that `cortex sync` exits
 * with the status cortex(1) documents for each.
 *
 * A push the core refuses because of one op is not a failure: a 413 for a
 * batch of one op, or a 400 whose error message begins "ops[N]." (the core
 * checked op N against item.json and applied none of the batch) rejects
 * that op locally, with the core's message as its reason (cortex status
 * shows it), and the step succeeds with rejected = 1, so that the rest of
 * the outbox goes on in the next step. */
#pragma once

#include "store/apply.h"
#include "store/blob.h"
#include "store/store.h"
#include "sync/client.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cx_engine_step {
    size_t sent;        /* push: ops sent */
    size_t acked;       /* push: ops acknowledged (applied or duplicate) */
    size_t rejected;    /* push: ops rejected by the core */
    size_t blobs;       /* push: blobs uploaded */
    size_t applied;     /* pull: changes applied */
    size_t skipped;     /* pull: changes skipped as invalid (see store/apply.h) */
    char last_skip_id[CX_WIRE_MAX_ID + 1]; /* pull: the last one skipped ("" = unknown) */
    char last_skip[CX_APPLY_MAX_REASON];   /* pull: why */
    size_t fetched;     /* pull: artifact contents (blobs) fetched from the core */
    size_t fetch_failed; /* pull: blobs whose fetch failed (each one recorded, see blob.h) */
    char last_fetch_error[CX_BLOB_MAX_ERROR]; /* pull: why the last one failed */
    bool more;          /* push: the outbox has more; pull: the core has more */
    long status;        /* the last HTTP status (0 = none) */
    long retry_after_s; /* from a 429 or 503 */
    bool remote;        /* failed: the core or the network failed, not the store */
    bool protocol;      /* failed: the core broke the protocol (see above) */
} cx_engine_step;

/* Pushes the oldest batch. st->sent == 0 when the outbox had nothing. */
int cx_engine_push(cx_store *s, cx_client *c, cx_engine_step *st);

/* The op a push's 400 answer blames: N when `message` begins "ops[N]."
 * (N in decimal, no sign or leading zero) and N < nops, else -1 (a 400
 * about the batch as a whole, or an index outside it). `message` may be
 * NULL. */
long cx_engine_refused_op(const char *message, size_t nops);

/* Pulls and applies one page after the stored cursor (a 410 rebuilds and
 * pulls from 0), then fetches from the core the content of pulled artifact
 * versions this machine lacks (a few blobs per step, each streamed to disk
 * and checked against its sha-256 and size before it is kept). A blob the
 * core does not serve, or serves wrong, is recorded on the blob (the
 * reader of that version is told why) and in the last sync error, and
 * counted in st->fetch_failed: the pull itself still succeeds, so that the
 * rest of the feed arrives. */
int cx_engine_pull(cx_store *s, cx_client *c, cx_engine_step *st);

/* Asks the core who the client's key is (GET /v1/info) into *out: its
 * team, role, principal and key id ("" for what the core does not say).
 * *status gets the HTTP status (0 without an answer). CX_EIO for a failure
 * worth retrying (transport, 5xx, 429), CX_EFAIL for a refusal (401, 403)
 * or an answer that is not an object. Callers ask once per client and keep
 * the answer: a client's key does not change. */
int cx_engine_whoami(cx_client *c, cx_upstream_who *out, long *status);

/* The team check, before every push and pull: the workspace must be bound
 * to the team of the key (`who`, from cx_engine_whoami). A workspace bound
 * to no team yet is bound to it now (with the key id and principal).
 * CX_ECONFLICT when it is bound to another team, with a message that names
 * both and says what to do; nothing may be pushed or pulled then. A `who`
 * without a team (a core that does not say) passes. */
int cx_engine_team_check(cx_store *s, const cx_upstream_who *who);
