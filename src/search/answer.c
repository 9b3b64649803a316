/* SPDX-License-Identifier: Apache-2.0 */
/* The answer of a search: the query echoed, the results as objects added
 * best first while they fit the token budget. Compact by default (what an
 * agent acts on: id, kind, status, title, the matching text, staleness);
 * with `explain` also score, subcortex, tags, updated_at, provenance and
 * why it ranked there. */
#include "search/search-internal.h"

#include "proto/jsonrpc.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The query as JSON even when it is not UTF-8: bad bytes become U+FFFD. */
static json_t *echo_query(const char *text) {
    size_t n = strlen(text);
    if (cx_utf8_valid(text, n))
        return json_string(text);
    cx_buf b;
    cx_buf_init(&b, 3 * n); /* each byte at most one U+FFFD */
    json_t *j = cx_utf8_sanitize(text, n, &b) == 0 ? json_stringn(cx_buf_str(&b), b.len) : NULL;
    cx_buf_free(&b);
    return j;
}

static const char SQL_ROW[] =
    "SELECT id, kind, status, subcortex, title, tags, updated_at, body FROM items WHERE rid = ?1";

/* Column col of the row as a JSON string ("" for NULL), NULL if not UTF-8. */
static json_t *column_string(sqlite3_stmt *st, int col) {
    const char *v = (const char *)sqlite3_column_text(st, col);
    return cx_rpc_string(v ? v : "", v ? (size_t)sqlite3_column_bytes(st, col) : 0);
}

static json_t *why_of(const cx_hit *h) {
    json_t *why = json_object(), *lists = json_array();
    if (!why || !lists) {
        json_decref(why);
        json_decref(lists);
        return NULL;
    }
    if (h->kw_rank)
        json_array_append_new(lists, json_string("keyword"));
    if (h->sem_rank)
        json_array_append_new(lists, json_string("semantic"));
    json_object_set_new(why, "lists", lists);
    if (h->kw_rank) {
        json_object_set_new(why, "keyword_rank", json_integer(h->kw_rank));
        json_object_set_new(why, "bm25", json_real(h->bm25));
    }
    if (h->sem_rank) {
        json_object_set_new(why, "semantic_rank", json_integer(h->sem_rank));
        json_object_set_new(why, "similarity", json_real(round(h->sim * 10000.0) / 10000.0));
        if (h->sem_list == 1)
            json_object_set_new(why, "semantic_model", json_string("builtin"));
    }
    json_object_set_new(why, "trust", json_string(cx_trust_name(h->trust)));
    if (h->lifted)
        json_object_set_new(why, "above_evidence", json_true());
    json_object_set_new(why, "stale", json_boolean(h->stale));
    json_object_set_new(why, "score", json_real(h->score));
    return why;
}

/* The result object for a hit, or *out NULL when the row is gone: the
 * compact one an agent acts on, or with `explain` every field and why. */
static int result_row(cx_store *s, cx_search_ext *e, const cx_qterms *t, const cx_hit *h,
                      bool explain, json_t **out) {
    sqlite3_stmt *st;
    *out = NULL;
    int r = cx_store_prepare(s, SQL_ROW, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, h->rid);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        json_t *o = json_object();
        char iso[CX_ISO_LEN];
        const char *v;
        if (!o) {
            sqlite3_reset(st);
            return CX_ENOMEM;
        }
#define TEXT(col) ((v = (const char *)sqlite3_column_text(st, col)) ? v : "")
#define STR(col) column_string(st, col)
        json_object_set_new(o, "id", STR(0));
        json_object_set_new(o, "kind", STR(1));
        json_object_set_new(o, "status", STR(2));
        if (explain)
            json_object_set_new(o, "subcortex", STR(3));
        if (explain || *TEXT(4))
            json_object_set_new(o, "title", STR(4));
        const char *body = TEXT(7);
        json_object_set_new(o, "snippet",
                            explain ? cx_snippet_make(e, t, *body ? body : TEXT(4),
                                                      CX_SEARCH_EXPLAIN_SNIPPET_TOKENS, 0)
                                    : cx_snippet_make(e, t, *body ? body : TEXT(4),
                                                      CX_SEARCH_SNIPPET_TOKENS,
                                                      CX_SEARCH_WHOLE_BODY));
        if (explain) {
            json_object_set_new(o, "score", json_real(h->score));
            json_object_set_new(o, "tags",
                                cx_item_parse_array((const char *)sqlite3_column_text(st, 5)));
            cx_clock_format((uint64_t)sqlite3_column_int64(st, 6), iso);
            json_object_set_new(o, "updated_at", json_string(iso));
            if (h->prov)
                json_object_set_new(o, "provenance", json_incref(h->prov));
        }
#undef STR
#undef TEXT
        if (explain || h->stale)
            json_object_set_new(o, "stale", json_boolean(h->stale));
        if (h->stale)
            json_object_set_new(o, "changed", json_incref(h->changed));
        if (explain)
            json_object_set_new(o, "why", why_of(h));
        *out = o;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading a search result");
    return 0;
}

/* ---- the answer object ---- */

int cx_answer_begin(cx_answer *a, const cx_search_query *q) {
    a->res = json_object();
    a->results = json_array();
    json_t *echo = echo_query(q->text);
    if (!a->res || !a->results || !echo) {
        json_decref(echo);
        return CX_ENOMEM;
    }
    json_object_set_new(a->res, "query", echo);
    json_object_set_new(a->res, "mode", json_string(cx_search_mode_name(q->mode)));
    a->budget = cx_store_budget_bytes(q->max_tokens);
    a->used = cx_rpc_compact_size(a->res) + 48; /* results, count, truncated */
    a->truncated = false;
    a->explain = q->explain;
    return 0;
}

int cx_answer_add(cx_answer *a, cx_store *s, cx_search_ext *e, const cx_qterms *t,
                  cx_hit *const *best, size_t n) {
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++) {
        json_t *o = NULL;
        r = result_row(s, e, t, best[i], a->explain, &o);
        if (r == 0 && o &&
            !cx_item_budget_add(a->results, o, &a->used, a->budget, "snippet", &a->truncated))
            break;
    }
    return r;
}

void cx_answer_end(cx_answer *a, const char *degraded, json_t **out) {
    json_object_set_new(a->res, "count", json_integer((json_int_t)json_array_size(a->results)));
    json_object_set_new(a->res, "results", a->results);
    a->results = NULL;
    json_object_set_new(a->res, "truncated", json_boolean(a->truncated));
    if (degraded)
        json_object_set_new(a->res, "degraded", json_string(degraded));
    if (a->corrected)
        json_object_set_new(a->res, "corrected", a->corrected);
    a->corrected = NULL;
    *out = a->res;
    a->res = NULL;
}

void cx_answer_free(cx_answer *a) {
    json_decref(a->corrected);
    a->corrected = NULL;
    json_decref(a->results);
    json_decref(a->res);
    a->results = NULL;
    a->res = NULL;
}
