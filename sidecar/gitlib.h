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
    const git_error *(*error_last)(void);

    /* HEAD and the branch it names (provenance.c). */
    int (*reference_lookup)(git_reference **out, git_repository *repo, const char *name);
    git_reference_t (*reference_type)(const git_reference *ref);
    const char *(*reference_symbolic_target)(const git_reference *ref);
    int (*reference_name_to_id)(git_oid *out, git_repository *repo, const char *name);
    void (*reference_free)(git_reference *ref);

    /* Configuration, read by iterating a snapshot: remote URLs come from
     * "remote.<name>.url" entries. (git_remote_list and git_remote_lookup
     * match config names with regular expressions, and libgit2 1.5 leaks
     * the PCRE2 match data, some 20 KiB, on every name that does not
     * match; plain iteration uses no regular expression.) */
    int (*repository_config_snapshot)(git_config **out, git_repository *repo);
    int (*config_iterator_new)(git_config_iterator **out, const git_config *cfg);
    int (*config_next)(git_config_entry **entry, git_config_iterator *iter);
    void (*config_iterator_free)(git_config_iterator *iter);
    void (*config_free)(git_config *cfg);

    /* Object ids: hashing content as a blob without writing it anywhere. */
    int (*odb_hash)(git_oid *out, const void *data, size_t len, git_object_t type);
    int (*odb_hashfile)(git_oid *out, const char *path, git_object_t type);
    char *(*oid_tostr)(char *out, size_t n, const git_oid *id);

    /* Workspace configuration files (git-config format). */
    int (*config_open_ondisk)(git_config **out, const char *path);
    int (*config_get_entry)(git_config_entry **out, const git_config *cfg, const char *name);
    void (*config_entry_free)(git_config_entry *entry);
    int (*config_set_string)(git_config *cfg, const char *name, const char *value);
    int (*config_delete_entry)(git_config *cfg, const char *name);
} cx_git;

/* The loaded and initialised library, or NULL with a detail message
 * (cx_error_last()) when it cannot be loaded. Thread-safe; loads once. */
const cx_git *cx_git_get(void);

/* libgit2's message for the calling thread's last failure, or `fallback`.
 * Borrowed; valid until the next libgit2 call on this thread. */
const char *cx_git_error_message(const cx_git *git, const char *fallback);
