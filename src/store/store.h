/* SPDX-License-Identifier: Apache-2.0 */
/* The workspace store: one SQLite database (WAL) under a workspace's state
 * directory, with items, their FTS5 index, their vectors (per embedding
 * model), content-addressed blobs and the outbox that the sync engine
 * drains.
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

#include "embed/embed.h"
#include "proto/wire.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cx_store cx_store;

/* Limits the store enforces on every write path (CX_ELIMIT / CX_EINVAL with a
 * detail message naming the field and the limit): the wire's (proto/wire.h),
 * so that everything a sidecar stores can travel and everything that
 * travels fits a sidecar. */
#define CX_STORE_MAX_BATCH 500                    /* observations per observe call */
#define CX_STORE_MAX_TEXT CX_WIRE_MAX_BODY        /* bytes of one body */
#define CX_STORE_MAX_TITLE CX_WIRE_MAX_TITLE      /* bytes of a title / artifact name */
#define CX_STORE_MAX_TAGS CX_WIRE_MAX_TAGS
#define CX_STORE_MAX_TAG CX_WIRE_MAX_TAG          /* bytes of one tag or subcortex */
#define CX_STORE_MAX_FILES CX_WIRE_MAX_FILES
#define CX_STORE_MAX_EVIDENCE CX_WIRE_MAX_EVIDENCE
#define CX_STORE_MAX_BLOB CX_WIRE_MAX_BLOB        /* bytes of one artifact version */
#define CX_STORE_DEFAULT_SUBCORTEX CX_WIRE_DEFAULT_SUBCORTEX
#define CX_STORE_MAX_PROVENANCE CX_WIRE_MAX_PROVENANCE /* bytes of one provenance, as JSON */

/* Observations whose built-in vectors have at least this cosine similarity
 * (and the same fold key, see cx_store_observe) are folded into one. */
#define CX_STORE_FOLD_SIMILARITY 0.92

/* Token budgets. Answers are measured in bytes of their serialised JSON,
 * CX_STORE_TOKEN_BYTES a token (a rough rule that needs no tokenizer); a
 * budget of 0 tokens means CX_STORE_DEFAULT_MAX_TOKENS. One definition for
 * the store, search and the sidecar's tools, resources and hooks. */
#define CX_STORE_TOKEN_BYTES 4
#define CX_STORE_DEFAULT_MAX_TOKENS 2000

/* The byte budget of an answer of max_tokens tokens (0 = the default),
 * saturating at SIZE_MAX / 8 so that sums against it cannot overflow. */
size_t cx_store_budget_bytes(size_t max_tokens);

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
    const json_t *provenance; /* NULL, or an object (repository, commit, files and
                               * their blob ids...): stored as JSON, returned as
                               * "provenance" by get, search and recent */
} cx_note;

/* Decides whether an item is stale: given the provenance it was recorded
 * with, returns 1 when the files it names differ now (then *changed, owned
 * by the caller, may hold an array of the changed paths), 0 when not, or a
 * negative CX_E... code (then the item counts as fresh). Called only for
 * items that have a provenance. */
typedef int (*cx_stale_fn)(void *ud, const json_t *provenance, json_t **changed);

/* Called between items of a long write; a non-zero return cancels the call,
 * which then rolls back and returns CX_ECANCELED. */
typedef int (*cx_progress_fn)(void *ud, size_t done, size_t total);

/* Opens (creating if needed) the store in `state_dir` (e.g.
 * "<workspace>/.cortex"): the directory, `cortex.db` in WAL mode with every
 * migration applied, and `blobs/`. *out owned by the caller. */
int cx_store_open(cx_store **out, const char *state_dir);
void cx_store_free(cx_store *s);

/* Registers what the store's schema needs on any SQLite connection to its
 * database: the "cortex" FTS5 tokenizer and the SQL function cx_fold_key.
 * The store does it on its own connections; other tools that read or check
 * the search index (the sqlite3 shell, integrity checks) need it too, for
 * example from a loadable extension whose init calls this. Returns a
 * SQLite result code. */
struct sqlite3;
int cx_store_register_sqlite(struct sqlite3 *db);

/* ---- embeddings ----
 * Every write embeds the item's title and body with the built-in embedder
 * (cx_embed_builtin_new, microseconds) inside its transaction: those
 * vectors serve semantic search by default and near-duplicate folding
 * always. Another model (an http embedder) is set per connection; its
 * vectors are made in the background by cx_store_embed_pending(). */

/* Selects the model for semantic search on this connection (borrowed; must
 * outlive the store or be replaced; NULL = the built-in one only). Records
 * the model id in the store: when it is new, every item becomes pending for
 * it (nothing is embedded here; see cx_store_embed_pending). Until an item
 * has a vector of the model, search uses its built-in vector. A short write;
 * call it off the initialize path. */
int cx_store_set_embedder(cx_store *s, cx_embedder *e);

/* Embeds up to `max` (0 = no bound) pending items in batches of at most
 * CX_EMBED_MAX_BATCH, each batch committed on its own: first items that
 * lack a built-in vector (stores from before vectors, text changed by
 * sync), then items that lack a vector of the model set with
 * cx_store_set_embedder(). Texts are read, then embedded with no lock held,
 * then written; an item changed meanwhile stays pending. *done (may be
 * NULL) counts the items embedded. Errors of the embedder are returned
 * as they are (CX_EBUSY while its circuit breaker is open, CX_EIO while the
 * endpoint is down): call again later. For cortexd's background thread, on
 * its own connection. */
int cx_store_embed_pending(cx_store *s, size_t max, size_t *done);

/* Re-embeds every item with `e` (NULL = the built-in embedder) in the
 * foreground, batch by batch, replacing vectors of that model.
 * progress(ud, done, total) is called after each committed batch; a
 * non-zero return stops with CX_ECANCELED (batches already committed stay;
 * the rest keep their old vectors or stay pending). Errors of the embedder
 * stop it likewise. For `cortex reindex`. */
int cx_store_reindex(cx_store *s, cx_embedder *e, cx_progress_fn progress, void *ud);

/* For a long-running process whose other thread calls cx_store_maintain()
 * on a connection of its own: writes on `s` then leave search indexing,
 * WAL checkpoints and truncating the WAL file to that thread (with
 * generous backstops, so the WAL and the index backlog stay bounded if it
 * falls behind). */
int cx_store_defer_maintenance(cx_store *s);

/* Indexes rows that search has not indexed yet, in small transactions, and
 * checkpoints the WAL without blocking anyone. Meant for an idle or
 * background thread; any connection may call it at any time. It yields to
 * the other connections of this process to the same store: it indexes in
 * their pauses (2 ms without a write) and ends a chunk early when one of
 * them waits to write; while they write without pausing it only
 * checkpoints, for up to about 200 ms, and returns (the rows stay for the
 * next call, or for a search, which indexes what is left first). */
int cx_store_maintain(cx_store *s);

/* Whether the last cx_store_maintain on s found no pause in this process's
 * writes (they kept coming for its whole run): call it again soon rather
 * than after a long rest, or the WAL grows past what the checkpoints of a
 * pause can copy and a writer's own backstop checkpoint copies it inside
 * an agent's call (70-130 ms measured at 4,000 observes/s). */
bool cx_store_maintain_busy(const cx_store *s);

/* Borrowed paths: the state directory and the database file. */
const char *cx_store_dir(const cx_store *s);
const char *cx_store_db_path(const cx_store *s);

/* The version of the SQLite library the store runs on ("3.45.1"), for
 * status reports: a static string, never NULL ("(not loaded)" when the
 * library cannot be loaded, see store/sqlite.h). Lets programs say it
 * without including SQLite, whose use is the store's. */
const char *cx_store_sqlite_version(void);

/* Records n (1..CX_STORE_MAX_BATCH) observations in one transaction: all or
 * none. An observation whose normalised text (whitespace collapsed, trimmed)
 * already exists in the store is not recorded again; its first id is
 * returned with repeat=true (and its `seen` count grows).
 * A near-duplicate is folded likewise: when one of the newest
 * CX_STORE_FOLD_CANDIDATES observations with the same visibility,
 * subcortex, set of files, provenance files and the same numbers,
 * identifiers and paths in its text (in the same order) has a built-in
 * vector with cosine similarity >= CX_STORE_FOLD_SIMILARITY, that one's
 * `seen` grows and its updated_at becomes now (its search index entry is
 * untouched); nothing new is recorded.
 * *out: {"results":[{"id":…, "repeat":bool} or {"id":…, "repeat":true,
 * "folded":true, "similarity":x}…], "recorded":N, "repeats":N} (repeats
 * counts folds too) */
int cx_store_observe(cx_store *s, const cx_actor *who, const cx_note *notes, size_t n,
                     cx_progress_fn progress, void *ud, json_t **out);

/* A draft (status "pending"); title and body required; every evidence id
 * must exist (CX_ENOTFOUND naming the first missing id).
 * *out: {"id":…, "status":"pending"} */
int cx_store_draft(cx_store *s, const cx_actor *who, const cx_note *note, json_t **out);

/* Revises a draft that still awaits review (status pending or
 * changes_requested; it becomes pending again): its title, body, tags,
 * files, evidence and provenance become the note's; subcortex and
 * visibility stay. Redacted like every write, and queued for sync with the
 * change, in one transaction. CX_ENOTFOUND for no such id; CX_ECONFLICT
 * when the item is not a draft awaiting review.
 * *out: {"id":…, "status":"pending", "revised":true} */
int cx_store_draft_revise(cx_store *s, const cx_actor *who, const char *id, const cx_note *note,
                          json_t **out);

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
 * ({version, sha256, size, status, created_at, source_path, accepted_by and
 * accepted_at when accepted, content: false while a pulled version's
 * content has not been fetched}, oldest first)
 * for artifacts. CX_ENOTFOUND when there is no such id. */
int cx_store_get(cx_store *s, const char *id, json_t **out);

/* cx_store_get (whose envelope has "provenance" when the item has one),
 * plus, when `stale` is given, "stale": bool and, when stale, "changed":
 * [paths]. The callback runs after the read, with no transaction open. */
int cx_store_get_ex(cx_store *s, const char *id, cx_stale_fn stale, void *ud, json_t **out);

/* A reviewer's acceptance of an artifact version in this store (a
 * workspace without an upstream: the person there is its reviewer), by
 * who->author. The artifact's status becomes its latest version's, as at
 * a core. Accepting an accepted version changes nothing. It is not
 * pushed: only a reviewer's key accepts at a core, and what a pull brings
 * from a core replaces it. CX_ENOTFOUND when there is no such artifact or
 * version. *out: the artifact as cx_store_get gives it. */
int cx_store_artifact_accept(cx_store *s, const cx_actor *who, const char *artifact_id,
                             int64_t version, json_t **out);

/* The content of an artifact version (0 = latest) as a malloc'd buffer.
 * CX_ENOTFOUND (with why) when the version's content is not on this
 * machine: not fetched from the core yet, or its fetch failed. */
int cx_store_artifact_content(cx_store *s, const char *artifact_id, int version, char **data,
                              size_t *len);

typedef struct cx_recent_query {
    const char *since;     /* NULL, an ISO 8601 time, or an item id */
    const char *kind;      /* NULL = any */
    const char *subcortex; /* NULL = any */
    size_t limit;          /* 1..100 */
    size_t max_tokens;     /* answer budget in tokens, see cx_store_budget_bytes */
    cx_stale_fn stale;     /* NULL = no staleness in the answer */
    void *stale_ud;
} cx_recent_query;

/* Items whose updated_at is after `since` (a time, or the given item's
 * updated_at), newest first, as summaries {id, kind, status, subcortex,
 * title, updated_at, tags, snippet (first ~200 bytes of the body),
 * provenance (when set)}, plus "stale": bool and "changed" (when stale)
 * when q->stale is given. Comments are included.
 * *out: {"items":[…], "count":N, "truncated":bool} */
int cx_store_recent(cx_store *s, const cx_recent_query *q, json_t **out);

/* *out: {"db_path", "db_bytes", "blob_bytes", "items": {"observation":N,
 * "draft":N, "thread":N, "comment":N, "artifact":N, "total":N},
 * "drafts_pending":N, "outbox": {"pending":N, "rejected":N},
 * "embeddings": {"model": the search model's id, "models": [{"model",
 * "dim", "vectors":N, "pending":N}…]}, "schema_version":N,
 * "sqlite_version":"3.x"} */
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
