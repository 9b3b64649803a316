/* SPDX-License-Identifier: Apache-2.0 */
/* API keys and the server secret. A key reads "cxk_<id>_<secret>": the id
 * (16 hex digits) finds the stored record, the whole key is checked against
 * a keyed BLAKE2b hash (keyed by the server secret, which never leaves the
 * data directory) in constant time. Keys themselves are never stored. */
#pragma once

#include "core/storage.h"

#include <stddef.h>
#include <stdint.h>

#define CX_SECRET_LEN 32
#define CX_KEY_MAX 128 /* longer bearer tokens are refused unread */

/* Reads DIR/secret (64 hex digits, mode 0600), or with create makes it
 * (failing if it exists). CX_ENOTFOUND, CX_EIO, CX_EINVAL (damaged). */
int cx_keys_secret_load(const char *dir, uint8_t secret[CX_SECRET_LEN]);
int cx_keys_secret_create(const char *dir, uint8_t secret[CX_SECRET_LEN]);

/* True for a team name: 1-64 of [A-Za-z0-9._-]. And for a role. */
bool cx_keys_team_valid(const char *team);
bool cx_keys_role_valid(const char *role);

/* Makes a new key for team/role/name, stores its record (inside the
 * caller's transaction) and writes the key text to key[CX_KEY_MAX]. */
int cx_keys_create(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *team,
                   const char *role, const char *name, char key[CX_KEY_MAX],
                   cx_storage_key *rec);

/* The whole of making a key, for every caller (cortex-core keys create,
 * init, POST /v1/keys): the key and its audit entry "key.create" by
 * `actor`, in one write transaction (run again on CX_ERETRY, then with a
 * new key). key[CX_KEY_MAX] receives the key text: the caller shows it
 * once and zeroes it. CX_EINVAL for a bad team, role or name. */
int cx_keys_issue(cx_storage *st, const uint8_t secret[CX_SECRET_LEN], const char *team,
                  const char *role, const char *name, const char *actor, char key[CX_KEY_MAX],
                  cx_storage_key *rec);

/* The whole of revoking a key, for every caller (cortex-core keys revoke,
 * POST /v1/keys/{id}/revoke): marks it revoked, ends its browser sessions
 * and appends "key.revoke" by `actor`, in one write transaction. With
 * `team` non-NULL, a key of another team is CX_ENOTFOUND as an unknown
 * one is. CX_ECONFLICT when it was revoked already. *rec (may be NULL)
 * is the key's record after the change. */
int cx_keys_withdraw(cx_storage *st, const uint8_t secret[CX_SECRET_LEN], const char *key_id,
                     const char *team, const char *actor, cx_storage_key *rec);

/* Checks a presented key. On success *out is its record. CX_ENOTFOUND for
 * a malformed, unknown, wrong or revoked key (one code: the caller answers
 * 401 alike), with the detail in cx_error_last(). */
int cx_keys_verify(cx_storage_tx *tx, const uint8_t secret[CX_SECRET_LEN], const char *key,
                   cx_storage_key *out);
