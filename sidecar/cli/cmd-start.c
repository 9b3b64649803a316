/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex start`, `cortex stop` and `cortex status`: setting a workspace up
 * (config, store, agents, the background cortexd), stopping it, and what
 * state it is in. */
#include "cli.h"

#include "output.h"
#include "agents.h"
#include "config.h"
#include "daemon.h"
#include "util/error.h"
#include "util/fsx.h"
#include "workspace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cx_cli_help_status[] =
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

const char cx_cli_help_start[] =
    "Usage: cortex start [--agent claude|codex|cursor|gemini]... [--trust]\n"
    "                    [--upstream URL] [--ca-file FILE] [--no-daemon]\n"
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
    "                    When `cortexd` on PATH is the cortexd in use, the entries\n"
    "                    name plain `cortexd` (and the hooks plain `cortex`) with\n"
    "                    no path of this machine: commit them, and a teammate\n"
    "                    with Cortex on PATH gets the server by cloning. Else\n"
    "                    they name absolute paths and start warns why.\n"
    "                    Then the step each agent needs before it uses the server:\n"
    "                    claude: your approval, recorded in\n"
    "                    .claude/settings.local.json (enabledMcpjsonServers; per\n"
    "                    person, kept out of git); gemini and codex: trusting this\n"
    "                    folder in your own config, which start prints as one\n"
    "                    command (see --trust).\n"
    "  --trust           with --agent gemini or codex: also trust this folder, and\n"
    "                    say what changed: gemini adds \"DIR\": \"TRUST_FOLDER\" to\n"
    "                    ~/.gemini/trustedFolders.json, codex adds\n"
    "                    [projects.\"DIR\"] trust_level = \"trusted\" to\n"
    "                    ~/.codex/config.toml (or $GEMINI_CLI_TRUSTED_FOLDERS_PATH,\n"
    "                    $CODEX_HOME/config.toml). The agent then loads this\n"
    "                    project's config, MCP servers and all; other entries and\n"
    "                    bytes of those files are kept.\n"
    "  --upstream URL    the team's cortex-core (as `cortex remote set`)\n"
    "  --ca-file FILE    CA bundle for the upstream's certificate (with --upstream)\n"
    "  --no-daemon       set up, but start no background cortexd\n"
    "  --json            print what was done as JSON (per agent: \"files\", and\n"
    "                    \"approval\", \"trust\" or \"step_left\"; \"shared_configs\")\n"
    "\n"
    "Exit status: 0 success, 2 usage error, 3 workspace, store or daemon error,\n"
    "1 an agent's config file (or its trust file) could not be parsed (nothing in\n"
    "it was changed).\n";

const char cx_cli_help_stop[] =
    "Usage: cortex stop\n"
    "\n"
    "Stops this workspace's background cortexd (SIGTERM; SIGKILL after 10 s).\n"
    "Agents' own cortexd processes keep serving them; the first of them takes\n"
    "over background sync. Stopping when none runs is not an error.\n"
    "\n"
    "Exit status: 0 stopped or not running, 2 usage error, 3 it could not be\n"
    "stopped.\n";

static json_t *daemon_json(const ctx *c);
static void put_daemon(const ctx *c);

int cx_cli_cmd_status(ctx *c) {
    json_t *st = NULL;
    int rc;
    if ((rc = cx_cli_find_workspace(c, false)) != RC_OK)
        return rc;
    int h = cx_cli_has_store(c);
    if (h < 0)
        return -h;
    if (h == 1) {
        int r = cx_session_add(c->session, CX_SESSION_STORE);
        if (r < 0)
            return cx_cli_fail(RC_STORE, "cannot open the store in %s: %s", c->ws->state_dir, cx_cli_engine_msg(r));
        c->store = cx_session_store(c->session);
        cx_error_clear();
        r = cx_store_status(c->store, &st);
        if (r < 0)
            return cx_cli_fail(RC_STORE, "cannot read the store's status: %s", cx_cli_engine_msg(r));
    }
    if (c->json) {
        json_t *out = st ? st : json_object();
        st = NULL;
        bool configured;
        json_t *sync = cx_cli_sync_status(c, &configured);
        if (!out || !sync || json_object_set_new(out, "workspace", json_string(c->ws->root)) ||
            json_object_set_new(out, "state_dir", json_string(c->ws->state_dir)) ||
            json_object_set_new(out, "initialized", json_boolean(h == 1)) ||
            json_object_set_new(out, "daemon", daemon_json(c)) ||
            json_object_set_new(out, "sync", sync)) {
            json_decref(out);
            return cx_cli_oom();
        }
        rc = cx_cli_print_json(out);
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
        /* the advice `cortex doctor` gives for a missing store */
        printf("%smemory%s      none yet; run: cortex start\n", lbl, rst);
    } else {
        char db[32], blobs[32];
        cx_out_size((uint64_t)cx_cli_jint(st, "db_bytes", 0), db, sizeof db);
        cx_out_size((uint64_t)cx_cli_jint(st, "blob_bytes", 0), blobs, sizeof blobs);
        printf("%sstore%s       %s database, %s of blobs", lbl, rst, db, blobs);
        if (cx_cli_jint(st, "schema_version", -1) >= 0)
            printf(" (schema %lld", cx_cli_jint(st, "schema_version", 0));
        if (cx_cli_jstr(st, "sqlite_version")) {
            fputs(cx_cli_jint(st, "schema_version", -1) >= 0 ? ", SQLite " : " (SQLite ", stdout);
            cx_out_text(stdout, cx_cli_jstr(st, "sqlite_version"), true);
        }
        if (cx_cli_jint(st, "schema_version", -1) >= 0 || cx_cli_jstr(st, "sqlite_version"))
            fputc(')', stdout);
        fputc('\n', stdout);

        json_t *items = json_object_get(st, "items");
        static const char *const order[][3] = {
            {"observation", "observation", "observations"}, {"draft", "draft", "drafts"},
            {"thread", "thread", "threads"},                {"artifact", "artifact", "artifacts"},
            {"comment", "comment", "comments"},
        };
        long long total = cx_cli_jint(items, "total", 0);
        printf("%sitems%s       %lld", lbl, rst, total);
        bool first = true;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            long long k = cx_cli_jint(items, order[i][0], 0);
            if (k == 0)
                continue;
            printf("%s%lld %s", first ? ": " : ", ", k, k == 1 ? order[i][1] : order[i][2]);
            first = false;
        }
        fputc('\n', stdout);
        long long pending = cx_cli_jint(st, "drafts_pending", 0);
        printf("%sreview%s      %lld draft%s awaiting review\n", lbl, rst, pending, pending == 1 ? "" : "s");
        json_t *ob = json_object_get(st, "outbox");
        long long op = cx_cli_jint(ob, "pending", 0), orj = cx_cli_jint(ob, "rejected", 0);
        if (cx_cli_upstream_configured(c))
            printf("%soutbox%s      %lld change%s waiting to be pushed", lbl, rst, op,
                   op == 1 ? "" : "s");
        else /* nothing waits: nothing is pushed anywhere without an upstream */
            printf("%soutbox%s      %lld change%s recorded locally; no upstream to push to "
                   "(`cortex remote set URL`)", lbl, rst, op, op == 1 ? "" : "s");
        if (orj > 0)
            printf(", %lld rejected by the core", orj);
        fputc('\n', stdout);
    }
    bool configured;
    json_t *sy = cx_cli_sync_status(c, &configured);
    cx_cli_put_sync_status(c, sy, configured);
    json_decref(sy);
    json_decref(st);
    return RC_OK;
}

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
        return cx_cli_fail(RC_STORE, "workspace config: upstream.url: %s", cx_error_last());
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
        return cx_cli_fail(RC_STORE, "cannot write the upstream: %s", cx_cli_engine_msg(r));
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
        return cx_cli_fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
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
        cx_cli_fail(RC_STORE, "another `cortex start` holds %s/start.lock; try again when it is done",
             c->ws->state_dir);
    else
        cx_cli_fail(RC_STORE, "%s", cx_error_last());
    return -1;
}

/* One `cortex start`, step by step: what each step found or did goes into
 * the report (printed as JSON with --json, else by start_print). */
typedef struct start_run {
    ctx *c;
    cx_agent_kind wanted[CX_AGENT_COUNT]; /* --agent, in order, once each */
    bool want[CX_AGENT_COUNT];
    size_t nk;
    char *ca;      /* --ca-file, absolute */
    char *cortexd; /* the programs agents and hooks will run */
    char *self;
    bool portable;     /* configs name plain `cortexd` (it is on PATH) */
    char *path_cortexd; /* what `cortexd` on PATH is, or NULL */
    json_t *report, *agents, *cfg_set;
    cx_config cfg;
    bool cfg_loaded;
} start_run;

/* Operands and options: the agents to wire, the upstream and its CA. */
static int start_parse(start_run *s) {
    const args *a = s->c->a;
    if (a->pos.n > 0)
        return cx_cli_usage_error("start", "start takes no operands; name agents with --agent");
    if (a->seen[O_CA_FILE] && !a->seen[O_UPSTREAM])
        return cx_cli_usage_error("start", "--ca-file goes with --upstream URL");
    bool trustable = false;
    for (size_t i = 0; i < a->agents.n; i++)
        trustable |= strcmp(a->agents.v[i], "gemini") == 0 || strcmp(a->agents.v[i], "codex") == 0;
    if (a->seen[O_TRUST] && !trustable)
        return cx_cli_usage_error("start", "--trust goes with --agent gemini or --agent codex");
    for (size_t i = 0; i < a->agents.n; i++) {
        cx_agent_kind k;
        cx_error_clear();
        if (cx_agent_parse(a->agents.v[i], &k) < 0)
            return cx_cli_usage_error("start", "%s", cx_error_last());
        if (!s->want[k])
            s->wanted[s->nk++] = k;
        s->want[k] = true;
    }
    if (a->seen[O_UPSTREAM]) {
        cx_error_clear();
        if (cx_upstream_check_url(a->val[O_UPSTREAM]) < 0)
            return cx_cli_usage_error("start", "--upstream: %s", cx_error_last());
        if (a->val[O_CA_FILE] && !(s->ca = realpath(a->val[O_CA_FILE], NULL)))
            return cx_cli_usage_error("start", "cannot use --ca-file %s: %s", a->val[O_CA_FILE],
                               strerror(errno));
    }
    return RC_OK;
}

/* The config: fill in what is missing, never overwrite what is there; then
 * the upstream (--upstream, else what the config names). */
static int start_config(start_run *s) {
    ctx *c = s->c;
    const args *a = c->a;
    int rc;
    cx_error_clear();
    if (cx_config_load(c->ws, &s->cfg) < 0)
        return cx_cli_fail(RC_STORE, "%s; fix .cortex/config (git-config format) and run again",
                  cx_error_last());
    s->cfg_loaded = true;
    char derived[80];
    cx_config_derive_subcortex(c->ws->name, derived, sizeof derived);
    const char *keys[3], *vals[3];
    size_t nset = 0;
    char interval[16];
    snprintf(interval, sizeof interval, "%lu", 10000UL);
    if (!s->cfg.subcortex) {
        keys[nset] = "workspace.subcortex";
        vals[nset++] = derived;
    }
    if (!s->cfg.embed_provider_set) {
        keys[nset] = "embed.provider";
        vals[nset++] = "builtin";
    }
    if (!s->cfg.sync_interval_ms) {
        keys[nset] = "sync.intervalMs";
        vals[nset++] = interval;
    }
    if (nset > 0) {
        cx_error_clear();
        if (cx_config_set(c->ws, keys, vals, nset) < 0)
            return cx_cli_fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
        for (size_t i = 0; i < nset; i++)
            json_array_append_new(s->cfg_set,
                                  json_pack("{s:s, s:s}", "key", keys[i], "value", vals[i]));
    }
    if (a->seen[O_UPSTREAM] && (!same_str(s->cfg.upstream_url, a->val[O_UPSTREAM]) ||
                                !same_str(s->cfg.upstream_ca_file, s->ca))) {
        if ((rc = cx_cli_set_upstream(c, a->val[O_UPSTREAM], s->ca)) != RC_OK)
            return rc;
        json_array_append_new(s->cfg_set, json_pack("{s:s, s:s}", "key", "upstream.url", "value",
                                                    a->val[O_UPSTREAM]));
    } else if ((rc = apply_config_upstream(c, &s->cfg)) != RC_OK) {
        return rc;
    }
    cx_upstream *up = NULL;
    if (cx_upstream_read(c->ws->state_dir, &up) == 0)
        json_object_set_new(s->report, "upstream", json_string(up->url));
    cx_upstream_free(up);
    cx_error_clear();
    return RC_OK;
}

/* Programs: the cortexd and cortex that agents and hooks will run. When
 * `cortexd` on PATH is the cortexd in use, agents' configs name it plainly
 * and can be shared; otherwise they name its absolute path, with a
 * warning saying why. */
static int start_programs(start_run *s) {
    cx_error_clear();
    s->cortexd = cx_daemon_find_program("cortexd", "CORTEX_CORTEXD");
    s->self = cx_daemon_find_program("cortex", "CORTEX_CLI");
    if (!s->cortexd)
        return cx_cli_fail(RC_STORE, "%s; install cortexd or set $CORTEX_CORTEXD", cx_error_last());
    cx_error_clear();
    s->path_cortexd = cx_agent_on_path("cortexd");
    s->portable = s->path_cortexd && strcmp(s->path_cortexd, s->cortexd) == 0;
    json_object_set_new(s->report, "cortexd", json_string(s->cortexd));
    json_object_set_new(s->report, "shared_configs", json_boolean(s->portable));
    if (!s->portable && s->nk > 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", s->cortexd);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        fflush(stdout);
        fputs("cortex: warning: the agents' configs name ", stderr);
        cx_out_text(stderr, s->cortexd, false);
        if (s->path_cortexd) {
            fputs(", a path of this machine, because `cortexd` on PATH is ", stderr);
            cx_out_text(stderr, s->path_cortexd, false);
            fputs(", another cortexd", stderr);
        } else {
            fputs(", a path of this machine, because `cortexd` is not on PATH", stderr);
        }
        fputs(": teammates cannot use them as they are. Put ", stderr);
        cx_out_text(stderr, dir, false);
        fputs(" first on PATH and run cortex start again to write configs a team can commit.\n", stderr);
    }
    return RC_OK;
}

/* The step after the config: Claude Code's approval (always: the person
 * who asked to wire it approves it), Gemini CLI's and Codex's trust (with
 * --trust; else what it would take, for the report). */
static int start_access(start_run *s, cx_agent_kind k, json_t *one) {
    ctx *c = s->c;
    json_t *rep = NULL;
    if (k == CX_AGENT_CURSOR)
        return RC_OK;
    if (k == CX_AGENT_CLAUDE || c->a->seen[O_TRUST]) {
        cx_error_clear();
        int r = cx_agent_grant(k, c->ws->root, &rep);
        if (r < 0)
            return cx_cli_fail(r == CX_EINVAL ? RC_NONE : RC_STORE, "%s: %s", cx_agent_name(k), cx_error_last());
        if (k == CX_AGENT_CLAUDE) {
            cx_error_clear();
            (void)cx_workspace_exclude(c->ws, "/.claude/settings.local.json",
                                       "Claude Code's per-person settings (cortex start)");
            cx_error_clear();
        }
        char *hint = cx_agent_grant_hint(k, c->ws->root);
        if (hint)
            json_object_set_new(rep, "line", json_string(hint));
        free(hint);
        json_object_set_new(one, k == CX_AGENT_CLAUDE ? "approval" : "trust", rep);
        return RC_OK;
    }
    cx_error_clear();
    if (cx_agent_check_access(k, c->ws->root, &rep) < 0) {
        cx_error_clear();
        return RC_OK;
    }
    if (rep && !json_is_true(json_object_get(rep, "ok"))) {
        char *hint = cx_agent_grant_hint(k, c->ws->root);
        char cmd[64];
        snprintf(cmd, sizeof cmd, "cortex start --agent %s --trust", cx_agent_name(k));
        json_object_set_new(one, "step_left",
                            json_pack("{s:s, s:s?, s:s?}", "command", cmd, "line", hint, "problem",
                                      json_string_value(json_object_get(rep, "problem"))));
        free(hint);
    }
    json_decref(rep);
    return RC_OK;
}

/* Wires each --agent and records them in the config. */
static int start_agents(start_run *s) {
    ctx *c = s->c;
    bool wired[CX_AGENT_COUNT] = {0};
    for (size_t i = 0; i < s->nk; i++) {
        cx_agent_wiring w = {.root = c->ws->root, .cortexd = s->cortexd,
                             .cortex = s->self ? s->self : "cortex", .portable = s->portable};
        json_t *one = NULL;
        cx_error_clear();
        int r = cx_agent_wire(s->wanted[i], &w, &one);
        if (r < 0)
            return cx_cli_fail(r == CX_EINVAL ? RC_NONE : RC_STORE, "%s: %s",
                               cx_agent_name(s->wanted[i]), cx_error_last());
        json_array_append_new(s->agents, one);
        wired[s->wanted[i]] = true;
        int rc = start_access(s, s->wanted[i], one);
        if (rc != RC_OK)
            return rc;
    }
    return record_agents(c, &s->cfg, wired);
}

/* The background daemon (unless --no-daemon). */
static int start_daemon(start_run *s) {
    if (s->c->a->seen[O_NO_DAEMON])
        return RC_OK;
    pid_t pid = 0;
    bool already = false;
    cx_error_clear();
    if (cx_daemon_start(s->c->ws, s->cortexd, 10000, &pid, &already) < 0)
        return cx_cli_fail(RC_STORE, "cannot start the background cortexd: %s", cx_error_last());
    json_object_set_new(s->report, "daemon",
                        json_pack("{s:s, s:I}", "action", already ? "running" : "started", "pid",
                                  (json_int_t)pid));
    return RC_OK;
}

/* The report for people, and how to connect the agents not wired yet. */
static void start_print(const start_run *s) {
    const ctx *c = s->c;
    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    printf("%sworkspace%s   ", lbl, rst);
    cx_out_text(stdout, c->ws->root, true);
    printf("%s\n", c->ws->git_dir ? " (git)" : " (not in git: notes get no provenance)");
    printf("%sstate%s       .cortex/ (%s)\n", lbl, rst,
           c->ws->git_dir ? "kept out of git in .git/info/exclude" : "local");
    printf("%sconfig%s      .cortex/config", lbl, rst);
    if (json_array_size(s->cfg_set) > 0) {
        printf(": set");
        size_t i;
        json_t *v;
        json_array_foreach(s->cfg_set, i, v) {
            printf("%s %s = ", i ? "," : "", cx_cli_jstr(v, "key"));
            cx_out_text(stdout, cx_cli_jstr(v, "value"), true);
        }
        fputc('\n', stdout);
    } else {
        printf(" unchanged\n");
    }
    const char *upurl = cx_cli_jstr(s->report, "upstream");
    printf("%supstream%s    ", lbl, rst);
    if (upurl) {
        cx_out_text(stdout, upurl, true);
        printf("\n");
    } else {
        printf("none: memory stays on this machine (add one with --upstream URL)\n");
    }
    json_t *dm = json_object_get(s->report, "daemon");
    if (dm)
        printf("%sdaemon%s      %s, pid %lld; log .cortex/%s\n", lbl, rst,
               strcmp(cx_cli_jstr(dm, "action"), "started") == 0 ? "started" : "already running",
               cx_cli_jint(dm, "pid", 0), CX_DAEMON_LOG);
    else
        printf("%sdaemon%s      not started (--no-daemon)\n", lbl, rst);
    size_t i;
    json_t *ag;
    json_array_foreach(s->agents, i, ag) {
        printf("%sagent%s       %s:", lbl, rst, cx_cli_jstr(ag, "agent"));
        size_t j;
        json_t *f;
        json_array_foreach(json_object_get(ag, "files"), j, f)
            printf("%s %s %s", j ? "," : "", cx_cli_jstr(f, "path"), cx_cli_jstr(f, "action"));
        fputc('\n', stdout);
        json_t *ap = json_object_get(ag, "approval"), *tr = json_object_get(ag, "trust");
        json_t *left = json_object_get(ag, "step_left");
        if (ap) {
            printf("            approved the project's cortex server for you: %s %s (per person, kept out of git)\n",
                   cx_cli_jstr(ap, "path"), cx_cli_jstr(ap, "action"));
        } else if (tr) {
            printf("            trusted this folder: ");
            cx_out_text(stdout, cx_cli_jstr(tr, "line") ? cx_cli_jstr(tr, "line") : cx_cli_jstr(tr, "path"), false);
            printf(" (%s; %s now loads this project's config, MCP servers included)\n",
                   strcmp(cx_cli_jstr(tr, "action"), "unchanged") == 0 ? "already there" : cx_cli_jstr(tr, "action"),
                   strcmp(cx_cli_jstr(ag, "agent"), "gemini") == 0 ? "Gemini CLI" : "Codex");
        } else if (left) {
            printf("            one step left: ");
            cx_out_text(stdout, cx_cli_jstr(left, "problem") ? cx_cli_jstr(left, "problem") : "not trusted", false);
            printf(".\n            Trust it with: %s\n            (it adds ", cx_cli_jstr(left, "command"));
            cx_out_text(stdout, cx_cli_jstr(left, "line") ? cx_cli_jstr(left, "line") : "", false);
            printf("; or trust the folder when %s asks)\n",
                   strcmp(cx_cli_jstr(ag, "agent"), "gemini") == 0 ? "Gemini CLI" : "Codex");
        }
    }
    if (json_array_size(s->agents) > 0)
        printf("%sconfigs%s     %s\n", lbl, rst,
               s->portable ? "name `cortexd` (on PATH) with no machine paths: commit them for your team"
                           : "name this machine's paths (see the warning): keep them out of git");
    bool have[CX_AGENT_COUNT];
    size_t nhave = 0;
    cx_agent_list_parse(s->cfg.agents, have);
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        have[k] |= s->want[k];
        nhave += have[k];
    }
    if (nhave < CX_AGENT_COUNT) {
        printf("\nConnect %sagents:\n", nhave ? "more " : "");
        for (int k = 0; k < CX_AGENT_COUNT; k++)
            if (!have[k])
                printf("  cortex start --agent %s\n", cx_agent_name((cx_agent_kind)k));
        if (s->portable) {
            printf("or by hand, e.g.: claude mcp add cortex -- cortexd\n");
        } else {
            printf("or by hand, e.g.: claude mcp add cortex -- ");
            cx_out_text(stdout, s->cortexd, false);
            printf(" --workspace ");
            cx_out_text(stdout, c->ws->root, false);
            fputc('\n', stdout);
        }
    }
    printf("\nCheck everything with `cortex doctor`; stop with `cortex stop`.\n");
}

int cx_cli_cmd_start(ctx *c) {
    start_run s = {.c = c};
    int lock_fd = -1;
    int rc = start_parse(&s);
    if (rc != RC_OK)
        goto out;
    s.report = json_object();
    s.agents = json_array();
    s.cfg_set = json_array();
    if (!s.report || !s.agents || !s.cfg_set) {
        rc = cx_cli_oom();
        goto out;
    }
    json_object_set(s.report, "agents", s.agents);
    json_object_set(s.report, "config_set", s.cfg_set);

    /* workspace and its state directory; one start at a time in it */
    if ((rc = cx_cli_find_workspace(c, true)) != RC_OK)
        goto out;
    if ((lock_fd = start_lock(c)) < 0) {
        rc = RC_STORE;
        goto out;
    }
    json_object_set_new(s.report, "workspace", json_string(c->ws->root));
    json_object_set_new(s.report, "state_dir", json_string(c->ws->state_dir));
    json_object_set_new(s.report, "git", json_boolean(c->ws->git_dir != NULL));

    if ((rc = start_config(&s)) != RC_OK || (rc = cx_cli_open_store(c, true)) != RC_OK ||
        (rc = start_programs(&s)) != RC_OK || (rc = start_agents(&s)) != RC_OK ||
        (rc = start_daemon(&s)) != RC_OK)
        goto out;

    if (c->json)
        rc = cx_cli_print_json(s.report);
    else
        start_print(&s);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    if (s.cfg_loaded)
        cx_config_clear(&s.cfg);
    json_decref(s.report);
    json_decref(s.agents);
    json_decref(s.cfg_set);
    free(s.cortexd);
    free(s.path_cortexd);
    free(s.self);
    free(s.ca);
    return rc;
}

int cx_cli_cmd_stop(ctx *c) {
    int rc;
    if (c->a->pos.n > 0)
        return cx_cli_usage_error("stop", "stop takes no operands");
    if ((rc = cx_cli_find_workspace(c, false)) != RC_OK)
        return rc;
    pid_t pid = 0;
    bool was = false;
    cx_error_clear();
    if (cx_daemon_stop(c->ws->state_dir, 10000, &pid, &was) < 0)
        return cx_cli_fail(RC_STORE, "cannot stop the background cortexd: %s", cx_error_last());
    if (c->json) {
        json_t *o = json_pack("{s:b, s:I}", "stopped", was, "pid", (json_int_t)pid);
        rc = o ? cx_cli_print_json(o) : cx_cli_oom();
        json_decref(o);
        return rc;
    }
    if (was)
        printf("Stopped the background cortexd (pid %ld).\n", (long)pid);
    else
        printf("No background cortexd was running for %s.\n", c->ws->root);
    return RC_OK;
}
