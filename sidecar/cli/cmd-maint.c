/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex doctor`, `cortex reindex`, `cortex hook` and `cortex scan`:
 * checking, rebuilding and the agent hooks. */
#include "cli.h"

#include "output.h"
#include "config.h"
#include "daemon.h"
#include "doctor.h"
#include "hooks.h"
#include "redact/redact.h"
#include "util/error.h"
#include "util/fsx.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cx_cli_help_reindex[] =
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
    "4 the configured embedding service failed, 130 stopped by Ctrl-C (SIGINT;\n"
    "143 for SIGTERM).\n";

const char cx_cli_help_doctor[] =
    "Usage: cortex doctor [--json]\n"
    "\n"
    "Checks every link from this workspace to an agent finding the team's\n"
    "knowledge and says how to fix each broken one: the cortexd binary, the\n"
    "workspace and its config, the store, the redaction rules, the background\n"
    "cortexd, each wired agent's MCP config (right binary, right workspace; a\n"
    "shared `cortexd` must be on PATH), Claude Code's hooks, whether the agent\n"
    "will use the server (approval:claude pending or rejected, trust:gemini\n"
    "untrusted folder, trust:codex untrusted project: failures, with the\n"
    "command that fixes them), the agent's own program on PATH (program:NAME,\n"
    "a warning), the upstream core and the key.\n"
    "\n"
    "Exit status: 0 nothing failed (warnings allowed), 1 a check failed,\n"
    "2 usage error.\n";

const char cx_cli_help_hook[] =
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

const char cx_cli_help_scan[] =
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

/* The signal that stopped a reindex (SIGINT, SIGTERM), 0 while none has. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
    interrupted = sig;
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

int cx_cli_cmd_reindex(ctx *c) {
    int rc = cx_cli_open_store(c, false);
    if (rc != RC_OK)
        return rc;
    cx_config cfg;
    cx_embedder *e = NULL;
    if (cx_config_load(c->ws, &cfg) != 0)
        return cx_cli_fail(RC_STORE, "%s", cx_error_last());
    int r = cx_config_embedder(&cfg, &e, false);
    cx_config_clear(&cfg);
    if (r != 0)
        return cx_cli_fail(RC_STORE, "%s", cx_error_last());
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    r = cx_store_reindex(c->store, NULL, reindex_progress, (void *)"built-in vectors");
    if (r == 0 && e) {
        r = cx_store_set_embedder(c->store, e);
        if (r == 0)
            r = cx_store_reindex(c->store, e, reindex_progress, (void *)cx_embed_model_id(e));
        if ((r == CX_EIO || r == CX_EBUSY) && !interrupted) {
            rc = cx_cli_fail(RC_UPSTREAM, "the embedding service failed: %s", cx_error_last());
            goto out;
        }
    }
    if (r == CX_ECANCELED || (r != 0 && interrupted)) {
        /* stopped on purpose: the shell's status for the signal, not a
         * store error */
        rc = cx_cli_fail(RC_SIGNAL + (interrupted ? (int)interrupted : SIGINT),
                         "stopped; what was done stays; run cortex reindex again to finish");
        goto out;
    }
    if (r != 0) {
        rc = cx_cli_fail(RC_STORE, "reindex failed: %s", cx_error_last());
        goto out;
    }
    if (c->json) {
        json_t *o = json_pack("{s:b, s:s}", "reindexed", 1, "model",
                              e ? cx_embed_model_id(e) : "builtin");
        rc = cx_cli_print_json(o);
        json_decref(o);
    } else {
        printf("Reindexed%s%s.\n", e ? " with " : "", e ? cx_embed_model_id(e) : "");
    }
out:
    cx_store_set_embedder(c->store, NULL);
    cx_embed_free(e);
    return rc;
}

int cx_cli_cmd_doctor(ctx *c) {
    if (c->a->pos.n > 0)
        return cx_cli_usage_error("doctor", "doctor takes no operands");
    char *self = cx_daemon_find_program("cortex", "CORTEX_CLI");
    char *cortexd = cx_daemon_find_program("cortexd", "CORTEX_CORTEXD");
    cx_error_clear();
    cx_doctor_opts o = {.workspace = c->a->val[O_WORKSPACE], .cortex = self, .cortexd = cortexd};
    json_t *rep = NULL;
    int r = cx_doctor_run(&o, &rep);
    free(self);
    free(cortexd);
    if (r < 0)
        return cx_cli_oom();
    bool ok = cx_cli_jtrue(rep, "ok");
    int rc = RC_OK;
    if (c->json) {
        rc = cx_cli_print_json(rep);
    } else {
        size_t i;
        json_t *ch;
        size_t nfail = 0, nwarn = 0;
        json_array_foreach(json_object_get(rep, "checks"), i, ch) {
            const char *st = cx_cli_jstr(ch, "status");
            bool is_ok = strcmp(st, "ok") == 0, is_warn = strcmp(st, "warn") == 0;
            nfail += !is_ok && !is_warn;
            nwarn += is_warn;
            printf("%s%-4s%s %-15s ", cx_out_sgr(is_ok ? CX_OUT_GREEN : is_warn ? CX_OUT_YELLOW : CX_OUT_RED),
                   is_ok ? "ok" : is_warn ? "warn" : "FAIL", cx_out_sgr(CX_OUT_RESET), cx_cli_jstr(ch, "name"));
            cx_out_text(stdout, cx_cli_jstr(ch, "detail") ? cx_cli_jstr(ch, "detail") : "", false);
            fputc('\n', stdout);
            if (cx_cli_jstr(ch, "fix")) {
                printf("     %-15s fix: ", "");
                cx_out_text(stdout, cx_cli_jstr(ch, "fix"), false);
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

int cx_cli_cmd_hook(ctx *c) {
    const strlist *pos = &c->a->pos;
    if (pos->n != 1)
        return cx_cli_usage_error("hook", "hook needs exactly one event: session-start or stop");
    cx_hook_opts o = {.workspace = c->a->val[O_WORKSPACE], .author = c->author};
    if (c->a->val[O_MAX_TOKENS]) {
        char *end = NULL;
        errno = 0;
        long v = strtol(c->a->val[O_MAX_TOKENS], &end, 10);
        if (errno || !end || *end || v < 50 || v > 100000)
            return cx_cli_usage_error("hook", "--max-tokens takes a number from 50 to 100000");
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
        r = cx_cli_read_stdin("text", "scan", &data) == RC_OK ? 0 : CX_EIO;
        len = data ? strlen(data) : 0;
        if (r)
            return RC_STORE;
    } else if ((r = cx_fs_read_file(path, CX_STORE_MAX_BLOB, &data, &len)) < 0) {
        return cx_cli_fail(RC_STORE, "cannot read %s: %s", path, cx_cli_engine_msg(r));
    }
    json_t *findings = json_array();
    json_t *entry = json_pack("{s:s, s:o}", "path", path, "findings", findings);
    if (!entry) {
        free(data);
        return cx_cli_oom();
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
            return cx_cli_fail(RC_STORE, "cannot scan %s: %s", path, cx_cli_engine_msg(r));
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

int cx_cli_cmd_scan(ctx *c) {
    const strlist *pos = &c->a->pos;
    if (pos->n == 0)
        return cx_cli_usage_error("scan", "scan needs at least one FILE (\"-\" for stdin)");
    cx_error_clear();
    if (cx_redact_init() < 0)
        return cx_cli_fail(RC_STORE, "the redaction rules do not compile: %s", cx_error_last());
    json_t *files = json_array();
    if (!files)
        return cx_cli_oom();
    size_t total = 0;
    int rc = RC_OK;
    for (size_t i = 0; i < pos->n; i++) {
        int r = scan_one(c, pos->v[i], files, &total);
        if (r != RC_OK)
            rc = r;
    }
    if (c->json) {
        json_t *o = json_pack("{s:O, s:I}", "files", files, "total", (json_int_t)total);
        int pr = o ? cx_cli_print_json(o) : cx_cli_oom();
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
