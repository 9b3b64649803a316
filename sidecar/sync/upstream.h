/* SPDX-License-Identifier: Apache-2.0 */
/* Where a workspace syncs to, and the key it uses.
 *
 * The upstream (URL, optional CA bundle, optional request timeout) lives in
 * the workspace's state directory as `.cortex/upstream`, a small key=value
 * file written atomically. The API keys never live in the workspace: they
 * are kept in the user's config directory ($XDG_CONFIG_HOME, else
 * ~/.config)/cortex/credentials, mode 0600, one line per key:
 * "URL<TAB>KEY<TAB>TEAM<TAB>ROLE<TAB>PRINCIPAL" (team, role and principal
 * as the core's GET /v1/info named them when the key was stored), so that
 * one person holds several keys for one core: an agent key and a reviewer
 * key, or keys of two teams. A line of the first format, "URL<TAB>KEY", is
 * still read: a key whose team is not known until the core is asked.
 *
 * URLs are normalised wherever they are stored or looked up: scheme and
 * host in lower case, the scheme's default port and trailing slashes
 * removed. Keeping all this behind this small API lets the workspace part
 * move into the git-format workspace config later. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

typedef struct cx_upstream {
    char *url;     /* e.g. "https://core.example:8443", no trailing '/' */
    char *ca_file; /* absolute path of a PEM bundle, or NULL = system CAs */
    long timeout_s; /* whole-request timeout; 0 = the client's default */
} cx_upstream;

/* Reads `<state_dir>/upstream`. CX_ENOTFOUND when no upstream is set.
 * *out owned by the caller (cx_upstream_free). */
int cx_upstream_read(const char *state_dir, cx_upstream **out);

/* Writes `<state_dir>/upstream` atomically (0600). `url` is checked with
 * cx_upstream_check_url; `ca_file` may be NULL. */
int cx_upstream_write(const char *state_dir, const cx_upstream *u);

void cx_upstream_free(cx_upstream *u);

/* Checks a core URL: http or https, a host, no query or fragment, no user
 * info; plain http only to a loopback host (127.0.0.0/8, ::1, localhost).
 * CX_EINVAL with a message that says why. */
int cx_upstream_check_url(const char *url);

/* The path of the credentials file (malloc'd), or NULL without a home. */
char *cx_upstream_credentials_path(void);

/* `url` normalised (see above) into *out (malloc'd). CX_ENOMEM only. */
int cx_upstream_url_norm(const char *url, char **out);

#define CX_UPSTREAM_TEAM_MAX 64
#define CX_UPSTREAM_ROLE_MAX 16
#define CX_UPSTREAM_NAME_MAX 128
#define CX_UPSTREAM_KEYID_MAX 16

/* Who a key is at its core (GET /v1/info): "" for what is not known. */
typedef struct cx_upstream_who {
    char team[CX_UPSTREAM_TEAM_MAX + 1];
    char role[CX_UPSTREAM_ROLE_MAX + 1];
    char principal[CX_UPSTREAM_NAME_MAX + 1];
    char key_id[CX_UPSTREAM_KEYID_MAX + 1];
} cx_upstream_who;

/* A stored key with what is known of it (who.team "" for a line of the
 * first format). cx_upstream_cred_clear wipes and frees the key. */
typedef struct cx_upstream_cred {
    char *key;
    cx_upstream_who who;
} cx_upstream_cred;

void cx_upstream_cred_clear(cx_upstream_cred *c);

/* What a key is chosen for: push and pull (an agent key first, else an
 * admin's, else a reviewer's), or review decisions (a reviewer's first,
 * else an admin's; an agent key last, so that the core says no). */
typedef enum { CX_UPSTREAM_FOR_SYNC, CX_UPSTREAM_FOR_REVIEW } cx_upstream_use;

/* Chooses the stored key for `url` and `use`, of team `team` (the team the
 * workspace is bound to; NULL when it is bound to none). Keys whose team
 * is not known yet stay candidates (the caller asks the core and checks).
 * CX_ENOTFOUND when no key fits, with a message that says what to do: no
 * key at all for `url` (naming the near-misses, URLs with keys on the same
 * host or port, such as localhost vs 127.0.0.1), or only keys of other
 * teams (naming them). CX_ECONFLICT when `team` is NULL and keys of several
 * teams are held for `url`. *out untouched on failure. */
int cx_upstream_key_find(const char *url, const char *team, cx_upstream_use use,
                         cx_upstream_cred *out);

/* Some key stored for `url`, of any team (the one a sync of an unbound
 * workspace would choose; with keys of several teams, the first held):
 * *key malloc'd. CX_ENOTFOUND when none. */
int cx_upstream_key_get(const char *url, char **key);

/* Stores `key` for `url` with what the core said of it (`who`, may be NULL
 * or hold "" for what is unknown), beside the keys already held: it
 * replaces only the entry of the same URL, team and role, and any entry of
 * the same key. Values with control characters are refused (CX_EINVAL).
 * The file and its directory are created 0600 / 0700, the file written
 * atomically. */
int cx_upstream_key_add(const char *url, const char *key, const cx_upstream_who *who);

/* The keys held for `url`, as a JSON array of {"team", "role"} (null for
 * what is unknown) into *out (the caller's). */
int cx_upstream_key_list(const char *url, json_t **out);
