/* SPDX-License-Identifier: Apache-2.0 */
/* Loads libgit2 with dlopen() on first use; see gitlib.h for why. */
#include "gitlib.h"

#include "util/error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef CX_LIBGIT2_SONAME
#define CX_LIBGIT2_SONAME "libgit2.so"
#endif

static cx_git git;
static const cx_git *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Stores dlsym()'s answer in a function pointer. ISO C has no conversion
 * from void * to a function pointer; POSIX guarantees that writing the
 * object representation, as here, works. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

static void bind(void *h, const char *name, void *fnptr, bool *ok) {
    void *p = dlsym(h, name);
    if (!p && *ok) {
        snprintf(failure, sizeof failure, "%s lacks %s", CX_LIBGIT2_SONAME, name);
        *ok = false;
    }
    memcpy(fnptr, &p, sizeof p);
}

static void load(void) {
    void *h = dlopen(CX_LIBGIT2_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(failure, sizeof failure, "cannot load %s: %s", CX_LIBGIT2_SONAME,
                 e ? e : "unknown error");
        return;
    }
    bool ok = true;
    int (*init)(void) = NULL;
    bind(h, "git_libgit2_init", &init, &ok);
    bind(h, "git_repository_open_ext", &git.repository_open_ext, &ok);
    bind(h, "git_repository_is_bare", &git.repository_is_bare, &ok);
    bind(h, "git_repository_workdir", &git.repository_workdir, &ok);
    bind(h, "git_repository_path", &git.repository_path, &ok);
    bind(h, "git_repository_commondir", &git.repository_commondir, &ok);
    bind(h, "git_repository_free", &git.repository_free, &ok);
    bind(h, "git_error_clear", &git.error_clear, &ok);
    bind(h, "git_error_last", &git.error_last, &ok);
    bind(h, "git_reference_lookup", &git.reference_lookup, &ok);
    bind(h, "git_reference_type", &git.reference_type, &ok);
    bind(h, "git_reference_symbolic_target", &git.reference_symbolic_target, &ok);
    bind(h, "git_reference_name_to_id", &git.reference_name_to_id, &ok);
    bind(h, "git_reference_free", &git.reference_free, &ok);
    bind(h, "git_repository_config_snapshot", &git.repository_config_snapshot, &ok);
    bind(h, "git_config_iterator_new", &git.config_iterator_new, &ok);
    bind(h, "git_config_next", &git.config_next, &ok);
    bind(h, "git_config_iterator_free", &git.config_iterator_free, &ok);
    bind(h, "git_config_free", &git.config_free, &ok);
    bind(h, "git_odb_hash", &git.odb_hash, &ok);
    bind(h, "git_odb_hashfile", &git.odb_hashfile, &ok);
    bind(h, "git_oid_tostr", &git.oid_tostr, &ok);
    bind(h, "git_config_open_ondisk", &git.config_open_ondisk, &ok);
    bind(h, "git_config_get_entry", &git.config_get_entry, &ok);
    bind(h, "git_config_entry_free", &git.config_entry_free, &ok);
    bind(h, "git_config_set_string", &git.config_set_string, &ok);
    bind(h, "git_config_delete_entry", &git.config_delete_entry, &ok);
    if (!ok || init() < 0) {
        if (ok)
            snprintf(failure, sizeof failure, "libgit2 failed to initialise");
        return; /* the handle stays open: nothing may run its destructors early */
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
