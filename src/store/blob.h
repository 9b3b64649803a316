/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the store's content-addressed blobs (the files under
 * <state_dir>/blobs/, see blob.c) for whoever needs their bytes: the sync
 * engine uploads them to a core, and writes the content of pulled artifact
 * versions fetched from it. */
#pragma once

#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes kept of why a fetch failed. */
#define CX_BLOB_MAX_ERROR 400
/* A blob whose fetch failed is tried again after this long (a core that
 * serves bad content is not asked for it on every pull). */
#define CX_BLOB_RETRY_MS (5u * 60 * 1000)

/* The content of blob `sha` (64 lower-case hex digits; CX_EINVAL
 * otherwise) as a malloc'd buffer of *len bytes (at most
 * CX_STORE_MAX_BLOB), checked against its name: CX_ENOTFOUND when the
 * file is absent, CX_EIO when its content does not hash to its name (a
 * damaged blob is never served). */
int cx_blob_read(cx_store *s, const char *sha, char **data, size_t *len);

/* Lower-case hex sha-256 of data into out[65]: a blob's name, and a name
 * for anything that must not be its own file name (a hook's session id). */
void cx_blob_sha256(const void *data, size_t len, char out[65]);

/* The blobs that pulled artifact versions name and this machine lacks, at
 * most max, oldest first, as [{"sha256", "size" (-1: not known)}] (*out owned by the
 * caller); one whose last fetch failed only CX_BLOB_RETRY_MS after it. */
int cx_blob_missing(cx_store *s, size_t max, json_t **out);

/* A blob being written from the core, as it arrives: never held whole in
 * memory. open makes a temporary file beside where the blob goes (size is
 * what the version says, -1 when it said none: CX_ELIMIT past
 * CX_STORE_MAX_BLOB); write appends (CX_ELIMIT past size, or past the
 * limit); commit checks the size (when known) and the sha-256 (CX_EIO
 * naming both when they do not match: content from a core is never taken
 * on its word), then renames it into place and records the blob present.
 * free removes what was not committed; it accepts NULL. */
typedef struct cx_blob_fetch cx_blob_fetch;
int cx_blob_fetch_open(cx_store *s, const char *sha, int64_t size, cx_blob_fetch **out);
int cx_blob_fetch_write(cx_blob_fetch *f, const void *data, size_t len);
int cx_blob_fetch_commit(cx_store *s, cx_blob_fetch *f);
void cx_blob_fetch_free(cx_blob_fetch *f);

/* Records why fetching blob sha failed (kept, cut to CX_BLOB_MAX_ERROR
 * printable bytes, and shown by cx_store_artifact_content), and when. */
int cx_blob_fetch_failed(cx_store *s, const char *sha, const char *why);
