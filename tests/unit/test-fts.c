/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the FTS5 query builder: exact output for ordinary input,
 * and for hostile input (FTS5 operators, quotes, column filters, binary
 * bytes, random text) an expression that FTS5 accepts and that never acts
 * as syntax. */
#include "test.h"

#include "search/fts.h"
#include "search/search.h"

#include <sqlite3.h>

static sqlite3 *db;
static sqlite3_stmt *match;

static void setup(void) {
    sqlite3_open(":memory:", &db);
    sqlite3_exec(db,
                 "CREATE VIRTUAL TABLE f USING fts5(title, body, tags,"
                 " tokenize='unicode61 remove_diacritics 2');"
                 "INSERT INTO f VALUES ('NEAR and OR', 'the title: column AND more', '[\"x\"]');"
                 "INSERT INTO f VALUES ('café', 'naïve résumé foo_bar baz', '[]');"
                 "INSERT INTO f VALUES ('secret', 'nothing here', '[]');",
                 NULL, NULL, NULL);
    sqlite3_prepare_v2(db, "SELECT count(*) FROM f WHERE f MATCH ?1", -1, &match, NULL);
}

/* Rows matching expr, or -1 when FTS5 rejects the expression. */
static int run(const char *expr) {
    sqlite3_reset(match);
    sqlite3_bind_text(match, 1, expr, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(match) != SQLITE_ROW)
        return -1;
    return sqlite3_column_int(match, 0);
}

static void expect(const char *text, cx_fts_mode mode, const char *want) {
    char *q = (char *)"junk";
    int r = cx_fts_build_query(text, mode, &q);
    CX_CHECK_INT(r, 0);
    if (!want) {
        CX_CHECK(q == NULL);
    } else {
        CX_CHECK_STR(q, want);
        CX_CHECK(q && run(q) >= 0);
    }
    free(r == 0 ? q : NULL);
}

static void test_exact(void) {
    expect("hello world", CX_FTS_ALL, "(\"hello\" OR \"~hello\") AND (\"world\" OR \"~world\")");
    expect("hello world", CX_FTS_ANY, "(\"hello\" OR \"~hello\") OR (\"world\" OR \"~world\")");
    expect("hello", CX_FTS_ANY, "(\"hello\" OR \"~hello\")");
    expect("foo*", CX_FTS_ALL, "\"foo\"*");
    expect("foo* bar", CX_FTS_ALL, "\"foo\"* AND (\"bar\" OR \"~bar\")");
    expect("foo *", CX_FTS_ALL, "(\"foo\" OR \"~foo\")");
    expect("\"exact phrase\" other", CX_FTS_ALL, "\"exact phrase\" AND (\"other\" OR \"~other\")");
    expect("\"exact   phrase!\"*", CX_FTS_ANY, "\"exact phrase\"*");
    expect("NEAR(a b)", CX_FTS_ALL, "(\"NEAR\" OR \"~NEAR\") AND \"a\" AND \"b\"");
    expect("a AND b OR NOT c", CX_FTS_ALL,
           "\"a\" AND (\"AND\" OR \"~AND\") AND \"b\" AND \"OR\" AND (\"NOT\" OR \"~NOT\") AND \"c\"");
    expect("title:secret", CX_FTS_ALL, "(\"title\" OR \"~title\") AND (\"secret\" OR \"~secret\")");
    expect("{title body}:secret", CX_FTS_ALL, "(\"title\" OR \"~title\") AND (\"body\" OR \"~body\") AND (\"secret\" OR \"~secret\")");
    expect("^start -minus +plus", CX_FTS_ALL, "(\"start\" OR \"~start\") AND (\"minus\" OR \"~minus\") AND (\"plus\" OR \"~plus\")");
    expect("\"unbalanced quote", CX_FTS_ALL, "(\"unbalanced\" OR \"~unbalanced\") AND (\"quote\" OR \"~quote\")");
    expect("a \"b c\" \"d", CX_FTS_ALL, "\"a\" AND \"b c\" AND \"d\"");
    expect("foo_bar", CX_FTS_ALL, "(\"foo_bar\" OR (\"foo\" AND \"bar\"))");
    expect("src/store.c:42", CX_FTS_ALL,
           "(\"src/store.c\" OR (\"src\" AND \"store\" AND \"c\")) AND \"42\"");
    /* plain words: by their stem too (not prefixes, identifiers, short
     * words or words with diacritics) */
    expect("Deadlocking", CX_FTS_ANY, "(\"Deadlocking\" OR \"~Deadlocking\")");
    expect("deadlock* go", CX_FTS_ANY, "\"deadlock\"* OR \"go\"");
    /* words that may carry diacritics: the exact form too, ranked first */
    expect("café naïve", CX_FTS_ALL,
           "(\"=café\" OR \"café\") AND (\"=naïve\" OR \"naïve\")");
    expect("a\xff" "b", CX_FTS_ALL, "\"a\" AND \"b\""); /* invalid byte separates */
    expect("\xe6\x97\xa5\xe6\x9c\xac", CX_FTS_ALL, "\"\xe6\x97\xa5\xe6\x9c\xac\"");

    /* nothing searchable: no expression, not an error */
    expect("", CX_FTS_ALL, NULL);
    expect("   \t\n", CX_FTS_ALL, NULL);
    expect("!!! ??? ...", CX_FTS_ALL, NULL);
    expect("***", CX_FTS_ANY, NULL);
    expect("\"\"", CX_FTS_ALL, NULL);
    expect("\"!!\" \"", CX_FTS_ALL, NULL);
    expect("\xff\xfe\xc0\xaf", CX_FTS_ALL, NULL);
    expect(NULL, CX_FTS_ALL, NULL);

    /* operators are data: NEAR and OR are found as words in the title */
    char *q = NULL;
    CX_CHECK_OK(cx_fts_build_query("NEAR OR", CX_FTS_ALL, &q));
    CX_CHECK_INT(run(q), 1);
    free(q);
    q = NULL;
    /* a column filter is not one: "title" is a word of row 1's body */
    CX_CHECK_OK(cx_fts_build_query("title:secret", CX_FTS_ANY, &q));
    CX_CHECK_INT(run(q), 2);
    free(q);
    q = NULL;
    CX_CHECK_OK(cx_fts_build_query("resume cafe", CX_FTS_ALL, &q)); /* diacritics folded */
    CX_CHECK_INT(run(q), 1);
    free(q);
    q = NULL;
    CX_CHECK_OK(cx_fts_build_query("foo_b*", CX_FTS_ALL, &q));
    CX_CHECK_INT(run(q), 1);
    free(q);
}

/* Identifiers match whole or by their parts (see fts.c). */
static void test_identifiers(void) {
    expect("parseConfigFile", CX_FTS_ALL,
           "(\"parseConfigFile\" OR (\"parse\" AND \"Config\" AND \"File\"))");
    expect("parseConfigFile", CX_FTS_ANY,
           "(\"parseConfigFile\" OR \"parse\" OR \"Config\" OR \"File\")");
    expect("XMLHttpRequest", CX_FTS_ALL,
           "(\"XMLHttpRequest\" OR (\"XML\" AND \"Http\" AND \"Request\"))");
    expect("parseCfg x", CX_FTS_ANY, "(\"parseCfg\" OR \"parse\" OR \"Cfg\") OR \"x\"");
    expect("retry.policy.max", CX_FTS_ALL,
           "(\"retry.policy.max\" OR (\"retry\" AND \"policy\" AND \"max\"))");
    expect("std::vector ptr->next", CX_FTS_ALL,
           "(\"std::vector\" OR (\"std\" AND \"vector\")) AND "
           "(\"ptr->next\" OR (\"ptr\" AND \"next\"))");
    expect("sha256", CX_FTS_ALL, "(\"sha256\" OR (\"sha\" AND \"256\"))");
    /* parts of one character are left out of an OR, kept in an AND */
    expect("x86_64", CX_FTS_ANY, "(\"x86_64\" OR \"86\" OR \"64\")");
    expect("x86_64", CX_FTS_ALL, "(\"x86_64\" OR (\"x\" AND \"86\" AND \"64\"))");
    /* a prefix applies to the whole and to the last part */
    expect("parseConf*", CX_FTS_ALL, "(\"parseConf\"* OR (\"parse\" AND \"Conf\"*))");
    /* joiners only join words: at the ends they separate */
    expect("-flag trailing- a--b", CX_FTS_ALL,
           "(\"flag\" OR \"~flag\") AND (\"trailing\" OR \"~trailing\") AND \"a\" AND \"b\"");
    expect("__init__", CX_FTS_ALL, "\"__init__\"");
    expect("2026-01-31", CX_FTS_ALL,
           "(\"2026-01-31\" OR (\"2026\" AND \"01\" AND \"31\"))");
    /* inside a phrase an identifier stays whole */
    expect("\"call parse_config now\"", CX_FTS_ALL, "\"call parse_config now\"");
    expect("\"see src/x.c\"*", CX_FTS_ANY, "\"see src/x.c\"*");
    /* the plain unicode61 table: the parts find foo_bar */
    char *q = NULL;
    CX_CHECK_OK(cx_fts_build_query("fooBar", CX_FTS_ALL, &q));
    CX_CHECK_INT(run(q), 1);
    free(q);
}

static void test_limits(void) {
    char *big = malloc(CX_SEARCH_MAX_QUERY + 2);
    memset(big, 'a', CX_SEARCH_MAX_QUERY + 1);
    big[CX_SEARCH_MAX_QUERY + 1] = '\0';
    char *q = NULL;
    CX_CHECK_INT(cx_fts_build_query(big, CX_FTS_ALL, &q), CX_ELIMIT);
    CX_CHECK(q == NULL);
    big[CX_SEARCH_MAX_QUERY] = '\0';
    CX_CHECK_OK(cx_fts_build_query(big, CX_FTS_ALL, &q));
    CX_CHECK(q && run(q) >= 0);
    free(q);
    q = NULL;
    /* 1000 one-letter words with '*': the expression is bounded */
    for (int i = 0; i < CX_SEARCH_MAX_QUERY; i += 2) {
        big[i] = (char)('a' + i % 26);
        big[i + 1] = i % 4 ? ' ' : '*';
    }
    big[CX_SEARCH_MAX_QUERY] = '\0';
    CX_CHECK_OK(cx_fts_build_query(big, CX_FTS_ANY, &q));
    CX_CHECK(q && run(q) >= 0);
    CX_CHECK(q && strlen(q) < 64 * 12);
    free(q);
    free(big);
}

static unsigned rng = 12345;
static unsigned next(void) {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) & 0xffffff;
}

/* Random text with a bias to what FTS5 treats as syntax. */
static void test_random(void) {
    static const char *const pieces[] = {
        "\"", "*", "(", ")", ":", "^", "-", "+", "AND", "OR", "NOT", "NEAR", "NEAR(", ",", "{",
        "}", " ", "\t", "\n", "title", "body:", "col:x", "\"\"", "\\", "'", "%", "\xc2\xab",
        "\xe2\x80\x94", "\xef\xbb\xbf", "\xf0\x9f\x98\x80", "\xc3\xa9", "\xff", "\xc0", "\xed\xa0\x80",
        "a", "z9", "_", "0", NULL};
    size_t npieces = 0;
    while (pieces[npieces])
        npieces++;
    int rejected = 0, built = 0;
    char buf[CX_SEARCH_MAX_QUERY + 1];
    for (int iter = 0; iter < 30000; iter++) {
        size_t len = 0, target = next() % 120;
        while (len < target) {
            const char *p;
            char byte[2] = {0, 0};
            if (next() % 3 == 0) {
                byte[0] = (char)(1 + next() % 255); /* any byte but NUL */
                p = byte;
            } else {
                p = pieces[next() % npieces];
            }
            size_t n = strlen(p);
            if (len + n >= sizeof buf)
                break;
            memcpy(buf + len, p, n);
            len += n;
        }
        buf[len] = '\0';
        for (int m = 0; m < 2; m++) {
            char *q = NULL;
            int r = cx_fts_build_query(buf, m ? CX_FTS_ANY : CX_FTS_ALL, &q);
            if (r != 0) {
                rejected++;
                continue;
            }
            if (q) {
                built++;
                if (run(q) < 0) {
                    rejected++;
                    fprintf(stderr, "FTS5 rejected %s: %s\n", q, sqlite3_errmsg(db));
                }
            }
            free(q);
        }
    }
    CX_CHECK_INT(rejected, 0);
    CX_CHECK(built > 1000);
}

int main(void) {
    setup();
    test_exact();
    test_identifiers();
    test_limits();
    test_random();
    sqlite3_finalize(match);
    sqlite3_close(db);
    return cx_test_done();
}
