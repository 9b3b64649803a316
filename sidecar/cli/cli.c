/* SPDX-License-Identifier: Apache-2.0 */
/* cortex: the command line for people. main(), the option table and parser,
 * the dispatch table of commands, `cortex help`, and the messages and exit
 * statuses every command shares.
 *
 * Human-readable output goes to stdout (rendered by output.c and render.c);
 * with --json, stdout gets exactly one pretty JSON document, the store's
 * answer. Errors go to stderr as "cortex: …". The exit status means
 * something: 0 success, 1 nothing found or refused, 2 usage error, 3
 * workspace or store error, 4 upstream error. Read commands never create
 * state: in a workspace without a store they say so and exit 3. */
#include "cli.h"

#include "output.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CORTEX_VERSION
#define CORTEX_VERSION "0.1.0"
#endif

static const struct optdef {
    const char *name;
    char short_name;
    bool arg;
} optdefs[O_COUNT] = {
    [O_WORKSPACE] = {"workspace", 0, true}, [O_JSON] = {"json", 0, false},
    [O_HELP] = {"help", 'h', false},        [O_VERSION] = {"version", 'V', false},
    [O_KIND] = {"kind", 0, true},           [O_STATUS] = {"status", 0, true},
    [O_SUBCORTEX] = {"subcortex", 0, true}, [O_TAG] = {"tag", 0, true},
    [O_LIMIT] = {"limit", 0, true},         [O_CONTENT] = {"content", 0, false},
    [O_TITLE] = {"title", 0, true},         [O_FILE] = {"file", 0, true},
    [O_EVIDENCE] = {"evidence", 0, true},   [O_PRIVATE] = {"private", 0, false},
    [O_REASON] = {"reason", 0, true},       [O_NOTE] = {"note", 0, true},
    [O_CA_FILE] = {"ca-file", 0, true},     [O_MODE] = {"mode", 0, true},
    [O_AGENT] = {"agent", 0, true},         [O_UPSTREAM] = {"upstream", 0, true},
    [O_MAX_TOKENS] = {"max-tokens", 0, true}, [O_NO_DAEMON] = {"no-daemon", 0, false},
    [O_REBIND] = {"rebind", 0, false},
    [O_TRUST] = {"trust", 0, false},
};

/* Messages carry details from a core, the store or the file system: they
 * reach the terminal only through the sanitiser (output.h). */
int cx_cli_fail(int rc, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("cortex: ", stderr);
    va_start(ap, fmt);
    cx_out_vprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return rc;
}

int cx_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("cortex: ", stderr);
    va_start(ap, fmt);
    cx_out_vprintf(stderr, fmt, ap);
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
const char *cx_cli_engine_msg(int r) {
    return cx_error_code() != 0 ? cx_error_last() : cx_strerror(r);
}

int cx_cli_rc_for(int r) {
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

int cx_cli_oom(void) {
    return cx_cli_fail(RC_STORE, "out of memory");
}

static const char help_main[] =
    "Usage: cortex [--workspace DIR] [--json] COMMAND [ARGS...]\n"
    "\n"
    "Shared, reviewable memory for AI coding agents: the command line for people.\n"
    "\n"
    "Commands:\n"
    "  search QUERY...            find items by words and meaning (hybrid:\n"
    "                             keywords and vectors), best first\n"
    "  show ID...                 print items in full\n"
    "  observe TEXT               record an observation\n"
    "  draft --title TITLE BODY   propose knowledge for review\n"
    "  review list                list drafts awaiting review\n"
    "  review approve ID          make a draft canon knowledge (a thread)\n"
    "  review reject ID --reason TEXT\n"
    "  review request-changes ID --reason TEXT\n"
    "  artifact accept ID VERSION accept an artifact's version (reviewer)\n"
    "  artifact content ID [VERSION]   print a version's bytes\n"
    "  start [--agent NAME]...    set up the workspace, start background sync,\n"
    "                             wire agents (claude, codex, cursor, gemini)\n"
    "  stop                       stop the background cortexd\n"
    "  status                     workspace, daemon, store and sync state\n"
    "  doctor                     check every link and say how to fix it\n"
    "  remote set URL [--ca-file FILE] [--rebind]   the team's cortex-core\n"
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
    "  -V, --version     print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0    success\n"
    "  1    nothing found (a search without results, an unknown id) or the\n"
    "       request was refused: by the store (e.g. reviewing a draft that is no\n"
    "       longer awaiting review) or by the core (a 4xx answer: the key, its\n"
    "       role, the request, an unknown draft)\n"
    "  2    usage error: unknown command or option, missing or invalid argument\n"
    "  3    workspace or store error: no Cortex memory in the workspace yet (read\n"
    "       commands never create it), cannot open, I/O error, store busy\n"
    "  4    upstream error: no upstream or key configured, the core could not be\n"
    "       reached, failed (5xx), kept asking to wait (408, 429) or broke the\n"
    "       protocol\n"
    "  130  interrupted (Ctrl-C); 143 for SIGTERM\n"
    "\n"
    "Environment: CORTEX_WORKSPACE (the workspace), CORTEX_AUTHOR (who records\n"
    "locally; default: your user name; at a core the key's name is recorded),\n"
    "NO_COLOR (no colour even on a terminal).\n"
    "See cortex(1) for more.\n";

static const char help_help[] =
    "Usage: cortex help [COMMAND]\n"
    "\n"
    "Prints the overview, or the help of COMMAND (start, stop, status, doctor,\n"
    "search, show, observe, draft, review, remote, login, sync, reindex, scan,\n"
    "hook, help).\n"
    "\n"
    "Exit status: 0 success, 2 unknown command.\n";

static int cmd_help(ctx *c);

static const command commands[] = {
    {"search", BIT(O_KIND) | BIT(O_STATUS) | BIT(O_SUBCORTEX) | BIT(O_TAG) | BIT(O_LIMIT) | BIT(O_MODE),
     cx_cli_cmd_search, cx_cli_help_search},
    {"show", BIT(O_CONTENT), cx_cli_cmd_show, cx_cli_help_show},
    {"observe", BIT(O_TITLE) | BIT(O_TAG) | BIT(O_SUBCORTEX) | BIT(O_FILE) | BIT(O_PRIVATE), cx_cli_cmd_observe,
     cx_cli_help_observe},
    {"draft", BIT(O_TITLE) | BIT(O_TAG) | BIT(O_SUBCORTEX) | BIT(O_FILE) | BIT(O_EVIDENCE), cx_cli_cmd_draft,
     cx_cli_help_draft},
    {"review", BIT(O_NOTE) | BIT(O_REASON), cx_cli_cmd_review, cx_cli_help_review},
    {"artifact", 0, cx_cli_cmd_artifact, cx_cli_help_artifact},
    {"start", BIT(O_AGENT) | BIT(O_UPSTREAM) | BIT(O_CA_FILE) | BIT(O_NO_DAEMON) | BIT(O_TRUST), cx_cli_cmd_start, cx_cli_help_start},
    {"stop", 0, cx_cli_cmd_stop, cx_cli_help_stop},
    {"status", 0, cx_cli_cmd_status, cx_cli_help_status},
    {"doctor", 0, cx_cli_cmd_doctor, cx_cli_help_doctor},
    {"remote", BIT(O_CA_FILE) | BIT(O_REBIND), cx_cli_cmd_remote, cx_cli_help_remote},
    {"login", 0, cx_cli_cmd_login, cx_cli_help_login},
    {"sync", 0, cx_cli_cmd_sync, cx_cli_help_sync},
    {"reindex", 0, cx_cli_cmd_reindex, cx_cli_help_reindex},
    {"scan", 0, cx_cli_cmd_scan, cx_cli_help_scan},
    {"hook", BIT(O_MAX_TOKENS), cx_cli_cmd_hook, cx_cli_help_hook},
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
        return cx_cli_usage_error("help", "help takes at most one COMMAND");
    const command *cmd = find_command(pos->v[0]);
    if (!cmd)
        return cx_cli_usage_error(NULL, "unknown command '%s'", pos->v[0]);
    fputs(cmd->help, stdout);
    return RC_OK;
}

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
            return cx_cli_usage_error(a->command && find_command(a->command) ? a->command : NULL,
                               "unknown option '%.*s'", (int)name_len, name);
        if (optdefs[id].arg && !value) {
            if (i + 1 >= argc)
                return cx_cli_usage_error(a->command && find_command(a->command) ? a->command : NULL,
                                   "option --%s needs a value", optdefs[id].name);
            value = argv[++i];
        } else if (!optdefs[id].arg && value) {
            return cx_cli_usage_error(a->command && find_command(a->command) ? a->command : NULL,
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
        rc = cx_cli_oom();
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
        rc = cx_cli_usage_error(NULL, "unknown command '%s'", a.command);
        goto out;
    }
    if (a.seen[O_HELP]) {
        fputs(cmd->help, stdout);
        goto out;
    }
    for (int k = 0; k < O_COUNT; k++) {
        if (a.seen[k] && !((GLOBAL_OPTS | cmd->opts) & BIT(k))) {
            rc = cx_cli_usage_error(cmd->name, "option --%s does not apply to 'cortex %s'", optdefs[k].name,
                             cmd->name);
            goto out;
        }
    }
    if (a.val[O_WORKSPACE] && !a.val[O_WORKSPACE][0]) {
        rc = cx_cli_usage_error(cmd->name, "--workspace wants a directory");
        goto out;
    }

    cx_out_init();
    c.a = &a;
    c.cmd = cmd;
    c.json = a.seen[O_JSON];
    c.now = cx_clock_now_ms();
    c.author = cx_session_author_name(); /* the principal recorded for CLI writes */
    if (!c.author) {
        rc = cx_cli_oom();
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
