/* SPDX-License-Identifier: Apache-2.0 */
/* Copying a whole core from one database to another (cortex-core migrate:
 * a SQLite core into PostgreSQL), and proving the copy before anything is
 * pointed at it. */
#pragma once

#include "core/keys.h"
#include "core/storage.h"

#include <stdint.h>

/* What was copied (and then found again on the target). */
typedef struct cx_migrate_report {
    int64_t teams, keys, items, tombstones, ops, blobs, blob_bytes, audit;
} cx_migrate_report;

/* Called now and then during a long copy: what is being done, and how
 * many of it so far. */
typedef void (*cx_migrate_progress)(void *ud, const char *what, int64_t done);

/* Copies everything src holds (teams with their seqs and tombstone
 * horizons, keys, items and tombstones, op idempotency records, blobs,
 * the audit chain) into dst in ONE write transaction, reading src in one
 * snapshot, then verifies dst in fresh transactions: the same counts, the
 * same seq and horizon per team, every item and tombstone byte for byte,
 * every op record, every key, every blob's bytes hashing to its name, and
 * the audit chain intact under secret and ending in src's last hash.
 *
 * dst must hold no core data yet (CX_ECONFLICT otherwise, nothing
 * written). src is only read. On a failed copy dst is left as it was (the
 * transaction rolls back); on a failed verification the copy stays in dst
 * and the error (CX_ECONFLICT) says what differs. *rep counts what was
 * copied. */
int cx_migrate_copy(cx_storage *src, cx_storage *dst, const uint8_t secret[CX_SECRET_LEN],
                    cx_migrate_report *rep, cx_migrate_progress progress, void *pud);
