/* SPDX-License-Identifier: Apache-2.0 */
/* The store's hashes: SHA-256 (artifact blobs, an observation's content
 * hash) and BLAKE2b (the near-duplicate fold key), from libsodium, which
 * hash.c opens with dlopen() (util/dl.h) instead of linking it: linked,
 * every start of cortexd would map and relocate it before main(), while
 * only a store needs it. cx_store_open() loads it (cx_store_hash_load), on
 * cortexd's warm-up thread after `initialize` is answered. Nothing else in
 * the store calls libsodium. Store-internal, and what the store's public
 * hash functions (cx_blob_sha256, cx_item_content_hash) are built on. */
#pragma once

#include <stddef.h>

/* Loads and initialises libsodium, once per process; later calls return
 * the first call's result. 0, or CX_EFAIL with the loader's reason and
 * what to install ("libsodium: cannot load libsodium.so.23: ..."). Thread-
 * safe. The functions below need it to have succeeded: called without it
 * they load the library themselves, and should that fail their digest is
 * all zeros (defined, never a secret; a caller that can report the
 * failure calls this first, as cx_store_open does). */
int cx_store_hash_load(void);

/* A SHA-256 in progress: big enough for libsodium's state (checked in
 * hash.c). */
typedef struct cx_store_sha256 {
    _Alignas(16) unsigned char opaque[128];
} cx_store_sha256;

void cx_store_sha256_init(cx_store_sha256 *h);
void cx_store_sha256_update(cx_store_sha256 *h, const void *data, size_t len);
/* The digest as 64 lower-case hex digits and a NUL. */
void cx_store_sha256_final(cx_store_sha256 *h, char hex[65]);

/* SHA-256 of data[0, len) as 64 lower-case hex digits and a NUL. */
void cx_store_sha256_hex(const void *data, size_t len, char hex[65]);

/* An unkeyed BLAKE2b in progress (libsodium's crypto_generichash). */
typedef struct cx_store_blake2b {
    _Alignas(64) unsigned char opaque[384];
} cx_store_blake2b;

/* outlen: 16 to 64 bytes, the digest's size given again to final. */
void cx_store_blake2b_init(cx_store_blake2b *h, size_t outlen);
void cx_store_blake2b_update(cx_store_blake2b *h, const void *data, size_t len);
void cx_store_blake2b_final(cx_store_blake2b *h, unsigned char *out, size_t outlen);
