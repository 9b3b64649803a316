/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl, loaded on first use.
 *
 * Linking libcurl adds some thirty shared libraries (TLS, Kerberos, LDAP,
 * SSH, HTTP/2, IDN) to every start of cortexd: 4-8 ms before `initialize`
 * could be answered, for a library that only the sync thread and an HTTP
 * embedder ever use. So no program links it: cx_curl_load() dlopen()s the
 * soname found at build time and runs curl_global_init once, and this
 * header points the curl_* names the engine uses at that table, so callers
 * read like ordinary libcurl code. Include it instead of <curl/curl.h>,
 * and call cx_curl_load() before the first curl_* call. */
#pragma once

#include <curl/curl.h>
#include <time.h>

typedef struct cx_curl_api {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_reset)(CURL *curl);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    time_t (*getdate)(const char *p, const time_t *unused);
} cx_curl_api;

/* Loads libcurl and initialises it, once per process (thread-safe).
 * 0, or CX_EFAIL with a detail message when it cannot be loaded. */
int cx_curl_load(void);

/* The loaded table; only valid after cx_curl_load() returned 0. */
const cx_curl_api *cx_curl_api_get(void);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_init() (cx_curl_api_get()->easy_init())
#define curl_easy_setopt(...) (cx_curl_api_get()->easy_setopt(__VA_ARGS__))
#define curl_easy_perform(c) (cx_curl_api_get()->easy_perform(c))
#define curl_easy_getinfo(...) (cx_curl_api_get()->easy_getinfo(__VA_ARGS__))
#define curl_easy_reset(c) (cx_curl_api_get()->easy_reset(c))
#define curl_easy_cleanup(c) (cx_curl_api_get()->easy_cleanup(c))
#define curl_easy_strerror(code) (cx_curl_api_get()->easy_strerror(code))
#define curl_slist_append(l, s) (cx_curl_api_get()->slist_append((l), (s)))
#define curl_slist_free_all(l) (cx_curl_api_get()->slist_free_all(l))
#define curl_getdate(p, u) (cx_curl_api_get()->getdate((p), (u)))
