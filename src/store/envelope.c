/* SPDX-License-Identifier: Apache-2.0 */
/* The item envelope: a row of `items` (the columns of CX_ITEM_COLUMNS) as
 * the JSON object that get, search, the outbox and the sync feed share, and
 * the small conversions every reader of a row needs (texts, times, JSON
 * array and provenance columns). */
#include "store/store-internal.h"

#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- envelope ---- */

json_t *cx_item_json_text(const unsigned char *v) {
    json_t *j = json_string(v ? (const char *)v : "");
    return j ? j : json_string("");
}

json_t *cx_item_json_time(int64_t ms) {
    char iso[CX_ISO_LEN];
    cx_clock_format((uint64_t)(ms < 0 ? 0 : ms), iso);
    return json_string(iso);
}

json_t *cx_item_parse_array(const char *text) {
    json_t *a = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a;
}

void cx_item_set_text_opt(json_t *o, const char *key, sqlite3_stmt *st, int col) {
    if (sqlite3_column_type(st, col) != SQLITE_NULL)
        json_object_set_new(o, key, cx_item_json_text(sqlite3_column_text(st, col)));
}

int cx_item_envelope(sqlite3_stmt *st, json_t **out) {
    json_t *o = json_object();
    if (!o)
        return CX_ENOMEM;
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    kind = kind ? kind : "";
    json_object_set_new(o, "id", cx_item_json_text(sqlite3_column_text(st, 0)));
    json_object_set_new(o, "kind", cx_item_json_text(sqlite3_column_text(st, 1)));
    json_object_set_new(o, "status", cx_item_json_text(sqlite3_column_text(st, 2)));
    json_object_set_new(o, "subcortex", cx_item_json_text(sqlite3_column_text(st, 3)));
    json_object_set_new(o, "title", cx_item_json_text(sqlite3_column_text(st, 4)));
    json_object_set_new(o, "body", cx_item_json_text(sqlite3_column_text(st, 5)));
    json_object_set_new(o, "tags", cx_item_parse_array((const char *)sqlite3_column_text(st, 6)));
    json_object_set_new(o, "files", cx_item_parse_array((const char *)sqlite3_column_text(st, 7)));
    cx_kind k = cx_kind_parse(kind);
    if (k == CX_KIND_DRAFT || k == CX_KIND_THREAD)
        json_object_set_new(o, "evidence",
                            cx_item_parse_array((const char *)sqlite3_column_text(st, 8)));
    cx_item_set_text_opt(o, "author", st, 9);
    cx_item_set_text_opt(o, "agent", st, 10);
    json_object_set_new(o, "created_at", cx_item_json_time(sqlite3_column_int64(st, 11)));
    json_object_set_new(o, "updated_at", cx_item_json_time(sqlite3_column_int64(st, 12)));
    if (sqlite3_column_type(st, 13) != SQLITE_NULL)
        json_object_set_new(o, "server_seq", json_integer(sqlite3_column_int64(st, 13)));
    json_object_set_new(o, "visibility", cx_item_json_text(sqlite3_column_text(st, 14)));
    cx_item_set_text_opt(o, "parent_id", st, 15);
    json_object_set_new(o, "seen", json_integer(sqlite3_column_int64(st, 16)));
    if (sqlite3_column_type(st, 17) != SQLITE_NULL) {
        json_t *rv = json_loads((const char *)sqlite3_column_text(st, 17), 0, NULL);
        if (json_is_object(rv))
            json_object_set_new(o, "review", rv);
        else
            json_decref(rv);
    }
    json_t *prov = cx_item_parse_provenance((const char *)sqlite3_column_text(st, 18));
    if (prov)
        json_object_set_new(o, "provenance", prov);
    *out = o;
    return 0;
}

json_t *cx_item_parse_provenance(const char *text) {
    if (!text)
        return NULL;
    json_t *p = json_loads(text, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static const char SQL_LOAD[] = "SELECT " CX_ITEM_COLUMNS " FROM items WHERE id = ?1";

int cx_item_load(cx_store *s, const char *id, json_t **out) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_LOAD, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = cx_item_envelope(st, out);
    else if (rc == SQLITE_DONE)
        r = cx_error_set(CX_ENOTFOUND, "no item with id '%s'", id);
    else
        r = cx_store_sqlerr(s, rc, "reading an item");
    sqlite3_reset(st);
    return r;
}
