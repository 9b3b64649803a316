/* SPDX-License-Identifier: Apache-2.0 */
/* The "cortex" FTS5 tokenizer: unicode61 for the words, joined into
 * identifiers (`parse_config`, `retry.policy.max`) that a document indexes
 * whole and by their parts (text/ident.h). The store registers it on every
 * connection it opens; search finds it by name on that connection to cut
 * snippets and to tell whether a query word has any token. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define CX_TEXT_TOKENIZER "cortex" /* its name in `tokenize = '…'` */

/* The version of what the tokenizer emits. The store records the version
 * its FTS indexes were built with and rebuilds them when it differs (an
 * index must be read with the tokenizer that wrote it). 1: identifiers;
 * 2: bigrams for CJK and Thai, emoji, NFC, exact forms of words with
 * diacritics; 3: English stems of plain words (CX_TEXT_STEM_MARK); 4: -ic
 * verbs' stems without the k of -cking/-cked (panicking -> panic). Raise
 * it whenever a token changes. */
#define CX_TEXT_TOKENIZER_VERSION 4

/* A query string that starts with this asks for the exact (case-folded,
 * not diacritic-folded) forms of its words: "=café" matches café, not
 * cafe; "café" matches both. */
#define CX_TEXT_EXACT_MARK '='

/* A document indexes each plain word (ASCII letters only, not part of an
 * identifier: no '_', joiner, digit or camelCase boundary) also as its
 * English Snowball stem behind this mark, at the same position:
 * `deadlocks` is deadlocks = ~deadlock. No other token starts with it
 * (unicode61 never keeps '~'), so stems and words are distinct terms. A
 * query string that starts with the mark asks for the stems of its words:
 * "~deadlocking" matches ~deadlock. */
#define CX_TEXT_STEM_MARK '~'

/* Registers the tokenizer on db (the FTS5 of that connection). Returns a
 * SQLite result code: SQLITE_ERROR when this SQLite has no FTS5 or
 * libstemmer cannot be loaded (cx_text_stemmer_load() says why). */
int cx_text_tokenizer_register(sqlite3 *db);

/* Loads libstemmer (dlopen() of the soname found at build time) once per
 * process; thread-safe, and cheap after the first call. The tokenizer
 * needs it: cx_text_tokenizer_register() calls it, and a caller that
 * wants the reason for a failed registration calls it first. 0, or
 * CX_EFAIL with which library or symbol is missing. */
int cx_text_stemmer_load(void);

/* Where the base tokens of documents go (the store's typo dictionary): the
 * words, whole identifiers and identifier parts a document is indexed by,
 * as the index holds them (folded, lower-cased), never the colocated
 * marked forms (stems, exact forms), bigrams or emoji. Called from inside
 * FTS5's tokenization: it must not run SQL on the connection. */
typedef void (*cx_text_term_fn)(void *ud, const char *term, int len);

/* Sets (fn non-NULL) or clears the sink of the tokenizer registered on db
 * by cx_text_tokenizer_register; it applies to every instance on that
 * connection, tokenizing a document (FTS5_TOKENIZE_DOCUMENT, not a query
 * or an auxiliary function's). ud is borrowed. SQLITE_ERROR when the
 * tokenizer is not registered on db. */
int cx_text_tokenizer_sink(sqlite3 *db, cx_text_term_fn fn, void *ud);

/* Tokenizes a document's text as the index does (FTS5_TOKENIZE_DOCUMENT)
 * through `tok`, an instance of the "cortex" tokenizer, for a reader that
 * compares its tokens with a query's (search's snippets): words are
 * stemmed only when their first letter is in stem_initials (bit c - 'a';
 * UINT32_MAX: all). Snowball keeps a word's first letter, so no stem
 * starting otherwise could equal a query's stem; stemming is most of a
 * plain word's cost. The tokens go to xtoken only, never to the sink of
 * base tokens (cx_text_tokenizer_sink): a snippet indexes nothing. */
int cx_text_tokenize_snippet(Fts5Tokenizer *tok, void *ctx, const char *text, int n,
                             uint32_t stem_initials,
                             int (*xtoken)(void *, int, const char *, int, int, int));

/* For tests only (tests/unit/test-text.c compares the two paths): on,
 * every instance in the process finds words with SQLite's unicode61 alone,
 * as before the ASCII fast path; off (the default), ASCII spans of text are
 * split by the tokenizer itself, with the same tokens, flags and offsets.
 * Process-wide; a program never calls it. */
void cx_text_tokenizer_test_slow(bool on);

/* The fts5_api of a connection, borrowed; NULL without FTS5. */
fts5_api *cx_text_fts5_api(sqlite3 *db);
