/* SPDX-License-Identifier: Apache-2.0 */
/* The review web app's server side (see web.h): the asset lookup, the
 * security headers, sessions, CSRF and the keys API. */
#include "core/web.h"

#include <string.h>

const cx_web_header cx_web_security_headers[] = {
    {"Content-Security-Policy", CX_WEB_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {NULL, NULL},
};

const cx_web_asset *cx_web_asset_find(const char *name) {
    if (!name || !*name || strchr(name, '/'))
        return NULL;
    for (const cx_web_asset *a = cx_web_assets; a->path; a++)
        if (strcmp(a->path, name) == 0)
            return a;
    return NULL;
}
