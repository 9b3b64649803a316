/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes what the review app's server side (src/core/web.h) reads from a
 * browser: the input is offered as a Cookie header, as an Origin header, as
 * a sign-in body (POST /v1/session) and as a key-making body (POST
 * /v1/keys, by an admin), against one in-memory SQLite storage renewed
 * every STORAGE_RESET_EVERY inputs. The 4 bytes "@KEY" in the input are
 * replaced by a valid reviewer key of the storage before the bodies are
 * offered, so that the inputs reach the paths of a key that is accepted.
 *
 * Checked, with abort() and the input on any violation:
 * - a cookie token is only ever found as CX_WEB_TOKEN_LEN base64url
 *   characters that follow "cortex_session=" in the header, and a found
 *   token that no sign-in made is refused (CX_ENOTFOUND);
 * - an Origin passes only when it is absent or exactly https://<host> (or
 *   http://<host> on a plain-HTTP core);
 * - sign-in fails only with CX_EINVAL (the body is not {"key": string}),
 *   CX_ENOTFOUND (the key is not accepted) or CX_ELIMIT; it succeeds only
 *   for the valid key, and then the new session checks out as that key's,
 *   with a CSRF token, and is refused once ended;
 * - key making fails only with CX_EINVAL or CX_ELIMIT, and a key it makes
 *   verifies as the role and team asked for;
 * - no call leaves the storage's transaction open (the next one would hang). */
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/keys.h"
#include "core/storage.h"
#include "core/web.h"
#include "fuzz.h"
#include "util/error.h"

#define STORAGE_RESET_EVERY 500
#define HOST "127.0.0.1:8443"
#define MARK "@KEY"

static cx_storage *st;
static cx_feed feed_;
static unsigned long inputs_seen;
static char valid_key[CX_KEY_MAX];
static cx_principal admin;
static const uint8_t *cur_data;
static size_t cur_size;

static void die(const char *why, const char *detail) {
    fuzz_die("fuzz-web", why, detail, cur_data, cur_size);
}

static void open_storage(void) {
    cx_storage_free(st);
    st = NULL;
    if (cx_storage_open(&st, ":memory:", CX_STORAGE_CREATE) != 0)
        die("cannot open an in-memory storage", cx_error_last());
    feed_.st = st;
    feed_.max_blob = 1u << 20;
    memset(feed_.secret, 0x5a, sizeof feed_.secret);
    char admin_key[CX_KEY_MAX];
    if (cx_keys_issue(st, feed_.secret, "T", "reviewer", "fuzz-reviewer", "fuzz", valid_key,
                      NULL) != 0 ||
        cx_keys_issue(st, feed_.secret, "T", "admin", "fuzz-admin", "fuzz", admin_key, &admin) != 0)
        die("seeding the keys failed", cx_error_last());
}

static void cookie(const char *text) {
    char tok[CX_WEB_TOKEN_LEN + 1];
    if (!cx_web_cookie_token(text, tok))
        return;
    if (strlen(tok) != CX_WEB_TOKEN_LEN)
        die("a cookie token of the wrong length", tok);
    for (const char *c = tok; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            die("a cookie token with a character outside base64url", tok);
    char want[sizeof CX_WEB_COOKIE + CX_WEB_TOKEN_LEN + 1];
    snprintf(want, sizeof want, CX_WEB_COOKIE "=%s", tok);
    if (!strstr(text, want))
        die("a cookie token that does not follow cortex_session= in the header", tok);
    cx_web_session s;
    int r = cx_web_session_check(&feed_, tok, &s);
    if (r != CX_ENOTFOUND)
        die("a token no sign-in made was not refused", cx_error_last());
}

static void origin(const char *text) {
    bool tls = cx_web_origin_ok(text, HOST, false), plain = cx_web_origin_ok(text, HOST, true);
    if (tls && strcmp(text, "https://" HOST) != 0)
        die("an Origin passed that is not https://" HOST, text);
    if (plain && !tls && strcmp(text, "http://" HOST) != 0)
        die("an Origin passed on a plain core that is not http://" HOST, text);
    if (!cx_web_origin_ok(NULL, HOST, false))
        die("no Origin header was refused", NULL);
}

static void signin(const char *body, size_t len) {
    char tok[CX_WEB_TOKEN_LEN + 1];
    cx_web_session s;
    int r = cx_web_session_create(&feed_, body, len, 60, tok, &s);
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *key = json_is_object(doc) ? json_object_get(doc, "key") : NULL;
    bool valid = json_is_string(key) && strcmp(json_string_value(key), valid_key) == 0;
    if (r != 0 && r != CX_EINVAL && r != CX_ENOTFOUND && r != CX_ELIMIT)
        die("sign-in failed with an unexpected code", cx_error_last());
    if (r == 0 && !valid)
        die("sign-in succeeded without the valid key", NULL);
    if (!doc && r != CX_EINVAL && r != CX_ELIMIT)
        die("a sign-in body that is not JSON was not refused as such", cx_error_last());
    if (valid && len <= CX_WEB_MAX_BODY && r != 0)
        die("the valid key did not sign in", cx_error_last());
    json_decref(doc);
    if (r)
        return;
    if (strcmp(s.who.role, "reviewer") != 0 || strlen(s.csrf) != CX_WEB_TOKEN_LEN)
        die("the session is not the key's, or has no CSRF token", s.who.role);
    cx_web_session again;
    if (cx_web_session_check(&feed_, tok, &again) != 0 || strcmp(again.csrf, s.csrf) != 0 ||
        strcmp(again.who.key_id, s.who.key_id) != 0)
        die("a new session does not check out", cx_error_last());
    if (cx_web_session_end(&feed_, tok) != 0)
        die("a new session could not be ended", cx_error_last());
    if (cx_web_session_check(&feed_, tok, &again) != CX_ENOTFOUND)
        die("an ended session still checks out", NULL);
}

static void make_key(const char *body, size_t len) {
    json_t *out = NULL;
    int r = cx_web_keys_create(&feed_, &admin, body, len, &out);
    if (r != 0 && r != CX_EINVAL && r != CX_ELIMIT)
        die("key making failed with an unexpected code", cx_error_last());
    if (r) {
        if (out)
            die("a failed key making left an answer", NULL);
        return;
    }
    const char *key = json_string_value(json_object_get(out, "key"));
    const char *role = json_string_value(json_object_get(out, "role"));
    cx_storage_tx *tx = NULL;
    cx_principal who;
    if (!key || !role || cx_storage_begin(st, false, &tx) != 0)
        die("a made key's answer is incomplete", NULL);
    int v = cx_keys_verify(tx, feed_.secret, key, &who);
    cx_storage_rollback(tx);
    if (v != 0 || strcmp(who.role, role) != 0 || strcmp(who.team, "T") != 0)
        die("a made key does not verify as its role and team", cx_error_last());
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (sodium_init() < 0)
        return 0;
    if (!st || ++inputs_seen % STORAGE_RESET_EVERY == 0)
        open_storage();
    cur_data = data;
    cur_size = size;
    /* the input as text (up to a NUL), as headers arrive */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cookie(text);
    origin(text);
    /* "@KEY" becomes the valid key: the input with it, as a body */
    size_t klen = strlen(valid_key), n = 0;
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(data + i, MARK, 4) == 0)
            n++;
    char *body = malloc(size + n * klen + 1);
    if (!body) {
        free(text);
        return 0;
    }
    size_t len = 0;
    for (size_t i = 0; i < size;) {
        if (i + 4 <= size && memcmp(data + i, MARK, 4) == 0) {
            memcpy(body + len, valid_key, klen);
            len += klen;
            i += 4;
        } else {
            body[len++] = (char)data[i++];
        }
    }
    body[len] = '\0';
    signin(body, len);
    make_key(body, len);
    free(body);
    free(text);
    return 0;
}
