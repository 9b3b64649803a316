/* SPDX-License-Identifier: Apache-2.0 */
/* The review web app's server side (see web.h): the asset lookup, the
 * security headers, browser sessions and their CSRF tokens, and the keys
 * API. Sessions live in the database (storage.h), so a session made at one
 * node is honoured at every node over the same database; only a keyed hash
 * of the cookie's token is stored. Every request re-reads the session and
 * its key: revoking a key, from any node or the command line, ends its
 * sessions at the next request. */
#include "core/web.h"

#include "core/keys.h"

#include "util/clock.h"
#include "util/error.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

const cx_web_header cx_web_security_headers[] = {
    {"Content-Security-Policy", CX_WEB_CSP},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {NULL, NULL},
};

const cx_web_asset *cx_web_asset_find(const char *name) {
    if (!name || !*name || strchr(name, '/'))
        return NULL;
    for (const cx_web_asset *a = cx_web_assets; a->path; a++)
        if (strcmp(a->path, name) == 0)
            return a;
    return NULL;
}

/* --- tokens and cookies ------------------------------------------------- */

static bool b64url_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

bool cx_web_cookie_token(const char *header, char token[CX_WEB_TOKEN_LEN + 1]) {
    static const char name[] = CX_WEB_COOKIE;
    const size_t nlen = sizeof name - 1;
    if (!header)
        return false;
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *start = p;
        while (*p && *p != ';')
            p++;
        /* one pair is [start, p) */
        const char *eq = memchr(start, '=', (size_t)(p - start));
        if (!eq || (size_t)(eq - start) != nlen || memcmp(start, name, nlen) != 0)
            continue;
        const char *v = eq + 1, *end = p;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end - v != CX_WEB_TOKEN_LEN)
            continue;
        bool ok = true;
        for (const char *c = v; c < end && ok; c++)
            ok = b64url_char(*c);
        if (!ok)
            continue;
        memcpy(token, v, CX_WEB_TOKEN_LEN);
        token[CX_WEB_TOKEN_LEN] = '\0';
        return true;
    }
    return false;
}

/* A fresh random token: 32 bytes in base64url without padding. */
static void new_token(char out[CX_WEB_TOKEN_LEN + 1]) {
    uint8_t raw[32];
    char b64[CX_WEB_TOKEN_LEN + 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    memcpy(out, b64, CX_WEB_TOKEN_LEN);
    out[CX_WEB_TOKEN_LEN] = '\0';
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(b64, sizeof b64);
}

/* What the database keeps of a token: BLAKE2b-256 keyed by the server
 * secret, over a domain label and the token, in hex. */
static void token_hash(const uint8_t secret[CX_SECRET_LEN], const char *token, char out[65]) {
    static const char label[] = "cortex-core session v1:";
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, secret, CX_SECRET_LEN, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)label, sizeof label - 1);
    crypto_generichash_update(&st, (const unsigned char *)token, strlen(token));
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(out, 65, h, sizeof h);
}

bool cx_web_set_cookie(char *out, size_t cap, const char *token, int64_t max_age) {
    int n = snprintf(out, cap,
                     CX_WEB_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%lld",
                     token, (long long)max_age);
    return n > 0 && (size_t)n < cap;
}

bool cx_web_csrf_ok(const cx_web_session *s, const char *header) {
    if (!header || strlen(header) != CX_WEB_TOKEN_LEN || strlen(s->csrf) != CX_WEB_TOKEN_LEN)
        return false;
    return sodium_memcmp(header, s->csrf, CX_WEB_TOKEN_LEN) == 0;
}

bool cx_web_origin_ok(const char *origin, const char *host, bool plain) {
    if (!origin)
        return true;
    if (!host || !*host)
        return false;
    if (strncmp(origin, "https://", 8) == 0)
        return strcmp(origin + 8, host) == 0;
    return plain && strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0;
}

/* --- sessions ------------------------------------------------------------- */

static void iso(int64_t ms, char out[CX_ISO_LEN]) { cx_clock_format((uint64_t)ms, out); }

json_t *cx_web_session_json(const cx_web_session *s) {
    char at[CX_ISO_LEN];
    iso(s->expires_ms, at);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "team", s->who.team, "role", s->who.role,
                     "principal", s->who.name, "key_id", s->who.key_id, "csrf", s->csrf,
                     "expires_at", at);
}

typedef struct signin_run {
    cx_feed *f;
    const char *key;
    int64_t ttl_ms;
    char token[CX_WEB_TOKEN_LEN + 1];
    cx_web_session out;
} signin_run;

static int signin_tx(cx_storage_tx *tx, void *ud) {
    signin_run *run = ud;
    cx_principal who;
    int r = cx_keys_verify(tx, run->f->secret, run->key, &who);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ENOTFOUND, "the API key was not accepted");
    if (r)
        return r;
    int64_t now = (int64_t)cx_clock_now_ms();
    cx_storage_session s;
    memset(&s, 0, sizeof s);
    new_token(run->token);
    token_hash(run->f->secret, run->token, s.token_hash);
    snprintf(s.key_id, sizeof s.key_id, "%s", who.key_id);
    snprintf(s.team, sizeof s.team, "%s", who.team);
    new_token(s.csrf);
    s.created_ms = now;
    s.expires_ms = now + run->ttl_ms;
    if ((r = cx_storage_session_put(tx, &s)))
        return r;
    /* bounded housekeeping: sessions that ended or expired a day ago */
    if ((r = cx_storage_session_purge(tx, now - 86400000, CX_WEB_PURGE_BATCH, NULL)))
        return r;
    run->out.who = who;
    snprintf(run->out.csrf, sizeof run->out.csrf, "%s", s.csrf);
    run->out.expires_ms = s.expires_ms;
    return 0;
}

/* A sign-in or keys request body (untrusted, len bytes, not NUL-terminated)
 * as a JSON document (*doc the caller's): CX_ELIMIT over CX_WEB_MAX_BODY,
 * CX_EINVAL for malformed JSON or duplicate member names. */
static int parse_body(const char *body, size_t len, json_t **doc) {
    if (len > CX_WEB_MAX_BODY)
        return cx_error_set(CX_ELIMIT, "the request body is over %d bytes", CX_WEB_MAX_BODY);
    json_error_t err;
    *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (!*doc)
        return cx_error_set(CX_EINVAL, "malformed JSON: %s (line %d, column %d)", err.text,
                            err.line, err.column);
    return 0;
}

int cx_web_session_create(cx_feed *f, const char *body, size_t len, int64_t ttl_s,
                          char token[CX_WEB_TOKEN_LEN + 1], cx_web_session *out) {
    json_t *doc = NULL;
    int r = parse_body(body, len, &doc);
    if (r)
        return r;
    json_t *key = json_is_object(doc) ? json_object_get(doc, "key") : NULL;
    if (!json_is_string(key)) {
        r = cx_error_set(CX_EINVAL, "key: a string is required");
        goto out;
    }
    signin_run run = {.f = f, .key = json_string_value(key),
                      .ttl_ms = (ttl_s > 0 ? ttl_s : CX_WEB_SESSION_TTL_S) * 1000};
    r = cx_storage_run(f->st, true, signin_tx, &run);
    if (r == 0) {
        memcpy(token, run.token, sizeof run.token);
        *out = run.out;
    }
    sodium_memzero(run.token, sizeof run.token);
out:
    json_decref(doc);
    return r;
}

int cx_web_session_check(cx_feed *f, const char *token, cx_web_session *out) {
    char hash[65];
    token_hash(f->secret, token, hash);
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(f->st, false, &tx);
    if (r)
        return r;
    cx_storage_session s;
    cx_principal who;
    int64_t now = (int64_t)cx_clock_now_ms();
    r = cx_storage_session_get(tx, hash, &s);
    if (r == CX_ENOTFOUND)
        r = cx_error_set(CX_ENOTFOUND, "no such session; sign in again");
    else if (r == 0 && s.ended_ms)
        r = cx_error_set(CX_ENOTFOUND, "the session has ended; sign in again");
    else if (r == 0 && now >= s.expires_ms)
        r = cx_error_set(CX_ENOTFOUND, "the session has expired; sign in again");
    if (r == 0) {
        r = cx_storage_key_get(tx, s.key_id, &who);
        if (r == CX_ENOTFOUND || (r == 0 && (who.revoked_ms || strcmp(who.team, s.team) != 0)))
            r = cx_error_set(CX_ENOTFOUND, "the session's API key was revoked; sign in again");
    }
    cx_storage_rollback(tx);
    if (r)
        return r;
    out->who = who;
    snprintf(out->csrf, sizeof out->csrf, "%s", s.csrf);
    out->expires_ms = s.expires_ms;
    return 0;
}

typedef struct end_run {
    const char *hash;
} end_run;

static int end_tx(cx_storage_tx *tx, void *ud) {
    end_run *run = ud;
    return cx_storage_session_end(tx, run->hash, (int64_t)cx_clock_now_ms());
}

int cx_web_session_end(cx_feed *f, const char *token) {
    char hash[65];
    token_hash(f->secret, token, hash);
    end_run run = {hash};
    return cx_storage_run(f->st, true, end_tx, &run);
}

/* --- keys ------------------------------------------------------------------- */

static int admin_only(const cx_principal *p) {
    return strcmp(p->role, "admin") == 0
               ? 0
               : cx_error_set(CX_EFORBIDDEN, "only an admin key may manage keys");
}

static json_t *key_json(const cx_storage_key *k) {
    char created[CX_ISO_LEN], revoked[CX_ISO_LEN];
    iso(k->created_ms, created);
    if (k->revoked_ms)
        iso(k->revoked_ms, revoked);
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "key_id", k->key_id, "name", k->name, "role",
                     k->role, "created_at", created, "revoked_at",
                     k->revoked_ms ? json_string(revoked) : json_null());
}

typedef struct list_run {
    const char *team;
    json_t *keys;
} list_run;

static int list_one(void *ud, const cx_storage_key *k) {
    list_run *run = ud;
    if (strcmp(k->team, run->team) != 0)
        return 0;
    json_t *j = key_json(k);
    return j && json_array_append_new(run->keys, j) == 0 ? 0 : CX_ENOMEM;
}

int cx_web_keys_list(cx_feed *f, const cx_principal *p, json_t **out) {
    int r = admin_only(p);
    if (r)
        return r;
    list_run run = {p->team, json_array()};
    if (!run.keys)
        return CX_ENOMEM;
    cx_storage_tx *tx = NULL;
    if ((r = cx_storage_begin(f->st, false, &tx)) == 0) {
        r = cx_storage_key_list(tx, list_one, &run);
        cx_storage_rollback(tx);
    }
    json_t *o = r ? NULL : json_pack("{s:o}", "keys", run.keys);
    if (r || !o) {
        if (r)
            json_decref(run.keys);
        return r ? r : CX_ENOMEM;
    }
    *out = o;
    return 0;
}

int cx_web_keys_create(cx_feed *f, const cx_principal *p, const char *body, size_t len,
                       json_t **out) {
    int r = admin_only(p);
    if (r)
        return r;
    json_t *doc = NULL;
    if ((r = parse_body(body, len, &doc)))
        return r;
    char key[CX_KEY_MAX];
    json_t *name = json_object_get(doc, "name"), *role = json_object_get(doc, "role");
    if (!json_is_object(doc) || !json_is_string(name)) {
        r = cx_error_set(CX_EINVAL, "name: a string is required");
        goto out;
    }
    if (!json_is_string(role) || !cx_keys_role_valid(json_string_value(role))) {
        r = cx_error_set(CX_EINVAL, "role: agent, reviewer or admin");
        goto out;
    }
    cx_storage_key rec;
    r = cx_keys_issue(f->st, f->secret, p->team, json_string_value(role),
                      json_string_value(name), p->name, key, &rec);
    if (r)
        goto out;
    char created[CX_ISO_LEN];
    iso(rec.created_ms, created);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key, "key_id", rec.key_id, "name",
                          rec.name, "role", rec.role, "created_at", created);
    sodium_memzero(key, sizeof key);
    if (!o) {
        r = CX_ENOMEM;
        goto out;
    }
    *out = o;
out:
    json_decref(doc);
    return r;
}

int cx_web_keys_revoke(cx_feed *f, const cx_principal *p, const char *key_id, json_t **out) {
    int r = admin_only(p);
    if (r)
        return r;
    size_t n = strlen(key_id);
    bool ok = n == CX_KEYID_LEN;
    for (size_t i = 0; ok && i < n; i++)
        ok = (key_id[i] >= '0' && key_id[i] <= '9') || (key_id[i] >= 'a' && key_id[i] <= 'f');
    if (!ok)
        return cx_error_set(CX_ENOTFOUND, "no such key");
    cx_storage_key rec;
    r = cx_keys_withdraw(f->st, f->secret, key_id, p->team, p->name, &rec);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ENOTFOUND, "no such key");
    if (r)
        return r;
    char at[CX_ISO_LEN];
    iso(rec.revoked_ms, at);
    json_t *o = json_pack("{s:s, s:s}", "key_id", rec.key_id, "revoked_at", at);
    if (!o)
        return CX_ENOMEM;
    *out = o;
    return 0;
}
