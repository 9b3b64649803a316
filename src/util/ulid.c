/* SPDX-License-Identifier: Apache-2.0 */
/* ULID generation with per-process monotonicity. */
#include "util/ulid.h"

#include "util/clock.h"
#include "util/error.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint8_t last_rand[10];

static int decode_char(int c) {
    c = toupper(c);
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

int cx_ulid_new(char out[CX_ULID_LEN + 1]) {
    uint8_t b[16];
    uint64_t ms = cx_clock_now_ms();

    pthread_mutex_lock(&lock);
    if (ms <= last_ms) {
        /* Same (or earlier, after a clock step) millisecond: increment. */
        ms = last_ms;
        int i = 9;
        while (i >= 0 && ++last_rand[i] == 0)
            i--;
        if (i < 0) { /* 2^80 ids in one millisecond: move to the next one */
            ms = ++last_ms;
        }
    } else {
        if (getrandom(last_rand, sizeof last_rand, 0) != (ssize_t)sizeof last_rand) {
            pthread_mutex_unlock(&lock);
            return cx_error_set(CX_EFAIL, "no randomness available for a new id");
        }
        last_rand[0] &= 0x7f; /* room to increment without overflow */
        last_ms = ms;
    }
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, last_rand, 10);
    pthread_mutex_unlock(&lock);

    /* 128 bits as 26 base32 digits: the first digit holds the top 3 bits. */
    unsigned bit = 0;
    for (int i = 0; i < CX_ULID_LEN; i++) {
        unsigned width = i == 0 ? 3 : 5, v = 0;
        for (unsigned k = 0; k < width; k++, bit++)
            v = (v << 1) | ((b[bit / 8] >> (7 - bit % 8)) & 1u);
        out[i] = alphabet[v];
    }
    out[CX_ULID_LEN] = '\0';
    return 0;
}

bool cx_ulid_valid(const char *s) {
    if (!s || strlen(s) != CX_ULID_LEN)
        return false;
    if (decode_char(s[0]) < 0 || decode_char(s[0]) > 7)
        return false;
    for (int i = 1; i < CX_ULID_LEN; i++)
        if (decode_char(s[i]) < 0)
            return false;
    return true;
}

uint64_t cx_ulid_time_ms(const char *s) {
    uint64_t ms = 0;
    for (int i = 0; i < 10; i++)
        ms = (ms << 5) | (uint64_t)decode_char(s[i]);
    return ms;
}
