/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox: every local change that should reach the core is appended
 * here, in the same transaction as the change itself, with a client op id
 * (a ULID) that the core uses as idempotency key. The sync engine sends rows
 * in `seq` order and removes a row only when the core acknowledged it; a
 * rejected op keeps its row with `rejected_reason` set. Private items never
 * get a row. */
#include "store/store-internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <stdlib.h>

static const char SQL_PUSH[] =
    "INSERT INTO outbox (op_id, op, item_id, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";

int cx_outbox_push(cx_store *s, const char *op, const char *item_id, json_t *payload) {
    char op_id[CX_ULID_LEN + 1];
    sqlite3_stmt *st;
    int r = cx_ulid_new(op_id);
    if (r)
        return r;
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        return CX_ENOMEM;
    r = cx_store_prepare(s, SQL_PUSH, &st);
    if (r)
        goto out;
    sqlite3_bind_text(st, 1, op_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, item_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)cx_clock_now_ms());
    r = cx_store_exec_stmt(s, st, "writing the outbox");
    sqlite3_clear_bindings(st);
out:
    free(text);
    return r;
}
