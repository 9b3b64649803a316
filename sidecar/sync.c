/* SPDX-License-Identifier: Apache-2.0 */
/* cortexd's background sync thread (see sync.h). The thread owns its store
 * connection and its client; the only shared data are the stop flag (also
 * the client's abort flag), a condition to wake the thread, and a snapshot
 * of the state for `status`, all under one mutex. */
#include "sync.h"

#include "config.h"
#include "drain.h"
#include "session.h"

#include "store/kv.h"
#include "store/outbox.h"
#include "store/store.h"
#include "sync/client.h"
#include "sync/engine.h"
#include "sync/upstream.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_RETRY_MS 3000
#define IDLE_POLL_MS 250
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 60000
#define CONFIG_RETRY_MS 5000
#define PROTOCOL_BASE_MS 10000   /* a core that broke the protocol: asked again after */
#define PROTOCOL_CAP_MS 600000   /* 10 s, 20 s, … up to 10 min (with jitter) */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running;
    atomic_int stop;
    cx_workspace *ws;      /* the thread's copy */
    const char *state_dir; /* ws->state_dir */
    /* state snapshot */
    bool lock_held;
    uint64_t last_push_ms, last_pull_ms;
    long long backlog, rejected;
    char last_error[512];
    unsigned long config_interval_ms; /* sync.intervalMs, 0 = unset */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

unsigned long cx_sync_interval_ms(void) {
    const char *e = getenv("CORTEX_SYNC_INTERVAL_MS");
    if (e && *e) {
        char *end;
        unsigned long v = strtoul(e, &end, 10);
        if (*end == '\0' && v >= 10 && v <= 3600000)
            return v;
    }
    pthread_mutex_lock(&g.lock);
    unsigned long cfg = g.config_interval_ms;
    pthread_mutex_unlock(&g.lock);
    return cfg ? cfg : 10000;
}

int cx_sync_lock_try(const char *state_dir, int *fd) {
    return cx_fs_lock(state_dir, "sync.lock", 0, fd);
}

/* Sleeps up to ms unless stopped; true when asked to stop. */
static bool nap(unsigned long ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g.lock);
    while (!atomic_load(&g.stop)) {
        if (pthread_cond_timedwait(&g.wake, &g.lock, &until) == ETIMEDOUT)
            break;
    }
    bool stop = atomic_load(&g.stop);
    pthread_mutex_unlock(&g.lock);
    return stop;
}

static void set_error(const char *msg) {
    pthread_mutex_lock(&g.lock);
    snprintf(g.last_error, sizeof g.last_error, "%s", msg ? msg : "");
    pthread_mutex_unlock(&g.lock);
}

/* Records a failure to connect, logged once per change of message. */
static void connect_error(const char *msg) {
    pthread_mutex_lock(&g.lock);
    bool same = strcmp(g.last_error, msg) == 0;
    pthread_mutex_unlock(&g.lock);
    if (!same)
        log_warn("sync: %s", msg);
    set_error(msg);
}

/* Reads the upstream and the key of the workspace's team, asks the core
 * who the key is (*who: once per client, the key of a client never
 * changes) and checks it against the workspace's team (binding a workspace
 * bound to none); NULL (the error recorded) when not possible yet. */
static cx_client *connect_upstream(cx_store *s, cx_upstream_who *who) {
    cx_upstream *u = NULL;
    cx_upstream_cred cred = {0};
    cx_client *c = NULL;
    char *team = NULL;
    long status = 0;
    cx_error_clear();
    int r = cx_upstream_read(g.state_dir, &u);
    if (r == 0 && (r = cx_kv_get(s, CX_KV_TEAM, &team)) == CX_ENOTFOUND) {
        team = NULL;
        r = 0;
    }
    if (r == 0)
        r = cx_upstream_key_find(u->url, team, CX_UPSTREAM_FOR_SYNC, &cred);
    if (r == 0)
        r = cx_client_new(&c, u, cred.key, &g.stop);
    if (r == 0 && g.ws)
        r = cx_client_set_workspace(c, g.ws->name);
    if (r == 0)
        r = cx_engine_whoami(c, who, &status);
    if (r == 0 && !cred.who.team[0] && who->team[0]) {
        /* a key of the first credentials format: record its team */
        if (cx_upstream_key_add(u->url, cred.key, who) != 0)
            log_warn("sync: cannot record the key's team: %s, ignoring", cx_error_last());
        cx_error_clear();
    }
    if (r == 0)
        r = cx_engine_team_check(s, who);
    if (r == 0)
        r = cx_kv_bind_upstream(s, u->url);
    if (r) {
        connect_error(cx_error_last());
        cx_client_free(c);
        c = NULL;
    }
    free(team);
    cx_upstream_cred_clear(&cred);
    cx_upstream_free(u);
    return c;
}

/* The team check before a push or a pull (cx_engine_team_check): false,
 * with the error recorded, when this client may not sync the workspace. */
static bool team_ok(cx_store *s, const cx_upstream_who *who) {
    cx_error_clear();
    if (cx_engine_team_check(s, who) == 0)
        return true;
    connect_error(cx_error_last());
    return false;
}

static void refresh_counts(cx_store *s) {
    json_t *st = NULL;
    if (cx_outbox_state(s, &st) != 0)
        return;
    pthread_mutex_lock(&g.lock);
    g.backlog = json_integer_value(json_object_get(st, "backlog"));
    g.rejected = json_integer_value(json_object_get(st, "rejected"));
    pthread_mutex_unlock(&g.lock);
    json_decref(st);
}

/* The wait after the core broke the protocol (engine.h): exponential in
 * `attempt`, capped, and never less than half its ceiling, so that a core
 * that keeps answering the same broken page is asked a few times an hour,
 * not many times a second. */
static unsigned long protocol_backoff_ms(unsigned attempt, long retry_after_s) {
    unsigned long ceil = PROTOCOL_BASE_MS;
    for (unsigned i = 0; i < attempt && ceil < PROTOCOL_CAP_MS; i++)
        ceil *= 2;
    if (ceil > PROTOCOL_CAP_MS)
        ceil = PROTOCOL_CAP_MS;
    return ceil / 2 + cx_client_backoff_ms(0, ceil / 2, ceil / 2, retry_after_s);
}

static void *run(void *arg) {
    (void)arg;
    cx_session *sess = NULL;
    cx_store *s = NULL;
    cx_client *c = NULL;
    cx_upstream_who who = {0};
    int lock_fd = -1;
    unsigned attempt = 0;
    uint64_t next_pull = 0;
    const unsigned long interval = cx_sync_interval_ms();

    if (cx_session_open_ws(&sess, g.ws, CX_SESSION_STORE) != 0) {
        log_warn("sync: cannot open the store: %s; no background sync", cx_error_last());
        set_error(cx_error_last());
        return NULL;
    }
    s = cx_session_store(sess);
    /* Elect one syncing process per workspace. */
    for (;;) {
        int r = cx_sync_lock_try(g.state_dir, &lock_fd);
        if (r == 1)
            break;
        if (r < 0)
            log_warn("sync: %s, retrying", cx_error_last());
        if (nap(LOCK_RETRY_MS))
            goto out;
    }
    pthread_mutex_lock(&g.lock);
    g.lock_held = true;
    pthread_mutex_unlock(&g.lock);
    log_info("sync: this process syncs the workspace");

    while (!atomic_load(&g.stop)) {
        if (!c && !(c = connect_upstream(s, &who))) {
            if (nap(CONFIG_RETRY_MS))
                break;
            continue;
        }
        if (!team_ok(s, &who)) { /* rebound meanwhile: read the config again */
            cx_client_free(c);
            c = NULL;
            continue;
        }
        /* push while the outbox has work, then pull when due or after a push */
        cx_drain_hooks hooks = {.stop = &g.stop};
        cx_drain_stats ds = {0};
        int r = cx_drain_push(s, c, &hooks, &ds);
        bool pushed = ds.sent > 0;
        if (pushed) {
            pthread_mutex_lock(&g.lock);
            g.last_push_ms = cx_clock_now_ms();
            pthread_mutex_unlock(&g.lock);
            if (ds.rejected)
                log_warn("sync: the core rejected %zu op(s); see `cortex status`", ds.rejected);
        }
        uint64_t now = cx_clock_now_ms();
        if (r == 0 && (pushed || now >= next_pull)) {
            if (!team_ok(s, &who)) {
                cx_client_free(c);
                c = NULL;
                continue;
            }
            r = cx_drain_pull(s, c, &hooks, &ds);
            if (ds.skipped)
                log_warn("sync: skipped %zu pulled change(s) as invalid; see `cortex status`",
                         ds.skipped);
            if (ds.fetch_failed)
                log_warn("sync: could not fetch the content of %zu artifact version(s); see "
                         "`cortex status`", ds.fetch_failed);
            if (r == 0) {
                next_pull = cx_clock_now_ms() + interval;
                pthread_mutex_lock(&g.lock);
                g.last_pull_ms = cx_clock_now_ms();
                pthread_mutex_unlock(&g.lock);
            }
        }
        long retry_after = ds.retry_after_s;
        refresh_counts(s);
        if (r == CX_ECANCELED)
            break;
        if (r) {
            set_error(cx_error_last());
            if (ds.protocol) {
                unsigned long d = protocol_backoff_ms(attempt++, retry_after);
                log_warn("sync: %s; asking again in %lu s", cx_error_last(), d / 1000);
                if (nap(d))
                    break;
                continue;
            }
            log_warn("sync: %s, retrying", cx_error_last());
            unsigned long d = cx_client_backoff_ms(attempt++, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
                                                   retry_after);
            if (r == CX_EFAIL && d < CONFIG_RETRY_MS) {
                /* a refused key or request: read the config again later */
                cx_client_free(c);
                c = NULL;
                d = CONFIG_RETRY_MS;
            }
            if (nap(d))
                break;
            continue;
        }
        attempt = 0;
        set_error(NULL);
        if (nap(IDLE_POLL_MS))
            break;
    }
out:
    cx_client_free(c);
    cx_session_free(sess);
    if (lock_fd >= 0)
        close(lock_fd);
    pthread_mutex_lock(&g.lock);
    g.lock_held = false;
    pthread_mutex_unlock(&g.lock);
    return NULL;
}

int cx_sync_start(const cx_workspace *ws) {
    char *path = cx_fs_join(ws->state_dir, "upstream");
    if (!path)
        return CX_ENOMEM;
    bool configured = access(path, F_OK) == 0;
    free(path);
    if (!configured)
        return CX_ENOTFOUND;
    cx_config cfg;
    int interval = 0;
    if (cx_config_load(ws, &cfg) == 0) {
        interval = cfg.sync_interval_ms;
        cx_config_clear(&cfg);
    }
    cx_error_clear();
    pthread_mutex_lock(&g.lock);
    g.config_interval_ms = interval > 0 ? (unsigned long)interval : 0;
    if (g.running) {
        pthread_mutex_unlock(&g.lock);
        return CX_EINVAL;
    }
    cx_workspace_free(g.ws);
    g.ws = NULL;
    g.state_dir = NULL;
    atomic_store(&g.stop, 0);
    int r = cx_workspace_dup(&g.ws, ws);
    if (r == 0) {
        g.state_dir = g.ws->state_dir;
        if (pthread_create(&g.thread, NULL, run, NULL) != 0)
            r = cx_error_set(CX_EFAIL, "cannot start the sync thread");
        else
            g.running = true;
    }
    pthread_mutex_unlock(&g.lock);
    return r;
}

void cx_sync_stop(void) {
    pthread_mutex_lock(&g.lock);
    if (!g.running) {
        pthread_mutex_unlock(&g.lock);
        return;
    }
    atomic_store(&g.stop, 1);
    pthread_cond_broadcast(&g.wake);
    pthread_mutex_unlock(&g.lock);
    pthread_join(g.thread, NULL);
    pthread_mutex_lock(&g.lock);
    g.running = false;
    cx_workspace_free(g.ws);
    g.ws = NULL;
    g.state_dir = NULL;
    pthread_mutex_unlock(&g.lock);
}

json_t *cx_sync_state(void) {
    pthread_mutex_lock(&g.lock);
    json_t *o = json_pack("{s:b, s:b, s:o, s:o, s:o, s:I, s:I}", "running", g.running,
                          "lock_held", g.lock_held, "last_push_ms",
                          g.last_push_ms ? json_integer((json_int_t)g.last_push_ms) : json_null(),
                          "last_pull_ms",
                          g.last_pull_ms ? json_integer((json_int_t)g.last_pull_ms) : json_null(),
                          "last_error",
                          g.last_error[0] ? json_string(g.last_error) : json_null(), "backlog",
                          (json_int_t)g.backlog, "rejected", (json_int_t)g.rejected);
    pthread_mutex_unlock(&g.lock);
    return o;
}
