/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex remote`, `cortex login` and `cortex sync`: the upstream core, its
 * key, and a foreground push/pull until caught up (drain.h). */
#include "cli.h"

#include "output.h"
#include "config.h"
#include "drain.h"
#include "sync.h"
#include "store/kv.h"
#include "store/outbox.h"
#include "util/clock.h"
#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

const char cx_cli_help_remote[] =
    "Usage: cortex remote set URL [--ca-file FILE]\n"
    "       cortex remote [show]\n"
    "\n"
    "Sets the team's cortex-core that this workspace syncs with. URL is\n"
    "https://HOST[:PORT] (plain http:// only to a loopback address). --ca-file\n"
    "names a PEM bundle of the CA that signed the core's certificate, for a core\n"
    "with a private CA. Stored as upstream.url and upstream.caFile in\n"
    "<workspace>/.cortex/config and in .cortex/upstream (what the sync engine\n"
    "reads); the key is not (see cortex login). 'show' prints the upstream.\n"
    "\n"
    "Exit status: 0 success, 2 usage error (e.g. http:// to another host),\n"
    "3 workspace error, 4 no upstream configured (show).\n";

const char cx_cli_help_login[] =
    "Usage: cortex login\n"
    "\n"
    "Reads an API key for the workspace's upstream (from standard input when it\n"
    "is not a terminal, else with a prompt that does not echo), checks it with\n"
    "the core (GET /v1/info), and stores it, keyed by the upstream URL, in\n"
    "$XDG_CONFIG_HOME/cortex/credentials (default ~/.config/cortex/credentials),\n"
    "mode 0600. Keys are never stored in the workspace.\n"
    "\n"
    "Exit status: 0 success, 1 the core refused the key, 2 usage error (no key\n"
    "given), 4 no upstream configured or the core could not be reached.\n";

const char cx_cli_help_sync[] =
    "Usage: cortex sync\n"
    "\n"
    "Pushes the outbox to the upstream core and pulls the core's changes, in the\n"
    "foreground, until both are caught up; progress goes to stderr. Transient\n"
    "failures (network, 5xx, 429) are retried with backoff for up to\n"
    "$CORTEX_SYNC_DEADLINE seconds (default 60). Ops the core rejects are kept\n"
    "with their reason and shown by `cortex status`.\n"
    "\n"
    "Options:\n"
    "  --json             print the final sync state as JSON\n"
    "\n"
    "Exit status: 0 caught up, 3 store error, 4 no upstream or key configured, or\n"
    "the core could not be reached or kept failing.\n";

#define STALE_MS (60ull * 60 * 1000) /* a cache not pulled for an hour is stale */

/* 1 with *u when the workspace has an upstream, 0 when not, or -RC_. */
int cx_cli_load_upstream(ctx *c, cx_upstream **u) {
    cx_error_clear();
    int r = cx_upstream_read(c->ws->state_dir, u);
    if (r == CX_ENOTFOUND)
        return 0;
    if (r < 0)
        return -cx_cli_fail(RC_UPSTREAM, "cannot read the upstream of %s: %s", c->ws->root, cx_cli_engine_msg(r));
    return 1;
}

/* A client for the upstream with the stored key (required unless !need_key). */
int cx_cli_make_client(const cx_upstream *u, bool need_key, cx_client **out) {
    char *key = NULL;
    cx_error_clear();
    int r = cx_upstream_key_get(u->url, &key);
    if (r < 0 && (need_key || r != CX_ENOTFOUND))
        return cx_cli_fail(RC_UPSTREAM, "no key for %s: %s", u->url, cx_cli_engine_msg(r));
    cx_error_clear();
    r = cx_client_new(out, u, key, NULL);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    if (r < 0)
        return cx_cli_fail(RC_UPSTREAM, "cannot use upstream %s: %s", u->url, cx_cli_engine_msg(r));
    return RC_OK;
}

/* The exit status and message for an unexpected answer of the core. */
int cx_cli_answer_fail(const char *what, const cx_client_answer *a) {
    int rc = (a->status == 401 || a->status == 403 || a->status == 404 || a->status == 409)
                 ? RC_NONE
                 : RC_UPSTREAM;
    return cx_cli_fail(rc, "%s: the core answered %ld: %s", what, a->status, cx_client_error_text(a));
}

int cx_cli_cmd_remote(ctx *c) {
    const strlist *pos = &c->a->pos;
    int rc;
    if (pos->n == 0 || (pos->n == 1 && strcmp(pos->v[0], "show") == 0)) {
        if (c->a->seen[O_CA_FILE])
            return cx_cli_usage_error("remote", "--ca-file goes with 'remote set URL'");
        if ((rc = cx_cli_find_workspace(c, false)) != RC_OK)
            return rc;
        cx_upstream *u = NULL;
        int h = cx_cli_load_upstream(c, &u);
        if (h < 0)
            return -h;
        if (h == 0)
            return cx_cli_fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
        if (c->json) {
            json_t *o = json_pack("{s:s, s:s?}", "url", u->url, "ca_file", u->ca_file);
            rc = o ? cx_cli_print_json(o) : cx_cli_oom();
            json_decref(o);
        } else {
            cx_out_text(stdout, u->url, true);
            if (u->ca_file) {
                fputs(" (CA file ", stdout);
                cx_out_text(stdout, u->ca_file, true);
                fputc(')', stdout);
            }
            fputc('\n', stdout);
        }
        cx_upstream_free(u);
        return rc;
    }
    if (strcmp(pos->v[0], "set") != 0)
        return cx_cli_usage_error("remote", "unknown remote action '%s'; use set or show", pos->v[0]);
    if (pos->n != 2)
        return cx_cli_usage_error("remote", "remote set needs exactly one URL");
    cx_upstream u = {.url = (char *)pos->v[1]};
    char *ca = NULL;
    cx_error_clear();
    if (cx_upstream_check_url(u.url) < 0)
        return cx_cli_usage_error("remote", "%s", cx_error_last());
    if (c->a->val[O_CA_FILE]) {
        ca = realpath(c->a->val[O_CA_FILE], NULL);
        if (!ca)
            return cx_cli_usage_error("remote", "cannot use --ca-file %s: %s", c->a->val[O_CA_FILE],
                               strerror(errno));
        u.ca_file = ca;
    }
    if ((rc = cx_cli_find_workspace(c, true)) != RC_OK) {
        free(ca);
        return rc;
    }
    rc = cx_cli_set_upstream(c, u.url, u.ca_file);
    free(ca);
    if (rc != RC_OK)
        return rc;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s?}", "url", pos->v[1], "ca_file", c->a->val[O_CA_FILE]);
        rc = o ? cx_cli_print_json(o) : cx_cli_oom();
        json_decref(o);
        return rc;
    }
    {
        printf("Upstream set to ");
        cx_out_text(stdout, u.url, true);
        printf(".\nNext: `cortex login` with your key, then `cortex sync`.\n");
    }
    return RC_OK;
}

/* Reads the key: stdin when it is not a terminal, else a prompt without echo. */
static int read_key(const char *url, char *buf, size_t cap) {
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "API key for %s: ", url);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = false;
        }
    }
    char *got = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (!got)
        return cx_cli_usage_error("login", "no key given on standard input");
    size_t n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
    size_t lead = strspn(buf, " \t");
    memmove(buf, buf + lead, n - lead + 1);
    if (!*buf)
        return cx_cli_usage_error("login", "the key is empty");
    return RC_OK;
}

int cx_cli_cmd_login(ctx *c) {
    if (c->a->pos.n)
        return cx_cli_usage_error("login", "login takes no arguments (the key is read from stdin)");
    int rc;
    if ((rc = cx_cli_find_workspace(c, false)) != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_client *cl = NULL;
    cx_client_answer a = {0};
    char key[1100];
    int h = cx_cli_load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return cx_cli_fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = read_key(u->url, key, sizeof key)) != RC_OK)
        goto out;
    cx_error_clear();
    int r = cx_client_new(&cl, u, key, NULL);
    if (r == 0)
        r = cx_client_request(cl, "GET", "/v1/info", NULL, 0, NULL, &a);
    if (r < 0) {
        rc = cx_cli_fail(RC_UPSTREAM, "cannot reach %s: %s", u->url, cx_cli_engine_msg(r));
        goto out;
    }
    if (a.status != 200) {
        rc = cx_cli_answer_fail("the key was not accepted", &a);
        goto out;
    }
    cx_error_clear();
    if ((r = cx_upstream_key_set(u->url, key)) < 0) {
        rc = cx_cli_fail(r == CX_EINVAL ? RC_USAGE : RC_STORE, "cannot store the key: %s", cx_cli_engine_msg(r));
        goto out;
    }
    const char *team = cx_cli_jstr(a.json, "team"), *role = cx_cli_jstr(a.json, "role");
    if (c->json) {
        rc = cx_cli_print_json(a.json);
    } else {
        printf("Logged in to ");
        cx_out_text(stdout, u->url, true);
        if (team) {
            printf(" as team ");
            cx_out_text(stdout, team, true);
        }
        if (role) {
            printf(", role ");
            cx_out_text(stdout, role, true);
        }
        printf(".\n");
        rc = RC_OK;
    }
out:
    explicit_bzero(key, sizeof key);
    cx_client_answer_clear(&a);
    cx_client_free(cl);
    cx_upstream_free(u);
    return rc;
}

/* `cortex sync` retries transient failures until its deadline, saying so. */
typedef struct sync_progress {
    ctx *c;
    unsigned attempt;
    uint64_t deadline;
} sync_progress;

static bool sync_retry(void *ud, bool push, int r, long retry_after) {
    sync_progress *p = ud;
    if (r != CX_EIO)
        return false;
    unsigned long d = cx_client_backoff_ms(p->attempt++, 250, 10000, retry_after);
    if (cx_clock_now_ms() + d > p->deadline)
        return false;
    fprintf(stderr, "cortex: %s failed: %s; retrying in %.1f s\n", push ? "push" : "pull",
            cx_error_last(), (double)d / 1000.0);
    cx_clock_sleep_ms(d);
    return true;
}

static void sync_step(void *ud, bool push, const cx_engine_step *st) {
    sync_progress *p = ud;
    p->attempt = 0;
    if (push) {
        fprintf(stderr, "cortex: pushed %zu op%s", st->acked, st->acked == 1 ? "" : "s");
        if (st->rejected)
            fprintf(stderr, ", %zu rejected", st->rejected);
        if (st->blobs)
            fprintf(stderr, ", %zu blob%s uploaded", st->blobs, st->blobs == 1 ? "" : "s");
        fputc('\n', stderr);
        return;
    }
    int64_t cur = 0;
    cx_kv_cursor(p->c->store, &cur);
    fprintf(stderr, "cortex: pulled %zu change%s (at %lld)\n", st->applied,
            st->applied == 1 ? "" : "s", (long long)cur);
    if (st->skipped)
        fprintf(stderr, "cortex: skipped %zu pulled change%s, last %s: %s\n", st->skipped,
                st->skipped == 1 ? "" : "s", st->last_skip_id[0] ? st->last_skip_id : "-",
                st->last_skip);
}

static uint64_t sync_deadline(void) {
    const char *e = getenv("CORTEX_SYNC_DEADLINE");
    unsigned long s = 60;
    if (e && *e) {
        char *end;
        unsigned long v = strtoul(e, &end, 10);
        if (*end == '\0' && v > 0 && v <= 86400)
            s = v;
    }
    return cx_clock_now_ms() + s * 1000;
}

int cx_cli_cmd_sync(ctx *c) {
    if (c->a->pos.n)
        return cx_cli_usage_error("sync", "sync takes no arguments");
    int rc, lock_fd = -1;
    if ((rc = cx_cli_open_store(c, true)) != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_client *cl = NULL;
    json_t *state = NULL;
    int h = cx_cli_load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return cx_cli_fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = cx_cli_make_client(u, true, &cl)) != RC_OK)
        goto out;
    cx_error_clear();
    int r = cx_kv_bind_upstream(c->store, u->url);
    if (r < 0) {
        rc = cx_cli_fail(RC_STORE, "cannot record the upstream: %s", cx_cli_engine_msg(r));
        goto out;
    }
    if (cx_sync_lock_try(c->ws->state_dir, &lock_fd) == 0)
        fprintf(stderr, "cortex: another process is syncing this workspace; syncing alongside it\n");
    sync_progress prog = {.c = c, .deadline = sync_deadline()};
    cx_drain_hooks hooks = {.step = sync_step, .retry = sync_retry, .ud = &prog};
    cx_drain_stats ds = {0};
    for (int round = 0; round < 5; round++) {
        if ((r = cx_drain_push(c->store, cl, &hooks, &ds)) != 0) {
            rc = cx_cli_fail(r == CX_EIO || r == CX_EFAIL ? RC_UPSTREAM : RC_STORE, "push failed: %s",
                      cx_cli_engine_msg(r));
            goto out;
        }
        if ((r = cx_drain_pull(c->store, cl, &hooks, &ds)) != 0) {
            rc = cx_cli_fail(r == CX_EIO || r == CX_EFAIL ? RC_UPSTREAM : RC_STORE, "pull failed: %s",
                      cx_cli_engine_msg(r));
            goto out;
        }
        cx_error_clear();
        if ((r = cx_outbox_state(c->store, &state)) < 0) {
            rc = cx_cli_fail(RC_STORE, "cannot read the sync state: %s", cx_cli_engine_msg(r));
            goto out;
        }
        if (cx_cli_jint(state, "backlog", 0) == 0)
            break;
        json_decref(state); /* agents wrote meanwhile: push again */
        state = NULL;
    }
    if (!state || cx_cli_jint(state, "backlog", 0) != 0) {
        rc = cx_cli_fail(RC_UPSTREAM, "the outbox kept filling up; run `cortex sync` again");
        goto out;
    }
    fprintf(stderr, "cortex: caught up with %s: pushed %zu, pulled %zu\n", u->url, ds.pushed,
            ds.pulled);
    if (cx_cli_jint(state, "rejected", 0) > 0)
        fprintf(stderr, "cortex: %lld op%s rejected by the core are kept; see `cortex status`\n",
                cx_cli_jint(state, "rejected", 0), cx_cli_jint(state, "rejected", 0) == 1 ? " was" : "s were");
    rc = c->json ? cx_cli_print_json(state) : RC_OK;
out:
    if (lock_fd >= 0)
        close(lock_fd);
    json_decref(state);
    cx_client_free(cl);
    cx_upstream_free(u);
    return rc;
}

/* The "sync" member of status: upstream, key, and the store's sync state. */
json_t *cx_cli_sync_status(ctx *c, bool *configured) {
    cx_upstream *u = NULL;
    *configured = false;
    if (cx_upstream_read(c->ws->state_dir, &u) != 0)
        return json_pack("{s:n, s:s}", "upstream", "state", "no upstream configured");
    *configured = true;
    char *key = NULL;
    bool has_key = cx_upstream_key_get(u->url, &key) == 0;
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    json_t *st = NULL;
    if (!c->store || cx_outbox_state(c->store, &st) != 0)
        st = json_object();
    if (!st) {
        cx_upstream_free(u);
        return NULL;
    }
    json_object_set_new(st, "upstream", json_string(u->url));
    if (u->ca_file)
        json_object_set_new(st, "ca_file", json_string(u->ca_file));
    json_object_set_new(st, "logged_in", json_boolean(has_key));
    const char *keys[] = {"last_push", "last_pull"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (json_is_integer(v)) {
            char iso[CX_ISO_LEN];
            cx_clock_format((uint64_t)json_integer_value(v), iso);
            json_object_set_new(st, keys[i], json_string(iso));
        }
    }
    long long lp = -1;
    json_t *v = json_object_get(st, "last_pull");
    uint64_t ms;
    if (json_is_string(v) && cx_clock_parse(json_string_value(v), &ms) == 0)
        lp = (long long)ms;
    /* a pull by a background cortexd may be later than this command's now */
    json_object_set_new(st, "stale", json_boolean(lp < 0 || ((uint64_t)lp < c->now &&
                                                             c->now - (uint64_t)lp > STALE_MS)));
    cx_upstream_free(u);
    return st;
}

void cx_cli_put_sync_status(ctx *c, const json_t *sy, bool configured) {
    const char *lbl = cx_out_sgr(CX_OUT_BOLD), *rst = cx_out_sgr(CX_OUT_RESET);
    if (!configured) {
        printf("%ssync%s        no upstream configured\n", lbl, rst);
        return;
    }
    printf("%supstream%s    ", lbl, rst);
    cx_out_text(stdout, cx_cli_jstr(sy, "upstream"), true);
    if (!cx_cli_jtrue(sy, "logged_in"))
        printf(" %s(no key: run `cortex login`)%s", cx_out_sgr(CX_OUT_YELLOW), rst);
    fputc('\n', stdout);
    char rel[64];
    printf("%slast push%s   ", lbl, rst);
    if (cx_cli_jstr(sy, "last_push")) {
        cx_out_reltime(cx_cli_jstr(sy, "last_push"), c->now, rel, sizeof rel);
        printf("%s\n", rel);
    } else {
        printf("never\n");
    }
    printf("%slast pull%s   ", lbl, rst);
    if (cx_cli_jstr(sy, "last_pull")) {
        cx_out_reltime(cx_cli_jstr(sy, "last_pull"), c->now, rel, sizeof rel);
        printf("%s (at %lld)\n", rel, cx_cli_jint(sy, "cursor", 0));
    } else {
        printf("never\n");
    }
    long long backlog = cx_cli_jint(sy, "backlog", 0), rej = cx_cli_jint(sy, "rejected", 0);
    printf("%sbacklog%s     %lld op%s to push\n", lbl, rst, backlog, backlog == 1 ? "" : "s");
    if (rej > 0) {
        printf("%srejected%s    %s%lld op%s rejected by the core%s\n", lbl, rst,
               cx_out_sgr(CX_OUT_RED), rej, rej == 1 ? "" : "s", rst);
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(sy, "rejected_ops"), i, o) {
            fputs("            ", stdout);
            cx_out_text(stdout, cx_cli_jstr(o, "item_id"), true);
            fputs(" ", stdout);
            cx_out_text(stdout, cx_cli_jstr(o, "op"), true);
            fputs(": ", stdout);
            cx_out_text(stdout, cx_cli_jstr(o, "reason"), true);
            fputc('\n', stdout);
        }
    }
    long long skipped = cx_cli_jint(sy, "skipped", 0);
    if (skipped > 0) {
        /* pulled changes that broke the protocol's limits: never stored */
        const json_t *last = json_object_get(sy, "last_skip");
        printf("%sskipped%s     %s%lld pulled change%s not stored (invalid)%s\n", lbl, rst,
               cx_out_sgr(CX_OUT_YELLOW), skipped, skipped == 1 ? "" : "s", rst);
        if (json_is_object(last)) {
            fputs("            last ", stdout);
            cx_out_text(stdout, cx_cli_jstr(last, "id") ? cx_cli_jstr(last, "id") : "-", true);
            fputs(": ", stdout);
            cx_out_text(stdout, cx_cli_jstr(last, "reason"), true);
            fputc('\n', stdout);
        }
    }
    if (cx_cli_jstr(sy, "last_error")) {
        printf("%slast error%s  ", lbl, rst);
        cx_out_text(stdout, cx_cli_jstr(sy, "last_error"), true);
        fputc('\n', stdout);
    }
    if (cx_cli_jtrue(sy, "stale"))
        printf("%swarning: the cache is stale (not pulled in the last hour); run `cortex sync`%s\n",
               cx_out_sgr(CX_OUT_YELLOW), rst);
}

/* Writes the upstream to the workspace config and to the sync engine's
 * .cortex/upstream (the config is the one people edit; the engine reads the
 * other). `ca` may be NULL. */
int cx_cli_set_upstream(ctx *c, const char *url, const char *ca) {
    const char *keys[] = {"upstream.url", "upstream.caFile"};
    const char *vals[] = {url, ca};
    cx_error_clear();
    if (cx_config_set(c->ws, keys, vals, 2) < 0)
        return cx_cli_fail(RC_STORE, "cannot write the workspace config: %s", cx_error_last());
    cx_upstream u = {.url = (char *)url, .ca_file = (char *)ca};
    cx_error_clear();
    int r = cx_upstream_write(c->ws->state_dir, &u);
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot write the upstream: %s", cx_cli_engine_msg(r));
    return RC_OK;
}
