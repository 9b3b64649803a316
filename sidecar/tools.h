/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP tools (search, get, observe, draft, publish, comment, recent,
 * status) over the engine. Definitions come from protocol/mcp/tools.json,
 * compiled in; arguments are validated against them before a tool runs. */
#pragma once

#include <jansson.h>

#include "embed/embed.h"
#include "provenance.h"
#include "store/store.h"
#include "workspace.h"

typedef struct cx_tool_env {
    cx_store *store;
    const cx_workspace *ws;
    cx_prov *prov;                /* NULL: no provenance, nothing is stale */
    cx_embedder *query_embedder;  /* NULL: the store's built-in model */
    const char *default_subcortex; /* for notes that name none (workspace.subcortex);
                                    * NULL = the store's default */
    cx_actor actor;
    const char *protocol_version; /* negotiated, for status */
    cx_progress_fn progress;      /* NULL when the client asked for none */
    void *progress_ud;
} cx_tool_env;

/* The parsed tools.json document ({"tools":[…]}). Borrowed, process-wide;
 * NULL only when out of memory. */
const json_t *cx_tools_definitions(void);

/* The definition of one tool, or NULL when there is none by that name. */
const json_t *cx_tools_find(const char *name);

/* Runs `name` with `args` (an object, already valid against its inputSchema).
 * 0 with *out = the structured result; otherwise a CX_E… code with a detail
 * message (cx_error_last()) that the model can act on. CX_ECANCELED means the
 * call was cancelled and must not be answered. */
int cx_tools_run(const char *name, const json_t *args, const cx_tool_env *env, json_t **out);
