/* SPDX-License-Identifier: Apache-2.0 */
/* Error names and the per-thread detail message. */
#include "util/error.h"

#include <stdio.h>

static _Thread_local char detail[512];
static _Thread_local int last_code;

const char *cx_strerror(int code) {
    switch (code) {
    case CX_OK: return "ok";
    case CX_ENOMEM: return "out of memory";
    case CX_EINVAL: return "invalid argument";
    case CX_ENOTFOUND: return "not found";
    case CX_ECONFLICT: return "conflict";
    case CX_ELIMIT: return "limit exceeded";
    case CX_EBUSY: return "busy";
    case CX_EIO: return "I/O error";
    case CX_ECANCELED: return "canceled";
    case CX_ERETRY: return "retry";
    default: return "failed";
    }
}

int cx_error_setv(int code, const char *fmt, va_list ap) {
    vsnprintf(detail, sizeof detail, fmt, ap);
    last_code = code;
    return code;
}

int cx_error_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cx_error_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

const char *cx_error_last(void) {
    if (detail[0])
        return detail;
    return cx_strerror(last_code);
}

int cx_error_code(void) {
    return last_code;
}

void cx_error_clear(void) {
    detail[0] = '\0';
    last_code = 0;
}
