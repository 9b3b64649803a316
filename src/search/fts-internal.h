/* SPDX-License-Identifier: Apache-2.0 */
/* The query builder with a hook for the search module: `keep` decides
 * whether a word that is not plain ASCII is searchable at all (the
 * tokenizer may see nothing in it, such as "«" or "—"), because FTS5 treats
 * a phrase without tokens as matching nothing, which would empty an AND. */
#pragma once

#include "search/fts.h"

#include <stdbool.h>

#define CX_FTS_MAX_TERMS 64 /* words or phrases used from one query */

typedef bool (*cx_fts_keep_fn)(void *ud, const char *word, size_t len);

int cx_fts_build_query_keep(const char *text, cx_fts_mode mode, cx_fts_keep_fn keep, void *ud,
                            char **out);
