/* SPDX-License-Identifier: Apache-2.0 */
/* The hash-chained audit log (see audit.h). */
#include "core/audit.h"

#include "util/clock.h"
#include "util/error.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char GENESIS[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Each field is length-prefixed so that no two entries hash the same text. */
static void feed(crypto_generichash_state *h, const char *s) {
    uint64_t n = strlen(s);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    crypto_generichash_update(h, len, sizeof len);
    crypto_generichash_update(h, (const unsigned char *)s, n);
}

static void entry_hash(const uint8_t secret[CX_SECRET_LEN], const cx_storage_audit *a,
                       char out[65]) {
    crypto_generichash_state h;
    char num[64];
    crypto_generichash_init(&h, secret, CX_SECRET_LEN, 32);
    feed(&h, a->prev);
    snprintf(num, sizeof num, "%lld/%lld", (long long)a->n, (long long)a->ts_ms);
    feed(&h, num);
    feed(&h, a->team);
    feed(&h, a->actor);
    feed(&h, a->action);
    feed(&h, a->detail);
    uint8_t d[32];
    crypto_generichash_final(&h, d, sizeof d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

int cx_audit_append(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *team,
                    const char *actor, const char *action, const json_t *detail) {
    int64_t n = 0;
    char prev[65], hash[65];
    int r = cx_storage_audit_last(tx, &n, prev);
    if (r)
        return r;
    char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return CX_ENOMEM;
    cx_storage_audit a = {
        .n = n + 1,
        .ts_ms = (int64_t)cx_clock_now_ms(),
        .team = team,
        .actor = actor,
        .action = action,
        .detail = text,
        .prev = n ? prev : GENESIS,
    };
    entry_hash(secret, &a, hash);
    a.hash = hash;
    r = cx_storage_audit_put(tx, &a);
    free(text);
    return r;
}

typedef struct walk {
    const uint8_t *secret;
    int64_t count;
    char prev[65];
} walk;

static int check_entry(void *ud, const cx_storage_audit *a) {
    walk *w = ud;
    char want[65];
    if (a->n != w->count + 1)
        return cx_error_set(CX_ECONFLICT, "entry %lld follows entry %lld: entries are missing",
                            (long long)a->n, (long long)w->count);
    if (strcmp(a->prev, w->prev) != 0)
        return cx_error_set(CX_ECONFLICT, "entry %lld does not link to the entry before it",
                            (long long)a->n);
    entry_hash(w->secret, a, want);
    if (strlen(a->hash) != 64 || sodium_memcmp(want, a->hash, 64) != 0)
        return cx_error_set(CX_ECONFLICT, "entry %lld was altered: its hash does not match",
                            (long long)a->n);
    w->count = a->n;
    memcpy(w->prev, a->hash, 65);
    return 0;
}

int cx_audit_verify(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], int64_t *entries,
                    int64_t *bad) {
    walk w = {.secret = secret, .count = 0};
    memcpy(w.prev, GENESIS, sizeof GENESIS);
    int r = cx_storage_audit_each(tx, check_entry, &w);
    *entries = w.count;
    if (r == CX_ECONFLICT)
        *bad = w.count + 1;
    return r;
}

int cx_audit_verify_from(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], int64_t *n,
                         char hash[65], int64_t *bad) {
    walk w = {.secret = secret, .count = *n};
    memcpy(w.prev, *n ? hash : GENESIS, 64);
    w.prev[64] = '\0';
    int r = cx_storage_audit_since(tx, *n, check_entry, &w);
    if (r == CX_ECONFLICT)
        *bad = w.count + 1;
    *n = w.count;
    memcpy(hash, w.prev, 65);
    return r;
}
