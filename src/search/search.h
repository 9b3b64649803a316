/* SPDX-License-Identifier: Apache-2.0 */
/* Keyword search over the store's FTS5 index: BM25 with the title weighted
 * over the body, filters, snippets with highlighted matches, and a token
 * budget on the answer. */
#pragma once

#include "store/store.h"

#define CX_SEARCH_MAX_LIMIT 50
#define CX_SEARCH_MAX_QUERY 2000

typedef struct cx_search_query {
    const char *text;      /* user text; any content is valid */
    const char *kind;      /* NULL = any */
    const char *status;    /* NULL = any */
    const char *subcortex; /* NULL = any */
    cx_strv tags;          /* items must carry all of these */
    size_t limit;          /* 1..CX_SEARCH_MAX_LIMIT; 0 = 10 */
    size_t max_tokens;     /* answer budget, 4 bytes a token; 0 = 2000 */
} cx_search_query;

/* Ranked results. *out: {"query":…, "results":[{id, kind, status, subcortex,
 * title, snippet, score, tags, updated_at}…], "count":N, "truncated":bool}.
 * Snippets mark matches with «…» (U+00AB/U+00BB). A query with no
 * searchable words returns no results (not an error). */
int cx_search_run(cx_store *s, const cx_search_query *q, json_t **out);
