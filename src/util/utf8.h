/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 checks shared by every layer that handles untrusted text. */
#pragma once

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the well-formed UTF-8 sequence at p (n bytes available), or 0
 * when p does not start one (overlongs, surrogates and code points past
 * U+10FFFF are not well-formed). */
size_t cx_utf8_seq_len(const unsigned char *p, size_t n);

/* True when s[0..n) is entirely well-formed UTF-8. */
bool cx_utf8_valid(const char *s, size_t n);

/* The length of the longest well-formed prefix of s[0..n): the offset of
 * the first byte that does not begin a well-formed sequence, n when there
 * is none (for messages that say where text goes wrong). */
size_t cx_utf8_valid_prefix(const char *s, size_t n);

/* The largest length <= max at which s (len bytes, well-formed) can be cut
 * without splitting a sequence; len itself when len <= max. */
size_t cx_utf8_cut(const char *s, size_t len, size_t max);

/* Appends s[0..n) to out with every byte that does not begin a well-formed
 * sequence replaced by U+FFFD, so that the result is valid UTF-8 (for JSON,
 * which accepts nothing else). The one sanitiser: use it rather than a loop
 * of your own. 0, or an error of cx_buf_add (CX_ELIMIT past out's cap: at
 * most 3 * n bytes are added). */
int cx_utf8_sanitize(const char *s, size_t n, cx_buf *out);
