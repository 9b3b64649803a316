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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

size_t cx_json_plain_run(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl)); /* v <= 0x1f */
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits)
            return i + (size_t)__builtin_ctz(bits);
    }
#endif
    while (i < n && !json_escaped[p[i]])
        i++;
    return i;
}

/* The escape of byte c (one json_escaped marks) into out: its length. */
static size_t json_escape(unsigned char c, char out[6]) {
    static const char hex[] = "0123456789ABCDEF";
    out[0] = '\\';
    switch (c) {
    case '"': out[1] = '"'; return 2;
    case '\\': out[1] = '\\'; return 2;
    case '\b': out[1] = 'b'; return 2;
    case '\f': out[1] = 'f'; return 2;
    case '\n': out[1] = 'n'; return 2;
    case '\r': out[1] = 'r'; return 2;
    case '\t': out[1] = 't'; return 2;
    default:
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
}

#define JSON_STR_DIRECT (64u << 10) /* strings up to this are escaped in place */

int cx_buf_add_json_str(cx_buf *b, const char *s, size_t n) {
    size_t start = b->len;
    /* the worst case (every byte \u00XX, the quotes) fits: write it in
     * place, without an append for each run between escapes (an answer's
     * JSON text, escaped again inside the response, has hundreds) */
    if (n <= JSON_STR_DIRECT && 6 * n + 2 <= b->max - b->len) {
        int r = grow(b, 6 * n + 2);
        if (r)
            return r;
        const unsigned char *p = (const unsigned char *)s, *end = p + n;
        char *o = b->data + b->len;
        *o++ = '"';
        while (p < end) {
            const unsigned char *run = p;
            p += cx_json_plain_run((const char *)p, (size_t)(end - p));
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
            if (p < end)
                o += json_escape(*p++, o);
        }
        *o++ = '"';
        b->len = (size_t)(o - b->data);
        b->data[b->len] = '\0';
        return 0;
    }
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    int r = cx_buf_add(b, "\"", 1);
    while (r == 0 && p < end) {
        const unsigned char *run = p;
        p += cx_json_plain_run((const char *)p, (size_t)(end - p));
        if (p > run)
            r = cx_buf_add(b, run, (size_t)(p - run));
        if (r || p == end)
            break;
        char esc[6];
        size_t k = json_escape(*p, esc);
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
