/* SPDX-License-Identifier: Apache-2.0 */
/* Pulled changes into the store (see apply.h), on the store's write
 * transaction runner, which reruns a whole transaction on SQLITE_BUSY: the
 * tx functions here start from nothing each time. */
#include "store/apply.h"

#include "redact/redact.h"
#include "store/kv.h"
#include "store/store-internal.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* ---- one page ---- */

typedef struct apply_ctx {
    const json_t *changes;
    int64_t next;
    cx_apply_result res;
} apply_ctx;

/* Counts a skipped change: `id` as given by the core (kept only when it is
 * an item id, so that nothing else it sent lands in the store) and the
 * detail of the check that failed. */
static int skip(apply_ctx *c, const char *id, const char *why) {
    char nid[CX_WIRE_MAX_ID + 1];
    c->res.skipped++;
    if (id && cx_ulid_valid(id) && cx_wire_id_norm("id", id, nid) == 0)
        snprintf(c->res.last_skip_id, sizeof c->res.last_skip_id, "%s", nid);
    else
        c->res.last_skip_id[0] = '\0';
    size_t n = 0;
    for (const char *p = why ? why : "invalid"; *p && n + 1 < sizeof c->res.last_skip; p++)
        c->res.last_skip[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    c->res.last_skip[n] = '\0';
    cx_error_clear();
    return 0;
}

static const char SQL_LOCAL[] = "SELECT kind, visibility FROM items WHERE id = ?1";
static const char SQL_PENDING[] =
    "SELECT 1 FROM outbox WHERE item_id = ?1 AND rejected_reason IS NULL LIMIT 1";

/* What this store holds under an id. */
typedef struct local_item {
    bool has;
    cx_kind kind;
    bool private_;
    bool pending; /* unpushed ops */
} local_item;

static int read_local(cx_store *s, const char *id, local_item *out) {
    sqlite3_stmt *st;
    *out = (local_item){.kind = CX_KIND_INVALID};
    int r = cx_store_prepare(s, SQL_LOCAL, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->has = true;
        out->kind = cx_kind_parse((const char *)sqlite3_column_text(st, 0));
        const char *vis = (const char *)sqlite3_column_text(st, 1);
        out->private_ = vis && strcmp(vis, "private") == 0;
    } else if (rc != SQLITE_DONE) {
        r = cx_store_sqlerr(s, rc, "reading an item");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r || !out->has)
        return r;
    if ((r = cx_store_prepare(s, SQL_PENDING, &st)))
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        out->pending = true;
    else if (rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading the outbox");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* A copy of the pulled item with every text redacted, as the core redacts
 * what it receives (cx_redact_item). */
static int redacted_copy(const json_t *raw, json_t **out) {
    json_t *it = json_deep_copy(raw);
    if (!it)
        return CX_ENOMEM;
    int r = cx_redact_item(it, NULL);
    if (r) {
        json_decref(it);
        return r;
    }
    *out = it;
    return 0;
}

static uint64_t time_ms(const json_t *it, const char *k, uint64_t def) {
    uint64_t ms;
    const char *v = str(it, k);
    return (v && cx_clock_parse(v, &ms) == 0) ? ms : def;
}

static char *arr_text(const json_t *it, const char *k) {
    const json_t *a = json_object_get(it, k);
    return json_is_array(a) ? json_dumps(a, JSON_COMPACT) : strdup("[]");
}

/* The parent id normalised, or "" when none or not in this store. */
static int parent_of(cx_store *s, const json_t *it, char out[CX_WIRE_MAX_ID + 1]) {
    const char *p = str(it, "parent_id");
    out[0] = '\0';
    if (!p || !*p)
        return 0;
    if (cx_wire_id_norm("parent_id", p, out) != 0) {
        cx_error_clear();
        out[0] = '\0';
        return 0;
    }
    local_item l;
    int r = read_local(s, out, &l);
    if (r == 0 && !l.has)
        out[0] = '\0';
    return r;
}

/* NULL when the item's status is one a core may have decided, else why
 * not: a sidecar ranks as canon (or accepted) only what the core's
 * reviewer decided, so a thread or an approved draft must come with a
 * review {decision: approve}, a rejected draft or one with changes
 * requested with that decision, and an accepted artifact with a version
 * that is accepted and names who accepted it. A forged status is skipped
 * like any invalid item, never stored as claimed nor downgraded. */
static const char *undecided(const json_t *it) {
    cx_kind k = cx_kind_parse(str(it, "kind"));
    cx_status s = cx_status_parse(str(it, "status"));
    const json_t *rv = json_object_get(it, "review");
    cx_decision d = json_is_object(rv) ? cx_decision_parse(str(rv, "decision"))
                                       : CX_DECISION_INVALID;
    if (k == CX_KIND_THREAD || (k == CX_KIND_DRAFT && s == CX_STATUS_APPROVED))
        return d == CX_DECISION_APPROVE ? NULL
                                        : "item.review: a canon or approved item without a "
                                          "reviewer's approve decision";
    if (k == CX_KIND_DRAFT && (s == CX_STATUS_REJECTED || s == CX_STATUS_CHANGES_REQUESTED))
        return d != CX_DECISION_INVALID && cx_decision_status(d) == s
                   ? NULL
                   : "item.review: a decided draft without the reviewer's decision";
    if (k == CX_KIND_ARTIFACT) {
        size_t i;
        const json_t *v;
        bool accepted = false;
        json_array_foreach(json_object_get(it, "versions"), i, v) {
            const char *by = str(v, "accepted_by");
            cx_status vs = cx_status_parse(str(v, "status"));
            if (vs != CX_STATUS_PUBLISHED && vs != CX_STATUS_ACCEPTED)
                return "item.versions: a version's status must be published or accepted";
            if (vs == CX_STATUS_ACCEPTED && !(by && *by))
                return "item.versions: a version accepted without the reviewer who accepted it";
            accepted = accepted || vs == CX_STATUS_ACCEPTED;
        }
        if (s == CX_STATUS_ACCEPTED && !accepted)
            return "item.versions: an accepted artifact without a version a reviewer accepted";
    }
    return NULL;
}

/* NULL when every version of a pulled artifact that says how large its
 * content is says a size within the limit of one version (the fetch of its
 * blob is held to that size; one that says none is held to the limit),
 * else why not. */
static const char *bad_sizes(const json_t *it) {
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(it, "versions"), i, v) {
        const json_t *n = json_object_get(v, "size");
        if (!n || json_is_null(n))
            continue;
        if (!json_is_integer(n) || json_integer_value(n) < 0 ||
            json_integer_value(n) > (json_int_t)CX_STORE_MAX_BLOB)
            return "item.versions: a version's size must be an integer from 0 to the limit of "
                   "one version's content";
    }
    return NULL;
}

static const char SQL_VBLOB[] =
    "INSERT INTO blobs (sha256, size, created_at, present) VALUES (?1, ?2, ?3, 0)"
    " ON CONFLICT (sha256) DO NOTHING";
static const char SQL_VPUT[] =
    "INSERT INTO artifact_versions (artifact_id, version, sha256, size, status, created_at,"
    " source_path, accepted_by, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (artifact_id, version) DO UPDATE SET sha256 = excluded.sha256,"
    " size = excluded.size, status = excluded.status,"
    " source_path = coalesce(excluded.source_path, source_path),"
    " accepted_by = excluded.accepted_by, accepted_at = excluded.accepted_at";

/* The versions of a pulled artifact (checked by cx_wire_item_check,
 * undecided and bad_sizes) into artifact_versions: each names a blob,
 * recorded as absent until the sync engine has fetched it from the core
 * (cx_blob_missing) unless this machine already holds that content. The
 * core's word wins for a version it has (its content, its acceptance); a
 * local version the core never took stays. */
static int apply_versions(cx_store *s, const char *id, const json_t *it, uint64_t now) {
    size_t i;
    const json_t *v;
    int r = 0;
    json_array_foreach(json_object_get(it, "versions"), i, v) {
        sqlite3_stmt *st;
        const char *sha = str(v, "sha256"), *sp = str(v, "source_path"),
                   *by = str(v, "accepted_by");
        const json_t *jsize = json_object_get(v, "size");
        /* -1: not said; known once the content is fetched */
        int64_t size = json_is_integer(jsize) ? (int64_t)json_integer_value(jsize) : -1;
        bool acc = cx_status_parse(str(v, "status")) == CX_STATUS_ACCEPTED;
        if ((r = cx_store_prepare(s, SQL_VBLOB, &st)))
            return r;
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, size);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
        if ((r = cx_store_exec_stmt(s, st, "recording a pulled blob")))
            return r;
        if ((r = cx_store_prepare(s, SQL_VPUT, &st)))
            return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)json_integer_value(json_object_get(v, "version")));
        sqlite3_bind_text(st, 3, sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, size);
        sqlite3_bind_text(st, 5, acc ? "accepted" : "published", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)time_ms(v, "created_at", now));
        cx_store_bind_text(st, 7, sp && *sp ? sp : NULL);
        cx_store_bind_text(st, 8, acc ? by : NULL);
        if (acc)
            sqlite3_bind_int64(st, 9, (sqlite3_int64)time_ms(v, "accepted_at", now));
        else
            sqlite3_bind_null(st, 9);
        r = cx_store_exec_stmt(s, st, "recording a pulled artifact version");
        sqlite3_clear_bindings(st);
        if (r)
            return r;
    }
    return 0;
}

static const char SQL_SAME_OBS[] =
    "SELECT 1 FROM items WHERE kind = 'observation' AND content_hash = ?1"
    " AND visibility = 'shared'";

/* A pulled observation gets the content hash an identical local one would
 * get, so that observing the same text again here folds as a repeat. (Not
 * the near-duplicate fold key: a pulled item has no vector to compare
 * until the background embeds it, and every key indexed costs the pull.)
 * The core's item carries no hash, and one it sent would have to be
 * checked anyway: it is computed from the redacted text, as observe
 * computes it. When a shared observation with that hash is here
 * already (another workspace recorded the same text), the pulled one is
 * stored without a hash: both stay, and repeats fold into the first. */
static int observation_hash(cx_store *s, cx_item_row *row, char hash[65]) {
    sqlite3_stmt *st;
    cx_item_content_hash(row->body ? row->body : "", hash);
    int r = cx_store_prepare(s, SQL_SAME_OBS, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "looking for an earlier observation");
    row->content_hash = rc == SQLITE_DONE ? hash : NULL;
    return 0;
}

static const char SQL_EVIDENCE[] =
    "SELECT e.value FROM items i, json_each(i.evidence) e WHERE i.id = ?1"
    " AND json_valid(i.evidence) AND e.value IN"
    " (SELECT id FROM items WHERE visibility = 'private')";

/* Appends to the pulled evidence ev the private items that local item id
 * cites: the core never saw them (the outbox drops them from what it
 * pushes), so its copy of the item lacks them, and the local draft keeps
 * its own evidence. */
static int keep_private_evidence(cx_store *s, const char *id, json_t *ev) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_EVIDENCE, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *e = (const char *)sqlite3_column_text(st, 0);
        bool have = false;
        size_t i;
        const json_t *v;
        json_array_foreach(ev, i, v) {
            const char *had = json_string_value(v);
            have = have || (had && e && strcmp(had, e) == 0);
        }
        if (e && !have && json_array_size(ev) < CX_WIRE_MAX_EVIDENCE &&
            json_array_append_new(ev, json_string(e))) {
            r = CX_ENOMEM;
            break;
        }
    }
    if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "reading an item's evidence");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

typedef enum apply_mode { MODE_IGNORE, MODE_INSERT, MODE_UPDATE, MODE_DECIDE } apply_mode;

static int apply_item(cx_store *s, apply_ctx *c, const json_t *raw, int64_t seq) {
    const char *raw_id = str(raw, "id");
    if (cx_wire_item_check(raw) != 0)
        return skip(c, raw_id, cx_error_last());
    const char *forged = undecided(raw);
    if (forged)
        return skip(c, raw_id, forged);
    const char *sizes = bad_sizes(raw);
    if (sizes)
        return skip(c, raw_id, sizes);
    char id[CX_WIRE_MAX_ID + 1];
    if (cx_wire_id_norm("item.id", raw_id, id) != 0)
        return skip(c, raw_id, cx_error_last());
    local_item l;
    int r = read_local(s, id, &l);
    if (r)
        return r;
    cx_kind kind = cx_kind_parse(str(raw, "kind"));
    const json_t *rv = json_object_get(raw, "review");
    apply_mode mode;
    if (!l.has)
        mode = MODE_INSERT;
    else if (l.private_)
        mode = MODE_IGNORE; /* a core never overwrites what never left this machine */
    else if (!l.pending)
        mode = MODE_UPDATE;
    else if (json_is_object(rv) && l.kind == CX_KIND_DRAFT &&
             (kind == CX_KIND_THREAD || kind == CX_KIND_DRAFT))
        mode = MODE_DECIDE; /* the reviewer's decision wins; local text stays */
    else
        mode = MODE_IGNORE; /* local unpushed work wins until it is pushed */
    if (mode == MODE_IGNORE)
        return 0;

    json_t *it = NULL;
    char *tags = NULL, *files = NULL, *evidence = NULL, *review = NULL, *provenance = NULL;
    char parent[CX_WIRE_MAX_ID + 1];
    if ((r = redacted_copy(raw, &it)))
        goto out;
    /* a marker may make a text longer than its limit: held to it again */
    if (cx_wire_item_check(it) != 0) {
        r = skip(c, id, cx_error_last());
        goto out;
    }
    if ((r = parent_of(s, it, parent)))
        goto out;
    if (mode != MODE_INSERT && (kind == CX_KIND_DRAFT || kind == CX_KIND_THREAD)) {
        json_t *ev = json_object_get(it, "evidence");
        if (!json_is_array(ev)) {
            ev = json_array();
            if (!ev || json_object_set_new(it, "evidence", ev)) {
                r = CX_ENOMEM;
                goto out;
            }
        }
        if ((r = keep_private_evidence(s, id, ev)))
            goto out;
    }
    const json_t *jrv = json_object_get(it, "review");
    const json_t *prov = json_object_get(it, "provenance");
    tags = arr_text(it, "tags");
    files = arr_text(it, "files");
    evidence = arr_text(it, "evidence");
    review = json_is_object(jrv) ? json_dumps(jrv, JSON_COMPACT) : NULL;
    provenance = json_is_object(prov) ? json_dumps(prov, JSON_COMPACT) : NULL;
    if (!tags || !files || !evidence || (json_is_object(jrv) && !review) ||
        (json_is_object(prov) && !provenance)) {
        r = CX_ENOMEM;
        goto out;
    }
    uint64_t now = cx_clock_now_ms();
    const char *sub = str(it, "subcortex");
    cx_item_row row = {
        .id = id,
        .kind = str(it, "kind"),
        .status = str(it, "status"),
        .subcortex = sub && *sub ? sub : CX_STORE_DEFAULT_SUBCORTEX,
        .title = str(it, "title"),
        .body = str(it, "body"),
        .tags = tags,
        .files = files,
        .evidence = evidence,
        .author = str(it, "author"),
        .agent = str(it, "agent"),
        .visibility = "shared",
        .parent_id = parent[0] ? parent : NULL,
        .provenance = provenance,
        .review = review,
        .now_ms = now,
        .created_ms = time_ms(it, "created_at", now),
        .updated_ms = time_ms(it, "updated_at", now),
        .server_seq = seq,
    };
    char hash[65];
    if (mode == MODE_INSERT && kind == CX_KIND_OBSERVATION &&
        (r = observation_hash(s, &row, hash)))
        goto out;
    if (mode == MODE_INSERT)
        r = cx_item_insert(s, &row, NULL);
    else
        r = cx_item_update(s, &row, mode == MODE_DECIDE ? CX_ITEM_DECISION : 0);
    if (r == 0 && kind == CX_KIND_ARTIFACT)
        r = apply_versions(s, id, it, now);
    if (r == 0)
        c->res.applied++;
out:
    json_decref(it);
    free(tags);
    free(files);
    free(evidence);
    free(review);
    free(provenance);
    return r;
}

static const char SQL_TOMB_1[] = "UPDATE items SET parent_id = NULL WHERE parent_id = ?1";
static const char SQL_TOMB_2[] = "DELETE FROM reviews WHERE item_id = ?1";
static const char SQL_TOMB_3[] = "DELETE FROM artifact_versions WHERE artifact_id = ?1";
static const char SQL_TOMB_4[] = "DELETE FROM items WHERE id = ?1";

static int exec_id(cx_store *s, const char *sql, const char *id) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    r = cx_store_exec_stmt(s, st, "applying a tombstone");
    sqlite3_clear_bindings(st);
    return r;
}

static int apply_tombstone(cx_store *s, apply_ctx *c, const char *raw_id) {
    char id[CX_WIRE_MAX_ID + 1];
    if (!raw_id || !cx_ulid_valid(raw_id))
        return skip(c, NULL, "tombstone id: must be a ULID");
    if (cx_wire_id_norm("id", raw_id, id) != 0)
        return skip(c, NULL, cx_error_last());
    local_item l;
    int r = read_local(s, id, &l);
    if (r || l.pending || l.private_)
        return r; /* unpushed work wins; private items are not the core's */
    if ((r = exec_id(s, SQL_TOMB_1, id)) || (r = exec_id(s, SQL_TOMB_2, id)) ||
        (r = exec_id(s, SQL_TOMB_3, id)) || (r = exec_id(s, SQL_TOMB_4, id)))
        return r;
    c->res.applied++;
    return 0;
}

/* Adds the page's skips to the running count and records the last one. */
static int record_skips(cx_store *s, const apply_ctx *c) {
    if (c->res.skipped == 0)
        return 0;
    int64_t before = cx_kv_int(s, CX_KV_SKIPPED, 0);
    int r = cx_kv_put_int(s, CX_KV_SKIPPED,
                          (before > 0 ? before : 0) + (int64_t)c->res.skipped);
    if (r)
        return r;
    json_t *j = json_pack("{s:s?, s:s}", "id", c->res.last_skip_id[0] ? c->res.last_skip_id : NULL,
                          "reason", c->res.last_skip);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return CX_ENOMEM;
    r = cx_kv_put(s, CX_KV_LAST_SKIP, text);
    free(text);
    return r;
}

static int apply_tx(cx_store *s, void *ud) {
    apply_ctx *c = ud;
    size_t i;
    const json_t *ch;
    int r = 0;
    c->res = (cx_apply_result){.next = c->next};
    json_array_foreach(c->changes, i, ch) {
        int64_t seq = (int64_t)json_integer_value(json_object_get(ch, "seq"));
        if (json_is_true(json_object_get(ch, "deleted")))
            r = apply_tombstone(s, c, str(ch, "id"));
        else
            r = apply_item(s, c, json_object_get(ch, "item"), seq);
        if (r)
            return r;
    }
    if ((r = record_skips(s, c)))
        return r;
    if ((r = cx_kv_put_int(s, CX_KV_CURSOR, c->next)))
        return r;
    if ((r = cx_kv_put_int(s, CX_KV_LAST_PULL, (int64_t)cx_clock_now_ms())))
        return r;
    return cx_kv_put(s, CX_KV_LAST_ERROR, NULL);
}

int cx_apply_page(cx_store *s, const json_t *page, cx_apply_result *res) {
    const json_t *changes = json_object_get(page, "changes");
    const json_t *jn = json_object_get(page, "next"), *jm = json_object_get(page, "more");
    if (!json_is_object(page) || !json_is_array(changes) || !json_is_integer(jn) ||
        json_integer_value(jn) < 0 || !json_is_boolean(jm))
        return cx_error_set(CX_EINVAL, "the pull page is not {\"changes\": [...], \"next\": N, "
                                       "\"more\": bool}");
    size_t i;
    const json_t *ch;
    json_array_foreach(changes, i, ch) {
        json_int_t seq = json_integer_value(json_object_get(ch, "seq"));
        if (!json_is_object(ch) || !json_is_integer(json_object_get(ch, "seq")) || seq < 1 ||
            seq > json_integer_value(jn) ||
            !(json_is_object(json_object_get(ch, "item")) ||
              (json_is_true(json_object_get(ch, "deleted")) && str(ch, "id"))))
            return cx_error_set(CX_EINVAL, "pull page: changes[%zu] is not {seq, item} or "
                                           "{seq, id, deleted} with seq <= next", i);
    }
    apply_ctx c = {.changes = changes, .next = (int64_t)json_integer_value(jn)};
    int r = cx_store_write(s, apply_tx, &c);
    if (r)
        return r;
    c.res.more = json_is_true(jm);
    if (res)
        *res = c.res;
    return 0;
}

/* ---- rebuild after 410 ---- */

#define DROP_SET                                                                        \
    "(SELECT id FROM items WHERE server_seq IS NOT NULL AND kind != 'artifact'"         \
    " AND id NOT IN (SELECT item_id FROM outbox))"
static const char SQL_RB_1[] = "UPDATE items SET parent_id = NULL WHERE parent_id IN " DROP_SET;
static const char SQL_RB_2[] = "DELETE FROM reviews WHERE item_id IN " DROP_SET;
static const char SQL_RB_3[] = "DELETE FROM items WHERE id IN " DROP_SET;

static int exec_plain(cx_store *s, const char *sql) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, sql, &st);
    return r ? r : cx_store_exec_stmt(s, st, "rebuilding the cache");
}

static int rebuild_tx(cx_store *s, void *ud) {
    (void)ud;
    int r;
    if ((r = exec_plain(s, SQL_RB_1)) || (r = exec_plain(s, SQL_RB_2)) ||
        (r = exec_plain(s, SQL_RB_3)))
        return r;
    return cx_kv_put(s, CX_KV_CURSOR, "0");
}

int cx_apply_rebuild(cx_store *s) {
    return cx_store_write(s, rebuild_tx, NULL);
}
