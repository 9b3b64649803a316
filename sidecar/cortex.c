/* SPDX-License-Identifier: Apache-2.0 */
/* cortex: the command line for people. Parses the command line, finds the
 * workspace, opens its store and runs one command over the same engine as
 * cortexd: search, show, observe, draft, review, status, help.
 *
 * Human-readable output goes to stdout (rendered by cli-output.c); with
 * --json, stdout gets exactly one pretty JSON document, the store's answer.
 * Errors go to stderr as "cortex: …". The exit status means something:
 * 0 success, 1 nothing found or refused, 2 usage error, 3 workspace or store
 * error. Read commands never create state: in a workspace without a store
 * they say so and exit 3. */
#include "cli-output.h"
#include "agents.h"
#include "config.h"
#include "daemon.h"
#include "doctor.h"
#include "drain.h"
#include "hooks.h"
#include "provenance.h"
#include "redact/redact.h"
#include "search/search.h"
#include "session.h"
#include "store/store.h"
#include "sync.h"
#include "sync/client.h"
#include "sync/replica.h"
#include "sync/upstream.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"
#include "util/ulid.h"
#include "workspace.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef CORTEX_VERSION
#define CORTEX_VERSION "0.1.0"
#endif

/* Exit statuses, documented in --help and cortex(1). */
enum {
    RC_OK = 0,
    RC_NONE = 1,  /* nothing found, or the request was refused */
    RC_USAGE = 2, /* bad command line or argument values */
    RC_STORE = 3, /* workspace or store: missing, cannot open, I/O, busy */
    RC_UPSTREAM = 4, /* the upstream core: not configured, unreachable, failing */
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
    O_COUNT,
} opt_id;

static const struct optdef {
    const char *name;
    char short_name;
    bool arg;
} optdefs[O_COUNT] = {
    [O_WORKSPACE] = {"workspace", 0, true}, [O_JSON] = {"json", 0, false},
    [O_HELP] = {"help", 'h', false},        [O_VERSION] = {"version", 0, false},
    [O_KIND] = {"kind", 0, true},           [O_STATUS] = {"status", 0, true},
    [O_SUBCORTEX] = {"subcortex", 0, true}, [O_TAG] = {"tag", 0, true},
    [O_LIMIT] = {"limit", 0, true},         [O_CONTENT] = {"content", 0, false},
    [O_TITLE] = {"title", 0, true},         [O_FILE] = {"file", 0, true},
    [O_EVIDENCE] = {"evidence", 0, true},   [O_PRIVATE] = {"private", 0, false},
    [O_REASON] = {"reason", 0, true},       [O_NOTE] = {"note", 0, true},
    [O_CA_FILE] = {"ca-file", 0, true},     [O_MODE] = {"mode", 0, true},
    [O_AGENT] = {"agent", 0, true},         [O_UPSTREAM] = {"upstream", 0, true},
    [O_MAX_TOKENS] = {"max-tokens", 0, true}, [O_NO_DAEMON] = {"no-daemon", 0, false},
};

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

/* ---- messages ---------------------------------------------------------- */

static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int rc, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("cortex: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("cortex: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd)
        fprintf(stderr, "Try 'cortex %s --help'.\n", cmd);
    else
        fputs("Try 'cortex help'.\n", stderr);
    return RC_USAGE;
}

/* The engine's detail for a failure just returned (the caller cleared the
 * detail before the call, so a message left from earlier cannot leak in). */
static const char *engine_msg(int r) {
    return cx_error_code() != 0 ? cx_error_last() : cx_strerror(r);
}

static int rc_for(int r) {
    switch (r) {
    case CX_ENOTFOUND:
    case CX_ECONFLICT:
        return RC_NONE;
    case CX_EINVAL:
    case CX_ELIMIT:
        return RC_USAGE;
    default:
        return RC_STORE;
    }
}

static int oom(void) {
    return fail(RC_STORE, "out of memory");
}

/* ---- help texts -------------------------------------------------------- */

static const char help_main[] =
    "Usage: cortex [--workspace DIR] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Shared, reviewable memory for AI coding agents: the command line for people.\n"
    "\n"
    "Commands:\n"
    "  search QUERY...            find items by keywords, best first\n"
    "  show ID...                 print items in full\n"
    "  observe TEXT               record an observation\n"
    "  draft --title TITLE BODY   propose knowledge for review\n"
    "  review list                list drafts awaiting review\n"
    "  review approve ID          make a draft canon knowledge (a thread)\n"
    "  review reject ID --reason TEXT\n"
    "  review request-changes ID --reason TEXT\n"
    "  start [--agent NAME]...    set up the workspace, start background sync,\n"
    "                             wire agents (claude, codex, cursor, gemini)\n"
    "  stop                       stop the background cortexd\n"
    "  status                     workspace, daemon, store and sync state\n"
    "  doctor                     check every link and say how to fix it\n"
    "  remote set URL [--ca-file FILE]   the team's cortex-core to sync with\n"
    "  login                      store your key for the upstream (read from stdin)\n"
    "  sync                       push and pull until caught up\n"
    "  reindex                    recompute every item's vectors, with progress\n"
    "  scan FILE...               check files for secrets (ids only, never the secret)\n"
    "  hook session-start|stop    agent hooks (briefing; session digest draft)\n"
    "  help [COMMAND]             help for a command (also: cortex COMMAND --help)\n"
    "\n"
    "Global options (before or after the command):\n"
    "  --workspace DIR   the workspace to use; default: $CORTEX_WORKSPACE, else the\n"
    "                    git repository around the current directory, else the\n"
    "                    current directory\n"
    "  --json            print the result as one JSON document, for scripts\n"
    "  -h, --help        print help and exit\n"
    "  --version         print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  nothing found (a search without results, an unknown id) or the request\n"
    "     was refused (e.g. reviewing a draft that is no longer awaiting review)\n"
    "  2  usage error: unknown command or option, missing or invalid argument\n"
    "  3  workspace or store error: no Cortex memory in the workspace yet (read\n"
    "     commands never create it), cannot open, I/O error, store busy\n"
    "  4  upstream error: no upstream or key configured, core unreachable or failing\n"
    "\n"
    "Environment: CORTEX_WORKSPACE (the workspace), CORTEX_AUTHOR (who records;\n"
    "default: your user name), NO_COLOR (no colour even on a terminal).\n"
    "See cortex(1) for more.\n";

static const char help_search[] =
    "Usage: cortex search QUERY... [OPTIONS]\n"
    "\n"
    "Finds items by their words and their meaning, best first: keyword matches\n"
    "(identifiers split, so parse_config finds parseConfigFile) fused with\n"
    "vector similarity (paraphrases and typos still match), then ranked by trust\n"
    "(canon threads first), recency and staleness. An item whose files changed\n"
    "since it was recorded is marked stale and ranks lower. Each result shows\n"
    "its id, kind, status, subcortex, age, title and a snippet with the matches\n"
    "marked \xC2\xAB" "like this" "\xC2\xBB (bold on a terminal).\n"
    "\n"
    "Options:\n"
    "  --mode MODE        hybrid (default), keyword or semantic\n"
    "  --kind KIND        only items of this kind: observation, draft, thread,\n"
    "                     comment, artifact, subcortex\n"
    "  --status STATUS    only items with this status (recorded, pending, canon,\n"
    "                     rejected, changes_requested, published, accepted)\n"
    "  --subcortex NAME   only items in this subcortex\n"
    "  --tag TAG          only items carrying TAG; repeat it to require several\n"
    "  --limit N          at most N results, 1 to 50 (default 10)\n"
    "  --json             print the search answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 results found, 1 no results, 2 usage error,\n"
    "3 no Cortex memory in the workspace yet or a store error.\n";

static const char help_show[] =
    "Usage: cortex show ID... [--content]\n"
    "\n"
    "Prints items in full: title, body, tags, files, author, times, the last\n"
    "review decision, comments (threads and drafts) and versions (artifacts).\n"
    "With --json, one ID prints the item object and several print an array.\n"
    "\n"
    "Options:\n"
    "  --content          print the raw bytes of the latest version of an\n"
    "                     artifact (exactly one ID; not with --json)\n"
    "  --json             print the item(s) as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 every item was found, 1 some ID is unknown (the others are\n"
    "still printed) or --content was given an item that is not an artifact,\n"
    "2 usage error, 3 no Cortex memory in the workspace yet or a store error.\n";

static const char help_observe[] =
    "Usage: cortex observe TEXT... [OPTIONS]\n"
    "       cortex observe - [OPTIONS]        (read TEXT from standard input)\n"
    "\n"
    "Records an observation: something learned while working. Several TEXT\n"
    "words are joined with spaces; '-' reads the text from standard input (at\n"
    "most 256 KiB). Prints the new id; a text already in the store (ignoring\n"
    "whitespace) is not recorded twice, and its id is printed followed by\n"
    "\"(already recorded)\". Secrets in the text are redacted before storing.\n"
    "\n"
    "Options:\n"
    "  --title TITLE      a short title\n"
    "  --tag TAG          a tag; repeatable (at most 16)\n"
    "  --subcortex NAME   the topic namespace (default: workspace.subcortex of\n"
    "                     .cortex/config, which cortex start sets; else general)\n"
    "  --file PATH        a file inside the workspace that the observation is\n"
    "                     about; repeatable. Relative paths are taken from the\n"
    "                     current directory when it is inside the workspace,\n"
    "                     else from the workspace root\n"
    "  --private          keep it on this machine: never synced\n"
    "  --json             print the store's answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 recorded (or already recorded), 2 usage error or a value\n"
    "the store refuses (too long, too many tags, a file outside the workspace),\n"
    "3 workspace or store error.\n";

static const char help_draft[] =
    "Usage: cortex draft --title TITLE BODY... [OPTIONS]\n"
    "       cortex draft --title TITLE - [OPTIONS]   (read BODY from standard input)\n"
    "\n"
    "Proposes knowledge for review: a draft with status 'pending' that\n"
    "'cortex review approve' turns into a canon thread. BODY words are joined\n"
    "with spaces; '-' reads it from standard input (at most 256 KiB). Prints\n"
    "the new id.\n"
    "\n"
    "Options:\n"
    "  --title TITLE      the title (required)\n"
    "  --tag TAG          a tag; repeatable (at most 16)\n"
    "  --subcortex NAME   the topic namespace (default: workspace.subcortex of\n"
    "                     .cortex/config, which cortex start sets; else general)\n"
    "  --file PATH        a file the draft is about; repeatable (as for observe)\n"
    "  --evidence ID      an item that supports the draft; repeatable\n"
    "  --json             print the store's answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 recorded, 1 an --evidence id is unknown, 2 usage error or a\n"
    "value the store refuses, 3 workspace or store error.\n";

static const char help_review[] =
    "Usage: cortex review list [--json]\n"
    "       cortex review approve ID [--note TEXT]\n"
    "       cortex review reject ID --reason TEXT\n"
    "       cortex review request-changes ID --reason TEXT\n"
    "\n"
    "Review of drafts: against the team's core when an upstream is configured\n"
    "(`cortex remote set`, with the reviewer key from `cortex login`), else in\n"
    "the local store. 'list' shows the drafts awaiting review (pending\n"
    "or changes requested), oldest first. 'approve' makes a draft a canon\n"
    "thread (same id); 'reject' and 'request-changes' need a reason, which is\n"
    "kept with the draft. Decisions are recorded with CORTEX_AUTHOR (default:\n"
    "your user name) as the reviewer.\n"
    "\n"
    "Options:\n"
    "  --note TEXT        approve: a note kept with the decision\n"
    "  --reason TEXT      reject, request-changes: why (required)\n"
    "  --json             print the store's answer as JSON (list: the queue;\n"
    "                     a decision: the item after the change)\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 success (also an empty queue), 1 no such draft or it is not\n"
    "awaiting review (or the core refused the key's role), 2 usage error (e.g.\n"
    "reject without --reason), 3 no Cortex memory in the workspace yet or a store\n"
    "error, 4 the core could not be reached.\n";

static const char help_remote[] =
    "Usage: cortex remote set URL [--ca-file FILE]\n"
    "       cortex remote [show]\n"
    "\n"
    "Sets the team's cortex-core that this workspace syncs with. URL is\n"
    "https://HOST[:PORT] (plain http:// only to a loopback address). --ca-file\n"
    "names a PEM bundle of the CA that signed the core's certificate, for a core\n"
    "with a private CA. Stored as upstream.url and upstream.caFile in\n"
    "<workspace>/.cortex/config and in .cortex/upstream (what the sync engine\n"
    "reads); the key is not (see cortex login). 'show' prints the upstream.\n"
    "\n"
    "Exit status: 0 success, 2 usage error (e.g. http:// to another host),\n"
    "3 workspace error, 4 no upstream configured (show).\n";

static const char help_login[] =
    "Usage: cortex login\n"
    "\n"
    "Reads an API key for the workspace's upstream (from standard input when it\n"
    "is not a terminal, else with a prompt that does not echo), checks it with\n"
    "the core (GET /v1/info), and stores it, keyed by the upstream URL, in\n"
    "$XDG_CONFIG_HOME/cortex/credentials (default ~/.config/cortex/credentials),\n"
    "mode 0600. Keys are never stored in the workspace.\n"
    "\n"
    "Exit status: 0 success, 1 the core refused the key, 2 usage error (no key\n"
    "given), 4 no upstream configured or the core could not be reached.\n";

static const char help_sync[] =
    "Usage: cortex sync\n"
    "\n"
    "Pushes the outbox to the upstream core and pulls the core's changes, in the\n"
    "foreground, until both are caught up; progress goes to stderr. Transient\n"
    "failures (network, 5xx, 429) are retried with backoff for up to\n"
    "$CORTEX_SYNC_DEADLINE seconds (default 60). Ops the core rejects are kept\n"
    "with their reason and shown by `cortex status`.\n"
    "\n"
    "Options:\n"
    "  --json             print the final sync state as JSON\n"
    "\n"
    "Exit status: 0 caught up, 3 store error, 4 no upstream or key configured, or\n"
    "the core could not be reached or kept failing.\n";

static const char help_reindex[] =
    "Usage: cortex reindex\n"
    "\n"
    "Recomputes the vectors of every item in the foreground, with a progress bar\n"
    "on stderr: with the built-in embedder, and also with the embedder the\n"
    "workspace config selects (embed.provider = http in .cortex/config). cortexd\n"
    "does the same in the background when the configured model changes; this is\n"
    "for doing it now, or after changing the config by hand. Ctrl-C stops it;\n"
    "what was done stays, the rest is done again next time.\n"
    "\n"
    "Exit status: 0 done, 3 no Cortex memory in the workspace or a store error,\n"
    "4 the configured embedding service failed.\n";

static const char help_status[] =
    "Usage: cortex status\n"
    "\n"
    "Shows the workspace root, its state directory, the background cortexd\n"
    "(running or not, its pid and log), the store's size and item counts,\n"
    "drafts awaiting review, the outbox backlog and the sync state. In a\n"
    "workspace without Cortex memory it says so (and creates nothing).\n"
    "\n"
    "Options:\n"
    "  --json             print the store's status as JSON, with \"workspace\",\n"
    "                     \"state_dir\", \"initialized\", \"daemon\" ({\"running\",\n"
    "                     \"pid\", \"log\"}) and \"sync\" added\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 success, 2 usage error, 3 workspace or store error.\n";

static const char help_start[] =
    "Usage: cortex start [--agent claude|codex|cursor|gemini]... [--upstream URL]\n"
    "                    [--ca-file FILE] [--no-daemon]\n"
    "\n"
    "Sets up this workspace and keeps it running; safe to run again. It finds\n"
    "the git repository, creates .cortex/ (kept out of git through\n"
    ".git/info/exclude), writes the workspace config .cortex/config where keys\n"
    "are missing (workspace.subcortex from the repository name, embed.provider,\n"
    "sync.intervalMs; upstream.url with --upstream), creates the store, starts\n"
    "the background cortexd that keeps sync running (pid and lock in .cortex/,\n"
    "log in .cortex/cortexd.log) and prints how to connect agents.\n"
    "\n"
    "Options:\n"
    "  --agent NAME      write NAME's MCP server entry for cortexd, merging into\n"
    "                    the existing file (repeatable): claude (.mcp.json, and\n"
    "                    its SessionStart and Stop hooks in .claude/settings.json),\n"
    "                    codex (.codex/config.toml), cursor (.cursor/mcp.json),\n"
    "                    gemini (.gemini/settings.json). A file that cannot be\n"
    "                    parsed is left alone and the command fails.\n"
    "  --upstream URL    the team's cortex-core (as `cortex remote set`)\n"
    "  --ca-file FILE    CA bundle for the upstream's certificate (with --upstream)\n"
    "  --no-daemon       set up, but start no background cortexd\n"
    "  --json            print what was done as JSON\n"
    "\n"
    "Exit status: 0 success, 2 usage error, 3 workspace, store or daemon error,\n"
    "1 an agent's config file could not be parsed (nothing in it was changed).\n";

static const char help_stop[] =
    "Usage: cortex stop\n"
    "\n"
    "Stops this workspace's background cortexd (SIGTERM; SIGKILL after 10 s).\n"
    "Agents' own cortexd processes keep serving them; the first of them takes\n"
    "over background sync. Stopping when none runs is not an error.\n"
    "\n"
    "Exit status: 0 stopped or not running, 2 usage error, 3 it could not be\n"
    "stopped.\n";

static const char help_doctor[] =
    "Usage: cortex doctor [--json]\n"
    "\n"
    "Checks every link from this workspace to an agent finding the team's\n"
    "knowledge and says how to fix each broken one: the cortexd binary, the\n"
    "workspace and its config, the store, the redaction rules, the background\n"
    "cortexd, each wired agent's MCP config (right binary, right workspace),\n"
    "Claude Code's hooks, the upstream core and the key.\n"
    "\n"
    "Exit status: 0 nothing failed (warnings allowed), 1 a check failed,\n"
    "2 usage error.\n";

static const char help_hook[] =
    "Usage: cortex hook session-start|stop [--max-tokens N]\n"
    "\n"
    "Agent hooks (`cortex start --agent claude` installs them for Claude Code).\n"
    "  session-start  prints a briefing for the agent (recent canon in this\n"
    "                 workspace's subcortexes, items that went stale, your pending\n"
    "                 drafts) as Claude Code's SessionStart hook output, within\n"
    "                 --max-tokens (default 1500)\n"
    "  stop           reads the Stop hook's JSON on stdin and turns the session's\n"
    "                 observations into one digest draft for review (later stops\n"
    "                 of the session revise it)\n"
    "Hooks never fail the agent: they exit 0 and report problems on stderr.\n"
    "\n"
    "Exit status: 0, or 2 for an unknown hook.\n";

static const char help_scan[] =
    "Usage: cortex scan FILE...\n"
    "\n"
    "Checks files (\"-\" for stdin) for secrets with the same rules that redact\n"
    "everything Cortex stores, and lists each finding as FILE:LINE:COLUMN and\n"
    "the rule id; the secret itself is never printed. Binary files are checked\n"
    "for being credential files (private keys, keystores, .env).\n"
    "\n"
    "Options:\n"
    "  --json    {\"files\": [{\"path\", \"findings\": [{\"line\", \"column\", \"rule\"}]}],\n"
    "            \"total\": N}\n"
    "\n"
    "Exit status: 0 no secrets found, 1 secrets found, 2 usage error,\n"
    "3 a file could not be read.\n";

static const char help_help[] =
    "Usage: cortex help [COMMAND]\n"
    "\n"
    "Prints the overview, or the help of COMMAND (start, stop, status, doctor,\n"
    "search, show, observe, draft, review, remote, login, sync, reindex, scan,\n"
    "hook, help).\n"
    "\n"
    "Exit status: 0 success, 2 unknown command.\n";

/* ---- small helpers ----------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long jint(const json_t *o, const char *key, long long def) {
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

static bool jtrue(const json_t *o, const char *key) {
    return json_is_true(json_object_get(o, key));
}

static cx_strv strv(const strlist *l) {
    return (cx_strv){.v = (const char *const *)l->v, .n = l->n};
}

static int print_json(const json_t *j) {
    if (json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
        return fail(RC_STORE, "cannot write JSON to standard output");
    fputc('\n', stdout);
    return RC_OK;
}

/* Joins operands with single spaces into a malloc'd string. */
static char *join_words(const strlist *l) {
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
        len += strlen(l->v[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        size_t k = strlen(l->v[i]);
        if (i > 0)
            *p++ = ' ';
        memcpy(p, l->v[i], k);
        p += k;
    }
    *p = '\0';
    return s;
}

static bool blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* Reads all of stdin, at most CX_STORE_MAX_TEXT bytes, into *out. */
static int read_stdin(const char *what, const char *cmd, char **out) {
    size_t cap = CX_STORE_MAX_TEXT + 1, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return oom();
    for (;;) {
        size_t k = fread(buf + used, 1, cap - used, stdin);
        used += k;
        if (k == 0 || used == cap)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return fail(RC_STORE, "cannot read standard input: %s", strerror(errno));
    }
    if (used > CX_STORE_MAX_TEXT) {
        free(buf);
        return usage_error(cmd, "%s on standard input is larger than %u KiB, the limit for one text",
                           what, CX_STORE_MAX_TEXT / 1024);
    }
    if (memchr(buf, '\0', used)) {
        free(buf);
        return usage_error(cmd, "%s on standard input contains a NUL byte; it must be UTF-8 text", what);
    }
    buf[used] = '\0';
    *out = buf;
    return RC_OK;
}

/* The text of observe/draft: the operands joined, or stdin for "-". */
static int operand_text(ctx *c, const char *what, char **out) {
    const strlist *pos = &c->a->pos;
    const char *cmd = c->cmd->name;
    char *text = NULL;
    int rc;
    if (pos->n == 0)
        return usage_error(cmd, "%s needs %s (or '-' to read it from standard input)", cmd, what);
    if (pos->n == 1 && strcmp(pos->v[0], "-") == 0) {
        rc = read_stdin(what, cmd, &text);
        if (rc != RC_OK)
            return rc;
    } else {
        text = join_words(pos);
        if (!text)
            return oom();
    }
    if (blank(text)) {
        free(text);
        return usage_error(cmd, "%s is empty; there is nothing to record", what);
    }
    *out = text;
    return RC_OK;
}

static int parse_limit(const ctx *c, size_t *out) {
    const char *s = c->a->val[O_LIMIT];
    *out = 0;
    if (!s)
        return RC_OK;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CX_SEARCH_MAX_LIMIT)
        return usage_error(c->cmd->name, "--limit wants a whole number from 1 to %d, not '%s'",
                           CX_SEARCH_MAX_LIMIT, s);
    *out = (size_t)v;
    return RC_OK;
}

static const char *const kinds[] = {"observation", "draft", "thread", "comment", "artifact", "subcortex"};

static bool known_kind(const char *k) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(k, kinds[i]) == 0)
            return true;
    return false;
}

/* ---- workspace and store ----------------------------------------------- */

static int find_workspace(ctx *c, bool create) {
    if (c->ws)
        return RC_OK;
    int r = cx_session_open(&c->session, c->a->val[O_WORKSPACE],
                            create ? CX_SESSION_CREATE : 0u);
    if (r < 0) {
        if (r == CX_ENOTFOUND && c->a->val[O_WORKSPACE])
            return fail(RC_STORE, "workspace %s does not exist", c->a->val[O_WORKSPACE]);
        return fail(RC_STORE, "cannot find the workspace: %s", engine_msg(r));
    }
    c->ws = cx_session_workspace(c->session);
    return RC_OK;
}

/* 1 when the workspace has a store, 0 when not, or a negative RC_ on error. */
static int has_store(ctx *c) {
    int h = cx_session_has_store(c->session);
    if (h == CX_ENOMEM)
        return -oom();
    if (h < 0) {
        fail(RC_STORE, "%s", cx_error_last());
        return -RC_STORE;
    }
    return h;
}

/* Opens the workspace's store (and provenance: without it nothing reads
 * as stale). `create` is for commands that record something: they create
 * the state directory and database when missing. Without it, a workspace
 * that has no store yet is an error (exit 3) and nothing is created. */
static int open_store(ctx *c, bool create) {
    int rc = find_workspace(c, create);
    if (rc != RC_OK)
        return rc;
    if (!create) {
        int h = has_store(c);
        if (h < 0)
            return -h;
        if (h == 0)
            return fail(RC_STORE,
                        "no Cortex memory in %s yet; record something with `cortex observe` or run cortexd",
                        c->ws->root);
    }
    int r = cx_session_add(c->session, CX_SESSION_PROV);
    if (r == 0)
        r = cx_session_add(c->session, CX_SESSION_STORE);
    if (r < 0)
        return fail(RC_STORE, "cannot open the store in %s: %s", c->ws->state_dir, engine_msg(r));
    c->prov = cx_session_prov(c->session);
    c->store = cx_session_store(c->session);
    return RC_OK;
}

/* The subcortex for a new note: --subcortex, else the workspace's
 * (workspace.subcortex), else the store's default. */
static const char *note_subcortex(ctx *c) {
    if (c->a->val[O_SUBCORTEX])
        return c->a->val[O_SUBCORTEX];
    if (!c->session)
        return NULL;
    (void)cx_session_add(c->session, CX_SESSION_CONFIG);
    cx_error_clear();
    return cx_session_subcortex(c->session);
}

/* Where a note is made: remote, branch, HEAD and its files' blob ids (NULL
 * outside git or when provenance is unavailable; a failure costs the note
 * its provenance, never its recording). */
static json_t *capture_provenance(ctx *c, const cx_strv *files) {
    json_t *pv = NULL;
    if (c->prov && cx_prov_capture(c->prov, files, &pv) != 0)
        pv = NULL;
    return pv;
}

/* A --file argument as a workspace-relative path (malloc'd into *out). */
static int workspace_path(ctx *c, const char *path, char **out) {
    const char *root = c->ws->root;
    size_t n = strlen(root);
    char *cwd = NULL, *abs = NULL, *canon = NULL;
    int rc = RC_OK;
    if (path[0] == '\0')
        return usage_error(c->cmd->name, "--file wants a path");
    if (path[0] == '/') {
        abs = strdup(path);
    } else {
        cwd = getcwd(NULL, 0);
        bool inside = cwd && strncmp(cwd, root, n) == 0 && (cwd[n] == '/' || cwd[n] == '\0' || n == 1);
        abs = cx_fs_join(inside ? cwd : root, path);
    }
    if (!abs) {
        rc = oom();
        goto out;
    }
    cx_error_clear();
    int r = cx_fs_resolve_within(root, abs, &canon);
    if (r == CX_ENOTFOUND) {
        rc = usage_error(c->cmd->name, "--file %s: no such file", path);
        goto out;
    } else if (r == CX_EINVAL) {
        rc = usage_error(c->cmd->name, "--file %s is outside the workspace %s", path, root);
        goto out;
    } else if (r < 0) {
        rc = fail(RC_STORE, "--file %s: %s", path, engine_msg(r));
        goto out;
    }
    const char *rel = n == 1 ? canon + 1 : canon + n + (canon[n] == '/');
    if (*rel == '\0') {
        rc = usage_error(c->cmd->name, "--file %s is the workspace itself; name a file inside it", path);
        goto out;
    }
    *out = strdup(rel);
    if (!*out)
        rc = oom();
out:
    free(cwd);
    free(abs);
    free(canon);
    return rc;
}

/* Converts every --file to a workspace-relative path. `rel` gets malloc'd
 * strings the caller frees with free_strlist. */
static int workspace_paths(ctx *c, strlist *rel) {
    const strlist *files = &c->a->files;
    rel->n = 0;
    rel->v = calloc(files->n + 1, sizeof *rel->v);
    if (!rel->v)
        return oom();
    for (size_t i = 0; i < files->n; i++) {
        char *p = NULL;
        int rc = workspace_path(c, files->v[i], &p);
        if (rc != RC_OK)
            return rc;
        rel->v[rel->n++] = p;
    }
    return RC_OK;
}

static void free_strlist(strlist *l) {
    for (size_t i = 0; l->v && i < l->n; i++)
        free((char *)l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---- rendering ----------------------------------------------------------- */

static void put_label(const char *label) {
    printf("  %s%-10s%s ", cx_out_sgr(CX_OUT_DIM), label, cx_out_sgr(CX_OUT_RESET));
}

/* Strings of a JSON array (or the "path" of objects in it), comma separated. */
static void put_list(const json_t *arr) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i > 0)
            fputs(", ", stdout);
        if (json_is_string(v)) {
            cx_out_text(stdout, json_string_value(v), true);
        } else if (json_is_object(v)) {
            cx_out_text(stdout, jstr(v, "path"), true);
            if (jtrue(v, "stale"))
                fputs(" (changed since)", stdout);
        }
    }
}

static void put_who(const json_t *o, const char *author_key) {
    const char *author = jstr(o, author_key), *agent = jstr(o, "agent");
    cx_out_text(stdout, author ? author : "someone", true);
    if (agent) {
        fputs(" via ", stdout);
        cx_out_text(stdout, agent, true);
    }
}

/* "kind · status · subcortex" with the kind coloured. */
static void put_kind_line(const json_t *it) {
    const char *kind = jstr(it, "kind"), *status = jstr(it, "status"), *sub = jstr(it, "subcortex");
    fputs(cx_out_sgr(cx_out_kind_style(kind)), stdout);
    cx_out_text(stdout, kind ? kind : "item", true);
    fputs(cx_out_sgr(CX_OUT_RESET), stdout);
    if (status) {
        fputs(" \xC2\xB7 ", stdout);
        cx_out_text(stdout, status, true);
    }
    if (sub) {
        fputs(" \xC2\xB7 ", stdout);
        cx_out_text(stdout, sub, true);
    }
}

static void put_time(const ctx *c, const char *iso) {
    char rel[64];
    cx_out_reltime(iso, c->now, rel, sizeof rel);
    cx_out_text(stdout, rel, true);
    if (iso && strcmp(rel, iso) != 0 && strncmp(rel, iso, 10) != 0) {
        fputs(" (", stdout);
        cx_out_text(stdout, iso, true);
        fputc(')', stdout);
    }
}

static const char *decision_words(const char *d) {
    if (!d)
        return "reviewed";
    if (strcmp(d, "approve") == 0 || strcmp(d, "approved") == 0)
        return "approved";
    if (strcmp(d, "reject") == 0 || strcmp(d, "rejected") == 0)
        return "rejected";
    if (strcmp(d, "changes_requested") == 0 || strcmp(d, "request_changes") == 0)
        return "changes requested";
    return d;
}

static void render_item(const ctx *c, const json_t *it) {
    int width = cx_out_width();
    const char *title = jstr(it, "title"), *body = jstr(it, "body");
    const char *created = jstr(it, "created_at"), *updated = jstr(it, "updated_at");
    json_t *v;

    printf("%s", cx_out_sgr(CX_OUT_BOLD));
    cx_out_text(stdout, jstr(it, "id"), true);
    printf("%s  ", cx_out_sgr(CX_OUT_RESET));
    put_kind_line(it);
    const char *vis = jstr(it, "visibility");
    if (vis && strcmp(vis, "private") == 0)
        fputs(" \xC2\xB7 private", stdout);
    if (jtrue(it, "stale"))
        printf(" \xC2\xB7 %sstale%s", cx_out_sgr(CX_OUT_RED), cx_out_sgr(CX_OUT_RESET));
    fputc('\n', stdout);
    if (title && *title) {
        printf("%s", cx_out_sgr(CX_OUT_BOLD));
        cx_out_text(stdout, title, true);
        printf("%s\n", cx_out_sgr(CX_OUT_RESET));
    }
    if (body && *body) {
        fputc('\n', stdout);
        cx_out_wrap(stdout, body, 2, width);
    }
    fputc('\n', stdout);

    v = json_object_get(it, "tags");
    if (json_array_size(v) > 0) {
        put_label("tags");
        put_list(v);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "files");
    if (json_array_size(v) > 0) {
        put_label("files");
        put_list(v);
        fputc('\n', stdout);
    }
    put_label("author");
    put_who(it, "author");
    fputc('\n', stdout);
    if (created) {
        put_label("created");
        put_time(c, created);
        fputc('\n', stdout);
    }
    if (updated && (!created || strcmp(updated, created) != 0)) {
        put_label("updated");
        put_time(c, updated);
        fputc('\n', stdout);
    }
    long long seen = jint(it, "seen", 1);
    if (seen > 1) {
        put_label("seen");
        printf("%lld times\n", seen);
    }
    const char *parent = jstr(it, "parent_id");
    if (parent) {
        put_label("on");
        cx_out_text(stdout, parent, true);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "evidence");
    if (json_array_size(v) > 0) {
        put_label("evidence");
        put_list(v);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "review");
    if (json_is_object(v)) {
        put_label("review");
        fputs(decision_words(jstr(v, "decision")), stdout);
        if (jstr(v, "reviewer")) {
            fputs(" by ", stdout);
            cx_out_text(stdout, jstr(v, "reviewer"), true);
        }
        if (jstr(v, "at")) {
            char rel[64];
            cx_out_reltime(jstr(v, "at"), c->now, rel, sizeof rel);
            fputs(", ", stdout);
            cx_out_text(stdout, rel, true);
        }
        if (jstr(v, "reason") && *jstr(v, "reason")) {
            fputs(": ", stdout);
            cx_out_text(stdout, jstr(v, "reason"), true);
        }
        fputc('\n', stdout);
    }
    if (json_is_integer(json_object_get(it, "server_seq"))) {
        put_label("synced");
        printf("seq %lld\n", jint(it, "server_seq", 0));
    }

    v = json_object_get(it, "comments");
    if (json_array_size(v) > 0) {
        size_t i;
        json_t *cm;
        printf("\n%sComments (%zu)%s\n", cx_out_sgr(CX_OUT_BOLD), json_array_size(v),
               cx_out_sgr(CX_OUT_RESET));
        json_array_foreach(v, i, cm) {
            char rel[64];
            cx_out_reltime(jstr(cm, "created_at"), c->now, rel, sizeof rel);
            fputs("  ", stdout);
            put_who(cm, "author");
            printf(", %s  %s", rel, cx_out_sgr(CX_OUT_DIM));
            cx_out_text(stdout, jstr(cm, "id"), true);
            printf("%s\n", cx_out_sgr(CX_OUT_RESET));
            cx_out_wrap(stdout, jstr(cm, "body"), 4, width);
        }
    }
    v = json_object_get(it, "versions");
    if (json_array_size(v) > 0) {
        size_t i;
        json_t *ver;
        printf("\n%sVersions (%zu)%s\n", cx_out_sgr(CX_OUT_BOLD), json_array_size(v),
               cx_out_sgr(CX_OUT_RESET));
        json_array_foreach(v, i, ver) {
            char size[32], rel[64];
            const char *sha = jstr(ver, "sha256"), *src = jstr(ver, "source_path");
            cx_out_size((uint64_t)jint(ver, "size", 0), size, sizeof size);
            cx_out_reltime(jstr(ver, "created_at"), c->now, rel, sizeof rel);
            printf("  v%-3lld ", jint(ver, "version", 0));
            cx_out_cell(stdout, jstr(ver, "status"), 10, true);
            char short_sha[13];
            snprintf(short_sha, sizeof short_sha, "%s", sha ? sha : "");
            printf(" %10s  %s", size, cx_out_sgr(CX_OUT_DIM));
            cx_out_cell(stdout, short_sha, 12, true);
            printf("%s  ", cx_out_sgr(CX_OUT_RESET));
            cx_out_text(stdout, rel, true);
            if (src) {
                fputs("  from ", stdout);
                cx_out_text(stdout, src, true);
            }
            fputc('\n', stdout);
        }
    }
}

/* ---- commands ---------------------------------------------------------- */

static int cmd_search(ctx *c) {
    const args *a = c->a;
    size_t limit = 0;
    char *text = NULL;
    json_t *res = NULL;
    int rc;

    if (a->pos.n == 0)
        return usage_error("search", "search needs a QUERY");
    if ((rc = parse_limit(c, &limit)) != RC_OK)
        return rc;
    if (a->val[O_KIND] && !known_kind(a->val[O_KIND]))
        return usage_error("search",
                           "unknown kind '%s'; use observation, draft, thread, comment, artifact or subcortex",
                           a->val[O_KIND]);
    text = join_words(&a->pos);
    if (!text)
        return oom();
    if ((rc = open_store(c, false)) != RC_OK)
        goto out;

    cx_search_query q = {
        .text = text,
        .stale = c->prov ? cx_prov_stale : NULL,
        .stale_ud = c->prov,
        .kind = a->val[O_KIND],
        .status = a->val[O_STATUS],
        .subcortex = a->val[O_SUBCORTEX],
        .tags = strv(&a->tags),
        .limit = limit,
        .max_tokens = CLI_SEARCH_TOKENS,
    };
    if (cx_search_mode_parse(a->val[O_MODE], &q.mode) != 0) {
        rc = usage_error("search", "%s", cx_error_last());
        goto out;
    }
    cx_error_clear();
    int r = cx_search_run(c->store, &q, &res);
    if (r < 0) {
        rc = r == CX_EINVAL || r == CX_ELIMIT ? usage_error("search", "%s", engine_msg(r))
                                              : fail(rc_for(r), "search failed: %s", engine_msg(r));
        goto out;
    }
    json_t *results = json_object_get(res, "results");
    size_t n = json_array_size(results);
    if (c->json) {
        rc = print_json(res);
        if (rc == RC_OK && n == 0)
            rc = RC_NONE;
        goto out;
    }
    if (n == 0) {
        printf("No results for \xE2\x80\x9C");
        cx_out_text(stdout, text, true);
        printf("\xE2\x80\x9D.\n");
        rc = RC_NONE;
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(results, i, it) {
        char rel[64];
        const char *title = jstr(it, "title");
        json_t *tags = json_object_get(it, "tags");
        if (i > 0)
            fputc('\n', stdout);
        printf("%s", cx_out_sgr(CX_OUT_BOLD));
        cx_out_text(stdout, jstr(it, "id"), true);
        printf("%s  ", cx_out_sgr(CX_OUT_RESET));
        put_kind_line(it);
        if (jstr(it, "updated_at")) {
            cx_out_reltime(jstr(it, "updated_at"), c->now, rel, sizeof rel);
            fputs(" \xC2\xB7 ", stdout);
            cx_out_text(stdout, rel, true);
        }
        if (json_array_size(tags) > 0) {
            size_t k;
            json_t *t;
            fputs(cx_out_sgr(CX_OUT_DIM), stdout);
            json_array_foreach(tags, k, t) {
                fputs(k == 0 ? "  #" : " #", stdout);
                cx_out_text(stdout, json_string_value(t), true);
            }
            fputs(cx_out_sgr(CX_OUT_RESET), stdout);
        }
        fputc('\n', stdout);
        if (title && *title) {
            printf("  %s", cx_out_sgr(CX_OUT_BOLD));
            cx_out_text(stdout, title, true);
            printf("%s\n", cx_out_sgr(CX_OUT_RESET));
        }
        const char *snippet = jstr(it, "snippet");
        if (snippet && *snippet)
            cx_out_wrap_snippet(stdout, snippet, 2, cx_out_width());
    }
    if (jtrue(res, "truncated"))
        printf("\n%s(more results did not fit; narrow the query or lower --limit)%s\n",
               cx_out_sgr(CX_OUT_DIM), cx_out_sgr(CX_OUT_RESET));
out:
    json_decref(res);
    free(text);
    return rc;
}

static int show_content(ctx *c, const json_t *item, const char *id) {
    const char *kind = jstr(item, "kind");
    char *data = NULL;
    size_t len = 0;
    if (!kind || strcmp(kind, "artifact") != 0)
        return fail(RC_NONE, "%s is a %s, not an artifact; --content prints an artifact's latest version",
                    id, kind ? kind : "item");
    cx_error_clear();
    int r = cx_store_artifact_content(c->store, id, 0, &data, &len);
    if (r < 0)
        return fail(rc_for(r) == RC_USAGE ? RC_STORE : rc_for(r), "cannot read the content of %s: %s",
                    id, engine_msg(r));
    size_t w = fwrite(data, 1, len, stdout);
    free(data);
    if (w != len)
        return fail(RC_STORE, "cannot write to standard output");
    return RC_OK;
}

static int cmd_show(ctx *c) {
    const args *a = c->a;
    bool content = a->seen[O_CONTENT];
    json_t *all = NULL;
    int rc = RC_OK;

    if (a->pos.n == 0)
        return usage_error("show", "show needs an ID");
    if (content && a->pos.n != 1)
        return usage_error("show", "--content takes exactly one ID");
    if (content && c->json)
        return usage_error("show", "--content and --json cannot be combined");
    if ((rc = open_store(c, false)) != RC_OK)
        return rc;
    if (c->json && a->pos.n > 1 && !(all = json_array()))
        return oom();

    bool printed = false;
    for (size_t i = 0; i < a->pos.n; i++) {
        const char *id = a->pos.v[i];
        json_t *item = NULL;
        cx_error_clear();
        int r = cx_store_get(c->store, id, &item);
        if (r == CX_ENOTFOUND || r == CX_EINVAL) {
            /* the store says why an id is malformed; an unknown id is simply not here */
            if (r == CX_EINVAL)
                fail(RC_NONE, "no item '%s': %s", id, engine_msg(r));
            else
                fail(RC_NONE, "no item '%s' in %s", id, c->ws->root);
            rc = RC_NONE;
            continue;
        } else if (r < 0) {
            rc = fail(RC_STORE, "cannot read '%s': %s", id, engine_msg(r));
            goto out;
        }
        /* from here on, the id as the store spells it */
        if (jstr(item, "id"))
            id = jstr(item, "id");
        if (content) {
            rc = show_content(c, item, id);
        } else if (all) {
            json_array_append_new(all, item);
            item = NULL;
        } else if (c->json) {
            int w = print_json(item);
            if (w != RC_OK)
                rc = w;
        } else {
            if (printed)
                printf("\n%s\n\n", "\xE2\x94\x80\xE2\x94\x80\xE2\x94\x80\xE2\x94\x80");
            render_item(c, item);
            printed = true;
        }
        json_decref(item);
    }
    if (all) {
        int w = print_json(all);
        if (w != RC_OK)
            rc = w;
    }
out:
    json_decref(all);
    return rc;
}

/* Tells the person on stderr what was redacted (rule ids, never the text). */
static void note_redacted(const json_t *r) {
    if (!r)
        return;
    long long n = jint(r, "count", 0);
    fprintf(stderr, "cortex: redacted %lld secret%s before storing (", n, n == 1 ? "" : "s");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "rules"), i, v)
        fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(v));
    fputs(")\n", stderr);
}

static int cmd_observe(ctx *c) {
    const args *a = c->a;
    char *text = NULL;
    strlist files = {0};
    json_t *res = NULL;
    int rc;

    if ((rc = operand_text(c, "TEXT", &text)) != RC_OK)
        return rc;
    if ((rc = open_store(c, true)) != RC_OK)
        goto out;
    if ((rc = workspace_paths(c, &files)) != RC_OK)
        goto out;
    cx_note note = {
        .title = a->val[O_TITLE],
        .body = text,
        .subcortex = note_subcortex(c),
        .tags = strv(&a->tags),
        .files = strv(&files),
        .visibility = a->seen[O_PRIVATE] ? "private" : NULL,
    };
    json_t *pv = capture_provenance(c, &note.files);
    note.provenance = pv;
    cx_error_clear();
    int r = cx_store_observe(c->store, &c->who, &note, 1, NULL, NULL, &res);
    json_decref(pv);
    if (r < 0) {
        rc = r == CX_EINVAL || r == CX_ELIMIT ? usage_error("observe", "%s", engine_msg(r))
                                              : fail(rc_for(r), "cannot record: %s", engine_msg(r));
        goto out;
    }
    if (c->json) {
        rc = print_json(res);
        goto out;
    }
    json_t *first = json_array_get(json_object_get(res, "results"), 0);
    const char *id = jstr(first, "id");
    if (!id) {
        rc = fail(RC_STORE, "the store recorded the observation but returned no id");
        goto out;
    }
    cx_out_text(stdout, id, true);
    fputs(jtrue(first, "repeat") ? " (already recorded)\n" : "\n", stdout);
    note_redacted(json_object_get(res, "redacted"));
out:
    json_decref(res);
    free_strlist(&files);
    free(text);
    return rc;
}

static int cmd_draft(ctx *c) {
    const args *a = c->a;
    char *text = NULL;
    strlist files = {0};
    json_t *res = NULL;
    int rc;

    const char *title = a->val[O_TITLE];
    if (!title || blank(title))
        return usage_error("draft", "draft needs --title TITLE");
    if ((rc = operand_text(c, "BODY", &text)) != RC_OK)
        return rc;
    if ((rc = open_store(c, true)) != RC_OK)
        goto out;
    if ((rc = workspace_paths(c, &files)) != RC_OK)
        goto out;
    cx_note note = {
        .title = title,
        .body = text,
        .subcortex = note_subcortex(c),
        .tags = strv(&a->tags),
        .files = strv(&files),
        .evidence = strv(&a->evidence),
    };
    cx_error_clear();
    json_t *pv = capture_provenance(c, &note.files);
    note.provenance = pv;
    int r = cx_store_draft(c->store, &c->who, &note, &res);
    json_decref(pv);
    if (r < 0) {
        if (r == CX_ENOTFOUND)
            rc = fail(RC_NONE, "cannot record the draft: %s", engine_msg(r));
        else if (r == CX_EINVAL || r == CX_ELIMIT)
            rc = usage_error("draft", "%s", engine_msg(r));
        else
            rc = fail(rc_for(r), "cannot record the draft: %s", engine_msg(r));
        goto out;
    }
    if (c->json) {
        rc = print_json(res);
        goto out;
    }
    cx_out_text(stdout, jstr(res, "id"), true);
    fputc('\n', stdout);
    note_redacted(json_object_get(res, "redacted"));
out:
    json_decref(res);
    free_strlist(&files);
    free(text);
    return rc;
}

/* ---- upstream: remote, login, sync, remote review ---------------------- */

#define STALE_MS (60ull * 60 * 1000) /* a cache not pulled for an hour is stale */

/* 1 with *u when the workspace has an upstream, 0 when not, or -RC_. */
static int load_upstream(ctx *c, cx_upstream **u) {
    cx_error_clear();
    int r = cx_upstream_read(c->ws->state_dir, u);
    if (r == CX_ENOTFOUND)
        return 0;
    if (r < 0)
        return -fail(RC_UPSTREAM, "cannot read the upstream of %s: %s", c->ws->root, engine_msg(r));
    return 1;
}

/* A client for the upstream with the stored key (required unless !need_key). */
static int make_client(const cx_upstream *u, bool need_key, cx_client **out) {
    char *key = NULL;
    cx_error_clear();
    int r = cx_upstream_key_get(u->url, &key);
    if (r < 0 && (need_key || r != CX_ENOTFOUND))
        return fail(RC_UPSTREAM, "no key for %s: %s", u->url, engine_msg(r));
    cx_error_clear();
    r = cx_client_new(out, u, key, NULL);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    if (r < 0)
        return fail(RC_UPSTREAM, "cannot use upstream %s: %s", u->url, engine_msg(r));
    return RC_OK;
}

/* The exit status and message for an unexpected answer of the core. */
static int answer_fail(const char *what, const cx_client_answer *a) {
    int rc = (a->status == 401 || a->status == 403 || a->status == 404 || a->status == 409)
                 ? RC_NONE
                 : RC_UPSTREAM;
    return fail(rc, "%s: the core answered %ld: %s", what, a->status, cx_client_error_text(a));
}


static int set_upstream(ctx *c, const char *url, const char *ca);

static int cmd_remote(ctx *c) {
    const strlist *pos = &c->a->pos;
    int rc;
    if (pos->n == 0 || (pos->n == 1 && strcmp(pos->v[0], "show") == 0)) {
        if (c->a->seen[O_CA_FILE])
            return usage_error("remote", "--ca-file goes with 'remote set URL'");
        if ((rc = find_workspace(c, false)) != RC_OK)
            return rc;
        cx_upstream *u = NULL;
        int h = load_upstream(c, &u);
        if (h < 0)
            return -h;
        if (h == 0)
            return fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
        if (c->json) {
            json_t *o = json_pack("{s:s, s:s?}", "url", u->url, "ca_file", u->ca_file);
            rc = o ? print_json(o) : oom();
            json_decref(o);
        } else {
            cx_out_text(stdout, u->url, true);
            if (u->ca_file) {
                fputs(" (CA file ", stdout);
                cx_out_text(stdout, u->ca_file, true);
                fputc(')', stdout);
            }
            fputc('\n', stdout);
        }
        cx_upstream_free(u);
        return rc;
    }
    if (strcmp(pos->v[0], "set") != 0)
        return usage_error("remote", "unknown remote action '%s'; use set or show", pos->v[0]);
    if (pos->n != 2)
        return usage_error("remote", "remote set needs exactly one URL");
    cx_upstream u = {.url = (char *)pos->v[1]};
    char *ca = NULL;
    cx_error_clear();
    if (cx_upstream_check_url(u.url) < 0)
        return usage_error("remote", "%s", cx_error_last());
    if (c->a->val[O_CA_FILE]) {
        ca = realpath(c->a->val[O_CA_FILE], NULL);
        if (!ca)
            return usage_error("remote", "cannot use --ca-file %s: %s", c->a->val[O_CA_FILE],
                               strerror(errno));
        u.ca_file = ca;
    }
    if ((rc = find_workspace(c, true)) != RC_OK) {
        free(ca);
        return rc;
    }
    rc = set_upstream(c, u.url, u.ca_file);
    free(ca);
    if (rc != RC_OK)
        return rc;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s?}", "url", pos->v[1], "ca_file", c->a->val[O_CA_FILE]);
        rc = o ? print_json(o) : oom();
        json_decref(o);
        return rc;
    }
    {
        printf("Upstream set to ");
        cx_out_text(stdout, u.url, true);
        printf(".\nNext: `cortex login` with your key, then `cortex sync`.\n");
    }
    return RC_OK;
}

/* Reads the key: stdin when it is not a terminal, else a prompt without echo. */
static int read_key(const char *url, char *buf, size_t cap) {
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "API key for %s: ", url);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = false;
        }
    }
    char *got = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!got)
        return usage_error("login", "no key given on standard input");
    size_t n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    size_t lead = strspn(buf, " \t");
    memmove(buf, buf + lead, n - lead + 1);
    if (!*buf)
        return usage_error("login", "the key is empty");
    return RC_OK;
}

static int cmd_login(ctx *c) {
    if (c->a->pos.n)
        return usage_error("login", "login takes no arguments (the key is read from stdin)");
    int rc;
    if ((rc = find_workspace(c, false)) != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_client *cl = NULL;
    cx_client_answer a = {0};
    char key[1100];
    int h = load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = read_key(u->url, key, sizeof key)) != RC_OK)
        goto out;
    cx_error_clear();
    int r = cx_client_new(&cl, u, key, NULL);
    if (r == 0)
        r = cx_client_request(cl, "GET", "/v1/info", NULL, 0, NULL, &a);
    if (r < 0) {
        rc = fail(RC_UPSTREAM, "cannot reach %s: %s", u->url, engine_msg(r));
        goto out;
    }
    if (a.status != 200) {
        rc = answer_fail("the key was not accepted", &a);
        goto out;
    }
    cx_error_clear();
    if ((r = cx_upstream_key_set(u->url, key)) < 0) {
        rc = fail(r == CX_EINVAL ? RC_USAGE : RC_STORE, "cannot store the key: %s", engine_msg(r));
        goto out;
    }
    const char *team = jstr(a.json, "team"), *role = jstr(a.json, "role");
    if (c->json) {
        rc = print_json(a.json);
    } else {
        printf("Logged in to ");
        cx_out_text(stdout, u->url, true);
        if (team) {
            printf(" as team ");
            cx_out_text(stdout, team, true);
        }
        if (role) {
            printf(", role ");
            cx_out_text(stdout, role, true);
        }
        printf(".\n");
        rc = RC_OK;
    }
out:
    explicit_bzero(key, sizeof key);
    cx_client_answer_clear(&a);
    cx_client_free(cl);
    cx_upstream_free(u);
    return rc;
}

/* `cortex sync` retries transient failures until its deadline, saying so. */
typedef struct sync_progress {
    ctx *c;
    unsigned attempt;
    uint64_t deadline;
} sync_progress;

static bool sync_retry(void *ud, bool push, int r, long retry_after) {
    sync_progress *p = ud;
    if (r != CX_EIO)
        return false;
    unsigned long d = cx_client_backoff_ms(p->attempt++, 250, 10000, retry_after);
    if (cx_clock_now_ms() + d > p->deadline)
        return false;
    fprintf(stderr, "cortex: %s failed: %s; retrying in %.1f s\n", push ? "push" : "pull",
            cx_error_last(), (double)d / 1000.0);
    cx_clock_sleep_ms(d);
    return true;
}

static void sync_step(void *ud, bool push, const cx_engine_step *st) {
    sync_progress *p = ud;
    p->attempt = 0;
    if (push) {
        fprintf(stderr, "cortex: pushed %zu op%s", st->acked, st->acked == 1 ? "" : "s");
        if (st->rejected)
            fprintf(stderr, ", %zu rejected", st->rejected);
        if (st->blobs)
            fprintf(stderr, ", %zu blob%s uploaded", st->blobs, st->blobs == 1 ? "" : "s");
        fputc('\n', stderr);
        return;
    }
    int64_t cur = 0;
    cx_replica_cursor(p->c->store, &cur);
    fprintf(stderr, "cortex: pulled %zu change%s (at %lld)\n", st->applied,
            st->applied == 1 ? "" : "s", (long long)cur);
}

static uint64_t sync_deadline(void) {
    const char *e = getenv("CORTEX_SYNC_DEADLINE");
    unsigned long s = 60;
    if (e && *e) {
        char *end;
        unsigned long v = strtoul(e, &end, 10);
        if (*end == '\0' && v > 0 && v <= 86400)
            s = v;
    }
    return cx_clock_now_ms() + s * 1000;
}

static int cmd_sync(ctx *c) {
    if (c->a->pos.n)
        return usage_error("sync", "sync takes no arguments");
    int rc, lock_fd = -1;
    if ((rc = open_store(c, true)) != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_client *cl = NULL;
    json_t *state = NULL;
    int h = load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = make_client(u, true, &cl)) != RC_OK)
        goto out;
    cx_error_clear();
    int r = cx_replica_bind_upstream(c->store, u->url);
    if (r < 0) {
        rc = fail(RC_STORE, "cannot record the upstream: %s", engine_msg(r));
        goto out;
    }
    if (cx_sync_lock_try(c->ws->state_dir, &lock_fd) == 0)
        fprintf(stderr, "cortex: another process is syncing this workspace; syncing alongside it\n");
    sync_progress prog = {.c = c, .deadline = sync_deadline()};
    cx_drain_hooks hooks = {.step = sync_step, .retry = sync_retry, .ud = &prog};
    cx_drain_stats ds = {0};
    for (int round = 0; round < 5; round++) {
        if ((r = cx_drain_push(c->store, cl, &hooks, &ds)) != 0) {
            rc = fail(r == CX_EIO || r == CX_EFAIL ? RC_UPSTREAM : RC_STORE, "push failed: %s",
                      engine_msg(r));
            goto out;
        }
        if ((r = cx_drain_pull(c->store, cl, &hooks, &ds)) != 0) {
            rc = fail(r == CX_EIO || r == CX_EFAIL ? RC_UPSTREAM : RC_STORE, "pull failed: %s",
                      engine_msg(r));
            goto out;
        }
        cx_error_clear();
        if ((r = cx_replica_state(c->store, &state)) < 0) {
            rc = fail(RC_STORE, "cannot read the sync state: %s", engine_msg(r));
            goto out;
        }
        if (jint(state, "backlog", 0) == 0)
            break;
        json_decref(state); /* agents wrote meanwhile: push again */
        state = NULL;
    }
    if (!state || jint(state, "backlog", 0) != 0) {
        rc = fail(RC_UPSTREAM, "the outbox kept filling up; run `cortex sync` again");
        goto out;
    }
    fprintf(stderr, "cortex: caught up with %s: pushed %zu, pulled %zu\n", u->url, ds.pushed,
            ds.pulled);
    if (jint(state, "rejected", 0) > 0)
        fprintf(stderr, "cortex: %lld op%s rejected by the core are kept; see `cortex status`\n",
                jint(state, "rejected", 0), jint(state, "rejected", 0) == 1 ? " was" : "s were");
    rc = c->json ? print_json(state) : RC_OK;
out:
    if (lock_fd >= 0)
        close(lock_fd);
    json_decref(state);
    cx_client_free(cl);
    cx_upstream_free(u);
    return rc;
}

/* The client for review commands when the workspace has an upstream (NULL
 * in *out when it has none), or an RC_ error. */
static int review_client(ctx *c, cx_client **out) {
    *out = NULL;
    int rc = find_workspace(c, false);
    if (rc != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    int h = load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return RC_OK;
    rc = make_client(u, true, out);
    cx_upstream_free(u);
    return rc;
}

static int remote_queue(cx_client *cl, json_t **out) {
    cx_client_answer a = {0};
    cx_error_clear();
    int r = cx_client_request(cl, "GET", "/v1/review/queue?limit=500", NULL, 0, NULL, &a);
    if (r < 0)
        return fail(RC_UPSTREAM, "cannot reach the core: %s", engine_msg(r));
    if (a.status != 200 || !json_is_array(json_object_get(a.json, "drafts"))) {
        int rc = answer_fail("cannot list the review queue", &a);
        cx_client_answer_clear(&a);
        return rc;
    }
    json_object_set_new(a.json, "count", json_integer((json_int_t)json_array_size(
                                                json_object_get(a.json, "drafts"))));
    *out = a.json;
    a.json = NULL;
    return RC_OK;
}

static int remote_decide(cx_client *cl, const char *id, const char *decision, const char *note,
                         json_t **out) {
    if (!cx_ulid_valid(id))
        return fail(RC_NONE, "'%s' is not a draft id (a ULID)", id);
    char path[128];
    snprintf(path, sizeof path, "/v1/drafts/%s/decision", id);
    /* a note reaches the core's database: redacted like every stored text */
    char *clean = NULL;
    if (note && cx_redact_text(note, strlen(note), &clean, NULL, NULL) < 0)
        return fail(RC_STORE, "cannot redact the note: %s", cx_error_last());
    json_t *body = json_pack("{s:s, s:s?}", "decision", decision, "note", clean ? clean : note);
    free(clean);
    cx_client_answer a = {0};
    if (!body)
        return oom();
    cx_error_clear();
    int r = cx_client_json(cl, "POST", path, body, &a);
    json_decref(body);
    if (r < 0)
        return fail(RC_UPSTREAM, "cannot reach the core: %s", engine_msg(r));
    if (a.status != 200 || !json_is_object(json_object_get(a.json, "item"))) {
        int rc = answer_fail(id, &a);
        cx_client_answer_clear(&a);
        return rc;
    }
    *out = json_incref(json_object_get(a.json, "item"));
    cx_client_answer_clear(&a);
    return RC_OK;
}

/* The "sync" member of status: upstream, key, and the store's sync state. */
static json_t *sync_status(ctx *c, bool *configured) {
    cx_upstream *u = NULL;
    *configured = false;
    if (cx_upstream_read(c->ws->state_dir, &u) != 0)
        return json_pack("{s:n, s:s}", "upstream", "state", "no upstream configured");
    *configured = true;
    char *key = NULL;
    bool has_key = cx_upstream_key_get(u->url, &key) == 0;
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    json_t *st = NULL;
    if (!c->store || cx_replica_state(c->store, &st) != 0)
        st = json_object();
    if (!st) {
        cx_upstream_free(u);
        return NULL;
    }
    json_object_set_new(st, "upstream", json_string(u->url));
    if (u->ca_file)
        json_object_set_new(st, "ca_file", json_string(u->ca_file));
    json_object_set_new(st, "logged_in", json_boolean(has_key));
    const char *keys[] = {"last_push", "last_pull"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (json_is_integer(v)) {
            char iso[CX_ISO_LEN];
            cx_clock_format((uint64_t)json_integer_value(v), iso);
            json_object_set_new(st, keys[i], json_string(iso));
        }
    }
    long long lp = -1;
    json_t *v = json_object_get(st, "last_pull");
    uint64_t ms;
    if (json_is_string(v) && cx_clock_parse(json_string_value(v), &ms) == 0)
        lp = (long long)ms;
    json_object_set_new(st, "stale", json_boolean(lp < 0 || c->now - (uint64_t)lp > STALE_MS));
    cx_upstream_free(u);
    return st;
}

static void put_sync_status(ctx *c, const json_t *sy, bool configured) {
    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    if (!configured) {
        printf("%ssync%s        no upstream configured\n", lbl, rst);
        return;
    }
    printf("%supstream%s    ", lbl, rst);
    cx_out_text(stdout, jstr(sy, "upstream"), true);
    if (!jtrue(sy, "logged_in"))
        printf(" %s(no key: run `cortex login`)%s", cx_out_sgr(CX_OUT_YELLOW), rst);
    fputc('\n', stdout);
    char rel[64];
    printf("%slast push%s   ", lbl, rst);
    if (jstr(sy, "last_push")) {
        cx_out_reltime(jstr(sy, "last_push"), c->now, rel, sizeof rel);
        printf("%s\n", rel);
    } else {
        printf("never\n");
    }
    printf("%slast pull%s   ", lbl, rst);
    if (jstr(sy, "last_pull")) {
        cx_out_reltime(jstr(sy, "last_pull"), c->now, rel, sizeof rel);
        printf("%s (at %lld)\n", rel, jint(sy, "cursor", 0));
    } else {
        printf("never\n");
    }
    long long backlog = jint(sy, "backlog", 0), rej = jint(sy, "rejected", 0);
    printf("%sbacklog%s     %lld op%s to push\n", lbl, rst, backlog, backlog == 1 ? "" : "s");
    if (rej > 0) {
        printf("%srejected%s    %s%lld op%s rejected by the core%s\n", lbl, rst,
               cx_out_sgr(CX_OUT_RED), rej, rej == 1 ? "" : "s", rst);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(sy, "rejected_ops"), i, o) {
            fputs("            ", stdout);
            cx_out_text(stdout, jstr(o, "item_id"), true);
            fputs(" ", stdout);
            cx_out_text(stdout, jstr(o, "op"), true);
            fputs(": ", stdout);
            cx_out_text(stdout, jstr(o, "reason"), true);
            fputc('\n', stdout);
        }
    }
    if (jstr(sy, "last_error")) {
        printf("%slast error%s  ", lbl, rst);
        cx_out_text(stdout, jstr(sy, "last_error"), true);
        fputc('\n', stdout);
    }
    if (jtrue(sy, "stale"))
        printf("%swarning: the cache is stale (not pulled in the last hour); run `cortex sync`%s\n",
               cx_out_sgr(CX_OUT_YELLOW), rst);
}

static int review_list(ctx *c) {
    json_t *res = NULL;
    cx_client *cl = NULL;
    int rc;
    if ((rc = review_client(c, &cl)) != RC_OK)
        return rc;
    if (cl) {
        rc = remote_queue(cl, &res);
        cx_client_free(cl);
        if (rc != RC_OK)
            return rc;
    } else {
        if ((rc = open_store(c, false)) != RC_OK)
            return rc;
        cx_error_clear();
        int r = cx_store_review_list(c->store, &res);
        if (r < 0)
            return fail(RC_STORE, "cannot list the review queue: %s", engine_msg(r));
    }
    if (c->json) {
        rc = print_json(res);
        json_decref(res);
        return rc;
    }
    json_t *drafts = json_object_get(res, "drafts");
    size_t n = json_array_size(drafts);
    if (n == 0) {
        printf("No drafts awaiting review.\n");
        json_decref(res);
        return RC_OK;
    }
    /* ID  STATUS  AGE  SUBCORTEX  TITLE, the title taking what is left */
    size_t w_status = 6, w_age = 3, w_sub = 9;
    size_t i;
    json_t *d;
    char rel[64];
    json_array_foreach(drafts, i, d) {
        size_t k;
        k = cx_out_columns(jstr(d, "status"));
        w_status = k > w_status ? k : w_status;
        cx_out_reltime(jstr(d, "updated_at") ? jstr(d, "updated_at") : jstr(d, "created_at"), c->now,
                       rel, sizeof rel);
        k = cx_out_columns(rel);
        w_age = k > w_age ? k : w_age;
        k = cx_out_columns(jstr(d, "subcortex"));
        w_sub = k > w_sub ? k : w_sub;
    }
    if (w_sub > 24)
        w_sub = 24;
    if (w_status > 20)
        w_status = 20;
    int used = CX_ULID_LEN + 2 + (int)w_status + 2 + (int)w_age + 2 + (int)w_sub + 2;
    size_t w_title = cx_out_width() - used > 10 ? (size_t)(cx_out_width() - used) : 10;

    printf("%s", cx_out_sgr(CX_OUT_BOLD));
    printf("%-*s  ", CX_ULID_LEN, "ID");
    cx_out_cell(stdout, "STATUS", w_status, true);
    fputs("  ", stdout);
    cx_out_cell(stdout, "AGE", w_age, true);
    fputs("  ", stdout);
    cx_out_cell(stdout, "SUBCORTEX", w_sub, true);
    fputs("  TITLE", stdout);
    printf("%s\n", cx_out_sgr(CX_OUT_RESET));
    json_array_foreach(drafts, i, d) {
        const char *status = jstr(d, "status");
        cx_out_reltime(jstr(d, "updated_at") ? jstr(d, "updated_at") : jstr(d, "created_at"), c->now,
                       rel, sizeof rel);
        cx_out_cell(stdout, jstr(d, "id"), CX_ULID_LEN, true);
        fputs("  ", stdout);
        bool changes = status && strcmp(status, "pending") != 0;
        fputs(cx_out_sgr(changes ? CX_OUT_YELLOW : CX_OUT_RESET), stdout);
        cx_out_cell(stdout, status, w_status, true);
        fputs(cx_out_sgr(CX_OUT_RESET), stdout);
        fputs("  ", stdout);
        cx_out_cell(stdout, rel, w_age, true);
        fputs("  ", stdout);
        cx_out_cell(stdout, jstr(d, "subcortex"), w_sub, true);
        fputs("  ", stdout);
        cx_out_cell(stdout, jstr(d, "title"), w_title, false);
        fputc('\n', stdout);
    }
    printf("\n%zu draft%s awaiting review. Approve with 'cortex review approve ID'.\n", n,
           n == 1 ? "" : "s");
    json_decref(res);
    return RC_OK;
}

static int cmd_review(ctx *c) {
    const args *a = c->a;
    json_t *res = NULL;
    int rc;

    if (a->pos.n == 0)
        return usage_error("review", "review needs an action: list, approve, reject or request-changes");
    const char *action = a->pos.v[0];
    const char *decision = NULL, *done = NULL, *verb = NULL;
    if (strcmp(action, "list") == 0) {
        if (a->pos.n > 1)
            return usage_error("review", "review list takes no arguments");
        if (a->seen[O_NOTE] || a->seen[O_REASON])
            return usage_error("review", "review list takes no --note or --reason");
        return review_list(c);
    } else if (strcmp(action, "approve") == 0) {
        decision = "approve", verb = "approve", done = "Approved";
    } else if (strcmp(action, "reject") == 0) {
        decision = "reject", verb = "reject", done = "Rejected";
    } else if (strcmp(action, "request-changes") == 0) {
        decision = "changes_requested", verb = "request changes on", done = "Requested changes on";
    } else {
        return usage_error("review", "unknown review action '%s'; use list, approve, reject or request-changes",
                           action);
    }
    if (a->pos.n != 2)
        return usage_error("review", "review %s needs exactly one draft ID", action);
    const char *reason;
    if (strcmp(action, "approve") == 0) {
        if (a->seen[O_REASON])
            return usage_error("review", "review approve takes --note, not --reason");
        reason = a->val[O_NOTE];
    } else {
        if (a->seen[O_NOTE])
            return usage_error("review", "review %s takes --reason, not --note", action);
        reason = a->val[O_REASON];
        if (!reason || blank(reason))
            return usage_error("review", "review %s needs --reason TEXT: say why, for the author", action);
    }
    const char *id = a->pos.v[1];
    cx_client *cl = NULL;
    if ((rc = review_client(c, &cl)) != RC_OK)
        return rc;
    if (cl) {
        rc = remote_decide(cl, id, decision, reason, &res);
        cx_client_free(cl);
        if (rc != RC_OK)
            return rc;
        goto decided;
    }
    if ((rc = open_store(c, false)) != RC_OK)
        return rc;
    cx_error_clear();
    int r = cx_store_review(c->store, &c->who, id, decision, reason, &res);
    if (r == CX_ENOTFOUND)
        return fail(RC_NONE, "no item '%s' in %s", id, c->ws->root);
    if (r == CX_ECONFLICT)
        return fail(RC_NONE, "cannot %s %s: %s", verb, id, engine_msg(r));
    if (r == CX_EINVAL || r == CX_ELIMIT)
        return usage_error("review", "%s", engine_msg(r));
    if (r < 0)
        return fail(RC_STORE, "cannot %s %s: %s", verb, id, engine_msg(r));
decided:
    if (c->json) {
        rc = print_json(res);
    } else {
        printf("%s ", done);
        cx_out_text(stdout, jstr(res, "id") ? jstr(res, "id") : id, true);
        if (strcmp(decision, "approve") == 0)
            printf(": it is now a canon thread");
        printf(".\n");
        rc = RC_OK;
    }
    json_decref(res);
    return rc;
}

static json_t *daemon_json(const ctx *c);
static void put_daemon(const ctx *c);

static int cmd_status(ctx *c) {
    json_t *st = NULL;
    int rc;
    if ((rc = find_workspace(c, false)) != RC_OK)
        return rc;
    int h = has_store(c);
    if (h < 0)
        return -h;
    if (h == 1) {
        int r = cx_session_add(c->session, CX_SESSION_STORE);
        if (r < 0)
            return fail(RC_STORE, "cannot open the store in %s: %s", c->ws->state_dir, engine_msg(r));
        c->store = cx_session_store(c->session);
        cx_error_clear();
        r = cx_store_status(c->store, &st);
        if (r < 0)
            return fail(RC_STORE, "cannot read the store's status: %s", engine_msg(r));
    }
    if (c->json) {
        json_t *out = st ? st : json_object();
        st = NULL;
        bool configured;
        json_t *sync = sync_status(c, &configured);
        if (!out || !sync || json_object_set_new(out, "workspace", json_string(c->ws->root)) ||
            json_object_set_new(out, "state_dir", json_string(c->ws->state_dir)) ||
            json_object_set_new(out, "initialized", json_boolean(h == 1)) ||
            json_object_set_new(out, "daemon", daemon_json(c)) ||
            json_object_set_new(out, "sync", sync)) {
            json_decref(out);
            return oom();
        }
        rc = print_json(out);
        json_decref(out);
        return rc;
    }

    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    printf("%sworkspace%s   ", lbl, rst);
    cx_out_text(stdout, c->ws->root, true);
    printf("%s\n", c->ws->git_dir ? " (git)" : "");
    printf("%sstate%s       ", lbl, rst);
    cx_out_text(stdout, c->ws->state_dir, true);
    fputc('\n', stdout);
    put_daemon(c);
    if (!st) {
        printf("%smemory%s      none yet; record something with `cortex observe` or run cortexd\n", lbl,
               rst);
    } else {
        char db[32], blobs[32];
        cx_out_size((uint64_t)jint(st, "db_bytes", 0), db, sizeof db);
        cx_out_size((uint64_t)jint(st, "blob_bytes", 0), blobs, sizeof blobs);
        printf("%sstore%s       %s database, %s of blobs", lbl, rst, db, blobs);
        if (jint(st, "schema_version", -1) >= 0)
            printf(" (schema %lld", jint(st, "schema_version", 0));
        if (jstr(st, "sqlite_version")) {
            fputs(jint(st, "schema_version", -1) >= 0 ? ", SQLite " : " (SQLite ", stdout);
            cx_out_text(stdout, jstr(st, "sqlite_version"), true);
        }
        if (jint(st, "schema_version", -1) >= 0 || jstr(st, "sqlite_version"))
            fputc(')', stdout);
        fputc('\n', stdout);

        json_t *items = json_object_get(st, "items");
        static const char *const order[][3] = {
            {"observation", "observation", "observations"}, {"draft", "draft", "drafts"},
            {"thread", "thread", "threads"},                {"artifact", "artifact", "artifacts"},
            {"comment", "comment", "comments"},
        };
        long long total = jint(items, "total", 0);
        printf("%sitems%s       %lld", lbl, rst, total);
        bool first = true;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            long long k = jint(items, order[i][0], 0);
            if (k == 0)
                continue;
            printf("%s%lld %s", first ? ": " : ", ", k, k == 1 ? order[i][1] : order[i][2]);
            first = false;
        }
        fputc('\n', stdout);
        long long pending = jint(st, "drafts_pending", 0);
        printf("%sreview%s      %lld draft%s awaiting review\n", lbl, rst, pending, pending == 1 ? "" : "s");
        json_t *ob = json_object_get(st, "outbox");
        long long op = jint(ob, "pending", 0), orj = jint(ob, "rejected", 0);
        printf("%soutbox%s      %lld change%s waiting to be pushed", lbl, rst, op, op == 1 ? "" : "s");
        if (orj > 0)
            printf(", %lld rejected by the core", orj);
        fputc('\n', stdout);
    }
    bool configured;
    json_t *sy = sync_status(c, &configured);
    put_sync_status(c, sy, configured);
    json_decref(sy);
    json_decref(st);
    return RC_OK;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

/* A progress bar on stderr (only on a terminal; otherwise a line per 10%). */
static int reindex_progress(void *ud, size_t done, size_t total) {
    const char *what = ud;
    static int last = -1;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (isatty(STDERR_FILENO)) {
        char bar[41];
        int fill = pct * 40 / 100;
        for (int i = 0; i < 40; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[40] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%% %zu/%zu", what, bar, pct, done, total);
        if (done >= total)
            fputc('\n', stderr);
    } else if (pct / 10 != last / 10 || done >= total) {
        fprintf(stderr, "%s: %zu/%zu (%d%%)\n", what, done, total, pct);
    }
    last = pct;
    return interrupted ? 1 : 0;
}

static int cmd_reindex(ctx *c) {
    int rc = open_store(c, false);
    if (rc != RC_OK)
        return rc;
    cx_config cfg;
    cx_embedder *e = NULL;
    if (cx_config_load(c->ws, &cfg) != 0)
        return fail(RC_STORE, "%s", cx_error_last());
    int r = cx_config_embedder(&cfg, &e, false);
    cx_config_clear(&cfg);
    if (r != 0)
        return fail(RC_STORE, "%s", cx_error_last());
    signal(SIGINT, on_interrupt);
    r = cx_store_reindex(c->store, NULL, reindex_progress, (void *)"built-in vectors");
    if (r == 0 && e) {
        r = cx_store_set_embedder(c->store, e);
        if (r == 0)
            r = cx_store_reindex(c->store, e, reindex_progress, (void *)cx_embed_model_id(e));
        if (r == CX_EIO || r == CX_EBUSY) {
            rc = fail(RC_UPSTREAM, "the embedding service failed: %s", cx_error_last());
            goto out;
        }
    }
    if (r == CX_ECANCELED) {
        rc = fail(RC_STORE, "stopped; run cortex reindex again to finish");
        goto out;
    }
    if (r != 0) {
        rc = fail(RC_STORE, "reindex failed: %s", cx_error_last());
        goto out;
    }
    if (c->json) {
        json_t *o = json_pack("{s:b, s:s}", "reindexed", 1, "model",
                              e ? cx_embed_model_id(e) : "builtin");
        rc = print_json(o);
        json_decref(o);
    } else {
        printf("Reindexed%s%s.\n", e ? " with " : "", e ? cx_embed_model_id(e) : "");
    }
out:
    cx_store_set_embedder(c->store, NULL);
    cx_embed_free(e);
    return rc;
}

/* ---- start, stop, doctor, hook, scan ------------------------------------ */

/* The daemon's state as JSON for status and start. */
static json_t *daemon_json(const ctx *c) {
    cx_daemon_info d;
    cx_daemon_status(c->ws->state_dir, &d);
    char *log = cx_fs_join(c->ws->state_dir, CX_DAEMON_LOG);
    json_t *o = json_pack("{s:b, s:s?}", "running", d.running, "log", log);
    free(log);
    if (o && d.running && d.pid > 0)
        json_object_set_new(o, "pid", json_integer(d.pid));
    return o;
}

static void put_daemon(const ctx *c) {
    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    cx_daemon_info d;
    cx_daemon_status(c->ws->state_dir, &d);
    printf("%sdaemon%s      ", lbl, rst);
    if (d.running) {
        printf("running");
        if (d.pid > 0)
            printf(", pid %ld", (long)d.pid);
        printf("; log .cortex/%s\n", CX_DAEMON_LOG);
    } else {
        printf("not running; `cortex start` keeps sync going in the background\n");
    }
}

/* Writes the upstream to the workspace config and to the sync engine's
 * .cortex/upstream (the config is the one people edit; the engine reads the
 * other). `ca` may be NULL. */
static int set_upstream(ctx *c, const char *url, const char *ca) {
    const char *keys[] = {"upstream.url", "upstream.caFile"};
    const char *vals[] = {url, ca};
    cx_error_clear();
    if (cx_config_set(c->ws, keys, vals, 2) < 0)
        return fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
    cx_upstream u = {.url = (char *)url, .ca_file = (char *)ca};
    cx_error_clear();
    int r = cx_upstream_write(c->ws->state_dir, &u);
    if (r < 0)
        return fail(RC_STORE, "cannot write the upstream: %s", engine_msg(r));
    return RC_OK;
}

static bool same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Brings .cortex/upstream in line with upstream.url of the config (a config
 * edited by hand, or copied from a teammate). */
static int apply_config_upstream(ctx *c, const cx_config *cfg) {
    if (!cfg->upstream_url || !*cfg->upstream_url)
        return RC_OK;
    cx_error_clear();
    if (cx_upstream_check_url(cfg->upstream_url) < 0)
        return fail(RC_STORE, "workspace config: upstream.url: %s", cx_error_last());
    char *ca = cfg->upstream_ca_file && *cfg->upstream_ca_file ? cfg->upstream_ca_file : NULL;
    cx_upstream *u = NULL;
    int r = cx_upstream_read(c->ws->state_dir, &u);
    bool same = r == 0 && same_str(u->url, cfg->upstream_url) && same_str(u->ca_file, ca);
    cx_upstream_free(u);
    if (same)
        return RC_OK;
    cx_upstream nu = {.url = cfg->upstream_url, .ca_file = ca};
    cx_error_clear();
    if ((r = cx_upstream_write(c->ws->state_dir, &nu)) < 0)
        return fail(RC_STORE, "cannot write the upstream: %s", engine_msg(r));
    return RC_OK;
}

/* Adds the agents just wired to workspace.agents (a comma list, sorted). */
static int record_agents(ctx *c, const cx_config *cfg, const bool wired[CX_AGENT_COUNT]) {
    bool have[CX_AGENT_COUNT];
    cx_agent_list_parse(cfg->agents, have);
    bool add = false;
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        add |= wired[k] && !have[k];
        have[k] |= wired[k];
    }
    if (!add)
        return RC_OK;
    char list[128] = "";
    for (int k = 0; k < CX_AGENT_COUNT; k++)
        if (have[k])
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "",
                     cx_agent_name((cx_agent_kind)k));
    const char *key = "workspace.agents", *val = list;
    cx_error_clear();
    if (cx_config_set(c->ws, &key, &val, 1) < 0)
        return fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
    return RC_OK;
}

/* Serialises `cortex start` in one workspace (config writes take libgit2's
 * config.lock and fail rather than wait): a flock on .cortex/start.lock,
 * waited for up to 30 s. The fd (close it to release), or -1 (reported). */
static int start_lock(const ctx *c) {
    int fd = -1;
    cx_error_clear();
    int r = cx_fs_lock(c->ws->state_dir, "start.lock", 30000, &fd);
    if (r == 1)
        return fd;
    if (r == 0)
        fail(RC_STORE, "another `cortex start` holds %s/start.lock; try again when it is done",
             c->ws->state_dir);
    else
        fail(RC_STORE, "%s", cx_error_last());
    return -1;
}

static int cmd_start(ctx *c) {
    const args *a = c->a;
    int rc;
    if (a->pos.n > 0)
        return usage_error("start", "start takes no operands; name agents with --agent");
    if (a->seen[O_CA_FILE] && !a->seen[O_UPSTREAM])
        return usage_error("start", "--ca-file goes with --upstream URL");
    cx_agent_kind wanted[CX_AGENT_COUNT];
    bool want[CX_AGENT_COUNT] = {0};
    size_t nk = 0;
    for (size_t i = 0; i < a->agents.n; i++) {
        cx_agent_kind k;
        cx_error_clear();
        if (cx_agent_parse(a->agents.v[i], &k) < 0)
            return usage_error("start", "%s", cx_error_last());
        if (!want[k])
            wanted[nk++] = k;
        want[k] = true;
    }
    char *ca = NULL;
    if (a->seen[O_UPSTREAM]) {
        cx_error_clear();
        if (cx_upstream_check_url(a->val[O_UPSTREAM]) < 0)
            return usage_error("start", "--upstream: %s", cx_error_last());
        if (a->val[O_CA_FILE] && !(ca = realpath(a->val[O_CA_FILE], NULL)))
            return usage_error("start", "cannot use --ca-file %s: %s", a->val[O_CA_FILE],
                               strerror(errno));
    }
    char *cortexd = NULL, *self = NULL;
    json_t *report = json_object(), *agents = json_array(), *cfg_set = json_array();
    cx_config cfg = {0};
    bool cfg_loaded = false;
    int lock_fd = -1;
    if (!report || !agents || !cfg_set) {
        rc = oom();
        goto out;
    }
    json_object_set(report, "agents", agents);
    json_object_set(report, "config_set", cfg_set);

    /* workspace and its state directory */
    if ((rc = find_workspace(c, true)) != RC_OK)
        goto out;
    if ((lock_fd = start_lock(c)) < 0) {
        rc = RC_STORE;
        goto out;
    }
    json_object_set_new(report, "workspace", json_string(c->ws->root));
    json_object_set_new(report, "state_dir", json_string(c->ws->state_dir));
    json_object_set_new(report, "git", json_boolean(c->ws->git_dir != NULL));

    /* config: fill in what is missing, never overwrite what is there */
    cx_error_clear();
    if (cx_config_load(c->ws, &cfg) < 0) {
        rc = fail(RC_STORE, "%s; fix .cortex/config (git-config format) and run again",
                  cx_error_last());
        goto out;
    }
    cfg_loaded = true;
    char derived[80];
    cx_config_derive_subcortex(c->ws->name, derived, sizeof derived);
    const char *keys[3], *vals[3];
    size_t nset = 0;
    char interval[16];
    snprintf(interval, sizeof interval, "%lu", 10000UL);
    if (!cfg.subcortex) {
        keys[nset] = "workspace.subcortex";
        vals[nset++] = derived;
    }
    if (!cfg.embed_provider_set) {
        keys[nset] = "embed.provider";
        vals[nset++] = "builtin";
    }
    if (!cfg.sync_interval_ms) {
        keys[nset] = "sync.intervalMs";
        vals[nset++] = interval;
    }
    if (nset > 0) {
        cx_error_clear();
        if (cx_config_set(c->ws, keys, vals, nset) < 0) {
            rc = fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
            goto out;
        }
        for (size_t i = 0; i < nset; i++)
            json_array_append_new(cfg_set, json_pack("{s:s, s:s}", "key", keys[i], "value", vals[i]));
    }
    if (a->seen[O_UPSTREAM] &&
        (!same_str(cfg.upstream_url, a->val[O_UPSTREAM]) || !same_str(cfg.upstream_ca_file, ca))) {
        if ((rc = set_upstream(c, a->val[O_UPSTREAM], ca)) != RC_OK)
            goto out;
        json_array_append_new(cfg_set, json_pack("{s:s, s:s}", "key", "upstream.url", "value",
                                                 a->val[O_UPSTREAM]));
    } else if ((rc = apply_config_upstream(c, &cfg)) != RC_OK) {
        goto out;
    }
    cx_upstream *up = NULL;
    if (cx_upstream_read(c->ws->state_dir, &up) == 0)
        json_object_set_new(report, "upstream", json_string(up->url));
    cx_upstream_free(up);
    cx_error_clear();

    /* the store */
    if ((rc = open_store(c, true)) != RC_OK)
        goto out;

    /* programs: agents and hooks must name absolute paths that work */
    cx_error_clear();
    cortexd = cx_daemon_find_program("cortexd", "CORTEX_CORTEXD");
    self = cx_daemon_find_program("cortex", "CORTEX_CLI");
    if (!cortexd) {
        rc = fail(RC_STORE, "%s; install cortexd or set $CORTEX_CORTEXD", cx_error_last());
        goto out;
    }
    json_object_set_new(report, "cortexd", json_string(cortexd));

    /* agents */
    bool wired[CX_AGENT_COUNT] = {0};
    for (size_t i = 0; i < nk; i++) {
        cx_agent_wiring w = {.root = c->ws->root, .cortexd = cortexd,
                             .cortex = self ? self : "cortex"};
        json_t *one = NULL;
        cx_error_clear();
        int r = cx_agent_wire(wanted[i], &w, &one);
        if (r < 0) {
            rc = fail(r == CX_EINVAL ? RC_NONE : RC_STORE, "%s: %s", cx_agent_name(wanted[i]),
                      cx_error_last());
            goto out;
        }
        json_array_append_new(agents, one);
        wired[wanted[i]] = true;
    }
    if ((rc = record_agents(c, &cfg, wired)) != RC_OK)
        goto out;

    /* the background daemon */
    if (!a->seen[O_NO_DAEMON]) {
        pid_t pid = 0;
        bool already = false;
        cx_error_clear();
        if (cx_daemon_start(c->ws, cortexd, 10000, &pid, &already) < 0) {
            rc = fail(RC_STORE, "cannot start the background cortexd: %s", cx_error_last());
            goto out;
        }
        json_object_set_new(report, "daemon",
                            json_pack("{s:s, s:I}", "action", already ? "running" : "started",
                                      "pid", (json_int_t)pid));
    }

    if (c->json) {
        rc = print_json(report);
        goto out;
    }
    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    printf("%sworkspace%s   ", lbl, rst);
    cx_out_text(stdout, c->ws->root, true);
    printf("%s\n", c->ws->git_dir ? " (git)" : " (not in git: notes get no provenance)");
    printf("%sstate%s       .cortex/ (%s)\n", lbl, rst,
           c->ws->git_dir ? "kept out of git in .git/info/exclude" : "local");
    printf("%sconfig%s      .cortex/config", lbl, rst);
    if (json_array_size(cfg_set) > 0) {
        printf(": set");
        size_t i;
        json_t *v;
        json_array_foreach(cfg_set, i, v) {
            printf("%s %s = ", i ? "," : "", jstr(v, "key"));
            cx_out_text(stdout, jstr(v, "value"), true);
        }
        fputc('\n', stdout);
    } else {
        printf(" unchanged\n");
    }
    const char *upurl = jstr(report, "upstream");
    printf("%supstream%s    ", lbl, rst);
    if (upurl) {
        cx_out_text(stdout, upurl, true);
        printf("\n");
    } else {
        printf("none: memory stays on this machine (add one with --upstream URL)\n");
    }
    json_t *dm = json_object_get(report, "daemon");
    if (dm)
        printf("%sdaemon%s      %s, pid %lld; log .cortex/%s\n", lbl, rst,
               strcmp(jstr(dm, "action"), "started") == 0 ? "started" : "already running",
               jint(dm, "pid", 0), CX_DAEMON_LOG);
    else
        printf("%sdaemon%s      not started (--no-daemon)\n", lbl, rst);
    size_t i;
    json_t *ag;
    json_array_foreach(agents, i, ag) {
        printf("%sagent%s       %s:", lbl, rst, jstr(ag, "agent"));
        size_t j;
        json_t *f;
        json_array_foreach(json_object_get(ag, "files"), j, f)
            printf("%s %s %s", j ? "," : "", jstr(f, "path"), jstr(f, "action"));
        fputc('\n', stdout);
    }
    bool have[CX_AGENT_COUNT];
    size_t nhave = 0;
    cx_agent_list_parse(cfg.agents, have);
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        have[k] |= want[k];
        nhave += have[k];
    }
    if (nhave < CX_AGENT_COUNT) {
        printf("\nConnect %sagents:\n", nhave ? "more " : "");
        for (int k = 0; k < CX_AGENT_COUNT; k++)
            if (!have[k])
                printf("  cortex start --agent %s\n", cx_agent_name((cx_agent_kind)k));
        printf("or by hand, e.g.: claude mcp add cortex -- %s --workspace %s\n", cortexd,
               c->ws->root);
    }
    printf("\nCheck everything with `cortex doctor`; stop with `cortex stop`.\n");
out:
    if (lock_fd >= 0)
        close(lock_fd);
    if (cfg_loaded)
        cx_config_clear(&cfg);
    json_decref(report);
    json_decref(agents);
    json_decref(cfg_set);
    free(cortexd);
    free(self);
    free(ca);
    return rc;
}

static int cmd_stop(ctx *c) {
    int rc;
    if (c->a->pos.n > 0)
        return usage_error("stop", "stop takes no operands");
    if ((rc = find_workspace(c, false)) != RC_OK)
        return rc;
    pid_t pid = 0;
    bool was = false;
    cx_error_clear();
    if (cx_daemon_stop(c->ws->state_dir, 10000, &pid, &was) < 0)
        return fail(RC_STORE, "cannot stop the background cortexd: %s", cx_error_last());
    if (c->json) {
        json_t *o = json_pack("{s:b, s:I}", "stopped", was, "pid", (json_int_t)pid);
        rc = o ? print_json(o) : oom();
        json_decref(o);
        return rc;
    }
    if (was)
        printf("Stopped the background cortexd (pid %ld).\n", (long)pid);
    else
        printf("No background cortexd was running for %s.\n", c->ws->root);
    return RC_OK;
}

static int cmd_doctor(ctx *c) {
    if (c->a->pos.n > 0)
        return usage_error("doctor", "doctor takes no operands");
    char *self = cx_daemon_find_program("cortex", "CORTEX_CLI");
    char *cortexd = cx_daemon_find_program("cortexd", "CORTEX_CORTEXD");
    cx_error_clear();
    cx_doctor_opts o = {.workspace = c->a->val[O_WORKSPACE], .cortex = self, .cortexd = cortexd};
    json_t *rep = NULL;
    int r = cx_doctor_run(&o, &rep);
    free(self);
    free(cortexd);
    if (r < 0)
        return oom();
    bool ok = jtrue(rep, "ok");
    int rc = RC_OK;
    if (c->json) {
        rc = print_json(rep);
    } else {
        size_t i;
        json_t *ch;
        size_t nfail = 0, nwarn = 0;
        json_array_foreach(json_object_get(rep, "checks"), i, ch) {
            const char *st = jstr(ch, "status");
            bool is_ok = strcmp(st, "ok") == 0, is_warn = strcmp(st, "warn") == 0;
            nfail += !is_ok && !is_warn;
            nwarn += is_warn;
            printf("%s%-4s%s %-14s ", cx_out_sgr(is_ok ? CX_OUT_GREEN : is_warn ? CX_OUT_YELLOW : CX_OUT_RED),
                   is_ok ? "ok" : is_warn ? "warn" : "FAIL", cx_out_sgr(CX_OUT_RESET), jstr(ch, "name"));
            cx_out_text(stdout, jstr(ch, "detail") ? jstr(ch, "detail") : "", false);
            fputc('\n', stdout);
            if (jstr(ch, "fix")) {
                printf("     %-14s fix: ", "");
                cx_out_text(stdout, jstr(ch, "fix"), false);
                fputc('\n', stdout);
            }
        }
        if (nfail)
            printf("\n%zu check%s failed, %zu warning%s.\n", nfail, nfail == 1 ? "" : "s", nwarn,
                   nwarn == 1 ? "" : "s");
        else
            printf("\nAll checks passed%s.\n", nwarn ? " (with warnings)" : "");
    }
    json_decref(rep);
    if (rc != RC_OK)
        return rc;
    return ok ? RC_OK : RC_NONE;
}

static int cmd_hook(ctx *c) {
    const strlist *pos = &c->a->pos;
    if (pos->n != 1)
        return usage_error("hook", "hook needs exactly one event: session-start or stop");
    cx_hook_opts o = {.workspace = c->a->val[O_WORKSPACE], .author = c->author};
    if (c->a->val[O_MAX_TOKENS]) {
        char *end = NULL;
        errno = 0;
        long v = strtol(c->a->val[O_MAX_TOKENS], &end, 10);
        if (errno || !end || *end || v < 50 || v > 100000)
            return usage_error("hook", "--max-tokens takes a number from 50 to 100000");
        o.max_tokens = (size_t)v;
    }
    fflush(stdout);
    return cx_hook_run(pos->v[0], &o, stdin, stdout, stderr);
}

/* Line and column (1-based, in bytes) of offset `off` in text. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col) {
    size_t l = 1, start = 0;
    for (size_t i = 0; i < off; i++)
        if (text[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = off - start + 1;
}

static int scan_one(ctx *c, const char *path, json_t *files, size_t *total) {
    char *data = NULL;
    size_t len = 0;
    cx_error_clear();
    int r;
    if (strcmp(path, "-") == 0) {
        r = read_stdin("text", "scan", &data) == RC_OK ? 0 : CX_EIO;
        len = data ? strlen(data) : 0;
        if (r)
            return RC_STORE;
    } else if ((r = cx_fs_read_file(path, CX_STORE_MAX_BLOB, &data, &len)) < 0) {
        return fail(RC_STORE, "cannot read %s: %s", path, engine_msg(r));
    }
    json_t *findings = json_array();
    json_t *entry = json_pack("{s:s, s:o}", "path", path, "findings", findings);
    if (!entry) {
        free(data);
        return oom();
    }
    json_array_append_new(files, entry);
    const char *cred = cx_redact_credential_file(strcmp(path, "-") ? path : NULL, data, len);
    if (cred) {
        json_object_set_new(entry, "credential_file", json_string(cred));
        (*total)++;
        if (!c->json)
            printf("%s: %s (never stored by Cortex)\n", path, cred);
    }
    if (cx_redact_is_text(data, len)) {
        cx_redact_match *m = NULL;
        size_t n = 0;
        if ((r = cx_redact_find(data, len, &m, &n)) < 0) {
            free(data);
            return fail(RC_STORE, "cannot scan %s: %s", path, engine_msg(r));
        }
        for (size_t i = 0; i < n; i++) {
            size_t line, col;
            line_col(data, m[i].start, &line, &col);
            const char *rule = cx_redact_rule_id(m[i].rule);
            json_array_append_new(findings, json_pack("{s:I, s:I, s:s}", "line", (json_int_t)line,
                                                      "column", (json_int_t)col, "rule", rule));
            if (!c->json)
                printf("%s:%zu:%zu: %s (%s)\n", path, line, col, rule,
                       cx_redact_rule_description(m[i].rule));
        }
        *total += n;
        free(m);
    }
    free(data);
    return RC_OK;
}

static int cmd_scan(ctx *c) {
    const strlist *pos = &c->a->pos;
    if (pos->n == 0)
        return usage_error("scan", "scan needs at least one FILE (\"-\" for stdin)");
    cx_error_clear();
    if (cx_redact_init() < 0)
        return fail(RC_STORE, "the redaction rules do not compile: %s", cx_error_last());
    json_t *files = json_array();
    if (!files)
        return oom();
    size_t total = 0;
    int rc = RC_OK;
    for (size_t i = 0; i < pos->n; i++) {
        int r = scan_one(c, pos->v[i], files, &total);
        if (r != RC_OK)
            rc = r;
    }
    if (c->json) {
        json_t *o = json_pack("{s:O, s:I}", "files", files, "total", (json_int_t)total);
        int pr = o ? print_json(o) : oom();
        json_decref(o);
        if (pr != RC_OK)
            rc = pr;
    } else if (rc == RC_OK) {
        if (total)
            printf("%zu secret%s found; Cortex stores such text only redacted.\n", total,
                   total == 1 ? "" : "s");
        else
            printf("No secrets found in %zu file%s.\n", pos->n, pos->n == 1 ? "" : "s");
    }
    json_decref(files);
    if (rc != RC_OK)
        return rc;
    return total ? RC_NONE : RC_OK;
}

static int cmd_help(ctx *c);

static const command commands[] = {
    {"search", BIT(O_KIND) | BIT(O_STATUS) | BIT(O_SUBCORTEX) | BIT(O_TAG) | BIT(O_LIMIT) | BIT(O_MODE),
     cmd_search, help_search},
    {"show", BIT(O_CONTENT), cmd_show, help_show},
    {"observe", BIT(O_TITLE) | BIT(O_TAG) | BIT(O_SUBCORTEX) | BIT(O_FILE) | BIT(O_PRIVATE), cmd_observe,
     help_observe},
    {"draft", BIT(O_TITLE) | BIT(O_TAG) | BIT(O_SUBCORTEX) | BIT(O_FILE) | BIT(O_EVIDENCE), cmd_draft,
     help_draft},
    {"review", BIT(O_NOTE) | BIT(O_REASON), cmd_review, help_review},
    {"start", BIT(O_AGENT) | BIT(O_UPSTREAM) | BIT(O_CA_FILE) | BIT(O_NO_DAEMON), cmd_start, help_start},
    {"stop", 0, cmd_stop, help_stop},
    {"status", 0, cmd_status, help_status},
    {"doctor", 0, cmd_doctor, help_doctor},
    {"remote", BIT(O_CA_FILE), cmd_remote, help_remote},
    {"login", 0, cmd_login, help_login},
    {"sync", 0, cmd_sync, help_sync},
    {"reindex", 0, cmd_reindex, help_reindex},
    {"scan", 0, cmd_scan, help_scan},
    {"hook", BIT(O_MAX_TOKENS), cmd_hook, help_hook},
    {"help", 0, cmd_help, help_help},
};

static const command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(ctx *c) {
    const strlist *pos = &c->a->pos;
    if (pos->n == 0) {
        fputs(help_main, stdout);
        return RC_OK;
    }
    if (pos->n > 1)
        return usage_error("help", "help takes at most one COMMAND");
    const command *cmd = find_command(pos->v[0]);
    if (!cmd)
        return usage_error(NULL, "unknown command '%s'", pos->v[0]);
    fputs(cmd->help, stdout);
    return RC_OK;
}

/* ---- command line ------------------------------------------------------ */

static void list_push(strlist *l, const char *s) {
    l->v[l->n++] = s; /* every list has room for argc entries */
}

/* Reads options and operands anywhere on the line ("--" ends options). The
 * first operand is the command. Whether an option applies to the command
 * is checked afterwards, so global options may come before or after it. */
static int parse_args(int argc, char **argv, args *a) {
    bool options = true;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0) {
            options = false;
            continue;
        }
        if (!options || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (!a->command)
                a->command = arg;
            else
                list_push(&a->pos, arg);
            continue;
        }
        int id = -1;
        const char *value = NULL, *name = arg;
        size_t name_len;
        if (arg[1] == '-') {
            const char *eq = strchr(arg + 2, '=');
            name_len = eq ? (size_t)(eq - arg) : strlen(arg);
            for (int k = 0; k < O_COUNT; k++)
                if (strlen(optdefs[k].name) == name_len - 2 && strncmp(arg + 2, optdefs[k].name, name_len - 2) == 0)
                    id = k;
            if (eq)
                value = eq + 1;
        } else {
            name_len = strlen(arg);
            if (name_len == 2)
                for (int k = 0; k < O_COUNT; k++)
                    if (optdefs[k].short_name && optdefs[k].short_name == arg[1])
                        id = k;
        }
        if (id < 0)
            return usage_error(a->command && find_command(a->command) ? a->command : NULL,
                               "unknown option '%.*s'", (int)name_len, name);
        if (optdefs[id].arg && !value) {
            if (i + 1 >= argc)
                return usage_error(a->command && find_command(a->command) ? a->command : NULL,
                                   "option --%s needs a value", optdefs[id].name);
            value = argv[++i];
        } else if (!optdefs[id].arg && value) {
            return usage_error(a->command && find_command(a->command) ? a->command : NULL,
                               "option --%s takes no value", optdefs[id].name);
        }
        a->seen[id] = true;
        a->val[id] = value;
        if (id == O_TAG)
            list_push(&a->tags, value);
        else if (id == O_FILE)
            list_push(&a->files, value);
        else if (id == O_EVIDENCE)
            list_push(&a->evidence, value);
        else if (id == O_AGENT)
            list_push(&a->agents, value);
    }
    return RC_OK;
}

int main(int argc, char **argv) {
    args a = {0};
    ctx c = {0};
    int rc = RC_OK;

    cx_log_init("cortex", CX_LOG_WARNING);
    size_t cap = argc > 0 ? (size_t)argc : 1;
    a.pos.v = calloc(cap, sizeof *a.pos.v);
    a.tags.v = calloc(cap, sizeof *a.tags.v);
    a.files.v = calloc(cap, sizeof *a.files.v);
    a.evidence.v = calloc(cap, sizeof *a.evidence.v);
    a.agents.v = calloc(cap, sizeof *a.agents.v);
    if (!a.pos.v || !a.tags.v || !a.files.v || !a.evidence.v || !a.agents.v) {
        rc = oom();
        goto out;
    }
    if ((rc = parse_args(argc, argv, &a)) != RC_OK)
        goto out;
    if (a.seen[O_VERSION]) {
        printf("cortex %s\n", CORTEX_VERSION);
        goto out;
    }
    if (!a.command) {
        if (a.seen[O_HELP]) {
            fputs(help_main, stdout);
        } else {
            fputs(help_main, stderr);
            rc = RC_USAGE;
        }
        goto out;
    }
    const command *cmd = find_command(a.command);
    if (!cmd) {
        rc = usage_error(NULL, "unknown command '%s'", a.command);
        goto out;
    }
    if (a.seen[O_HELP]) {
        fputs(cmd->help, stdout);
        goto out;
    }
    for (int k = 0; k < O_COUNT; k++) {
        if (a.seen[k] && !((GLOBAL_OPTS | cmd->opts) & BIT(k))) {
            rc = usage_error(cmd->name, "option --%s does not apply to 'cortex %s'", optdefs[k].name,
                             cmd->name);
            goto out;
        }
    }
    if (a.val[O_WORKSPACE] && !a.val[O_WORKSPACE][0]) {
        rc = usage_error(cmd->name, "--workspace wants a directory");
        goto out;
    }

    cx_out_init();
    c.a = &a;
    c.cmd = cmd;
    c.json = a.seen[O_JSON];
    c.now = cx_clock_now_ms();
    c.author = cx_session_author_name(); /* the principal recorded for CLI writes */
    if (!c.author) {
        rc = oom();
        goto out;
    }
    c.who = (cx_actor){.author = c.author, .agent = CLI_AGENT};
    rc = cmd->run(&c);

out:
    cx_session_free(c.session);
    free(c.author);
    free(a.pos.v);
    free(a.tags.v);
    free(a.files.v);
    free(a.evidence.v);
    free(a.agents.v);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE)
            fprintf(stderr, "cortex: cannot write to standard output: %s\n", strerror(errno));
        if (rc == RC_OK)
            rc = RC_STORE;
    }
    return rc;
}
