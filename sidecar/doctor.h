/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex doctor`: checks the whole chain from this workspace to an agent
 * finding the team's knowledge, link by link, and says how to fix each
 * broken one:
 *
 *   cortexd      the binary is found and runs (`cortexd --version`)
 *   workspace    the workspace is found, in git, with .cortex/ kept out of it
 *   config       .cortex/config parses and its values are understood
 *   store        the store opens (and its schema is current)
 *   redaction    the redaction rules compile
 *   daemon       the background cortexd runs (`cortex start`)
 *   agent:NAME   each wired agent's MCP config names this cortexd and
 *                workspace (agents: workspace.agents in the config, plus
 *                any agent whose config file mentions cortex)
 *   hooks        Claude Code's hooks call this cortex (when claude is wired)
 *   approval:claude, trust:gemini, trust:codex
 *                the agent will use the server: Claude Code's approval of
 *                the project's server (in an untracked settings.local.json,
 *                as `git ls-files` tells), Gemini CLI's trust in the folder,
 *                Codex's trust in the project (fail when missing)
 *   program:NAME the agent's own program is on PATH (warn when not)
 *   upstream     the configured core answers (skipped without an upstream)
 *   key          the stored key is accepted by the core
 *
 * Each check is "ok", "warn" (works, but not as set up) or "fail". */
#pragma once

#include <jansson.h>

typedef struct cx_doctor_opts {
    const char *workspace; /* --workspace, or NULL */
    const char *cortex;    /* absolute path of the cortex binary hooks should call */
    const char *cortexd;   /* absolute path of cortexd, or NULL when not found */
} cx_doctor_opts;

/* Runs every check. *out = {"workspace": root or null, "ok": no check
 * failed, "checks": [{"name", "status", "detail", "fix" (absent when ok)}]}.
 * Returns 0 (the report says what failed), or CX_ENOMEM. */
int cx_doctor_run(const cx_doctor_opts *o, json_t **out);
