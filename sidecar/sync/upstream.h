/* SPDX-License-Identifier: Apache-2.0 */
/* Where a workspace syncs to, and the key it uses.
 *
 * The upstream (URL, optional CA bundle, optional request timeout) lives in
 * the workspace's state directory as `.cortex/upstream`, a small key=value
 * file written atomically. The API key never lives in the workspace: it is
 * kept per upstream URL in the user's config directory
 * ($XDG_CONFIG_HOME, else ~/.config)/cortex/credentials, mode 0600, one
 * "URL<TAB>KEY" line per upstream. Keeping both behind this tiny API lets
 * the workspace part move into the git-format workspace config later. */
#pragma once

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

/* The key stored for `url`: *key malloc'd. CX_ENOTFOUND when none. */
int cx_upstream_key_get(const char *url, char **key);

/* Stores (replaces) the key for `url`; the file and its directory are
 * created 0600 / 0700, the file written atomically. */
int cx_upstream_key_set(const char *url, const char *key);
