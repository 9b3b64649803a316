/* SPDX-License-Identifier: Apache-2.0 */
/* Coding agents' configuration for Cortex: the MCP server entry that starts
 * cortexd for a workspace, and for Claude Code the hooks that run
 * `cortex hook`. `cortex start --agent NAME` writes them, `cortex doctor`
 * checks them.
 *
 * Files, relative to the workspace root:
 *
 *   claude  .mcp.json              mcpServers.cortex = {"type": "stdio",
 *                                  "command": CORTEXD, "args": ["--workspace",
 *                                  ROOT], "env": {}}
 *           .claude/settings.json  hooks.SessionStart: a group with matcher
 *                                  "startup|resume|clear|compact" running
 *                                  'CORTEX' hook session-start; hooks.Stop: a
 *                                  group running 'CORTEX' hook stop (timeout
 *                                  10 s each)
 *   codex   .codex/config.toml     [mcp_servers.cortex] command, args
 *   cursor  .cursor/mcp.json       mcpServers.cortex = {command, args, env}
 *   gemini  .gemini/settings.json  mcpServers.cortex = {command, args, cwd}
 *
 * That is the absolute form. In the shared form (w->portable: `cortexd` on
 * PATH is the cortexd in use) the command is plain "cortexd" with args []
 * (no --workspace, no cwd: the agent starts it in the project, where it
 * finds the workspace) and the hooks run plain 'cortex' when `cortex` on
 * PATH is w->cortex, so the files hold no path of this machine and can be
 * committed.
 *
 * These are files a person edits too, so writing one merges into it: every
 * other key keeps its value and its place; the cortex entry is updated in
 * place (its other keys, such as env, kept). A cortex hook is a command
 * whose program is named `cortex` (any directory, even $HOME/bin) with the
 * arguments `hook session-start` or `hook stop` and nothing else for sh to
 * run; the first one is updated where it is and any others removed, so
 * there is never more than one. Its SessionStart group must run it for
 * every source: a matcher that does not (e.g. "resume") is replaced when
 * the group holds only the cortex hook, and otherwise the hook moves to a
 * group of its own right after the user's. TOML is edited as text, so every
 * byte outside the lines for `command` and `args` stays.
 * A file that cannot be parsed, or whose structure is not what the agent
 * reads, is refused and left as it was; so is a Codex config that defines
 * mcp_servers.cortex as an inline table or with dotted keys. A file that is
 * already right is not written at all, so running `cortex start` twice
 * changes nothing. Writes are atomic (a temporary file in the same
 * directory, fsync, rename); an existing file keeps its mode, a new one is
 * created 0644 and missing directories 0755 (both less the umask). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

typedef enum cx_agent_kind {
    CX_AGENT_CLAUDE,
    CX_AGENT_CODEX,
    CX_AGENT_CURSOR,
    CX_AGENT_GEMINI,
    CX_AGENT_COUNT
} cx_agent_kind;

/* The agent named `name` ("claude", "codex", "cursor", "gemini"; exact,
 * lower case). CX_EINVAL naming the valid names otherwise. */
int cx_agent_parse(const char *name, cx_agent_kind *out);

/* "claude", …; static. */
const char *cx_agent_name(cx_agent_kind k);

/* Marks out[k] for every agent named in `list` (workspace.agents: names
 * separated by commas or spaces; unknown names are skipped). NULL = none. */
void cx_agent_list_parse(const char *list, bool out[CX_AGENT_COUNT]);

/* The agent's MCP configuration file relative to the workspace root
 * (".mcp.json", ".codex/config.toml", ".cursor/mcp.json",
 * ".gemini/settings.json"); static. */
const char *cx_agent_config_path(cx_agent_kind k);

/* What to wire up; all absolute paths, valid UTF-8. */
typedef struct cx_agent_wiring {
    const char *root;    /* the workspace root; must exist */
    const char *cortexd; /* the MCP server binary */
    const char *cortex;  /* the CLI binary, run by Claude Code's hooks */
    bool portable;       /* write the shared form: "command": "cortexd" (found on
                            the agent's PATH) and no arguments: the agent starts it
                            in the project, where it finds the workspace. The
                            caller sets it only when `cortexd` on PATH is cortexd. */
} cx_agent_wiring;

/* The absolute path (symlinks resolved, malloc'd) of the executable `name`
 * found on $PATH as execvp would find it, or NULL. */
char *cx_agent_on_path(const char *name);

/* Creates or merges the agent's files (see above). Every file is read and
 * its new text computed before any is written, so a refusal changes
 * nothing. On success *report (owned by the caller) is
 *   {"agent": "claude", "files": [{"path": ".mcp.json",
 *    "action": "created"|"updated"|"unchanged"}, …]}
 * Errors: CX_EINVAL when a file cannot be parsed or has the wrong shape
 * ("cannot parse .cursor/mcp.json at line 3, column 5: …; fix or move it
 * aside — nothing was changed"), when the Codex config defines the entry in
 * a form that cannot be edited, or for a bad wiring (relative or non-UTF-8
 * path); CX_ENOTFOUND when root does not exist; CX_ELIMIT for a file over
 * 4 MiB; CX_EIO; CX_ENOMEM. */
int cx_agent_wire(cx_agent_kind k, const cx_agent_wiring *w, json_t **report);

/* Checks the agent's files for `cortex doctor`. *out (owned by the caller):
 *   {"agent": "claude", "checks": [
 *     {"name": "mcp-config", "path": ".mcp.json", "ok": true},
 *     {"name": "hooks", "path": ".claude/settings.json", "ok": false,
 *      "problem": "no cortex Stop hook", "fix": "run: cortex start --agent claude"}]}
 * A bare command (no slash, the shared form) is looked up on $PATH and must
 * resolve to w->cortexd; with it no --workspace is needed.
 * One "mcp-config" check for every agent and a "hooks" check for claude;
 * "problem" and "fix" (one line each) only when not ok, the first problem
 * found: the file is missing or cannot be read; it cannot be parsed (with
 * line and column); there is no cortex entry (or it has the wrong shape);
 * its command is not w->cortexd; w->cortexd is not an executable file; its
 * --workspace is missing or another directory; a hook is missing, runs
 * another cortex than w->cortex, or w->cortex is not executable; the
 * SessionStart hook's matcher leaves out some sources. Paths are
 * compared after resolving symlinks. Problems are results, not errors: the
 * function fails only with CX_ENOMEM (or CX_EINVAL for a bad wiring). */
int cx_agent_check(cx_agent_kind k, const cx_agent_wiring *w, json_t **out);

/* The step between a config the agent reads and the agent using it, which
 * each agent keeps in a file of its own:
 *
 *   claude  .claude/settings.local.json  "enabledMcpjsonServers": ["cortex"]
 *           (the person's approval of the project's .mcp.json server; the
 *           file is per person and stays out of git)
 *   gemini  ~/.gemini/trustedFolders.json ($GEMINI_CLI_TRUSTED_FOLDERS_PATH)
 *           "ROOT": "TRUST_FOLDER" (an untrusted folder's MCP servers are
 *           disabled)
 *   codex   ~/.codex/config.toml ($CODEX_HOME/config.toml)
 *           [projects."ROOT"] trust_level = "trusted" (an untrusted
 *           project's .codex/config.toml is ignored)
 *   cursor  none known (Cursor asks in its own window)
 *
 * cx_agent_grant records it, merging as cx_agent_wire does (every other key
 * and byte kept; a file that cannot be parsed is refused, CX_EINVAL, and
 * left alone; a new file in the user's home is created 0600). Claude's
 * approval also takes cortex out of disabledMcpjsonServers. *report (owned
 * by the caller; NULL for cursor) = {"agent", "path" (relative to root for
 * claude, else absolute), "action": "created"|"updated"|"unchanged"}.
 * CX_ENOTFOUND when $HOME is unset; CX_EIO; CX_ENOMEM. */
int cx_agent_grant(cx_agent_kind k, const char *root, json_t **report);

/* The line cx_agent_grant adds and where, for a person to read, e.g.
 * "\"/src/app\": \"TRUST_FOLDER\" in /home/me/.gemini/trustedFolders.json";
 * malloc'd; NULL for cursor, without $HOME or memory. */
char *cx_agent_grant_hint(cx_agent_kind k, const char *root);

/* Checks that step for `cortex doctor` the way the agent decides it:
 * *out = {"name": "approval"|"trust", "path", "ok", "problem", "fix"} as
 * cx_agent_check's checks (NULL for cursor): pending approval (cortex in no
 * enabledMcpjsonServers and no enableAllProjectMcpServers of
 * .claude/settings.local.json, .claude/settings.json or
 * ~/.claude/settings.json), a rejected server (disabledMcpjsonServers), an untrusted folder (no rule, or a DO_NOT_TRUST rule covering
 * it; $GEMINI_CLI_TRUST_WORKSPACE=true, or folder trust turned off in
 * ~/.gemini/settings.json, counts as trusted), an untrusted
 * project, a file that cannot be parsed. Fails only with CX_ENOMEM, or
 * CX_ENOTFOUND without $HOME. */
int cx_agent_check_access(cx_agent_kind k, const char *root, json_t **out);
