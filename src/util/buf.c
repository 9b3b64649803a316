/* SPDX-License-Identifier: Apache-2.0 */
/* The capped growable buffer (see buf.h): growth by doubling, never past
 * the cap plus the NUL, and a check of the cap before every append. */
#include "util/buf.h"

#include "util/error.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_ALLOC 64

void cx_buf_init(cx_buf *b, size_t max) {
    assert(b && max < SIZE_MAX); /* max + 1 (the NUL) must be a size */
    *b = (cx_buf){.max = max};
}

void cx_buf_free(cx_buf *b) {
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void cx_buf_reset(cx_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Room for n more bytes and the NUL, or an error with b unchanged. */
static int grow(cx_buf *b, size_t n) {
    if (n > b->max || b->len > b->max - n)
        return cx_error_set(CX_ELIMIT, "adding %zu bytes to %zu would pass the limit of %zu bytes",
                            n, b->len, b->max);
    size_t need = b->len + n + 1; /* no overflow: len + n <= max < SIZE_MAX */
    if (need <= b->alloc)
        return 0;
    size_t alloc = b->alloc ? b->alloc : MIN_ALLOC;
    while (alloc < need)
        alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
    if (alloc > b->max + 1) /* the largest this buffer can ever need */
        alloc = b->max + 1;
    char *d = realloc(b->data, alloc);
    if (!d)
        return cx_error_set(CX_ENOMEM, "out of memory for a buffer of %zu bytes", alloc);
    b->data = d;
    b->alloc = alloc;
    return 0;
}

int cx_buf_add(cx_buf *b, const void *mem, size_t n) {
    int r = grow(b, n);
    if (r)
        return r;
    if (n)
        memcpy(b->data + b->len, mem, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cx_buf_adds(cx_buf *b, const char *s) {
    return cx_buf_add(b, s, strlen(s));
}

/* 1 for the bytes a JSON string literal must escape */
static const unsigned char json_escaped[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

int cx_buf_add_json_str(cx_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t start = b->len;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    int r = cx_buf_add(b, "\"", 1);
    while (r == 0 && p < end) {
        const unsigned char *run = p;
        while (p < end && !json_escaped[*p])
            p++;
        if (p > run)
            r = cx_buf_add(b, run, (size_t)(p - run));
        if (r || p == end)
            break;
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t k = 2;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            k = 6;
        }
        r = cx_buf_add(b, esc, k);
        p++;
    }
    if (r == 0)
        r = cx_buf_add(b, "\"", 1);
    if (r) { /* as it was: drop what this call added */
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return r;
}

int cx_buf_vaddf(cx_buf *b, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    int r;
    if (n < 0) {
        r = cx_error_set(CX_EINVAL, "cannot format \"%s\"", fmt);
        goto out;
    }
    if ((size_t)n < sizeof small) {
        r = cx_buf_add(b, small, (size_t)n);
        goto out;
    }
    if ((r = grow(b, (size_t)n)) != 0)
        goto out;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
out:
    va_end(again);
    return r;
}

int cx_buf_addf(cx_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = cx_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return r;
}

int cx_buf_reserve(cx_buf *b, size_t n, char **space) {
    int r = grow(b, n);
    if (r)
        return r;
    b->data[b->len] = '\0'; /* a buffer first allocated here is a string too */
    *space = b->data + b->len;
    return 0;
}

void cx_buf_commit(cx_buf *b, size_t n) {
    assert(b->data && b->len + n < b->alloc);
    b->len += n;
    b->data[b->len] = '\0';
}

void cx_buf_drop(cx_buf *b, size_t n) {
    assert(n <= b->len);
    if (!n)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *cx_buf_take(cx_buf *b, size_t *len) {
    char *s = b->data;
    if (!s)
        s = calloc(1, 1);
    if (s && len)
        *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return s;
}

const char *cx_buf_str(const cx_buf *b) {
    return b->data ? b->data : "";
}
