/* SPDX-License-Identifier: Apache-2.0 */
/* The sync protocol's semantics (see sync.h). Items are stored as their
 * JSON envelope with the members the core owns (server_seq, review,
 * versions) set here; a pull returns each item once, at its latest seq. */
#include "core/sync.h"

#include "core/audit.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const KINDS[] = {"observation", "draft", "thread", "comment",
                                    "artifact", "subcortex", NULL};
static const char *const STATUSES[] = {"recorded", "pending", "approved", "rejected",
                                       "changes_requested", "canon", "published", "accepted",
                                       NULL};
static const char *const DECISIONS[] = {"approve", "reject", "changes_requested", NULL};

static bool in_set(const char *v, const char *const *set) {
    for (; v && *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

bool cx_sync_sha_valid(const char *sha) {
    if (!sha || strlen(sha) != 64)
        return false;
    for (const char *c = sha; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static bool may_review(const cx_principal *p) {
    return strcmp(p->role, "reviewer") == 0 || strcmp(p->role, "admin") == 0;
}

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* Checks an item envelope from a client; the reason goes to buf. */
static bool item_valid(const json_t *it, char *why, size_t cap) {
    if (!json_is_object(it))
        return snprintf(why, cap, "invalid: item must be an object"), false;
    const char *id = str(it, "id"), *kind = str(it, "kind"), *status = str(it, "status");
    const char *vis = str(it, "visibility");
    if (!id || !cx_ulid_valid(id))
        return snprintf(why, cap, "invalid: item.id must be a ULID"), false;
    if (!in_set(kind, KINDS))
        return snprintf(why, cap, "invalid: item.kind is not a known kind"), false;
    if (!in_set(status, STATUSES))
        return snprintf(why, cap, "invalid: item.status is not a known status"), false;
    if (vis && strcmp(vis, "private") == 0)
        return snprintf(why, cap, "private: private items never leave the machine"), false;
    if (!vis || strcmp(vis, "shared") != 0)
        return snprintf(why, cap, "invalid: item.visibility must be \"shared\""), false;
    const json_t *title = json_object_get(it, "title");
    if (!json_is_string(title) || json_string_length(title) > 1024)
        return snprintf(why, cap, "invalid: item.title must be a string of at most 1024 bytes"),
               false;
    if (!json_is_string(json_object_get(it, "created_at")) ||
        !json_is_string(json_object_get(it, "updated_at")))
        return snprintf(why, cap, "invalid: item.created_at and updated_at must be strings"),
               false;
    const json_t *body = json_object_get(it, "body");
    if (body && !json_is_string(body) && !json_is_null(body))
        return snprintf(why, cap, "invalid: item.body must be a string"), false;
    const json_t *tags = json_object_get(it, "tags");
    if (tags) {
        if (!json_is_array(tags) || json_array_size(tags) > 64)
            return snprintf(why, cap, "invalid: item.tags must be an array of at most 64"), false;
        for (size_t i = 0; i < json_array_size(tags); i++)
            if (!json_is_string(json_array_get(tags, i)))
                return snprintf(why, cap, "invalid: item.tags must hold strings"), false;
    }
    return true;
}

static int load_item(cx_sync *s, const char *team, const char *id, json_t **out, int64_t *seq) {
    char *text = NULL;
    bool deleted = false;
    int r = cx_storage_item_get(s->st, team, id, &text, seq, &deleted);
    if (r)
        return r;
    if (deleted) {
        free(text);
        return cx_error_set(CX_ENOTFOUND, "item %s was deleted", id);
    }
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(o)) {
        json_decref(o);
        return cx_error_set(CX_EIO, "stored item %s is damaged", id);
    }
    *out = o;
    return 0;
}

/* Gives the item a new seq and stores it. */
static int store_item(cx_sync *s, const char *team, json_t *it, int64_t *seq) {
    int r = cx_storage_seq_next(s->st, team, seq);
    if (r)
        return r;
    json_object_set_new(it, "server_seq", json_integer(*seq));
    char *text = json_dumps(it, JSON_COMPACT);
    if (!text)
        return CX_ENOMEM;
    r = cx_storage_item_put(s->st, team, str(it, "id"), str(it, "kind"), str(it, "status"), *seq,
                            false, text);
    free(text);
    return r;
}

static void now_iso(char out[CX_ISO_LEN]) { cx_clock_format(cx_clock_now_ms(), out); }

/* --- push ------------------------------------------------------------- */

typedef struct outcome {
    const char *status; /* "applied" | "duplicate" | "rejected" */
    int64_t seq;
    char reason[256];
} outcome;

__attribute__((format(printf, 2, 3)))
static int reject(outcome *o, const char *fmt, ...) {
    char tmp[sizeof o->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    o->status = "rejected";
    memcpy(o->reason, tmp, sizeof tmp);
    return 0;
}

static int op_item_put(cx_sync *s, const cx_principal *p, const json_t *op, outcome *o) {
    const json_t *in = json_object_get(op, "item");
    if (!item_valid(in, o->reason, sizeof o->reason))
        return reject(o, "%s", o->reason);
    const char *kind = str(in, "kind"), *id = str(in, "id");
    if (strcmp(kind, "thread") == 0 && !may_review(p))
        return reject(o, "forbidden: only reviewer or admin keys create canon threads");
    json_t *old = NULL, *it = NULL;
    int64_t oldseq = 0;
    int r = load_item(s, p->team, id, &old, &oldseq);
    if (r && r != CX_ENOTFOUND)
        return r;
    r = 0;
    if (old) {
        const char *ok = str(old, "kind"), *os = str(old, "status");
        if (ok && strcmp(ok, kind) != 0 && !(strcmp(ok, "thread") == 0 && strcmp(kind, "draft") == 0)) {
            reject(o, "conflict: item exists as a %s", ok);
            goto out;
        }
        if (ok && (strcmp(ok, "thread") == 0 || strcmp(ok, "draft") == 0) && os &&
            strcmp(kind, "draft") == 0 && strcmp(os, "pending") != 0 &&
            strcmp(os, "changes_requested") != 0) {
            reject(o, "conflict: the draft was already decided (%s)", os);
            goto out;
        }
    }
    it = json_deep_copy(in);
    if (!it) {
        r = CX_ENOMEM;
        goto out;
    }
    /* Members the core owns come from the stored item, never the client. */
    json_object_del(it, "server_seq");
    json_object_del(it, "versions");
    if (strcmp(kind, "draft") == 0) {
        json_object_del(it, "review");
        json_object_set_new(it, "status", json_string("pending"));
        if (old && json_object_get(old, "review"))
            json_object_set(it, "review", json_object_get(old, "review"));
    }
    if (old && json_object_get(old, "versions"))
        json_object_set(it, "versions", json_object_get(old, "versions"));
    if (strcmp(kind, "artifact") == 0 && old && str(old, "status"))
        json_object_set_new(it, "status", json_string(str(old, "status")));
    r = store_item(s, p->team, it, &o->seq);
    if (r == 0)
        o->status = "applied";
out:
    json_decref(old);
    json_decref(it);
    return r;
}

static int cmp_version(const void *a, const void *b) {
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "version"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "version"));
    return x < y ? -1 : x > y;
}

/* Rebuilds versions sorted, and the artifact's status from the latest. */
static int set_versions(json_t *it, json_t *versions) {
    size_t n = json_array_size(versions);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return CX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(versions, i);
    qsort(v, n, sizeof *v, cmp_version);
    json_t *sorted = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    if (n)
        json_object_set(it, "status", json_object_get(json_array_get(sorted, n - 1), "status"));
    json_object_set_new(it, "versions", sorted);
    return 0;
}

static int op_artifact_version(cx_sync *s, const cx_principal *p, const json_t *op, outcome *o) {
    const json_t *in = json_object_get(op, "item"), *ver = json_object_get(op, "version");
    if (!item_valid(in, o->reason, sizeof o->reason))
        return reject(o, "%s", o->reason);
    if (strcmp(str(in, "kind"), "artifact") != 0)
        return reject(o, "invalid: artifact.version needs an item of kind artifact");
    const json_t *vn = json_object_get(ver, "version");
    const char *sha = str(ver, "sha256");
    if (!json_is_object(ver) || !json_is_integer(vn) || json_integer_value(vn) < 1 ||
        !cx_sync_sha_valid(sha))
        return reject(o, "invalid: version needs {\"version\": n >= 1, \"sha256\": hex}");
    bool has = false;
    int r = cx_storage_blob_has(s->st, p->team, sha, &has);
    if (r)
        return r;
    if (!has)
        return reject(o, "missing blob: upload %s first", sha);
    json_t *old = NULL, *it = NULL, *versions = NULL;
    int64_t oldseq = 0;
    r = load_item(s, p->team, str(in, "id"), &old, &oldseq);
    if (r && r != CX_ENOTFOUND)
        return r;
    r = 0;
    if (old && strcmp(str(old, "kind") ? str(old, "kind") : "", "artifact") != 0) {
        reject(o, "conflict: item exists as a %s", str(old, "kind"));
        goto out;
    }
    versions = old && json_is_array(json_object_get(old, "versions"))
                   ? json_deep_copy(json_object_get(old, "versions"))
                   : json_array();
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v) {
        if (json_integer_value(json_object_get(v, "version")) == json_integer_value(vn)) {
            if (strcmp(str(v, "sha256") ? str(v, "sha256") : "", sha) == 0) {
                o->status = "duplicate";
                o->seq = oldseq;
            } else {
                o->status = "rejected";
                snprintf(o->reason, sizeof o->reason, "conflict: version %lld exists with other content", (long long)json_integer_value(vn));
            }
            goto out;
        }
    }
    json_t *nv = json_deep_copy(ver);
    json_object_set_new(nv, "status", json_string("published"));
    json_object_del(nv, "accepted_by");
    json_object_del(nv, "accepted_at");
    json_array_append_new(versions, nv);
    it = json_deep_copy(in);
    if (!it || !versions) {
        r = CX_ENOMEM;
        goto out;
    }
    json_object_del(it, "server_seq");
    if ((r = set_versions(it, versions)))
        goto out;
    r = store_item(s, p->team, it, &o->seq);
    if (r == 0)
        o->status = "applied";
out:
    json_decref(versions);
    json_decref(old);
    json_decref(it);
    return r;
}

/* Applies a decision to a stored draft; shared by push and the endpoint.
 * *conflict_status is set when the draft was decided already. */
static int decide(cx_sync *s, const cx_principal *p, const char *id, const char *decision,
                  const char *note, json_t **item, int64_t *seq) {
    json_t *it = NULL;
    int64_t oldseq = 0;
    int r = load_item(s, p->team, id, &it, &oldseq);
    if (r)
        return r == CX_ENOTFOUND ? cx_error_set(CX_ENOTFOUND, "no draft %s", id) : r;
    const char *kind = str(it, "kind"), *status = str(it, "status");
    if (!kind || strcmp(kind, "draft") != 0 || !status ||
        (strcmp(status, "pending") != 0 && strcmp(status, "changes_requested") != 0)) {
        r = cx_error_set(CX_ECONFLICT, "item %s is a %s with status %s; only pending drafts can "
                         "be decided", id, kind ? kind : "?", status ? status : "?");
        goto out;
    }
    char iso[CX_ISO_LEN];
    now_iso(iso);
    json_t *rv = json_pack("{s:s, s:s, s:s}", "decision", decision, "reviewer", p->name, "at", iso);
    if (!rv) {
        r = CX_ENOMEM;
        goto out;
    }
    if (note && *note)
        json_object_set_new(rv, "note", json_string(note));
    bool approve = strcmp(decision, "approve") == 0;
    json_object_set_new(it, "review", rv);
    json_object_set_new(it, "kind", json_string(approve ? "thread" : "draft"));
    json_object_set_new(it, "status", json_string(approve ? "canon"
                                                  : strcmp(decision, "reject") == 0
                                                      ? "rejected"
                                                      : "changes_requested"));
    json_object_set_new(it, "updated_at", json_string(iso));
    if ((r = store_item(s, p->team, it, seq)))
        goto out;
    json_t *detail = json_pack("{s:s, s:s, s:s, s:I}", "item", id, "decision", decision, "key_id",
                               p->key_id, "seq", (json_int_t)*seq);
    if (!detail) {
        r = CX_ENOMEM;
        goto out;
    }
    if (note && *note)
        json_object_set_new(detail, "note", json_string(note));
    r = cx_audit_append(s->st, s->secret, p->team, p->name, "review.decision", detail);
    json_decref(detail);
out:
    if (r == 0 && item)
        *item = it;
    else
        json_decref(it);
    return r;
}

static int op_review_decision(cx_sync *s, const cx_principal *p, const json_t *op, outcome *o) {
    const json_t *in = json_object_get(op, "item"), *rv = json_object_get(op, "review");
    if (!may_review(p))
        return reject(o, "forbidden: only reviewer or admin keys decide on drafts");
    const char *id = str(in, "id"), *decision = str(rv, "decision");
    if (!id || !cx_ulid_valid(id))
        return reject(o, "invalid: item.id must be a ULID");
    if (!in_set(decision, DECISIONS))
        return reject(o, "invalid: review.decision must be approve, reject or changes_requested");
    const char *note = str(rv, "note") ? str(rv, "note") : str(rv, "reason");
    int64_t seq = 0;
    json_t *cur = NULL;
    int r = load_item(s, p->team, id, &cur, &seq);
    if (r == CX_ENOTFOUND) {
        /* The draft never reached the core (reviewed before an upstream
         * was set): store it as pending first. */
        if (!item_valid(in, o->reason, sizeof o->reason))
            return reject(o, "%s", o->reason);
        json_t *d = json_deep_copy(in);
        if (!d)
            return CX_ENOMEM;
        json_object_set_new(d, "kind", json_string("draft"));
        json_object_set_new(d, "status", json_string("pending"));
        json_object_del(d, "review");
        r = store_item(s, p->team, d, &seq);
        json_decref(d);
        if (r)
            return r;
    } else if (r) {
        return r;
    } else {
        const json_t *prev = json_object_get(cur, "review");
        const char *ps = str(cur, "status");
        bool pending = ps && (strcmp(ps, "pending") == 0 || strcmp(ps, "changes_requested") == 0);
        bool same = !pending && str(prev, "decision") &&
                    strcmp(str(prev, "decision"), decision) == 0;
        json_decref(cur);
        if (same) {
            o->status = "duplicate";
            o->seq = seq;
            return 0;
        }
    }
    r = decide(s, p, id, decision, note, NULL, &o->seq);
    if (r == CX_ECONFLICT || r == CX_ENOTFOUND)
        return reject(o, "conflict: %s", cx_error_last());
    if (r == 0)
        o->status = "applied";
    return r;
}

static void op_digest(const json_t *op, uint8_t out[32], int *r) {
    char *text = json_dumps(op, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        *r = CX_ENOMEM;
        return;
    }
    crypto_generichash(out, 32, (const unsigned char *)text, strlen(text), NULL, 0);
    free(text);
}

int cx_sync_push(cx_sync *s, const cx_principal *p, const json_t *req, json_t **out,
                 long *applied) {
    const json_t *ops = json_object_get(req, "ops");
    if (!json_is_object(req) || !json_is_array(ops))
        return cx_error_set(CX_EINVAL, "the body must be {\"ops\": [...]}");
    if (json_array_size(ops) > CX_SYNC_MAX_OPS)
        return cx_error_set(CX_ELIMIT, "%zu ops in one push; the limit is %d",
                            json_array_size(ops), CX_SYNC_MAX_OPS);
    size_t i;
    const json_t *op;
    json_array_foreach(ops, i, op) {
        const json_t *id = json_object_get(op, "op_id");
        if (!json_is_object(op) || !json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > 128)
            return cx_error_set(CX_EINVAL, "ops[%zu]: op_id must be a string of 1-128 bytes", i);
        const char *kind = str(op, "op");
        if (!kind || (strcmp(kind, "item.put") && strcmp(kind, "artifact.version") &&
                      strcmp(kind, "review.decision")))
            return cx_error_set(CX_EINVAL,
                                "ops[%zu]: op must be item.put, artifact.version or review.decision",
                                i);
        if (!json_is_object(json_object_get(op, "item")))
            return cx_error_set(CX_EINVAL, "ops[%zu]: item must be an object", i);
    }
    json_t *results = json_array();
    if (!results)
        return CX_ENOMEM;
    int r = cx_storage_begin(s->st, true);
    if (r) {
        json_decref(results);
        return r;
    }
    long n_applied = 0;
    json_array_foreach(ops, i, op) {
        const char *op_id = str(op, "op_id"), *kind = str(op, "op");
        outcome o = {.status = NULL};
        uint8_t digest[32], seen[32];
        int64_t seq = 0;
        op_digest(op, digest, &r);
        if (r)
            break;
        r = cx_storage_op_get(s->st, p->team, op_id, seen, &seq);
        if (r == 0) {
            if (sodium_memcmp(seen, digest, 32) == 0) {
                o.status = "duplicate";
                o.seq = seq;
            } else {
                reject(&o, "conflict: op_id %s was used before for other content", op_id);
            }
        } else if (r == CX_ENOTFOUND) {
            r = strcmp(kind, "item.put") == 0           ? op_item_put(s, p, op, &o)
                : strcmp(kind, "artifact.version") == 0 ? op_artifact_version(s, p, op, &o)
                                                        : op_review_decision(s, p, op, &o);
            if (r == 0 && strcmp(o.status, "applied") == 0) {
                r = cx_storage_op_put(s->st, p->team, op_id, digest, o.seq);
                n_applied++;
            }
        }
        if (r)
            break;
        json_t *res = json_pack("{s:s, s:s}", "op_id", op_id, "status", o.status);
        if (!res) {
            r = CX_ENOMEM;
            break;
        }
        if (o.seq > 0)
            json_object_set_new(res, "seq", json_integer(o.seq));
        if (strcmp(o.status, "rejected") == 0)
            json_object_set_new(res, "reason", json_string(o.reason));
        json_array_append_new(results, res);
    }
    if (r == 0)
        r = cx_storage_commit(s->st);
    else
        cx_storage_rollback(s->st);
    if (r) {
        json_decref(results);
        return r;
    }
    *applied += n_applied;
    *out = json_pack("{s:o}", "results", results);
    return *out ? 0 : CX_ENOMEM;
}

/* --- pull, queue -------------------------------------------------------- */

typedef struct page {
    json_t *changes;
    int64_t last;
    int count, limit;
    bool more;
} page;

static int add_change(void *ud, int64_t seq, const char *id, const char *json) {
    page *pg = ud;
    if (pg->count == pg->limit) {
        pg->more = true;
        return 0;
    }
    json_t *c;
    if (json) {
        json_t *it = json_loads(json, 0, NULL);
        if (!it)
            return cx_error_set(CX_EIO, "stored item %s is damaged", id);
        c = json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "item", it);
    } else {
        c = json_pack("{s:I, s:s, s:b}", "seq", (json_int_t)seq, "id", id, "deleted", 1);
    }
    if (!c)
        return CX_ENOMEM;
    json_array_append_new(pg->changes, c);
    pg->last = seq;
    pg->count++;
    return 0;
}

int cx_sync_pull(cx_sync *s, const cx_principal *p, int64_t since, int limit, json_t **out) {
    if (since < 0)
        return cx_error_set(CX_EINVAL, "since must be a seq >= 0");
    if (limit < 1)
        limit = 1;
    if (limit > CX_SYNC_MAX_PULL)
        limit = CX_SYNC_MAX_PULL;
    page pg = {.changes = json_array(), .last = since, .limit = limit};
    if (!pg.changes)
        return CX_ENOMEM;
    int r = cx_storage_begin(s->st, false);
    if (r)
        goto out;
    int64_t horizon = 0;
    r = cx_storage_horizon(s->st, p->team, &horizon);
    if (r == 0 && since > 0 && since < horizon)
        r = cx_error_set(CX_EGONE, "cursor %lld is older than the tombstone horizon %lld; pull "
                         "again from 0", (long long)since, (long long)horizon);
    if (r == 0)
        r = cx_storage_changes(s->st, p->team, since, limit + 1, add_change, &pg);
    cx_storage_rollback(s->st); /* read only */
    if (r)
        goto out;
    *out = json_pack("{s:O, s:I, s:b}", "changes", pg.changes, "next", (json_int_t)pg.last, "more",
                     pg.more);
    if (!*out)
        r = CX_ENOMEM;
out:
    json_decref(pg.changes);
    return r;
}

static int add_draft(void *ud, const char *json) {
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "a stored draft is damaged");
    return json_array_append_new(ud, it) ? CX_ENOMEM : 0;
}

int cx_sync_queue(cx_sync *s, const cx_principal *p, int limit, json_t **out) {
    if (limit < 1 || limit > 500)
        limit = limit < 1 ? 100 : 500;
    json_t *drafts = json_array();
    if (!drafts)
        return CX_ENOMEM;
    int64_t total = 0;
    int r = cx_storage_begin(s->st, false);
    if (r == 0) {
        r = cx_storage_queue(s->st, p->team, limit, add_draft, drafts, &total);
        cx_storage_rollback(s->st);
    }
    if (r) {
        json_decref(drafts);
        return r;
    }
    *out = json_pack("{s:o, s:I}", "drafts", drafts, "total", (json_int_t)total);
    return *out ? 0 : CX_ENOMEM;
}

/* --- review ------------------------------------------------------------- */

int cx_sync_decide(cx_sync *s, const cx_principal *p, const char *draft_id, const json_t *req,
                   json_t **out) {
    if (!may_review(p))
        return cx_error_set(CX_EFORBIDDEN, "a %s key cannot decide on drafts; use a reviewer or "
                            "admin key", p->role);
    if (!cx_ulid_valid(draft_id))
        return cx_error_set(CX_ENOTFOUND, "no draft %s", draft_id);
    const char *decision = str(req, "decision");
    const json_t *note = json_object_get(req, "note");
    if (!json_is_object(req) || !in_set(decision, DECISIONS))
        return cx_error_set(CX_EINVAL,
                            "decision must be \"approve\", \"reject\" or \"changes_requested\"");
    if (note && (!json_is_string(note) || json_string_length(note) > 8192))
        return cx_error_set(CX_EINVAL, "note must be a string of at most 8192 bytes");
    if (strcmp(decision, "approve") != 0 && (!note || json_string_length(note) == 0))
        return cx_error_set(CX_EINVAL, "%s needs a note saying why", decision);
    int r = cx_storage_begin(s->st, true);
    if (r)
        return r;
    json_t *it = NULL;
    int64_t seq = 0;
    r = decide(s, p, draft_id, decision, json_string_value(note), &it, &seq);
    if (r == 0)
        r = cx_storage_commit(s->st);
    else
        cx_storage_rollback(s->st);
    if (r) {
        json_decref(it);
        return r;
    }
    *out = json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "item", it);
    return *out ? 0 : CX_ENOMEM;
}

int cx_sync_accept(cx_sync *s, const cx_principal *p, const char *artifact_id, long n,
                   json_t **out) {
    if (!may_review(p))
        return cx_error_set(CX_EFORBIDDEN, "a %s key cannot accept artifacts; use a reviewer or "
                            "admin key", p->role);
    if (!cx_ulid_valid(artifact_id) || n < 1)
        return cx_error_set(CX_ENOTFOUND, "no artifact %s version %ld", artifact_id, n);
    int r = cx_storage_begin(s->st, true);
    if (r)
        return r;
    json_t *it = NULL, *versions = NULL;
    int64_t seq = 0;
    if ((r = load_item(s, p->team, artifact_id, &it, &seq)))
        goto out;
    versions = json_object_get(it, "versions");
    json_t *v = NULL, *found = NULL;
    size_t i;
    json_array_foreach(versions, i, v)
        if (json_integer_value(json_object_get(v, "version")) == n)
            found = v;
    if (strcmp(str(it, "kind") ? str(it, "kind") : "", "artifact") != 0 || !found) {
        r = cx_error_set(CX_ENOTFOUND, "no artifact %s version %ld", artifact_id, n);
        goto out;
    }
    if (strcmp(str(found, "status") ? str(found, "status") : "", "accepted") != 0) {
        char iso[CX_ISO_LEN];
        now_iso(iso);
        json_object_set_new(found, "status", json_string("accepted"));
        json_object_set_new(found, "accepted_by", json_string(p->name));
        json_object_set_new(found, "accepted_at", json_string(iso));
        json_object_set_new(it, "updated_at", json_string(iso));
        json_t *copy = json_deep_copy(versions);
        if (!copy || (r = set_versions(it, copy))) {
            json_decref(copy);
            r = r ? r : CX_ENOMEM;
            goto out;
        }
        json_decref(copy);
        if ((r = store_item(s, p->team, it, &seq)))
            goto out;
        json_t *detail = json_pack("{s:s, s:I, s:s, s:I}", "item", artifact_id, "version",
                                   (json_int_t)n, "key_id", p->key_id, "seq", (json_int_t)seq);
        if (!detail) {
            r = CX_ENOMEM;
            goto out;
        }
        r = cx_audit_append(s->st, s->secret, p->team, p->name, "artifact.accept", detail);
        json_decref(detail);
    }
out:
    if (r == 0)
        r = cx_storage_commit(s->st);
    else
        cx_storage_rollback(s->st);
    if (r) {
        json_decref(it);
        return r;
    }
    *out = json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "item", it);
    return *out ? 0 : CX_ENOMEM;
}

/* --- blobs -------------------------------------------------------------- */

int cx_sync_blobs_missing(cx_sync *s, const cx_principal *p, const json_t *req, json_t **out) {
    const json_t *list = json_object_get(req, "sha256");
    if (!json_is_object(req) || !json_is_array(list))
        return cx_error_set(CX_EINVAL, "the body must be {\"sha256\": [...]}");
    if (json_array_size(list) > CX_SYNC_MAX_MISSING)
        return cx_error_set(CX_ELIMIT, "at most %d hashes per request", CX_SYNC_MAX_MISSING);
    size_t i;
    const json_t *h;
    json_array_foreach(list, i, h)
        if (!cx_sync_sha_valid(json_string_value(h)))
            return cx_error_set(CX_EINVAL, "sha256[%zu] is not 64 lowercase hex digits", i);
    json_t *missing = json_array();
    if (!missing)
        return CX_ENOMEM;
    int r = cx_storage_begin(s->st, false);
    if (r == 0) {
        json_array_foreach(list, i, h) {
            bool has = false;
            if ((r = cx_storage_blob_has(s->st, p->team, json_string_value(h), &has)))
                break;
            if (!has)
                json_array_append(missing, (json_t *)h);
        }
        cx_storage_rollback(s->st);
    }
    if (r) {
        json_decref(missing);
        return r;
    }
    *out = json_pack("{s:o}", "missing", missing);
    return *out ? 0 : CX_ENOMEM;
}

int cx_sync_blob_put(cx_sync *s, const cx_principal *p, const char *sha, const void *data,
                     size_t len, bool *created) {
    if (!cx_sync_sha_valid(sha))
        return cx_error_set(CX_EINVAL, "a blob is named by 64 lowercase hex digits");
    if (len > s->max_blob)
        return cx_error_set(CX_ELIMIT, "the blob is %zu bytes; the limit is %zu", len,
                            s->max_blob);
    uint8_t d[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(d, data, len);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    if (strcmp(hex, sha) != 0)
        return cx_error_set(CX_EINVAL, "the content hashes to %s, not %s; blob refused", hex, sha);
    int r = cx_storage_begin(s->st, true);
    if (r)
        return r;
    r = cx_storage_blob_put(s->st, p->team, sha, data, len, created);
    if (r == 0)
        return cx_storage_commit(s->st);
    cx_storage_rollback(s->st);
    return r;
}

int cx_sync_blob_get(cx_sync *s, const cx_principal *p, const char *sha, void **data,
                     size_t *len) {
    if (!cx_sync_sha_valid(sha))
        return cx_error_set(CX_ENOTFOUND, "no blob %s", sha);
    int r = cx_storage_begin(s->st, false);
    if (r)
        return r;
    r = cx_storage_blob_get(s->st, p->team, sha, data, len);
    cx_storage_rollback(s->st);
    return r;
}

/* --- request bodies ------------------------------------------------------ */

int cx_sync_handle_body(cx_sync *s, const cx_principal *p, cx_sync_body kind, const char *arg,
                        const char *body, size_t len, json_t **out, long *applied) {
    if (len > CX_SYNC_MAX_BODY)
        return cx_error_set(CX_ELIMIT, "the request body is %zu bytes; the limit is %u", len,
                            CX_SYNC_MAX_BODY);
    json_error_t err;
    json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        return cx_error_set(CX_EINVAL, "malformed JSON: %s (line %d, column %d)", err.text,
                            err.line, err.column);
    long dummy = 0;
    int r;
    switch (kind) {
    case CX_SYNC_BODY_PUSH:
        r = cx_sync_push(s, p, doc, out, applied ? applied : &dummy);
        break;
    case CX_SYNC_BODY_MISSING:
        r = cx_sync_blobs_missing(s, p, doc, out);
        break;
    case CX_SYNC_BODY_DECISION:
        r = cx_sync_decide(s, p, arg ? arg : "", doc, out);
        break;
    default:
        r = cx_error_set(CX_EINVAL, "no such request kind");
        break;
    }
    json_decref(doc);
    return r;
}

/* --- admin: forget, compact ------------------------------------------- */

int cx_sync_forget(cx_sync *s, const char *team, const char *actor, const char *id,
                   const char *reason, int64_t *seq) {
    if (!id || !cx_ulid_valid(id))
        return cx_error_set(CX_EINVAL, "an item id is a ULID");
    int r = cx_storage_begin(s->st, true);
    if (r)
        return r;
    json_t *it = NULL, *detail = NULL;
    int64_t oldseq = 0;
    if ((r = load_item(s, team, id, &it, &oldseq))) {
        if (r == CX_ENOTFOUND)
            cx_error_set(CX_ENOTFOUND, "team %s has no item %s (or it was forgotten already)",
                         team, id);
        goto out;
    }
    const char *kind = str(it, "kind") ? str(it, "kind") : "observation";
    const char *status = str(it, "status") ? str(it, "status") : "recorded";
    if ((r = cx_storage_seq_next(s->st, team, seq)) ||
        (r = cx_storage_item_put(s->st, team, id, kind, status, *seq, true, NULL)))
        goto out;
    json_t *blobs = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(it, "versions"), i, v) {
        const char *sha = str(v, "sha256");
        bool gone = false;
        if (!cx_sync_sha_valid(sha))
            continue;
        if ((r = cx_storage_blob_drop_unused(s->st, team, sha, &gone)))
            break;
        if (gone)
            json_array_append_new(blobs, json_string(sha));
    }
    detail = json_pack("{s:s, s:s, s:I, s:o}", "item", id, "kind", kind, "seq", (json_int_t)*seq,
                       "blobs_deleted", blobs);
    if (r)
        goto out;
    if (!detail) {
        r = CX_ENOMEM;
        goto out;
    }
    if (reason && *reason)
        json_object_set_new(detail, "reason", json_string(reason));
    r = cx_audit_append(s->st, s->secret, team, actor, "item.forget", detail);
out:
    json_decref(detail);
    json_decref(it);
    if (r == 0)
        return cx_storage_commit(s->st);
    cx_storage_rollback(s->st);
    return r;
}

int cx_sync_compact(cx_sync *s, const char *team, const char *actor, int64_t before,
                    int64_t *dropped, int64_t *horizon) {
    if (before < 1)
        return cx_error_set(CX_EINVAL, "--before-seq must be a seq >= 1");
    int r = cx_storage_begin(s->st, true);
    if (r)
        return r;
    int64_t last = 0, old = 0;
    json_t *detail = NULL;
    if ((r = cx_storage_seq_last(s->st, team, &last)) ||
        (r = cx_storage_horizon(s->st, team, &old)))
        goto out;
    if (before > last + 1)
        before = last + 1;
    if ((r = cx_storage_compact(s->st, team, before, dropped)))
        goto out;
    *horizon = before > old ? before : old;
    detail = json_pack("{s:I, s:I, s:I}", "before_seq", (json_int_t)before, "horizon",
                       (json_int_t)*horizon, "tombstones_dropped", (json_int_t)*dropped);
    r = detail ? cx_audit_append(s->st, s->secret, team, actor, "feed.compact", detail)
               : CX_ENOMEM;
out:
    json_decref(detail);
    if (r == 0)
        return cx_storage_commit(s->st);
    cx_storage_rollback(s->st);
    return r;
}
