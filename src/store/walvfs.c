/* SPDX-License-Identifier: Apache-2.0 */
/* "cortex-wal": SQLite's default VFS with one change, for the store's
 * connections: a frame of the write-ahead log reaches the file in one
 * write() instead of two. SQLite writes each frame as its 24-byte header
 * and then its page (wal.c, walWriteOneFrame), the two at adjacent
 * offsets, so a commit of 11 pages cost 22 system calls; on a virtual
 * machine where a system call costs microseconds that was a large share of
 * an `observe`. Here a 24-byte write to a WAL file is held until the next
 * call on that file: when that is the write of the bytes right after it
 * (always, for a frame), both go down in one write of header and page;
 * otherwise the held header is written first, unchanged. Every other call
 * on the file (read, sync, size, truncate, close, file control) writes a
 * held header first, so nothing SQLite reads, syncs or makes visible to
 * other connections can miss it: a commit becomes visible through the
 * wal-index in shared memory only after its last frame (header and page)
 * was written. The bytes, their order in the file and the durability are
 * SQLite's own (synchronous=NORMAL: in the OS's page cache when the commit
 * returns). A WAL file's handle belongs to one connection, used by one
 * thread at a time, so the held header needs no lock. */
#include "store/store-internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HEADER 24

typedef struct wal_file {
    sqlite3_file base;    /* methods: wal_methods, or plain_methods */
    sqlite3_file *real;   /* the default VFS's file, right after this struct */
    bool held;            /* a frame header waits in `header` */
    sqlite3_int64 held_at;
    unsigned char header[FRAME_HEADER];
    unsigned char *frame; /* header + page, for the combined write */
    size_t frame_cap;
} wal_file;

static sqlite3_vfs *real_vfs;
static sqlite3_io_methods wal_methods, plain_methods;

static sqlite3_file *R(sqlite3_file *f) { return ((wal_file *)f)->real; }

/* Writes a held header as SQLite asked for it. */
static int flush(wal_file *w) {
    if (!w->held)
        return SQLITE_OK;
    w->held = false;
    return w->real->pMethods->xWrite(w->real, w->header, FRAME_HEADER, w->held_at);
}

#define FLUSH_OR_RETURN(f)                                                                 \
    do {                                                                                   \
        int flush_rc_ = flush((wal_file *)(f));                                            \
        if (flush_rc_ != SQLITE_OK)                                                        \
            return flush_rc_;                                                              \
    } while (0)

static int x_close(sqlite3_file *f) {
    wal_file *w = (wal_file *)f;
    int rc = flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->frame);
    w->frame = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 at) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xRead(R(f), buf, n, at);
}

static int x_write_plain(sqlite3_file *f, const void *buf, int n, sqlite3_int64 at) {
    return R(f)->pMethods->xWrite(R(f), buf, n, at);
}

static int x_write_wal(sqlite3_file *f, const void *buf, int n, sqlite3_int64 at) {
    wal_file *w = (wal_file *)f;
    if (w->held && at == w->held_at + FRAME_HEADER && n > 0) {
        size_t need = FRAME_HEADER + (size_t)n;
        if (need > w->frame_cap) {
            unsigned char *p = realloc(w->frame, need);
            if (p) {
                w->frame = p;
                w->frame_cap = need;
            }
        }
        if (need <= w->frame_cap) {
            memcpy(w->frame, w->header, FRAME_HEADER);
            memcpy(w->frame + FRAME_HEADER, buf, (size_t)n);
            w->held = false;
            return w->real->pMethods->xWrite(w->real, w->frame, (int)need, w->held_at);
        }
    }
    FLUSH_OR_RETURN(f);
    if (n == FRAME_HEADER) {
        memcpy(w->header, buf, FRAME_HEADER);
        w->held_at = at;
        w->held = true;
        return SQLITE_OK;
    }
    return w->real->pMethods->xWrite(w->real, buf, n, at);
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xTruncate(R(f), size);
}

static int x_sync(sqlite3_file *f, int flags) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xSync(R(f), flags);
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xFileSize(R(f), size);
}

static int x_lock(sqlite3_file *f, int level) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xLock(R(f), level);
}

static int x_unlock(sqlite3_file *f, int level) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xUnlock(R(f), level);
}

static int x_check_reserved(sqlite3_file *f, int *out) {
    return R(f)->pMethods->xCheckReservedLock(R(f), out);
}

static int x_file_control(sqlite3_file *f, int op, void *arg) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xFileControl(R(f), op, arg);
}

static int x_sector_size(sqlite3_file *f) { return R(f)->pMethods->xSectorSize(R(f)); }

static int x_device(sqlite3_file *f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); }

static int x_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    return R(f)->pMethods->xShmMap(R(f), page, size, extend, out);
}

static int x_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    return R(f)->pMethods->xShmLock(R(f), offset, n, flags);
}

static void x_shm_barrier(sqlite3_file *f) { R(f)->pMethods->xShmBarrier(R(f)); }

static int x_shm_unmap(sqlite3_file *f, int del) {
    return R(f)->pMethods->xShmUnmap(R(f), del);
}

static int x_fetch(sqlite3_file *f, sqlite3_int64 at, int n, void **out) {
    FLUSH_OR_RETURN(f);
    return R(f)->pMethods->xFetch(R(f), at, n, out);
}

static int x_unfetch(sqlite3_file *f, sqlite3_int64 at, void *p) {
    return R(f)->pMethods->xUnfetch(R(f), at, p);
}

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                  int *out_flags) {
    (void)vfs;
    wal_file *w = (wal_file *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
    if (rc != SQLITE_OK || !w->real->pMethods) {
        f->pMethods = NULL;
        return rc;
    }
    /* the default VFS's methods for every other version of the table */
    f->pMethods = (flags & SQLITE_OPEN_WAL) ? &wal_methods : &plain_methods;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync) {
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name) {
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *out) {
    (void)v;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h) {
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out) {
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us) {
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}

static int v_current_time(sqlite3_vfs *v, double *out) {
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int v_last_error(sqlite3_vfs *v, int n, char *out) {
    (void)v;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int v_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static sqlite3_vfs wal_vfs;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_rc = SQLITE_ERROR;

static void init_once(void) {
    real_vfs = sqlite3_vfs_find(NULL);
    /* only a default VFS with the methods this one forwards (unix: 3) */
    if (!real_vfs || real_vfs->iVersion < 2 || !real_vfs->xCurrentTimeInt64)
        return;
    sqlite3_io_methods common = {
        .iVersion = 3,
        .xClose = x_close,
        .xRead = x_read,
        .xWrite = x_write_plain,
        .xTruncate = x_truncate,
        .xSync = x_sync,
        .xFileSize = x_file_size,
        .xLock = x_lock,
        .xUnlock = x_unlock,
        .xCheckReservedLock = x_check_reserved,
        .xFileControl = x_file_control,
        .xSectorSize = x_sector_size,
        .xDeviceCharacteristics = x_device,
        .xShmMap = x_shm_map,
        .xShmLock = x_shm_lock,
        .xShmBarrier = x_shm_barrier,
        .xShmUnmap = x_shm_unmap,
        .xFetch = x_fetch,
        .xUnfetch = x_unfetch,
    };
    plain_methods = common;
    wal_methods = common;
    wal_methods.xWrite = x_write_wal;
    wal_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(wal_file) + real_vfs->szOsFile,
        .mxPathname = real_vfs->mxPathname,
        .zName = CX_STORE_VFS,
        .xOpen = v_open,
        .xDelete = v_delete,
        .xAccess = v_access,
        .xFullPathname = v_full_pathname,
        .xDlOpen = v_dlopen,
        .xDlError = v_dlerror,
        .xDlSym = v_dlsym,
        .xDlClose = v_dlclose,
        .xRandomness = v_randomness,
        .xSleep = v_sleep,
        .xCurrentTime = v_current_time,
        .xGetLastError = v_last_error,
        .xCurrentTimeInt64 = v_current_time64,
    };
    once_rc = sqlite3_vfs_register(&wal_vfs, 0);
}

const char *cx_store_vfs(void) {
    pthread_once(&once, init_once);
    return once_rc == SQLITE_OK ? CX_STORE_VFS : NULL;
}
