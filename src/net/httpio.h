/* SPDX-License-Identifier: Apache-2.0 */
/* What every HTTP client on net (the HTTP embedder, the sidecar's sync
 * client) needs from a response: a body buffer with a hard cap (a cx_buf, so a hostile server cannot make us
 * allocate without bound) and the Retry-After header's value. */
#pragma once

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct cx_http_body {
    cx_buf buf;   /* the body, NUL-terminated, capped at buf.max */
    bool too_big; /* the answer went past buf.max: the transfer was stopped */
} cx_http_body;

/* Readies b for answers of at most max bytes. */
void cx_http_body_init(cx_http_body *b, size_t max);

/* A CURLOPT_WRITEFUNCTION appending to the cx_http_body in `ud`; returns 0
 * (so libcurl fails the transfer) past the cap, with too_big set, or when
 * out of memory. */
size_t cx_http_body_write(char *ptr, size_t size, size_t nmemb, void *ud);

/* Empties the body for the next answer, keeping its buffer. */
void cx_http_body_reset(cx_http_body *b);
void cx_http_body_free(cx_http_body *b);

/* For a CURLOPT_HEADERFUNCTION: given one header line (n bytes, no NUL),
 * -2 for a status line ("HTTP/…": a new answer begins), the Retry-After
 * delay in milliseconds (delta seconds or an HTTP date; capped at one day)
 * for a Retry-After line, else -1. */
long cx_http_retry_after_ms(const char *line, size_t n);
