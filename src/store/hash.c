/* SPDX-License-Identifier: Apache-2.0 */
/* libsodium's SHA-256 and BLAKE2b through a table of function pointers
 * filled by dlopen() on first use (see hash.h for why). Only its headers
 * are a build dependency; the soname is the one meson found at build time
 * (CX_LIBSODIUM_SONAME). */
#include "store/hash.h"

#include "util/dl.h"
#include "util/error.h"

#include <pthread.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef CX_LIBSODIUM_SONAME
#define CX_LIBSODIUM_SONAME "libsodium.so.23"
#endif

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(cx_store_sha256) &&
                   alignof(crypto_hash_sha256_state) <= alignof(cx_store_sha256),
               "cx_store_sha256 holds libsodium's SHA-256 state");
_Static_assert(sizeof(crypto_generichash_state) <= sizeof(cx_store_blake2b) &&
                   alignof(crypto_generichash_state) <= alignof(cx_store_blake2b),
               "cx_store_blake2b holds libsodium's BLAKE2b state");
_Static_assert(crypto_hash_sha256_BYTES == 32, "SHA-256 is 32 bytes");

static struct {
    __typeof__(sodium_init) *init;
    __typeof__(crypto_hash_sha256_init) *sha256_init;
    __typeof__(crypto_hash_sha256_update) *sha256_update;
    __typeof__(crypto_hash_sha256_final) *sha256_final;
    __typeof__(crypto_generichash_init) *b2_init;
    __typeof__(crypto_generichash_update) *b2_update;
    __typeof__(crypto_generichash_final) *b2_final;
} na;
static bool na_loaded;
static char na_failure[600];
static pthread_once_t na_once = PTHREAD_ONCE_INIT;

static void na_load(void) {
    static const char *const sonames[] = {CX_LIBSODIUM_SONAME, NULL};
    const cx_dl_sym syms[] = {
        {"sodium_init", &na.init},
        {"crypto_hash_sha256_init", &na.sha256_init},
        {"crypto_hash_sha256_update", &na.sha256_update},
        {"crypto_hash_sha256_final", &na.sha256_final},
        {"crypto_generichash_init", &na.b2_init},
        {"crypto_generichash_update", &na.b2_update},
        {"crypto_generichash_final", &na.b2_final},
    };
    if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0) {
        snprintf(na_failure, sizeof na_failure, "%s", cx_error_last());
        return;
    }
    /* 1: initialised already (by cortex-core, or another copy of us) */
    if (na.init() < 0) {
        snprintf(na_failure, sizeof na_failure, "%s could not be initialised",
                 CX_LIBSODIUM_SONAME);
        return;
    }
    na_loaded = true;
}

int cx_store_hash_load(void) {
    pthread_once(&na_once, na_load);
    return na_loaded ? 0
                     : cx_error_set(CX_EFAIL,
                                    "libsodium: %s (SHA-256 and BLAKE2b, for the hashes of "
                                    "notes and artifacts; install libsodium, e.g. Debian's "
                                    "libsodium23)",
                                    na_failure);
}

static bool ready(void) {
    pthread_once(&na_once, na_load);
    return na_loaded;
}

static void to_hex(const unsigned char *d, size_t n, char *hex) {
    static const char digit[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digit[d[i] >> 4];
        hex[2 * i + 1] = digit[d[i] & 15];
    }
    hex[2 * n] = '\0';
}

void cx_store_sha256_init(cx_store_sha256 *h) {
    memset(h, 0, sizeof *h);
    if (ready())
        na.sha256_init((crypto_hash_sha256_state *)(void *)h->opaque);
}

void cx_store_sha256_update(cx_store_sha256 *h, const void *data, size_t len) {
    if (ready())
        na.sha256_update((crypto_hash_sha256_state *)(void *)h->opaque, data,
                         (unsigned long long)len);
}

void cx_store_sha256_final(cx_store_sha256 *h, char hex[65]) {
    unsigned char d[crypto_hash_sha256_BYTES] = {0};
    if (ready())
        na.sha256_final((crypto_hash_sha256_state *)(void *)h->opaque, d);
    to_hex(d, sizeof d, hex);
}

void cx_store_sha256_hex(const void *data, size_t len, char hex[65]) {
    cx_store_sha256 h;
    cx_store_sha256_init(&h);
    cx_store_sha256_update(&h, data, len);
    cx_store_sha256_final(&h, hex);
}

void cx_store_blake2b_init(cx_store_blake2b *h, size_t outlen) {
    memset(h, 0, sizeof *h);
    if (ready())
        na.b2_init((crypto_generichash_state *)(void *)h->opaque, NULL, 0, outlen);
}

void cx_store_blake2b_update(cx_store_blake2b *h, const void *data, size_t len) {
    if (ready())
        na.b2_update((crypto_generichash_state *)(void *)h->opaque, data,
                     (unsigned long long)len);
}

void cx_store_blake2b_final(cx_store_blake2b *h, unsigned char *out, size_t outlen) {
    memset(out, 0, outlen);
    if (ready())
        na.b2_final((crypto_generichash_state *)(void *)h->opaque, out, outlen);
}
