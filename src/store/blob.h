/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the store's content-addressed blobs (the files under
 * <state_dir>/blobs/, see blob.c) for whoever needs their bytes: the sync
 * engine uploads them to a core. */
#pragma once

#include "store/store.h"

#include <stddef.h>

/* The content of blob `sha` (64 lower-case hex digits; CX_EINVAL
 * otherwise) as a malloc'd buffer of *len bytes (at most
 * CX_STORE_MAX_BLOB), checked against its name: CX_ENOTFOUND when the
 * file is absent, CX_EIO when its content does not hash to its name (a
 * damaged blob is never served). */
int cx_blob_read(cx_store *s, const char *sha, char **data, size_t *len);

/* Lower-case hex sha-256 of data into out[65]: a blob's name, and a name
 * for anything that must not be its own file name (a hook's session id). */
void cx_blob_sha256(const void *data, size_t len, char out[65]);
