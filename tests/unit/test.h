/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny test harness for the unit tests: checks that count passes and
 * failures and report the failing line, temporary directories, and the
 * closing "N passed, N failed" line.
 *
 *     int main(void) {
 *         CX_CHECK(1 + 1 == 2);
 *         CX_CHECK_OK(cx_store_open(&s, dir));     // prints cx_error_last() on failure
 *         CX_CHECK_INT(r, CX_ENOTFOUND);
 *         CX_CHECK_STR(json_string_value(v), "pending");
 *         return cx_test_done();
 *     }
 *
 * Failures go to stderr; only the summary goes to stdout. */
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

static int cx_test_passed, cx_test_failed;

static inline void cx_test_report(int ok, const char *file, int line, const char *what,
                                  const char *detail) {
    if (ok) {
        cx_test_passed++;
        return;
    }
    cx_test_failed++;
    fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, what, detail ? " -- " : "",
            detail ? detail : "");
}

#define CX_CHECK(cond) cx_test_report(!!(cond), __FILE__, __LINE__, #cond, NULL)

/* expr returns 0 on success; on failure the error detail is shown. */
#define CX_CHECK_OK(expr)                                                                  \
    do {                                                                                   \
        int cx_test_r_ = (expr);                                                           \
        cx_test_report(cx_test_r_ == 0, __FILE__, __LINE__, #expr,                         \
                       cx_test_r_ ? cx_error_last() : NULL);                               \
    } while (0)

#define CX_CHECK_INT(a, b)                                                                 \
    do {                                                                                   \
        long long cx_test_a_ = (long long)(a), cx_test_b_ = (long long)(b);               \
        char cx_test_m_[160];                                                              \
        snprintf(cx_test_m_, sizeof cx_test_m_, "got %lld, want %lld (%s)", cx_test_a_,    \
                 cx_test_b_, cx_error_last());                                            \
        cx_test_report(cx_test_a_ == cx_test_b_, __FILE__, __LINE__, #a " == " #b,         \
                       cx_test_a_ == cx_test_b_ ? NULL : cx_test_m_);                      \
    } while (0)

#define CX_CHECK_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *cx_test_a_ = (a), *cx_test_b_ = (b);                                   \
        int cx_test_ok_ = cx_test_a_ && cx_test_b_ && strcmp(cx_test_a_, cx_test_b_) == 0; \
        char cx_test_m_[512];                                                              \
        snprintf(cx_test_m_, sizeof cx_test_m_, "got \"%s\", want \"%s\"",                 \
                 cx_test_a_ ? cx_test_a_ : "(null)", cx_test_b_ ? cx_test_b_ : "(null)");  \
        cx_test_report(cx_test_ok_, __FILE__, __LINE__, #a " == " #b,                      \
                       cx_test_ok_ ? NULL : cx_test_m_);                                   \
    } while (0)

/* A fresh directory under $TMPDIR (or /tmp); malloc'd, NULL on failure. */
static inline char *cx_test_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/cx-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

static inline int cx_test_rm_one(const char *path, const struct stat *st, int flag,
                                 struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf path (does not follow symlinks). */
static inline void cx_test_rmrf(const char *path) {
    if (path)
        nftw(path, cx_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the summary line and returns the exit status for main. */
static inline int cx_test_done(void) {
    printf("%d passed, %d failed\n", cx_test_passed, cx_test_failed);
    fflush(stdout);
    return cx_test_failed ? 1 : 0;
}
