/* SPDX-License-Identifier: Apache-2.0 */
/* The cortex command line's own header, shared by the files of sidecar/cli/
 * (one file per command group, as libgit2's src/cli and git's builtin/):
 * exit statuses, the option ids, the parsed arguments, the command context
 * and dispatch entry, and the helpers more than one command group uses. */
#pragma once

#include "session.h"
#include "store/store.h"
#include "sync/client.h"
#include "sync/upstream.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses, documented in --help and cortex(1). */
enum {
    RC_OK = 0,
    RC_NONE = 1,  /* nothing found, or the request was refused (by the store, or
                   * by the core: a 4xx answer) */
    RC_USAGE = 2, /* bad command line or argument values */
    RC_STORE = 3, /* workspace or store: missing, cannot open, I/O, busy */
    RC_UPSTREAM = 4, /* the upstream core: not configured, unreachable, failing
                      * (5xx, 408, 429), broken answers */
    RC_SIGNAL = 128, /* + the signal's number: a long command stopped by Ctrl-C
                      * (130) or SIGTERM (143), as a shell reports a killed one */
};

/* Search answers for people are not squeezed into an agent's context
 * budget: room for CX_SEARCH_MAX_LIMIT results with generous snippets. */
#define CLI_SEARCH_TOKENS 50000

#define CLI_AGENT "cortex-cli"

typedef enum {
    O_WORKSPACE,
    O_JSON,
    O_HELP,
    O_VERSION,
    O_KIND,
    O_STATUS,
    O_SUBCORTEX,
    O_TAG,
    O_LIMIT,
    O_CONTENT,
    O_TITLE,
    O_FILE,
    O_EVIDENCE,
    O_PRIVATE,
    O_REASON,
    O_NOTE,
    O_CA_FILE,
    O_MODE,
    O_AGENT,
    O_UPSTREAM,
    O_MAX_TOKENS,
    O_NO_DAEMON,
    O_REBIND,
    O_TRUST,
    O_COUNT,
} opt_id;

#define BIT(o) (1u << (o))
#define GLOBAL_OPTS (BIT(O_WORKSPACE) | BIT(O_JSON) | BIT(O_HELP) | BIT(O_VERSION))

typedef struct strlist {
    const char **v;
    size_t n;
} strlist;

typedef struct args {
    const char *val[O_COUNT];    /* last value given to an option with an argument */
    bool seen[O_COUNT];
    strlist tags, files, evidence, agents; /* repeatable options, in order */
    strlist pos;                   /* operands after the command */
    const char *command;
} args;

typedef struct ctx ctx;

typedef struct command {
    const char *name;
    uint32_t opts; /* options it accepts besides the global ones */
    int (*run)(ctx *c);
    const char *help;
} command;

struct ctx {
    const args *a;
    const command *cmd;
    bool json;
    cx_session *session; /* the workspace, opened on first need */
    const cx_workspace *ws; /* the session's parts, borrowed once open */
    cx_store *store;
    cx_prov *prov; /* opened with the store; NULL when unavailable */
    char *author;
    cx_actor who;
    uint64_t now;
};

/* ---- cli.c ---- */

int cx_cli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cx_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The engine's detail for a failure just returned (the caller cleared the
 * detail before the call, so a message left from earlier cannot leak in). */
const char *cx_cli_engine_msg(int r);
int cx_cli_rc_for(int r);
int cx_cli_oom(void);

/* ---- context.c ---- */

const char *cx_cli_jstr(const json_t *o, const char *key);
long long cx_cli_jint(const json_t *o, const char *key, long long def);
bool cx_cli_jtrue(const json_t *o, const char *key);
cx_strv cx_cli_strv(const strlist *l);
int cx_cli_print_json(const json_t *j);
/* Joins operands with single spaces into a malloc'd string. */
char *cx_cli_join_words(const strlist *l);
bool cx_cli_blank(const char *s);
/* Reads all of stdin, at most CX_STORE_MAX_TEXT bytes, into *out. */
int cx_cli_read_stdin(const char *what, const char *cmd, char **out);
/* The text of observe/draft: the operands joined, or stdin for "-". */
int cx_cli_operand_text(ctx *c, const char *what, char **out);
int cx_cli_parse_limit(const ctx *c, size_t *out);
bool cx_cli_known_kind(const char *k);
int cx_cli_find_workspace(ctx *c, bool create);
/* 1 when the workspace has a store, 0 when not, or a negative RC_ on error. */
int cx_cli_has_store(ctx *c);
/* Opens the workspace's store (and provenance: without it nothing reads
 * as stale). `create` is for commands that record something: they create
 * the state directory and database when missing. Without it, a workspace
 * that has no store yet is an error (exit 3) and nothing is created. */
int cx_cli_open_store(ctx *c, bool create);
/* The subcortex for a new note: --subcortex, else the workspace's
 * (workspace.subcortex), else the store's default. */
const char *cx_cli_note_subcortex(ctx *c);
/* Where a note is made: remote, branch, HEAD and its files' blob ids (NULL
 * outside git or when provenance is unavailable; a failure costs the note
 * its provenance, never its recording). */
json_t *cx_cli_capture_provenance(ctx *c, const cx_strv *files);
/* Converts every --file to a workspace-relative path. `rel` gets malloc'd
 * strings the caller frees with free_strlist. */
int cx_cli_workspace_paths(ctx *c, strlist *rel);
void cx_cli_free_strlist(strlist *l);

/* ---- render.c ---- */

/* " · stale" after the kind line of an item marked stale. */
void cx_cli_put_stale_mark(const json_t *it);
/* "changed since recorded: PATH, ..." (one line, after `indent` spaces) for
 * an item marked stale; nothing otherwise. */
void cx_cli_put_changed(const json_t *it, int indent);
/* "kind · status · subcortex" with the kind coloured. */
void cx_cli_put_kind_line(const json_t *it);
void cx_cli_render_item(const ctx *c, const json_t *it);

/* ---- cmd-search.c ---- */

extern const char cx_cli_help_search[];
extern const char cx_cli_help_show[];
int cx_cli_cmd_search(ctx *c);
int cx_cli_cmd_show(ctx *c);

/* ---- cmd-note.c ---- */

extern const char cx_cli_help_observe[];
extern const char cx_cli_help_draft[];
int cx_cli_cmd_observe(ctx *c);
int cx_cli_cmd_draft(ctx *c);

/* ---- cmd-review.c ---- */

extern const char cx_cli_help_review[];
int cx_cli_cmd_review(ctx *c);
extern const char cx_cli_help_artifact[];
int cx_cli_cmd_artifact(ctx *c);

/* ---- cmd-sync.c ---- */

extern const char cx_cli_help_remote[];
extern const char cx_cli_help_login[];
extern const char cx_cli_help_sync[];
/* 1 with *u when the workspace has an upstream, 0 when not, or -RC_. */
int cx_cli_load_upstream(ctx *c, cx_upstream **u);
/* A client for the upstream with the stored key for `use` of the team the
 * workspace is bound to (cx_upstream_key_find); *cred gets that key and
 * what is known of it (the caller clears it). An RC_. */
int cx_cli_make_client(ctx *c, const cx_upstream *u, cx_upstream_use use, cx_client **out,
                       cx_upstream_cred *cred);
/* The key's team as the core names it, checked against the workspace's
 * binding (cx_engine_team_check; with `bind`, an unbound workspace is bound
 * to it, else only compared). Fills *who; `cred` is upgraded in the
 * credentials file when its team was not known. An RC_. */
int cx_cli_check_team(ctx *c, const cx_upstream *u, cx_client *cl, cx_upstream_cred *cred,
                      bool bind, cx_upstream_who *who);
/* The client for a reviewer's command (review, artifact accept) when the
 * workspace has an upstream (NULL in *out when it has none): with the
 * reviewer (or admin) key of the workspace's team, checked with the core;
 * *role the key's role ("" when none is known). An RC_. */
int cx_cli_reviewer_client(ctx *c, cx_client **out, char *role, size_t cap);
/* After the core refused a reviewer's command with rc: what to do when the
 * key used is an agent's (the workspace holds no reviewer key of its team). */
void cx_cli_agent_key_hint(int rc, const char *role);
/* The exit status for a core's answer with HTTP `status` (0: none): 1 for
 * a refusal (4xx but 408 and 429), else 4. */
int cx_cli_rc_for_status(long status);
/* The exit status and message for an unexpected answer of the core. */
int cx_cli_answer_fail(const char *what, const cx_client_answer *a);
int cx_cli_cmd_remote(ctx *c);
int cx_cli_cmd_login(ctx *c);
int cx_cli_cmd_sync(ctx *c);
/* Whether the workspace has an upstream configured. */
bool cx_cli_upstream_configured(ctx *c);
/* The "sync" member of status: upstream, key, and the store's sync state. */
json_t *cx_cli_sync_status(ctx *c, bool *configured);
void cx_cli_put_sync_status(ctx *c, const json_t *sy, bool configured);
/* Writes the upstream to the workspace config and to the sync engine's
 * .cortex/upstream (the config is the one people edit; the engine reads the
 * other). `ca` may be NULL. */
int cx_cli_set_upstream(ctx *c, const char *url, const char *ca);

/* ---- cmd-start.c ---- */

extern const char cx_cli_help_status[];
extern const char cx_cli_help_start[];
extern const char cx_cli_help_stop[];
int cx_cli_cmd_status(ctx *c);
int cx_cli_cmd_start(ctx *c);
int cx_cli_cmd_stop(ctx *c);

/* ---- cmd-maint.c ---- */

extern const char cx_cli_help_reindex[];
extern const char cx_cli_help_doctor[];
extern const char cx_cli_help_hook[];
extern const char cx_cli_help_scan[];
int cx_cli_cmd_reindex(ctx *c);
int cx_cli_cmd_doctor(ctx *c);
int cx_cli_cmd_hook(ctx *c);
int cx_cli_cmd_scan(ctx *c);
