/* SPDX-License-Identifier: Apache-2.0 */
/* The hooks' own header, shared by the files of sidecar/hooks/ (session.c,
 * briefing.c, digest.c, text.c): limits, the hook context, text buffers
 * and the helpers more than one of them uses. */
#pragma once

#include "hooks.h"
#include "session.h"
#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DEFAULT_TOKENS 1500
#define MAX_TOKENS 200000            /* a budget beyond this is taken as this */
#define INPUT_MAX (1u << 20)         /* bytes of hook JSON read from stdin */
#define TIME_BUDGET_NS 900000000ull  /* steps start only before this */
#define SESSION_TTL_MS (7ull * 24 * 3600 * 1000)
#define FALLBACK_MS (24ull * 3600 * 1000) /* how far back a stop without a session looks */
#define SLACK_MS 2000                /* overlap between one stop's window and the next */
#define SID_MAX 128                  /* bytes of a session id used as a file name */
#define MAX_SESSION_FILE (256u * 1024)
#define MAX_EARLIER 2000             /* ids remembered from decided digests */
#define PRUNE_MAX_ENTRIES 1000       /* directory entries looked at per prune */
#define LAST_DIGEST ".last-digest.json"

#define RECENT_PAGE 100              /* the store's largest recent page */
#define MAX_DIGEST 500               /* observations in one digest */
#define CANON_PER_SUBCORTEX 20
#define STALE_SCAN 200               /* items with provenance checked for staleness */
#define MAX_OWN_DRAFTS 50
#define MAX_REASONS 5                /* review reasons fetched for the briefing */
#define LIST_BYTES (256u * 1024)     /* summaries asked of recent per page */

#define TITLE_MAX 120                /* bytes of an item's title in a line */
#define SNIPPET_MAX 160
#define PATHS_SHOWN 5                /* changed paths named per stale item */
#define BODY_MAX (64u * 1024)        /* bytes of a digest's body */
#define HOOK_AGENT "cortex-hook"

typedef struct hook {
    const cx_hook_opts *o;
    FILE *out, *err;
    uint64_t deadline;
    bool verbose;
    json_t *input;          /* the hook's JSON object, or NULL */
    const char *session_id; /* borrowed from input, or NULL */
    char sid[SID_MAX + 1];  /* the session's file name stem, "" when none */
    char *author;           /* this workspace's user */
    cx_session *session;    /* the workspace; ws, cfg, store and prov are its parts */
    const cx_workspace *ws;
    const cx_config *cfg;   /* the workspace config, or an empty one (the defaults) */
    cx_store *store;
    cx_prov *prov;
    bool prov_failed;
    char *sessions_dir;
} hook;

/* A string in util's capped buffer (the cap, without the NUL, set by
 * cx_hook_text_init). Adding what does not fit adds nothing and returns
 * false; running out of memory sticks (oom) and fails every later add. */
typedef struct text {
    cx_buf b;
    bool oom;
} text;

/* A list of owned strings. */
typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

/* ---- session.c ---- */

/* One line "cortex hook: …" on err, newlines flattened. */
__attribute__((format(printf, 2, 3)))
void cx_hook_say(hook *h, const char *fmt, ...);
bool cx_hook_late(const hook *h);
/* Finds the workspace: --workspace, the payload's cwd, $CLAUDE_PROJECT_DIR,
 * else the usual discovery. Says what went wrong and returns false. */
bool cx_hook_find_workspace(hook *h);
bool cx_hook_open_store(hook *h);
cx_prov *cx_hook_get_prov(hook *h);
char *cx_hook_session_path(const hook *h, const char *stem);
/* The JSON object in a state file, or NULL (absent, unreadable, malformed:
 * the latter two said). */
json_t *cx_hook_load_state(hook *h, const char *path);
int cx_hook_save_state(hook *h, const char *path, const json_t *o);
uint64_t cx_hook_json_ms(const json_t *o, const char *key);
/* Removes regular files older than SESSION_TTL_MS from sessions/. */
void cx_hook_prune_sessions(hook *h, uint64_t now_ms);
/* session-start: notes when the session began, unless it is already known
 * (a resumed or compacted session keeps its start and its digest). */
void cx_hook_record_session(hook *h, uint64_t now_ms);

/* ---- text.c ---- */

const char *cx_hook_jstr(const json_t *o, const char *key);
bool cx_hook_blank(const char *s);
void cx_hook_text_init(text *t, size_t max);
bool cx_hook_text_add(text *t, const char *s, size_t n);
bool cx_hook_text_put(text *t, const char *s);
/* `s` on one line, for markdown: control characters and whitespace runs
 * become one space, the ends trimmed; in a code span (`code`) backticks
 * become quotes. At most max bytes, cut on a character boundary with "…".
 * Returns a malloc'd string, or NULL when out of memory. */
char *cx_hook_one_line(const char *s, size_t max, bool code);
bool cx_hook_list_take(strlist *l, char *s);
void cx_hook_list_clear(strlist *l);
/* A line assembled from pieces, each already made safe; NULL pieces end it. */
char *cx_hook_concat(const char *first, ...);

/* ---- briefing.c ---- */

bool cx_hook_awaiting_review(const char *status);
int cx_hook_session_start(hook *h);

/* ---- digest.c ---- */

int cx_hook_stop(hook *h);
