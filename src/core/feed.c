/* SPDX-License-Identifier: Apache-2.0 */
/* The sync protocol's semantics (see feed.h). Items are stored as their
 * JSON envelope with the members the core owns (server_seq, review,
 * versions) set here; a pull returns each item once, at its latest seq.
 *
 * Nothing a client sends is trusted: a push is checked whole before any op
 * is applied (the envelope of every item against item.json through
 * src/proto/wire.h, ids normalised to upper case, every text redacted with
 * src/redact), so that a secret or an oversized field never reaches the
 * database, and a malformed push is refused as a whole with the field's
 * name. What remains per op (a private item, a conflict, a role that may
 * not do it, a status, review or version only a reviewer sets: see "who
 * sets status" below, refused and audited) is answered per op. */
#include "core/feed.h"

#include "core/audit.h"
#include "proto/wire.h"
#include "redact/redact.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"
#include "util/utf8.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool may_review(const cx_principal *p) {
    return strcmp(p->role, "reviewer") == 0 || strcmp(p->role, "admin") == 0;
}

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static bool is_private(const json_t *it) {
    const char *vis = str(it, "visibility");
    return vis && strcmp(vis, "private") == 0;
}

/* --- the push envelope --------------------------------------------------- */

/* Upper-cases the ULID in member `field` of o (a string, or an array of
 * strings); anything that is not a ULID stays for the envelope check. */
static int norm_ids(json_t *o, const char *field) {
    json_t *v = json_object_get(o, field);
    char id[CX_WIRE_MAX_ID + 1];
    if (json_is_string(v)) {
        if (cx_ulid_valid(json_string_value(v)) &&
            cx_wire_id_norm(field, json_string_value(v), id) == 0)
            return json_string_set(v, id) ? CX_ENOMEM : 0;
        return 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (json_is_string(e) && cx_ulid_valid(json_string_value(e)) &&
            cx_wire_id_norm(field, json_string_value(e), id) == 0 && json_string_set(e, id))
            return CX_ENOMEM;
    }
    return 0;
}

/* A string member of at most max bytes (after redaction), or absent/null. */
static int check_text(size_t i, const char *where, const json_t *o, const char *field,
                      size_t max) {
    const json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return cx_error_set(CX_EINVAL, "ops[%zu].%s.%s: must be a string", i, where, field);
    if (json_string_length(v) > max)
        return cx_error_set(CX_EINVAL, "ops[%zu].%s.%s: at most %zu bytes (got %zu)", i, where,
                            field, max, json_string_length(v));
    return 0;
}

/* The "review" of a review.decision op: a known decision, a note or reason
 * within CX_WIRE_MAX_NOTE. Redacted in place. */
static int check_review(size_t i, json_t *op, cx_redact_report *rep) {
    json_t *rv = json_object_get(op, "review");
    if (!json_is_object(rv))
        return cx_error_set(CX_EINVAL, "ops[%zu].review: must be an object", i);
    if (cx_decision_parse(str(rv, "decision")) == CX_DECISION_INVALID)
        return cx_error_set(CX_EINVAL, "ops[%zu].review.decision: must be approve, reject or "
                            "changes_requested", i);
    int r = cx_redact_json(rv, CX_REDACT_REVIEW_KEEP, rep);
    if (r == 0)
        r = check_text(i, "review", rv, "note", CX_WIRE_MAX_NOTE);
    if (r == 0)
        r = check_text(i, "review", rv, "reason", CX_WIRE_MAX_NOTE);
    if (r == 0)
        r = check_text(i, "review", rv, "reviewer", CX_WIRE_MAX_PRINCIPAL);
    return r;
}

/* The "version" of an artifact.version op, for an item of kind artifact:
 * {"version": n >= 1, "sha256": hex, "source_path"?}. Redacted in place. */
static int check_version(size_t i, json_t *op, cx_redact_report *rep) {
    if (cx_kind_parse(str(json_object_get(op, "item"), "kind")) != CX_KIND_ARTIFACT)
        return cx_error_set(CX_EINVAL, "ops[%zu].item.kind: artifact.version needs an item of "
                            "kind artifact", i);
    json_t *ver = json_object_get(op, "version");
    if (!json_is_object(ver))
        return cx_error_set(CX_EINVAL, "ops[%zu].version: must be an object", i);
    const json_t *vn = json_object_get(ver, "version");
    if (!json_is_integer(vn) || json_integer_value(vn) < 1)
        return cx_error_set(CX_EINVAL, "ops[%zu].version.version: an integer from 1", i);
    if (!cx_wire_sha_valid(str(ver, "sha256")))
        return cx_error_set(CX_EINVAL, "ops[%zu].version.sha256: 64 lower-case hex digits", i);
    int r = cx_redact_json(ver, CX_REDACT_VERSION_KEEP, rep);
    if (r == 0)
        r = check_text(i, "version", ver, "source_path", CX_WIRE_MAX_SOURCE_PATH);
    return r;
}

/* Checks op i of a push and makes it what the core may store: ids
 * normalised, every text redacted, the item held to item.json. op is the
 * core's own copy and is changed in place. A private item is left for its
 * op to refuse. CX_EINVAL with a detail that names the field
 * ("ops[3].item.title: at most 200 bytes (got 1024)"). */
static int clean_op(size_t i, json_t *op, cx_redact_report *rep) {
    json_t *op_id = json_object_get(op, "op_id");
    if (!json_is_object(op) || !json_is_string(op_id) || json_string_length(op_id) == 0 ||
        json_string_length(op_id) > CX_WIRE_MAX_OP_ID)
        return cx_error_set(CX_EINVAL, "ops[%zu].op_id: must be a string of 1-%d bytes", i,
                            CX_WIRE_MAX_OP_ID);
    const char *kind = str(op, "op");
    if (!cx_wire_op_known(kind))
        return cx_error_set(CX_EINVAL, "ops[%zu].op: must be %s, %s or %s", i, CX_OP_ITEM_PUT,
                            CX_OP_ARTIFACT_VERSION, CX_OP_REVIEW_DECISION);
    json_t *it = json_object_get(op, "item");
    if (!json_is_object(it))
        return cx_error_set(CX_EINVAL, "ops[%zu].item: must be an object", i);
    if (is_private(it))
        return 0;
    /* The op id is kept as the op's idempotency key: no secret in it either. */
    int r = cx_redact_json(op_id, NULL, rep);
    if (r == 0)
        r = norm_ids(it, "id");
    if (r == 0)
        r = norm_ids(it, "parent_id");
    if (r == 0)
        r = norm_ids(it, "evidence");
    if (r == 0)
        r = cx_redact_item(it, rep);
    if (r)
        return r;
    if ((r = cx_wire_item_check(it))) {
        if (r == CX_ENOMEM)
            return r;
        char why[512];
        snprintf(why, sizeof why, "%s", cx_error_last());
        return cx_error_set(CX_EINVAL, "ops[%zu].%s", i, why);
    }
    if (strcmp(kind, CX_OP_ARTIFACT_VERSION) == 0)
        return check_version(i, op, rep);
    if (strcmp(kind, CX_OP_REVIEW_DECISION) == 0)
        return check_review(i, op, rep);
    return 0;
}

/* --- items -------------------------------------------------------------- */

static int load_item(cx_storage_tx *tx, const char *team, const char *id, json_t **out,
                     int64_t *seq) {
    char *text = NULL;
    bool deleted = false;
    int r = cx_storage_item_get(tx, team, id, &text, seq, &deleted);
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
static int store_item(cx_storage_tx *tx, const char *team, json_t *it, int64_t *seq) {
    int r = cx_storage_seq_next(tx, team, seq);
    if (r)
        return r;
    json_object_set_new(it, "server_seq", json_integer(*seq));
    char *text = json_dumps(it, JSON_COMPACT);
    if (!text)
        return CX_ENOMEM;
    r = cx_storage_item_put(tx, team, str(it, "id"), str(it, "kind"), str(it, "status"), *seq,
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

/* --- who sets status ----------------------------------------------------
 * Agents create observations (recorded), drafts (pending) and artifact
 * versions (published). Only a reviewer's decision (cx_feed_decide,
 * cx_feed_accept, or a review.decision op from a reviewer key) approves,
 * rejects, requests changes, makes a canon thread or accepts a version.
 * So every pushed item.put and artifact.version is held, whatever the
 * key's role, to cx_transition_allowed(CX_ROLE_AGENT, what is stored, what
 * is claimed); a claim of more is refused per op and written to the audit
 * log as push.refused. */

/* Appends a push.refused entry: who claimed what for which item, and why
 * it was refused. Inside the push's write transaction. */
static int audit_refusal(cx_feed *s, cx_storage_tx *tx, const cx_principal *p, const char *op,
                         const json_t *in, const char *reason) {
    json_t *detail = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s}", "op", op, "item",
                               str(in, "id"), "kind", str(in, "kind"), "status",
                               str(in, "status"), "key_id", p->key_id, "role", p->role, "reason",
                               reason);
    if (!detail)
        return CX_ENOMEM;
    const json_t *rv = json_object_get(in, "review");
    if (json_is_object(rv) && str(rv, "decision"))
        json_object_set_new(detail, "review", json_string(str(rv, "decision")));
    int r = cx_audit_append(tx, s->secret, p->team, p->name, "push.refused", detail);
    json_decref(detail);
    return r;
}

/* Refuses op o as a forged claim: the reason goes to the client and the
 * audit log. */
static int refuse_forged(cx_feed *s, cx_storage_tx *tx, const cx_principal *p, const char *op,
                         const json_t *in, outcome *o, const char *reason) {
    reject(o, "%s", reason);
    return audit_refusal(s, tx, p, op, in, o->reason);
}

/* The stored version numbered like v that the core accepted, if any. */
static bool version_accepted(const json_t *old, const json_t *v) {
    const json_t *n = json_object_get(v, "version"), *e;
    size_t i;
    json_array_foreach(json_object_get(old, "versions"), i, e) {
        if (json_is_integer(n) && json_equal(json_object_get(e, "version"), n))
            return cx_status_parse(str(e, "status")) == CX_STATUS_ACCEPTED;
    }
    return false;
}

/* A version entry claims acceptance when it says accepted or names who
 * accepted it; an echo of what the core accepted is no claim. */
static bool version_claims(const json_t *old, const json_t *v) {
    if (!json_is_object(v))
        return false;
    const char *vs = str(v, "status");
    bool claims = (vs && cx_status_parse(vs) != CX_STATUS_PUBLISHED) ||
                  json_object_get(v, "accepted_by") || json_object_get(v, "accepted_at");
    return claims && !(old && version_accepted(old, v));
}

/* Writes into why (returning true) the reason a pushed item, held against
 * what the core stores (old, NULL for a new item), claims what only a
 * reviewer may set: a status past its kind's initial one that
 * cx_transition_allowed refuses an agent, a canon thread (whose text is a
 * reviewed draft's: no push writes one), a `review` the core did not make,
 * an accepted artifact version. ver is an artifact.version op's version
 * (or NULL). A transition refused for another reason (a kind change, a
 * draft decided already) is a conflict, not a forgery: false. */
static bool forged(const json_t *in, const json_t *ver, const json_t *old, char *why,
                   size_t n) {
    cx_kind to_kind = cx_kind_parse(str(in, "kind"));
    cx_status to = cx_status_parse(str(in, "status"));
    cx_kind from_kind = old ? cx_kind_parse(str(old, "kind")) : CX_KIND_INVALID;
    cx_status from = old ? cx_status_parse(str(old, "status")) : CX_STATUS_INVALID;
    if (to_kind == CX_KIND_THREAD) {
        snprintf(why, n, "forbidden: only a reviewer's decision may make a canon thread "
                         "(POST /v1/drafts/{id}/decision)");
        return true;
    }
    if (!cx_transition_allowed(CX_ROLE_AGENT, from_kind, from, to_kind, to) &&
        to != cx_status_initial(to_kind)) {
        snprintf(why, n, "forbidden: only a reviewer's decision may set status %s",
                 cx_status_name(to));
        return true;
    }
    const json_t *rv = json_object_get(in, "review");
    if (rv && !json_is_null(rv)) {
        const json_t *orv = old ? json_object_get(old, "review") : NULL;
        cx_decision d = cx_decision_parse(str(rv, "decision"));
        if (!json_is_object(rv) || !json_is_object(orv) || d == CX_DECISION_INVALID ||
            cx_decision_parse(str(orv, "decision")) != d) {
            snprintf(why, n, "forbidden: the core owns review; only a reviewer's decision "
                             "sets it");
            return true;
        }
    }
    const json_t *vs = json_object_get(in, "versions"), *v;
    size_t i;
    json_array_foreach(vs, i, v) {
        if (version_claims(old, v)) {
            snprintf(why, n, "forbidden: only a reviewer's decision may accept an artifact "
                             "version (versions[%zu])", i);
            return true;
        }
    }
    if (ver && version_claims(old, ver)) {
        snprintf(why, n, "forbidden: only a reviewer's decision may accept an artifact version");
        return true;
    }
    return false;
}

/* in: the op's item, checked and redacted by clean_op. */
static int op_item_put(cx_feed *s, cx_storage_tx *tx, const cx_principal *p, const json_t *in,
                       outcome *o) {
    cx_kind kind = cx_kind_parse(str(in, "kind"));
    cx_status status = cx_status_parse(str(in, "status"));
    const char *id = str(in, "id");
    json_t *old = NULL, *it = NULL;
    int64_t oldseq = 0;
    int r = load_item(tx, p->team, id, &old, &oldseq);
    if (r && r != CX_ENOTFOUND)
        return r;
    r = 0;
    char why[sizeof o->reason];
    if (forged(in, NULL, old, why, sizeof why)) {
        r = refuse_forged(s, tx, p, CX_OP_ITEM_PUT, in, o, why);
        goto out;
    }
    if (old) {
        const char *okname = str(old, "kind"), *os = str(old, "status");
        cx_kind ok = cx_kind_parse(okname);
        if (!cx_transition_allowed(CX_ROLE_AGENT, ok, cx_status_parse(os), kind, status)) {
            /* a thread is a draft that was approved: its draft may still come */
            if (kind == CX_KIND_DRAFT && (ok == CX_KIND_THREAD || ok == CX_KIND_DRAFT))
                reject(o, "conflict: the draft was already decided (%s)", os ? os : "?");
            else if (ok != kind)
                reject(o, "conflict: item exists as %s %s", cx_wire_article(okname), okname ? okname : "?");
            else
                reject(o, "conflict: %s %s with status %s cannot become %s", cx_wire_article(okname), okname,
                       os ? os : "?", cx_status_name(status));
            goto out;
        }
    }
    it = json_deep_copy(in);
    if (!it) {
        r = CX_ENOMEM;
        goto out;
    }
    /* Members the core owns come from the stored item, never the client
     * (a review equal to the stored one is an echo, checked by forged()). */
    json_object_del(it, "server_seq");
    json_object_del(it, "versions");
    json_object_del(it, "review");
    if (old && json_object_get(old, "review"))
        json_object_set(it, "review", json_object_get(old, "review"));
    if (old && json_object_get(old, "versions"))
        json_object_set(it, "versions", json_object_get(old, "versions"));
    if (kind == CX_KIND_ARTIFACT && old && str(old, "status"))
        json_object_set_new(it, "status", json_string(str(old, "status")));
    r = store_item(tx, p->team, it, &o->seq);
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

/* op: checked and redacted by clean_op (an artifact item, a valid version). */
static int op_artifact_version(cx_feed *s, cx_storage_tx *tx, const cx_principal *p,
                               const json_t *op, outcome *o) {
    const json_t *in = json_object_get(op, "item"), *ver = json_object_get(op, "version");
    const json_t *vn = json_object_get(ver, "version");
    const char *sha = str(ver, "sha256");
    bool has = false;
    int r = cx_storage_blob_has(tx, p->team, sha, &has);
    if (r)
        return r;
    if (!has)
        return reject(o, "missing blob: upload %s first", sha);
    json_t *old = NULL, *it = NULL, *versions = NULL;
    int64_t oldseq = 0;
    r = load_item(tx, p->team, str(in, "id"), &old, &oldseq);
    if (r && r != CX_ENOTFOUND)
        return r;
    r = 0;
    if (old && cx_kind_parse(str(old, "kind")) != CX_KIND_ARTIFACT) {
        reject(o, "conflict: item exists as %s %s", cx_wire_article(str(old, "kind")), str(old, "kind"));
        goto out;
    }
    char why[sizeof o->reason];
    if (forged(in, ver, old, why, sizeof why)) {
        r = refuse_forged(s, tx, p, CX_OP_ARTIFACT_VERSION, in, o, why);
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
    if (json_array_size(versions) >= CX_WIRE_MAX_VERSIONS) {
        reject(o, "limit: the artifact has %d versions, the most one artifact may have",
               CX_WIRE_MAX_VERSIONS);
        goto out;
    }
    json_t *nv = json_deep_copy(ver);
    json_object_set_new(nv, "status", json_string(cx_status_name(CX_STATUS_PUBLISHED)));
    json_object_del(nv, "accepted_by");
    json_object_del(nv, "accepted_at");
    json_array_append_new(versions, nv);
    it = json_deep_copy(in);
    if (!it || !versions) {
        r = CX_ENOMEM;
        goto out;
    }
    json_object_del(it, "server_seq");
    json_object_del(it, "review");
    if (old && json_object_get(old, "review"))
        json_object_set(it, "review", json_object_get(old, "review"));
    if ((r = set_versions(it, versions)))
        goto out;
    r = store_item(tx, p->team, it, &o->seq);
    if (r == 0)
        o->status = "applied";
out:
    json_decref(versions);
    json_decref(old);
    json_decref(it);
    return r;
}

/* Applies a decision to a stored draft; shared by push and the endpoint.
 * id is normalised and note redacted by the caller. CX_ENOTFOUND, and
 * CX_ECONFLICT when the draft was decided already. */
static int decide(cx_feed *s, cx_storage_tx *tx, const cx_principal *p, const char *id,
                  cx_decision d, const char *note, json_t **item, int64_t *seq) {
    json_t *it = NULL;
    int64_t oldseq = 0;
    int r = load_item(tx, p->team, id, &it, &oldseq);
    if (r)
        return r == CX_ENOTFOUND ? cx_error_set(CX_ENOTFOUND, "no draft %s", id) : r;
    const char *kind = str(it, "kind"), *status = str(it, "status");
    if (!cx_awaits_review(cx_kind_parse(kind), cx_status_parse(status))) {
        r = cx_error_set(CX_ECONFLICT, "item %s is %s %s with status %s; only pending drafts can "
                         "be decided", id, cx_wire_article(kind), kind ? kind : "?", status ? status : "?");
        goto out;
    }
    char iso[CX_ISO_LEN];
    now_iso(iso);
    json_t *rv = json_pack("{s:s, s:s, s:s}", "decision", cx_decision_name(d), "reviewer",
                           p->name, "at", iso);
    if (!rv) {
        r = CX_ENOMEM;
        goto out;
    }
    if (note && *note)
        json_object_set_new(rv, "note", json_string(note));
    cx_status to = cx_decision_status(d);
    json_object_set_new(it, "review", rv);
    json_object_set_new(it, "kind", json_string(cx_kind_name(to == CX_STATUS_CANON
                                                                 ? CX_KIND_THREAD
                                                                 : CX_KIND_DRAFT)));
    json_object_set_new(it, "status", json_string(cx_status_name(to)));
    json_object_set_new(it, "updated_at", json_string(iso));
    if ((r = store_item(tx, p->team, it, seq)))
        goto out;
    json_t *detail = json_pack("{s:s, s:s, s:s, s:I}", "item", id, "decision",
                               cx_decision_name(d), "key_id", p->key_id, "seq", (json_int_t)*seq);
    if (!detail) {
        r = CX_ENOMEM;
        goto out;
    }
    if (note && *note)
        json_object_set_new(detail, "note", json_string(note));
    r = cx_audit_append(tx, s->secret, p->team, p->name, "review.decision", detail);
    json_decref(detail);
out:
    if (r == 0 && item)
        *item = it;
    else
        json_decref(it);
    return r;
}

/* op: checked and redacted by clean_op (a ULID item id, a known decision). */
static int op_review_decision(cx_feed *s, cx_storage_tx *tx, const cx_principal *p,
                              const json_t *op, outcome *o) {
    const json_t *in = json_object_get(op, "item"), *rv = json_object_get(op, "review");
    if (!may_review(p)) {
        /* an embedded-mode review pushed with an agent key: not a decision */
        reject(o, "forbidden: only reviewer or admin keys decide on drafts");
        json_t *claim = json_deep_copy(in);
        if (!claim)
            return CX_ENOMEM;
        json_object_set(claim, "review", (json_t *)rv);
        int r = audit_refusal(s, tx, p, CX_OP_REVIEW_DECISION, claim, o->reason);
        json_decref(claim);
        return r;
    }
    const char *id = str(in, "id");
    cx_decision d = cx_decision_parse(str(rv, "decision"));
    const char *note = str(rv, "note") ? str(rv, "note") : str(rv, "reason");
    int64_t seq = 0;
    json_t *cur = NULL;
    int r = load_item(tx, p->team, id, &cur, &seq);
    if (r == CX_ENOTFOUND) {
        /* The draft never reached the core (reviewed before an upstream
         * was set): store it as pending first. */
        json_t *dr = json_deep_copy(in);
        if (!dr)
            return CX_ENOMEM;
        json_object_set_new(dr, "kind", json_string(cx_kind_name(CX_KIND_DRAFT)));
        json_object_set_new(dr, "status", json_string(cx_status_name(CX_STATUS_PENDING)));
        json_object_del(dr, "review");
        r = store_item(tx, p->team, dr, &seq);
        json_decref(dr);
        if (r)
            return r;
    } else if (r) {
        return r;
    } else {
        const json_t *prev = json_object_get(cur, "review");
        bool pending = cx_awaits_review(cx_kind_parse(str(cur, "kind")),
                                        cx_status_parse(str(cur, "status")));
        bool same = !pending && cx_decision_parse(str(prev, "decision")) == d;
        json_decref(cur);
        if (same) {
            o->status = "duplicate";
            o->seq = seq;
            return 0;
        }
    }
    r = decide(s, tx, p, id, d, note, NULL, &o->seq);
    if (r == CX_ECONFLICT || r == CX_ENOTFOUND)
        return reject(o, "conflict: %s", cx_error_last());
    if (r == 0)
        o->status = "applied";
    return r;
}

/* A push refused whole (400) because an op's item claims a status its
 * kind cannot hold, one only a reviewer's decision sets (an observation
 * "canon", an artifact "approved"), is a forged claim too: it is audited
 * as push.refused in a transaction of its own, and the push's error stays
 * what the caller reports. Only names the wire model knows and a ULID id
 * go into the entry (the op was not redacted). Failures to audit are
 * logged nowhere (the engine does not print) and ignored: the push is
 * refused either way. */
typedef struct refusal_run {
    cx_feed *s;
    const cx_principal *p;
    const char *op;
    const json_t *claim;
    const char *reason;
} refusal_run;

static int refusal_tx(cx_storage_tx *tx, void *ud) {
    refusal_run *run = ud;
    return audit_refusal(run->s, tx, run->p, run->op, run->claim, run->reason);
}

static void audit_refused_push(cx_feed *s, const cx_principal *p, const json_t *op) {
    const json_t *in = json_object_get(op, "item");
    cx_kind k = cx_kind_parse(str(in, "kind"));
    cx_status st = cx_status_parse(str(in, "status"));
    bool decided = st == CX_STATUS_APPROVED || st == CX_STATUS_REJECTED ||
                   st == CX_STATUS_CHANGES_REQUESTED || st == CX_STATUS_CANON ||
                   st == CX_STATUS_ACCEPTED;
    if (k == CX_KIND_INVALID || !decided || cx_status_allowed(k, st) ||
        !cx_wire_op_known(str(op, "op")))
        return;
    char why[512], id[CX_WIRE_MAX_ID + 1];
    snprintf(why, sizeof why, "%s", cx_error_last());
    const char *raw = str(in, "id");
    json_t *claim = json_pack("{s:s, s:s}", "kind", cx_kind_name(k), "status",
                              cx_status_name(st));
    if (claim && raw && cx_ulid_valid(raw) && cx_wire_id_norm("id", raw, id) == 0)
        json_object_set_new(claim, "id", json_string(id));
    char reason[256];
    snprintf(reason, sizeof reason, "forbidden: an item of kind %s cannot be %s, and only a "
             "reviewer's decision sets %s", cx_kind_name(k), cx_status_name(st),
             cx_status_name(st));
    refusal_run run = {s, p, str(op, "op"), claim, reason};
    if (claim)
        (void)cx_storage_run(s->st, true, refusal_tx, &run);
    json_decref(claim);
    cx_error_set(CX_EINVAL, "%s", why);
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

/* One run of a push's transaction (cx_storage_run may run it again). */
typedef struct push_run {
    cx_feed *s;
    const cx_principal *p;
    const json_t *ops, *clean; /* as sent; checked and redacted */
    const uint8_t (*digest)[32]; /* of each clean op, made before the transaction */
    json_t *results;
    long applied;
} push_run;

static int push_tx(cx_storage_tx *tx, void *ud) {
    push_run *run = ud;
    cx_feed *s = run->s;
    const cx_principal *p = run->p;
    json_decref(run->results);
    run->applied = 0;
    if (!(run->results = json_array()))
        return CX_ENOMEM;
    size_t i;
    json_t *op;
    int r = 0;
    /* What the loop reads, in one go where the database is remote. */
    size_t n = json_array_size(run->clean);
    const char **ids = calloc(n ? 2 * n : 1, sizeof *ids);
    if (!ids)
        return CX_ENOMEM;
    json_array_foreach(run->clean, i, op) {
        ids[i] = str(op, "op_id");
        ids[n + i] = str(json_object_get(op, "item"), "id");
    }
    r = cx_storage_prefetch(tx, p->team, ids, ids + n, n);
    free(ids);
    if (r)
        return r;
    json_array_foreach(run->clean, i, op) {
        /* the answer names the op as the client did; the core keeps its
         * redacted op id */
        const char *op_id = str(json_array_get(run->ops, i), "op_id"), *key = str(op, "op_id");
        const char *kind = str(op, "op");
        const json_t *in = json_object_get(op, "item");
        outcome o = {.status = NULL};
        const uint8_t *digest = run->digest[i];
        uint8_t seen[32];
        int64_t seq = 0;
        r = cx_storage_op_get(tx, p->team, key, seen, &seq);
        if (r == 0) {
            if (sodium_memcmp(seen, digest, 32) == 0) {
                o.status = "duplicate";
                o.seq = seq;
            } else {
                reject(&o, "conflict: op_id %s was used before for other content", op_id);
            }
        } else if (r == CX_ENOTFOUND) {
            r = is_private(in) ? reject(&o, "private: private items never leave the machine")
                : strcmp(kind, CX_OP_ITEM_PUT) == 0         ? op_item_put(s, tx, p, in, &o)
                : strcmp(kind, CX_OP_ARTIFACT_VERSION) == 0 ? op_artifact_version(s, tx, p, op, &o)
                                                            : op_review_decision(s, tx, p, op, &o);
            if (r == 0 && strcmp(o.status, "applied") == 0) {
                r = cx_storage_op_put(tx, p->team, key, digest, o.seq);
                run->applied++;
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
        json_array_append_new(run->results, res);
    }
    return r;
}

int cx_feed_push(cx_feed *s, const cx_principal *p, const json_t *req, json_t **out,
                 long *applied) {
    const json_t *ops = json_object_get(req, "ops");
    if (!json_is_object(req) || !json_is_array(ops))
        return cx_error_set(CX_EINVAL, "the body must be {\"ops\": [...]}");
    if (json_array_size(ops) > CX_WIRE_MAX_OPS)
        return cx_error_set(CX_ELIMIT, "%zu ops in one push; the limit is %d",
                            json_array_size(ops), CX_WIRE_MAX_OPS);
    /* The whole push is checked, and made safe to store, before any op is
     * applied: a malformed push changes nothing. */
    json_t *clean = json_deep_copy(ops);
    if (!clean)
        return CX_ENOMEM;
    size_t i;
    json_t *op;
    int r = 0;
    json_array_foreach(clean, i, op) {
        if ((r = clean_op(i, op, NULL)))
            break;
    }
    if (r) {
        if (r == CX_EINVAL)
            audit_refused_push(s, p, json_array_get(ops, i));
        json_decref(clean);
        return r;
    }
    /* The digests first, outside the transaction: the writer's turn is
     * the one thing every push of a SQLite core waits for. */
    uint8_t(*digest)[32] = calloc(json_array_size(clean) + 1, sizeof *digest);
    if (!digest) {
        json_decref(clean);
        return CX_ENOMEM;
    }
    json_array_foreach(clean, i, op) {
        op_digest(op, digest[i], &r);
        if (r)
            break;
    }
    /* One transaction for the whole push; run again from the first op when
     * a concurrent writer won (the ops are not changed by a run). */
    push_run run = {.s = s, .p = p, .ops = ops, .clean = clean,
                    .digest = (const uint8_t(*)[32])digest};
    if (r == 0)
        r = cx_storage_run(s->st, true, push_tx, &run);
    free(digest);
    json_decref(clean);
    if (r) {
        json_decref(run.results);
        return r;
    }
    *applied += run.applied;
    *out = json_pack("{s:o}", "results", run.results);
    return *out ? 0 : CX_ENOMEM;
}

/* --- pull, queue -------------------------------------------------------- */

/* A JSON syntax check that builds nothing: a pull page copies each stored
 * item's text as it is, and this keeps a damaged row from breaking the
 * page for every client, at a tenth of the cost of parsing the item into
 * a tree (which was 40% of a loaded core's CPU). Depth is capped (an
 * item is a few levels deep; the cap bounds the recursion). */
#define SCAN_DEPTH 256

static const char *scan_value(const char *p, int depth);

static const char *scan_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *scan_string(const char *p) { /* p at the opening quote */
    for (p++;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20) /* a control character, or the end of the text */
            return NULL;
        if (c == '\\') {
            c = (unsigned char)*++p;
            if (c == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
                          (p[i] >= 'A' && p[i] <= 'F')))
                        return NULL;
                if (strncmp(p + 1, "0000", 4) == 0) /* a NUL no client accepts */
                    return NULL;
                p += 4;
            } else if (!c || !strchr("\"\\/bfnrt", c)) {
                return NULL;
            }
        }
    }
}

static const char *scan_digits(const char *p) {
    if (*p < '0' || *p > '9')
        return NULL;
    while (*p >= '0' && *p <= '9')
        p++;
    return p;
}

static const char *scan_number(const char *p) {
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (!(p = scan_digits(p)))
        return NULL;
    if (*p == '.' && !(p = scan_digits(p + 1)))
        return NULL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        p = scan_digits(p);
    }
    return p;
}

static const char *scan_members(const char *p, int depth, char close) {
    p = scan_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            if (*p != '"' || !(p = scan_string(p)))
                return NULL;
            p = scan_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if (!(p = scan_value(p, depth + 1)))
            return NULL;
        p = scan_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = scan_ws(p + 1);
    }
}

static const char *scan_value(const char *p, int depth) {
    if (depth > SCAN_DEPTH)
        return NULL;
    p = scan_ws(p);
    switch (*p) {
    case '{': return scan_members(p, depth, '}');
    case '[': return scan_members(p, depth, ']');
    case '"': return scan_string(p);
    case 't': return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return *p == '-' || (*p >= '0' && *p <= '9') ? scan_number(p) : NULL;
    }
}

/* True when text (len bytes) is one JSON object and nothing else, in
 * well-formed UTF-8. */
static bool stored_object_ok(const char *text, size_t len) {
    const char *p = scan_ws(text);
    if (*p != '{' || !(p = scan_value(p, 0)))
        return false;
    return *scan_ws(p) == '\0' && (size_t)(p - text) <= len && cx_utf8_valid(text, len);
}

/* A pull page, serialised once as it is built: each stored item's JSON
 * text is copied into the page as it is (it was written by store_item with
 * json_dumps, and is only checked here by stored_object_ok), so a page
 * costs its own size in memory and no tree of it is ever built. */
typedef struct page {
    cx_buf text;   /* {"changes":[… so far */
    size_t budget; /* bytes of the whole page, the closing part included */
    int64_t last;
    int count, limit;
    bool more;
} page;

/* add_change's "the page is full": stops cx_storage_changes without an
 * error (a positive value is never a CX_E… code). */
#define PAGE_FULL 1

/* One change: {"seq":N,"item":{…}} or {"seq":N,"id":"…","deleted":true}. */
static int add_change(void *ud, int64_t seq, const char *id, const char *json) {
    page *pg = ud;
    if (pg->count == pg->limit) {
        pg->more = true;
        return PAGE_FULL;
    }
    char head[64];
    char *tomb = NULL;
    size_t len;
    if (json) {
        if (!stored_object_ok(json, strlen(json)))
            return cx_error_set(CX_EIO, "stored item %s is damaged", id);
        snprintf(head, sizeof head, "%s{\"seq\":%lld,\"item\":", pg->count ? "," : "",
                 (long long)seq);
        len = strlen(head) + strlen(json) + 1;
    } else {
        json_t *c = json_pack("{s:I, s:s, s:b}", "seq", (json_int_t)seq, "id", id, "deleted", 1);
        tomb = c ? json_dumps(c, JSON_COMPACT) : NULL;
        json_decref(c);
        if (!tomb)
            return CX_ENOMEM;
        snprintf(head, sizeof head, "%s", pg->count ? "," : "");
        len = strlen(head) + strlen(tomb);
    }
    /* The budget holds the page as sent: what is there, this change, and
     * the closing part. The first change goes whatever its size. */
    if (pg->count && pg->text.len + len + CX_WIRE_PAGE_OVERHEAD > pg->budget) {
        free(tomb);
        pg->more = true;
        return PAGE_FULL;
    }
    int r = cx_buf_adds(&pg->text, head);
    if (r == 0)
        r = cx_buf_adds(&pg->text, json ? json : tomb);
    if (r == 0 && json)
        r = cx_buf_adds(&pg->text, "}");
    free(tomb);
    if (r == CX_ELIMIT)
        return cx_error_set(CX_EIO, "stored item %s is too large for a pull page (%zu bytes, "
                            "the most a client reads is %u)", id, len, CX_WIRE_MAX_ANSWER_BYTES);
    if (r)
        return r;
    pg->last = seq;
    pg->count++;
    return 0;
}

int cx_feed_pull(cx_feed *s, const cx_principal *p, int64_t since, int limit, size_t budget,
                 char **out, size_t *len) {
    if (since < 0)
        return cx_error_set(CX_EINVAL, "since must be a seq >= 0");
    if (limit < 1)
        limit = 1;
    if (limit > CX_WIRE_MAX_PULL_LIMIT)
        limit = CX_WIRE_MAX_PULL_LIMIT;
    page pg = {.last = since, .limit = limit, .budget = budget};
    /* The cap is a safety net, not the budget: an item alone on its page
     * may pass the budget, never what a sidecar can read. */
    cx_buf_init(&pg.text, CX_WIRE_MAX_ANSWER_BYTES);
    int r = cx_buf_adds(&pg.text, "{\"changes\":[");
    if (r)
        goto out;
    cx_storage_tx *tx = NULL;
    if ((r = cx_storage_begin(s->st, false, &tx)))
        goto out;
    int64_t horizon = 0;
    /* the horizon and the page in one read (one round trip on PostgreSQL) */
    r = cx_storage_pull(tx, p->team, since, limit + 1, &horizon, add_change, &pg);
    if (r == PAGE_FULL)
        r = 0;
    if (r == 0 && since > 0 && since < horizon)
        r = cx_error_set(CX_EGONE, "cursor %lld is older than the tombstone horizon %lld; pull "
                         "again from 0", (long long)since, (long long)horizon);
    cx_storage_rollback(tx); /* read only */
    if (r == 0)
        r = cx_buf_addf(&pg.text, "],\"next\":%lld,\"more\":%s}", (long long)pg.last,
                        pg.more ? "true" : "false");
    if (r)
        goto out;
    *out = cx_buf_take(&pg.text, len);
    if (!*out)
        r = CX_ENOMEM;
out:
    cx_buf_free(&pg.text);
    return r;
}

static int add_draft(void *ud, const char *json) {
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "a stored draft is damaged");
    return json_array_append_new(ud, it) ? CX_ENOMEM : 0;
}

/* Drafts in a queue page when the caller names no limit. */
#define DEFAULT_QUEUE_LIMIT 100

int cx_feed_queue(cx_feed *s, const cx_principal *p, int limit, json_t **out) {
    if (limit < 1)
        limit = DEFAULT_QUEUE_LIMIT;
    if (limit > CX_WIRE_MAX_QUEUE_LIMIT)
        limit = CX_WIRE_MAX_QUEUE_LIMIT;
    json_t *drafts = json_array();
    if (!drafts)
        return CX_ENOMEM;
    int64_t total = 0;
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(s->st, false, &tx);
    if (r == 0) {
        r = cx_storage_queue(tx, p->team, limit, add_draft, drafts, &total);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(drafts);
        return r;
    }
    *out = json_pack("{s:o, s:I}", "drafts", drafts, "total", (json_int_t)total);
    return *out ? 0 : CX_ENOMEM;
}

/* --- review ------------------------------------------------------------- */

typedef struct decide_run {
    cx_feed *s;
    const cx_principal *p;
    const char *id;
    cx_decision d;
    const char *note;
    json_t *it;
    int64_t seq;
} decide_run;

static int decide_tx(cx_storage_tx *tx, void *ud) {
    decide_run *run = ud;
    json_decref(run->it);
    run->it = NULL;
    return decide(run->s, tx, run->p, run->id, run->d, run->note, &run->it, &run->seq);
}

int cx_feed_decide(cx_feed *s, const cx_principal *p, const char *draft_id, const json_t *req,
                   json_t **out) {
    if (!may_review(p))
        return cx_error_set(CX_EFORBIDDEN, "%s %s key cannot decide on drafts; use a reviewer or "
                            "admin key", cx_wire_article(p->role), p->role);
    char id[CX_WIRE_MAX_ID + 1];
    if (!cx_ulid_valid(draft_id) || cx_wire_id_norm("draft id", draft_id, id) != 0)
        return cx_error_set(CX_ENOTFOUND, "no draft %s", draft_id);
    cx_decision d = cx_decision_parse(str(req, "decision"));
    const json_t *jnote = json_object_get(req, "note");
    if (!json_is_object(req) || d == CX_DECISION_INVALID)
        return cx_error_set(CX_EINVAL,
                            "decision must be \"approve\", \"reject\" or \"changes_requested\"");
    if (jnote && !json_is_null(jnote) && !json_is_string(jnote))
        return cx_error_set(CX_EINVAL, "note: must be a string of at most %d bytes",
                            CX_WIRE_MAX_NOTE);
    /* The note is kept (in the item's review and the audit log) as redacted. */
    const char *note = json_string_value(jnote);
    size_t note_len = note ? json_string_length(jnote) : 0;
    char *clean = NULL;
    int r = note ? cx_redact_text(note, note_len, &clean, &note_len, NULL) : 0;
    if (r)
        return r;
    if (clean)
        note = clean;
    if (note_len > CX_WIRE_MAX_NOTE) {
        r = cx_error_set(CX_EINVAL, "note: at most %d bytes (got %zu)", CX_WIRE_MAX_NOTE,
                         note_len);
        goto out;
    }
    if (cx_decision_needs_note(d) && note_len == 0) {
        r = cx_error_set(CX_EINVAL, "%s needs a note saying why", cx_decision_name(d));
        goto out;
    }
    decide_run run = {.s = s, .p = p, .id = id, .d = d, .note = note};
    if ((r = cx_storage_run(s->st, true, decide_tx, &run))) {
        json_decref(run.it);
        goto out;
    }
    *out = json_pack("{s:I, s:o}", "seq", (json_int_t)run.seq, "item", run.it);
    r = *out ? 0 : CX_ENOMEM;
out:
    free(clean);
    return r;
}

typedef struct accept_run {
    cx_feed *s;
    const cx_principal *p;
    const char *id;
    long n;
    json_t *it;
    int64_t seq;
} accept_run;

static int accept_tx(cx_storage_tx *tx, void *ud) {
    accept_run *run = ud;
    cx_feed *s = run->s;
    const cx_principal *p = run->p;
    const char *artifact_id = run->id;
    long n = run->n;
    json_decref(run->it);
    run->it = NULL;
    json_t *it = NULL, *versions = NULL;
    int64_t seq = 0;
    int r = load_item(tx, p->team, artifact_id, &it, &seq);
    if (r)
        goto out;
    versions = json_object_get(it, "versions");
    json_t *v = NULL, *found = NULL;
    size_t i;
    json_array_foreach(versions, i, v)
        if (json_integer_value(json_object_get(v, "version")) == n)
            found = v;
    if (cx_kind_parse(str(it, "kind")) != CX_KIND_ARTIFACT || !found) {
        r = cx_error_set(CX_ENOTFOUND, "no artifact %s version %ld", artifact_id, n);
        goto out;
    }
    if (cx_status_parse(str(found, "status")) != CX_STATUS_ACCEPTED) {
        char iso[CX_ISO_LEN];
        now_iso(iso);
        json_object_set_new(found, "status", json_string(cx_status_name(CX_STATUS_ACCEPTED)));
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
        if ((r = store_item(tx, p->team, it, &seq)))
            goto out;
        json_t *detail = json_pack("{s:s, s:I, s:s, s:I}", "item", artifact_id, "version",
                                   (json_int_t)n, "key_id", p->key_id, "seq", (json_int_t)seq);
        if (!detail) {
            r = CX_ENOMEM;
            goto out;
        }
        r = cx_audit_append(tx, s->secret, p->team, p->name, "artifact.accept", detail);
        json_decref(detail);
    }
out:
    run->it = it;
    run->seq = seq;
    return r;
}

int cx_feed_accept(cx_feed *s, const cx_principal *p, const char *artifact_id, long n,
                   json_t **out) {
    if (!may_review(p))
        return cx_error_set(CX_EFORBIDDEN, "%s %s key cannot accept artifacts; use a reviewer or "
                            "admin key", cx_wire_article(p->role), p->role);
    char id[CX_WIRE_MAX_ID + 1];
    if (!cx_ulid_valid(artifact_id) || n < 1 || cx_wire_id_norm("artifact id", artifact_id, id))
        return cx_error_set(CX_ENOTFOUND, "no artifact %s version %ld", artifact_id, n);
    accept_run run = {.s = s, .p = p, .id = id, .n = n};
    int r = cx_storage_run(s->st, true, accept_tx, &run);
    if (r) {
        json_decref(run.it);
        return r;
    }
    *out = json_pack("{s:I, s:o}", "seq", (json_int_t)run.seq, "item", run.it);
    return *out ? 0 : CX_ENOMEM;
}

/* --- blobs -------------------------------------------------------------- */

int cx_feed_blobs_missing(cx_feed *s, const cx_principal *p, const json_t *req, json_t **out) {
    const json_t *list = json_object_get(req, "sha256");
    if (!json_is_object(req) || !json_is_array(list))
        return cx_error_set(CX_EINVAL, "the body must be {\"sha256\": [...]}");
    if (json_array_size(list) > CX_WIRE_MAX_MISSING)
        return cx_error_set(CX_ELIMIT, "at most %d hashes per request", CX_WIRE_MAX_MISSING);
    size_t i;
    const json_t *h;
    json_array_foreach(list, i, h)
        if (!cx_wire_sha_valid(json_string_value(h)))
            return cx_error_set(CX_EINVAL, "sha256[%zu] is not 64 lowercase hex digits", i);
    json_t *missing = json_array();
    if (!missing)
        return CX_ENOMEM;
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(s->st, false, &tx);
    if (r == 0) {
        json_array_foreach(list, i, h) {
            bool has = false;
            if ((r = cx_storage_blob_has(tx, p->team, json_string_value(h), &has)))
                break;
            if (!has)
                json_array_append(missing, (json_t *)h);
        }
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(missing);
        return r;
    }
    *out = json_pack("{s:o}", "missing", missing);
    return *out ? 0 : CX_ENOMEM;
}

/* A blob is named by its hash, so the core cannot redact it: content that
 * holds a secret is refused instead (CX_EINVAL), text in which a rule
 * matches, and credential files (a private key block, a key store) of any
 * kind. A sidecar redacts text artifacts before it hashes them and never
 * uploads credential files, so what it sends passes. */
static int blob_secret_free(const void *data, size_t len) {
    const char *why = cx_redact_credential_file(NULL, data, len);
    if (why)
        return cx_error_set(CX_EINVAL, "the blob is %s; credentials are never stored", why);
    if (!cx_redact_is_text(data, len))
        return 0;
    char *clean = NULL;
    size_t n = 0;
    cx_redact_report rep = {0};
    int r = cx_redact_text(data, len, &clean, &n, &rep);
    if (r || !clean)
        return r;
    bool same = n == len && memcmp(clean, data, len) == 0; /* only markers matched */
    free(clean);
    if (same)
        return 0;
    const char *rule = "a secret";
    for (size_t i = 0; i < CX_REDACT_MAX_RULES; i++)
        if (rep.counts[i]) {
            rule = cx_redact_rule_id(i);
            break;
        }
    return cx_error_set(CX_EINVAL, "the blob holds a secret (%s); redact it before uploading "
                        "(its hash names it, so the core cannot)", rule ? rule : "a secret");
}

typedef struct blob_run {
    const char *team, *sha;
    const void *data;
    size_t len;
    bool *created;
} blob_run;

static int blob_put_tx(cx_storage_tx *tx, void *ud) {
    blob_run *run = ud;
    return cx_storage_blob_put(tx, run->team, run->sha, run->data, run->len, run->created);
}

int cx_feed_blob_put(cx_feed *s, const cx_principal *p, const char *sha, const void *data,
                     size_t len, bool *created) {
    if (!cx_wire_sha_valid(sha))
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
    int r = blob_secret_free(data, len);
    if (r)
        return r;
    blob_run run = {p->team, sha, data, len, created};
    return cx_storage_run(s->st, true, blob_put_tx, &run);
}

int cx_feed_blob_get(cx_feed *s, const cx_principal *p, const char *sha, void **data,
                     size_t *len) {
    if (!cx_wire_sha_valid(sha))
        return cx_error_set(CX_ENOTFOUND, "no blob %s", sha);
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(s->st, false, &tx);
    if (r)
        return r;
    r = cx_storage_blob_get(tx, p->team, sha, data, len);
    cx_storage_rollback(tx);
    return r;
}

/* --- request bodies ------------------------------------------------------ */

int cx_feed_handle_body(cx_feed *s, const cx_principal *p, cx_feed_body kind, const char *arg,
                        const char *body, size_t len, json_t **out, long *applied) {
    if (len > CX_WIRE_MAX_PUSH_BYTES)
        return cx_error_set(CX_ELIMIT, "the request body is %zu bytes; the limit is %u", len,
                            CX_WIRE_MAX_PUSH_BYTES);
    json_error_t err;
    json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (!doc)
        return cx_error_set(CX_EINVAL, "malformed JSON: %s (line %d, column %d)", err.text,
                            err.line, err.column);
    long dummy = 0;
    int r;
    switch (kind) {
    case CX_FEED_BODY_PUSH:
        r = cx_feed_push(s, p, doc, out, applied ? applied : &dummy);
        break;
    case CX_FEED_BODY_MISSING:
        r = cx_feed_blobs_missing(s, p, doc, out);
        break;
    case CX_FEED_BODY_DECISION:
        r = cx_feed_decide(s, p, arg ? arg : "", doc, out);
        break;
    default:
        r = cx_error_set(CX_EINVAL, "no such request kind");
        break;
    }
    json_decref(doc);
    return r;
}

/* --- admin: forget, compact ------------------------------------------- */

typedef struct forget_run {
    cx_feed *s;
    const char *team, *actor, *id, *reason;
    int64_t *seq;
} forget_run;

static int forget_tx(cx_storage_tx *tx, void *ud) {
    forget_run *run = ud;
    const char *team = run->team, *id = run->id;
    json_t *it = NULL, *detail = NULL;
    int64_t oldseq = 0;
    int r = load_item(tx, team, id, &it, &oldseq);
    if (r) {
        if (r == CX_ENOTFOUND)
            cx_error_set(CX_ENOTFOUND, "team %s has no item %s (or it was forgotten already)",
                         team, id);
        goto out;
    }
    const char *kind = str(it, "kind") ? str(it, "kind") : cx_kind_name(CX_KIND_OBSERVATION);
    const char *status = str(it, "status") ? str(it, "status")
                                           : cx_status_name(CX_STATUS_RECORDED);
    if ((r = cx_storage_seq_next(tx, team, run->seq)) ||
        (r = cx_storage_item_put(tx, team, id, kind, status, *run->seq, true, NULL)))
        goto out;
    json_t *blobs = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(it, "versions"), i, v) {
        const char *sha = str(v, "sha256");
        bool gone = false;
        if (!cx_wire_sha_valid(sha))
            continue;
        if ((r = cx_storage_blob_drop_unused(tx, team, sha, &gone)))
            break;
        if (gone)
            json_array_append_new(blobs, json_string(sha));
    }
    detail = json_pack("{s:s, s:s, s:I, s:o}", "item", id, "kind", kind, "seq",
                       (json_int_t)*run->seq, "blobs_deleted", blobs);
    if (r)
        goto out;
    if (!detail) {
        r = CX_ENOMEM;
        goto out;
    }
    if (run->reason && *run->reason)
        json_object_set_new(detail, "reason", json_string(run->reason));
    r = cx_audit_append(tx, run->s->secret, team, run->actor, "item.forget", detail);
out:
    json_decref(detail);
    json_decref(it);
    return r;
}

int cx_feed_forget(cx_feed *s, const char *team, const char *actor, const char *id,
                   const char *reason, int64_t *seq) {
    char norm[CX_WIRE_MAX_ID + 1];
    if (!id || !cx_ulid_valid(id) || cx_wire_id_norm("id", id, norm) != 0)
        return cx_error_set(CX_EINVAL, "an item id is a ULID");
    /* the reason goes into the audit log: redacted like everything kept */
    char *clean_reason = NULL;
    int r = reason ? cx_redact_text(reason, strlen(reason), &clean_reason, NULL, NULL) : 0;
    if (r)
        return r;
    forget_run run = {s, team, actor, norm, clean_reason ? clean_reason : reason, seq};
    r = cx_storage_run(s->st, true, forget_tx, &run);
    free(clean_reason);
    return r;
}

typedef struct compact_run {
    cx_feed *s;
    const char *team, *actor;
    int64_t before, *dropped, *horizon;
} compact_run;

static int compact_tx(cx_storage_tx *tx, void *ud) {
    compact_run *run = ud;
    const char *team = run->team;
    int64_t last = 0, old = 0, before = run->before;
    json_t *detail = NULL;
    int r;
    if ((r = cx_storage_seq_last(tx, team, &last)) || (r = cx_storage_horizon(tx, team, &old)))
        goto out;
    if (before > last + 1)
        before = last + 1;
    if ((r = cx_storage_compact(tx, team, before, run->dropped)))
        goto out;
    *run->horizon = before > old ? before : old;
    detail = json_pack("{s:I, s:I, s:I}", "before_seq", (json_int_t)before, "horizon",
                       (json_int_t)*run->horizon, "tombstones_dropped",
                       (json_int_t)*run->dropped);
    r = detail ? cx_audit_append(tx, run->s->secret, team, run->actor, "feed.compact", detail)
               : CX_ENOMEM;
out:
    json_decref(detail);
    return r;
}

int cx_feed_compact(cx_feed *s, const char *team, const char *actor, int64_t before,
                    int64_t *dropped, int64_t *horizon) {
    if (before < 1)
        return cx_error_set(CX_EINVAL, "--before-seq must be a seq >= 1");
    compact_run run = {s, team, actor, before, dropped, horizon};
    return cx_storage_run(s->st, true, compact_tx, &run);
}
