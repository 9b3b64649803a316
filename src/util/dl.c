/* SPDX-License-Identifier: Apache-2.0 */
/* dlopen() of the first soname that loads, dlsym() of a table of symbols,
 * and one message for whatever failed (see dl.h). */
#include "util/dl.h"

#include "util/buf.h"
#include "util/error.h"

#include <dlfcn.h>
#include <string.h>

/* ISO C has no conversion from void * to a function pointer; POSIX
 * guarantees that copying the object representation, as here, works. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

int cx_dl_open(const char *const *sonames, const cx_dl_sym *syms, size_t n, void **handle) {
    int r = 0;
    cx_buf why;
    cx_buf_init(&why, 1024); /* past it the message is cut; nothing else fails */
    void *h = NULL;
    const char *name = NULL;
    for (const char *const *s = sonames; *s && !h; s++) {
        name = *s;
        h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *e = dlerror();
            (void)cx_buf_addf(&why, "%s%s: %s", why.len ? "; " : "", name,
                              e ? e : "unknown error");
        }
    }
    if (!h) {
        r = cx_error_set(CX_EFAIL, "cannot load %s", cx_buf_str(&why));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(h, syms[i].name);
        if (!p) {
            r = cx_error_set(CX_EFAIL, "%s lacks %s", name, syms[i].name);
            goto out; /* h stays open: see dl.h */
        }
        memcpy(syms[i].fnptr, &p, sizeof p);
    }
    if (handle)
        *handle = h;
out:
    cx_buf_free(&why);
    return r;
}
