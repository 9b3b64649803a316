/* SPDX-License-Identifier: Apache-2.0 */
/* Agent hooks, run by `cortex hook <event>`:
 *
 *   session-start  prints, within a token budget, a briefing for the agent
 *                  (recent canon in this workspace's subcortexes, items that
 *                  went stale, pending drafts by this workspace) as Claude
 *                  Code's SessionStart hook expects it on stdout, and notes
 *                  when the session began (.cortex/sessions/).
 *   stop           reads the hook's JSON on stdin and turns the session's
 *                  observations into one digest draft for review (grouped
 *                  by file and tag, with the observations as evidence); a
 *                  later stop of the same session revises that draft.
 *
 * Hooks never fail the agent: they return within about a second, exit 0,
 * and report problems as one line on stderr. */
#pragma once

#include <stdio.h>

/* Options of `cortex hook`. */
typedef struct cx_hook_opts {
    const char *workspace;  /* --workspace, or NULL */
    size_t max_tokens;      /* session-start budget; 0 = the default (1500) */
    const char *author;     /* who the digest is by (the workspace user, as the CLI
                             * and cortexd record it: the caller passes it; NULL =
                             * "unknown"). Only this author's observations go
                             * into a digest, and only their drafts are briefed. */
} cx_hook_opts;

/* Runs hook `event` ("session-start" or "stop") reading the hook JSON from
 * `in` (at most 1 MiB; empty or absent input is allowed for session-start)
 * and writing the hook's answer to `out` and problems to `err`. Returns the
 * exit status: always 0, except 2 for an unknown event. */
int cx_hook_run(const char *event, const cx_hook_opts *o, FILE *in, FILE *out, FILE *err);
