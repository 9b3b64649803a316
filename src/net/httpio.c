/* SPDX-License-Identifier: Apache-2.0 */
/* Capped response bodies and Retry-After, shared by the HTTP clients. */
#include "net/httpio.h"

#include "net/curlapi.h"
#include "util/error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DAY_MS 86400000L

void cx_http_body_init(cx_http_body *b, size_t max) {
    *b = (cx_http_body){.too_big = false};
    cx_buf_init(&b->buf, max);
}

size_t cx_http_body_write(char *ptr, size_t size, size_t nmemb, void *ud) {
    cx_http_body *b = ud;
    if (nmemb && size > SIZE_MAX / nmemb) {
        b->too_big = true;
        return 0;
    }
    size_t n = size * nmemb;
    int r = cx_buf_add(&b->buf, ptr, n);
    if (r == CX_ELIMIT)
        b->too_big = true;
    return r ? 0 : n; /* 0: CURLE_WRITE_ERROR */
}

void cx_http_body_reset(cx_http_body *b) {
    cx_buf_reset(&b->buf);
    b->too_big = false;
}

void cx_http_body_free(cx_http_body *b) {
    cx_buf_free(&b->buf);
}

long cx_http_retry_after_ms(const char *line, size_t n) {
    static const char name[] = "retry-after:";
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0)
        return -2;
    if (n <= sizeof name - 1 || strncasecmp(line, name, sizeof name - 1) != 0)
        return -1;
    char v[128];
    size_t i = sizeof name - 1, o = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    while (i < n && line[i] != '\r' && line[i] != '\n' && o + 1 < sizeof v)
        v[o++] = line[i++];
    v[o] = '\0';
    char *end;
    errno = 0;
    long secs = strtol(v, &end, 10);
    if (o && end != v && *end == '\0' && errno == 0 && secs >= 0)
        return secs > DAY_MS / 1000 ? DAY_MS : secs * 1000L;
    time_t when = curl_getdate(v, NULL), now = time(NULL);
    if (when == -1)
        return -1;
    if (when <= now)
        return 0;
    return when - now > DAY_MS / 1000 ? DAY_MS : (long)(when - now) * 1000L;
}
