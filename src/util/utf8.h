/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 checks shared by every layer that handles untrusted text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Bytes of the well-formed UTF-8 sequence at p (n bytes available), or 0
 * when p does not start one (overlongs, surrogates and code points past
 * U+10FFFF are not well-formed). */
size_t cx_utf8_seq_len(const unsigned char *p, size_t n);

/* True when s[0..n) is entirely well-formed UTF-8. */
bool cx_utf8_valid(const char *s, size_t n);

/* The largest length <= max at which s (len bytes, well-formed) can be cut
 * without splitting a sequence; len itself when len <= max. */
size_t cx_utf8_cut(const char *s, size_t len, size_t max);
