/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/util: ULIDs, clock and ISO 8601, file-system helpers. */
#include "test.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"

#include <stdint.h>
#include <sys/stat.h>

static void test_ulid(void) {
    char a[CX_ULID_LEN + 1], b[CX_ULID_LEN + 1];
    uint64_t before = cx_clock_now_ms();
    CX_CHECK_OK(cx_ulid_new(a));
    CX_CHECK_INT(strlen(a), CX_ULID_LEN);
    CX_CHECK(cx_ulid_valid(a));
    uint64_t t = cx_ulid_time_ms(a);
    CX_CHECK(t >= before && t <= cx_clock_now_ms());

    /* strictly increasing within a process, even in one millisecond */
    int ordered = 1;
    for (int i = 0; i < 10000; i++) {
        if (cx_ulid_new(b) != 0 || strcmp(a, b) >= 0)
            ordered = 0;
        memcpy(a, b, sizeof a);
    }
    CX_CHECK(ordered);

    CX_CHECK(!cx_ulid_valid(NULL));
    CX_CHECK(!cx_ulid_valid(""));
    CX_CHECK(!cx_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FA"));   /* 25 chars */
    CX_CHECK(!cx_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAVV")); /* 27 chars */
    CX_CHECK(!cx_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));  /* U is not in the alphabet */
    CX_CHECK(!cx_ulid_valid("81ARZ3NDEKTSV4RRFFQ69G5FAV"));  /* over 128 bits */
    CX_CHECK(cx_ulid_valid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    CX_CHECK(cx_ulid_valid("01arz3ndektsv4rrffq69g5fav"));   /* case-insensitive */
    CX_CHECK(!cx_ulid_valid("2026-01-31T09:30:00Z"));
}

static void test_clock(void) {
    char iso[CX_ISO_LEN];
    cx_clock_format(0, iso);
    CX_CHECK_STR(iso, "1970-01-01T00:00:00.000Z");
    cx_clock_format(1769851803123ull, iso);
    CX_CHECK_STR(iso, "2026-01-31T09:30:03.123Z");

    uint64_t ms = 0;
    CX_CHECK_OK(cx_clock_parse("2026-01-31T09:30:03.123Z", &ms));
    CX_CHECK_INT(ms, 1769851803123ll);
    CX_CHECK_OK(cx_clock_parse("2026-01-31", &ms));
    CX_CHECK_INT(ms, 1769817600000ll);
    CX_CHECK_OK(cx_clock_parse("2026-01-31T09:30", &ms));
    CX_CHECK_INT(ms, 1769851800000ll);
    CX_CHECK_OK(cx_clock_parse("2026-01-31T10:30:00+01:00", &ms));
    CX_CHECK_INT(ms, 1769851800000ll);
    CX_CHECK_OK(cx_clock_parse("2026-01-31T08:30:00-01:00", &ms));
    CX_CHECK_INT(ms, 1769851800000ll);

    /* round trip */
    uint64_t now = cx_clock_now_ms(), back = 0;
    cx_clock_format(now, iso);
    CX_CHECK_OK(cx_clock_parse(iso, &back));
    CX_CHECK_INT(back, now);

    static const char *const bad[] = {"", "yesterday", "2026-13-01", "2026-01-32", "2026-1-31",
                                      "2026-01-31T25:00", "2026-01-31T09:30:00Zjunk",
                                      "01ARZ3NDEKTSV4RRFFQ69G5FAV", "1969-12-31", "2026-01-31T",
                                      "2026-01-31T09:30:00.", NULL};
    for (int i = 0; bad[i]; i++) {
        int r = cx_clock_parse(bad[i], &ms);
        CX_CHECK_INT(r, CX_EINVAL);
    }
    CX_CHECK_INT(cx_clock_parse(NULL, &ms), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "ISO 8601") != NULL);

    uint64_t m1 = cx_clock_mono_ns(), m2 = cx_clock_mono_ns();
    CX_CHECK(m2 >= m1);
}

static void test_fsx(void) {
    char *dir = cx_test_tmpdir();
    CX_CHECK(dir != NULL);
    if (!dir)
        return;

    char *j = cx_fs_join("/a/b//", "c");
    CX_CHECK_STR(j, "/a/b/c");
    free(j);

    char *deep = cx_fs_join(dir, "x/y/z");
    CX_CHECK_OK(cx_fs_mkdir_p(deep, 0700));
    CX_CHECK(cx_fs_is_dir(deep));
    CX_CHECK_OK(cx_fs_mkdir_p(deep, 0700)); /* again: fine */

    char *file = cx_fs_join(deep, "f.txt");
    CX_CHECK_OK(cx_fs_write_atomic(file, "hello", 5, 0600));
    CX_CHECK(!cx_fs_is_dir(file));
    char *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_fs_read_file(file, 100, &data, &len));
    CX_CHECK_INT(len, 5);
    CX_CHECK_STR(data, "hello");
    free(data);
    data = NULL;
    /* overwrite atomically, shorter */
    CX_CHECK_OK(cx_fs_write_atomic(file, "hi", 2, 0600));
    CX_CHECK_OK(cx_fs_read_file(file, 100, &data, &len));
    CX_CHECK_STR(data, "hi");
    free(data);
    data = NULL;
    struct stat st;
    CX_CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600);

    CX_CHECK_INT(cx_fs_read_file(file, 1, &data, &len), CX_ELIMIT);
    char *missing = cx_fs_join(dir, "missing");
    CX_CHECK_INT(cx_fs_read_file(missing, 100, &data, &len), CX_ENOTFOUND);
    CX_CHECK_INT(cx_fs_read_file(deep, 100, &data, &len), CX_EINVAL);
    CX_CHECK(data == NULL);

    /* a file in the way of mkdir -p */
    char *blocked = cx_fs_join(file, "sub");
    CX_CHECK(cx_fs_mkdir_p(blocked, 0700) != 0);

    /* resolve_within: inside, outside, through a symlink out */
    char *out = NULL;
    CX_CHECK_OK(cx_fs_resolve_within(dir, "x/y/z/f.txt", &out));
    CX_CHECK(out && strstr(out, "x/y/z/f.txt") != NULL);
    free(out);
    out = NULL;
    CX_CHECK_INT(cx_fs_resolve_within(dir, "../", &out), CX_EINVAL);
    CX_CHECK_INT(cx_fs_resolve_within(dir, "/etc/hostname", &out), CX_EINVAL);
    CX_CHECK_INT(cx_fs_resolve_within(dir, "nope", &out), CX_ENOTFOUND);
    char *link = cx_fs_join(dir, "escape");
    CX_CHECK(symlink("/etc", link) == 0);
    CX_CHECK_INT(cx_fs_resolve_within(dir, "escape/hostname", &out), CX_EINVAL);
    CX_CHECK(out == NULL);

    free(link);
    free(blocked);
    free(missing);
    free(file);
    free(deep);
    cx_test_rmrf(dir);
    CX_CHECK(!cx_fs_is_dir(dir));
    free(dir);
}

static void test_error(void) {
    cx_error_clear();
    CX_CHECK_STR(cx_error_last(), "ok");
    CX_CHECK_INT(cx_error_set(CX_ENOTFOUND, "no item %d", 7), CX_ENOTFOUND);
    CX_CHECK_STR(cx_error_last(), "no item 7");
    CX_CHECK_INT(cx_error_code(), CX_ENOTFOUND);
    CX_CHECK_STR(cx_strerror(CX_EBUSY), "busy");
    CX_CHECK_STR(cx_strerror(12345), "failed");
    cx_error_clear();
}

int main(void) {
    test_ulid();
    test_clock();
    test_fsx();
    test_error();
    return cx_test_done();
}
