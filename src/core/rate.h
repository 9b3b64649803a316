/* SPDX-License-Identifier: Apache-2.0 */
/* Token buckets for cortex-core's rate limits, one per id (a key id, an
 * address), kept by the exact id: two ids never share a bucket. The table
 * has a fixed number of slots; when it would be more than 3/4 full, the
 * buckets that have refilled are dropped (a new bucket starts full, so that
 * loses nothing), then, while over half full, the fullest (so that a
 * flood of new ids cannot hand a drained bucket a fresh burst).
 * Not thread-safe: the caller serialises. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CX_RATE_ID_MAX 64 /* ids longer than this minus one are cut */

typedef struct cx_rate cx_rate;

/* A table of `slots` buckets (a power of two, at least 4), each refilling
 * `rate` tokens a second up to `burst` (rate > 0, burst >= 1). *out is the
 * caller's. CX_EINVAL, CX_ENOMEM. */
int cx_rate_new(cx_rate **out, double rate, double burst, size_t slots);
void cx_rate_free(cx_rate *r);

/* 0 when id's bucket holds a token at now_ns (monotonic), which is taken
 * when `take`; else the whole seconds until it will (>= 1). Looking
 * (take false) at an id without a bucket creates none. */
int cx_rate_take(cx_rate *r, const char *id, uint64_t now_ns, bool take);

/* The buckets held. */
size_t cx_rate_count(const cx_rate *r);
