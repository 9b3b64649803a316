/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite, loaded with dlopen() when the first store opens instead of
 * linked (sqlite.c). Debian builds libsqlite3 with immediate binding: linked,
 * its 1,600 symbol relocations were 80% of the dynamic loader's work and
 * about 30 page faults before main() of every cortexd start, while only a
 * store needs it, which cortexd opens on its warm-up thread after
 * `initialize` is answered. sqlite.c defines the sqlite3_* functions the
 * engine calls, each a jump through a table filled from the library; the
 * engine's code calls SQLite as usual. A program that links the store
 * does not link libsqlite3 (with -Dstatic_deps=true both would define the
 * sqlite3_* functions); cortex-core, which does not use the store, links
 * it. Store-internal. */
#pragma once

/* Loads SQLite, once per process; later calls return the first call's
 * result. 0, or CX_EFAIL naming the library and why it cannot be loaded
 * ("SQLite: cannot load libsqlite3.so.0: ..."). cx_store_open() calls it
 * first, so that a missing library is a store error; a sqlite3_* function
 * called before it (by code that does not open a store) loads the library
 * itself, and ends the process with that message on stderr if it cannot:
 * what the dynamic loader would have done at exec. */
int cx_store_sqlite_load(void);
