/* SPDX-License-Identifier: Apache-2.0 */
/* Provenance and staleness: where an item was recorded (repository remote,
 * branch, HEAD commit) and the git blob id of each file it is about, and,
 * when the item is read later, which of those files differ now.
 *
 * The provenance object an item stores (every member optional):
 *
 *     {"remote": "https://host/org/repo.git",  credentials stripped
 *      "branch": "main",                        absent when HEAD is detached
 *      "head":   "<40 hex>",                    absent before the first commit
 *      "files":  [{"path": "src/a.c", "blob": "<40 hex>"},
 *                 {"path": "gone.c",  "missing": true},
 *                 {"path": "docs",    "directory": true},
 *                 {"path": "fifo",    "special": true},   never opened
 *                 {"path": "secret",  "unreadable": true},
 *                 {"path": "../x",    "outside": true},   never read
 *                 {"path": "[REDACTED:github-pat]/x", "redacted": true}]}
 *
 * Every text in it (remote, branch, paths) is redacted (src/redact): a
 * path that held a secret keeps no state and is never checked.
 *
 * Paths are relative to the workspace root (which is the repository's work
 * tree), normalised ("./a//b/" → "a/b") and de-duplicated; an absolute path
 * counts as inside when it lies under the workspace root as cx_workspace
 * reports it (the real path, symlinks resolved). A path that leaves the
 * workspace, lexically ("../x", "/etc/passwd") or through a symlinked
 * directory, is marked "outside" and never read, at capture and at check
 * time alike (stored provenance may come from another machine). A blob id is
 * git's id of the file's raw bytes, `git hash-object --no-filters FILE`
 * (identical to `git hash-object FILE` unless eol/crlf conversion is
 * configured); a symlink's is the id of its target text, as git stores it.
 *
 * Outside git there is no provenance at all, and nothing is ever stale.
 *
 * Thread-safety: a cx_prov holds an open libgit2 repository and a stat
 * cache and is used by one thread at a time; open one per thread (cortexd's
 * MCP thread and its worker thread each own one). */
#pragma once

#include "store/store.h"
#include "workspace.h"

#include <jansson.h>

typedef struct cx_prov cx_prov;

/* Opens the workspace's repository (ws is borrowed and must outlive *out).
 * Outside git this succeeds with a handle that captures nothing. CX_EFAIL
 * when libgit2 cannot be loaded or the repository cannot be opened (detail
 * in cx_error_last()); CX_ENOMEM. */
int cx_prov_open(cx_prov **out, const cx_workspace *ws);
void cx_prov_free(cx_prov *p);

/* True when the workspace is in a git repository (capture records something). */
bool cx_prov_in_git(const cx_prov *p);

/* Provenance at write time for an item about `files` (may be NULL or empty;
 * at most CX_STORE_MAX_FILES, else CX_ELIMIT). *out is a new object owned by
 * the caller, or NULL outside git. Never fails because of one file: each is
 * recorded with what could be seen of it. CX_ENOMEM; CX_EFAIL when the
 * repository itself cannot be read (detail in cx_error_last()). */
int cx_prov_capture(cx_prov *p, const cx_strv *files, json_t **out);

/* At read time: the paths in a stored provenance object (borrowed; NULL or
 * any malformed value is treated as "nothing recorded") whose state differs
 * now: another blob id, deleted, appeared, or no longer the same kind of
 * thing. *changed is a new array of path strings, owned by the caller, empty
 * when nothing changed, outside git, or when the item was recorded in a
 * different repository (remote URLs compared by host and path, so
 * git@host:o/r.git and https://host/o/r are one repository). Paths marked
 * "outside" never count. Only the first CX_STORE_MAX_FILES files are
 * examined. Files are re-hashed only when their stat (inode, size, mtime,
 * ctime) changed, or was so recent that the file system clock could hide an
 * edit. CX_ENOMEM. */
int cx_prov_changed(cx_prov *p, const json_t *provenance, json_t **changed);

/* `url` with credentials removed: "https://user:token@host/x?t=1" →
 * "https://host/x" (the user name too, as it is often the token itself; a
 * query or fragment is dropped from any scheme:// URL); "ssh://git:pw@host/x"
 * → "ssh://git@host/x" (user names kept for ssh, git+ssh, ssh+git); scp-like
 * "git@host:x" and local paths unchanged ("me:pw@host:x" → "me@host:x").
 * Returns a malloc'd string or NULL (out of memory). */
char *cx_prov_strip_url(const char *url);

/* The store's cx_stale_fn over cx_prov_changed (ud is a cx_prov): 1 with
 * *changed = the changed paths when the item is stale, 0 when fresh. */
int cx_prov_stale(void *ud, const json_t *provenance, json_t **changed);
