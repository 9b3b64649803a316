/* SPDX-License-Identifier: Apache-2.0 */
/* Loading a shared library on first use: the one dlopen() helper.
 *
 * Libraries that only some runs need (libcurl for sync and the HTTP
 * embedder, libgit2 for the sidecar) are not linked, so that they cost
 * nothing at start: their wrapper (net/curlapi.c, sidecar/gitlib.c) fills a
 * table of function pointers once, with cx_dl_open(), and keeps the handle
 * for the life of the process.
 *
 *     static const char *const sonames[] = {CX_LIBFOO_SONAME, NULL};
 *     const cx_dl_sym syms[] = {
 *         {"foo_init", &api.init},
 *         {"foo_run", &api.run},
 *     };
 *     if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0)
 *         ... cx_error_last() says which library or symbol is missing
 *
 * Call it once (under pthread_once) and keep the message for later callers:
 * the detail is the calling thread's. */
#pragma once

#include <stddef.h>

/* One symbol: its name, and the address of the function pointer to store
 * it in (any function pointer type; POSIX guarantees they hold what dlsym()
 * returns). */
typedef struct cx_dl_sym {
    const char *name;
    void *fnptr;
} cx_dl_sym;

/* Opens the first of `sonames` (NULL-terminated, at least one) that loads
 * (RTLD_NOW | RTLD_LOCAL), then resolves syms[0..n) into their function
 * pointers. 0 and the handle in *handle (when not NULL), never closed: a
 * library's destructors must not run while a pointer into it may live.
 * CX_EFAIL with one message: "cannot load A: why; B: why" when none loads,
 * "A lacks sym" for the first symbol missing (the pointers are then
 * unusable, the handle stays open). */
int cx_dl_open(const char *const *sonames, const cx_dl_sym *syms, size_t n, void **handle);
