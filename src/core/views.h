/* SPDX-License-Identifier: Apache-2.0 */
/* The review app's read endpoints (GET /v1/search, /v1/items/{id},
 * /v1/review/queue, /v1/artifacts, /v1/audit, /v1/team/activity), as pure
 * functions of the feed, the caller and parsed parameters: each runs one
 * read transaction and sees only the caller's team (an item of another
 * team is CX_ENOTFOUND, as one that does not exist). The JSON shapes are
 * protocol/sync/schemas/{search,item-view,artifacts,audit,activity}.json.
 * Also the per-workspace sync record that the pull endpoint writes. Errors
 * are CX_E… codes; the HTTP layer (server.c) alone maps them to statuses. */
#pragma once

#include "core/feed.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CX_VIEWS_MAX_Q 256     /* bytes of a search query */
#define CX_VIEWS_MAX_PARAM 64  /* bytes of any other parameter */
#define CX_VIEWS_MAX_LIMIT 200 /* results of one page */
#define CX_VIEWS_DEFAULT_LIMIT 50
#define CX_VIEWS_SNIPPET 240   /* bytes of a search result's snippet */
#define CX_VIEWS_MAX_WORKSPACE 64

typedef struct cx_views_search_args {
    const char *q;                       /* NULL or "": filters only, newest first */
    const char *kind, *status, *subcortex; /* NULL: any */
    int limit;                           /* 1..CX_VIEWS_MAX_LIMIT */
} cx_views_search_args;

/* {"results":[{"id","kind","status","subcortex","title","snippet","author",
 * "agent","updated_at"}],"total"}: the team's live items matching the
 * query, threads first (the trust order), then by relevance; the snippet is
 * plain text of at most CX_VIEWS_SNIPPET bytes, cut on UTF-8 boundaries.
 * CX_EINVAL for an unknown kind or status (the detail names it). */
int cx_views_search(cx_feed *s, const cx_principal *p, const cx_views_search_args *a,
                    json_t **out);

/* The search index's catch-up (cx_storage_index): indexes up to `limit`
 * items written since the last call, in one write transaction (limit 0:
 * only counts, in a read one), and sets *pending to what still waits. The
 * push threads call it when they have no push to run, and a search first
 * drains the queue (at most CX_VIEWS_INDEX_DRAIN rows) so that it sees
 * every item committed before it. */
#define CX_VIEWS_INDEX_BATCH 1000
#define CX_VIEWS_INDEX_DRAIN 200000
int cx_views_index(cx_feed *s, int limit, int64_t *pending);

/* {"item","evidence","comments","history"} for the team's live item id
 * (either case). Evidence the team lacks is {"id","missing":true}; an
 * evidence observation is stale when a newer item of the team records one
 * of its files at another blob (stale_paths names them). History is the
 * team's audit entries about the item, oldest first. CX_ENOTFOUND. */
int cx_views_item(cx_feed *s, const cx_principal *p, const char *id, json_t **out);

/* The review queue as cx_feed_queue gives it ({"drafts","total"}), each
 * draft with "evidence_count", only those of `subcortex` when not NULL
 * (total counts those), plus "subcortices": the distinct subcortices of
 * every waiting draft, sorted. limit < 1: the default (100). */
int cx_views_queue(cx_feed *s, const cx_principal *p, const char *subcortex, int limit,
                   json_t **out);

/* {"artifacts":[artifact items, newest first]}. */
int cx_views_artifacts(cx_feed *s, const cx_principal *p, int limit, json_t **out);

/* {"entries":[{"n","at","actor","action","detail"}] newest first, the
 * team's only, with n < before (before <= 0: from the newest),
 * "next_before", "verification":{"ok","entries","bad","checked_at"}}. The
 * chain is verified whole (it is one over every team); the verified prefix
 * is kept in memory (per process, per database) so that a view checks only
 * the entries appended since. */
int cx_views_audit(cx_feed *s, const cx_principal *p, int64_t before, int limit, json_t **out);

/* {"observations_per_day","drafts_waiting","approval_latency","workspaces"}
 * over the last `days` days (1..365) up to now_ms. */
int cx_views_activity(cx_feed *s, const cx_principal *p, int days, int64_t now_ms,
                      json_t **out);

/* The routes of the views, for server.c. */
typedef enum cx_views_route {
    CX_VIEWS_NONE = 0,
    CX_VIEWS_SEARCH,
    CX_VIEWS_ITEM,
    CX_VIEWS_ARTIFACTS,
    CX_VIEWS_AUDIT,
    CX_VIEWS_ACTIVITY,
    CX_VIEWS_QUEUE,
} cx_views_route;

/* The view a GET path names (CX_VIEWS_NONE: none), with its path argument
 * (the item id of /v1/items/{id}) copied into arg[cap]. */
cx_views_route cx_views_match(const char *path, char *arg, size_t cap);

/* Answers view v: reads its query parameters through param(ud, name) (the
 * percent-decoded value, NULL when absent), checks them (CX_EINVAL with a
 * detail that names the parameter: too long, not a number, out of range,
 * an unknown kind or status) and runs the view. */
int cx_views_get(cx_feed *s, const cx_principal *p, cx_views_route v, const char *arg,
                 const char *(*param)(void *ud, const char *name), void *ud, json_t **out);

/* The cursor ("next") of a pull page as cx_feed_pull serialised it; -1
 * when it has none. */
int64_t cx_views_page_next(const char *page, size_t len);

/* Records that the caller's workspace pulled to `cursor` (the sidecar's
 * X-Cortex-Workspace header; a name over CX_VIEWS_MAX_WORKSPACE bytes or
 * outside [A-Za-z0-9._-] is ignored, 0 returned). At most once a minute per
 * (team, key, workspace), by an in-memory throttle: a pull that finds its
 * triple recorded less than a minute ago writes nothing. */
int cx_views_note_pull(cx_feed *s, const cx_principal *p, const char *workspace, int64_t cursor);
