/* SPDX-License-Identifier: Apache-2.0 */
/* Which workspace a process serves, and its state directory.
 *
 * The workspace is, in order: the directory given explicitly (--workspace),
 * $CORTEX_WORKSPACE, the working tree of the git repository enclosing the
 * current directory (libgit2), or the current directory itself. State lives
 * in <workspace>/.cortex/, which is added to .git/info/exclude in git. */
#pragma once

#include <stdbool.h>

typedef struct cx_workspace {
    char *root;      /* absolute, symlinks resolved */
    char *state_dir; /* <root>/.cortex */
    char *git_dir;   /* the repository's .git directory, or NULL outside git */
    char *name;      /* last component of root, e.g. "cortex" */
} cx_workspace;

/* Finds the workspace as above. With `create`, also creates the state
 * directory (0700) and the exclude entry. *out owned by the caller.
 * CX_ENOTFOUND when an explicit directory does not exist. */
int cx_workspace_find(cx_workspace **out, const char *explicit_dir, bool create);
void cx_workspace_free(cx_workspace *ws);

/* A copy of ws (*out owned by the caller); CX_ENOMEM. */
int cx_workspace_dup(cx_workspace **out, const cx_workspace *ws);

/* Does the repository's info/exclude keep the state directory out of git?
 * (false outside git) */
bool cx_workspace_excluded(const cx_workspace *ws);

/* Keeps `line` (a gitignore pattern, e.g. "/.claude/settings.local.json")
 * out of git through the repository's info/exclude, after a "# comment"
 * line, unless a line already says it (with or without the leading '/').
 * Best effort: 0 outside git or when the file cannot be written; CX_ENOMEM
 * or the libgit2 loader's error. */
int cx_workspace_exclude(const cx_workspace *ws, const char *line, const char *comment);
