/* SPDX-License-Identifier: Apache-2.0 */
/* Text for hooks (see hook.h): bounded markdown buffers, one-line
 * cleaning of text from the store, small string lists. */
#include "hook.h"

#include "util/error.h"
#include "util/utf8.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cx_hook_jstr(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

bool cx_hook_blank(const char *s) {
    if (!s)
        return true;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

void cx_hook_text_init(text *t, size_t max) {
    cx_buf_init(&t->b, max);
    t->oom = false;
}

bool cx_hook_text_add(text *t, const char *s, size_t n) {
    if (t->oom)
        return false;
    int r = cx_buf_add(&t->b, s, n);
    if (r == CX_ENOMEM)
        t->oom = true;
    return r == 0;
}

bool cx_hook_text_put(text *t, const char *s) { return cx_hook_text_add(t, s, strlen(s)); }

/* `s` on one line, for markdown: control characters and whitespace runs
 * become one space, the ends trimmed; in a code span (`code`) backticks
 * become quotes. At most max bytes, cut on a character boundary with "…".
 * Returns a malloc'd string, or NULL when out of memory. */
char *cx_hook_one_line(const char *s, size_t max, bool code) {
    if (!s)
        s = "";
    size_t cap = max + 8;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t n = 0;
    bool space = false, more = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            space = n > 0;
            continue;
        }
        if (n + (space ? 1 : 0) + 1 > max + 4) {
            more = true;
            break;
        }
        if (space)
            b[n++] = ' ';
        space = false;
        b[n++] = (char)(code && c == '`' ? '\'' : c);
    }
    if (more || n > max) {
        size_t keep = max >= 3 ? cx_utf8_cut(b, n, max - 3) : 0;
        while (keep > 0 && b[keep - 1] == ' ')
            keep--;
        if (max >= 3) {
            memcpy(b + keep, "\xE2\x80\xA6", 3);
            keep += 3;
        }
        n = keep;
    }
    b[n] = '\0';
    return b;
}

bool cx_hook_list_take(strlist *l, char *s) {
    if (!s)
        return false;
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, c * sizeof *v);
        if (!v) {
            free(s);
            return false;
        }
        l->v = v;
        l->cap = c;
    }
    l->v[l->n++] = s;
    return true;
}

void cx_hook_list_clear(strlist *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* A line assembled from pieces, each already made safe; NULL pieces end it. */
char *cx_hook_concat(const char *first, ...) {
    /* pieces are cut to a few KiB at most (titles, ids, a list of paths of
     * 4 KiB): 1 MiB is never reached */
    text t;
    cx_hook_text_init(&t, 1u << 20);
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        cx_hook_text_put(&t, s);
    va_end(ap);
    char *s = t.oom ? NULL : cx_buf_take(&t.b, NULL);
    cx_buf_free(&t.b);
    return s;
}
