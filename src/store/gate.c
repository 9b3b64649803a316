/* SPDX-License-Identifier: Apache-2.0 */
/* The write gate (see gate.h): one per database file per process, shared
 * by every connection of this process to that file. SQLite lets one
 * connection write at a time and makes the others wait in the busy
 * handler, which sleeps in steps of up to 2 ms and cannot know when the
 * lock comes free. Connections of one process need not guess: they queue
 * on this gate, and a waiter wakes the moment the holder commits. Writers
 * in other processes still meet the busy handler (store.c), which stays.
 *
 * Background writers (cx_store_maintain) enter only while no foreground
 * writer waits, and ask cx_store_gate_wanted() between slices of their
 * work so that they can commit early and let an agent's write through. */
#include "store/gate.h"

#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct cx_store_gate {
    dev_t dev;
    ino_t ino;
    unsigned refs;            /* under registry_lock */
    struct cx_store_gate *next; /* under registry_lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool held;
    bool held_fg; /* by a foreground writer */
    atomic_uint fg_waiting; /* foreground writers queued; read without the lock */
    _Atomic uint64_t fg_last_ns; /* when a foreground writer last came or went */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cx_store_gate *registry;

int cx_store_gate_get(const char *db_path, cx_store_gate **out) {
    struct stat st;
    if (stat(db_path, &st) != 0)
        return cx_error_set(CX_EIO, "cannot stat %s: %s", db_path, strerror(errno));
    int r = 0;
    pthread_mutex_lock(&registry_lock);
    cx_store_gate *g = registry;
    while (g && !(g->dev == st.st_dev && g->ino == st.st_ino))
        g = g->next;
    if (g) {
        g->refs++;
        goto out;
    }
    g = calloc(1, sizeof *g);
    if (!g) {
        r = CX_ENOMEM;
        goto out;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->lock, NULL);
    atomic_init(&g->fg_waiting, 0);
    atomic_init(&g->fg_last_ns, 0);
    g->dev = st.st_dev;
    g->ino = st.st_ino;
    g->refs = 1;
    g->next = registry;
    registry = g;
out:
    pthread_mutex_unlock(&registry_lock);
    if (r == 0)
        *out = g;
    return r;
}

void cx_store_gate_put(cx_store_gate *g) {
    if (!g)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--g->refs == 0) {
        cx_store_gate **p = &registry;
        while (*p != g)
            p = &(*p)->next;
        *p = g->next;
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        free(g);
    }
    pthread_mutex_unlock(&registry_lock);
}

static struct timespec mono_ts(uint64_t ns) {
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                             .tv_nsec = (long)(ns % 1000000000u)};
}

int cx_store_gate_enter(cx_store_gate *g, bool background, uint64_t deadline_ns) {
    struct timespec until = mono_ts(deadline_ns);
    int r = 0;
    pthread_mutex_lock(&g->lock);
    if (!background)
        atomic_fetch_add(&g->fg_waiting, 1);
    while (g->held || (background && atomic_load(&g->fg_waiting) > 0)) {
        if (pthread_cond_timedwait(&g->cond, &g->lock, &until) == ETIMEDOUT) {
            r = CX_EBUSY;
            break;
        }
    }
    if (!background)
        atomic_fetch_sub(&g->fg_waiting, 1);
    if (r == 0) {
        g->held = true;
        g->held_fg = !background;
        if (!background)
            atomic_store(&g->fg_last_ns, cx_clock_mono_ns());
    }
    else if (!background)
        pthread_cond_broadcast(&g->cond); /* a background waiter may go now */
    pthread_mutex_unlock(&g->lock);
    return r;
}

void cx_store_gate_leave(cx_store_gate *g) {
    pthread_mutex_lock(&g->lock);
    if (g->held_fg)
        atomic_store(&g->fg_last_ns, cx_clock_mono_ns());
    g->held = false;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

bool cx_store_gate_wanted(cx_store_gate *g) {
    return atomic_load_explicit(&g->fg_waiting, memory_order_relaxed) > 0;
}

bool cx_store_gate_quiet(cx_store_gate *g, uint64_t quiet_ns, uint64_t until_ns) {
    for (;;) {
        uint64_t now = cx_clock_mono_ns();
        uint64_t last = atomic_load(&g->fg_last_ns);
        if (atomic_load(&g->fg_waiting) == 0 && now - last >= quiet_ns && now >= last)
            return true;
        if (now >= until_ns)
            return false;
        uint64_t nap = last + quiet_ns > now ? last + quiet_ns - now : quiet_ns;
        if (nap > until_ns - now)
            nap = until_ns - now;
        struct timespec ts = mono_ts(nap);
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
}
