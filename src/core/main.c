/* SPDX-License-Identifier: Apache-2.0 */
/* cortex-core: the team's upstream core. This file owns the command line
 * (init, serve, keys, forget, compact, backup, verify-audit) and the data
 * directory layout:
 *
 *   DIR/            mode 0700
 *   DIR/core.db     SQLite, WAL mode: a core made without --database
 *   DIR/database    or: the PostgreSQL URI (no password), mode 0600
 *   DIR/secret      the server secret, mode 0600 (keys.c, audit.c)
 *
 * stdout carries only what a command promises (a key, a listing); logs go
 * to stderr. Exit codes: 0 ok, 1 failure, 2 usage. */
#include "core/audit.h"
#include "core/server.h"
#include "core/keys.h"
#include "core/migrate.h"
#include "core/storage.h"
#include "core/feed.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/log.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_FILE "core.db"
#define DATABASE_FILE "database" /* names a PostgreSQL database */
#define URI_MAX 4096
#define VERSION "0.1.0"

/* The usage on f: standard output for --help (exit 0), standard error
 * for a usage error (the return value, 2). */
static int usage_to(FILE *f) {
    fputs("usage: cortex-core init DIR [--team TEAM] [--name NAME] [--database URL]\n"
          "       cortex-core serve DIR --listen HOST:PORT [--tls-cert FILE --tls-key FILE]\n"
          "                  [--rate-limit N] [--burst N] [--max-blob BYTES] [--threads N]\n"
          "                  [--max-connections N] [--max-connections-per-address N]\n"
          "                  [--header-timeout SECS] [--body-timeout SECS] [--idle-timeout SECS]\n"
          "                  [--page-memory BYTES] [--send-min-rate BYTES] [--ready-file FILE]\n"
          "                  [--db-pool N]\n"
          "       cortex-core keys create DIR --team TEAM --role agent|reviewer|admin --name NAME\n"
          "       cortex-core keys list DIR\n"
          "       cortex-core keys revoke DIR KEY_ID\n"
          "       cortex-core forget DIR --team TEAM ID [--reason TEXT]\n"
          "       cortex-core compact DIR --team TEAM --before-seq N\n"
          "       cortex-core backup DIR DEST\n"
          "       cortex-core verify-audit DIR\n"
          "       cortex-core migrate DIR --database URL\n"
          "       cortex-core -V|--version\n"
          "       cortex-core -h|--help\n"
          "\n"
          "serve also serves the review app: open https://HOST:PORT/ in a browser and\n"
          "sign in with a reviewer's key. See cortex-core(8).\n",
          f);
    return 2;
}

static int usage(void) { return usage_to(stderr); }

static int fail(const char *what) {
    fprintf(stderr, "cortex-core: %s: %s\n", what, cx_error_last());
    return 1;
}

/* What DIR's database is: the URI in DIR/database when that file is there,
 * else the path of DIR/core.db. *target is malloc'd (the caller's). */
static int dir_target(const char *dir, char **target) {
    char *named = cx_fs_join(dir, DATABASE_FILE);
    if (!named)
        return CX_ENOMEM;
    char *text = NULL;
    size_t len = 0;
    int r = cx_fs_read_file(named, URI_MAX, &text, &len);
    if (r == CX_ENOTFOUND) {
        free(named);
        cx_error_clear();
        *target = cx_fs_join(dir, DB_FILE);
        return *target ? 0 : CX_ENOMEM;
    }
    if (r == 0) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            text[--len] = '\0';
        if (!cx_storage_is_uri(text))
            r = cx_error_set(CX_EINVAL, "%s does not hold a postgresql:// URI", named);
    }
    free(named);
    if (r) {
        free(text);
        return r;
    }
    *target = text;
    return 0;
}

/* Opens DIR's database and secret. */
static int open_dir(const char *dir, int flags, cx_storage **st, uint8_t secret[CX_SECRET_LEN]) {
    char *target = NULL;
    int r = cx_keys_secret_load(dir, secret);
    if (r == 0)
        r = dir_target(dir, &target);
    if (r == 0)
        r = cx_storage_open(st, target, flags);
    free(target);
    return r;
}

/* True when the URI carries a password: in its user part
 * (scheme://user:password@host) or as a password= parameter. */
static bool uri_has_password(const char *uri) {
    const char *p = strstr(uri, "://");
    if (p) {
        p += 3;
        size_t n = strcspn(p, "/?#");
        const char *at = memchr(p, '@', n);
        if (at && memchr(p, ':', (size_t)(at - p)))
            return true;
    }
    const char *q = strchr(uri, '?');
    for (; q; q = strchr(q + 1, '&'))
        if (strncmp(q + 1, "password=", 9) == 0)
            return true;
    return false;
}

/* Parses "--opt VALUE" pairs from argv[i..]; unknown options are errors. */
typedef struct opt {
    const char *name;
    const char **value;
} opt;

static int parse_opts(int argc, char **argv, int i, const opt *opts) {
    for (; i < argc; i++) {
        const opt *o = opts;
        for (; o->name; o++)
            if (strcmp(argv[i], o->name) == 0)
                break;
        if (!o->name || i + 1 >= argc) {
            fprintf(stderr, "cortex-core: unknown option or missing value: %s\n", argv[i]);
            return -1;
        }
        *o->value = argv[++i];
    }
    return 0;
}

/* The audit log's actor for what the command line does. */
#define LOCAL_ACTOR "cortex-core (local)"

/* Makes a key (keys.c: with its audit entry) and prints it, once. */
static int create_key(cx_storage *st, const uint8_t *secret, const char *team, const char *role,
                      const char *name) {
    char key[CX_KEY_MAX];
    int r = cx_keys_issue(st, secret, team, role, name, LOCAL_ACTOR, key, NULL);
    if (r == 0) {
        printf("%s\n", key);
        fflush(stdout);
    }
    sodium_memzero(key, sizeof key);
    return r;
}

/* What --database must be (init, migrate): a PostgreSQL URI without a
 * password. 0, or the usage error's exit status (2) after saying why. */
static int database_uri_ok(const char *database) {
    if (!cx_storage_is_uri(database))
        return fprintf(stderr, "cortex-core: --database wants a PostgreSQL URI "
                               "(postgresql://USER@HOST:PORT/DB)\n"), 2;
    if (uri_has_password(database))
        return fprintf(stderr, "cortex-core: --database: the URI holds a password; put it in "
                               "the file PGPASSFILE names (or ~/.pgpass) instead, so that it is "
                               "never on a command line or in DIR\n"), 2;
    if (strlen(database) >= URI_MAX)
        return fprintf(stderr, "cortex-core: --database: the URI is too long\n"), 2;
    return 0;
}

/* Points DIR at the database: DIR/database holds its URI (mode 0600). */
static int write_database_file(const char *named, const char *database) {
    size_t n = strlen(database);
    char *line = malloc(n + 2);
    if (!line)
        return CX_ENOMEM;
    memcpy(line, database, n);
    line[n] = '\n';
    int r = cx_fs_write_atomic(named, line, n + 1, 0600);
    free(line);
    return r;
}

static int cmd_init(int argc, char **argv) {
    const char *team = "default", *name = "admin", *database = NULL;
    if (argc < 3 || parse_opts(argc, argv, 3, (opt[]){{"--team", &team}, {"--name", &name},
                                                      {"--database", &database},
                                                      {NULL, NULL}}))
        return usage();
    const char *dir = argv[2];
    if (!cx_keys_team_valid(team))
        return fprintf(stderr, "cortex-core: bad team name '%s'\n", team), 2;
    int rc = database ? database_uri_ok(database) : 0;
    if (rc)
        return rc;
    char *db = cx_fs_join(dir, DB_FILE), *sec = cx_fs_join(dir, "secret");
    char *named = cx_fs_join(dir, DATABASE_FILE);
    int r = 0;
    bool made = false;
    cx_storage *st = NULL;
    uint8_t secret[CX_SECRET_LEN];
    if (!db || !sec || !named) {
        r = CX_ENOMEM;
        goto out;
    }
    if (access(db, F_OK) == 0 || access(sec, F_OK) == 0 || access(named, F_OK) == 0) {
        r = cx_error_set(CX_ECONFLICT, "%s already holds a cortex-core data directory", dir);
        goto out;
    }
    if (database) {
        /* One core per database: a second node copies the first's DIR
         * (the same secret), it does not init again. */
        r = cx_storage_open(&st, database, 0);
        if (r == 0) {
            r = cx_error_set(CX_ECONFLICT,
                             "the database already holds a cortex-core; for another node over "
                             "it, copy the first node's data directory instead of init");
            goto out;
        }
        if (r != CX_ENOTFOUND)
            goto out;
        cx_error_clear();
    }
    if ((r = cx_fs_mkdir_p(dir, 0700)))
        goto out;
    if (chmod(dir, 0700) != 0) {
        r = cx_error_set(CX_EIO, "chmod %s: %s", dir, strerror(errno));
        goto out;
    }
    if ((r = cx_keys_secret_create(dir, secret)))
        goto out;
    made = true;
    if (database) {
        r = write_database_file(named, database);
        if (r || (r = cx_storage_open(&st, database, CX_STORAGE_CREATE)))
            goto out;
    } else {
        if ((r = cx_storage_open(&st, db, CX_STORAGE_CREATE)))
            goto out;
        chmod(db, 0600);
    }
    r = create_key(st, secret, team, "admin", name);
out:
    if (r && made && database) {
        /* Leave no half-made directory that a retry would refuse. */
        unlink(named);
        unlink(sec);
    }
    sodium_memzero(secret, sizeof secret);
    cx_storage_free(st);
    free(db);
    free(sec);
    free(named);
    return r ? fail("init") : 0;
}

static int list_one(void *ud, const cx_storage_key *k) {
    char created[CX_ISO_LEN], revoked[CX_ISO_LEN] = "-";
    cx_clock_format((uint64_t)k->created_ms, created);
    if (k->revoked_ms)
        cx_clock_format((uint64_t)k->revoked_ms, revoked);
    printf("%s\t%s\t%s\t%s\t%s\t%s\n", k->key_id, k->team, k->role, k->name, created, revoked);
    return 0;
}

static int cmd_keys(int argc, char **argv) {
    if (argc < 4)
        return usage();
    const char *sub = argv[2], *dir = argv[3];
    cx_storage *st = NULL;
    uint8_t secret[CX_SECRET_LEN];
    int r;
    if (strcmp(sub, "create") == 0) {
        const char *team = NULL, *role = NULL, *name = NULL;
        if (parse_opts(argc, argv, 4, (opt[]){{"--team", &team}, {"--role", &role},
                                              {"--name", &name}, {NULL, NULL}}) ||
            !team || !role || !name)
            return usage();
        if (!cx_keys_role_valid(role))
            return fprintf(stderr, "cortex-core: --role must be agent, reviewer or admin\n"), 2;
        if ((r = open_dir(dir, 0, &st, secret)) == 0)
            r = create_key(st, secret, team, role, name);
    } else if (strcmp(sub, "list") == 0 && argc == 4) {
        if ((r = open_dir(dir, 0, &st, secret)) == 0) {
            printf("KEY_ID\tTEAM\tROLE\tNAME\tCREATED\tREVOKED\n");
            cx_storage_tx *tx = NULL;
            if ((r = cx_storage_begin(st, false, &tx)) == 0) {
                r = cx_storage_key_list(tx, list_one, NULL); /* printed: not run twice */
                cx_storage_rollback(tx);
            }
        }
    } else if (strcmp(sub, "revoke") == 0 && argc == 5) {
        const char *id = argv[4];
        if ((r = open_dir(dir, 0, &st, secret)) == 0 &&
            (r = cx_keys_withdraw(st, secret, id, NULL, LOCAL_ACTOR, NULL)) == 0)
            fprintf(stderr, "cortex-core: key %s revoked\n", id);
    } else {
        return usage();
    }
    sodium_memzero(secret, sizeof secret);
    cx_storage_free(st);
    return r ? fail("keys") : 0;
}

static int parse_listen(const char *s, char *host, size_t cap, uint16_t *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= cap)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

static int parse_num(const char *s, double min, double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int cmd_serve(int argc, char **argv) {
    const char *listen = NULL, *cert = NULL, *key = NULL, *rate = NULL, *burst = NULL;
    const char *max_blob = NULL, *threads = NULL, *ready = NULL, *db_pool = NULL;
    const char *max_conns = NULL, *per_addr = NULL, *t_header = NULL, *t_body = NULL,
               *t_idle = NULL, *page_mem = NULL, *min_rate = NULL;
    if (argc < 3 ||
        parse_opts(argc, argv, 3, (opt[]){{"--listen", &listen}, {"--tls-cert", &cert},
                                          {"--tls-key", &key}, {"--rate-limit", &rate},
                                          {"--burst", &burst}, {"--max-blob", &max_blob},
                                          {"--threads", &threads}, {"--ready-file", &ready},
                                          {"--db-pool", &db_pool},
                                          {"--max-connections", &max_conns},
                                          {"--max-connections-per-address", &per_addr},
                                          {"--header-timeout", &t_header},
                                          {"--body-timeout", &t_body},
                                          {"--idle-timeout", &t_idle},
                                          {"--page-memory", &page_mem},
                                          {"--send-min-rate", &min_rate}, {NULL, NULL}}) ||
        !listen)
        return usage();
    char host[256];
    cx_server_config cfg = {.rate = 50, .burst = 100, .threads = 4,
                            .header_timeout = CX_SERVER_HEADER_TIMEOUT,
                            .body_timeout = CX_SERVER_BODY_TIMEOUT,
                            .idle_timeout = CX_SERVER_IDLE_TIMEOUT,
                            .max_per_address = CX_SERVER_MAX_PER_ADDRESS};
    double v;
    if (parse_listen(listen, host, sizeof host, &cfg.port))
        return fprintf(stderr, "cortex-core: --listen wants HOST:PORT\n"), 2;
    cfg.host = host;
    cfg.tls_cert = cert;
    cfg.tls_key = key;
    if (rate) {
        if (parse_num(rate, 0, 1e9, &cfg.rate))
            return fprintf(stderr, "cortex-core: bad --rate-limit\n"), 2;
        if (!burst)
            cfg.burst = cfg.rate * 2 < 1 ? 1 : cfg.rate * 2;
    }
    if (burst && parse_num(burst, 1, 1e9, &cfg.burst))
        return fprintf(stderr, "cortex-core: bad --burst\n"), 2;
    if (threads) {
        if (parse_num(threads, 1, 64, &v))
            return fprintf(stderr, "cortex-core: bad --threads\n"), 2;
        cfg.threads = (unsigned)v;
    }
    int pool = 0; /* 0: one connection per HTTP and push thread, and one more */
    if (db_pool) {
        if (parse_num(db_pool, 1, 256, &v) || v != floor(v))
            return fprintf(stderr, "cortex-core: bad --db-pool (1 to 256)\n"), 2;
        pool = (int)v;
    }
    /* Whole numbers in range; 0 (derived from the descriptor limit) is
     * the default of --max-connections only, never a value to give. */
    struct { const char *text, *name; double min, max; unsigned *out; } nums[] = {
        {max_conns, "--max-connections", 1, 1000000, &cfg.max_connections},
        {per_addr, "--max-connections-per-address", 1, 1000000, &cfg.max_per_address},
        {t_header, "--header-timeout", 1, 3600, &cfg.header_timeout},
        {t_body, "--body-timeout", 1, 3600, &cfg.body_timeout},
        {t_idle, "--idle-timeout", 1, 3600, &cfg.idle_timeout},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!nums[i].text)
            continue;
        if (parse_num(nums[i].text, nums[i].min, nums[i].max, &v) || v != floor(v))
            return fprintf(stderr, "cortex-core: bad %s\n", nums[i].name), 2;
        *nums[i].out = (unsigned)v;
    }
    if (page_mem) {
        if (parse_num(page_mem, 1u << 20, 1ull << 40, &v))
            return fprintf(stderr, "cortex-core: bad --page-memory (1 MiB at least)\n"), 2;
        cfg.page_memory = (size_t)v;
    }
    if (min_rate && parse_num(min_rate, 1, 1e12, &cfg.send_min_rate))
        return fprintf(stderr, "cortex-core: bad --send-min-rate\n"), 2;
    /* The review app's session lifetime: 12 h, or shorter for a test. */
    const char *ttl = getenv("CORTEX_SESSION_TTL");
    if (ttl && *ttl) {
        if (parse_num(ttl, 1, 43200, &v) || v != floor(v))
            return fprintf(stderr, "cortex-core: bad CORTEX_SESSION_TTL (1 to 43200 seconds)\n"), 2;
        cfg.session_ttl = (unsigned)v;
    }
    cx_feed feed = {.max_blob = 16u << 20};
    if (max_blob) {
        if (parse_num(max_blob, 1, 1u << 30, &v))
            return fprintf(stderr, "cortex-core: bad --max-blob\n"), 2;
        feed.max_blob = (size_t)v;
    }
    if (!cert && !key && !cx_server_host_is_loopback(host)) {
        fprintf(stderr, "cortex-core: refusing to serve plain HTTP (no TLS) on %s: give --tls-cert and "
                        "--tls-key, or listen on a loopback address\n", host);
        return 2;
    }
    /* Block the stop signals before any thread starts, then wait for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cx_storage *st = NULL;
    cx_server *h = NULL;
    int r = open_dir(argv[2], 0, &st, feed.secret);
    if (r)
        return fail("serve");
    feed.st = st;
    /* each HTTP thread and each push thread (as many) holds at most one
     * transaction at a time: with one connection for each, and one more, a
     * pull never waits for a connection that pushes hold */
    if ((r = cx_storage_set_pool(st, pool ? pool : 2 * (int)cfg.threads + 1)))
        goto out;
    if ((r = cx_server_start(&h, &feed, &cfg)))
        goto out;
    log_info("event=listening host=%s port=%u tls=%s", host, (unsigned)cx_server_port(h),
             cert ? "yes" : "no");
    if (ready) {
        char text[16];
        int n = snprintf(text, sizeof text, "%u\n", (unsigned)cx_server_port(h));
        if ((r = cx_fs_write_atomic(ready, text, (size_t)n, 0644)))
            goto out;
    }
    int sig = 0;
    sigwait(&set, &sig);
    log_info("event=stopping signal=%d", sig);
out:
    cx_server_stop(h);
    cx_storage_free(st);
    sodium_memzero(feed.secret, sizeof feed.secret);
    return r ? fail("serve") : 0;
}

/* Options as parse_opts, and at most one positional argument (*pos). */
static int parse_opts_pos(int argc, char **argv, int i, const opt *opts, const char **pos) {
    for (; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (*pos) {
                fprintf(stderr, "cortex-core: unexpected argument: %s\n", argv[i]);
                return -1;
            }
            *pos = argv[i];
            continue;
        }
        const opt *o = opts;
        for (; o->name; o++)
            if (strcmp(argv[i], o->name) == 0)
                break;
        if (!o->name || i + 1 >= argc) {
            fprintf(stderr, "cortex-core: unknown option or missing value: %s\n", argv[i]);
            return -1;
        }
        *o->value = argv[++i];
    }
    return 0;
}

static int cmd_forget(int argc, char **argv) {
    const char *team = NULL, *reason = NULL, *id = NULL;
    if (argc < 3 || parse_opts_pos(argc, argv, 3, (opt[]){{"--team", &team},
                                                         {"--reason", &reason}, {NULL, NULL}},
                                   &id) ||
        !team || !id)
        return usage();
    cx_feed feed = {.max_blob = 16u << 20};
    int64_t seq = 0;
    int r = open_dir(argv[2], 0, &feed.st, feed.secret);
    if (r == 0)
        r = cx_feed_forget(&feed, team, LOCAL_ACTOR, id, reason, &seq);
    sodium_memzero(feed.secret, sizeof feed.secret);
    cx_storage_free(feed.st);
    if (r)
        return fail("forget");
    fprintf(stderr, "cortex-core: item %s of team %s forgotten (tombstone at seq %lld)\n", id,
            team, (long long)seq);
    return 0;
}

static int cmd_compact(int argc, char **argv) {
    const char *team = NULL, *before = NULL, *extra = NULL;
    if (argc < 3 || parse_opts_pos(argc, argv, 3, (opt[]){{"--team", &team},
                                                         {"--before-seq", &before},
                                                         {NULL, NULL}},
                                   &extra) ||
        !team || !before || extra)
        return usage();
    char *end = NULL;
    errno = 0;
    long long n = strtoll(before, &end, 10);
    if (errno || end == before || *end || n < 1)
        return fprintf(stderr, "cortex-core: --before-seq wants a seq >= 1\n"), 2;
    cx_feed feed = {.max_blob = 16u << 20};
    int64_t dropped = 0, horizon = 0;
    int r = open_dir(argv[2], 0, &feed.st, feed.secret);
    if (r == 0)
        r = cx_feed_compact(&feed, team, LOCAL_ACTOR, (int64_t)n, &dropped, &horizon);
    sodium_memzero(feed.secret, sizeof feed.secret);
    cx_storage_free(feed.st);
    if (r)
        return fail("compact");
    fprintf(stderr, "cortex-core: team %s: %lld tombstones dropped; horizon %lld (cursors below "
                    "it get 410)\n", team, (long long)dropped, (long long)horizon);
    return 0;
}

static int cmd_backup(int argc, char **argv) {
    if (argc != 4)
        return usage();
    const char *dir = argv[2], *dest = argv[3];
    cx_storage *st = NULL;
    uint8_t secret[CX_SECRET_LEN];
    char *db = NULL, *secpath = NULL;
    int r = dir_target(dir, &db);
    if (r == 0 && cx_storage_is_uri(db))
        r = cx_error_set(CX_EINVAL,
                         "%s keeps its data in PostgreSQL: back the database up with pg_dump "
                         "(restore with pg_restore) and keep a copy of %s; see cortex-core(8)",
                         dir, dir);
    free(db);
    db = NULL;
    if (r == 0)
        r = open_dir(dir, 0, &st, secret);
    if (r)
        goto out;
    if (access(dest, F_OK) == 0) {
        r = cx_error_set(CX_ECONFLICT, "%s already exists; back up to a new directory", dest);
        goto out;
    }
    if ((r = cx_fs_mkdir_p(dest, 0700)))
        goto out;
    db = cx_fs_join(dest, DB_FILE);
    if (!db || !(secpath = cx_fs_join(dest, "secret"))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_storage_backup(st, db)))
        goto out;
    chmod(db, 0600);
    char hex[CX_SECRET_LEN * 2 + 2];
    sodium_bin2hex(hex, sizeof hex, secret, CX_SECRET_LEN);
    size_t n = strlen(hex);
    hex[n] = '\n';
    r = cx_fs_write_atomic(secpath, hex, n + 1, 0600);
    sodium_memzero(hex, sizeof hex);
    if (r == 0)
        fprintf(stderr, "cortex-core: backed up %s to %s\n", dir, dest);
out:
    sodium_memzero(secret, sizeof secret);
    free(db);
    free(secpath);
    cx_storage_free(st);
    return r ? fail("backup") : 0;
}

static void migrate_progress(void *ud, const char *what, int64_t done) {
    (void)ud;
    if (done)
        fprintf(stderr, "cortex-core: migrate: %lld rows copied (now %s)\n", (long long)done,
                what);
    else
        fprintf(stderr, "cortex-core: migrate: copied; %s the target\n", what);
}

/* migrate DIR --database URL: DIR's SQLite core copied into PostgreSQL,
 * verified there, then DIR pointed at it (DIR/database). core.db is never
 * written: removing DIR/database points DIR back at it. */
static int cmd_migrate(int argc, char **argv) {
    const char *database = NULL;
    if (argc < 3 || parse_opts(argc, argv, 3, (opt[]){{"--database", &database},
                                                      {NULL, NULL}}) ||
        !database)
        return usage();
    int rc = database_uri_ok(database);
    if (rc)
        return rc;
    const char *dir = argv[2];
    char *src_path = NULL, *named = cx_fs_join(dir, DATABASE_FILE);
    cx_storage *src = NULL, *dst = NULL;
    uint8_t secret[CX_SECRET_LEN];
    cx_migrate_report rep;
    int r = named ? dir_target(dir, &src_path) : CX_ENOMEM;
    if (r == 0 && cx_storage_is_uri(src_path))
        r = cx_error_set(CX_ECONFLICT, "%s already keeps its data in PostgreSQL (%s names it)",
                         dir, named);
    if (r == 0)
        r = cx_keys_secret_load(dir, secret);
    if (r == 0)
        r = cx_storage_open(&src, src_path, CX_STORAGE_READONLY);
    if (r)
        goto out;
    /* the schema is made when missing; a target that holds core data is
     * refused by the copy, before it writes (so a failed copy can be run
     * again) */
    if ((r = cx_storage_open(&dst, database, CX_STORAGE_CREATE)))
        goto out;
    fprintf(stderr, "cortex-core: migrate: copying %s into the database (stop every node "
                    "serving %s first)\n", src_path, dir);
    if ((r = cx_migrate_copy(src, dst, secret, &rep, migrate_progress, NULL)))
        goto out;
    if ((r = write_database_file(named, database)))
        goto out;
    fprintf(stderr,
            "cortex-core: migrated and verified %lld teams, %lld keys, %lld items, %lld "
            "tombstones, %lld op records, %lld blobs (%lld bytes), %lld audit entries; %s now "
            "uses the database. %s is untouched: to go back, stop the core and remove %s\n",
            (long long)rep.teams, (long long)rep.keys, (long long)rep.items,
            (long long)rep.tombstones, (long long)rep.ops, (long long)rep.blobs,
            (long long)rep.blob_bytes, (long long)rep.audit, dir, src_path, named);
out:
    sodium_memzero(secret, sizeof secret);
    cx_storage_free(src);
    cx_storage_free(dst);
    free(src_path);
    free(named);
    return r ? fail("migrate") : 0;
}

static int cmd_verify_audit(int argc, char **argv) {
    if (argc != 3)
        return usage();
    cx_storage *st = NULL;
    uint8_t secret[CX_SECRET_LEN];
    int64_t entries = 0, bad = 0;
    int r = open_dir(argv[2], 0, &st, secret);
    cx_storage_tx *tx = NULL;
    if (r == 0 && (r = cx_storage_begin(st, false, &tx)) == 0) {
        r = cx_audit_verify(tx, secret, &entries, &bad);
        cx_storage_rollback(tx);
    }
    sodium_memzero(secret, sizeof secret);
    cx_storage_free(st);
    if (r == CX_ECONFLICT) {
        printf("audit chain BROKEN at entry %lld: %s\n", (long long)bad, cx_error_last());
        return 1;
    }
    if (r)
        return fail("verify-audit");
    printf("audit chain ok: %lld entries\n", (long long)entries);
    return 0;
}

int main(int argc, char **argv) {
    cx_log_init("cortex-core", CX_LOG_INFO);
    if (sodium_init() < 0) {
        fputs("cortex-core: libsodium failed to initialise\n", stderr);
        return 1;
    }
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc, argv);
    if (strcmp(cmd, "forget") == 0)
        return cmd_forget(argc, argv);
    if (strcmp(cmd, "compact") == 0)
        return cmd_compact(argc, argv);
    if (strcmp(cmd, "backup") == 0)
        return cmd_backup(argc, argv);
    if (strcmp(cmd, "verify-audit") == 0)
        return cmd_verify_audit(argc, argv);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc, argv);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage_to(stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if ((strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) && argc == 2) {
        printf("cortex-core %s\n", VERSION);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    return usage();
}
