/* SPDX-License-Identifier: Apache-2.0 */
/* The one model of the wire (see wire.h): names, the kind/status table,
 * transitions, trust, and the item envelope check that the core (on push)
 * and the store (on pull) both run. */
#include "proto/wire.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[CX_KIND_COUNT] = {
    "observation", "draft", "thread", "comment", "artifact", "subcortex",
};

static const char *const STATUS_NAMES[CX_STATUS_COUNT] = {
    "recorded", "pending", "approved", "rejected", "changes_requested",
    "canon",    "published", "accepted",
};

static const char *const DECISION_NAMES[CX_DECISION_COUNT] = {
    "approve", "reject", "changes_requested",
};

static const char *const TRUST_NAMES[CX_TRUST_COUNT] = {
    "canon", "accepted", "published", "draft", "rejected", "observation", "comment", "other",
};

#define BIT(s) (1u << (s))

/* Which statuses each kind may hold. */
static const unsigned KIND_STATUSES[CX_KIND_COUNT] = {
    [CX_KIND_OBSERVATION] = BIT(CX_STATUS_RECORDED),
    [CX_KIND_DRAFT] = BIT(CX_STATUS_PENDING) | BIT(CX_STATUS_APPROVED) | BIT(CX_STATUS_REJECTED) |
                      BIT(CX_STATUS_CHANGES_REQUESTED),
    [CX_KIND_THREAD] = BIT(CX_STATUS_CANON),
    [CX_KIND_COMMENT] = BIT(CX_STATUS_RECORDED),
    [CX_KIND_ARTIFACT] = BIT(CX_STATUS_PUBLISHED) | BIT(CX_STATUS_ACCEPTED),
    [CX_KIND_SUBCORTEX] = BIT(CX_STATUS_RECORDED),
};

static int lookup(const char *name, const char *const *names, int n) {
    if (!name)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *cx_kind_name(cx_kind k) {
    return k >= 0 && k < CX_KIND_COUNT ? KIND_NAMES[k] : NULL;
}

const char *cx_status_name(cx_status s) {
    return s >= 0 && s < CX_STATUS_COUNT ? STATUS_NAMES[s] : NULL;
}

const char *cx_wire_article(const char *word) {
    return word && word[0] && strchr("aeiouAEIOU", word[0]) ? "an" : "a";
}

cx_kind cx_kind_parse(const char *name) {
    return (cx_kind)lookup(name, KIND_NAMES, CX_KIND_COUNT);
}

cx_status cx_status_parse(const char *name) {
    return (cx_status)lookup(name, STATUS_NAMES, CX_STATUS_COUNT);
}

bool cx_status_allowed(cx_kind k, cx_status s) {
    return k >= 0 && k < CX_KIND_COUNT && s >= 0 && s < CX_STATUS_COUNT &&
           (KIND_STATUSES[k] & BIT(s)) != 0;
}

cx_status cx_status_initial(cx_kind k) {
    switch (k) {
    case CX_KIND_DRAFT:
        return CX_STATUS_PENDING;
    case CX_KIND_THREAD:
        return CX_STATUS_CANON;
    case CX_KIND_ARTIFACT:
        return CX_STATUS_PUBLISHED;
    case CX_KIND_OBSERVATION:
    case CX_KIND_COMMENT:
    case CX_KIND_SUBCORTEX:
        return CX_STATUS_RECORDED;
    default:
        return CX_STATUS_INVALID;
    }
}

bool cx_awaits_review(cx_kind k, cx_status s) {
    return k == CX_KIND_DRAFT && (s == CX_STATUS_PENDING || s == CX_STATUS_CHANGES_REQUESTED);
}

bool cx_transition_allowed(cx_actor_role role, cx_kind from_kind, cx_status from, cx_kind to_kind,
                           cx_status to) {
    if (!cx_status_allowed(to_kind, to))
        return false;
    if (from_kind == CX_KIND_INVALID) /* a new item */
        return to_kind != CX_KIND_THREAD && to == cx_status_initial(to_kind);
    if (!cx_status_allowed(from_kind, from))
        return false;
    /* what anyone may do: change an item's text without its status, revise
     * a draft that awaits review, publish a new version of an artifact */
    if (from_kind == to_kind) {
        if (from == to && !(to_kind == CX_KIND_DRAFT && !cx_awaits_review(from_kind, from)))
            return true;
        if (cx_awaits_review(from_kind, from) && to == CX_STATUS_PENDING)
            return true;
        if (to_kind == CX_KIND_ARTIFACT && to == CX_STATUS_PUBLISHED)
            return true;
    }
    if (role != CX_ROLE_REVIEWER)
        return false;
    if (cx_awaits_review(from_kind, from))
        return (to_kind == CX_KIND_THREAD && to == CX_STATUS_CANON) ||
               (to_kind == CX_KIND_DRAFT &&
                (to == CX_STATUS_REJECTED || to == CX_STATUS_CHANGES_REQUESTED ||
                 to == CX_STATUS_APPROVED));
    if (from_kind == CX_KIND_ARTIFACT && to_kind == CX_KIND_ARTIFACT)
        return to == CX_STATUS_ACCEPTED;
    return false;
}

const char *cx_decision_name(cx_decision d) {
    return d >= 0 && d < CX_DECISION_COUNT ? DECISION_NAMES[d] : NULL;
}

cx_decision cx_decision_parse(const char *name) {
    return (cx_decision)lookup(name, DECISION_NAMES, CX_DECISION_COUNT);
}

cx_status cx_decision_status(cx_decision d) {
    switch (d) {
    case CX_DECISION_APPROVE:
        return CX_STATUS_CANON;
    case CX_DECISION_REJECT:
        return CX_STATUS_REJECTED;
    case CX_DECISION_CHANGES_REQUESTED:
        return CX_STATUS_CHANGES_REQUESTED;
    default:
        return CX_STATUS_INVALID;
    }
}

bool cx_decision_needs_note(cx_decision d) {
    return d == CX_DECISION_REJECT || d == CX_DECISION_CHANGES_REQUESTED;
}

cx_trust cx_trust_of(cx_kind k, cx_status s) {
    switch (k) {
    case CX_KIND_THREAD:
        return CX_TRUST_CANON;
    case CX_KIND_ARTIFACT:
        return s == CX_STATUS_ACCEPTED ? CX_TRUST_ACCEPTED : CX_TRUST_PUBLISHED;
    case CX_KIND_DRAFT:
        return s == CX_STATUS_REJECTED ? CX_TRUST_REJECTED : CX_TRUST_DRAFT;
    case CX_KIND_OBSERVATION:
        return CX_TRUST_OBSERVATION;
    case CX_KIND_COMMENT:
        return CX_TRUST_COMMENT;
    default:
        return CX_TRUST_OTHER;
    }
}

const char *cx_trust_name(cx_trust t) {
    return t >= 0 && t < CX_TRUST_COUNT ? TRUST_NAMES[t] : "other";
}

/* ---- the envelope check ---- */

/* A string member within max bytes, without NUL; NULL/absent allowed when
 * `optional` (JSON null too). */
static int check_str(const json_t *o, const char *field, size_t max, bool optional,
                     const char **out) {
    const json_t *v = json_object_get(o, field);
    if (out)
        *out = NULL;
    if (!v || json_is_null(v)) {
        if (optional)
            return 0;
        return cx_error_set(CX_EINVAL, "item.%s: required", field);
    }
    if (!json_is_string(v))
        return cx_error_set(CX_EINVAL, "item.%s: must be a string", field);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (strlen(s) != n)
        return cx_error_set(CX_EINVAL, "item.%s: must not contain NUL", field);
    if (n > max)
        return cx_error_set(CX_ELIMIT, "item.%s: at most %zu bytes (got %zu)", field, max, n);
    if (out)
        *out = s;
    return 0;
}

/* An optional array of at most max strings of at most each bytes. */
static int check_strv(const json_t *o, const char *field, size_t max, size_t each) {
    const json_t *a = json_object_get(o, field);
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return cx_error_set(CX_EINVAL, "item.%s: must be an array", field);
    if (json_array_size(a) > max)
        return cx_error_set(CX_ELIMIT, "item.%s: at most %zu entries (got %zu)", field, max,
                            json_array_size(a));
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v))
            return cx_error_set(CX_EINVAL, "item.%s[%zu]: must be a string", field, i);
        size_t n = json_string_length(v);
        if (strlen(json_string_value(v)) != n)
            return cx_error_set(CX_EINVAL, "item.%s[%zu]: must not contain NUL", field, i);
        if (n > each)
            return cx_error_set(CX_ELIMIT, "item.%s[%zu]: at most %zu bytes (got %zu)", field,
                                i, each, n);
    }
    return 0;
}

static int check_time(const json_t *o, const char *field, bool optional) {
    const char *s;
    int r = check_str(o, field, CX_WIRE_MAX_TIMESTAMP, optional, &s);
    if (r || !s)
        return r;
    uint64_t ms;
    if (strlen(s) < CX_WIRE_MIN_TIMESTAMP || cx_clock_parse(s, &ms) != 0) {
        cx_error_clear();
        return cx_error_set(CX_EINVAL, "item.%s: must be an ISO 8601 time", field);
    }
    return 0;
}

static int check_review(const json_t *rv) {
    if (!rv || json_is_null(rv))
        return 0;
    if (!json_is_object(rv))
        return cx_error_set(CX_EINVAL, "item.review: must be an object");
    const char *d = json_string_value(json_object_get(rv, "decision"));
    if (cx_decision_parse(d) == CX_DECISION_INVALID)
        return cx_error_set(CX_EINVAL, "item.review.decision: must be approve, reject or "
                                       "changes_requested");
    static const struct {
        const char *name;
        size_t max;
    } fields[] = {{"note", CX_WIRE_MAX_NOTE},
                  {"reason", CX_WIRE_MAX_NOTE},
                  {"reviewer", CX_WIRE_MAX_PRINCIPAL}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const json_t *v = json_object_get(rv, fields[i].name);
        if (v && !json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) > fields[i].max))
            return cx_error_set(json_is_string(v) ? CX_ELIMIT : CX_EINVAL,
                                "item.review.%s: a string of at most %zu bytes", fields[i].name,
                                fields[i].max);
    }
    const char *at = json_string_value(json_object_get(rv, "at"));
    uint64_t ms;
    if (!at || strlen(at) > CX_WIRE_MAX_TIMESTAMP || cx_clock_parse(at, &ms) != 0) {
        cx_error_clear();
        return cx_error_set(CX_EINVAL, "item.review.at: must be an ISO 8601 time");
    }
    return 0;
}

static int check_versions(const json_t *a) {
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return cx_error_set(CX_EINVAL, "item.versions: must be an array");
    if (json_array_size(a) > CX_WIRE_MAX_VERSIONS)
        return cx_error_set(CX_ELIMIT, "item.versions: at most %d entries (got %zu)",
                            CX_WIRE_MAX_VERSIONS, json_array_size(a));
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_object(v))
            return cx_error_set(CX_EINVAL, "item.versions[%zu]: must be an object", i);
        json_int_t n = json_integer_value(json_object_get(v, "version"));
        if (!json_is_integer(json_object_get(v, "version")) || n < 1)
            return cx_error_set(CX_EINVAL, "item.versions[%zu].version: an integer from 1", i);
        if (!cx_wire_sha_valid(json_string_value(json_object_get(v, "sha256"))))
            return cx_error_set(CX_EINVAL, "item.versions[%zu].sha256: 64 lower-case hex digits",
                                i);
        const json_t *sp = json_object_get(v, "source_path");
        if (sp && !json_is_null(sp) &&
            (!json_is_string(sp) || json_string_length(sp) > CX_WIRE_MAX_SOURCE_PATH))
            return cx_error_set(CX_ELIMIT, "item.versions[%zu].source_path: a string of at most "
                                           "%d bytes", i, CX_WIRE_MAX_SOURCE_PATH);
    }
    return 0;
}

int cx_wire_item_check(const json_t *it) {
    if (!json_is_object(it))
        return cx_error_set(CX_EINVAL, "item: must be an object");
    const char *id, *kind, *status, *vis;
    int r;
    if ((r = check_str(it, "id", CX_WIRE_ULID_LEN, false, &id)))
        return r;
    if (!cx_ulid_valid(id))
        return cx_error_set(CX_EINVAL, "item.id: must be a ULID");
    if ((r = check_str(it, "kind", CX_WIRE_MAX_STATUS, false, &kind)))
        return r;
    cx_kind k = cx_kind_parse(kind);
    if (k == CX_KIND_INVALID)
        return cx_error_set(CX_EINVAL, "item.kind: not a known kind");
    if ((r = check_str(it, "status", CX_WIRE_MAX_STATUS, false, &status)))
        return r;
    cx_status s = cx_status_parse(status);
    if (s == CX_STATUS_INVALID)
        return cx_error_set(CX_EINVAL, "item.status: not a known status");
    if (!cx_status_allowed(k, s))
        return cx_error_set(CX_EINVAL, "item.status: %s %s cannot be %s",
                            cx_wire_article(kind), kind, status);
    if ((r = check_str(it, "visibility", 16, false, &vis)))
        return r;
    if (strcmp(vis, "shared") != 0)
        return cx_error_set(CX_EINVAL, "item.visibility: must be \"shared\"");
    if ((r = check_str(it, "title", CX_WIRE_MAX_TITLE, false, NULL)) ||
        (r = check_str(it, "body", CX_WIRE_MAX_BODY, true, NULL)) ||
        (r = check_str(it, "subcortex", CX_WIRE_MAX_SUBCORTEX, true, NULL)) ||
        (r = check_str(it, "author", CX_WIRE_MAX_PRINCIPAL, true, NULL)) ||
        (r = check_str(it, "agent", CX_WIRE_MAX_PRINCIPAL, true, NULL)) ||
        (r = check_str(it, "parent_id", CX_WIRE_MAX_ID, true, NULL)) ||
        (r = check_time(it, "created_at", false)) || (r = check_time(it, "updated_at", false)) ||
        (r = check_strv(it, "tags", CX_WIRE_MAX_TAGS, CX_WIRE_MAX_TAG)) ||
        (r = check_strv(it, "files", CX_WIRE_MAX_FILES, CX_WIRE_MAX_PATH)) ||
        (r = check_strv(it, "evidence", CX_WIRE_MAX_EVIDENCE, CX_WIRE_MAX_ID)) ||
        (r = check_strv(it, "blobs", CX_WIRE_MAX_BLOBS, 64)) ||
        (r = check_review(json_object_get(it, "review"))) ||
        (r = check_versions(json_object_get(it, "versions"))))
        return r;
    const json_t *blobs = json_object_get(it, "blobs");
    size_t i;
    const json_t *b;
    json_array_foreach(blobs, i, b) {
        if (!cx_wire_sha_valid(json_string_value(b)))
            return cx_error_set(CX_EINVAL, "item.blobs[%zu]: 64 lower-case hex digits", i);
    }
    const json_t *seq = json_object_get(it, "server_seq");
    if (seq && !json_is_null(seq) && (!json_is_integer(seq) || json_integer_value(seq) < 1))
        return cx_error_set(CX_EINVAL, "item.server_seq: an integer from 1, or null");
    const json_t *prov = json_object_get(it, "provenance");
    if (prov && !json_is_null(prov)) {
        if (!json_is_object(prov))
            return cx_error_set(CX_EINVAL, "item.provenance: must be an object");
        char *text = json_dumps(prov, JSON_COMPACT);
        if (!text)
            return cx_error_set(CX_ENOMEM, "item.provenance: out of memory");
        size_t n = strlen(text);
        free(text);
        if (n > CX_WIRE_MAX_PROVENANCE)
            return cx_error_set(CX_ELIMIT, "item.provenance: at most %u bytes as JSON (got %zu)",
                                CX_WIRE_MAX_PROVENANCE, n);
    }
    return 0;
}

int cx_wire_id_norm(const char *field, const char *id, char out[CX_WIRE_MAX_ID + 1]) {
    if (!id || !*id)
        return cx_error_set(CX_EINVAL, "%s is required: an item id such as those search returns",
                            field);
    size_t n = strlen(id);
    if (n > CX_WIRE_MAX_ID)
        return cx_error_set(CX_EINVAL, "%s is %zu bytes long; item ids are at most %d", field, n,
                            CX_WIRE_MAX_ID);
    bool ulid = cx_ulid_valid(id);
    for (size_t i = 0; i <= n; i++)
        out[i] = ulid ? (char)toupper((unsigned char)id[i]) : id[i];
    return 0;
}

bool cx_wire_op_known(const char *op) {
    return op && (strcmp(op, CX_OP_ITEM_PUT) == 0 || strcmp(op, CX_OP_ARTIFACT_VERSION) == 0 ||
                  strcmp(op, CX_OP_REVIEW_DECISION) == 0);
}

bool cx_wire_sha_valid(const char *sha) {
    if (!sha || strlen(sha) != 64)
        return false;
    for (const char *c = sha; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}
