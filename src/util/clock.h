/* SPDX-License-Identifier: Apache-2.0 */
/* Wall-clock and monotonic time, and ISO 8601 (UTC) text for timestamps. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CX_ISO_LEN 32

/* Milliseconds since the Unix epoch (wall clock). */
uint64_t cx_clock_now_ms(void);

/* Monotonic nanoseconds, for measuring durations. */
uint64_t cx_clock_mono_ns(void);

/* Monotonic milliseconds, for deadlines. */
uint64_t cx_clock_mono_ms(void);

/* Sleeps `ms` milliseconds, resuming after signals. */
void cx_clock_sleep_ms(uint64_t ms);

/* Formats `ms` as "2026-11-22T11:33:03.123Z" into out[CX_ISO_LEN]. */
void cx_clock_format(uint64_t ms, char out[CX_ISO_LEN]);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]]" with an optional "Z" or
 * "±HH:MM" suffix (no suffix means UTC). Returns 0 or CX_EINVAL. */
int cx_clock_parse(const char *s, uint64_t *ms);
