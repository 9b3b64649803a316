/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log: every decision and key change, hash-chained. Entry n's
 * hash is BLAKE2b-256, keyed by the server secret, over the previous hash
 * and the entry's fields, so editing, removing or reordering any row breaks
 * the chain from there on, and rewriting the chain needs the secret. */
#pragma once

#include "core/keys.h"
#include "core/storage.h"

#include <jansson.h>

/* Appends an entry inside the caller's write transaction. detail is
 * serialised with sorted keys. */
int cx_audit_append(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *team,
                    const char *actor, const char *action, const json_t *detail);

/* Checks the whole chain. 0 when intact (*entries counts them);
 * CX_ECONFLICT at the first broken entry, its number in *bad and the
 * reason in cx_error_last(). */
int cx_audit_verify(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], int64_t *entries,
                    int64_t *bad);

/* Goes on checking the chain after entry *n, whose hash is `hash` (*n 0:
 * from the start; hash then ignored), to its end: 0 with *n and hash
 * moved to the last entry; CX_ECONFLICT at the first broken entry (its
 * number in *bad), *n and hash then at the last good one. For a caller that
 * keeps the verified prefix (the app's audit view). */
int cx_audit_verify_from(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], int64_t *n,
                         char hash[65], int64_t *bad);
