/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP tools (search, get, observe, draft, publish, comment, recent,
 * status) over the engine. Definitions come from protocol/mcp/tools.json,
 * compiled in; arguments are validated against them before a tool runs. */
#pragma once

#include <jansson.h>

#include "session.h"

#include <stdbool.h>

/* What one tools/call brings besides its arguments. */
typedef struct cx_tool_call {
    const char *agent;            /* the client's name, recorded with what it writes */
    const char *protocol_version; /* negotiated, for status */
    cx_progress_fn progress;      /* NULL when the client asked for none */
    void *progress_ud;
} cx_tool_call;

/* Opens the session the tools serve: on `ws` (copied) when given, else on
 * the workspace found from `dir` (see workspace.h), created when missing;
 * the store (its maintenance left to another connection when
 * `background_maintenance`), provenance and the configured query embedder.
 * Soft failures are logged and leave a plainer, working server. The caller
 * must then run cx_tools_session_warm: searches rank semantically by the
 * vectors it has loaded until it ends. *out owned by the caller; errors as
 * cx_session_open, logged. */
int cx_tools_session_open(cx_session **out, const cx_workspace *ws, const char *dir,
                          bool background_maintenance);

/* Loads the session's vector index, calling `between` after each chunk
 * (outside any transaction: the store may be used there; non-zero stops).
 * Searches meanwhile rank by what is loaded and say so (`degraded`). A
 * failure is logged and leaves searches to load what they need. */
void cx_tools_session_warm(cx_session *s, cx_progress_fn between, void *ud);

/* The parsed tools.json document ({"tools":[…]}). Borrowed, process-wide;
 * NULL only when out of memory. */
const json_t *cx_tools_definitions(void);

/* The definition of one tool, or NULL when there is none by that name. */
const json_t *cx_tools_find(const char *name);

/* Runs `name` with `args` (an object, already valid against its inputSchema).
 * 0 with *out = the structured result; otherwise a CX_E… code with a detail
 * message (cx_error_last()) that the model can act on. CX_ECANCELED means the
 * call was cancelled and must not be answered. */
int cx_tools_run(const char *name, const json_t *args, cx_session *session,
                 const cx_tool_call *call, json_t **out);
