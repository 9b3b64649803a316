/* SPDX-License-Identifier: Apache-2.0 */
/* Identifiers in text: the one definition of how an identifier is cut into
 * parts and of what joins two words into one identifier. The "cortex" FTS5
 * tokenizer (documents, text/tokenizer.c) and the search query builder
 * (queries, search/fts.c) both use it, so that they always agree. Pure
 * text processing: no store, no SQLite. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct cx_text_span {
    size_t off, len;
} cx_text_span;

/* Parts of one identifier segment (the bytes between joiners) at camelCase
 * and letter/digit boundaries: "parseConfigFile" -> parse|Config|File,
 * "XMLParser" -> XML|Parser, "sha256sum" -> sha|256|sum. Only ASCII
 * letters and digits are cut; a segment with any other byte is one part.
 * Returns the number of parts (at most max; the last one takes the rest),
 * 0 when n or max is 0. */
size_t cx_text_ident_parts(const char *s, size_t n, cx_text_span *parts, size_t max);

/* True when the n bytes at s join two words into one identifier: one of
 * '_' '.' '/' '-', or "::", "->", "__". */
bool cx_text_ident_joiner(const char *s, size_t n);
