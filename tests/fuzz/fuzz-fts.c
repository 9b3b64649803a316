/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes cx_fts_build_query() (src/search/fts.h): for any text, in both
 * modes, the expression it builds must be accepted by FTS5. The input is
 * used as a C string (a copy, NUL-terminated; bytes after an embedded NUL
 * are ignored, as they would be by the caller).
 *
 * Checked: the only failures are CX_ENOMEM, and CX_ELIMIT for text over
 * CX_SEARCH_MAX_QUERY bytes; both modes agree on whether the text has
 * searchable words; every expression runs as `t MATCH ?` on a real FTS5
 * table without an error. The same holds with a typo-correction hook that
 * corrects every word it is offered (cx_fts_build_query_opts): the
 * corrections are inserted in the word's place and stay valid FTS5, and
 * the builder offers the hook only lower-case [a-z_] words of 4 to 64
 * bytes. Any violation abort()s with the input. */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "search/fts.h"
#include "search/search-internal.h"
#include "search/search.h"
#include "util/error.h"

static sqlite3 *db;
static sqlite3_stmt *stmt;

static void die(const char *why, const char *text, const char *expr, const char *detail)
{
    fprintf(stderr, "fuzz-fts: %s\n  text: \"", why);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\')
            fputc(*c, stderr);
        else
            fprintf(stderr, "\\x%02x", *c);
    }
    fprintf(stderr, "\"\n  expr: %s\n  detail: %s\n", expr ? expr : "(null)",
            detail ? detail : "");
    abort();
}

static void setup(void)
{
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE t USING fts5(a);"
                     "INSERT INTO t(a) VALUES ('alpha beta_gamma delta.epsilon foo/bar camelCase'),"
                     " ('\"quoted\" AND OR NOT NEAR(x y) col:umn * ^ + - unicode \xc3\xa9t\xc3\xa9');",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?", -1, &stmt, NULL) !=
            SQLITE_OK) {
        fprintf(stderr, "fuzz-fts: sqlite setup: %s\n", db ? sqlite3_errmsg(db) : "open failed");
        abort();
    }
}

static void check_match(const char *text, const char *expr)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (sqlite3_bind_text(stmt, 1, expr, -1, SQLITE_STATIC) != SQLITE_OK)
        die("bind failed", text, expr, sqlite3_errmsg(db));
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW)
        die("FTS5 rejected the expression", text, expr, sqlite3_errmsg(db));
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE)
        die("FTS5 failed after the first row", text, expr, sqlite3_errmsg(db));
    sqlite3_reset(stmt);
}

/* Corrects every word: to itself reversed, and (for the even ones) to
 * itself with its first letter doubled when that fits. */
static const char *fix_text;
static size_t fake_fix(void *ud, const char *w, size_t n, bool part,
                       char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1])
{
    (void)ud;
    if (n < (part ? CX_TYPO_PART_MIN : CX_STORE_TERM_MIN) || n > CX_STORE_TERM_MAX)
        die("the hook was offered a word of a bad length", fix_text, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        if (!((w[i] >= 'a' && w[i] <= 'z') || w[i] == '_'))
            die("the hook was offered a word that is not lower-case [a-z_]", fix_text, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        fix[0][i] = w[n - 1 - i];
    fix[0][n] = '\0';
    if (n % 2 || n == CX_STORE_TERM_MAX)
        return 1;
    fix[1][0] = w[0];
    memcpy(fix[1] + 1, w, n);
    fix[1][n + 1] = '\0';
    return 2;
}

static void check_fixed(const char *text, bool has_expr)
{
    static cx_fts_opts o;
    fix_text = text;
    for (int m = 0; m < 2; m++) {
        o = (cx_fts_opts){.mode = m ? CX_FTS_ANY : CX_FTS_ALL, .fix = fake_fix};
        char *expr = NULL;
        int r = cx_fts_build_query_opts(text, &o, &expr);
        if (r == CX_ENOMEM)
            return;
        if (r != 0)
            die("unexpected error code with corrections", text, expr, cx_error_last());
        if ((expr != NULL) != has_expr)
            die("corrections changed whether the text has searchable words", text, expr, NULL);
        if (expr) {
            if (o.nphrase <= 0)
                die("no phrase counted", text, expr, NULL);
            check_match(text, expr);
            free(expr);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        setup();

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t tlen = strlen(text);

    static const cx_fts_mode modes[] = {CX_FTS_ALL, CX_FTS_ANY};
    bool has_expr[2] = {false, false};
    for (size_t i = 0; i < 2; i++) {
        char *expr = NULL;
        int r = cx_fts_build_query(text, modes[i], &expr);
        if (r == CX_ENOMEM) {
            free(text);
            return 0;
        }
        if (r == CX_ELIMIT) {
            if (tlen <= CX_SEARCH_MAX_QUERY)
                die("CX_ELIMIT for text within CX_SEARCH_MAX_QUERY", text, expr, cx_error_last());
            if (expr)
                die("*out set on failure", text, expr, NULL);
            continue;
        }
        if (r != 0)
            die("unexpected error code", text, expr, cx_error_last());
        if (tlen > CX_SEARCH_MAX_QUERY)
            die("text over CX_SEARCH_MAX_QUERY accepted", text, expr, NULL);
        if (expr) {
            has_expr[i] = true;
            if (!*expr)
                die("empty expression (should be NULL)", text, expr, NULL);
            check_match(text, expr);
            free(expr);
        }
    }
    if (has_expr[0] != has_expr[1])
        die("the modes disagree on whether the text has searchable words", text, NULL, NULL);
    if (tlen <= CX_SEARCH_MAX_QUERY)
        check_fixed(text, has_expr[0]);

    free(text);
    return 0;
}
