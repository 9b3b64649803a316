/* SPDX-License-Identifier: Apache-2.0 */
/* The feed: the sync protocol's semantics, independent of HTTP: push (per-op
 * idempotency, per-team seq), pull, the review queue and decisions,
 * artifact acceptance, blobs. Every call is one transaction and sees only
 * the caller's team. Errors are CX_E… codes; the HTTP layer (server.c) alone maps them
 * to status codes. */
#pragma once

#include "core/keys.h"
#include "core/storage.h"
#include "redact/redact.h"

#include <jansson.h>

/* Core-only failures the HTTP layer answers with their own status. */
enum {
    CX_EFORBIDDEN = -40, /* the key's role may not do this (403) */
    CX_EGONE = -41,      /* the cursor is older than the tombstone horizon (410) */
};

typedef struct cx_feed {
    cx_storage *st;                 /* borrowed */
    uint8_t secret[CX_SECRET_LEN];
    size_t max_blob;                /* bytes */
} cx_feed;

/* The authenticated caller. */
typedef cx_storage_key cx_principal;

/* Push. req is the parsed body; *out {"results":[…]} is the caller's.
 * The whole push is checked first, nothing applied when it fails: CX_ELIMIT
 * for more than CX_WIRE_MAX_OPS ops, CX_EINVAL for a malformed op or an
 * item outside protocol/sync/schemas/item.json, with a detail that names
 * the field ("ops[3].item.title: at most 200 bytes (got 1024)"). Item ids
 * (and parent_id, evidence) are upper-cased, so a lower-case id names the
 * same item; every text is redacted (cx_redact_item, src/redact/json.c) before it is
 * stored. Then each op is answered on its own: applied, duplicate, or
 * rejected with a reason (a private item, a conflict, a role that may not
 * do it, a missing blob, or "forbidden: ..." for an item that claims a
 * status, thread, review or accepted version only a reviewer's decision
 * sets: every item.put and artifact.version is held to
 * cx_transition_allowed(CX_ROLE_AGENT, stored, claimed) whatever the key's
 * role, and each such refusal, like a review.decision op from an agent
 * key, is appended to the audit log as "push.refused" in the push's
 * transaction). The number of ops applied is added to *applied. */
int cx_feed_push(cx_feed *s, const cx_principal *p, const json_t *req, json_t **out,
                 long *applied);

/* One page of changes after `since`, serialised once: *out is the page's
 * JSON {"changes","next","more"} (malloc'd, NUL-terminated, *len bytes,
 * the caller's; untouched on failure). The page holds at most `limit`
 * changes (clamped to 1..CX_WIRE_MAX_PULL_LIMIT) and at most `budget`
 * bytes (the server gives CX_WIRE_MAX_PAGE_BYTES), except that its first
 * change always travels, alone when it is larger than the budget; `next`
 * and `more` say where the following page starts. Memory: the page's own
 * size plus one item, never a tree of the page. CX_EGONE when since is
 * below the team's horizon, CX_EIO for a damaged stored item. */
int cx_feed_pull(cx_feed *s, const cx_principal *p, int64_t since, int limit, size_t budget,
                 char **out, size_t *len);

/* The review queue: {"drafts":[…], "total"}. */
int cx_feed_queue(cx_feed *s, const cx_principal *p, int limit, json_t **out);

/* A decision on a draft from the HTTP endpoint; req {"decision","note"};
 * the draft id may be in either case, the note is redacted before it is
 * kept and may be at most CX_WIRE_MAX_NOTE bytes. CX_EFORBIDDEN (agent
 * key), CX_ENOTFOUND, CX_ECONFLICT (decided already), CX_EINVAL (the
 * detail names the field). *out {"seq","item"}. */
int cx_feed_decide(cx_feed *s, const cx_principal *p, const char *draft_id, const json_t *req,
                   json_t **out);

/* Accepts version n of an artifact. CX_EFORBIDDEN, CX_ENOTFOUND. */
int cx_feed_accept(cx_feed *s, const cx_principal *p, const char *artifact_id, long n,
                   json_t **out);

/* {"sha256":[…]} → {"missing":[…]}. CX_EINVAL, CX_ELIMIT. */
int cx_feed_blobs_missing(cx_feed *s, const cx_principal *p, const json_t *req, json_t **out);

/* Stores a blob after checking that data hashes to sha (CX_EINVAL if not;
 * CX_ELIMIT over max_blob). A blob cannot be redacted (its hash names it):
 * text in which a redaction rule matches, and credential files, are
 * refused with CX_EINVAL naming the rule. */
int cx_feed_blob_put(cx_feed *s, const cx_principal *p, const char *sha, const void *data,
                     size_t len, bool *created);
int cx_feed_blob_get(cx_feed *s, const cx_principal *p, const char *sha, void **data,
                     size_t *len);

/* Admin actions of the command line (cortex-core forget, compact), each one
 * transaction with an audit entry by `actor`.
 *
 * forget: deletes item `id`'s content at the core and records a tombstone
 * in the team's change feed (a new seq, *seq); an artifact's blobs go too
 * unless another live item names them. `reason` (may be NULL) goes into
 * the audit entry. CX_ENOTFOUND when the team has no such live item.
 *
 * compact: drops the team's tombstones with seq < before and raises the
 * tombstone horizon to `before` (clamped to the team's last seq + 1); a
 * pull with 0 < since < horizon then gets CX_EGONE (410). *dropped and
 * *horizon report what was done. CX_EINVAL for before < 1. */
int cx_feed_forget(cx_feed *s, const char *team, const char *actor, const char *id,
                   const char *reason, int64_t *seq);
int cx_feed_compact(cx_feed *s, const char *team, const char *actor, int64_t before,
                    int64_t *dropped, int64_t *horizon);

/* The endpoints whose request body is JSON. */
typedef enum cx_feed_body {
    CX_FEED_BODY_PUSH,     /* POST /v1/sync/push */
    CX_FEED_BODY_MISSING,  /* POST /v1/blobs/missing */
    CX_FEED_BODY_DECISION, /* POST /v1/drafts/{arg}/decision */
} cx_feed_body;

/* The one entry point for an untrusted JSON body: parses `len` bytes (not
 * NUL-terminated; duplicate member names refused) and hands the document to
 * push, blobs_missing or decide (`arg` is the draft id). CX_EINVAL for
 * malformed JSON (the detail says where), CX_ELIMIT for a body over
 * CX_WIRE_MAX_PUSH_BYTES, otherwise what the endpoint returns. *applied (push
 * only) as for cx_feed_push. Used by the HTTP layer and by the fuzz target
 * tests/fuzz/fuzz-core.c. */
int cx_feed_handle_body(cx_feed *s, const cx_principal *p, cx_feed_body kind, const char *arg,
                        const char *body, size_t len, json_t **out, long *applied);

