/* SPDX-License-Identifier: Apache-2.0 */
/* Canonical composition (NFC) of Latin, Greek and Cyrillic letters with
 * the combining marks U+0300-U+036F, from a small built-in table (no ICU):
 * enough for the tokenizer to index NFD and NFC text alike. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The character at s (n > 0 bytes left): sets *cp to its code point and
 * returns its length in bytes; an invalid byte is length 1 and U+FFFD. */
size_t cx_text_cp_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when s (n bytes) holds a combining mark of U+0300-U+036F, i.e.
 * when cx_text_nfc may change it. */
bool cx_text_nfc_needed(const char *s, size_t n);

/* Writes s composed into out (at least n bytes: composition never makes
 * text longer) and returns its length. Marks with no precomposed letter,
 * other scripts and invalid bytes are copied unchanged. */
size_t cx_text_nfc(const char *s, size_t n, char *out);

/* The bare lower-case letter of a Greek letter with accents or breathings
 * (ά -> α, ῷ -> ω); any other code point unchanged. */
uint32_t cx_text_greek_fold(uint32_t c);

/* Writes s with every Greek letter folded by cx_text_greek_fold into out
 * (at least n bytes: folding never makes text longer) and returns its
 * length. */
size_t cx_text_greek_fold_str(const char *s, size_t n, char *out);
