/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace store: one SQLite database (WAL) under a workspace's state
 * directory, with items, their FTS5 index, content-addressed blobs and the
 * outbox that the sync engine drains.
 *
 * Every local change writes its outbox row in the same transaction as the
 * item. Several processes may open one store at once: writers take the lock
 * with BEGIN IMMEDIATE, wait on a busy handler and retry whole transactions,
 * so callers never see SQLITE_BUSY (only CX_EBUSY after about 30 s).
 *
 * Results are returned as jansson objects owned by the caller (`json_t
 * **out`, untouched on failure). Times in results are ISO 8601 UTC strings.
 * A cx_store is used by one thread at a time; open one per thread. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cx_store cx_store;

/* Limits the store enforces on every write path (CX_ELIMIT / CX_EINVAL with a
 * detail message naming the field and the limit). */
#define CX_STORE_MAX_BATCH 500          /* observations per observe call */
#define CX_STORE_MAX_TEXT (256u * 1024) /* bytes of one body */
#define CX_STORE_MAX_TITLE 200          /* bytes of a title / artifact name */
#define CX_STORE_MAX_TAGS 16
#define CX_STORE_MAX_TAG 64             /* bytes of one tag or subcortex */
#define CX_STORE_MAX_FILES 64
#define CX_STORE_MAX_EVIDENCE 100
#define CX_STORE_MAX_BLOB (64u * 1024 * 1024) /* bytes of one artifact version */
#define CX_STORE_DEFAULT_SUBCORTEX "general"

/* A borrowed list of strings. */
typedef struct cx_strv {
    const char *const *v;
    size_t n;
} cx_strv;

/* Who makes a change: the principal (a person or the workspace user) and the
 * agent (MCP clientInfo.name, or "cortex-cli"). Either may be NULL. */
typedef struct cx_actor {
    const char *author;
    const char *agent;
} cx_actor;

/* Input for observe, draft and publish metadata. All strings borrowed. */
typedef struct cx_note {
    const char *title;      /* NULL or "" = none */
    const char *body;       /* required, non-empty, valid UTF-8 */
    const char *subcortex;  /* NULL = CX_STORE_DEFAULT_SUBCORTEX */
    cx_strv tags;           /* stored sorted and de-duplicated */
    cx_strv files;          /* workspace-relative paths */
    cx_strv evidence;       /* draft only: ids that must exist */
    const char *visibility; /* NULL = "shared"; or "private" */
} cx_note;

/* Called between items of a long write; a non-zero return cancels the call,
 * which then rolls back and returns CX_ECANCELED. */
typedef int (*cx_progress_fn)(void *ud, size_t done, size_t total);

/* Opens (creating if needed) the store in `state_dir` (e.g.
 * "<workspace>/.cortex"): the directory, `cortex.db` in WAL mode with every
 * migration applied, and `blobs/`. *out owned by the caller. */
int cx_store_open(cx_store **out, const char *state_dir);
void cx_store_free(cx_store *s);

/* For a long-running process whose other thread calls cx_store_maintain()
 * on a connection of its own: writes on `s` then leave search indexing and
 * WAL checkpoints to that thread (with generous backstops, so the WAL and
 * the index backlog stay bounded if it falls behind). */
int cx_store_defer_maintenance(cx_store *s);

/* Indexes rows that search has not indexed yet, in small transactions, and
 * checkpoints the WAL without blocking anyone. Meant for an idle or
 * background thread; any connection may call it at any time. */
int cx_store_maintain(cx_store *s);

/* Borrowed paths: the state directory and the database file. */
const char *cx_store_dir(const cx_store *s);
const char *cx_store_db_path(const cx_store *s);

/* Records n (1..CX_STORE_MAX_BATCH) observations in one transaction: all or
 * none. An observation whose normalised text (whitespace collapsed, trimmed)
 * already exists in the store is not recorded again; its first id is
 * returned with repeat=true (and its `seen` count grows).
 * *out: {"results":[{"id":…, "repeat":bool}…], "recorded":N, "repeats":N} */
int cx_store_observe(cx_store *s, const cx_actor *who, const cx_note *notes, size_t n,
                     cx_progress_fn progress, void *ud, json_t **out);

/* A draft (status "pending"); title and body required; every evidence id
 * must exist (CX_ENOTFOUND naming the first missing id).
 * *out: {"id":…, "status":"pending"} */
int cx_store_draft(cx_store *s, const cx_actor *who, const cx_note *note, json_t **out);

/* A comment on a thread or draft (CX_ENOTFOUND if target_id is no such item,
 * CX_EINVAL if it is another kind). *out: {"id":…, "target_id":…} */
int cx_store_comment(cx_store *s, const cx_actor *who, const char *target_id, const char *body,
                     json_t **out);

typedef struct cx_publish {
    const char *name;        /* required; one artifact per name */
    const void *data;        /* content, len bytes (may be binary) */
    size_t len;
    const char *source_path; /* workspace-relative path it came from, or NULL */
    const char *title;       /* optional description */
    const char *subcortex;
    cx_strv tags;
} cx_publish;

/* Stores the content as a blob (blobs/<aa>/<sha256>, written atomically) and
 * adds version N+1 of the named artifact (creating the artifact at version
 * 1), status "published". Identical content to the latest version adds
 * nothing and returns that version with unchanged=true.
 * *out: {"artifact_id", "name", "version", "sha256", "size", "status", "unchanged"} */
int cx_store_publish(cx_store *s, const cx_actor *who, const cx_publish *p, json_t **out);

/* One item in full: the envelope {id, kind, status, subcortex, title, body,
 * tags, files, author, agent, created_at, updated_at, visibility, seen,
 * server_seq (only when set), parent_id (comments), evidence (drafts),
 * review (the last decision: {decision, reason, reviewer, at})}, plus
 * "comments" (oldest first) for threads and drafts, and "versions"
 * ({version, sha256, size, status, created_at, source_path}, oldest first)
 * for artifacts. CX_ENOTFOUND when there is no such id. */
int cx_store_get(cx_store *s, const char *id, json_t **out);

/* The content of an artifact version (0 = latest) as a malloc'd buffer. */
int cx_store_artifact_content(cx_store *s, const char *artifact_id, int version, char **data,
                              size_t *len);

typedef struct cx_recent_query {
    const char *since;     /* NULL, an ISO 8601 time, or an item id */
    const char *kind;      /* NULL = any */
    const char *subcortex; /* NULL = any */
    size_t limit;          /* 1..100 */
    size_t max_tokens;     /* answer budget, 4 bytes a token; 0 = 2000 */
} cx_recent_query;

/* Items whose updated_at is after `since` (a time, or the given item's
 * updated_at), newest first, as summaries {id, kind, status, subcortex,
 * title, updated_at, tags, snippet (first ~200 bytes of the body)}.
 * Comments are included. *out: {"items":[…], "count":N, "truncated":bool} */
int cx_store_recent(cx_store *s, const cx_recent_query *q, json_t **out);

/* *out: {"db_path", "db_bytes", "blob_bytes", "items": {"observation":N,
 * "draft":N, "thread":N, "comment":N, "artifact":N, "total":N},
 * "drafts_pending":N, "outbox": {"pending":N, "rejected":N},
 * "schema_version":N, "sqlite_version":"3.x"} */
int cx_store_status(cx_store *s, json_t **out);

/* Drafts awaiting review (status pending or changes_requested), oldest first,
 * as summaries. *out: {"drafts":[…], "count":N} */
int cx_store_review_list(cx_store *s, json_t **out);

/* A local review decision on a draft: "approve" makes it a canon thread
 * (kind "thread", status "canon", same id); "reject" (reason required) and
 * "changes_requested" (reason required) change its status. Recorded in the
 * item, in the reviews history and in the outbox. CX_ENOTFOUND for no such
 * id; CX_ECONFLICT when the item is not a draft awaiting review.
 * *out: the item after the change, as cx_store_get() returns it. */
int cx_store_review(cx_store *s, const cx_actor *who, const char *id, const char *decision,
                    const char *reason, json_t **out);
