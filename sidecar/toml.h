/* SPDX-License-Identifier: Apache-2.0 */
/* A small validating TOML 1.0 reader, enough to edit one table of a file
 * that a person also edits (Codex's .codex/config.toml) without touching
 * any other byte of it.
 *
 * It checks the whole grammar and the table rules of TOML 1.0 (strings of
 * all four kinds with their escapes, 64-bit integers in every base, floats,
 * booleans, date-times, arrays, inline tables, dotted and quoted keys,
 * [tables] and [[arrays of tables]], duplicate keys and redefined tables)
 * and reports the first error with its line and column. It builds no value
 * tree: besides validating, it answers questions about one table, named by
 * its key path:
 *
 *   - how that table is defined (by its own [header], only implicitly by
 *     sub-table headers, or in a form that cannot be edited as a block:
 *     an inline table, dotted keys, a value, an array of tables);
 *   - the byte range of its section together with the sections of its
 *     sub-tables that follow it;
 *   - the string and string-array values of the keys written directly in its
 *     section, and the bytes of each such `key = value` line.
 *
 * Documents are untrusted: nesting of arrays and inline tables is capped, and
 * memory grows linearly with the document's size. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Where and why a document is not valid TOML. line and column are 1-based;
 * the column counts characters (code points), not bytes. */
typedef struct cx_toml_error {
    int line;
    int column;
    char message[192];
} cx_toml_error;

/* Checks that doc[0..len) is a valid TOML 1.0 document. 0 when it is;
 * CX_EINVAL with *err filled (err may be NULL) when not; CX_ENOMEM. */
int cx_toml_validate(const char *doc, size_t len, cx_toml_error *err);

/* How a table is defined in a document. */
typedef enum cx_toml_form {
    CX_TOML_ABSENT,   /* not defined at all: a [header] for it can be appended */
    CX_TOML_TABLE,    /* by its own [header] (and maybe sub-table headers) */
    CX_TOML_IMPLICIT, /* only by headers of its sub-tables, e.g. [a.b.c] for a.b;
                         a [header] for it can still be appended */
    CX_TOML_OTHER,    /* as an inline table, by dotted keys, as a value or an array
                         of tables, or under a parent that is one of those:
                         cx_toml_table_how() says which */
} cx_toml_form;

/* What one parse learned about one table (opaque). */
typedef struct cx_toml_table cx_toml_table;

/* Validates doc[0..len) and finds the table named by path[0..depth) (the
 * unquoted key parts, e.g. {"mcp_servers", "cortex"}; depth >= 1). *out is
 * owned by the caller (cx_toml_table_free) and set only on success.
 * CX_EINVAL with *err filled (err may be NULL) for an invalid document;
 * CX_ENOMEM. */
int cx_toml_find(const char *doc, size_t len, const char *const *path, size_t depth,
                 cx_toml_table **out, cx_toml_error *err);

cx_toml_form cx_toml_table_form(const cx_toml_table *t);

/* For CX_TOML_OTHER: how the table is defined, e.g. "an inline table (line 4)"
 * or "dotted keys (line 2)", for a message; "" otherwise. Borrowed. */
const char *cx_toml_table_how(const cx_toml_table *t);

/* For CX_TOML_TABLE: the byte offsets of the start of its header line, the
 * start of the line after the header, and the end of its range: the start
 * of the line of the next header that is not one of its sub-tables, or the
 * end of the document. Returns false (outputs untouched) for other forms. */
bool cx_toml_table_range(const cx_toml_table *t, size_t *start, size_t *body, size_t *end);

/* The string value of `key` written as `key = "…"` in the table's own
 * section (borrowed, NUL-terminated; a \u0000 escape truncates it).
 * CX_ENOTFOUND when the table has no such key; CX_EINVAL when the key holds
 * another type or is defined with dotted keys or as a sub-table. */
int cx_toml_table_string(const cx_toml_table *t, const char *key, const char **out);

/* Like cx_toml_table_string for an array whose elements are all strings:
 * *items (borrowed; NULL when empty) and *n. */
int cx_toml_table_strings(const cx_toml_table *t, const char *key, const char *const **items,
                          size_t *n);

/* The bytes of a `key = value` line in the table's own section: from the
 * first byte of the key to just past the line's newline (or the end of the
 * document), comments on that line included. CX_ENOTFOUND when absent;
 * CX_EINVAL when the key is defined with dotted keys or as a sub-table. */
int cx_toml_table_key_span(const cx_toml_table *t, const char *key, size_t *start, size_t *end);

void cx_toml_table_free(cx_toml_table *t);

/* s[0..n) as a TOML basic string with its quotes, escaping what must be
 * escaped. *out is malloc'd, owned by the caller. CX_EINVAL when s is not
 * valid UTF-8 (TOML cannot represent it); CX_ENOMEM. */
int cx_toml_quote(const char *s, size_t n, char **out);
