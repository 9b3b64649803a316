/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 well-formedness (RFC 3629), safe cutting, and the sanitiser. */
#include "util/utf8.h"

#include <stdint.h>
#include <string.h>

size_t cx_utf8_seq_len(const unsigned char *p, size_t n) {
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t cx_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII eight bytes at a time: most text is */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i == n)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = cx_utf8_seq_len(p + i, n - i);
        if (k == 0)
            break;
        i += k;
    }
    return i;
}

bool cx_utf8_valid(const char *s, size_t n) {
    return cx_utf8_valid_prefix(s, n) == n;
}

size_t cx_utf8_cut(const char *s, size_t len, size_t max) {
    if (len <= max)
        return len;
    size_t i = max;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
        i--;
    return i;
}

int cx_utf8_sanitize(const char *s, size_t n, cx_buf *out) {
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, from = 0;
    int r = 0;
    while (i < n) {
        size_t k = cx_utf8_seq_len(p + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        if ((r = cx_buf_add(out, s + from, i - from)) != 0 ||
            (r = cx_buf_add(out, replacement, sizeof replacement - 1)) != 0)
            return r;
        from = ++i;
    }
    return cx_buf_add(out, s + from, n - from);
}
