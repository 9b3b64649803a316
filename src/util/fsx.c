/* SPDX-License-Identifier: Apache-2.0 */
/* File-system helpers. */
#include "util/fsx.h"

#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *cx_fs_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    bool slash = !(la > 0 && a[la - 1] == '/'); /* "/" + "c" is "/c" */
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    if (slash)
        s[la] = '/';
    memcpy(s + la + slash, b, lb + 1);
    return s;
}

int cx_fs_mkdir_p(const char *path, mode_t mode) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return cx_error_set(CX_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return cx_error_set(CX_EIO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    if (!cx_fs_is_dir(path))
        return cx_error_set(CX_EIO, "%s exists and is not a directory", path);
    return 0;
}

bool cx_fs_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cx_fs_read_file(const char *path, size_t max, char **out, size_t *len) {
    int r = 0;
    cx_buf b;
    cx_buf_init(&b, max);
    /* O_NONBLOCK: opening a FIFO or a device must never wait (a FIFO's open
     * blocks until a writer comes); the type is checked on what was opened,
     * so a path swapped after a check cannot slip a special file in. It has
     * no effect on reading a regular file. O_NOCTTY: a terminal never
     * becomes our controlling terminal. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO) /* a socket, or a device with no driver */
        return cx_error_set(CX_EINVAL, "%s is not a regular file; only regular files are read",
                            path);
    if (fd < 0)
        return cx_error_set(errno == ENOENT ? CX_ENOTFOUND : CX_EIO, "cannot open %s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        r = cx_error_set(CX_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = cx_error_set(CX_EINVAL, "%s is not a regular file (%s); only regular files are read",
                         path, S_ISFIFO(st.st_mode)   ? "a FIFO"
                               : S_ISSOCK(st.st_mode) ? "a socket"
                               : S_ISCHR(st.st_mode)  ? "a character device"
                               : S_ISBLK(st.st_mode)  ? "a block device"
                               : S_ISDIR(st.st_mode)  ? "a directory"
                                                      : "a special file");
        goto out;
    }
    if ((unsigned long long)st.st_size > max) {
        r = cx_error_set(CX_ELIMIT, "%s is %lld bytes; the limit is %zu", path,
                         (long long)st.st_size, max);
        goto out;
    }
    for (;;) {
        /* The size stat() gave and one byte to see the end, then more if
         * the file grows while we read it; one byte past max is refused. */
        size_t room = max - b.len, want = 4096;
        if ((size_t)st.st_size + 1 > b.len + want)
            want = (size_t)st.st_size + 1 - b.len;
        if (want > room)
            want = room;
        char probe, *at = &probe;
        if (want && (r = cx_buf_reserve(&b, want, &at)) != 0)
            goto out;
        ssize_t k = read(fd, at, want ? want : 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = cx_error_set(CX_EIO, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (k == 0)
            break;
        if (!want) {
            r = cx_error_set(CX_ELIMIT, "%s grew past the limit of %zu bytes", path, max);
            goto out;
        }
        cx_buf_commit(&b, (size_t)k);
    }
    char *data = cx_buf_take(&b, len);
    if (!data)
        r = cx_error_set(CX_ENOMEM, "out of memory reading %s", path);
    else
        *out = data;
out:
    cx_buf_free(&b);
    close(fd);
    return r;
}

int cx_fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode,
                          unsigned flags) {
    static atomic_uint counter; /* temporary names unique across threads */
    int r = 0, fd = -1;
    bool created = false;
    char *real = NULL, *tmp = NULL;
    struct stat st;
    if ((flags & CX_FS_THROUGH_SYMLINK) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        !(real = realpath(path, NULL)))
        return cx_error_set(CX_EIO, "cannot resolve the link %s: %s", path, strerror(errno));
    const char *dst = real ? real : path;
    size_t tmpsize = strlen(dst) + 64;
    if (!(tmp = malloc(tmpsize))) {
        r = cx_error_set(CX_ENOMEM, "out of memory writing %s", dst);
        goto out;
    }
    /* O_EXCL: never write through a file (or link) that is already there. */
    for (int attempt = 0;; attempt++) {
        snprintf(tmp, tmpsize, "%s.cortex-tmp.%ld.%u", dst, (long)getpid(),
                 atomic_fetch_add(&counter, 1u));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0)
            break;
        if (errno != EEXIST || attempt >= 100) {
            r = cx_error_set(CX_EIO, "cannot create %s: %s", tmp, strerror(errno));
            goto out;
        }
    }
    created = true;
    if ((flags & CX_FS_EXACT_MODE) && fchmod(fd, mode) != 0) {
        r = cx_error_set(CX_EIO, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    for (const char *p = data; len > 0;) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = cx_error_set(CX_EIO, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        p += k;
        len -= (size_t)k;
    }
    if (fsync(fd) != 0) {
        r = cx_error_set(CX_EIO, "cannot fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        r = cx_error_set(CX_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dst) != 0) {
        r = cx_error_set(CX_EIO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        goto out;
    }
    created = false;
    /* Make the rename itself durable. */
    char *slash = strrchr(tmp, '/');
    if (slash) {
        slash[slash == tmp ? 1 : 0] = '\0';
        int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
out:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(real);
    return r;
}

int cx_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
    return cx_fs_write_atomic_ex(path, data, len, mode, 0);
}

int cx_fs_resolve_within(const char *root, const char *path, char **out) {
    char *joined = NULL, *real = NULL, *rroot = NULL;
    int r = 0;
    joined = path[0] == '/' ? strdup(path) : cx_fs_join(root, path);
    if (!joined)
        return CX_ENOMEM;
    rroot = realpath(root, NULL);
    if (!rroot) {
        r = cx_error_set(CX_EIO, "workspace %s cannot be resolved: %s", root, strerror(errno));
        goto out;
    }
    real = realpath(joined, NULL);
    if (!real) {
        r = cx_error_set(errno == ENOENT ? CX_ENOTFOUND : CX_EIO, "cannot resolve '%s': %s",
                         path, strerror(errno));
        goto out;
    }
    size_t n = strlen(rroot);
    bool inside = strncmp(real, rroot, n) == 0 &&
                  (real[n] == '/' || real[n] == '\0' || (n == 1 && rroot[0] == '/'));
    if (!inside) {
        r = cx_error_set(CX_EINVAL, "'%s' is outside the workspace %s; only files inside it can be used",
                         path, rroot);
        goto out;
    }
    *out = real;
    real = NULL;
out:
    free(joined);
    free(real);
    free(rroot);
    return r;
}

int cx_fs_lock(const char *dir, const char *name, unsigned wait_ms, int *fd) {
    char *path = cx_fs_join(dir, name);
    if (!path)
        return CX_ENOMEM;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        int e = errno;
        int r = cx_error_set(CX_EIO, "cannot open %s: %s", path, strerror(e));
        free(path);
        return r;
    }
    uint64_t deadline = cx_clock_mono_ms() + wait_ms;
    for (;;) {
        if (flock(f, LOCK_EX | LOCK_NB) == 0) {
            free(path);
            *fd = f;
            return 1;
        }
        int e = errno;
        if (e != EWOULDBLOCK && e != EINTR) {
            int r = cx_error_set(CX_EIO, "cannot lock %s: %s", path, strerror(e));
            free(path);
            close(f);
            return r;
        }
        if (cx_clock_mono_ms() >= deadline)
            break;
        cx_clock_sleep_ms(10);
    }
    free(path);
    close(f);
    return 0;
}
