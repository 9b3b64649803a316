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
    "Usage: cortex remote set URL [--ca-file FILE] [--rebind]\n"
    "       cortex remote [show]\n"
    "\n"
    "Sets the team's cortex-core that this workspace syncs with. URL is\n"
    "https://HOST[:PORT] (plain http:// only to a loopback address), stored\n"
    "normalised (scheme and host in lower case, no default port, no trailing\n"
    "slash). --ca-file names a PEM bundle of the CA that signed the core's\n"
    "certificate, for a core with a private CA. Stored as upstream.url and\n"
    "upstream.caFile in <workspace>/.cortex/config and in .cortex/upstream (what\n"
    "the sync engine reads); the key is not (see cortex login). 'show' prints\n"
    "the upstream.\n"
    "\n"
    "A workspace is bound to the team of the first key it logs in or syncs\n"
    "with, and never pushes to or pulls from another team. --rebind forgets\n"
    "that team and resets the pull cursor: the next `cortex login` or `cortex\n"
    "sync` binds the workspace to the team of its key and pulls that team's\n"
    "feed from the start. Local changes not pushed yet then go to that team.\n"
    "\n"
    "Exit status: 0 success, 2 usage error (e.g. http:// to another host),\n"
    "3 workspace error, 4 no upstream configured (show).\n";

const char cx_cli_help_login[] =
    "Usage: cortex login\n"
    "\n"
    "Reads an API key for the workspace's upstream (from standard input when it\n"
    "is not a terminal, else with a prompt that does not echo), asks the core\n"
    "which team and role it has (GET /v1/info), and stores it with them in\n"
    "$XDG_CONFIG_HOME/cortex/credentials (default ~/.config/cortex/credentials),\n"
    "mode 0600, beside the keys already held: one key per upstream, team and\n"
    "role, so that an agent key and a reviewer key (or keys of two teams) are\n"
    "held together. `cortex sync` uses an agent key of the workspace's team,\n"
    "`cortex review` a reviewer (or admin) key. A workspace bound to no team yet\n"
    "is bound to the key's team; one bound to another team keeps its team (see\n"
    "cortex remote --rebind). Keys are never stored in the workspace.\n"
    "\n"
    "Exit status: 0 success, 1 the core refused the key (a 4xx answer but 408\n"
    "and 429), 2 usage error (no key given), 3 store error, 4 no upstream\n"
    "configured or the core could not be reached, failed (5xx) or asked to\n"
    "wait (408, 429).\n";

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
    "The workspace is bound to one team (see cortex remote): a key of another\n"
    "team is refused before anything is pushed or pulled. A core that breaks\n"
    "the protocol (a pull that does not advance, a push answer without a\n"
    "result for every op) ends the sync at once.\n"
    "\n"
    "Exit status: 0 caught up, 1 the core refused the key or the request (a 4xx\n"
    "answer other than 408 and 429: e.g. a revoked key), 3 store error, 4 no\n"
    "upstream or key configured, the key is of another team than the\n"
    "workspace's, or the core could not be reached, failed (5xx), kept asking\n"
    "to wait (408, 429), answered more than a client takes or broke the\n"
    "protocol.\n";

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

/* The team the workspace is bound to (malloc'd), or NULL when it is bound
 * to none or has no store yet. */
static char *bound_team(ctx *c) {
    char *team = NULL;
    if (!c->store) {
        if (cx_cli_has_store(c) <= 0 || cx_cli_open_store(c, false) != RC_OK)
            return NULL;
    }
    return cx_kv_get(c->store, CX_KV_TEAM, &team) == 0 ? team : NULL;
}

int cx_cli_make_client(ctx *c, const cx_upstream *u, cx_upstream_use use, cx_client **out,
                       cx_upstream_cred *cred) {
    char *team = bound_team(c);
    cx_upstream_cred k = {0};
    cx_error_clear();
    int r = cx_upstream_key_find(u->url, team, use, &k);
    free(team);
    if (r < 0)
        return cx_cli_fail(RC_UPSTREAM, "%s", cx_cli_engine_msg(r));
    cx_error_clear();
    r = cx_client_new(out, u, k.key, NULL);
    if (r == 0 && c->ws && (r = cx_client_set_workspace(*out, c->ws->name)) < 0) {
        cx_client_free(*out);
        *out = NULL;
    }
    if (r < 0) {
        cx_upstream_cred_clear(&k);
        return cx_cli_fail(RC_UPSTREAM, "cannot use upstream %s: %s", u->url, cx_cli_engine_msg(r));
    }
    *cred = k;
    return RC_OK;
}

int cx_cli_check_team(ctx *c, const cx_upstream *u, cx_client *cl, cx_upstream_cred *cred,
                      bool bind, cx_upstream_who *who) {
    long status = 0;
    cx_error_clear();
    int r = cx_engine_whoami(cl, who, &status);
    for (unsigned attempt = 0; r == CX_EIO && attempt < 3; attempt++) {
        unsigned long d = cx_client_backoff_ms(attempt, 250, 2000, 0);
        fprintf(stderr, "cortex: asking %s who the key is failed: %s; retrying in %.1f s\n",
                u->url, cx_error_last(), (double)d / 1000.0);
        cx_clock_sleep_ms(d);
        cx_error_clear();
        r = cx_engine_whoami(cl, who, &status);
    }
    if (r < 0)
        return cx_cli_fail(cx_cli_rc_for_status(status),
                           "cannot use the key for %s: %s", u->url, cx_cli_engine_msg(r));
    if (!cred->who.team[0] && who->team[0]) {
        /* a key of the first credentials format: store what it is now */
        cx_upstream_who w = *who;
        cx_error_clear();
        if (cx_upstream_key_add(u->url, cred->key, &w) < 0)
            fprintf(stderr, "cortex: cannot record the key's team: %s, ignoring\n", cx_error_last());
        cred->who = w;
    }
    char *team = NULL;
    if (!bind) {
        if (!who->team[0] || !(team = bound_team(c)) || strcmp(team, who->team) == 0) {
            free(team);
            return RC_OK;
        }
        int rc = cx_cli_fail(RC_UPSTREAM, "this workspace is bound to team %s, but the key for "
                             "its core is of team %s: log in with a key of team %s (`cortex "
                             "login`), or move this workspace to team %s deliberately with "
                             "`cortex remote set URL --rebind`", team, who->team, team, who->team);
        free(team);
        return rc;
    }
    cx_error_clear();
    r = cx_engine_team_check(c->store, who);
    if (r == CX_ECONFLICT)
        return cx_cli_fail(RC_UPSTREAM, "%s", cx_cli_engine_msg(r));
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot record the workspace's team: %s", cx_cli_engine_msg(r));
    return RC_OK;
}

/* The exit status for an answer of the core with this HTTP status (0: no
 * answer at all): a refusal (4xx: the key, its role, the request, an
 * unknown id) is 1; a core that could not be reached, failed (5xx) or asks
 * to come back later (408, 429) is 4. */
int cx_cli_rc_for_status(long status) {
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        return RC_NONE;
    return RC_UPSTREAM;
}

/* The exit status and message for an unexpected answer of the core. */
int cx_cli_reviewer_client(ctx *c, cx_client **out, char *role, size_t cap) {
    *out = NULL;
    role[0] = '\0';
    int rc = cx_cli_find_workspace(c, false);
    if (rc != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_upstream_cred cred = {0};
    cx_upstream_who who = {0};
    int h = cx_cli_load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return RC_OK;
    rc = cx_cli_make_client(c, u, CX_UPSTREAM_FOR_REVIEW, out, &cred);
    if (rc == RC_OK && (rc = cx_cli_check_team(c, u, *out, &cred, false, &who)) != RC_OK) {
        cx_client_free(*out);
        *out = NULL;
    }
    if (rc == RC_OK)
        snprintf(role, cap, "%s", who.role[0] ? who.role : cred.who.role);
    cx_upstream_cred_clear(&cred);
    cx_upstream_free(u);
    return rc;
}

void cx_cli_agent_key_hint(int rc, const char *role) {
    if (rc == RC_NONE && strcmp(role, "agent") == 0)
        fprintf(stderr, "cortex: the only key of this workspace's team is an agent key; log in "
                        "with a reviewer key too (`cortex login`), it is kept beside the agent "
                        "key\n");
}

int cx_cli_answer_fail(const char *what, const cx_client_answer *a) {
    int rc = cx_cli_rc_for_status(a->status);
    return cx_cli_fail(rc, "%s: the core answered %ld: %s", what, a->status, cx_client_error_text(a));
}

/* `remote set --rebind`: forgets the workspace's team (*was, malloc'd,
 * NULL when it had none) and resets its cursor; *backlog the ops not
 * pushed yet. */
static int rebind(ctx *c, char **was, long long *backlog) {
    int h = cx_cli_has_store(c);
    if (h < 0)
        return -h;
    if (h == 0)
        return RC_OK; /* nothing synced yet: nothing bound */
    int rc = cx_cli_open_store(c, false);
    if (rc != RC_OK)
        return rc;
    json_t *st = NULL;
    if (cx_outbox_state(c->store, &st) == 0)
        *backlog = cx_cli_jint(st, "backlog", 0);
    json_decref(st);
    if (cx_kv_get(c->store, CX_KV_TEAM, was) != 0)
        *was = NULL;
    cx_error_clear();
    int r = cx_kv_unbind_team(c->store);
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot forget the workspace's team: %s", cx_cli_engine_msg(r));
    return RC_OK;
}

int cx_cli_cmd_remote(ctx *c) {
    const strlist *pos = &c->a->pos;
    int rc;
    if (pos->n == 0 || (pos->n == 1 && strcmp(pos->v[0], "show") == 0)) {
        if (c->a->seen[O_CA_FILE] || c->a->seen[O_REBIND])
            return cx_cli_usage_error("remote", "--ca-file and --rebind go with 'remote set URL'");
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
    char *norm = NULL, *was = NULL;
    long long backlog = 0;
    if (cx_upstream_url_norm(u.url, &norm) < 0) {
        free(ca);
        return cx_cli_oom();
    }
    rc = cx_cli_set_upstream(c, norm, u.ca_file);
    free(ca);
    if (rc == RC_OK && c->a->seen[O_REBIND])
        rc = rebind(c, &was, &backlog);
    if (rc != RC_OK)
        goto done;
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s?, s:b, s:s?}", "url", norm, "ca_file", c->a->val[O_CA_FILE],
                              "rebound", c->a->seen[O_REBIND], "previous_team", was);
        rc = o ? cx_cli_print_json(o) : cx_cli_oom();
        json_decref(o);
        goto done;
    }
    printf("Upstream set to ");
    cx_out_text(stdout, norm, true);
    printf(".\n");
    if (was) {
        printf("This workspace is no longer bound to team ");
        cx_out_text(stdout, was, true);
        printf("; its next `cortex login` or `cortex sync` binds it to the team of its key and\n"
               "pulls that team's feed from the start.\n");
        if (backlog > 0)
            printf("%lld local change%s not pushed yet will go to that team.\n", backlog,
                   backlog == 1 ? "" : "s");
    }
    printf("Next: `cortex login` with your key, then `cortex sync`.\n");
done:
    free(was);
    free(norm);
    return rc;
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
    cx_upstream_who who = {0};
    char key[1100], *bound = NULL;
    bool conflict = false;
    int h = cx_cli_load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return cx_cli_fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = read_key(u->url, key, sizeof key)) != RC_OK)
        goto out;
    cx_error_clear();
    long status = 0;
    int r = cx_client_new(&cl, u, key, NULL);
    if (r == 0)
        r = cx_engine_whoami(cl, &who, &status);
    if (r < 0 && status == 0) {
        rc = cx_cli_fail(RC_UPSTREAM, "cannot reach %s: %s", u->url, cx_cli_engine_msg(r));
        goto out;
    }
    if (r < 0) {
        rc = cx_cli_fail(cx_cli_rc_for_status(status),
                         "the key was not accepted: %s", cx_cli_engine_msg(r));
        goto out;
    }
    cx_error_clear();
    if ((r = cx_upstream_key_add(u->url, key, &who)) < 0) {
        rc = cx_cli_fail(r == CX_EINVAL ? RC_USAGE : RC_STORE, "cannot store the key: %s", cx_cli_engine_msg(r));
        goto out;
    }
    /* a workspace bound to no team yet takes the key's */
    if (who.team[0]) {
        if ((rc = cx_cli_open_store(c, true)) != RC_OK)
            goto out;
        cx_error_clear();
        r = cx_engine_team_check(c->store, &who);
        if (r == CX_ECONFLICT) {
            conflict = true;
            if (cx_kv_get(c->store, CX_KV_TEAM, &bound) != 0)
                bound = NULL;
        } else if (r < 0) {
            rc = cx_cli_fail(RC_STORE, "cannot record the workspace's team: %s", cx_cli_engine_msg(r));
            goto out;
        }
    }
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?}", "url", u->url, "team",
                              who.team[0] ? who.team : NULL, "role", who.role[0] ? who.role : NULL,
                              "principal", who.principal[0] ? who.principal : NULL, "key_id",
                              who.key_id[0] ? who.key_id : NULL, "workspace_team",
                              conflict ? bound : (who.team[0] ? who.team : NULL));
        rc = o ? cx_cli_print_json(o) : cx_cli_oom();
        json_decref(o);
    } else {
        printf("Logged in to ");
        cx_out_text(stdout, u->url, true);
        if (who.team[0]) {
            printf(" as team ");
            cx_out_text(stdout, who.team, true);
        }
        if (who.role[0]) {
            printf(", role ");
            cx_out_text(stdout, who.role, true);
        }
        printf(".\n");
        rc = RC_OK;
    }
    if (conflict) {
        fprintf(stderr, "cortex: this workspace is bound to team ");
        cx_out_text(stderr, bound ? bound : "?", true);
        fprintf(stderr, ": the key of team ");
        cx_out_text(stderr, who.team, true);
        fprintf(stderr, " is stored beside your other keys but is not used here. To move this "
                        "workspace to team ");
        cx_out_text(stderr, who.team, true);
        fprintf(stderr, ": `cortex remote set URL --rebind`, then `cortex login` again.\n");
    }
out:
    free(bound);
    explicit_bzero(key, sizeof key);
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
    cx_out_printf(stderr, "cortex: %s failed: %s; retrying in %.1f s\n", push ? "push" : "pull",
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
    if (st->fetched)
        fprintf(stderr, "cortex: fetched the content of %zu artifact version%s\n", st->fetched,
                st->fetched == 1 ? "" : "s");
    if (st->fetch_failed)
        cx_out_printf(stderr, "cortex: could not fetch the content of %zu artifact version%s, "
                              "last %s\n", st->fetch_failed, st->fetch_failed == 1 ? "" : "s",
                      st->last_fetch_error);
    if (st->skipped)
        cx_out_printf(stderr, "cortex: skipped %zu pulled change%s, last %s: %s\n", st->skipped,
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

/* The team check before a push or a pull of `cortex sync`. */
static int team_recheck(ctx *c, const cx_upstream_who *who) {
    cx_error_clear();
    int r = cx_engine_team_check(c->store, who);
    if (r == CX_ECONFLICT)
        return cx_cli_fail(RC_UPSTREAM, "%s", cx_cli_engine_msg(r));
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot read the workspace's team: %s", cx_cli_engine_msg(r));
    return RC_OK;
}

/* The exit status of a failed drain, as cortex(1) documents it: 1 for what
 * the core refused (a 4xx answer: the key, its role), 4 for anything else
 * the core or the network did (unreachable, failing, an answer too large, a
 * broken protocol), 3 for what the store did. */
static int drain_rc(const cx_drain_stats *ds) {
    if (!ds->remote)
        return RC_STORE;
    return cx_cli_rc_for_status(ds->status);
}

int cx_cli_cmd_sync(ctx *c) {
    if (c->a->pos.n)
        return cx_cli_usage_error("sync", "sync takes no arguments");
    int rc, lock_fd = -1;
    if ((rc = cx_cli_open_store(c, true)) != RC_OK)
        return rc;
    cx_upstream *u = NULL;
    cx_client *cl = NULL;
    cx_upstream_cred cred = {0};
    cx_upstream_who who = {0};
    json_t *state = NULL;
    int h = cx_cli_load_upstream(c, &u);
    if (h < 0)
        return -h;
    if (h == 0)
        return cx_cli_fail(RC_UPSTREAM, "no upstream configured; set one with `cortex remote set URL`");
    if ((rc = cx_cli_make_client(c, u, CX_UPSTREAM_FOR_SYNC, &cl, &cred)) != RC_OK)
        goto out;
    /* the key's team, asked once for this run, must be the workspace's */
    if ((rc = cx_cli_check_team(c, u, cl, &cred, true, &who)) != RC_OK)
        goto out; /* a refused key is 1, as a refused push is */
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
        /* before each push and pull: another process may have rebound it */
        if ((rc = team_recheck(c, &who)) != RC_OK)
            goto out;
        if ((r = cx_drain_push(c->store, cl, &hooks, &ds)) != 0) {
            rc = cx_cli_fail(drain_rc(&ds), "push failed: %s", cx_cli_engine_msg(r));
            goto out;
        }
        if ((rc = team_recheck(c, &who)) != RC_OK)
            goto out;
        if ((r = cx_drain_pull(c->store, cl, &hooks, &ds)) != 0) {
            rc = cx_cli_fail(drain_rc(&ds), "pull failed: %s", cx_cli_engine_msg(r));
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
    cx_upstream_cred_clear(&cred);
    cx_upstream_free(u);
    return rc;
}

/* Whether the workspace has an upstream, as cx_cli_sync_status judges it. */
bool cx_cli_upstream_configured(ctx *c) {
    cx_upstream *u = NULL;
    int r = cx_upstream_read(c->ws->state_dir, &u);
    cx_upstream_free(u);
    cx_error_clear();
    return r == 0;
}

/* The "sync" member of status: upstream, key, and the store's sync state. */
json_t *cx_cli_sync_status(ctx *c, bool *configured) {
    cx_upstream *u = NULL;
    *configured = false;
    if (cx_upstream_read(c->ws->state_dir, &u) != 0)
        return json_pack("{s:n, s:s}", "upstream", "state", "no upstream configured");
    *configured = true;
    char *team = NULL, *principal = NULL, *key_id = NULL;
    if (c->store) {
        if (cx_kv_get(c->store, CX_KV_TEAM, &team) != 0)
            team = NULL;
        if (cx_kv_get(c->store, CX_KV_TEAM_PRINCIPAL, &principal) != 0)
            principal = NULL;
        if (cx_kv_get(c->store, CX_KV_TEAM_KEY_ID, &key_id) != 0)
            key_id = NULL;
    }
    /* the key a sync would use now, and why none would be */
    cx_upstream_cred cred = {0};
    cx_error_clear();
    int kr = cx_upstream_key_find(u->url, team, CX_UPSTREAM_FOR_SYNC, &cred);
    char key_error[1024] = "";
    if (kr < 0)
        snprintf(key_error, sizeof key_error, "%s", cx_error_last());
    json_t *held = NULL;
    if (cx_upstream_key_list(u->url, &held) != 0)
        held = json_array();
    json_t *st = NULL;
    if (!c->store || cx_outbox_state(c->store, &st) != 0)
        st = json_object();
    if (!st) {
        json_decref(held);
        cx_upstream_cred_clear(&cred);
        free(team), free(principal), free(key_id);
        cx_upstream_free(u);
        return NULL;
    }
    json_object_set_new(st, "upstream", json_string(u->url));
    if (u->ca_file)
        json_object_set_new(st, "ca_file", json_string(u->ca_file));
    json_object_set_new(st, "logged_in", json_boolean(kr == 0));
    /* the workspace's team, else (not bound yet) the team of the key it
     * would bind to; the role of the key a sync uses */
    const char *shown = team ? team : (kr == 0 && cred.who.team[0] ? cred.who.team : NULL);
    json_object_set_new(st, "team", shown ? json_string(shown) : json_null());
    json_object_set_new(st, "team_bound", json_boolean(team != NULL));
    json_object_set_new(st, "role", kr == 0 && cred.who.role[0] ? json_string(cred.who.role)
                                                                 : json_null());
    json_object_set_new(st, "principal", principal ? json_string(principal)
                                         : (kr == 0 && cred.who.principal[0]
                                                ? json_string(cred.who.principal) : json_null()));
    if (key_id)
        json_object_set_new(st, "team_key_id", json_string(key_id));
    json_object_set_new(st, "keys", held ? held : json_array());
    if (key_error[0])
        json_object_set_new(st, "key_error", json_string(key_error));
    cx_upstream_cred_clear(&cred);
    free(team), free(principal), free(key_id);
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
    /* a pull of the background cortexd may land after this command read
     * the clock: a last_pull "in the future" is fresh, not a wrapped age */
    json_object_set_new(st, "stale", json_boolean(lp < 0 || (c->now > (uint64_t)lp &&
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
    printf("%steam%s        ", lbl, rst);
    if (cx_cli_jstr(sy, "team")) {
        cx_out_text(stdout, cx_cli_jstr(sy, "team"), true);
        if (cx_cli_jstr(sy, "role")) {
            fputs(", role ", stdout);
            cx_out_text(stdout, cx_cli_jstr(sy, "role"), true);
        }
        if (!cx_cli_jtrue(sy, "team_bound"))
            fputs(" (the workspace is bound to it at the first sync)", stdout);
    } else {
        fputs("none yet (bound at the first login or sync)", stdout);
    }
    fputc('\n', stdout);
    if (cx_cli_jstr(sy, "key_error")) {
        printf("%skey%s         %s", lbl, rst, cx_out_sgr(CX_OUT_YELLOW));
        cx_out_text(stdout, cx_cli_jstr(sy, "key_error"), true);
        printf("%s\n", rst);
    }
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
