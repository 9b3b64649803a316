/* SPDX-License-Identifier: Apache-2.0 */
/* The maintenance tick (see maint.h), shared by cortexd and the daemon. */
#include "maint.h"

#include "session.h"
#include "util/error.h"
#include "util/log.h"

#include <stdlib.h>

#define EMBED_PER_TICK 256

struct cx_maint {
    cx_session *session;
    bool embed_failing;
};

int cx_maint_open(cx_maint **out, const cx_workspace *ws) {
    cx_maint *mt = calloc(1, sizeof *mt);
    if (!mt)
        return CX_ENOMEM;
    int r = cx_session_open_ws(&mt->session, ws, CX_SESSION_STORE | CX_SESSION_EMBED_BACKGROUND);
    if (r != 0) {
        free(mt);
        return r;
    }
    const char *why = cx_session_problem(mt->session, CX_SESSION_EMBED_BACKGROUND);
    if (why)
        cx_log(CX_LOG_WARNING, "embedder: %s; background embedding uses the built-in model only",
               why);
    *out = mt;
    return 0;
}

bool cx_maint_tick(cx_maint *mt) {
    cx_store *s = cx_session_store(mt->session);
    bool busy = false;
    if (cx_store_maintain(s) != 0)
        cx_log(CX_LOG_WARNING, "store maintenance failed: %s; retrying", cx_error_last());
    else
        busy = cx_store_maintain_busy(s);
    size_t done = 0;
    int r = cx_store_embed_pending(s, EMBED_PER_TICK, &done);
    if (r != 0 && !mt->embed_failing) /* say it once per outage */
        cx_log(CX_LOG_WARNING, "embedding queued items failed: %s; retrying", cx_error_last());
    else if (r == 0 && mt->embed_failing)
        cx_log(CX_LOG_NOTICE, "embedding works again");
    mt->embed_failing = r != 0;
    return busy || done > 0;
}

void cx_maint_close(cx_maint *mt, bool final_pass) {
    if (!mt)
        return;
    if (final_pass) {
        cx_store *s = cx_session_store(mt->session);
        cx_store_set_embedder(s, NULL);
        (void)cx_store_maintain(s);
    }
    cx_session_free(mt->session);
    free(mt);
}
