/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes shared by every layer, and a thread-local detail message.
 *
 * A function that can fail returns 0 or a negative CX_E… code. Only failures
 * that a caller handles differently get their own code; everything else is
 * CX_EFAIL with the detail recorded by cx_error_set(). The detail is what a
 * person (or an agent) reads, so it says what was wrong and what to do. */
#pragma once

#include <stdarg.h>

enum {
    CX_OK = 0,
    CX_EFAIL = -1,      /* anything else; see cx_error_last() */
    CX_ENOMEM = -2,     /* out of memory */
    CX_EINVAL = -3,     /* bad input from the caller (argument values) */
    CX_ENOTFOUND = -4,  /* no such item, file or key */
    CX_ECONFLICT = -5,  /* the change conflicts with stored state */
    CX_ELIMIT = -6,     /* a size, count or depth limit was exceeded */
    CX_EBUSY = -7,      /* the store stayed locked past every retry */
    CX_EIO = -8,        /* file system or database I/O failed */
    CX_ECANCELED = -9,  /* the caller asked to stop */
    CX_ERETRY = -10,    /* a concurrent transaction won (serialisation failure,
                         * deadlock, unique race): run the whole one again */
};

/* A short fixed name for a code ("not found"); never NULL. */
const char *cx_strerror(int code);

/* Records a detail message for the calling thread and returns `code`, so
 * that `return cx_error_set(CX_EINVAL, "…", …);` reads as one step. */
int cx_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cx_error_setv(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The calling thread's last detail message, or cx_strerror() of the last
 * code when none was recorded. Borrowed; valid until the next set/clear. */
const char *cx_error_last(void);

/* The code passed to the last cx_error_set() on this thread (0 if none). */
int cx_error_code(void);

void cx_error_clear(void);
