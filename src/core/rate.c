/* SPDX-License-Identifier: Apache-2.0 */
/* Token buckets by exact id (see rate.h): open addressing with linear
 * probing over a power-of-two table, FNV-1a over the whole id. Buckets are
 * never deleted one at a time; pruning rebuilds the table from the
 * survivors, so probing needs no tombstones. */
#include "core/rate.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    char id[CX_RATE_ID_MAX]; /* "" = a free slot */
    double tokens;
    uint64_t at_ns;
} bucket;

struct cx_rate {
    double rate, burst;
    size_t slots, used;
    bucket *t, *spare; /* spare: room for the survivors of a prune */
};

int cx_rate_new(cx_rate **out, double rate, double burst, size_t slots) {
    if (!(rate > 0) || !(burst >= 1) || slots < 4 || (slots & (slots - 1)))
        return cx_error_set(CX_EINVAL, "rate table: bad rate, burst or size");
    cx_rate *r = calloc(1, sizeof *r);
    if (!r)
        return CX_ENOMEM;
    r->rate = rate;
    r->burst = burst;
    r->slots = slots;
    r->t = calloc(slots, sizeof *r->t);
    r->spare = calloc(slots, sizeof *r->spare);
    if (!r->t || !r->spare) {
        cx_rate_free(r);
        return CX_ENOMEM;
    }
    *out = r;
    return 0;
}

void cx_rate_free(cx_rate *r) {
    if (!r)
        return;
    free(r->t);
    free(r->spare);
    free(r);
}

size_t cx_rate_count(const cx_rate *r) { return r->used; }

static uint64_t fnv64(const char *s) {
    uint64_t hv = 14695981039346656037ull;
    for (; *s; s++)
        hv = (hv ^ (unsigned char)*s) * 1099511628211ull;
    return hv;
}

/* The slot holding id, or the free slot where it goes (the table always
 * has a free slot). */
static bucket *slot(bucket *t, size_t slots, const char *id) {
    for (size_t i = fnv64(id) & (slots - 1);; i = (i + 1) & (slots - 1))
        if (!t[i].id[0] || strcmp(t[i].id, id) == 0)
            return &t[i];
}

/* Most drained first; of equals, the most recently used first. */
static int keep_first(const void *a, const void *b) {
    const bucket *x = a, *y = b;
    if (x->tokens != y->tokens)
        return x->tokens < y->tokens ? -1 : 1;
    return x->at_ns < y->at_ns ? 1 : x->at_ns > y->at_ns ? -1 : 0;
}

/* Keeps the buckets that have not refilled, brought up to now; if more
 * than half the table, the most drained half (a dropped bucket comes back
 * full, so dropping the fullest gives away the least). */
static void prune(cx_rate *r, uint64_t now) {
    size_t n = 0;
    for (size_t i = 0; i < r->slots; i++) {
        bucket b = r->t[i];
        if (!b.id[0])
            continue;
        if (now > b.at_ns) {
            b.tokens += (double)(now - b.at_ns) / 1e9 * r->rate;
            b.at_ns = now;
        }
        if (b.tokens < r->burst)
            r->spare[n++] = b;
    }
    if (n > r->slots / 2) {
        qsort(r->spare, n, sizeof *r->spare, keep_first);
        n = r->slots / 2;
    }
    memset(r->t, 0, r->slots * sizeof *r->t);
    for (size_t i = 0; i < n; i++)
        *slot(r->t, r->slots, r->spare[i].id) = r->spare[i];
    r->used = n;
}

int cx_rate_take(cx_rate *r, const char *id, uint64_t now_ns, bool take) {
    char key[CX_RATE_ID_MAX];
    snprintf(key, sizeof key, "%s", id && *id ? id : "?");
    bucket *b = slot(r->t, r->slots, key);
    if (!b->id[0]) {
        if (!take) /* no bucket: a full one */
            return 0;
        if (r->used + 1 > r->slots * 3 / 4) {
            prune(r, now_ns);
            b = slot(r->t, r->slots, key);
        }
        memcpy(b->id, key, sizeof key);
        b->tokens = r->burst;
        b->at_ns = now_ns;
        r->used++;
    }
    if (now_ns > b->at_ns) {
        b->tokens += (double)(now_ns - b->at_ns) / 1e9 * r->rate;
        b->at_ns = now_ns;
    }
    if (b->tokens > r->burst)
        b->tokens = r->burst;
    if (b->tokens < 1) { /* whole seconds, rounded up, at least 1 */
        double w = (1 - b->tokens) / r->rate;
        int secs = w > 1e6 ? 1000000 : (int)w;
        return secs < w || secs < 1 ? secs + 1 : secs;
    }
    if (take)
        b->tokens -= 1;
    return 0;
}
