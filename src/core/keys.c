/* SPDX-License-Identifier: Apache-2.0 */
/* API keys and the server secret (see keys.h). */
#include "core/keys.h"

#include "core/audit.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET_FILE "secret"

int cx_keys_secret_load(const char *dir, uint8_t secret[CX_SECRET_LEN]) {
    char *path = cx_fs_join(dir, SECRET_FILE), *text = NULL;
    size_t len = 0;
    if (!path)
        return CX_ENOMEM;
    int r = cx_fs_read_file(path, 256, &text, &len);
    if (r)
        goto out;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    size_t got = 0;
    if (len != CX_SECRET_LEN * 2 ||
        sodium_hex2bin(secret, CX_SECRET_LEN, text, len, NULL, &got, NULL) != 0 ||
        got != CX_SECRET_LEN)
        r = cx_error_set(CX_EINVAL, "%s is damaged: expected %d hex digits", path,
                         CX_SECRET_LEN * 2);
out:
    if (text)
        sodium_memzero(text, len);
    free(text);
    free(path);
    return r;
}

int cx_keys_secret_create(const char *dir, uint8_t secret[CX_SECRET_LEN]) {
    char *path = cx_fs_join(dir, SECRET_FILE);
    if (!path)
        return CX_ENOMEM;
    char hex[CX_SECRET_LEN * 2 + 2];
    randombytes_buf(secret, CX_SECRET_LEN);
    sodium_bin2hex(hex, sizeof hex, secret, CX_SECRET_LEN);
    size_t n = strlen(hex);
    hex[n] = '\n';
    int r = cx_fs_write_atomic(path, hex, n + 1, 0600);
    sodium_memzero(hex, sizeof hex);
    free(path);
    return r;
}

bool cx_keys_team_valid(const char *team) {
    size_t n = team ? strlen(team) : 0;
    if (n == 0 || n > CX_TEAM_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = team[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool cx_keys_role_valid(const char *role) {
    return role && (strcmp(role, "agent") == 0 || strcmp(role, "reviewer") == 0 ||
                    strcmp(role, "admin") == 0);
}

static void key_hash(const uint8_t secret[CX_SECRET_LEN], const char *key, uint8_t out[32]) {
    crypto_generichash(out, 32, (const unsigned char *)key, strlen(key), secret, CX_SECRET_LEN);
}

int cx_keys_create(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *team,
                   const char *role, const char *name, char key[CX_KEY_MAX],
                   cx_storage_key *rec) {
    if (!cx_keys_team_valid(team))
        return cx_error_set(CX_EINVAL, "bad team '%s': use 1-64 of A-Z a-z 0-9 . _ -",
                            team ? team : "");
    if (!cx_keys_role_valid(role))
        return cx_error_set(CX_EINVAL, "bad role '%s': agent, reviewer or admin",
                            role ? role : "");
    if (!name || !*name || strlen(name) > CX_NAME_MAX)
        return cx_error_set(CX_EINVAL, "a key needs a name of 1-%d bytes", CX_NAME_MAX);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cx_error_set(CX_EINVAL, "a key name may not hold control characters");

    uint8_t idb[CX_KEYID_LEN / 2], sec[32];
    char sec64[64];
    cx_storage_key k;
    memset(&k, 0, sizeof k);
    randombytes_buf(idb, sizeof idb);
    randombytes_buf(sec, sizeof sec);
    sodium_bin2hex(k.key_id, sizeof k.key_id, idb, sizeof idb);
    sodium_bin2base64(sec64, sizeof sec64, sec, sizeof sec,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(key, CX_KEY_MAX, "cxk_%s_%s", k.key_id, sec64);
    sodium_memzero(sec, sizeof sec);
    sodium_memzero(sec64, sizeof sec64);
    snprintf(k.team, sizeof k.team, "%s", team);
    snprintf(k.role, sizeof k.role, "%s", role);
    snprintf(k.name, sizeof k.name, "%s", name);
    key_hash(secret, key, k.hash);
    k.created_ms = (int64_t)cx_clock_now_ms();
    int r = cx_storage_key_put(tx, &k);
    if (r) {
        sodium_memzero(key, CX_KEY_MAX);
        return r;
    }
    if (rec)
        *rec = k;
    return 0;
}

static int audit_key_event(cx_storage_tx *tx, const uint8_t *secret, const char *actor,
                           const char *action, const cx_storage_key *k) {
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "key_id", k->key_id, "team", k->team, "role",
                          k->role, "name", k->name);
    if (!d)
        return CX_ENOMEM;
    int r = cx_audit_append(tx, secret, k->team, actor, action, d);
    json_decref(d);
    return r;
}

typedef struct key_run {
    const uint8_t *secret;
    const char *team, *role, *name, *id, *actor;
    char *key;
    cx_storage_key rec;
} key_run;

static int issue_tx(cx_storage_tx *tx, void *ud) {
    key_run *k = ud;
    int r = cx_keys_create(tx, k->secret, k->team, k->role, k->name, k->key, &k->rec);
    return r ? r : audit_key_event(tx, k->secret, k->actor, "key.create", &k->rec);
}

int cx_keys_issue(cx_storage *st, const uint8_t secret[CX_SECRET_LEN], const char *team,
                  const char *role, const char *name, const char *actor, char key[CX_KEY_MAX],
                  cx_storage_key *rec) {
    key_run k = {.secret = secret, .team = team, .role = role, .name = name, .actor = actor,
                 .key = key};
    int r = cx_storage_run(st, true, issue_tx, &k);
    if (r)
        sodium_memzero(key, CX_KEY_MAX);
    else if (rec)
        *rec = k.rec;
    return r;
}

static int withdraw_tx(cx_storage_tx *tx, void *ud) {
    key_run *k = ud;
    int64_t now = (int64_t)cx_clock_now_ms();
    int r = cx_storage_key_get(tx, k->id, &k->rec);
    if (r == 0 && k->team && strcmp(k->rec.team, k->team) != 0)
        r = cx_error_set(CX_ENOTFOUND, "no key %s", k->id);
    if (r == 0)
        r = cx_storage_key_revoke(tx, k->id, now);
    if (r == 0)
        r = cx_storage_session_end_key(tx, k->id, now, NULL);
    if (r == 0) {
        k->rec.revoked_ms = now > 0 ? now : 1;
        r = audit_key_event(tx, k->secret, k->actor, "key.revoke", &k->rec);
    }
    return r;
}

int cx_keys_withdraw(cx_storage *st, const uint8_t secret[CX_SECRET_LEN], const char *key_id,
                     const char *team, const char *actor, cx_storage_key *rec) {
    key_run k = {.secret = secret, .team = team, .id = key_id, .actor = actor};
    int r = cx_storage_run(st, true, withdraw_tx, &k);
    if (r == 0 && rec)
        *rec = k.rec;
    return r;
}

int cx_keys_verify(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *key,
                   cx_storage_key *out) {
    size_t n = key ? strnlen(key, CX_KEY_MAX) : 0;
    if (n < 4 + CX_KEYID_LEN + 2 || n >= CX_KEY_MAX || strncmp(key, "cxk_", 4) != 0 ||
        key[4 + CX_KEYID_LEN] != '_')
        return cx_error_set(CX_ENOTFOUND, "malformed API key");
    char id[CX_KEYID_LEN + 1];
    memcpy(id, key + 4, CX_KEYID_LEN);
    id[CX_KEYID_LEN] = '\0';
    for (size_t i = 0; i < CX_KEYID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return cx_error_set(CX_ENOTFOUND, "malformed API key");
    cx_storage_key k;
    int r = cx_storage_key_get(tx, id, &k);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ENOTFOUND, "unknown API key");
    if (r)
        return r;
    uint8_t h[32];
    key_hash(secret, key, h);
    if (sodium_memcmp(h, k.hash, sizeof h) != 0)
        return cx_error_set(CX_ENOTFOUND, "unknown API key");
    if (k.revoked_ms)
        return cx_error_set(CX_ENOTFOUND, "this API key was revoked");
    *out = k;
    return 0;
}
