/* SPDX-License-Identifier: Apache-2.0 */
/* The item envelope: a row of `items` (the columns of CX_ITEM_COLUMNS) as
 * the JSON object that get, search, the outbox and the sync feed share, and
 * the small conversions every reader of a row needs (texts, times, JSON
 * array and provenance columns). */
#include "store/store-internal.h"

#include "util/clock.h"
#include "util/error.h"

#include <assert.h>
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

/* ---- the envelope of a new row, as text ----
 * The same JSON that json_dumps(JSON_COMPACT) makes of cx_item_envelope's
 * object for the stored row: members in the same order, strings escaped as
 * jansson escapes them (", \\, the short escapes, other control characters
 * as \\u00XX; UTF-8 as it is, the store holds valid UTF-8 only). */

static int add_json_string(cx_buf *b, const char *v) {
    v = v ? v : "";
    return cx_buf_add_json_str(b, v, strlen(v));
}

/* ,"key": (the key is a literal: nothing to escape) */
static int add_key(cx_buf *b, const char *key, bool first) {
    int r = first ? 0 : cx_buf_add(b, ",", 1);
    if (r == 0)
        r = cx_buf_add(b, "\"", 1);
    if (r == 0)
        r = cx_buf_adds(b, key);
    return r ? r : cx_buf_add(b, "\":", 2);
}

static int add_str_member(cx_buf *b, const char *key, const char *v, bool first) {
    int r = add_key(b, key, first);
    return r ? r : add_json_string(b, v);
}

static int add_raw_member(cx_buf *b, const char *key, const char *json, const char *dflt) {
    int r = add_key(b, key, false);
    return r ? r : cx_buf_adds(b, json ? json : dflt);
}

int cx_item_envelope_text(const cx_item_row *row, cx_buf *b) {
    assert(strcmp(row->kind, "observation") == 0 && !row->review && !row->parent_id &&
           row->server_seq <= 0);
    char created[CX_ISO_LEN], updated[CX_ISO_LEN];
    uint64_t c_ms = row->created_ms ? row->created_ms : row->now_ms;
    uint64_t u_ms = row->updated_ms ? row->updated_ms : row->now_ms;
    cx_clock_format(c_ms, created);
    if (u_ms == c_ms) /* a new row's two times are one */
        memcpy(updated, created, sizeof updated);
    else
        cx_clock_format(u_ms, updated);
    cx_buf_reset(b);
    int r = cx_buf_add(b, "{", 1);
    if (r == 0)
        r = add_str_member(b, "id", row->id, true);
    if (r == 0)
        r = add_str_member(b, "kind", row->kind, false);
    if (r == 0)
        r = add_str_member(b, "status", row->status, false);
    if (r == 0)
        r = add_str_member(b, "subcortex", row->subcortex, false);
    if (r == 0)
        r = add_str_member(b, "title", row->title, false);
    if (r == 0)
        r = add_str_member(b, "body", row->body, false);
    if (r == 0)
        r = add_raw_member(b, "tags", row->tags, "[]");
    if (r == 0)
        r = add_raw_member(b, "files", row->files, "[]");
    if (r == 0 && row->author)
        r = add_str_member(b, "author", row->author, false);
    if (r == 0 && row->agent)
        r = add_str_member(b, "agent", row->agent, false);
    if (r == 0)
        r = add_str_member(b, "created_at", created, false);
    if (r == 0)
        r = add_str_member(b, "updated_at", updated, false);
    if (r == 0)
        r = add_str_member(b, "visibility", row->visibility, false);
    if (r == 0)
        r = add_raw_member(b, "seen", "1", "1");
    if (r == 0 && row->provenance)
        r = add_raw_member(b, "provenance", row->provenance, "{}");
    if (r == 0)
        r = cx_buf_add(b, "}", 1);
    if (r) /* nothing half-written stays */
        cx_buf_reset(b);
    return r;
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
