/* SPDX-License-Identifier: Apache-2.0 */
/* The MCP server state machine: one JSON-RPC message in, zero or more
 * messages out through a write callback. Transport-free, so cortexd drives it
 * from stdio and the fuzz target and tests drive it directly.
 *
 * Eras: an `initialize` request selects the handshake era (2024-11-05 …
 * 2025-11-25) for the process; a request carrying
 * params._meta["io.modelcontextprotocol/protocolVersion"] is served in the
 * stateless era (2026-07-28). The store is opened lazily on the first call
 * that needs it, so `initialize` never waits for it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "workspace.h"

typedef struct cx_mcp cx_mcp;

/* Receives one complete JSON message (no newline). Called from the thread
 * that called cx_mcp_handle_line(), or from any thread that logs while a
 * log sink is installed; the callee serialises writes. */
typedef void (*cx_mcp_write_fn)(void *ud, const char *json, size_t len);

typedef struct cx_mcp_config {
    /* The workspace: either resolved already (borrowed; must outlive the
     * server), or NULL to resolve it from workspace_dir (NULL = the usual
     * search, see workspace.h) on first need, so that libgit2's start-up
     * cost never delays `initialize`. */
    const cx_workspace *ws;
    const char *workspace_dir;
    cx_mcp_write_fn write;
    void *write_ud;
    size_t page_size;        /* list page size; 0 = 100 */
    bool background_maintenance; /* another thread calls cx_store_maintain() */
} cx_mcp_config;

#define CX_MCP_MAX_MESSAGE (16u * 1024 * 1024) /* bytes of one message line */
#define CX_MCP_MAX_DEPTH 64                     /* JSON nesting depth */

int cx_mcp_new(cx_mcp **out, const cx_mcp_config *cfg);
void cx_mcp_free(cx_mcp *m);

/* Handles one line (trailing "\r" accepted). Never fails: every problem is
 * answered on the wire as the protocol says (or not at all for
 * notifications). `len` may exceed CX_MCP_MAX_MESSAGE only to report it. */
void cx_mcp_handle_line(cx_mcp *m, const char *line, size_t len);

/* Serves `line` at once when it is a message that needs neither the
 * workspace nor the store (initialize, ping, server/discover,
 * notifications/initialized) and returns true; returns false, having done
 * nothing, for any other line, which the caller passes to
 * cx_mcp_handle_line() as usual. Messages are answered in arrival order, so
 * call it only when no earlier line is queued or being handled: cortexd's
 * reader answers `initialize` itself this way, without waking its worker. */
bool cx_mcp_handle_quick(cx_mcp *m, const char *line, size_t len);

/* Reports a line that was too long to keep (the reader dropped it). */
void cx_mcp_handle_oversize(cx_mcp *m, size_t len);

/* Thread-safe: marks request `id_json` (the id as compact JSON text, e.g. "7"
 * or "\"abc\"") cancelled. A queued request is then dropped without an
 * answer; one in progress stops at its next progress point and sends none. */
void cx_mcp_cancel(cx_mcp *m, const char *id_json);

/* If `line` is a notifications/cancelled message, applies it and returns
 * true; cortexd's reader calls this so a cancel overtakes queued work. */
bool cx_mcp_preview_cancel(cx_mcp *m, const char *line, size_t len);

/* Resolves the workspace and opens the store now (cortexd calls this from a
 * background thread right after start so that the first tool call finds
 * them warm). */
int cx_mcp_warm(cx_mcp *m);

/* Thread-safe: the session is ending. Work that only prepares for later
 * calls (loading the vector index) stops early; requests still queued are
 * answered as usual. */
void cx_mcp_shutdown(cx_mcp *m);

/* Thread-safe: the process was told to end (SIGTERM). As cx_mcp_shutdown,
 * and the request in flight stops at its next progress point and is not
 * answered. */
void cx_mcp_abort(cx_mcp *m);

/* The workspace once resolved (borrowed), else NULL. */
const cx_workspace *cx_mcp_workspace(cx_mcp *m);
