/* SPDX-License-Identifier: Apache-2.0 */
/* Turns untrusted query text into an FTS5 MATCH expression that can never be
 * a syntax error: every word is quoted, a trailing '*' makes a prefix query,
 * "double-quoted phrases" stay phrases, operators and punctuation in the
 * user's text are only ever data. */
#pragma once

#include <stddef.h>

typedef enum {
    CX_FTS_ALL, /* every term must match (AND) */
    CX_FTS_ANY, /* any term may match (OR) */
} cx_fts_mode;

/* *out (malloc'd, caller frees) is the MATCH expression, or NULL when the
 * text has no searchable words (then 0 is returned too). CX_ENOMEM,
 * CX_ELIMIT for text over CX_SEARCH_MAX_QUERY bytes. */
int cx_fts_build_query(const char *text, cx_fts_mode mode, char **out);
