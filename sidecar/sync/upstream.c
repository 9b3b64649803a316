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

/* Strips trailing slashes into a malloc'd copy. */
static char *norm_url(const char *url) {
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return strndup(url, n);
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

int cx_upstream_key_get(const char *url, char **key) {
    char *path = cx_upstream_credentials_path(), *text = NULL, *u = url ? norm_url(url) : NULL;
    int r;
    if (!path || !u) {
        r = path ? CX_ENOMEM : cx_error_set(CX_ENOTFOUND, "no home directory for credentials");
        goto out;
    }
    if ((r = read_creds(path, &text)))
        goto out;
    r = cx_error_set(CX_ENOTFOUND, "no key for %s; run `cortex login`", u);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        char *k = trim(tab + 1);
        if (strcmp(line, u) == 0 && *k) {
            if (!(*key = strdup(k)))
                r = CX_ENOMEM;
            else
                r = 0;
            break;
        }
    }
out:
    free(u);
    free(text);
    free(path);
    return r;
}

int cx_upstream_key_set(const char *url, const char *key) {
    if (!key || !*key || strlen(key) > MAX_KEY || strpbrk(key, "\t\r\n "))
        return cx_error_set(CX_EINVAL, "the key must be one word of at most %d bytes", MAX_KEY);
    int r = cx_upstream_check_url(url);
    if (r)
        return r;
    char *path = cx_upstream_credentials_path(), *text = NULL, *u = norm_url(url), *buf = NULL;
    if (!path || !u) {
        r = path ? CX_ENOMEM : cx_error_set(CX_EFAIL, "no home directory for credentials");
        goto out;
    }
    if ((r = read_creds(path, &text)))
        goto out;
    size_t cap = strlen(text) + strlen(u) + strlen(key) + 4, n = 0;
    if (!(buf = malloc(cap))) {
        r = CX_ENOMEM;
        goto out;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *tab = strchr(line, '\t');
        if (tab && (size_t)(tab - line) == strlen(u) && strncmp(line, u, strlen(u)) == 0)
            continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s\n", line);
    }
    n += (size_t)snprintf(buf + n, cap - n, "%s\t%s\n", u, key);
    char *dir = strdup(path);
    if (!dir) {
        r = CX_ENOMEM;
        goto out;
    }
    *strrchr(dir, '/') = '\0';
    r = cx_fs_mkdir_p(dir, 0700);
    free(dir);
    if (r == 0)
        r = cx_fs_write_atomic(path, buf, n, 0600);
out:
    free(buf);
    free(u);
    free(text);
    free(path);
    return r;
}
