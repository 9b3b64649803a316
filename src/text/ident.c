/* SPDX-License-Identifier: Apache-2.0 */
/* Identifier parts and joiners (see ident.h): ASCII classes only, so that
 * the cut never depends on the locale. */
#include "text/ident.h"

#include <string.h>

static int ascii_class(unsigned char c) {
    if (c >= 'a' && c <= 'z')
        return 1; /* lower */
    if (c >= 'A' && c <= 'Z')
        return 2; /* upper */
    if (c >= '0' && c <= '9')
        return 3; /* digit */
    return 0;
}

size_t cx_text_ident_parts(const char *s, size_t n, cx_text_span *parts, size_t max) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0 || max == 0)
        return 0;
    bool plain = true;
    for (size_t i = 0; i < n && plain; i++)
        plain = ascii_class(p[i]) != 0;
    size_t np = 0, start = 0;
    if (plain) {
        for (size_t i = 1; i < n && np + 1 < max; i++) {
            int a = ascii_class(p[i - 1]), b = ascii_class(p[i]);
            bool cut = (a == 3) != (b == 3) ||                 /* letter <-> digit */
                       (a == 1 && b == 2) ||                   /* camelCase */
                       (a == 2 && b == 2 && i + 1 < n && ascii_class(p[i + 1]) == 1); /* XMLParser */
            if (cut) {
                parts[np++] = (cx_text_span){start, i - start};
                start = i;
            }
        }
    }
    parts[np++] = (cx_text_span){start, n - start};
    return np;
}

bool cx_text_ident_joiner(const char *s, size_t n) {
    if (n == 1)
        return *s == '_' || *s == '.' || *s == '/' || *s == '-';
    if (n == 2)
        return memcmp(s, "::", 2) == 0 || memcmp(s, "->", 2) == 0 || memcmp(s, "__", 2) == 0;
    return false;
}
