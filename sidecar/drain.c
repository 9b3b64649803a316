/* SPDX-License-Identifier: Apache-2.0 */
/* The push/pull drain loop (see drain.h). */
#include "drain.h"

#include "util/error.h"

static bool stopped(const cx_drain_hooks *h) { return h->stop && atomic_load(h->stop); }

int cx_drain_push(cx_store *s, cx_client *c, const cx_drain_hooks *h, cx_drain_stats *st) {
    while (!stopped(h)) {
        cx_engine_step step = {0};
        cx_error_clear();
        int r = cx_engine_push(s, c, &step);
        if (r == 0 && step.sent == 0)
            return 0;
        if (r == 0) {
            st->sent += step.sent;
            st->pushed += step.acked;
            st->rejected += step.rejected;
            st->blobs += step.blobs;
            if (h->step)
                h->step(h->ud, true, &step);
            continue;
        }
        st->retry_after_s = step.retry_after_s;
        st->remote = step.remote;
        st->status = step.status;
        st->protocol = step.protocol;
        if (!h->retry || !h->retry(h->ud, true, r, step.retry_after_s))
            return r;
    }
    return 0;
}

int cx_drain_pull(cx_store *s, cx_client *c, const cx_drain_hooks *h, cx_drain_stats *st) {
    bool more = true;
    while (more && !stopped(h)) {
        cx_engine_step step = {0};
        cx_error_clear();
        int r = cx_engine_pull(s, c, &step);
        if (r == 0) {
            st->pulled += step.applied;
            st->skipped += step.skipped;
            st->fetch_failed += step.fetch_failed;
            more = step.more;
            if (h->step)
                h->step(h->ud, false, &step);
            continue;
        }
        st->retry_after_s = step.retry_after_s;
        st->remote = step.remote;
        st->status = step.status;
        st->protocol = step.protocol;
        if (!h->retry || !h->retry(h->ud, false, r, step.retry_after_s))
            return r;
    }
    return 0;
}
