/* SPDX-License-Identifier: Apache-2.0 */
/* ULIDs: 26-character, time-sortable identifiers generated where an item is
 * born (48-bit milliseconds + 80 random bits, Crockford base32). Ids made in
 * one process within the same millisecond are strictly increasing. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define CX_ULID_LEN 26

/* Writes a new ULID and a NUL into out[27]. Returns 0 or CX_EFAIL when the
 * system has no randomness to give. */
int cx_ulid_new(char out[CX_ULID_LEN + 1]);

/* True when s is exactly a well-formed ULID (case-insensitive). */
bool cx_ulid_valid(const char *s);

/* The millisecond timestamp encoded in a valid ULID. */
uint64_t cx_ulid_time_ms(const char *s);
