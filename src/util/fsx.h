/* SPDX-License-Identifier: Apache-2.0 */
/* File-system helpers: paths, directories, bounded reads, atomic writes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Joins two path parts with one '/'. Returns a malloc'd string or NULL. */
char *cx_fs_join(const char *a, const char *b);

/* mkdir -p with `mode` for every directory created. 0 or CX_EIO. */
int cx_fs_mkdir_p(const char *path, mode_t mode);

/* Reads a whole regular file of at most `max` bytes into a malloc'd,
 * NUL-terminated buffer (*out, owned by the caller; *len excludes the NUL).
 * CX_ENOTFOUND, CX_ELIMIT (larger than max), CX_EINVAL (not a regular file),
 * CX_EIO. The one way a path named by a user, an agent or a config is read:
 * it is opened without blocking (O_NONBLOCK | O_NOCTTY) and its type checked
 * on the opened descriptor, so a FIFO, socket or device is refused at once
 * and never waited on. */
int cx_fs_read_file(const char *path, size_t max, char **out, size_t *len);

/* Writes data to path through a new temporary file in the same directory
 * (created with O_EXCL under a name unique to the process and call), fsynced
 * and renamed over the target, then fsyncs the directory: a reader sees the
 * old contents or the new, never part. The file gets `mode` less the umask.
 * CX_EIO (with the file and the reason), CX_ENOMEM; on failure the target is
 * untouched and no temporary file is left. The one atomic writer. */
int cx_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

enum {
    CX_FS_EXACT_MODE = 1 << 0,      /* the file gets `mode` exactly, umask or not */
    CX_FS_THROUGH_SYMLINK = 1 << 1, /* a symlink at path is kept: its target is replaced */
};

/* cx_fs_write_atomic with CX_FS_* flags (for files a person owns, such as
 * an agent's configuration, whose mode and links must stay as they were). */
int cx_fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode,
                          unsigned flags);

/* Resolves `path` (relative to `root` unless absolute) and checks that the
 * result, with symlinks followed, lies inside the real `root`. On success
 * *out is the malloc'd canonical path. CX_ENOTFOUND when it does not exist,
 * CX_EINVAL when it escapes root. */
int cx_fs_resolve_within(const char *root, const char *path, char **out);

/* Takes an exclusive flock() on `dir`/`name` (created 0600), retrying for up
 * to wait_ms (0 = one try): 1 and *fd when taken (close it to release; the
 * lock also ends with the process), 0 when another holds it, or CX_EIO /
 * CX_ENOMEM with a message naming the file. */
int cx_fs_lock(const char *dir, const char *name, unsigned wait_ms, int *fd);

/* True when path exists and is a directory. */
bool cx_fs_is_dir(const char *path);
