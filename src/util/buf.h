/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a size cap fixed when it is created (curl's
 * dynbuf is the model). Every buffer that grows from input uses one, so a
 * hostile peer or file can make us allocate at most the cap: every append
 * is checked, and one past the cap fails with CX_ELIMIT.
 *
 *     cx_buf b;
 *     cx_buf_init(&b, 1 << 20);
 *     if ((r = cx_buf_add(&b, data, n)) != 0 || (r = cx_buf_addf(&b, "%d", x)) != 0)
 *         goto out;
 *     char *s = cx_buf_take(&b, &len);    // the caller's now
 *   out:
 *     cx_buf_free(&b);
 *
 * The contents are always NUL-terminated (the NUL is not counted in the
 * length, and does not count against the cap), so text can be used as a
 * string; binary data may hold NULs of its own. A failed append leaves the
 * buffer as it was. The fields are public for embedding and for reading;
 * change them only through these functions. Not thread-safe (one owner). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

typedef struct cx_buf {
    char *data;   /* NULL until the first append; else NUL-terminated */
    size_t len;   /* bytes held, without the NUL */
    size_t alloc; /* bytes allocated (len + 1 <= alloc) */
    size_t max;   /* the cap on len, fixed at init */
} cx_buf;

/* Makes b an empty buffer that may hold at most `max` bytes (max <
 * SIZE_MAX). Allocates nothing. A zeroed cx_buf is a buffer with a cap of
 * 0: every non-empty append fails until it is initialised. */
void cx_buf_init(cx_buf *b, size_t max);

/* Frees the contents and leaves b empty with the same cap (b may be reused,
 * or dropped). Accepts NULL. */
void cx_buf_free(cx_buf *b);

/* Empties b, keeping its allocation for the next use. */
void cx_buf_reset(cx_buf *b);

/* Appends n bytes. 0; CX_ELIMIT when the result would pass the cap (with a
 * detail naming both sizes); CX_ENOMEM. On failure b is unchanged. */
int cx_buf_add(cx_buf *b, const void *mem, size_t n);

/* Appends a NUL-terminated string (without its NUL). As cx_buf_add. */
int cx_buf_adds(cx_buf *b, const char *s);

/* Appends the n bytes at s as a JSON string literal (quotes included),
 * escaped as jansson's encoder escapes (", \\, \\b \\f \\n \\r \\t, other
 * control characters as \\u00XX; every other byte as it is, so s must be
 * valid UTF-8 for the result to be JSON): text built by hand reads the
 * same as json_dumps() would write it. As cx_buf_add; on failure b is
 * unchanged. */
int cx_buf_add_json_str(cx_buf *b, const char *s, size_t n);

/* The length of the longest prefix of s[0, n) that a JSON string literal
 * holds as it is: no '"', '\\' or byte below 0x20 (16 bytes a step where
 * SSE2 is). */
size_t cx_json_plain_run(const char *s, size_t n);

/* Appends printf-formatted text. As cx_buf_add (nothing is appended when
 * the text would pass the cap); CX_EINVAL for a bad format. */
int cx_buf_addf(cx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cx_buf_vaddf(cx_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Makes room for `n` more bytes without adding them: on success *space
 * points at the room (valid until the next change to b), to be filled and
 * then counted with cx_buf_commit(). For reading from a descriptor into
 * the buffer. Errors as cx_buf_add. */
int cx_buf_reserve(cx_buf *b, size_t n, char **space);

/* Counts n bytes written into the room cx_buf_reserve() gave (n at most
 * what was reserved; asserted). */
void cx_buf_commit(cx_buf *b, size_t n);

/* Drops the first n bytes (n <= len; asserted), moving the rest to the
 * front: for a buffer that is consumed from the head while it fills. */
void cx_buf_drop(cx_buf *b, size_t n);

/* Hands the contents to the caller: a malloc'd, NUL-terminated string
 * (also when b is empty), its length in *len when len is not NULL. b is
 * left empty and reusable. NULL only when out of memory for an empty
 * buffer's one byte. */
char *cx_buf_take(cx_buf *b, size_t *len);

/* The contents as a string: "" when empty. Borrowed; valid until the next
 * change to b. */
const char *cx_buf_str(const cx_buf *b);
