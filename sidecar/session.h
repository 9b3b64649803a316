/* SPDX-License-Identifier: Apache-2.0 */
/* One workspace session: the one place where a sidecar program (cortexd,
 * the cortex CLI, its hooks, doctor, the background daemon, the sync and
 * maintenance threads) opens what it needs of a workspace: the workspace
 * itself (workspace.h), its config (config.h), the store, provenance
 * (libgit2), the configured embedder, the actor who records, and the
 * default subcortex (workspace.subcortex).
 *
 * Parts are opened on request (CX_SESSION_* flags) and a session can be
 * extended later with cx_session_add(), so a program keeps its slow parts
 * lazy: cortexd answers `initialize` before anything here runs, and libgit2
 * is loaded only when workspace discovery or provenance first needs it.
 *
 * Hard parts (the workspace, the store) fail the call. Soft parts (config,
 * provenance, the embedder) never do: a failure leaves the part NULL and
 * its reason in cx_session_problem(), and each caller reports it in its own
 * voice (a log line, a hook's stderr line, a doctor check). */
#pragma once

#include "config.h"
#include "embed/embed.h"
#include "provenance.h"
#include "store/store.h"
#include "workspace.h"

#include <stdbool.h>

typedef struct cx_session cx_session;

enum {
    CX_SESSION_CREATE = 1u << 0,   /* create .cortex/ and the git exclude entry */
    CX_SESSION_CONFIG = 1u << 1,   /* read .cortex/config (soft) */
    CX_SESSION_STORE = 1u << 2,    /* open the store, creating the database */
    CX_SESSION_EXISTING = 1u << 3, /* with STORE: CX_ENOTFOUND when there is no database
                                    * yet, and nothing is created */
    CX_SESSION_DEFER_MAINT = 1u << 4, /* with STORE: another connection maintains the store */
    CX_SESSION_PROV = 1u << 5,        /* provenance (soft) */
    CX_SESSION_EMBED_QUERY = 1u << 6, /* the configured embedder for the query path (soft;
                                       * implies CONFIG): short timeout, no retries, so a
                                       * search falls back to keywords instead of waiting */
    CX_SESSION_EMBED_BACKGROUND = 1u << 7, /* the configured embedder with the usual retries
                                            * (soft; implies CONFIG), for background work */
};

/* Opens a session on the workspace found from `start_dir` (NULL = the usual
 * search, see workspace.h) with the parts `flags` names. *out owned by the
 * caller (cx_session_free), untouched on failure. Errors: those of
 * cx_workspace_find (CX_ENOTFOUND when an explicit directory does not
 * exist) and, with CX_SESSION_STORE, of cx_store_open (CX_ENOTFOUND with
 * CX_SESSION_EXISTING and no database). Detail in cx_error_last(). */
int cx_session_open(cx_session **out, const char *start_dir, unsigned flags);

/* The same on a workspace already resolved (copied; the caller keeps ws):
 * a second connection of the same workspace, e.g. a background thread's. */
int cx_session_open_ws(cx_session **out, const cx_workspace *ws, unsigned flags);

/* Opens the parts of `flags` not open yet (parts already open, or soft parts
 * that already failed, are left as they are). Errors as cx_session_open;
 * on failure the parts opened before stay usable. */
int cx_session_add(cx_session *s, unsigned flags);

void cx_session_free(cx_session *s);

/* Borrowed parts; each is NULL when not requested or (soft parts) not
 * available. */
const cx_workspace *cx_session_workspace(const cx_session *s);
cx_store *cx_session_store(const cx_session *s);
cx_prov *cx_session_prov(const cx_session *s);
cx_embedder *cx_session_embedder(const cx_session *s);
const cx_config *cx_session_config(const cx_session *s);

/* Why soft part `part` (one CX_SESSION_* flag) is missing, or NULL when it
 * is open or was never requested. Borrowed. */
const char *cx_session_problem(const cx_session *s, unsigned part);

/* 1 when the workspace has a store database, 0 when not, a negative CX_E
 * code when that cannot be told. */
int cx_session_has_store(const cx_session *s);

/* The subcortex for notes that name none: workspace.subcortex, or NULL
 * (the store's default) when unset or the config was not read. */
const char *cx_session_subcortex(const cx_session *s);

/* Who records: the author is $CORTEX_AUTHOR, else the user's login name,
 * else "uid-N" (read once, on first call: getpwuid reads files, so never on
 * cortexd's initialize path); `agent` is the caller's (borrowed). */
cx_actor cx_session_actor(cx_session *s, const char *agent);

/* The author rule above, for programs that record without a session
 * (malloc'd, NULL when out of memory). */
char *cx_session_author_name(void);
