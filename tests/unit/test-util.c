/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/util: ULIDs, clock and ISO 8601, file-system helpers,
 * the capped buffer, the UTF-8 sanitiser, the dlopen helper. */
#include "test.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/dl.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"
#include "util/utf8.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
    CX_CHECK_OK(cx_fs_read_file(file, 2, &data, &len)); /* exactly the limit */
    CX_CHECK(data && len == 2 && strcmp(data, "hi") == 0);
    free(data);
    data = NULL;
    /* larger than one read, and empty */
    char big[20000];
    memset(big, 'b', sizeof big);
    CX_CHECK_OK(cx_fs_write_atomic(file, big, sizeof big, 0600));
    CX_CHECK_OK(cx_fs_read_file(file, sizeof big, &data, &len));
    CX_CHECK(data && len == sizeof big && memcmp(data, big, len) == 0 && data[len] == '\0');
    free(data);
    data = NULL;
    CX_CHECK_OK(cx_fs_write_atomic(file, "", 0, 0600));
    CX_CHECK_OK(cx_fs_read_file(file, 0, &data, &len));
    CX_CHECK(data && len == 0 && data[0] == '\0');
    free(data);
    data = NULL;
    char *missing = cx_fs_join(dir, "missing");
    CX_CHECK_INT(cx_fs_read_file(missing, 100, &data, &len), CX_ENOTFOUND);
    CX_CHECK_INT(cx_fs_read_file(deep, 100, &data, &len), CX_EINVAL);
    CX_CHECK(data == NULL);

    /* special files are refused at once, never waited on: a FIFO with no
     * writer (a blocking open would hang here), a socket, a device */
    char *fifo = cx_fs_join(dir, "fifo");
    CX_CHECK(mkfifo(fifo, 0600) == 0);
    CX_CHECK_INT(cx_fs_read_file(fifo, 100, &data, &len), CX_EINVAL);
    CX_CHECK(data == NULL && strstr(cx_error_last(), "not a regular file") != NULL);
    char *sock = cx_fs_join(dir, "sock");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    CX_CHECK(sfd >= 0 && bind(sfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CX_CHECK_INT(cx_fs_read_file(sock, 100, &data, &len), CX_EINVAL);
    CX_CHECK(data == NULL);
    if (sfd >= 0)
        close(sfd);
    CX_CHECK_INT(cx_fs_read_file("/dev/zero", 100, &data, &len), CX_EINVAL);
    CX_CHECK(data == NULL);
    free(sock);
    free(fifo);

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

static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

typedef struct writer {
    const char *path;
    char text[32];
    int failures;
} writer;

static void *write_many(void *arg) {
    writer *w = arg;
    for (int i = 0; i < 50; i++)
        w->failures += cx_fs_write_atomic(w->path, w->text, strlen(w->text), 0600) != 0;
    return NULL;
}

/* The one atomic writer: the umask applies unless CX_FS_EXACT_MODE; a
 * symlink is replaced, or kept with CX_FS_THROUGH_SYMLINK; threads writing
 * one file all succeed, and no temporary file is ever left behind. */
static void test_write_atomic(void) {
    char *dir = cx_test_tmpdir();
    CX_CHECK(dir != NULL);
    if (!dir)
        return;
    char *file = cx_fs_join(dir, "f"), *target = cx_fs_join(dir, "target"),
         *link = cx_fs_join(dir, "link"), *nodir = cx_fs_join(dir, "no/such/f");
    struct stat st;
    mode_t old = umask(022);
    CX_CHECK_OK(cx_fs_write_atomic(file, "a", 1, 0666));
    CX_CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0644);
    CX_CHECK_OK(cx_fs_write_atomic_ex(file, "b", 1, 0666, CX_FS_EXACT_MODE));
    CX_CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0666);
    umask(old);

    CX_CHECK_OK(cx_fs_write_atomic(target, "old", 3, 0600));
    CX_CHECK(symlink(target, link) == 0);
    CX_CHECK_OK(cx_fs_write_atomic_ex(link, "new", 3, 0600, CX_FS_THROUGH_SYMLINK));
    CX_CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    char *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_fs_read_file(target, 100, &data, &len));
    CX_CHECK_STR(data, "new");
    free(data);
    CX_CHECK_OK(cx_fs_write_atomic(link, "own", 3, 0600)); /* the link itself is replaced */
    CX_CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode));

    CX_CHECK_INT(cx_fs_write_atomic(nodir, "x", 1, 0600), CX_EIO);
    CX_CHECK(strstr(cx_error_last(), "no/such/f") != NULL);

    writer w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer){.path = file};
        snprintf(w[i].text, sizeof w[i].text, "writer %d", i);
        CX_CHECK(pthread_create(&t[i], NULL, write_many, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += w[i].failures;
    }
    CX_CHECK_INT(failures, 0);
    CX_CHECK_OK(cx_fs_read_file(file, 100, &data, &len));
    CX_CHECK(data && strncmp(data, "writer ", 7) == 0 && len == 8);
    free(data);
    CX_CHECK_INT(entries(dir), 3); /* f, target, link: no temporary file left */

    free(file), free(target), free(link), free(nodir);
    cx_test_rmrf(dir);
    free(dir);
}

/* The capped buffer: appends up to the cap exactly, one byte past it fails
 * with CX_ELIMIT and leaves the contents as they were, formatted appends are
 * held to the same cap, take hands over a string and empties the buffer. */
/* The literal of s[0, n) byte by byte, as the cases above show jansson
 * writes it (room for n + 8: at most one byte of s is escaped). */
static void json_literal_ref(const char *s, size_t n, char *out) {
    size_t k = 0;
    out[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : NULL;
        if (esc) {
            memcpy(out + k, esc, 2);
            k += 2;
        } else if (c < 0x20) {
            k += (size_t)snprintf(out + k, 7, "\\u%04X", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '"';
    out[k] = '\0';
}

/* JSON string literals as jansson writes them (the store's outbox and
 * cortexd's answers are built by hand with this and must read the same);
 * a literal past the cap leaves the buffer as it was. */
static void test_buf_json_str(void) {
    cx_buf b;
    cx_buf_init(&b, 1000);
    static const char in[] = "a\"b\\c/d\b\f\n\r\t\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x9a\x80";
    CX_CHECK_OK(cx_buf_add_json_str(&b, in, sizeof in - 1));
    CX_CHECK_STR(cx_buf_str(&b), "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001F\x7f caf\xc3\xa9 "
                                 "\xf0\x9f\x9a\x80\"");
    cx_buf_reset(&b);
    CX_CHECK_OK(cx_buf_add_json_str(&b, "nul\0inside", 10)); /* n bytes, not to a NUL */
    CX_CHECK_STR(cx_buf_str(&b), "\"nul\\u0000inside\"");
    cx_buf_reset(&b);
    CX_CHECK_OK(cx_buf_add_json_str(&b, "", 0));
    CX_CHECK_STR(cx_buf_str(&b), "\"\"");
    cx_buf_free(&b);
    cx_buf_init(&b, 8);
    CX_CHECK_OK(cx_buf_adds(&b, "ab"));
    CX_CHECK_INT(cx_buf_add_json_str(&b, "\n\n\n", 3), CX_ELIMIT); /* 8 bytes escaped: 10 */
    CX_CHECK_STR(cx_buf_str(&b), "ab");
    CX_CHECK_OK(cx_buf_add_json_str(&b, "\n\n", 2)); /* 6 more: exactly the cap */
    CX_CHECK_STR(cx_buf_str(&b), "ab\"\\n\\n\"");
    cx_buf_free(&b);
    /* every byte at every offset of a text longer than the 16-byte steps
     * of cx_json_plain_run: where the plain run ends, and the literal,
     * against jansson's */
    size_t bad = 0;
    for (int c = 1; c < 256; c++) {
        for (size_t at = 0; at < 40; at++) {
            char text[48];
            memset(text, 'x', sizeof text);
            text[at] = (char)c;
            bool special = c < 0x20 || c == '"' || c == '\\';
            bad += cx_json_plain_run(text, sizeof text) != (special ? at : sizeof text);
            char want[64 + 8];
            json_literal_ref(text, sizeof text, want);
            cx_buf_init(&b, 1000);
            bad += cx_buf_add_json_str(&b, text, sizeof text) != 0 ||
                   strcmp(cx_buf_str(&b), want) != 0;
            cx_buf_free(&b);
        }
    }
    CX_CHECK_INT(bad, 0);
}

static void test_buf(void) {
    cx_buf b;
    cx_buf_init(&b, 10);
    CX_CHECK_STR(cx_buf_str(&b), "");
    CX_CHECK_OK(cx_buf_add(&b, "hello", 5));
    CX_CHECK_OK(cx_buf_adds(&b, "worl"));
    CX_CHECK_INT(b.len, 9);
    CX_CHECK_STR(b.data, "helloworl");
    CX_CHECK_INT(cx_buf_adds(&b, "d!"), CX_ELIMIT); /* 11 > 10 */
    CX_CHECK(strstr(cx_error_last(), "limit of 10") != NULL);
    CX_CHECK_STR(cx_buf_str(&b), "helloworl");      /* unchanged */
    CX_CHECK_OK(cx_buf_adds(&b, "d"));              /* exactly the cap */
    CX_CHECK_INT(b.len, 10);
    CX_CHECK(b.alloc <= 11);                         /* never more than cap + NUL */
    CX_CHECK_INT(cx_buf_add(&b, "x", 1), CX_ELIMIT);
    CX_CHECK_OK(cx_buf_add(&b, "", 0));              /* nothing always fits */
    CX_CHECK_INT(cx_buf_add(&b, "x", (size_t)-1), CX_ELIMIT); /* no overflow */

    size_t len = 99;
    char *s = cx_buf_take(&b, &len);
    CX_CHECK_STR(s, "helloworld");
    CX_CHECK_INT(len, 10);
    free(s);
    CX_CHECK(b.data == NULL && b.len == 0 && b.max == 10); /* empty, same cap */
    s = cx_buf_take(&b, &len);                            /* empty: "" */
    CX_CHECK(s && s[0] == '\0' && len == 0);
    free(s);

    /* formatted text, short and past the stack buffer, held to the cap */
    cx_buf_init(&b, 1000);
    CX_CHECK_OK(cx_buf_addf(&b, "%s=%d;", "n", 42));
    CX_CHECK_OK(cx_buf_addf(&b, "%300s", "x"));
    CX_CHECK_INT(b.len, 5 + 300);
    CX_CHECK(b.data[b.len - 1] == 'x' && b.data[b.len] == '\0');
    CX_CHECK_INT(cx_buf_addf(&b, "%700s", "y"), CX_ELIMIT);
    CX_CHECK_INT(b.len, 305);
    CX_CHECK_OK(cx_buf_addf(&b, "%695s", "y"));
    CX_CHECK_INT(b.len, 1000);
    cx_buf_reset(&b);
    CX_CHECK_INT(b.len, 0);
    CX_CHECK_STR(cx_buf_str(&b), "");

    /* binary data with NULs, grown over many appends */
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= cx_buf_add(&b, bytes, sizeof bytes) == 0;
    CX_CHECK(ok);
    CX_CHECK_INT(b.len, 768);
    CX_CHECK(memcmp(b.data + 512, bytes, 256) == 0);

    /* reserve and commit, as a read() into the buffer does */
    cx_buf_reset(&b);
    char *space = NULL;
    CX_CHECK_OK(cx_buf_reserve(&b, 4, &space));
    memcpy(space, "abcd", 4);
    cx_buf_commit(&b, 3);
    CX_CHECK_STR(cx_buf_str(&b), "abc");
    CX_CHECK_INT(cx_buf_reserve(&b, 998, &space), CX_ELIMIT);
    cx_buf_drop(&b, 1); /* consumed from the head */
    CX_CHECK_STR(cx_buf_str(&b), "bc");
    cx_buf_drop(&b, 0);
    CX_CHECK_INT(b.len, 2);
    CX_CHECK_OK(cx_buf_adds(&b, "d"));
    CX_CHECK_OK(cx_buf_reserve(&b, 997, &space));
    cx_buf_free(&b);
    CX_CHECK(b.data == NULL && b.max == 1000);
    cx_buf_free(NULL);

    /* a zero cap holds only the empty string */
    cx_buf_init(&b, 0);
    CX_CHECK_OK(cx_buf_add(&b, "", 0));
    CX_CHECK_INT(cx_buf_adds(&b, "a"), CX_ELIMIT);
    CX_CHECK_STR(cx_buf_str(&b), "");
    cx_buf_free(&b);
}

/* The one UTF-8 sanitiser: valid text passes unchanged, each bad byte
 * becomes one U+FFFD, and the output is held to the buffer's cap. */
static void test_utf8_sanitize(void) {
    cx_buf b;
    cx_buf_init(&b, 64);
    CX_CHECK_OK(cx_utf8_sanitize("caf\xc3\xa9 \xe2\x82\xac", 9, &b));
    CX_CHECK_STR(cx_buf_str(&b), "caf\xc3\xa9 \xe2\x82\xac");
    cx_buf_reset(&b);
    /* a lone continuation, an overlong, a surrogate, a cut sequence */
    const char bad[] = "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82";
    CX_CHECK_OK(cx_utf8_sanitize(bad, sizeof bad - 1, &b));
    CX_CHECK(cx_utf8_valid(b.data, b.len));
    CX_CHECK_STR(cx_buf_str(&b), "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"
                                 "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                 "d\xef\xbf\xbd\xef\xbf\xbd");
    cx_buf_free(&b);
    CX_CHECK_INT(cx_utf8_valid_prefix(bad, sizeof bad - 1), 1);
    CX_CHECK_INT(cx_utf8_valid_prefix("caf\xc3\xa9", 5), 5);
    CX_CHECK_INT(cx_utf8_valid_prefix("caf\xc3", 4), 3); /* a cut sequence */
    CX_CHECK_INT(cx_utf8_valid_prefix("", 0), 0);
    {
        /* the eight-bytes-at-a-time ASCII path: a bad or good sequence at
         * every offset of ASCII text, and random bytes, against a walk of
         * cx_utf8_seq_len one sequence at a time */
        static const char *const seqs[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82",
                                           "\xff", "\xf4\x90\x80\x80", "\xc3\xa9",
                                           "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
        unsigned char buf[64];
        uint32_t seed = 12345;
        size_t mismatches = 0;
        for (int round = 0; round < 4000; round++) {
            size_t n;
            if (round < 9 * 40) {
                const char *q = seqs[round % 9];
                size_t at = (size_t)round / 9, ql = strlen(q);
                memset(buf, 'a', sizeof buf);
                memcpy(buf + at, q, ql);
                n = at + ql + (size_t)(round % 3) * 7;
            } else {
                n = (size_t)(round % 64);
                for (size_t i = 0; i < n; i++) {
                    seed = seed * 1103515245u + 12345u;
                    /* mostly ASCII, now and then a byte with the high bit */
                    buf[i] = (unsigned char)((seed >> 16) % 16 == 0 ? 0x80 | (seed >> 8) : (seed >> 20) & 0x7f);
                }
            }
            size_t want = 0;
            for (size_t k; want < n && (k = cx_utf8_seq_len(buf + want, n - want)) != 0;)
                want += k;
            mismatches += cx_utf8_valid_prefix((const char *)buf, n) != want;
        }
        CX_CHECK_INT(mismatches, 0);
    }
    cx_buf_init(&b, 5);
    CX_CHECK_INT(cx_utf8_sanitize("ab\xff\xff", 4, &b), CX_ELIMIT);
    cx_buf_free(&b);
}

/* The dlopen helper: the first soname that loads, a table of symbols, and
 * one message naming what is missing. */
static void test_dl(void) {
    size_t (*my_strlen)(const char *) = NULL;
    int (*my_abs)(int) = NULL;
    const char *const sonames[] = {"libcortex-no-such-library.so.0", "libc.so.6", NULL};
    const cx_dl_sym syms[] = {{"strlen", &my_strlen}, {"abs", &my_abs}};
    void *h = NULL;
    CX_CHECK_OK(cx_dl_open(sonames, syms, 2, &h));
    CX_CHECK(h != NULL);
    CX_CHECK(my_strlen && my_strlen("four") == 4);
    CX_CHECK(my_abs && my_abs(-3) == 3);

    const cx_dl_sym missing[] = {{"strlen", &my_strlen}, {"cx_no_such_symbol", &my_abs}};
    CX_CHECK_INT(cx_dl_open(sonames, missing, 2, NULL), CX_EFAIL);
    CX_CHECK(strstr(cx_error_last(), "libc.so.6 lacks cx_no_such_symbol") != NULL);

    const char *const none[] = {"libcortex-no-such-library.so.0", "libcortex-nor-this.so.1", NULL};
    CX_CHECK_INT(cx_dl_open(none, syms, 2, NULL), CX_EFAIL);
    CX_CHECK(strstr(cx_error_last(), "cannot load libcortex-no-such-library.so.0: ") != NULL);
    CX_CHECK(strstr(cx_error_last(), "; libcortex-nor-this.so.1: ") != NULL);
}

int main(void) {
    test_ulid();
    test_clock();
    test_fsx();
    test_write_atomic();
    test_error();
    test_buf();
    test_buf_json_str();
    test_utf8_sanitize();
    test_dl();
    return cx_test_done();
}
