/* SPDX-License-Identifier: Apache-2.0 */
/* The kv table (see kv.h): named text values, read on their own and
 * written either in a transaction of their own or, through cx_kv_put(),
 * inside another write of the store (the cursor goes in with the pull page
 * it follows). */
#include "store/kv.h"

#include "store/store-internal.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_KV_GET[] = "SELECT value FROM kv WHERE key = ?1";
static const char SQL_KV_SET[] =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2";
static const char SQL_KV_DEL[] = "DELETE FROM kv WHERE key = ?1";

int cx_kv_get(cx_store *s, const char *key, char **value) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_KV_GET, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = strdup((const char *)sqlite3_column_text(st, 0));
        r = *value ? 0 : CX_ENOMEM;
    } else if (rc == SQLITE_DONE) {
        r = CX_ENOTFOUND;
    } else {
        r = cx_store_sqlerr(s, rc, "reading sync state");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

int cx_kv_put(cx_store *s, const char *key, const char *value) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, value ? SQL_KV_SET : SQL_KV_DEL, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    r = cx_store_exec_stmt(s, st, "writing sync state");
    sqlite3_clear_bindings(st);
    return r;
}

int cx_kv_put_int(cx_store *s, const char *key, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return cx_kv_put(s, key, b);
}

int64_t cx_kv_int(cx_store *s, const char *key, int64_t def) {
    char *v = NULL;
    if (cx_kv_get(s, key, &v))
        return def;
    char *end;
    long long x = strtoll(v, &end, 10);
    bool bad = *end != '\0';
    free(v);
    return bad ? def : (int64_t)x;
}

typedef struct kv_ctx {
    const char *key, *value;
} kv_ctx;

static int kv_tx(cx_store *s, void *ud) {
    kv_ctx *c = ud;
    return cx_kv_put(s, c->key, c->value);
}

int cx_kv_set(cx_store *s, const char *key, const char *value) {
    kv_ctx c = {key, value};
    return cx_store_write(s, kv_tx, &c);
}

int cx_kv_cursor(cx_store *s, int64_t *out) {
    char *v = NULL;
    int r = cx_kv_get(s, CX_KV_CURSOR, &v);
    if (r == CX_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    if (r)
        return r;
    char *end;
    long long x = strtoll(v, &end, 10);
    *out = (*end || x < 0) ? 0 : (int64_t)x;
    free(v);
    return 0;
}

static int bind_tx(cx_store *s, void *ud) {
    const char *url = ud;
    char *cur = NULL;
    int r = cx_kv_get(s, CX_KV_UPSTREAM, &cur);
    if (r && r != CX_ENOTFOUND)
        return r;
    bool same = cur && strcmp(cur, url) == 0;
    free(cur);
    if (same)
        return 0;
    if ((r = cx_kv_put(s, CX_KV_UPSTREAM, url)))
        return r;
    return cx_kv_put(s, CX_KV_CURSOR, "0");
}

int cx_kv_bind_upstream(cx_store *s, const char *url) {
    return cx_store_write(s, bind_tx, (void *)url);
}

typedef struct team_ctx {
    const char *team, *key_id, *principal;
    char *bound;
} team_ctx;

static int bind_team_tx(cx_store *s, void *ud) {
    team_ctx *t = ud;
    char *cur = NULL;
    free(t->bound); /* a rerun after CX_EBUSY starts afresh */
    t->bound = NULL;
    int r = cx_kv_get(s, CX_KV_TEAM, &cur);
    if (r == 0) {
        if (strcmp(cur, t->team) == 0) {
            free(cur);
            return 0;
        }
        t->bound = cur;
        return CX_ECONFLICT;
    }
    if (r != CX_ENOTFOUND)
        return r;
    if ((r = cx_kv_put(s, CX_KV_TEAM, t->team)))
        return r;
    if ((r = cx_kv_put(s, CX_KV_TEAM_KEY_ID, t->key_id && *t->key_id ? t->key_id : NULL)))
        return r;
    return cx_kv_put(s, CX_KV_TEAM_PRINCIPAL, t->principal && *t->principal ? t->principal : NULL);
}

int cx_kv_bind_team(cx_store *s, const char *team, const char *key_id, const char *principal,
                    char **bound) {
    if (!team || !*team)
        return cx_error_set(CX_EINVAL, "no team to bind the workspace to");
    team_ctx t = {team, key_id, principal, NULL};
    int r = cx_store_write(s, bind_team_tx, &t);
    if (r == CX_ECONFLICT && t.bound) {
        *bound = t.bound;
        return r;
    }
    free(t.bound);
    return r;
}

static int unbind_team_tx(cx_store *s, void *ud) {
    (void)ud;
    int r;
    if ((r = cx_kv_put(s, CX_KV_TEAM, NULL)) || (r = cx_kv_put(s, CX_KV_TEAM_KEY_ID, NULL)) ||
        (r = cx_kv_put(s, CX_KV_TEAM_PRINCIPAL, NULL)))
        return r;
    return cx_kv_put(s, CX_KV_CURSOR, "0");
}

int cx_kv_unbind_team(cx_store *s) {
    return cx_store_write(s, unbind_team_tx, NULL);
}
