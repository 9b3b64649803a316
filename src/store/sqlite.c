/* SPDX-License-Identifier: Apache-2.0 */
/* The sqlite3_* functions the engine uses, as jumps through a table that
 * dlopen() fills (see sqlite.h for why). Each is defined with the prototype
 * <sqlite3.h> declares, so the compiler checks every one; a function the
 * engine starts to use and that is not listed here fails cortexd's link
 * ("undefined reference to sqlite3_..."): add it to FUNCS. The soname is
 * the one meson found at build time (CX_LIBSQLITE_SONAME). */
#include "store/sqlite.h"

#include "util/dl.h"
#include "util/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CX_LIBSQLITE_SONAME
#define CX_LIBSQLITE_SONAME "libsqlite3.so.0"
#endif

/* R(return type, name without "sqlite3_", parameters, arguments) for a
 * function that returns a value, V(...) for one that returns nothing. The
 * engine's and its tests' (which link the engine, not libsqlite3: with
 * -Dstatic_deps=true both would define these), in name order. */
#define FUNCS(R, V) \
    R(int, backup_finish, (sqlite3_backup *a0), (a0)) \
    R(sqlite3_backup *, backup_init, (sqlite3 *a0, const char *a1, sqlite3 *a2, const char *a3), \
      (a0, a1, a2, a3)) \
    R(int, backup_step, (sqlite3_backup *a0, int a1), (a0, a1)) \
    R(int, bind_blob, (sqlite3_stmt *a0, int a1, const void *a2, int a3, void (*a4)(void*)), \
      (a0, a1, a2, a3, a4)) \
    R(int, bind_double, (sqlite3_stmt *a0, int a1, double a2), (a0, a1, a2)) \
    R(int, bind_int, (sqlite3_stmt *a0, int a1, int a2), (a0, a1, a2)) \
    R(int, bind_int64, (sqlite3_stmt *a0, int a1, sqlite3_int64 a2), (a0, a1, a2)) \
    R(int, bind_null, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(int, bind_pointer, (sqlite3_stmt *a0, int a1, void *a2, const char *a3, void (*a4)(void*)), \
      (a0, a1, a2, a3, a4)) \
    R(int, bind_text, (sqlite3_stmt *a0, int a1, const char *a2, int a3, void (*a4)(void*)), \
      (a0, a1, a2, a3, a4)) \
    R(int, busy_handler, (sqlite3 *a0, int (*a1)(void*, int), void *a2), (a0, a1, a2)) \
    R(int, busy_timeout, (sqlite3 *a0, int a1), (a0, a1)) \
    R(int, changes, (sqlite3 *a0), (a0)) \
    R(int, clear_bindings, (sqlite3_stmt *a0), (a0)) \
    R(int, close, (sqlite3 *a0), (a0)) \
    R(const void *, column_blob, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(int, column_bytes, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(double, column_double, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(int, column_int, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(sqlite3_int64, column_int64, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(const unsigned char *, column_text, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(int, column_type, (sqlite3_stmt *a0, int a1), (a0, a1)) \
    R(int, create_function, \
      (sqlite3 *a0, const char *a1, int a2, int a3, void *a4, \
       void (*a5)(sqlite3_context*, int, sqlite3_value**), \
       void (*a6)(sqlite3_context*, int, sqlite3_value**), void (*a7)(sqlite3_context*)), \
      (a0, a1, a2, a3, a4, a5, a6, a7)) \
    R(const char *, errmsg, (sqlite3 *a0), (a0)) \
    R(const char *, errstr, (int a0), (a0)) \
    R(int, exec, \
      (sqlite3 *a0, const char *a1, int (*a2)(void*, int, char**, char**), void *a3, char **a4), \
      (a0, a1, a2, a3, a4)) \
    R(int, extended_result_codes, (sqlite3 *a0, int a1), (a0, a1)) \
    R(int, file_control, (sqlite3 *a0, const char *a1, int a2, void *a3), (a0, a1, a2, a3)) \
    R(int, finalize, (sqlite3_stmt *a0), (a0)) \
    V(void, free, (void *a0), (a0)) \
    R(int, get_autocommit, (sqlite3 *a0), (a0)) \
    R(sqlite3_int64, last_insert_rowid, (sqlite3 *a0), (a0)) \
    R(const char *, libversion, (void), ()) \
    R(void *, malloc, (int a0), (a0)) \
    R(void *, malloc64, (sqlite3_uint64 a0), (a0)) \
    R(int, open, (const char *a0, sqlite3 **a1), (a0, a1)) \
    R(int, open_v2, (const char *a0, sqlite3 **a1, int a2, const char *a3), (a0, a1, a2, a3)) \
    R(int, prepare_v2, (sqlite3 *a0, const char *a1, int a2, sqlite3_stmt **a3, const char **a4), \
      (a0, a1, a2, a3, a4)) \
    R(int, prepare_v3, \
      (sqlite3 *a0, const char *a1, int a2, unsigned int a3, sqlite3_stmt **a4, \
       const char **a5), \
      (a0, a1, a2, a3, a4, a5)) \
    R(int, reset, (sqlite3_stmt *a0), (a0)) \
    V(void, result_double, (sqlite3_context *a0, double a1), (a0, a1)) \
    V(void, result_error, (sqlite3_context *a0, const char *a1, int a2), (a0, a1, a2)) \
    V(void, result_error_code, (sqlite3_context *a0, int a1), (a0, a1)) \
    V(void, result_int, (sqlite3_context *a0, int a1), (a0, a1)) \
    V(void, result_int64, (sqlite3_context *a0, sqlite3_int64 a1), (a0, a1)) \
    V(void, result_null, (sqlite3_context *a0), (a0)) \
    V(void, result_text, (sqlite3_context *a0, const char *a1, int a2, void (*a3)(void*)), \
      (a0, a1, a2, a3)) \
    R(int, step, (sqlite3_stmt *a0), (a0)) \
    R(int, stricmp, (const char *a0, const char *a1), (a0, a1)) \
    R(sqlite3_int64, total_changes64, (sqlite3 *a0), (a0)) \
    R(void *, user_data, (sqlite3_context *a0), (a0)) \
    R(double, value_double, (sqlite3_value *a0), (a0)) \
    R(sqlite3_int64, value_int64, (sqlite3_value *a0), (a0)) \
    R(const unsigned char *, value_text, (sqlite3_value *a0), (a0)) \
    R(sqlite3_vfs *, vfs_find, (const char *a0), (a0)) \
    R(int, vfs_register, (sqlite3_vfs *a0, int a1), (a0, a1)) \
    R(int, wal_checkpoint_v2, (sqlite3 *a0, const char *a1, int a2, int *a3, int *a4), \
      (a0, a1, a2, a3, a4))

#define MEMBER(ret, name, params, args) __typeof__(sqlite3_##name) *name;
static struct {
    FUNCS(MEMBER, MEMBER)
} api;

static atomic_bool loaded;
static char failure[600];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *const sonames[] = {CX_LIBSQLITE_SONAME, NULL};
#define SYM(ret, name, params, args) {"sqlite3_" #name, &api.name},
    const cx_dl_sym syms[] = {FUNCS(SYM, SYM)};
#undef SYM
    if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0) {
        snprintf(failure, sizeof failure, "%s", cx_error_last());
        return;
    }
    atomic_store_explicit(&loaded, true, memory_order_release);
}

int cx_store_sqlite_load(void) {
    if (atomic_load_explicit(&loaded, memory_order_acquire))
        return 0;
    pthread_once(&once, load);
    return atomic_load_explicit(&loaded, memory_order_acquire)
               ? 0
               : cx_error_set(CX_EFAIL, "SQLite: %s (install it, e.g. Debian's libsqlite3-0)",
                              failure);
}

/* A call before cx_store_sqlite_load(): load now, or end the process as the
 * dynamic loader would have at exec (there is no error to return from, say,
 * sqlite3_step). */
__attribute__((noinline, cold)) static void load_or_exit(void) {
    if (cx_store_sqlite_load() != 0) {
        fprintf(stderr, "cannot start: %s\n", cx_error_last());
        _Exit(127);
    }
}

static inline void need(void) {
    if (__builtin_expect(!atomic_load_explicit(&loaded, memory_order_acquire), 0))
        load_or_exit();
}

#define WRAP_R(ret, name, params, args) \
    ret sqlite3_##name params { \
        need(); \
        return api.name args; \
    }
#define WRAP_V(ret, name, params, args) \
    ret sqlite3_##name params { \
        need(); \
        api.name args; \
    }
FUNCS(WRAP_R, WRAP_V)
