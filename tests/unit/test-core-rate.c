/* SPDX-License-Identifier: Apache-2.0 */
/* cortex-core's rate buckets (src/core/rate.c): ids that shared a slot of
 * the former 1,024-slot hashed table keep their own buckets; a look does
 * not take; refills; pruning drops refilled buckets without loss, then the
 * fullest, so that a flood of new ids does not refill a drained one. */
#include "core/rate.h"

#include "test.h"

#include <stdint.h>
#include <stdio.h>

#define SEC 1000000000ull

/* The slot an id took in the former table (FNV-1a, 32 bits, mod 1024). */
static unsigned old_slot(const char *s) {
    uint32_t hv = 2166136261u;
    for (; *s; s++)
        hv = (hv ^ (unsigned char)*s) * 16777619u;
    return hv % 1024;
}

int main(void) {
    cx_rate *r = NULL;
    CX_CHECK_INT(cx_rate_new(&r, 1, 2, 1000), CX_EINVAL); /* not a power of two */
    CX_CHECK_INT(cx_rate_new(&r, 0, 2, 1024), CX_EINVAL);
    CX_CHECK_OK(cx_rate_new(&r, 0.5, 2, 64));
    if (!r)
        return cx_test_done();

    /* two key ids of one old slot */
    char a[32] = "", b[32] = "";
    unsigned seen[1024] = {0};
    for (unsigned i = 1; i < 100000 && !b[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "k:%016x", i * 2654435761u);
        unsigned s = old_slot(id + 2);
        if (seen[s]) {
            snprintf(a, sizeof a, "k:%016x", seen[s] * 2654435761u);
            snprintf(b, sizeof b, "%s", id);
        } else {
            seen[s] = i;
        }
    }
    CX_CHECK(b[0] && old_slot(a + 2) == old_slot(b + 2));
    uint64_t t = 100 * SEC;
    int got[6];
    for (int i = 0; i < 6; i++)
        got[i] = cx_rate_take(r, i % 2 ? b : a, t, true);
    CX_CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0);
    CX_CHECK(got[4] >= 1 && got[5] >= 1); /* each drained its own bucket */
    CX_CHECK_INT(cx_rate_take(r, a, t, false), 2); /* (1 - 0) / 0.5 s */
    CX_CHECK_INT(cx_rate_take(r, a, t + 2 * SEC, false), 0); /* refilled one token */
    CX_CHECK_INT(cx_rate_take(r, a, t + 2 * SEC, false), 0); /* looking takes nothing */
    CX_CHECK_INT(cx_rate_take(r, a, t + 2 * SEC, true), 0);
    CX_CHECK(cx_rate_take(r, a, t + 2 * SEC, true) >= 1);
    CX_CHECK_INT(cx_rate_take(r, "never-seen", t, false), 0);
    CX_CHECK_INT((int)cx_rate_count(r), 2); /* a look creates no bucket */
    CX_CHECK_INT(cx_rate_take(r, a, t + 1 * SEC, false) >= 0, 1); /* an earlier time: no harm */

    /* 200 one-shot ids that refill within 4 s: pruned without loss, and a
     * drained bucket of the last second survives */
    t += 3 * SEC;
    CX_CHECK(cx_rate_take(r, b, t, true) >= 0);
    while (cx_rate_take(r, b, t, true) == 0)
        ;
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof id, "a:10.0.%d.%d", i / 256, i % 256);
        cx_rate_take(r, id, t + (uint64_t)i * SEC / 10, true);
    }
    CX_CHECK(cx_rate_count(r) <= 48);
    /* a bucket drained now survives 40 new ids (each one token down) */
    uint64_t now = t + 20 * SEC;
    while (cx_rate_take(r, "k:recent", now, true) == 0)
        ;
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof id, "a:10.1.0.%d", i);
        cx_rate_take(r, id, now, true);
    }
    CX_CHECK(cx_rate_take(r, "k:recent", now, false) >= 1);
    CX_CHECK(cx_rate_count(r) <= 48);

    /* all drained: the ones that refilled most (the oldest) go first */
    cx_rate *q = NULL;
    CX_CHECK_OK(cx_rate_new(&q, 0.001, 1, 16));
    if (q) {
        for (int i = 0; i < 40; i++) {
            char id[32];
            snprintf(id, sizeof id, "a:%d", i);
            cx_rate_take(q, id, SEC + (uint64_t)i, true); /* drained at once (burst 1) */
        }
        CX_CHECK(cx_rate_count(q) <= 12);
        CX_CHECK(cx_rate_take(q, "a:39", SEC + 40, false) >= 1); /* the newest kept */
        CX_CHECK_INT(cx_rate_take(q, "a:0", SEC + 40, false), 0); /* the oldest evicted */
    }
    cx_rate_free(q);
    cx_rate_free(r);
    cx_rate_free(NULL);
    return cx_test_done();
}
