/* SPDX-License-Identifier: Apache-2.0 */
/* Loads libcurl with dlopen() on first use; see curlapi.h for why. */
#include "net/curlapi.h"

#include "util/dl.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>

#ifndef CX_LIBCURL_SONAME
#define CX_LIBCURL_SONAME "libcurl.so.4"
#endif

static cx_curl_api api;
static const cx_curl_api *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *const sonames[] = {CX_LIBCURL_SONAME, NULL};
    CURLcode (*global_init)(long flags) = NULL;
    const cx_dl_sym syms[] = {
        {"curl_global_init", &global_init},
        {"curl_easy_init", &api.easy_init},
        {"curl_easy_setopt", &api.easy_setopt},
        {"curl_easy_perform", &api.easy_perform},
        {"curl_easy_getinfo", &api.easy_getinfo},
        {"curl_easy_reset", &api.easy_reset},
        {"curl_easy_cleanup", &api.easy_cleanup},
        {"curl_easy_strerror", &api.easy_strerror},
        {"curl_slist_append", &api.slist_append},
        {"curl_slist_free_all", &api.slist_free_all},
        {"curl_getdate", &api.getdate},
    };
    if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0) {
        snprintf(failure, sizeof failure, "%s", cx_error_last());
        return;
    }
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
