/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the upstream URL and the credentials file
 * (sidecar/sync/upstream.c): URL normalisation; keys held per upstream,
 * team and role side by side, chosen for sync (an agent key first) or for
 * review (a reviewer key first) of a workspace's team; lines of the first
 * format ("URL<TAB>KEY") read and replaced by their key; the near-miss
 * message naming the URLs that do have keys; the file kept 0600; and the
 * team binding of the store's kv (cx_kv_bind_team, cx_kv_unbind_team). */
#include "test.h"

#include "store/kv.h"
#include "store/store.h"
#include "sync/upstream.h"
#include "util/error.h"
#include "util/fsx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *root;

static void norm_is(const char *in, const char *want) {
    char *out = NULL;
    CX_CHECK_OK(cx_upstream_url_norm(in, &out));
    CX_CHECK_STR(out, want);
    free(out);
}

static void test_norm(void) {
    norm_is("HTTPS://Core.Example.COM:443/", "https://core.example.com");
    norm_is("https://core.example.com:8443///", "https://core.example.com:8443");
    norm_is("http://LOCALHOST:80", "http://localhost");
    norm_is("http://127.0.0.1:8080/", "http://127.0.0.1:8080");
    norm_is("https://[::1]:443/", "https://[::1]");
    norm_is("https://h:80", "https://h:80"); /* 80 is not https's default */
    norm_is("https://h/Base/Path/", "https://h/Base/Path");
}

static cx_upstream_who who_of(const char *team, const char *role, const char *name) {
    cx_upstream_who w = {0};
    snprintf(w.team, sizeof w.team, "%s", team);
    snprintf(w.role, sizeof w.role, "%s", role);
    snprintf(w.principal, sizeof w.principal, "%s", name);
    return w;
}

static void find_is(const char *url, const char *team, cx_upstream_use use, const char *key) {
    cx_upstream_cred c = {0};
    int r = cx_upstream_key_find(url, team, use, &c);
    CX_CHECK_INT(r, 0);
    CX_CHECK_STR(c.key, key);
    cx_upstream_cred_clear(&c);
}

static void test_creds(void) {
    char *home = cx_fs_join(root, "home");
    setenv("XDG_CONFIG_HOME", home, 1);
    const char *url = "https://core.example:8443";
    cx_upstream_who aa = who_of("alpha", "agent", "a"), ar = who_of("alpha", "reviewer", "r"),
                    ba = who_of("beta", "agent", "b");
    CX_CHECK_OK(cx_upstream_key_add("HTTPS://CORE.example:8443/", "k-alpha-agent", &aa));
    CX_CHECK_OK(cx_upstream_key_add(url, "k-alpha-rev", &ar));
    CX_CHECK_OK(cx_upstream_key_add(url, "k-beta-agent", &ba));
    char *path = cx_upstream_credentials_path();
    struct stat st;
    CX_CHECK(path && stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    find_is(url, "alpha", CX_UPSTREAM_FOR_SYNC, "k-alpha-agent");
    find_is(url, "alpha", CX_UPSTREAM_FOR_REVIEW, "k-alpha-rev");
    find_is(url, "beta", CX_UPSTREAM_FOR_SYNC, "k-beta-agent");
    find_is(url, "beta", CX_UPSTREAM_FOR_REVIEW, "k-beta-agent"); /* the core will say no */
    find_is("https://core.example:8443/", "alpha", CX_UPSTREAM_FOR_SYNC, "k-alpha-agent");

    cx_upstream_cred c = {0};
    cx_error_clear();
    CX_CHECK_INT(cx_upstream_key_find(url, "gamma", CX_UPSTREAM_FOR_SYNC, &c), CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "team gamma") && strstr(cx_error_last(), "alpha") &&
             strstr(cx_error_last(), "beta") && strstr(cx_error_last(), "--rebind"));
    cx_error_clear();
    CX_CHECK_INT(cx_upstream_key_find(url, NULL, CX_UPSTREAM_FOR_SYNC, &c), CX_ECONFLICT);
    CX_CHECK(strstr(cx_error_last(), "alpha, beta") != NULL);
    char *any = NULL;
    CX_CHECK_OK(cx_upstream_key_get(url, &any)); /* a login exists, of some team */
    CX_CHECK_STR(any, "k-alpha-agent");
    free(any);

    /* the same team and role: replaced; the others stay */
    CX_CHECK_OK(cx_upstream_key_add(url, "k-alpha-agent-2", &aa));
    find_is(url, "alpha", CX_UPSTREAM_FOR_SYNC, "k-alpha-agent-2");
    find_is(url, "alpha", CX_UPSTREAM_FOR_REVIEW, "k-alpha-rev");
    json_t *list = NULL;
    CX_CHECK_OK(cx_upstream_key_list(url, &list));
    CX_CHECK_INT(json_array_size(list), 3);
    json_decref(list);

    /* the near-miss: the same port under another host name */
    cx_error_clear();
    CX_CHECK_INT(cx_upstream_key_find("https://localhost:8443", NULL, CX_UPSTREAM_FOR_SYNC, &c),
                 CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "https://core.example:8443") != NULL);
    cx_error_clear();
    CX_CHECK_INT(cx_upstream_key_find("https://elsewhere:9", NULL, CX_UPSTREAM_FOR_SYNC, &c),
                 CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "core.example") == NULL);

    /* control characters from a core are not written into the file */
    cx_upstream_who bad = who_of("al\npha", "agent", "x");
    CX_CHECK_INT(cx_upstream_key_add(url, "k-bad", &bad), CX_EINVAL);

    /* a file of the first format: read (its team unknown, a candidate for
     * any team), then replaced by the same key with its team */
    char *text = NULL;
    const char legacy[] = "https://OLD.example:443/\tk-legacy\n";
    CX_CHECK_OK(cx_fs_write_atomic(path, legacy, sizeof legacy - 1, 0600));
    find_is("https://old.example", "alpha", CX_UPSTREAM_FOR_SYNC, "k-legacy");
    find_is("https://old.example", NULL, CX_UPSTREAM_FOR_REVIEW, "k-legacy");
    char *key = NULL;
    CX_CHECK_OK(cx_upstream_key_get("https://old.example/", &key));
    CX_CHECK_STR(key, "k-legacy");
    free(key);
    CX_CHECK_OK(cx_upstream_key_add("https://old.example", "k-legacy", &ba));
    size_t len = 0;
    CX_CHECK_OK(cx_fs_read_file(path, 1 << 16, &text, &len));
    CX_CHECK(text && strstr(text, "https://old.example\tk-legacy\tbeta\tagent\tb\n") &&
             !strstr(text, "OLD"));
    free(text);
    cx_error_clear();
    CX_CHECK_INT(cx_upstream_key_find("https://old.example", "alpha", CX_UPSTREAM_FOR_SYNC, &c),
                 CX_ENOTFOUND);
    free(path);
    free(home);
}

static void test_kv_team(void) {
    char *db = cx_fs_join(root, "ws");
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, db));
    if (!s) {
        free(db);
        return;
    }
    char *bound = NULL, *v = NULL;
    CX_CHECK_OK(cx_kv_bind_team(s, "alpha", "0123456789abcdef", "alice", &bound));
    CX_CHECK_OK(cx_kv_bind_team(s, "alpha", "ffffffffffffffff", "bob", &bound));
    CX_CHECK_OK(cx_kv_get(s, CX_KV_TEAM_KEY_ID, &v)); /* the first key is remembered */
    CX_CHECK_STR(v, "0123456789abcdef");
    free(v);
    CX_CHECK_OK(cx_kv_set(s, CX_KV_CURSOR, "42"));
    CX_CHECK_INT(cx_kv_bind_team(s, "beta", NULL, NULL, &bound), CX_ECONFLICT);
    CX_CHECK_STR(bound, "alpha");
    free(bound);
    int64_t cur = 0;
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 42);
    CX_CHECK_OK(cx_kv_unbind_team(s));
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 0);
    CX_CHECK_INT(cx_kv_get(s, CX_KV_TEAM, &v), CX_ENOTFOUND);
    CX_CHECK_OK(cx_kv_bind_team(s, "beta", NULL, NULL, &bound));
    cx_store_free(s);
    free(db);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root)
        return 1;
    test_norm();
    test_creds();
    test_kv_team();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
