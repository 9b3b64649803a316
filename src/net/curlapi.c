/* SPDX-License-Identifier: Apache-2.0 */
/* Loads libcurl with dlopen() on first use; see curlapi.h for why. */
#include "net/curlapi.h"

#include "util/error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef CX_LIBCURL_SONAME
#define CX_LIBCURL_SONAME "libcurl.so.4"
#endif

static cx_curl_api api;
static const cx_curl_api *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

/* dlsym()'s answer into a function pointer, through its object
 * representation (POSIX guarantees this works; ISO C has no cast for it). */
static void bind_sym(void *h, const char *name, void *fnptr, bool *ok) {
    void *p = dlsym(h, name);
    if (!p && *ok) {
        snprintf(failure, sizeof failure, "%s lacks %s", CX_LIBCURL_SONAME, name);
        *ok = false;
    }
    memcpy(fnptr, &p, sizeof p);
}

static void load(void) {
    void *h = dlopen(CX_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(failure, sizeof failure, "cannot load %s: %s", CX_LIBCURL_SONAME,
                 e ? e : "unknown error");
        return;
    }
    bool ok = true;
    CURLcode (*global_init)(long flags) = NULL;
    bind_sym(h, "curl_global_init", &global_init, &ok);
    bind_sym(h, "curl_easy_init", &api.easy_init, &ok);
    bind_sym(h, "curl_easy_setopt", &api.easy_setopt, &ok);
    bind_sym(h, "curl_easy_perform", &api.easy_perform, &ok);
    bind_sym(h, "curl_easy_getinfo", &api.easy_getinfo, &ok);
    bind_sym(h, "curl_easy_reset", &api.easy_reset, &ok);
    bind_sym(h, "curl_easy_cleanup", &api.easy_cleanup, &ok);
    bind_sym(h, "curl_easy_strerror", &api.easy_strerror, &ok);
    bind_sym(h, "curl_slist_append", &api.slist_append, &ok);
    bind_sym(h, "curl_slist_free_all", &api.slist_free_all, &ok);
    bind_sym(h, "curl_getdate", &api.getdate, &ok);
    if (!ok)
        return; /* the handle stays open: nothing may run its destructors early */
    CURLcode rc = global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(failure, sizeof failure, "curl_global_init failed: %s", api.easy_strerror(rc));
        return;
    }
    loaded = &api;
}

int cx_curl_load(void) {
    pthread_once(&once, load);
    return loaded ? 0 : cx_error_set(CX_EFAIL, "%s", failure);
}

const cx_curl_api *cx_curl_api_get(void) {
    return loaded;
}
