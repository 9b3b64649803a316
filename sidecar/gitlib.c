/* SPDX-License-Identifier: Apache-2.0 */
/* Loads libgit2 with dlopen() on first use; see gitlib.h for why. */
#include "gitlib.h"

#include "util/dl.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>

#ifndef CX_LIBGIT2_SONAME
#define CX_LIBGIT2_SONAME "libgit2.so"
#endif

static cx_git git;
static const cx_git *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *const sonames[] = {CX_LIBGIT2_SONAME, NULL};
    int (*init)(void) = NULL;
    const cx_dl_sym syms[] = {
        {"git_libgit2_init", &init},
        {"git_repository_open_ext", &git.repository_open_ext},
        {"git_repository_is_bare", &git.repository_is_bare},
        {"git_repository_workdir", &git.repository_workdir},
        {"git_repository_path", &git.repository_path},
        {"git_repository_commondir", &git.repository_commondir},
        {"git_repository_free", &git.repository_free},
        {"git_error_clear", &git.error_clear},
        {"git_error_last", &git.error_last},
        {"git_reference_lookup", &git.reference_lookup},
        {"git_reference_type", &git.reference_type},
        {"git_reference_symbolic_target", &git.reference_symbolic_target},
        {"git_reference_name_to_id", &git.reference_name_to_id},
        {"git_reference_free", &git.reference_free},
        {"git_repository_config_snapshot", &git.repository_config_snapshot},
        {"git_config_iterator_new", &git.config_iterator_new},
        {"git_config_next", &git.config_next},
        {"git_config_iterator_free", &git.config_iterator_free},
        {"git_config_free", &git.config_free},
        {"git_odb_hash", &git.odb_hash},
        {"git_odb_hashfile", &git.odb_hashfile},
        {"git_oid_tostr", &git.oid_tostr},
        {"git_config_open_ondisk", &git.config_open_ondisk},
        {"git_config_get_entry", &git.config_get_entry},
        {"git_config_entry_free", &git.config_entry_free},
        {"git_config_set_string", &git.config_set_string},
        {"git_config_delete_entry", &git.config_delete_entry},
    };
    if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0) {
        snprintf(failure, sizeof failure, "%s", cx_error_last());
        return; /* a handle opened stays open: nothing may run its destructors early */
    }
    if (init() < 0) {
        snprintf(failure, sizeof failure, "libgit2 failed to initialise");
        return;
    }
    loaded = &git;
}

const cx_git *cx_git_get(void) {
    pthread_once(&once, load);
    if (!loaded)
        cx_error_set(CX_EFAIL, "%s", failure);
    return loaded;
}

const char *cx_git_error_message(const cx_git *g, const char *fallback) {
    const git_error *e = g ? g->error_last() : NULL;
    return e && e->message && *e->message ? e->message : fallback;
}
