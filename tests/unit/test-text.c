/* SPDX-License-Identifier: Apache-2.0 */
/* The text layer (src/text) on its own, without a store: how identifiers
 * are cut into parts, which bytes join words, and what the "cortex" FTS5
 * tokenizer emits for documents (identifier whole, then its parts at the
 * same position) and for queries (whole only), and that an FTS5 table
 * using it finds an identifier by any of its parts; then every script:
 * bigrams for CJK and Thai, emoji, case folding, NFD, exact and folded
 * forms, and random text of all of them with offsets in order; and that
 * the ASCII fast path gives exactly the tokens unicode61 gave. */
#include "test.h"

#include "text/ident.h"
#include "text/tokenizer.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The parts of s joined by '|'. */
static void parts_of(const char *s, size_t max, char *out, size_t cap) {
    cx_text_span p[32];
    size_t n = cx_text_ident_parts(s, strlen(s), p, max), o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o + p[i].len + 2 < cap; i++) {
        if (i)
            out[o++] = '|';
        memcpy(out + o, s + p[i].off, p[i].len);
        o += p[i].len;
        out[o] = '\0';
    }
}

static void test_parts(void) {
    char buf[128];
    parts_of("parseConfigFile", 32, buf, sizeof buf);
    CX_CHECK_STR(buf, "parse|Config|File");
    parts_of("XMLParser", 32, buf, sizeof buf);
    CX_CHECK_STR(buf, "XML|Parser");
    parts_of("sha256sum", 32, buf, sizeof buf);
    CX_CHECK_STR(buf, "sha|256|sum");
    parts_of("plain", 32, buf, sizeof buf);
    CX_CHECK_STR(buf, "plain");
    /* a byte other than an ASCII letter or digit: one part */
    parts_of("caf\xc3\xa9" "Bar", 32, buf, sizeof buf);
    CX_CHECK_STR(buf, "caf\xc3\xa9" "Bar");
    /* at most max parts, the last one takes the rest */
    parts_of("aBcDeF", 2, buf, sizeof buf);
    CX_CHECK_STR(buf, "a|BcDeF");
    cx_text_span p[1];
    CX_CHECK_INT(cx_text_ident_parts("", 0, p, 1), 0);
    CX_CHECK_INT(cx_text_ident_parts("abc", 3, p, 0), 0);
}

static void test_joiners(void) {
    CX_CHECK(cx_text_ident_joiner("_", 1));
    CX_CHECK(cx_text_ident_joiner(".", 1));
    CX_CHECK(cx_text_ident_joiner("/", 1));
    CX_CHECK(cx_text_ident_joiner("-", 1));
    CX_CHECK(cx_text_ident_joiner("::", 2));
    CX_CHECK(cx_text_ident_joiner("->", 2));
    CX_CHECK(cx_text_ident_joiner("__", 2));
    CX_CHECK(!cx_text_ident_joiner(" ", 1));
    CX_CHECK(!cx_text_ident_joiner(":", 1));
    CX_CHECK(!cx_text_ident_joiner(". ", 2));
    CX_CHECK(!cx_text_ident_joiner("...", 3));
}

/* What the tokenizer emitted: "tok" for a new position, "=tok" for a
 * colocated one, separated by spaces. */
typedef struct seen {
    char buf[128];
    size_t len;
} seen;

static int on_token(void *ctx, int flags, const char *tok, int n, int start, int end) {
    seen *s = ctx;
    bool col = (flags & FTS5_TOKEN_COLOCATED) != 0;
    if (s->len + (size_t)n + 3 >= sizeof s->buf)
        return SQLITE_OK;
    if (s->len)
        s->buf[s->len++] = ' ';
    if (col)
        s->buf[s->len++] = '=';
    memcpy(s->buf + s->len, tok, (size_t)n);
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
    return SQLITE_OK;
}

static void tokens(fts5_tokenizer *api, Fts5Tokenizer *tok, int flags, const char *text, seen *s) {
    memset(s, 0, sizeof *s);
    CX_CHECK_INT(api->xTokenize(tok, s, flags, text, (int)strlen(text), on_token), SQLITE_OK);
}

/* An in-memory database with the cortex tokenizer registered, and one
 * instance of it in *tok (the caller deletes it and closes *db); false
 * (and nothing open) when that fails. */
static bool open_tokenizer(sqlite3 **db, fts5_tokenizer *api, Fts5Tokenizer **tok) {
    *db = NULL;
    *tok = NULL;
    CX_CHECK_INT(sqlite3_open(":memory:", db), SQLITE_OK);
    CX_CHECK_INT(cx_text_tokenizer_register(*db), SQLITE_OK);
    fts5_api *fts = cx_text_fts5_api(*db);
    void *ud = NULL;
    if (!fts || fts->xFindTokenizer(fts, CX_TEXT_TOKENIZER, &ud, api) != SQLITE_OK ||
        api->xCreate(ud, NULL, 0, tok) != SQLITE_OK) {
        CX_CHECK(!"the cortex tokenizer is registered");
        sqlite3_close(*db);
        *db = NULL;
        return false;
    }
    return true;
}

/* The count of rows of t that match q. */
static int count_match(sqlite3 *db, const char *q) {
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

static void test_tokenizer(void) {
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    seen s;
    /* documents: the identifier whole and lower-cased, then its parts */
    tokens(&api, tok, FTS5_TOKENIZE_DOCUMENT, "call parseConfigFile now", &s);
    CX_CHECK_STR(s.buf, "call =~call parseconfigfile =parse =config =file now =~now");
    tokens(&api, tok, FTS5_TOKENIZE_DOCUMENT, "retry.policy.max", &s);
    CX_CHECK_STR(s.buf, "retry.policy.max =retry =policy =max");
    /* a word with diacritics is folded and stays one part; its exact,
     * case-folded form is at the same position */
    tokens(&api, tok, FTS5_TOKENIZE_DOCUMENT, "Caf\xc3\xa9", &s);
    CX_CHECK_STR(s.buf, "cafe =caf\xc3\xa9");
    /* queries: only the whole identifier (the query builder adds parts) */
    tokens(&api, tok, FTS5_TOKENIZE_QUERY, "parse_config", &s);
    CX_CHECK_STR(s.buf, "parse_config");
    tokens(&api, tok, FTS5_TOKENIZE_QUERY, "\xc2\xab \xe2\x80\x94", &s);
    CX_CHECK_STR(s.buf, "");
    api.xDelete(tok);

    /* an index using it finds the identifier by any of its parts */
    CX_CHECK_INT(sqlite3_exec(db,
                              "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'cortex');"
                              "INSERT INTO t VALUES ('we call parseConfigFile at start');"
                              "INSERT INTO t VALUES ('nothing here');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    const char *queries[] = {"config", "\"parseconfigfile\"", "parse AND file"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++)
        CX_CHECK_INT(count_match(db, queries[i]), 1);
    sqlite3_close(db);
}

/* The offsets of the tokens emitted, "start-end" separated by spaces. */
static int on_offsets(void *ctx, int flags, const char *tok, int n, int start, int end) {
    seen *s = ctx;
    (void)flags, (void)tok, (void)n;
    char one[32];
    int k = snprintf(one, sizeof one, "%s%d-%d", s->len ? " " : "", start, end);
    if (k > 0 && s->len + (size_t)k + 1 < sizeof s->buf) {
        memcpy(s->buf + s->len, one, (size_t)k + 1);
        s->len += (size_t)k;
    }
    return SQLITE_OK;
}

/* Every script (tokenizer version 2): bigrams for scripts without spaces,
 * emoji, case folding beyond ASCII, NFC, exact and folded forms. */
static void test_scripts(void) {
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    seen s;
    const int D = FTS5_TOKENIZE_DOCUMENT, Q = FTS5_TOKENIZE_QUERY;
    /* Chinese: overlapping bigrams, in documents and queries alike; a
     * document also has each character alone at the same positions */
    tokens(&api, tok, D, "\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0", &s); /* 连接池 */
    CX_CHECK_STR(s.buf, "\xe8\xbf\x9e\xe6\x8e\xa5 =\xe8\xbf\x9e \xe6\x8e\xa5\xe6\xb1\xa0 =\xe6"
                        "\x8e\xa5 =\xe6\xb1\xa0");
    tokens(&api, tok, Q, "\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0", &s);
    CX_CHECK_STR(s.buf, "\xe8\xbf\x9e\xe6\x8e\xa5 \xe6\x8e\xa5\xe6\xb1\xa0");
    /* one character alone is itself; Latin letters in the run stay words */
    tokens(&api, tok, D, "\xe6\xb1\xa0 API\xe8\xbf\x9e\xe6\x8e\xa5", &s); /* 池 API连接 */
    CX_CHECK_STR(s.buf, "\xe6\xb1\xa0 api \xe8\xbf\x9e\xe6\x8e\xa5 =\xe8\xbf\x9e =\xe6\x8e\xa5");
    /* Japanese kana, Korean, Thai */
    tokens(&api, tok, D, "\xe3\x82\xa2\xe3\x83\x83\xe3\x83\x97", &s); /* アップ */
    CX_CHECK_STR(s.buf, "\xe3\x82\xa2\xe3\x83\x83 =\xe3\x82\xa2 \xe3\x83\x83\xe3\x83\x97 =\xe3"
                        "\x83\x83 =\xe3\x83\x97");
    tokens(&api, tok, D, "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4", &s); /* 한국어 */
    CX_CHECK_STR(s.buf, "\xed\x95\x9c\xea\xb5\xad =\xed\x95\x9c \xea\xb5\xad\xec\x96\xb4 =\xea"
                        "\xb5\xad =\xec\x96\xb4");
    tokens(&api, tok, D, "\xe0\xb9\x84\xe0\xb8\x97\xe0\xb8\xa2", &s); /* ไทย */
    CX_CHECK_STR(s.buf, "\xe0\xb9\x84\xe0\xb8\x97 \xe0\xb8\x97\xe0\xb8\xa2");
    /* no characters alone for Thai; its marks stay in the run (ข้อ) */
    tokens(&api, tok, D, "\xe0\xb8\x82\xe0\xb9\x89\xe0\xb8\xad", &s);
    CX_CHECK_STR(s.buf, "\xe0\xb8\x82\xe0\xb9\x89 \xe0\xb9\x89\xe0\xb8\xad");
    /* Devanagari: a word with its vowel signs and virama (हिन्दी) is one */
    tokens(&api, tok, D, "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5"
                         "\x80 x", &s);
    CX_CHECK_STR(s.buf, "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5"
                        "\x80 x");
    /* bigram offsets never overlap (snippets cut on them): 连接池 at 2;
     * a colocated character has its bigram's offsets */
    memset(&s, 0, sizeof s);
    CX_CHECK_INT(api.xTokenize(tok, &s, D, "a \xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1"
                                           "\xa0 b", 13, on_offsets),
                 SQLITE_OK);
    CX_CHECK_STR(s.buf, "0-1 2-5 2-5 5-11 5-11 5-11 12-13");
    /* emoji are tokens; a skin tone, ZWJ and VS16 are not */
    tokens(&api, tok, D, "ship\xf0\x9f\x9a\x80 it \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ok \xe2\x9c"
                         "\x85\xef\xb8\x8f",
           &s); /* ship🚀 it 👍🏽 ok ✅️ */
    CX_CHECK_STR(s.buf, "ship =~ship \xf0\x9f\x9a\x80 it \xf0\x9f\x91\x8d ok \xe2\x9c\x85");
    tokens(&api, tok, Q, "\xf0\x9f\x9a\x80", &s);
    CX_CHECK_STR(s.buf, "\xf0\x9f\x9a\x80");
    /* case folding beyond ASCII: Cyrillic, Greek; Arabic words as they are */
    tokens(&api, tok, D, "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2 \xce"
                         "\xa9", &s); /* ПРИВЕТ Ω */
    CX_CHECK_STR(s.buf, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xcf\x89");
    /* NFD is NFC: e + U+0301 is é, folded and exact */
    tokens(&api, tok, D, "Cafe\xcc\x81", &s);
    CX_CHECK_STR(s.buf, "cafe =caf\xc3\xa9");
    tokens(&api, tok, D, "\xd0\xb8\xcc\x86", &s); /* и + U+0306 = й */
    CX_CHECK_STR(s.buf, "\xd0\xb9");
    /* Greek accents fold too (Ωμέγα), the exact form beside */
    tokens(&api, tok, D, "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1", &s);
    CX_CHECK_STR(s.buf, "\xcf\x89\xce\xbc\xce\xb5\xce\xb3\xce\xb1 =\xcf\x89\xce\xbc\xce\xad"
                        "\xce\xb3\xce\xb1");
    tokens(&api, tok, Q, "=\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1", &s);
    CX_CHECK_STR(s.buf, "\xcf\x89\xce\xbc\xce\xad\xce\xb3\xce\xb1");
    /* queries: folded, or exact after the mark */
    tokens(&api, tok, Q, "CAF\xc3\x89", &s);
    CX_CHECK_STR(s.buf, "cafe");
    tokens(&api, tok, Q, "=CAF\xc3\x89", &s);
    CX_CHECK_STR(s.buf, "caf\xc3\xa9");
    tokens(&api, tok, Q, "=cafe\xcc\x81", &s);
    CX_CHECK_STR(s.buf, "caf\xc3\xa9");
    api.xDelete(tok);

    CX_CHECK_INT(sqlite3_exec(db,
                              "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'cortex');"
                              "INSERT INTO t VALUES ('\xe6\x95\xb0\xe6\x8d\xae\xe5\xba\x93"
                              "\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0\xe8\xb6\x85\xe6\x97\xb6');"
                              "INSERT INTO t VALUES ('\xe8\xbf\x9e\xe6\x8e\xa5 later \xe6\xb1"
                              "\xa0');"
                              "INSERT INTO t VALUES ('the caf\xc3\xa9 opens');"
                              "INSERT INTO t VALUES ('the cafe opens');"
                              "INSERT INTO t VALUES ('deploy \xf0\x9f\x9a\x80 done');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    /* 连接池 is a phrase of its bigrams: only the row that holds it */
    CX_CHECK_INT(count_match(db, "\"\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0\""), 1);
    CX_CHECK_INT(count_match(db, "\"\xe8\xbf\x9e\xe6\x8e\xa5\""), 2);
    /* one character: wherever it stands in a run (池 ends one, is alone in
     * the other) */
    CX_CHECK_INT(count_match(db, "\"\xe6\xb1\xa0\""), 2);
    CX_CHECK_INT(count_match(db, "\"\xe5\xba\x93\""), 1); /* 库 */
    CX_CHECK_INT(count_match(db, "\"cafe\""), 2);
    CX_CHECK_INT(count_match(db, "\"caf\xc3\xa9\""), 2);
    CX_CHECK_INT(count_match(db, "\"=caf\xc3\xa9\""), 1);
    CX_CHECK_INT(count_match(db, "\"\xf0\x9f\x9a\x80\""), 1);
    sqlite3_close(db);
}

/* Word forms (tokenizer version 3): a plain word is also indexed as its
 * English stem behind CX_TEXT_STEM_MARK; identifiers and their parts are
 * not stemmed; a query for the stem finds every form, the exact word
 * ranking first. */
static void test_stems(void) {
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    seen s;
    const int D = FTS5_TOKENIZE_DOCUMENT, Q = FTS5_TOKENIZE_QUERY;
    tokens(&api, tok, D, "Deadlocks", &s);
    CX_CHECK_STR(s.buf, "deadlocks =~deadlock");
    tokens(&api, tok, D, "deadlocking is a deadlock", &s);
    CX_CHECK_STR(s.buf, "deadlocking =~deadlock is a deadlock =~deadlock");
    /* identifiers and their parts: untouched */
    tokens(&api, tok, D, "parse_configs parseConfigs sha256sums", &s);
    CX_CHECK_STR(s.buf, "parse_configs =parse =configs parseconfigs =parse =configs sha256sums "
                        "=sha =256 =sums");
    tokens(&api, tok, D, "retry.policies", &s);
    CX_CHECK_STR(s.buf, "retry.policies =retry =policies");
    /* -ic verbs lose the k of -cking and -cked (version 4); short -ick
     * stems keep it */
    tokens(&api, tok, D, "panicking panicked panics trafficking pick", &s);
    CX_CHECK_STR(s.buf, "panicking =~panic panicked =~panic panics =~panic trafficking "
                        "=~traffic pick =~pick");
    /* words with diacritics, short words: no stem */
    tokens(&api, tok, D, "r\xc3\xa9sum\xc3\xa9s at", &s);
    CX_CHECK_STR(s.buf, "resumes =r\xc3\xa9sum\xc3\xa9s at");
    /* queries: the word, or its stem after the mark */
    tokens(&api, tok, Q, "deadlocking", &s);
    CX_CHECK_STR(s.buf, "deadlocking");
    tokens(&api, tok, Q, "~Deadlocking", &s);
    CX_CHECK_STR(s.buf, "~deadlock");
    tokens(&api, tok, Q, "~parse_configs", &s); /* no plain word: as it is */
    CX_CHECK_STR(s.buf, "parse_configs");
    api.xDelete(tok);

    CX_CHECK_INT(sqlite3_exec(db,
                              "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'cortex');"
                              "INSERT INTO t VALUES ('the worker deadlocks on the queue');"
                              "INSERT INTO t VALUES ('deadlocking workers, again');"
                              "INSERT INTO t VALUES ('see lock_deadlocks for it');"
                              "INSERT INTO t VALUES ('nothing here');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    /* what the query builder writes for deadlocking (search/fts.c) */
    const char *q = "(\"deadlocking\" OR \"~deadlocking\")";
    CX_CHECK_INT(count_match(db, q), 2);
    CX_CHECK_INT(count_match(db, "\"deadlocking\""), 1);
    CX_CHECK_INT(count_match(db, "\"~deadlocks\""), 2);
    CX_CHECK_INT(count_match(db, "\"deadlock\""), 0); /* a stem is no word */
    /* the exact form ranks first */
    sqlite3_stmt *st = NULL;
    CX_CHECK_INT(sqlite3_prepare_v2(db, "SELECT rowid FROM t WHERE t MATCH ?1 ORDER BY rank", -1,
                                    &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
    CX_CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CX_CHECK_INT(sqlite3_column_int(st, 0), 2);
    CX_CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CX_CHECK_INT(sqlite3_column_int(st, 0), 1);
    CX_CHECK_INT(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Snowball keeps a word's first letter (its exceptions too: dying -> die,
 * skies -> sky), which cx_text_tokenize_snippet relies on to skip the
 * stems no query stem could equal; with every letter it tokenizes as the
 * index does. */
static void test_snippet_tokens(void) {
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    static const char *const words[] = {
        "dying",   "lying",    "tying",    "skies",     "skis",      "idly",   "gently",
        "ugly",    "early",    "only",     "singly",    "news",      "yelling", "Yesterday",
        "Yields",  "sky",      "atlas",    "cosmos",    "bias",      "andes",  "howe",
        "ties",    "cries",    "generous", "relational", "capability", "happy", "agreed",
        "feed",    "hopefulness", "Ystad", "exceedingly", "succeeded", "proceeding", NULL};
    seen a, b;
    for (int i = 0; words[i]; i++) {
        tokens(&api, tok, FTS5_TOKENIZE_DOCUMENT, words[i], &a);
        const char *stem = strstr(a.buf, "=~");
        if (stem)
            CX_CHECK(stem[2] == (char)tolower((unsigned char)words[i][0]));
    }
    static const char *const texts[] = {
        "Deadlocks deadlocking parseConfigs",   "Rollbacks replicas HTTP iPhone",
        "retry.policies XMLParser Ystad",       "r\xc3\xa9sum\xc3\xa9s dying skies",
        "\xe9\x80\xa3\xe6\x8e\xa5 42 sha256sums", NULL};
    for (int i = 0; texts[i]; i++) {
        int n = (int)strlen(texts[i]);
        tokens(&api, tok, FTS5_TOKENIZE_DOCUMENT, texts[i], &a);
        memset(&b, 0, sizeof b);
        CX_CHECK_INT(cx_text_tokenize_snippet(tok, &b, texts[i], n, UINT32_MAX, on_token),
                     SQLITE_OK);
        CX_CHECK_STR(b.buf, a.buf);
    }
    memset(&b, 0, sizeof b);
    const char *t = "Deadlocks deadlocking parseConfigs Rollbacks replicas dying";
    CX_CHECK_INT(cx_text_tokenize_snippet(tok, &b, t, (int)strlen(t), 1u << ('d' - 'a'), on_token),
                 SQLITE_OK);
    CX_CHECK_STR(b.buf, "deadlocks =~deadlock deadlocking =~deadlock parseconfigs =parse =configs "
                        "rollbacks replicas dying =~die");
    api.xDelete(tok);
    sqlite3_close(db);
}

/* Offsets in order: each new position starts at or after the end of the
 * one before (snippets rely on it), and all lie in the text. */
typedef struct order {
    int n, last_end;
    bool ok;
} order;

static int on_order(void *ctx, int flags, const char *tok, int n, int start, int end) {
    order *o = ctx;
    (void)tok;
    if (n <= 0 || start < 0 || end < start || end > o->n)
        o->ok = false;
    if (!(flags & FTS5_TOKEN_COLOCATED)) {
        if (start < o->last_end)
            o->ok = false;
        o->last_end = end;
    }
    return SQLITE_OK;
}

/* Random text from pieces of every script, marks, emoji sequences, joiners
 * and invalid bytes: the tokenizer succeeds, in every mode, with offsets
 * in order. */
static void test_random_scripts(void) {
    static const char *const pieces[] = {
        "a", "Z", "_", ".", "-", "::", " ", "9", "caf\xc3\xa9", "e\xcc\x81", "\xcc\x88",
        "\xe8\xbf\x9e", "\xe3\x82\xa2", "\xed\x95\x9c", "\xe0\xb8\x82", "\xe0\xb9\x89",
        "\xf0\x9f\x9a\x80", "\xf0\x9f\x8f\xbd", "\xe2\x80\x8d", "\xef\xb8\x8f",
        "\xce\xac", "\xd0\x99", "\xd8\xa7", "\xff", "\xe8\xbf", "\xf0\x9f", "=",
        "\xe0\xa4\xbf", "\xe1\xbc\x84", "\xef\xbd\xa6"};
    const size_t np = sizeof pieces / sizeof pieces[0];
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    uint32_t seed = 12345;
    int bad = 0;
    char text[600];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        seed = seed * 1103515245u + 12345u;
        int count = (int)((seed >> 16) % 40);
        for (int k = 0; k < count; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *pc = pieces[(seed >> 16) % np];
            size_t pl = strlen(pc);
            if (len + pl >= sizeof text)
                break;
            memcpy(text + len, pc, pl);
            len += pl;
        }
        int flags = round % 2 ? FTS5_TOKENIZE_QUERY : FTS5_TOKENIZE_DOCUMENT;
        order o = {.n = (int)len, .last_end = 0, .ok = true};
        if (api.xTokenize(tok, &o, flags, text, (int)len, on_order) != SQLITE_OK || !o.ok)
            bad++;
    }
    CX_CHECK_INT(bad, 0);
    api.xDelete(tok);
    sqlite3_close(db);
}

/* ---- the ASCII fast path against unicode61 ----
 * Every token (bytes, flags, offsets) and every base token handed to the
 * sink, serialised, of one text tokenized in one mode. */
typedef struct rec {
    char *buf;
    size_t len, cap;
    bool over;
} rec;

static rec *sink_rec; /* where the sink writes: the recording in progress */

static void rec_put(rec *r, char kind, int flags, const char *tok, int n, int start, int end) {
    char head[64];
    int h = snprintf(head, sizeof head, "%c%d %d %d %d:", kind, flags, start, end, n);
    if (h < 0 || n < 0 || r->len + (size_t)h + (size_t)n + 1 > r->cap) {
        r->over = true;
        return;
    }
    memcpy(r->buf + r->len, head, (size_t)h);
    memcpy(r->buf + r->len + (size_t)h, tok, (size_t)n);
    r->len += (size_t)h + (size_t)n;
    r->buf[r->len++] = '\n';
}

static int on_rec(void *ctx, int flags, const char *tok, int n, int start, int end) {
    rec_put(ctx, 't', flags, tok, n, start, end);
    return SQLITE_OK;
}

static void on_sink(void *ud, const char *term, int len) {
    (void)ud;
    if (sink_rec)
        rec_put(sink_rec, 's', 0, term, len, 0, 0);
}

/* Modes: FTS5's (document, query, prefix query, auxiliary), then snippets
 * with these stem_initials. */
static const int diff_flags[] = {FTS5_TOKENIZE_DOCUMENT, FTS5_TOKENIZE_QUERY,
                                 FTS5_TOKENIZE_QUERY | FTS5_TOKENIZE_PREFIX, FTS5_TOKENIZE_AUX};
#define DIFF_MODES (4 + 4)

static void diff_run(fts5_tokenizer *api, Fts5Tokenizer *tok, int mode, uint32_t mask,
                     const char *text, int n, rec *r) {
    static const uint32_t masks[] = {UINT32_MAX, 0, (1u << ('d' - 'a')) | (1u << ('p' - 'a'))};
    r->len = 0;
    r->over = false;
    sink_rec = r;
    int rc;
    if (mode < 4)
        rc = api->xTokenize(tok, r, diff_flags[mode], text, n, on_rec);
    else
        rc = cx_text_tokenize_snippet(tok, r, text, n, mode - 4 < 3 ? masks[mode - 4] : mask,
                                      on_rec);
    sink_rec = NULL;
    if (rc != SQLITE_OK)
        rec_put(r, 'e', rc, "", 0, 0, 0);
}

/* Whether both paths give the same tokens for text in every mode; prints
 * the first difference. */
static bool diff_text(fts5_tokenizer *api, Fts5Tokenizer *tok, const char *text, int n,
                      uint32_t mask, rec *fast, rec *slow) {
    for (int mode = 0; mode < DIFF_MODES; mode++) {
        cx_text_tokenizer_test_slow(false);
        diff_run(api, tok, mode, mask, text, n, fast);
        cx_text_tokenizer_test_slow(true);
        diff_run(api, tok, mode, mask, text, n, slow);
        cx_text_tokenizer_test_slow(false);
        if (fast->over || slow->over || fast->len != slow->len ||
            memcmp(fast->buf, slow->buf, fast->len) != 0) {
            fprintf(stderr, "fast path differs (mode %d) on %d bytes:", mode, n);
            for (int i = 0; i < n && i < 200; i++)
                fprintf(stderr, " %02x", (unsigned char)text[i]);
            fprintf(stderr, "\n--- fast\n%.*s--- unicode61\n%.*s", (int)fast->len, fast->buf,
                    (int)slow->len, slow->buf);
            return false;
        }
    }
    return true;
}

/* The fast path gives exactly what unicode61 and the word logic gave, for
 * every ASCII byte, crafted identifiers, paths, long words, marks, and
 * `rounds` random ASCII and mixed texts, in every mode, on an instance
 * made with args (NULL: the defaults); and with the defaults unicode61
 * itself (the slow path) keeps exactly [A-Za-z0-9] of ASCII in words. */
static void fast_path_diff(const char **args, int nargs, int rounds) {
    sqlite3 *db = NULL;
    fts5_tokenizer api;
    Fts5Tokenizer *tok = NULL;
    if (!open_tokenizer(&db, &api, &tok))
        return;
    CX_CHECK_INT(cx_text_tokenizer_sink(db, on_sink, NULL), SQLITE_OK);
    if (nargs > 0) { /* the instance again, with these arguments for unicode61 */
        fts5_api *fts = cx_text_fts5_api(db);
        void *ud = NULL;
        api.xDelete(tok);
        tok = NULL;
        if (!fts || fts->xFindTokenizer(fts, CX_TEXT_TOKENIZER, &ud, &api) != SQLITE_OK ||
            api.xCreate(ud, args, nargs, &tok) != SQLITE_OK) {
            CX_CHECK(!"the cortex tokenizer takes unicode61's arguments");
            sqlite3_close(db);
            return;
        }
    }
    rec fast = {.cap = 1u << 20}, slow = {.cap = 1u << 20};
    fast.buf = malloc(fast.cap);
    slow.buf = malloc(slow.cap);
    char *text = malloc(4096);
    if (!fast.buf || !slow.buf || !text) {
        CX_CHECK(!"out of memory");
        goto out;
    }
    int bad = 0, texts = 0;

    /* each ASCII byte alone, between words, doubled, and as a joiner */
    for (int c = 0; c < 128; c++) {
        char one = (char)c;
        cx_text_tokenizer_test_slow(true);
        diff_run(&api, tok, 1, 0, &one, 1, &slow);
        cx_text_tokenizer_test_slow(false);
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        char want[32];
        int wl = snprintf(want, sizeof want, "t0 0 1 1:%c\n",
                          c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (nargs == 0 &&
            (word ? (slow.len != (size_t)wl || memcmp(slow.buf, want, (size_t)wl) != 0)
                  : slow.len != 0)) {
            fprintf(stderr, "unicode61 on byte %02x: %.*s\n", c, (int)slow.len, slow.buf);
            bad++;
        }
        const char *shapes[] = {"%c", "ab%ccd", "Ab%c%cCd", "x%c", "%cy", "parse%cConfig%c9",
                                "src%cbilling%cinvoice.c", "%c%c%c"};
        for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
            int n = 0;
            for (const char *f = shapes[k]; *f; f++) {
                if (f[0] == '%' && f[1] == 'c') {
                    text[n++] = (char)c;
                    f++;
                } else {
                    text[n++] = *f;
                }
            }
            bad += !diff_text(&api, tok, text, n, 0, &fast, &slow);
            texts++;
        }
    }
    /* every byte in a row, both ways */
    for (int c = 0; c < 128; c++) {
        text[c] = (char)c;
        text[255 - c] = (char)c;
    }
    bad += !diff_text(&api, tok, text, 256, 0, &fast, &slow);

    static const char *const crafted[] = {
        "", " ", "___", "...", "-- // :: -> __", "_a_", ".a.", "a_", "_", "=", "~", "=~", "~=",
        "parse_config parseConfig ParseConfig PARSE_CONFIG parse-config parse.config "
        "parse/config parse::config parse->config parse__config parse_Config",
        "a__b a..b a//b a--b a_.b a._b a___b a::b a:::b a->b a-->b a-b-c-d",
        "src/billing/invoice.c retry.policy.max http://example.com/a/b?x=1&y=2#frag",
        "XMLParser sha256sum v2 x86_64 0x7fff HTTPServer2Go iOS macOS IPv6Addr utf8ToUtf16",
        "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0 ~/.config/cortex/cortex.toml C:\\dir\\f.txt",
        "deadlocks deadlocking panicking panicked skies running Runs RUNNING ran a an the",
        "DEADLOCKS PANICKING Skies ABc AbC aBC A AB ABC XMLParser MAX_RETRY Max_Retry max_RETRY",
        "UNUSED_FEATURE_ROUTER TRUNCATED-TASK.CONNECTION HTTP2 H2O ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ",
        "=parse_config deadlocking", "~deadlocking parse_config", "=Deadlocks ~running",
        "~deadlocking", "=deadlocking", "= deadlocking", "~ deadlocking", "~~x", "==x",
        "fix: retry_policy.max_attempts=3 (was 5); see #1234 and PR-42.",
        "\x01word\x1f\x7fnext\tab\r\nline\x0b\x0c" "end\x7f",
        "CamelCaseWordsHere and lowerCamel and snake_case_words and kebab-case-words",
        "a1b2c3 1a2b3c 123 4.5.6 v1.2.3-rc.1 2026-12-08T03:00:00Z 10.0.0.1:8080",
        "café naïve — “quoted” → parse_config…done 🐛 fix 连接池 アップロード e\xcc\x81t\xc3\xa9",
        "foo\xe2\x80\x94" "bar a_\xc3\xa9_b x\xf0\x9f\x98\x80_y \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd ok",
        "\xff\xfe bad \xe8\xbf ok \xf0\x9f tail",
    };
    for (size_t i = 0; i < sizeof crafted / sizeof *crafted; i++) {
        bad += !diff_text(&api, tok, crafted[i], (int)strlen(crafted[i]), 0, &fast, &slow);
        texts++;
    }
    /* a document's base tokens go to the sink; a snippet's never do */
    static const char sunk[] = "parse_config deadlocks caf\xc3\xa9 MAX";
    for (int mode = 0; mode < DIFF_MODES; mode += 4) {
        diff_run(&api, tok, mode, 0, sunk, (int)strlen(sunk), &fast);
        bool any = fast.len > 0 && fast.buf[0] == 's';
        for (size_t k = 1; k < fast.len; k++)
            any = any || (fast.buf[k - 1] == '\n' && fast.buf[k] == 's');
        CX_CHECK(any == (mode == 0));
    }
    /* long words (over TOK_WHOLE_MAX / 2 = 128 bytes, 64+ letters), long
     * identifiers (over 16 words, over 256 bytes) */
    static const struct {
        const char *unit;
        int times;
    } longs[] = {{"a", 64},      {"a", 65},       {"A", 128},      {"b", 129},
                 {"Ab", 100},    {"x", 300},      {"X", 1000},     {"deadlocking", 6},
                 {"word_", 20},  {"Word.", 17},   {"ab_", 60},     {"abcdefghij/", 30},
                 {"w ", 200},    {"W-", 16},      {"q9", 70},      {"aBcD", 40}};
    for (size_t i = 0; i < sizeof longs / sizeof *longs; i++) {
        for (int pre = 0; pre < 3; pre++) {
            int n = 0;
            const char *prefix = pre == 0 ? "" : pre == 1 ? "x_" : "=";
            n += snprintf(text, 4096, "%s", prefix);
            size_t ul = strlen(longs[i].unit);
            for (int k = 0; k < longs[i].times && n + (int)ul < 3000; k++) {
                memcpy(text + n, longs[i].unit, ul);
                n += (int)ul;
            }
            n += snprintf(text + n, 4096 - (size_t)n, " tail_end");
            bad += !diff_text(&api, tok, text, n, 0, &fast, &slow);
            texts++;
        }
    }

    /* random: ASCII pieces and bytes; then with non-ASCII pieces too */
    static const char *const pieces[] = {
        "a", "Z", "q", "9", "0", "_", ".", "/", "-", "::", "->", "__", " ", " ", "  ", "\t",
        "\n", "parse", "Config", "HTTP", "deadlocking", "runs", "panicked", "x86", "v2", "(",
        ")", ",", ";", "\"", "'", "`", "=", "~", "*", "#", "@", "$", "%", "^", "&", "+", "[",
        "]", "{", "}", "|", "\\", "<", ">", "?", "!", ":", "\x01", "\x7f", "\x1b", "sha256",
        "XMLParser", "retry.policy", "src/a.c", "DEADLOCKS", "Running", "MAX"};
    static const char *const high[] = {
        "caf\xc3\xa9", "e\xcc\x81", "\xe8\xbf\x9e", "\xe3\x82\xa2", "\xe0\xb8\x82",
        "\xf0\x9f\x9a\x80", "\xf0\x9f\x8f\xbd", "\xe2\x80\x8d", "\xe2\x80\x94", "\xce\xac",
        "\xd0\x99", "\xff", "\xe8\xbf", "\xc3\x89T\xc3\x89"};
    const size_t np = sizeof pieces / sizeof *pieces, nh = sizeof high / sizeof *high;
    uint32_t seed = 20261208;
    for (int round = 0; round < rounds; round++) {
        int n = 0;
        seed = seed * 1103515245u + 12345u;
        int count = (int)((seed >> 16) % 60);
        bool mixed = round >= rounds * 2 / 3;
        for (int k = 0; k < count; k++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 16;
            const char *pc;
            char byte[2] = {0, 0};
            size_t pl;
            if (r % 7 == 0) { /* a random ASCII byte, NUL included */
                byte[0] = (char)((r >> 3) % 128);
                pc = byte;
                pl = 1;
            } else if (mixed && r % 5 == 0) {
                pc = high[(r >> 3) % nh];
                pl = strlen(pc);
            } else {
                pc = pieces[(r >> 3) % np];
                pl = strlen(pc);
            }
            if (n + (int)pl >= 1000)
                break;
            memcpy(text + n, pc, pl);
            n += (int)pl;
        }
        seed = seed * 1103515245u + 12345u;
        bad += !diff_text(&api, tok, text, n, seed, &fast, &slow);
        texts++;
    }
    CX_CHECK(texts > rounds);
    CX_CHECK_INT(bad, 0);
out:
    cx_text_tokenizer_test_slow(false);
    free(text);
    free(fast.buf);
    free(slow.buf);
    api.xDelete(tok);
    sqlite3_close(db);
}

/* The fast path on the default instance, and on instances whose unicode61
 * arguments change which ASCII bytes are words (the table is learnt, not
 * assumed). */
static void test_ascii_fast_path(void) {
    fast_path_diff(NULL, 0, 6000);
    const char *joiners[] = {"remove_diacritics", "2", "tokenchars", "_-."};
    fast_path_diff(joiners, 4, 1500);
    const char *seps[] = {"remove_diacritics", "0", "separators", "xQ9", "categories", "L* N*"};
    fast_path_diff(seps, 6, 1500);
}

int main(void) {
    test_parts();
    test_joiners();
    test_tokenizer();
    test_scripts();
    test_stems();
    test_snippet_tokens();
    test_random_scripts();
    test_ascii_fast_path();
    return cx_test_done();
}
