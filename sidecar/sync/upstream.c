/* SPDX-License-Identifier: Apache-2.0 */
/* The upstream file of a workspace and the user's credentials file (see
 * upstream.h). Both are parsed line by line with bounded sizes; anything
 * malformed is skipped, never fatal, except a missing url. */
#include "sync/upstream.h"

#include "util/error.h"
#include "util/fsx.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (64 * 1024)
#define MAX_URL 2048
#define MAX_KEY 1024

void cx_upstream_free(cx_upstream *u) {
    if (!u)
        return;
    free(u->url);
    free(u->ca_file);
    free(u);
}

static bool is_loopback(const char *host, size_t n) {
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    if (n == 5 && strncmp(host, "[::1]", 5) == 0)
        return true;
    if (n >= 4 && strncmp(host, "127.", 4) == 0) {
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)host[i]) && host[i] != '.')
                return false;
        return true;
    }
    return false;
}

int cx_upstream_check_url(const char *url) {
    if (!url || !*url)
        return cx_error_set(CX_EINVAL, "the upstream URL is empty");
    size_t len = strlen(url);
    if (len > MAX_URL)
        return cx_error_set(CX_EINVAL, "the upstream URL is longer than %d bytes", MAX_URL);
    bool tls;
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0)
        tls = true, rest = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        tls = false, rest = url + 7;
    else
        return cx_error_set(CX_EINVAL, "the upstream URL must start with https:// (or http:// to "
                                       "a loopback address): %s", url);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#' || *p == '@')
            return cx_error_set(CX_EINVAL, "the upstream URL may not contain spaces, control "
                                           "characters, '?', '#' or '@': %s", url);
    size_t hl;
    if (*rest == '[') {
        const char *e = strchr(rest, ']');
        if (!e)
            return cx_error_set(CX_EINVAL, "bad IPv6 host in %s", url);
        hl = (size_t)(e - rest) + 1;
    } else {
        hl = strcspn(rest, ":/");
    }
    if (hl == 0)
        return cx_error_set(CX_EINVAL, "the upstream URL has no host: %s", url);
    if (!tls && !is_loopback(rest, hl))
        return cx_error_set(CX_EINVAL, "plain http:// is only allowed to a loopback address; use "
                                       "https:// for %.*s", (int)hl, rest);
    return 0;
}

/* Splits a URL "scheme://host[:port][/path]": the scheme's length, the
 * host's offset and length, the port's offset and length (0 when none),
 * the path's offset. false when there is no "://". */
typedef struct url_parts {
    size_t scheme, host, host_len, port, port_len, path;
} url_parts;

static bool split_url(const char *url, url_parts *p) {
    const char *sep = strstr(url, "://");
    if (!sep)
        return false;
    *p = (url_parts){.scheme = (size_t)(sep - url), .host = (size_t)(sep - url) + 3};
    const char *h = url + p->host, *e;
    if (*h == '[' && (e = strchr(h, ']')))
        p->host_len = (size_t)(e - h) + 1;
    else
        p->host_len = strcspn(h, ":/");
    const char *after = h + p->host_len;
    if (*after == ':') {
        p->port = (size_t)(after - url) + 1;
        p->port_len = strcspn(after + 1, "/");
    }
    p->path = p->port ? p->port + p->port_len : (size_t)(after - url);
    return true;
}

/* The port a URL names, or its scheme's default ("" when unknown). */
static void url_port(const char *url, const url_parts *p, char *out, size_t cap) {
    if (p->port_len)
        snprintf(out, cap, "%.*s", (int)p->port_len, url + p->port);
    else if (p->scheme == 5 && strncasecmp(url, "https", 5) == 0)
        snprintf(out, cap, "443");
    else if (p->scheme == 4 && strncasecmp(url, "http", 4) == 0)
        snprintf(out, cap, "80");
    else
        snprintf(out, cap, "%s", "");
}

int cx_upstream_url_norm(const char *url, char **out) {
    size_t n = strlen(url);
    char *o = malloc(n + 1);
    if (!o)
        return CX_ENOMEM;
    url_parts p;
    if (!split_url(url, &p)) {
        memcpy(o, url, n + 1);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < p.host + p.host_len; i++) /* scheme://host */
            o[k++] = (char)tolower((unsigned char)url[i]);
        char def[8];
        url_parts q = p;
        q.port_len = 0;
        url_port(url, &q, def, sizeof def);
        bool keep = p.port_len && !(p.port_len == strlen(def) &&
                                    strncmp(url + p.port, def, p.port_len) == 0);
        if (keep) {
            o[k++] = ':';
            memcpy(o + k, url + p.port, p.port_len);
            k += p.port_len;
        }
        memcpy(o + k, url + p.path, n - p.path + 1);
    }
    size_t m = strlen(o);
    while (m > 0 && o[m - 1] == '/')
        o[--m] = '\0';
    *out = o;
    return 0;
}

static char *norm_url(const char *url) {
    char *o = NULL;
    return cx_upstream_url_norm(url, &o) == 0 ? o : NULL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int cx_upstream_read(const char *state_dir, cx_upstream **out) {
    char *path = cx_fs_join(state_dir, "upstream"), *text = NULL;
    cx_upstream *u = NULL;
    size_t len;
    int r;
    if (!path)
        return CX_ENOMEM;
    if ((r = cx_fs_read_file(path, MAX_FILE, &text, &len)))
        goto out;
    if (!(u = calloc(1, sizeof *u))) {
        r = CX_ENOMEM;
        goto out;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#')
            continue;
        *eq = '\0';
        char *k = trim(line), *v = trim(eq + 1);
        if (strcmp(k, "url") == 0 && !u->url && *v)
            u->url = norm_url(v);
        else if (strcmp(k, "ca_file") == 0 && !u->ca_file && *v)
            u->ca_file = strdup(v);
        else if (strcmp(k, "timeout") == 0 && *v) {
            char *end;
            errno = 0;
            long t = strtol(v, &end, 10);
            if (errno == 0 && *end == '\0' && t > 0 && t <= 3600)
                u->timeout_s = t;
        }
    }
    if (!u->url) {
        r = cx_error_set(CX_ENOTFOUND, "no upstream url in %s", path);
        goto out;
    }
    *out = u;
    u = NULL;
out:
    cx_upstream_free(u);
    free(text);
    free(path);
    return r;
}

int cx_upstream_write(const char *state_dir, const cx_upstream *u) {
    int r = cx_upstream_check_url(u->url);
    if (r)
        return r;
    if (u->ca_file && strpbrk(u->ca_file, "\n\r"))
        return cx_error_set(CX_EINVAL, "the CA file name may not contain a line break");
    char *path = cx_fs_join(state_dir, "upstream"), *url = norm_url(u->url);
    size_t cap = strlen(u->url) + (u->ca_file ? strlen(u->ca_file) : 0) + 128;
    char *buf = malloc(cap);
    if (!path || !url || !buf) {
        r = CX_ENOMEM;
        goto out;
    }
    int n = snprintf(buf, cap, "# Cortex upstream (written by `cortex remote set`)\nurl=%s\n", url);
    if (u->ca_file)
        n += snprintf(buf + n, cap - (size_t)n, "ca_file=%s\n", u->ca_file);
    if (u->timeout_s > 0)
        n += snprintf(buf + n, cap - (size_t)n, "timeout=%ld\n", u->timeout_s);
    if ((r = cx_fs_mkdir_p(state_dir, 0700)) == 0)
        r = cx_fs_write_atomic(path, buf, (size_t)n, 0600);
out:
    free(buf);
    free(url);
    free(path);
    return r;
}

char *cx_upstream_credentials_path(void) {
    const char *xdg = getenv("XDG_CONFIG_HOME");
    char *base = NULL;
    if (xdg && xdg[0] == '/') {
        base = strdup(xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home || home[0] != '/')
            return NULL;
        base = cx_fs_join(home, ".config");
    }
    if (!base)
        return NULL;
    char *dir = cx_fs_join(base, "cortex");
    free(base);
    if (!dir)
        return NULL;
    char *path = cx_fs_join(dir, "credentials");
    free(dir);
    return path;
}

/* Reads the credentials file into *text ("" when absent). */
static int read_creds(const char *path, char **text) {
    size_t len;
    int r = cx_fs_read_file(path, MAX_FILE, text, &len);
    if (r == CX_ENOTFOUND) {
        *text = strdup("");
        return *text ? 0 : CX_ENOMEM;
    }
    return r;
}

#define MAX_CREDS 512

/* One line of the credentials file, pointing into its text: url (as
 * written), key, then team, role, principal ("" for a line of the first
 * format). */
typedef struct cred_line {
    char *url, *key, *team, *role, *principal;
} cred_line;

/* Splits `text` (modified) into at most MAX_CREDS lines; malformed lines
 * and comments are skipped. */
static size_t parse_creds(char *text, cred_line *out) {
    static char empty[] = "";
    size_t n = 0;
    for (char *line = text, *next; line && *line && n < MAX_CREDS; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#')
            continue;
        char *f[5] = {line, NULL, empty, empty, empty};
        size_t nf = 1;
        for (char *t = strchr(line, '\t'); t && nf < 5; t = strchr(t, '\t')) {
            *t++ = '\0';
            f[nf++] = t;
        }
        if (nf < 2)
            continue;
        for (size_t i = 1; i < 5; i++)
            f[i] = trim(f[i]);
        if (!*f[0] || !*f[1])
            continue;
        out[n++] = (cred_line){f[0], f[1], f[2], f[3], f[4]};
    }
    return n;
}

/* The credentials file, parsed: `text` owns the strings of `l`, and is
 * wiped when freed (it holds keys). */
typedef struct creds {
    char *path, *text;
    size_t tlen;
    cred_line *l;
    size_t n;
} creds;

static void creds_free(creds *c) {
    if (c->text)
        explicit_bzero(c->text, c->tlen);
    free(c->text);
    free(c->l);
    free(c->path);
    *c = (creds){0};
}

/* Loads the credentials into *c (zeroed first; creds_free it whatever the
 * result). CX_ENOTFOUND when there is no home directory. */
static int creds_load(creds *c) {
    *c = (creds){0};
    if (!(c->path = cx_upstream_credentials_path()))
        return cx_error_set(CX_ENOTFOUND, "no home directory for credentials");
    int r = read_creds(c->path, &c->text);
    if (r)
        return r;
    c->tlen = strlen(c->text);
    if (!(c->l = calloc(MAX_CREDS, sizeof *c->l)))
        return CX_ENOMEM;
    c->n = parse_creds(c->text, c->l);
    return 0;
}

static bool same_url(const char *stored, const char *norm) {
    char *u = norm_url(stored);
    bool same = u && strcmp(u, norm) == 0;
    free(u);
    return same;
}

void cx_upstream_cred_clear(cx_upstream_cred *c) {
    if (!c)
        return;
    if (c->key) {
        explicit_bzero(c->key, strlen(c->key));
        free(c->key);
    }
    *c = (cx_upstream_cred){0};
}

/* The order of preference of a role for a use (lower first). */
static int rank(const char *role, cx_upstream_use use) {
    static const char *const sync[] = {"agent", "admin", "reviewer", ""};
    static const char *const review[] = {"reviewer", "admin", "", "agent"};
    const char *const *order = use == CX_UPSTREAM_FOR_SYNC ? sync : review;
    for (int i = 0; i < 4; i++)
        if (strcmp(role, order[i]) == 0)
            return i;
    return 4;
}

/* Appends `s` to a bounded list text ("a, b"), skipping duplicates. */
static void list_add(char *list, size_t cap, const char *s) {
    size_t n = strlen(s), len = strlen(list);
    for (const char *p = list; (p = strstr(p, s)); p += n)
        if ((p == list || (p - list >= 2 && p[-2] == ',')) && (p[n] == '\0' || p[n] == ','))
            return;
    snprintf(list + len, cap - len, "%s%s", len ? ", " : "", s);
}

/* The near-misses of `norm`: URLs holding keys on the same host or port. */
static void near_misses(const cred_line *l, size_t n, const char *norm, char *list, size_t cap) {
    url_parts w, p;
    char wport[16], port[16];
    list[0] = '\0';
    if (!split_url(norm, &w))
        return;
    url_port(norm, &w, wport, sizeof wport);
    for (size_t i = 0; i < n; i++) {
        char *u = norm_url(l[i].url);
        if (u && split_url(u, &p)) {
            url_port(u, &p, port, sizeof port);
            bool host = p.host_len == w.host_len &&
                        strncmp(u + p.host, norm + w.host, w.host_len) == 0;
            if (strcmp(u, norm) != 0 && (host || (*wport && strcmp(port, wport) == 0)))
                list_add(list, cap, u);
        }
        free(u);
    }
}

static void copy_who(cx_upstream_who *w, const cred_line *l) {
    snprintf(w->team, sizeof w->team, "%s", l->team);
    snprintf(w->role, sizeof w->role, "%s", l->role);
    snprintf(w->principal, sizeof w->principal, "%s", l->principal);
    /* a key "cxk_<16-character id>_<secret>" names its id */
    const char *k = l->key;
    if (strncmp(k, "cxk_", 4) == 0 && strlen(k) > 21 && k[20] == '_')
        snprintf(w->key_id, sizeof w->key_id, "%.16s", k + 4);
}

int cx_upstream_key_find(const char *url, const char *team, cx_upstream_use use,
                         cx_upstream_cred *out) {
    char *u = url ? norm_url(url) : NULL;
    creds cr = {0};
    int r;
    if (!u) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = creds_load(&cr)))
        goto out;
    const cred_line *l = cr.l;
    size_t n = cr.n;
    long best = -1;
    int best_rank = 99;
    size_t any = 0;
    char teams[256] = "", other[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (!same_url(l[i].url, u))
            continue;
        any++;
        if (*l[i].team)
            list_add(teams, sizeof teams, l[i].team);
        if (team && *l[i].team && strcmp(l[i].team, team) != 0) {
            list_add(other, sizeof other, l[i].team);
            continue;
        }
        int k = rank(l[i].role, use);
        if (k < best_rank)
            best = (long)i, best_rank = k;
    }
    if (any == 0) {
        char miss[512];
        near_misses(l, n, u, miss, sizeof miss);
        if (*miss)
            r = cx_error_set(CX_ENOTFOUND, "no key for %s; keys are stored for %s (the same core "
                             "under another name?): set the upstream to that URL with `cortex "
                             "remote set`, or run `cortex login` for %s", u, miss, u);
        else
            r = cx_error_set(CX_ENOTFOUND, "no key for %s; run `cortex login`", u);
        goto out;
    }
    if (best < 0) {
        r = cx_error_set(CX_ENOTFOUND, "this workspace is bound to team %s, but the keys stored "
                         "for %s are of team %s: log in with a key of team %s (`cortex login`), "
                         "or move this workspace to another team deliberately with `cortex "
                         "remote set %s --rebind`", team, u, other, team, u);
        goto out;
    }
    if (!team && strchr(teams, ',')) {
        r = cx_error_set(CX_ECONFLICT, "keys of several teams (%s) are stored for %s and this "
                         "workspace is bound to none yet: run `cortex login` here with the key "
                         "of this workspace's team", teams, u);
        goto out;
    }
    cx_upstream_cred c = {0};
    if (!(c.key = strdup(l[best].key))) {
        r = CX_ENOMEM;
        goto out;
    }
    copy_who(&c.who, &l[best]);
    *out = c;
    r = 0;
out:
    creds_free(&cr);
    free(u);
    return r;
}

int cx_upstream_key_get(const char *url, char **key) {
    cx_upstream_cred c = {0};
    int r = cx_upstream_key_find(url, NULL, CX_UPSTREAM_FOR_SYNC, &c);
    if (r == CX_ECONFLICT) {
        /* keys of several teams: any of them says that a login exists */
        char *u = norm_url(url);
        creds cr = {0};
        r = u ? creds_load(&cr) : CX_ENOMEM;
        for (size_t i = 0; r == 0 && i < cr.n; i++)
            if (same_url(cr.l[i].url, u)) {
                r = (c.key = strdup(cr.l[i].key)) ? 0 : CX_ENOMEM;
                break;
            }
        creds_free(&cr);
        free(u);
        if (r == 0 && !c.key)
            r = CX_ENOTFOUND;
    }
    if (r)
        return r;
    *key = c.key;
    return 0;
}

static bool clean_value(const char *v) {
    for (; v && *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

int cx_upstream_key_add(const char *url, const char *key, const cx_upstream_who *who) {
    if (!key || !*key || strlen(key) > MAX_KEY || strpbrk(key, "\t\r\n "))
        return cx_error_set(CX_EINVAL, "the key must be one word of at most %d bytes", MAX_KEY);
    cx_upstream_who w = {0};
    if (who)
        w = *who;
    if (!clean_value(w.team) || !clean_value(w.role) || !clean_value(w.principal))
        return cx_error_set(CX_EINVAL, "the core named the key's team, role or principal with "
                                       "control characters");
    int r = cx_upstream_check_url(url);
    if (r)
        return r;
    char *u = norm_url(url), *buf = NULL;
    creds cr = {0};
    size_t cap = 0, len = 0;
    if (!u) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = creds_load(&cr))) {
        if (!cr.path)
            r = cx_error_set(CX_EFAIL, "no home directory for credentials");
        goto out;
    }
    const cred_line *l = cr.l;
    size_t n = cr.n;
    const char *path = cr.path;
    cap = cr.tlen + 2 * MAX_CREDS + strlen(u) + strlen(key) + sizeof w + 256;
    if (!(buf = malloc(cap))) {
        r = CX_ENOMEM;
        goto out;
    }
    len += (size_t)snprintf(buf + len, cap - len,
                            "# Cortex API keys (cortex login), one a line: "
                            "URL, key, team, role, principal, tab-separated\n");
    for (size_t i = 0; i < n; i++) {
        bool here = same_url(l[i].url, u);
        if (here && strcmp(l[i].key, key) == 0)
            continue; /* the same key: stored again below with what is known now */
        if (here && *w.team && strcmp(l[i].team, w.team) == 0 && strcmp(l[i].role, w.role) == 0)
            continue; /* replaced: one key per upstream, team and role */
        if (*l[i].team || *l[i].role || *l[i].principal)
            len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\t%s\n", l[i].url,
                                    l[i].key, l[i].team, l[i].role, l[i].principal);
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\n", l[i].url, l[i].key);
    }
    len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\t%s\n", u, key, w.team, w.role,
                            w.principal);
    char *dir = strdup(path);
    if (!dir) {
        r = CX_ENOMEM;
        goto out;
    }
    *strrchr(dir, '/') = '\0';
    r = cx_fs_mkdir_p(dir, 0700);
    free(dir);
    if (r == 0)
        r = cx_fs_write_atomic(path, buf, len, 0600);
out:
    if (buf)
        explicit_bzero(buf, cap);
    free(buf);
    creds_free(&cr);
    free(u);
    return r;
}

int cx_upstream_key_list(const char *url, json_t **out) {
    char *u = url ? norm_url(url) : NULL;
    creds cr = {0};
    json_t *arr = json_array();
    int r;
    if (!u || !arr) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = creds_load(&cr))) {
        if (r == CX_ENOTFOUND) /* no home: no keys */
            r = 0;
        else
            goto out;
    }
    for (size_t i = 0; i < cr.n; i++) {
        const cred_line *l = &cr.l[i];
        if (!same_url(l->url, u))
            continue;
        json_t *o = json_pack("{s:s?, s:s?}", "team", *l->team ? l->team : NULL, "role",
                              *l->role ? l->role : NULL);
        if (!o || json_array_append_new(arr, o)) {
            r = CX_ENOMEM;
            goto out;
        }
    }
    *out = arr;
    arr = NULL;
out:
    json_decref(arr);
    creds_free(&cr);
    free(u);
    return r;
}
