/* SPDX-License-Identifier: Apache-2.0 */
/* Untrusted query text to an FTS5 MATCH expression.
 *
 * The text is cut into words (ASCII letters, digits and '_', and any
 * well-formed UTF-8 character beyond ASCII; everything else, invalid bytes
 * included, separates words). Each word becomes an FTS5 string, "word",
 * with any '"' doubled, so nothing the user typed is ever FTS5 syntax:
 * AND, OR, NOT, NEAR, parentheses, ':', '^', '-', '+' and column names are
 * only data. A '*' right after a word makes it a prefix ("word"*). Text in
 * balanced double quotes is kept as one phrase of its words ("a b"); an
 * unbalanced quote is ignored. The terms are joined with AND or OR. At most
 * CX_FTS_MAX_TERMS terms are used; the rest of a very long query is
 * dropped. */
#include "search/fts-internal.h"

#include "search/search.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at p (n bytes left; p[n] may be
 * read, the text is NUL-terminated), 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
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

/* Bytes of the word character at p, 0 when p starts a separator. */
static size_t word_char(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80)
        return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '_')
                   ? 1
                   : 0;
    return utf8_len(p, n);
}

/* Bytes of the word starting at p (0 if none). */
static size_t word_len(const unsigned char *p, size_t n) {
    size_t i = 0, k;
    while (i < n && (k = word_char(p + i, n - i)) > 0)
        i += k;
    return i;
}

typedef struct out_buf {
    char *p;
    size_t len, cap;
} out_buf;

/* The buffer is sized once for the worst case, so this never grows. */
static void put(out_buf *b, const char *s, size_t n) {
    if (b->len + n >= b->cap)
        return; /* cannot happen; see the capacity in build */
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_quoted_word(out_buf *b, const char *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (w[i] == '"')
            put(b, "\"\"", 2);
        else
            put(b, w + i, 1);
    }
}

static bool keep_word(cx_fts_keep_fn keep, void *ud, const char *w, size_t n) {
    if (!keep)
        return true;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] >= 0x80)
            return keep(ud, w, n);
    return true; /* plain ASCII words always have tokens */
}

int cx_fts_build_query_keep(const char *text, cx_fts_mode mode, cx_fts_keep_fn keep, void *ud,
                            char **out) {
    *out = NULL;
    if (!text)
        return 0;
    size_t n = strnlen(text, CX_SEARCH_MAX_QUERY + 1);
    if (n > CX_SEARCH_MAX_QUERY)
        return cx_error_set(CX_ELIMIT, "the query is longer than %d bytes; shorten it",
                            CX_SEARCH_MAX_QUERY);
    const unsigned char *t = (const unsigned char *)text;
    const char *join = mode == CX_FTS_ALL ? " AND " : " OR ";
    /* Worst case per input byte: a one-byte word becomes `"w"* OR ` and a
     * quote inside a word is doubled. 8 bytes a byte is ample. */
    out_buf b = {.cap = n * 8 + 16};
    b.p = malloc(b.cap);
    if (!b.p)
        return CX_ENOMEM;
    b.p[0] = '\0';
    size_t terms = 0, i = 0;
    while (i < n && terms < CX_FTS_MAX_TERMS) {
        if (t[i] == '"') {
            const unsigned char *close = memchr(t + i + 1, '"', n - i - 1);
            if (!close) {
                i++; /* unbalanced: an ordinary separator */
                continue;
            }
            size_t end = (size_t)(close - t), j = i + 1, words = 0, mark = b.len;
            for (; j < end;) {
                size_t k = word_len(t + j, end - j);
                if (k == 0) {
                    j++;
                    continue;
                }
                if (keep_word(keep, ud, text + j, k)) {
                    if (words == 0) {
                        if (terms)
                            put(&b, join, strlen(join));
                        put(&b, "\"", 1);
                    } else {
                        put(&b, " ", 1);
                    }
                    put_quoted_word(&b, text + j, k);
                    words++;
                }
                j += k;
            }
            i = end + 1;
            bool prefix = i < n && t[i] == '*';
            if (prefix)
                i++;
            if (words > 0) {
                put(&b, "\"", 1);
                if (prefix)
                    put(&b, "*", 1);
                terms++;
            } else {
                b.len = mark;
                b.p[b.len] = '\0';
            }
            continue;
        }
        size_t k = word_len(t + i, n - i);
        if (k == 0) {
            i++;
            continue;
        }
        size_t start = i;
        i += k;
        bool prefix = i < n && t[i] == '*';
        if (prefix)
            i++;
        if (!keep_word(keep, ud, text + start, k))
            continue;
        if (terms)
            put(&b, join, strlen(join));
        put(&b, "\"", 1);
        put_quoted_word(&b, text + start, k);
        put(&b, prefix ? "\"*" : "\"", prefix ? 2 : 1);
        terms++;
    }
    if (terms == 0) {
        free(b.p);
        return 0;
    }
    *out = b.p;
    return 0;
}

int cx_fts_build_query(const char *text, cx_fts_mode mode, char **out) {
    return cx_fts_build_query_keep(text, mode, NULL, NULL, out);
}
