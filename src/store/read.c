/* SPDX-License-Identifier: Apache-2.0 */
/* Reading items: get (with comments, versions and staleness), recent and
 * the review list, as envelopes or summaries, within a token budget; and
 * the evidence an item cites, for search's ranking.
 *
 * Comments do not change their target's updated_at: a comment is an item of
 * its own (it shows in `recent` with its parent_id), and the target's
 * updated_at keeps meaning "this item itself changed", which is also what
 * the core's copy says. */
#include "store/store-internal.h"

#include "proto/jsonrpc.h"
#include "redact/redact.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMMENTS 500   /* comments returned by get */
#define MAX_REVIEW_LIST 500
#define SUMMARY_SNIPPET 200

/* ---- staleness ---- */

void cx_item_check_stale(cx_stale_fn stale, void *ud, const json_t *provenance, bool *is_stale,
                         json_t **changed) {
    *is_stale = false;
    *changed = NULL;
    if (!stale || !provenance)
        return;
    json_t *ch = NULL;
    int rc = stale(ud, provenance, &ch);
    if (rc == 1) {
        *is_stale = true;
        *changed = json_is_array(ch) ? json_incref(ch) : json_array();
    }
    json_decref(ch);
}

/* ---- evidence ---- */

/* json_each of a column the store wrote; '[]' guards against a row that
 * somehow holds no JSON (json_each would fail the whole statement). */
static const char SQL_EVIDENCE[] =
    "SELECT r.rid FROM items t,"
    " json_each(CASE WHEN json_valid(t.evidence) THEN t.evidence ELSE '[]' END) e"
    " JOIN items r ON r.id = e.value WHERE t.rid = ?1 ORDER BY e.key LIMIT ?2";

int cx_item_evidence_rids(cx_store *s, int64_t rid, int64_t *out, size_t max, size_t *n) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_EVIDENCE, &st), rc;
    *n = 0;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        out[(*n)++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "reading evidence");
}

/* Adds "stale" (and "changed") to an item or summary. */
static void add_stale(json_t *o, cx_stale_fn stale, void *ud, const json_t *prov) {
    bool is_stale;
    json_t *changed;
    cx_item_check_stale(stale, ud, prov, &is_stale, &changed);
    json_object_set_new(o, "stale", json_boolean(is_stale));
    if (changed)
        json_object_set_new(o, "changed", changed);
}

/* ---- budgets ---- */

static size_t json_size(const json_t *j) {
    return cx_rpc_compact_size(j);
}

bool cx_item_budget_add(json_t *arr, json_t *item, size_t *used, size_t budget,
                        const char *cut_field, bool *truncated) {
    size_t sz = json_size(item) + 1;
    if (*used + sz <= budget) {
        *used += sz;
        json_array_append_new(arr, item);
        return true;
    }
    *truncated = true;
    if (json_array_size(arr) > 0) {
        json_decref(item);
        return false;
    }
    /* The first result always goes in, cut to fit as far as it can. */
    json_t *f = cut_field ? json_object_get(item, cut_field) : NULL;
    if (json_is_string(f)) {
        const char *v = json_string_value(f);
        size_t len = json_string_length(f), over = *used + sz - budget;
        size_t keep = over + 3 < len ? cx_redact_cut(v, len, len - over - 3, false) : 0;
        char *cut = malloc(keep + 4);
        if (cut) {
            memcpy(cut, v, keep);
            memcpy(cut + keep, "\xe2\x80\xa6", 4); /* … */
            json_object_set_new(item, cut_field, json_string(cut));
            free(cut);
        }
        sz = json_size(item) + 1;
    }
    *used += sz;
    json_array_append_new(arr, item);
    return true;
}

/* ---- summaries (recent, review list) ---- */

#define SUMMARY_COLUMNS                                                                     \
    "id, kind, status, subcortex, title, substr(body, 1, 200), tags, updated_at, parent_id," \
    " author, length(CAST(body AS BLOB)), provenance"

/* The first bytes of a body on one line: whitespace runs collapsed, cut on
 * a character boundary, "…" when something was left out. `body` is the
 * first characters of the body (sql substr), `full_len` the body's bytes. */
static json_t *summary_snippet(const char *body, size_t len, int64_t full_len) {
    char buf[SUMMARY_SNIPPET + 8];
    size_t n = 0;
    bool space = false, more = (int64_t)len < full_len;
    const char *p = body ? body : "";
    while (*p && cx_item_is_space((unsigned char)*p))
        p++;
    for (; *p && n < SUMMARY_SNIPPET + 4; p++) {
        if (cx_item_is_space((unsigned char)*p)) {
            space = true;
            continue;
        }
        if (space)
            buf[n++] = ' ';
        space = false;
        buf[n++] = *p;
    }
    while (*p && cx_item_is_space((unsigned char)*p))
        p++;
    if (*p)
        more = true;
    if (n > SUMMARY_SNIPPET)
        more = true;
    if (more) /* never the start of a [REDACTED:rule] marker without its end */
        n = cx_redact_cut(buf, n, SUMMARY_SNIPPET, true);
    if (more) {
        while (n > 0 && buf[n - 1] == ' ')
            n--;
        memcpy(buf + n, "\xe2\x80\xa6", 3); /* … */
        n += 3;
    }
    json_t *j = json_stringn(buf, n);
    return j ? j : json_string("");
}

static json_t *summary_row(sqlite3_stmt *st, cx_stale_fn stale, void *ud) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", cx_item_json_text(sqlite3_column_text(st, 0)));
    json_object_set_new(o, "kind", cx_item_json_text(sqlite3_column_text(st, 1)));
    json_object_set_new(o, "status", cx_item_json_text(sqlite3_column_text(st, 2)));
    json_object_set_new(o, "subcortex", cx_item_json_text(sqlite3_column_text(st, 3)));
    json_object_set_new(o, "title", cx_item_json_text(sqlite3_column_text(st, 4)));
    json_object_set_new(o, "updated_at", cx_item_json_time(sqlite3_column_int64(st, 7)));
    json_object_set_new(o, "tags", cx_item_parse_array((const char *)sqlite3_column_text(st, 6)));
    const char *body = (const char *)sqlite3_column_text(st, 5);
    json_object_set_new(o, "snippet", summary_snippet(body, (size_t)sqlite3_column_bytes(st, 5),
                                                      sqlite3_column_int64(st, 10)));
    cx_item_set_text_opt(o, "parent_id", st, 8);
    cx_item_set_text_opt(o, "author", st, 9);
    json_t *prov = cx_item_parse_provenance((const char *)sqlite3_column_text(st, 11));
    if (prov)
        json_object_set_new(o, "provenance", json_incref(prov));
    if (stale)
        add_stale(o, stale, ud, prov);
    json_decref(prov);
    return o;
}

/* ---- get ---- */

static const char SQL_COMMENTS[] =
    "SELECT " CX_ITEM_COLUMNS " FROM items WHERE parent_id = ?1 AND kind = 'comment'"
    " ORDER BY created_at, rid LIMIT ?2";
static const char SQL_VERSIONS[] =
    "SELECT v.version, v.sha256, v.size, v.status, v.created_at, v.source_path,"
    " v.accepted_by, v.accepted_at, coalesce(b.present, 1) FROM artifact_versions v"
    " LEFT JOIN blobs b ON b.sha256 = v.sha256 WHERE v.artifact_id = ?1 ORDER BY v.version";

static int add_comments(cx_store *s, const char *id, json_t *item) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_COMMENTS, &st), rc;
    if (r)
        return r;
    json_t *arr = json_array();
    if (!arr)
        return CX_ENOMEM;
    json_object_set_new(item, "comments", arr);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, MAX_COMMENTS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *c = NULL;
        if ((r = cx_item_envelope(st, &c)))
            break;
        json_array_append_new(arr, c);
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading comments");
    return r;
}

static int add_versions(cx_store *s, const char *id, json_t *item) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_VERSIONS, &st), rc;
    if (r)
        return r;
    json_t *arr = json_array();
    if (!arr)
        return CX_ENOMEM;
    json_object_set_new(item, "versions", arr);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *v = json_object();
        json_object_set_new(v, "version", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(v, "sha256", cx_item_json_text(sqlite3_column_text(st, 1)));
        json_object_set_new(v, "size", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(v, "status", cx_item_json_text(sqlite3_column_text(st, 3)));
        json_object_set_new(v, "created_at", cx_item_json_time(sqlite3_column_int64(st, 4)));
        cx_item_set_text_opt(v, "source_path", st, 5);
        cx_item_set_text_opt(v, "accepted_by", st, 6);
        if (sqlite3_column_type(st, 7) != SQLITE_NULL)
            json_object_set_new(v, "accepted_at", cx_item_json_time(sqlite3_column_int64(st, 7)));
        /* false while a pulled version's content has not been fetched */
        json_object_set_new(v, "content", json_boolean(sqlite3_column_int(st, 8) != 0));
        json_array_append_new(arr, v);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading artifact versions");
    return r;
}

/* The full item with its comments or versions; inside a transaction. */
static int load_full(cx_store *s, const char *id, json_t **out) {
    json_t *item = NULL;
    int r = cx_item_load(s, id, &item);
    if (r)
        return r;
    cx_kind k = cx_kind_parse(json_string_value(json_object_get(item, "kind")));
    if (k == CX_KIND_THREAD || k == CX_KIND_DRAFT)
        r = add_comments(s, id, item);
    else if (k == CX_KIND_ARTIFACT)
        r = add_versions(s, id, item);
    if (r) {
        json_decref(item);
        return r;
    }
    *out = item;
    return 0;
}

int cx_store_get(cx_store *s, const char *id, json_t **out) {
    return cx_store_get_ex(s, id, NULL, NULL, out);
}

int cx_store_get_ex(cx_store *s, const char *id, cx_stale_fn stale, void *ud, json_t **out) {
    char nid[CX_STORE_MAX_ID + 1];
    json_t *item = NULL;
    int r = cx_item_norm_id("id", id, nid);
    if (r)
        return r;
    if ((r = cx_store_read_begin(s)))
        return r;
    r = load_full(s, nid, &item);
    cx_store_read_end(s);
    if (r)
        return r;
    /* after the read: the callback may take its time (git) */
    if (stale)
        add_stale(item, stale, ud, json_object_get(item, "provenance"));
    *out = item;
    return 0;
}

/* ---- recent ---- */

static const char SQL_UPDATED_OF[] = "SELECT updated_at, rid FROM items WHERE id = ?1";
/* (updated_at, rid) orders changes totally, so "since this item" never
 * skips another item changed in the same millisecond. */
static const char SQL_RECENT[] =
    "SELECT " SUMMARY_COLUMNS " FROM items WHERE (updated_at, rid) > (?1, ?5)"
    " AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR subcortex = ?3)"
    " ORDER BY updated_at DESC, rid DESC LIMIT ?4";

size_t cx_store_budget_bytes(size_t max_tokens) {
    size_t t = max_tokens ? max_tokens : CX_STORE_DEFAULT_MAX_TOKENS;
    return t > SIZE_MAX / 8 / CX_STORE_TOKEN_BYTES ? SIZE_MAX / 8 : t * CX_STORE_TOKEN_BYTES;
}

int cx_store_recent(cx_store *s, const cx_recent_query *q, json_t **out) {
    int r = 0, rc;
    int64_t since = -1, since_rid = INT64_MAX;
    size_t limit = q->limit ? q->limit : 20;
    sqlite3_stmt *st;
    json_t *res = NULL, *items = NULL;
    if (limit > 100)
        return cx_error_set(CX_ELIMIT, "limit is %zu; it must be 1 to 100", limit);
    if ((r = cx_item_check_text("kind", q->kind, 32, false, true)) ||
        (r = cx_item_check_text("subcortex", q->subcortex, CX_STORE_MAX_TAG, false, true)))
        return r;
    if ((r = cx_store_read_begin(s)))
        return r;
    if (q->since && *q->since) {
        uint64_t ms;
        if (cx_ulid_valid(q->since)) {
            char id[CX_STORE_MAX_ID + 1];
            if ((r = cx_item_norm_id("since", q->since, id)))
                goto out;
            if ((r = cx_store_prepare(s, SQL_UPDATED_OF, &st)))
                goto out;
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                since = sqlite3_column_int64(st, 0);
                since_rid = sqlite3_column_int64(st, 1);
            }
            sqlite3_reset(st);
            if (rc == SQLITE_DONE) {
                r = cx_error_set(CX_ENOTFOUND,
                                 "since: no item with id '%s'; give an id from search or recent, "
                                 "or a time",
                                 id);
                goto out;
            }
            if (rc != SQLITE_ROW) {
                r = cx_store_sqlerr(s, rc, "reading the since item");
                goto out;
            }
        } else if (cx_clock_parse(q->since, &ms) == 0) {
            since = (int64_t)ms;
        } else {
            r = cx_error_set(CX_EINVAL,
                             "since '%.64s' is neither a time nor an item id; use ISO 8601 "
                             "(2026-01-31 or 2026-01-31T09:30:00Z) or a 26-character item id",
                             q->since);
            goto out;
        }
    }
    res = json_object();
    items = json_array();
    if (!res || !items) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_RECENT, &st)))
        goto out;
    sqlite3_bind_int64(st, 1, since);
    cx_store_bind_text(st, 2, q->kind && *q->kind ? q->kind : NULL);
    cx_store_bind_text(st, 3, q->subcortex && *q->subcortex ? q->subcortex : NULL);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    sqlite3_bind_int64(st, 5, since_rid);
    size_t budget = cx_store_budget_bytes(q->max_tokens), used = 48;
    bool truncated = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = summary_row(st, q->stale, q->stale_ud);
        if (!o) {
            r = CX_ENOMEM;
            break;
        }
        if (!cx_item_budget_add(items, o, &used, budget, "snippet", &truncated))
            break;
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = cx_store_sqlerr(s, rc, "listing recent items");
    if (r)
        goto out;
    json_object_set_new(res, "count", json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(res, "items", items);
    items = NULL;
    json_object_set_new(res, "truncated", json_boolean(truncated));
    *out = res;
    res = NULL;
out:
    cx_store_read_end(s);
    json_decref(res);
    json_decref(items);
    return r;
}

/* ---- review list ---- */

static const char SQL_REVIEW_COUNT[] =
    "SELECT count(*) FROM items WHERE kind = 'draft' AND status IN ('pending','changes_requested')";
static const char SQL_REVIEW_LIST[] =
    "SELECT " SUMMARY_COLUMNS " FROM items WHERE kind = 'draft'"
    " AND status IN ('pending','changes_requested') ORDER BY created_at, rid LIMIT ?1";

int cx_store_review_list(cx_store *s, json_t **out) {
    int r, rc;
    sqlite3_stmt *st;
    int64_t total = 0;
    json_t *res = NULL, *arr = NULL;
    if ((r = cx_store_read_begin(s)))
        return r;
    if ((r = cx_store_prepare(s, SQL_REVIEW_COUNT, &st)))
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        r = cx_store_sqlerr(s, rc, "counting drafts");
        goto out;
    }
    arr = json_array();
    res = json_object();
    if (!arr || !res) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_REVIEW_LIST, &st)))
        goto out;
    sqlite3_bind_int(st, 1, MAX_REVIEW_LIST);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = summary_row(st, NULL, NULL);
        if (!o || json_array_append_new(arr, o) != 0) {
            r = CX_ENOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = cx_store_sqlerr(s, rc, "listing drafts");
    if (r)
        goto out;
    /* count is the whole queue; at most MAX_REVIEW_LIST drafts are listed */
    json_object_set_new(res, "drafts", arr);
    arr = NULL;
    json_object_set_new(res, "count", json_integer(total));
    *out = res;
    res = NULL;
out:
    cx_store_read_end(s);
    json_decref(arr);
    json_decref(res);
    return r;
}
