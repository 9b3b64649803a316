/* SPDX-License-Identifier: Apache-2.0 */
/* The in-process write gate of a database file (gate.c): the connections
 * of one process to one store take turns at writing here, waking the
 * moment the previous writer commits, instead of sleeping in SQLite's busy
 * handler. Foreground writers go first; a background writer (maintenance)
 * waits until none is queued and asks between slices whether one is.
 * Store-internal: only src/store uses it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct cx_store_gate cx_store_gate;

/* The gate of the database file at db_path (which must exist), shared with
 * every other connection of this process to the same file (same device
 * and inode); take one reference. CX_EIO when the file cannot be stat'ed,
 * CX_ENOMEM. */
int cx_store_gate_get(const char *db_path, cx_store_gate **out);

/* Drops a reference from cx_store_gate_get(); NULL is fine. */
void cx_store_gate_put(cx_store_gate *g);

/* Waits for the gate until deadline_ns (cx_clock_mono_ns time) and takes
 * it: 0, or CX_EBUSY at the deadline. A background caller also waits while
 * a foreground caller is queued. Not reentrant: a thread holding the gate
 * must leave it before entering again. */
int cx_store_gate_enter(cx_store_gate *g, bool background, uint64_t deadline_ns);

/* Gives the gate back and wakes the waiters. */
void cx_store_gate_leave(cx_store_gate *g);

/* Whether a foreground writer waits for the gate now: a background holder
 * should finish its transaction soon. Lock-free, for loops. */
bool cx_store_gate_wanted(cx_store_gate *g);

/* Waits until no foreground writer of this process has come or gone for
 * quiet_ns (true), or until until_ns (false). For a background writer,
 * which then does its work in the gaps between an agent's writes instead
 * of in them: a write transaction's fixed costs (the FTS segment, the
 * commit) would otherwise land on each of the agent's calls. */
bool cx_store_gate_quiet(cx_store_gate *g, uint64_t quiet_ns, uint64_t until_ns);
