/* SPDX-License-Identifier: Apache-2.0 */
/* The tool table: one row per MCP tool, generated from
 * protocol/mcp/tools.json by gen-tools.py (tools_json.c, tools_table.h),
 * so that a tool's name, handler, read-only flag and its arguments'
 * defaults and limits are written once, in the contract. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cx_tool_env cx_tool_env; /* what a handler runs against (tools.c) */
typedef struct cx_tool_def cx_tool_def;

/* A tool's handler: args already valid against its inputSchema. */
typedef int (*cx_tool_fn)(const cx_tool_def *def, const json_t *args, const cx_tool_env *env,
                          json_t **out);

/* One top-level argument of a tool, as its schema declares it. */
typedef struct cx_tool_arg {
    const char *name;
    bool has_default;
    long long default_int;   /* an integer default (0 when none) */
    const char *default_str; /* a string default, or NULL */
    long long minimum;       /* integer bounds: LLONG_MIN / LLONG_MAX when none */
    long long maximum;
    long long max_length; /* bytes of a string (maxLength), -1 when none */
    long long max_items;  /* elements of an array (maxItems), -1 when none */
} cx_tool_arg;

struct cx_tool_def {
    const char *name;
    cx_tool_fn run;
    bool read_only; /* annotations.readOnlyHint */
    const cx_tool_arg *args;
    size_t n_args;
};

extern const cx_tool_def cx_tool_table[];
extern const size_t cx_tool_table_len;
