/* SPDX-License-Identifier: Apache-2.0 */
/* libgit2, loaded on first use.
 *
 * Linking libgit2 adds some twenty shared libraries (TLS, Kerberos, SSH) to
 * every start of cortexd, and its initialisation parses the system CA
 * bundle: together several milliseconds before `initialize` could be
 * answered. So no program links it; this module dlopen()s it (the soname
 * found at build time) from whichever thread first needs git, and exposes
 * the functions the sidecar uses with libgit2's own types. */
#pragma once

#include <git2.h>

typedef struct cx_git {
    int (*repository_open_ext)(git_repository **out, const char *path, unsigned int flags,
                               const char *ceiling_dirs);
    int (*repository_is_bare)(const git_repository *repo);
    const char *(*repository_workdir)(const git_repository *repo);
    const char *(*repository_path)(const git_repository *repo);
    const char *(*repository_commondir)(const git_repository *repo);
    void (*repository_free)(git_repository *repo);
    void (*error_clear)(void);
} cx_git;

/* The loaded and initialised library, or NULL with a detail message
 * (cx_error_last()) when it cannot be loaded. Thread-safe; loads once. */
const cx_git *cx_git_get(void);
