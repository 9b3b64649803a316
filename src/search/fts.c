/* SPDX-License-Identifier: Apache-2.0 */
/* Untrusted query text to an FTS5 MATCH expression.
 *
 * The text is cut into words (ASCII letters, digits and '_', and any
 * well-formed UTF-8 character beyond ASCII; everything else, invalid bytes
 * included, separates words). Words joined by '.', '/', '-', "::" or "->"
 * make one identifier (`retry.policy.max`, `src/billing/invoice.c`). Each
 * word or identifier becomes an FTS5 string, "word", with any '"' doubled,
 * so nothing the user typed is ever FTS5 syntax: AND, OR, NOT, NEAR,
 * parentheses, ':', '^', '-', '+' and column names are only data. A '*'
 * right after a word makes it a prefix ("word"*). Text in balanced double
 * quotes is kept as one phrase of its words and identifiers ("a b"); an
 * unbalanced quote is ignored. The terms are joined with AND or OR. At most
 * CX_FTS_MAX_TERMS terms are used; the rest of a very long query is
 * dropped.
 *
 * Identifiers. An identifier of several parts (split at '_' and the joiners
 * above and at camelCase and digit boundaries, as the store's "cortex"
 * tokenizer splits them) matches whole or by its parts:
 * `parseConfigFile` becomes ("parseConfigFile" OR ("parse" AND "Config"
 * AND "File")) when every term must match, and ("parseConfigFile" OR
 * "parse" OR "Config" OR "File") when any may (parts of one character are
 * left out there). The index holds every identifier whole and each of its
 * parts at the same position, so `parse config`, `parse_config` and
 * `ParseConfigFile` all find `parseConfigFile`, and the item that has the
 * identifier itself scores higher (it matches both sides of the OR).
 *
 * Word forms. A plain word (ASCII letters only, 3 to 64 of them, no
 * camelCase, not an identifier) that is no prefix is also asked for by its
 * English stem: `deadlocking` becomes ("deadlocking" OR "~deadlocking"),
 * which the tokenizer turns into deadlocking OR ~deadlock
 * (CX_TEXT_STEM_MARK in text/tokenizer.h). The index holds each plain word
 * and its stem at the same position, so `deadlocking` finds `deadlocks`,
 * and an item with the word itself matches both terms and ranks first.
 * Identifiers and their parts match exactly, as above.
 *
 * Words in scripts without spaces (连接池) need nothing here: the
 * tokenizer cuts a quoted word into bigrams, which FTS5 matches as a
 * phrase.
 *
 * Typos. With a correction hook (cx_fts_opts.fix, search/typo.c), each
 * word and each identifier part of 4 to 64 ASCII letters or '_' (not a
 * prefix, not inside a quoted phrase), and each whole identifier of them,
 * is offered to it lower-cased; the corrections it gives are added as
 * alternatives in the word's place: `pasre` becomes ("pasre" OR "~pasre"
 * OR "parse" OR "~parse"), `pasreConfigFile` ("pasreConfigFile" OR
 * "parseconfigfile" OR (("pasre" OR "parse") AND "Config" AND "File")).
 * The builder reports a weight per phrase (the quoted strings, in the
 * order they appear: FTS5 numbers its phrases so): 1 for what was typed,
 * CX_FTS_FIX_WEIGHT for a correction, which the scorer multiplies into
 * the phrase's idf, so that an item with the word as typed ranks above
 * one that only has the correction. */
#include "search/search-internal.h"

#include "search/search.h"
#include "text/ident.h"
#include "text/tokenizer.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 16 /* parts of one identifier used in the expression */

/* Bytes of the word character at p, 0 when p starts a separator. */
static size_t word_char(const unsigned char *p, size_t n) {
    unsigned char c = p[0];
    if (c < 0x80)
        return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '_')
                   ? 1
                   : 0;
    return cx_utf8_seq_len(p, n);
}

/* Bytes of the word starting at p (0 if none). */
static size_t word_len(const unsigned char *p, size_t n) {
    size_t i = 0, k;
    while (i < n && (k = word_char(p + i, n - i)) > 0)
        i += k;
    return i;
}

/* Bytes of a joiner at p that another word follows, 0 if none. */
static size_t joiner_len(const unsigned char *p, size_t n) {
    size_t k = 0;
    if (n >= 2 && ((p[0] == ':' && p[1] == ':') || (p[0] == '-' && p[1] == '>')))
        k = 2;
    else if (n >= 1 && (p[0] == '.' || p[0] == '/' || p[0] == '-'))
        k = 1;
    return k > 0 && k < n && word_char(p + k, n - k) > 0 ? k : 0;
}

/* Bytes of the word or identifier starting at p (0 if none). */
static size_t ident_len(const unsigned char *p, size_t n) {
    size_t i = word_len(p, n), j;
    if (i == 0)
        return 0;
    while ((j = joiner_len(p + i, n - i)) > 0)
        i += j + word_len(p + i + j, n - i - j);
    return i;
}

/* The expression being built, and the first error appending to it (later
 * appends are skipped, so the callers can append without checking). */
typedef struct out_buf {
    cx_buf b;
    int err;
    cx_fts_opts *o; /* the phrases' weights go to o->weight; NULL: not counted */
    float cur;      /* the weight of the phrases appended now */
} out_buf;

static void put(out_buf *o, const char *s, size_t n) {
    if (!o->err)
        o->err = cx_buf_add(&o->b, s, n);
}

/* Counts a phrase (a quoted string) about to be appended, with its weight. */
static void phrase(out_buf *b) {
    if (!b->o || b->err)
        return;
    if (b->o->nphrase < CX_FTS_MAX_PHRASES)
        b->o->weight[b->o->nphrase] = b->cur;
    b->o->nphrase++;
}

static void put_quoted(out_buf *b, const char *w, size_t n, bool prefix) {
    phrase(b);
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (w[i] == '"')
            put(b, "\"\"", 2);
        else
            put(b, w + i, 1);
    }
    put(b, prefix ? "\"*" : "\"", prefix ? 2 : 1);
}

static bool keep_word(cx_fts_keep_fn keep, void *ud, const char *w, size_t n) {
    if (!keep)
        return true;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] >= 0x80)
            return keep(ud, w, n);
    return true; /* plain ASCII words always have tokens */
}

static bool part_sep(unsigned char c) {
    return c == '_' || c == '.' || c == '/' || c == '-' || c == ':' || c == '>';
}

/* The parts of an identifier: segments between separators, each cut at
 * camelCase and digit boundaries. */
static size_t ident_parts(const char *w, size_t n, cx_text_span *parts, size_t max) {
    size_t np = 0, i = 0;
    while (i < n && np < max) {
        while (i < n && part_sep((unsigned char)w[i]))
            i++;
        size_t start = i;
        while (i < n && !part_sep((unsigned char)w[i]))
            i++;
        if (i == start)
            break;
        size_t k = cx_text_ident_parts(w + start, i - start, parts + np, max - np);
        for (size_t j = 0; j < k; j++)
            parts[np + j].off += start;
        np += k;
    }
    return np;
}

/* Whether w has a letter of Latin-1/Extended, Greek or Cyrillic (U+00C0 to
 * U+052F, U+1E00 to U+1FFF, lead bytes C3-D4 and E1 B8-BF), which may
 * carry diacritics the index folds. */
static bool may_fold(const char *w, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if ((c >= 0xC3 && c <= 0xD4) ||
            (c == 0xE1 && i + 1 < n && (unsigned char)w[i + 1] >= 0xB8 &&
             (unsigned char)w[i + 1] <= 0xBF))
            return true;
    }
    return false;
}

/* Whether the tokenizer stems w: ASCII letters only, 3 to 64 of them, one
 * identifier part (its ctok_stem decides the same for documents). */
static bool may_stem(const char *w, size_t n) {
    if (n < 3 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    cx_text_span parts[2];
    return cx_text_ident_parts(w, n, parts, 2) == 1;
}

/* Appends "w", or ("w" OR "~w") for a word the tokenizer stems. */
static void put_word(out_buf *b, const char *w, size_t n) {
    if (!may_stem(w, n)) {
        put_quoted(b, w, n, false);
        return;
    }
    char mark = CX_TEXT_STEM_MARK;
    put(b, "(", 1);
    put_quoted(b, w, n, false);
    put(b, " OR ", 4);
    phrase(b);
    put(b, "\"", 1);
    put(b, &mark, 1);
    put(b, w, n);
    put(b, "\")", 2);
}

/* The corrections the hook gives for w (see the file comment), into fix:
 * how many. None for a prefix or a word that is no candidate. `part`: w is
 * one part of an identifier of several. */
static size_t fixes(const cx_fts_opts *o, const char *w, size_t n, bool prefix, bool part,
                    char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1]) {
    if (!o || !o->fix || prefix || n < (part ? CX_TYPO_PART_MIN : CX_STORE_TERM_MIN) ||
        n > CX_STORE_TERM_MAX)
        return 0;
    char low[CX_STORE_TERM_MAX];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || c == '_'))
            return 0;
        low[i] = (char)c;
    }
    size_t k = o->fix(o->fix_ud, low, n, part, fix);
    return k > CX_TYPO_MAX_FIX ? CX_TYPO_MAX_FIX : k;
}

/* Appends " OR " and each correction, at the corrections' weight; with
 * its stem when `stem` (the word typed is a plain word, not an identifier
 * or one of its parts, which the index does not stem). */
static void put_fixes(out_buf *b, char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1], size_t nfix,
                      bool stem) {
    float was = b->cur;
    b->cur = CX_FTS_FIX_WEIGHT;
    for (size_t i = 0; i < nfix; i++) {
        put(b, " OR ", 4);
        if (stem)
            put_word(b, fix[i], strlen(fix[i]));
        else
            put_quoted(b, fix[i], strlen(fix[i]), false);
    }
    b->cur = was;
}

/* Appends the term for one word or identifier; false when it has nothing
 * searchable (then nothing was appended). A word that may carry diacritics
 * is also asked for in its exact form ("=café", see CX_TEXT_EXACT_MARK in
 * text/tokenizer.h): ("=café" OR "café"), so that the index's exact form
 * scores on both and ranks above the folded one (cafe). */
static bool put_term(out_buf *b, const char *w, size_t n, bool prefix, const cx_fts_opts *o,
                     const char *join, size_t terms) {
    cx_fts_mode mode = o->mode;
    cx_fts_keep_fn keep = o->keep;
    void *ud = o->keep_ud;
    if (!keep_word(keep, ud, w, n))
        return false;
    cx_text_span parts[MAX_PARTS];
    size_t np = ident_parts(w, n, parts, MAX_PARTS), k = 0;
    /* parts the tokenizer sees nothing in are no use; in an OR, neither are
     * parts of one character (x86_64: x) */
    bool longer = false;
    for (size_t i = 0; i < np; i++)
        longer = longer || parts[i].len > 1;
    for (size_t i = 0; i < np; i++) {
        if (!keep_word(keep, ud, w + parts[i].off, parts[i].len))
            continue;
        if (mode == CX_FTS_ANY && longer && parts[i].len == 1 && !(prefix && i + 1 == np))
            continue;
        parts[k++] = parts[i];
    }
    bool last_kept = np > 0 && k > 0 && parts[k - 1].off + parts[k - 1].len == n;
    if (terms)
        put(b, join, strlen(join));
    char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1];
    size_t nfix = fixes(o, w, n, prefix, false, fix);
    bool exact = may_fold(w, n);
    if (exact) {
        phrase(b);
        put(b, "(\"=", 3);
        put(b, w, n); /* a word holds no '"' */
        put(b, prefix ? "\"* OR " : "\" OR ", prefix ? 6 : 5);
    }
    if (np <= 1 || k == 0) {
        if (nfix > 0) { /* ASCII, no prefix: neither exact nor prefix */
            put(b, "(", 1);
            put_word(b, w, n);
            put_fixes(b, fix, nfix, may_stem(w, n));
            put(b, ")", 1);
            return true;
        }
        if (!exact && !prefix && may_stem(w, n)) { /* ("word" OR "~word") */
            put_word(b, w, n);
            return true;
        }
        put_quoted(b, w, n, prefix);
        if (exact)
            put(b, ")", 1);
        return true;
    }
    put(b, "(", 1);
    put_quoted(b, w, n, prefix);
    put_fixes(b, fix, nfix, false);
    put(b, " OR ", 4);
    if (mode == CX_FTS_ALL && k > 1)
        put(b, "(", 1);
    for (size_t i = 0; i < k; i++) {
        if (i)
            put(b, mode == CX_FTS_ALL ? " AND " : " OR ", mode == CX_FTS_ALL ? 5 : 4);
        bool pfx = prefix && last_kept && i + 1 == k;
        char pfix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1];
        size_t npfix = fixes(o, w + parts[i].off, parts[i].len, pfx, k > 1, pfix);
        if (npfix > 0)
            put(b, "(", 1);
        put_quoted(b, w + parts[i].off, parts[i].len, pfx);
        if (npfix > 0) {
            put_fixes(b, pfix, npfix, false);
            put(b, ")", 1);
        }
    }
    if (mode == CX_FTS_ALL && k > 1)
        put(b, ")", 1);
    put(b, ")", 1);
    if (exact)
        put(b, ")", 1);
    return true;
}

int cx_fts_build_query_opts(const char *text, cx_fts_opts *o, char **out) {
    cx_fts_mode mode = o->mode;
    cx_fts_keep_fn keep = o->keep;
    void *ud = o->keep_ud;
    *out = NULL;
    o->nphrase = 0;
    if (!text)
        return 0;
    size_t n = strnlen(text, CX_SEARCH_MAX_QUERY + 1);
    if (n > CX_SEARCH_MAX_QUERY)
        return cx_error_set(CX_ELIMIT, "the query is longer than %d bytes; shorten it",
                            CX_SEARCH_MAX_QUERY);
    const unsigned char *t = (const unsigned char *)text;
    const char *join = mode == CX_FTS_ALL ? " AND " : " OR ";
    /* The cap the expression can never reach: words hold no '"' (nothing
     * is doubled), a term of k bytes writes them at most three times (exact,
     * whole and as parts) plus at most MAX_PARTS * 8 + 16 bytes of quotes, '*',
     * joins and parentheses, and there are at most CX_FTS_MAX_TERMS terms.
     * Corrections add at most CX_TYPO_MAX_FIX terms of CX_STORE_TERM_MAX
     * bytes (and their stems, quotes, ORs) to the whole and to each part.
     * It bounds the allocation should that reasoning ever stop holding. */
    size_t fixcap = o->fix ? (size_t)CX_FTS_MAX_TERMS * (MAX_PARTS + 1) * CX_TYPO_MAX_FIX *
                                 (2 * CX_STORE_TERM_MAX + 24)
                           : 0;
    size_t cap = 4 * n + 256 * (size_t)CX_FTS_MAX_TERMS + fixcap;
    out_buf b = {.err = 0, .o = o, .cur = 1.0f}, ph = {.err = 0}; /* ph: one quoted phrase */
    cx_buf_init(&b.b, cap);
    cx_buf_init(&ph.b, cap);
    int r = 0;
    size_t terms = 0, i = 0;
    while (i < n && terms < CX_FTS_MAX_TERMS) {
        if (t[i] == '"') {
            const unsigned char *close = memchr(t + i + 1, '"', n - i - 1);
            if (!close) {
                i++; /* unbalanced: an ordinary separator */
                continue;
            }
            size_t end = (size_t)(close - t), j = i + 1, words = 0;
            cx_buf_reset(&ph.b);
            for (; j < end;) {
                size_t k = ident_len(t + j, end - j);
                if (k == 0) {
                    j++;
                    continue;
                }
                if (keep_word(keep, ud, text + j, k)) {
                    if (words == 0) {
                        if (terms)
                            put(&ph, join, strlen(join));
                        put(&ph, "\"", 1);
                    } else {
                        put(&ph, " ", 1);
                    }
                    for (size_t c = 0; c < k; c++)
                        put(&ph, text[j + c] == '"' ? "\"\"" : text + j + c,
                            text[j + c] == '"' ? 2 : 1);
                    words++;
                }
                j += k;
            }
            i = end + 1;
            bool prefix = i < n && t[i] == '*';
            if (prefix)
                i++;
            if (words > 0) { /* a phrase with no word in it leaves nothing */
                put(&ph, "\"", 1);
                if (prefix)
                    put(&ph, "*", 1);
                if (ph.err && !b.err)
                    b.err = ph.err;
                phrase(&b);
                put(&b, ph.b.data, ph.b.len);
                terms++;
            }
            continue;
        }
        size_t k = ident_len(t + i, n - i);
        if (k == 0) {
            i++;
            continue;
        }
        size_t start = i;
        i += k;
        bool prefix = i < n && t[i] == '*';
        if (prefix)
            i++;
        if (put_term(&b, text + start, k, prefix, o, join, terms))
            terms++;
    }
    if ((r = b.err) != 0 || terms == 0)
        goto out;
    *out = cx_buf_take(&b.b, NULL);
    if (!*out)
        r = CX_ENOMEM;
out:
    cx_buf_free(&b.b);
    cx_buf_free(&ph.b);
    return r;
}

int cx_fts_build_query_keep(const char *text, cx_fts_mode mode, cx_fts_keep_fn keep, void *ud,
                            char **out) {
    cx_fts_opts *o = calloc(1, sizeof *o);
    if (!o)
        return CX_ENOMEM;
    o->mode = mode;
    o->keep = keep;
    o->keep_ud = ud;
    int r = cx_fts_build_query_opts(text, o, out);
    free(o);
    return r;
}

int cx_fts_build_query(const char *text, cx_fts_mode mode, char **out) {
    return cx_fts_build_query_keep(text, mode, NULL, NULL, out);
}
