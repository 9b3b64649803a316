/* SPDX-License-Identifier: Apache-2.0 */
/* The "cortex" FTS5 tokenizer: unicode61 for the words, joined into
 * identifiers (`parse_config`, `retry.policy.max`) that a document indexes
 * whole and by their parts (text/ident.h). The store registers it on every
 * connection it opens; search finds it by name on that connection to cut
 * snippets and to tell whether a query word has any token. */
#pragma once

#include <sqlite3.h>

#define CX_TEXT_TOKENIZER "cortex" /* its name in `tokenize = '…'` */

/* Registers the tokenizer on db (the FTS5 of that connection). Returns a
 * SQLite result code: SQLITE_ERROR when this SQLite has no FTS5. */
int cx_text_tokenizer_register(sqlite3 *db);

/* The fts5_api of a connection, borrowed; NULL without FTS5. */
fts5_api *cx_text_fts5_api(sqlite3 *db);
