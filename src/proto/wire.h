/* SPDX-License-Identifier: Apache-2.0 */
/* The one model of the wire and of the data model: item kinds, statuses
 * and which kind may hold which, the transitions a status may take and who
 * may make them, what "awaits review" means, the trust order that ranking
 * uses, the limits of the item envelope, id normalisation, the op names,
 * routes and batch limits of the sync protocol (protocol/sync/).
 *
 * The store, search, the hooks, the sync client and cortex-core all use
 * these names and numbers and declare none of their own. tests/unit/
 * test-proto.c holds every constant here to the JSON schemas in protocol/sync/schemas,
 * so that code and contract cannot drift apart. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- kinds and statuses ---- */

typedef enum cx_kind {
    CX_KIND_INVALID = -1,
    CX_KIND_OBSERVATION = 0,
    CX_KIND_DRAFT,
    CX_KIND_THREAD,   /* canon knowledge: an approved draft */
    CX_KIND_COMMENT,
    CX_KIND_ARTIFACT,
    CX_KIND_SUBCORTEX,
    CX_KIND_COUNT
} cx_kind;

typedef enum cx_status {
    CX_STATUS_INVALID = -1,
    CX_STATUS_RECORDED = 0,     /* observations, comments, subcortexes */
    CX_STATUS_PENDING,          /* drafts awaiting review */
    CX_STATUS_APPROVED,
    CX_STATUS_REJECTED,
    CX_STATUS_CHANGES_REQUESTED,
    CX_STATUS_CANON,            /* threads */
    CX_STATUS_PUBLISHED,        /* artifacts and their versions */
    CX_STATUS_ACCEPTED,
    CX_STATUS_COUNT
} cx_status;

/* The wire name of a kind or status ("observation", "changes_requested");
 * NULL for an invalid value. */
const char *cx_kind_name(cx_kind k);
const char *cx_status_name(cx_status s);

/* The indefinite article for a word of the wire in a message ("an" before
 * a vowel: "an observation", "an agent key"; else "a"; "a" for NULL). */
const char *cx_wire_article(const char *word);

/* The kind or status a wire name stands for, CX_KIND_INVALID /
 * CX_STATUS_INVALID for NULL or an unknown name (names are exact: no case
 * folding). */
cx_kind cx_kind_parse(const char *name);
cx_status cx_status_parse(const char *name);

/* True when an item of kind k may have status s: observations and comments
 * are recorded; drafts pending, approved, rejected or changes_requested;
 * threads canon; artifacts published or accepted; subcortexes recorded. */
bool cx_status_allowed(cx_kind k, cx_status s);

/* The status an agent's new item of kind k is born with (recorded,
 * pending, published...). */
cx_status cx_status_initial(cx_kind k);

/* A draft that a reviewer may still decide on: pending or
 * changes_requested. The one definition of "awaits review". */
bool cx_awaits_review(cx_kind k, cx_status s);

/* Who changes a status. */
typedef enum cx_actor_role {
    CX_ROLE_AGENT = 0,  /* an agent or a person's own writes */
    CX_ROLE_REVIEWER,   /* a reviewer's (or admin's) decision */
} cx_actor_role;

/* True when `role` may take an item from (from_kind, from) to (to_kind,
 * to); from_kind == CX_KIND_INVALID means the item is new. Agents create
 * items in their kind's initial status and may revise a draft that awaits
 * review (it becomes pending again); only reviewers approve (a draft
 * becomes a canon thread), reject, request changes, or accept an artifact.
 * Anything else, such as an agent writing `canon` or `accepted`, is false.
 * Keeping kind and status is allowed (a text edit), except on a draft
 * already decided; so a review decision, which must change a draft that
 * cx_awaits_review(), is checked against that too. */
bool cx_transition_allowed(cx_actor_role role, cx_kind from_kind, cx_status from, cx_kind to_kind,
                           cx_status to);

/* ---- review decisions ---- */

typedef enum cx_decision {
    CX_DECISION_INVALID = -1,
    CX_DECISION_APPROVE = 0,
    CX_DECISION_REJECT,
    CX_DECISION_CHANGES_REQUESTED,
    CX_DECISION_COUNT
} cx_decision;

const char *cx_decision_name(cx_decision d);
cx_decision cx_decision_parse(const char *name);
/* The status a draft takes after decision d (approve: canon, as a thread). */
cx_status cx_decision_status(cx_decision d);
/* reject and changes_requested need a note. */
bool cx_decision_needs_note(cx_decision d);

/* ---- trust ---- */

/* The trust order used in ranking, most trusted first: canon thread >
 * accepted artifact > published artifact > draft that is not rejected >
 * rejected draft, observation, comment, anything else (those three rank
 * alike). */
typedef enum cx_trust {
    CX_TRUST_CANON = 0,
    CX_TRUST_ACCEPTED,
    CX_TRUST_PUBLISHED,
    CX_TRUST_DRAFT,
    CX_TRUST_REJECTED,
    CX_TRUST_OBSERVATION,
    CX_TRUST_COMMENT,
    CX_TRUST_OTHER,
    CX_TRUST_COUNT
} cx_trust;

cx_trust cx_trust_of(cx_kind k, cx_status s);
/* "canon", "accepted", ... as ranking explains it. */
const char *cx_trust_name(cx_trust t);

/* ---- the item envelope (protocol/sync/schemas/item.json) ----
 * Lengths are bytes of UTF-8; counts are array items. The store applies
 * the same limits to what agents write, so that everything a sidecar may
 * store can travel, and everything that travels fits a sidecar. */

#define CX_WIRE_ULID_LEN 26
#define CX_WIRE_MAX_ID 64                  /* bytes of any id a caller gives */
#define CX_WIRE_MAX_TITLE 200              /* title, artifact name */
#define CX_WIRE_MAX_BODY (256u * 1024)     /* body */
#define CX_WIRE_MAX_SUBCORTEX 64
#define CX_WIRE_MAX_TAGS 16
#define CX_WIRE_MAX_TAG 64
#define CX_WIRE_MAX_PRINCIPAL 256          /* author, agent, reviewer */
#define CX_WIRE_MAX_FILES 64
#define CX_WIRE_MAX_PATH 1024              /* one entry of files */
#define CX_WIRE_MAX_EVIDENCE 100
#define CX_WIRE_MAX_BLOBS 256              /* blob references of one item */
#define CX_WIRE_MAX_VERSIONS 10000         /* versions of one artifact */
#define CX_WIRE_MAX_PROVENANCE (64u * 1024) /* provenance, as compact JSON */
#define CX_WIRE_MAX_NOTE 8192              /* a review note or reason */
#define CX_WIRE_MAX_SOURCE_PATH 4096       /* an artifact version's source_path */
#define CX_WIRE_MAX_STATUS 64              /* any status string we keep */
#define CX_WIRE_MIN_TIMESTAMP 10           /* "2026-01-01" */
#define CX_WIRE_MAX_TIMESTAMP 40
#define CX_WIRE_MAX_BLOB (64u * 1024 * 1024) /* one artifact version's content */
#define CX_WIRE_DEFAULT_SUBCORTEX "general"

/* Checks an item envelope as it arrives over the wire (a push at the core,
 * a pull page at a sidecar) against item.json: a ULID id, a known kind, a
 * status allowed for it, shared visibility, every string field UTF-8 within
 * its limit, tags/files/evidence/blobs arrays of strings within their
 * counts, timestamps that parse, a provenance object within its size.
 * Returns 0, or CX_EINVAL (a wrong type or value) / CX_ELIMIT (a field
 * past its limit) with a detail that begins with the field's name, e.g.
 * "item.title: at most 200 bytes (got 1024)". Members not named in
 * item.json are not checked. */
int cx_wire_item_check(const json_t *item);

/* ---- ids ---- */

/* Normalises an item id into out: a ULID (Crockford base32, which readers
 * may type in lower case) is upper-cased, as every program stores it;
 * anything else is copied as it is. CX_EINVAL for NULL, empty or longer
 * than CX_WIRE_MAX_ID; `field` names it in the message. */
int cx_wire_id_norm(const char *field, const char *id, char out[CX_WIRE_MAX_ID + 1]);

/* ---- sync ops, routes and batches (protocol/sync/openapi.yaml) ---- */

#define CX_OP_ITEM_PUT "item.put"
#define CX_OP_ARTIFACT_VERSION "artifact.version"
#define CX_OP_REVIEW_DECISION "review.decision"

/* True for one of the three op names above. */
bool cx_wire_op_known(const char *op);

#define CX_WIRE_MAX_OPS 500                      /* ops in one push */
#define CX_WIRE_MAX_PUSH_BYTES (4u * 1024 * 1024) /* bytes of one push body */
#define CX_WIRE_MAX_OP_ID 128
#define CX_WIRE_MAX_PULL_LIMIT 1000              /* changes a pull page may ask for */
#define CX_WIRE_DEFAULT_PULL_LIMIT 500
/* The byte budget of one pull page (its serialised JSON): a page stops
 * before the change that would take it past this, so that a feed of large
 * items is served in pages a client can hold. The first change of a page
 * always travels, alone if it must: a page is at most
 * max(CX_WIRE_MAX_PAGE_BYTES, one change + CX_WIRE_PAGE_OVERHEAD). Stated
 * in protocol/sync/openapi.yaml and pull-response.json (test-proto). */
#define CX_WIRE_MAX_PAGE_BYTES (8u * 1024 * 1024)
#define CX_WIRE_PAGE_OVERHEAD 128 /* {"changes":[ … ],"next":N,"more":false} and one change's wrapper */
/* The largest answer a sidecar reads (its client's cap): the core never
 * builds a page past it, so even an item alone on its page fits. */
#define CX_WIRE_MAX_ANSWER_BYTES (64u * 1024 * 1024)
#define CX_WIRE_MAX_QUEUE_LIMIT 500              /* drafts in one review queue page */
#define CX_WIRE_MAX_MISSING 1000                 /* hashes in one blobs/missing call */

#define CX_ROUTE_HEALTHZ "/v1/healthz"
#define CX_ROUTE_INFO "/v1/info"
#define CX_ROUTE_PUSH "/v1/sync/push"
#define CX_ROUTE_PULL "/v1/sync/pull"
#define CX_ROUTE_BLOBS_MISSING "/v1/blobs/missing"
#define CX_ROUTE_BLOBS "/v1/blobs/"          /* + sha256 */
#define CX_ROUTE_REVIEW_QUEUE "/v1/review/queue"
#define CX_ROUTE_DRAFTS "/v1/drafts/"        /* + id + CX_ROUTE_DECISION */
#define CX_ROUTE_DECISION "/decision"
#define CX_ROUTE_ARTIFACTS "/v1/artifacts/"

/* True when s is 64 lower-case hex digits (a blob's sha-256). */
bool cx_wire_sha_valid(const char *s);
