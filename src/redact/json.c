/* SPDX-License-Identifier: Apache-2.0 */
/* Redaction of JSON values: every string at any depth (member names too),
 * and the item envelope of the sync protocol, whose structural members
 * (ids, kinds, statuses, times, hashes) are left as they are. The one walk
 * that the store (pulled items) and cortex-core (pushed items) both use, so
 * that what a secret becomes never depends on which side saw it first. */
#include "redact/redact.h"

#include "util/error.h"
#include "util/ulid.h"

#include <stdlib.h>
#include <string.h>

/* Redacts a JSON string in place; it is replaced only when a rule matched. */
static int redact_string(json_t *v, cx_redact_report *rep) {
    char *clean = NULL;
    size_t n = 0;
    int r = cx_redact_text(json_string_value(v), json_string_length(v), &clean, &n, rep);
    if (r || !clean)
        return r;
    if (json_string_setn(v, clean, n) != 0)
        r = cx_error_set(CX_EINVAL, "a text is not valid UTF-8 after redaction");
    free(clean);
    return r;
}

static bool in_list(const char *key, const char *const *list) {
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

static int redact_tree(json_t *v, cx_redact_report *rep);

/* Redacts every member of object o, names and values, except the members
 * named in keep (left exactly as they are). A member whose name matched a
 * rule is moved to its redacted name. */
static int redact_object(json_t *o, const char *const *keep, cx_redact_report *rep) {
    json_t *renames = NULL;
    const char *key;
    json_t *v;
    int r = 0;
    json_object_foreach(o, key, v) {
        if (in_list(key, keep))
            continue;
        if ((r = redact_tree(v, rep)))
            goto out;
        char *clean = NULL;
        if ((r = cx_redact_text(key, strlen(key), &clean, NULL, rep)))
            goto out;
        if (clean) {
            if (!renames)
                renames = json_array();
            json_t *pair = json_pack("[s, s]", key, clean);
            free(clean);
            if (!renames || !pair || json_array_append_new(renames, pair) != 0) {
                r = CX_ENOMEM;
                goto out;
            }
        }
    }
    size_t i;
    json_t *pair;
    json_array_foreach(renames, i, pair) {
        const char *from = json_string_value(json_array_get(pair, 0));
        if (json_object_set(o, json_string_value(json_array_get(pair, 1)),
                            json_object_get(o, from)) != 0) {
            r = CX_ENOMEM;
            goto out;
        }
        json_object_del(o, from);
    }
out:
    json_decref(renames);
    return r;
}

/* Redacts every string in v, at any depth (member names too). */
static int redact_tree(json_t *v, cx_redact_report *rep) {
    if (json_is_string(v))
        return redact_string(v, rep);
    if (json_is_object(v))
        return redact_object(v, NULL, rep);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            int r = redact_tree(e, rep);
            if (r)
                return r;
        }
    }
    return 0;
}

/* An id member (a string) or an array of ids: ULIDs are left alone (the
 * normal case), anything else is text like any other. */
static int redact_ids(json_t *v, cx_redact_report *rep) {
    if (json_is_string(v))
        return cx_ulid_valid(json_string_value(v)) ? 0 : redact_string(v, rep);
    if (!json_is_array(v))
        return redact_tree(v, rep);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        int r = redact_ids(e, rep);
        if (r)
            return r;
    }
    return 0;
}

/* Members of a review and of an artifact version that the envelope check
 * holds to a strict form (a decision name, a time, a hash): no text. */
const char *const CX_REDACT_REVIEW_KEEP[] = {"decision", "at", NULL};
const char *const CX_REDACT_VERSION_KEEP[] = {"sha256", NULL};

int cx_redact_item(json_t *it, cx_redact_report *rep) {
    /* Identifiers, enum names, times and hashes: cx_wire_item_check holds
     * each to its form, so none can carry text. */
    static const char *const KEEP[] = {"id",         "kind",       "status",     "visibility",
                                       "created_at", "updated_at", "server_seq", "blobs",
                                       "parent_id",  "evidence",   "review",     "versions",
                                       NULL};
    if (!json_is_object(it))
        return 0;
    int r = redact_object(it, KEEP, rep);
    if (r == 0)
        r = redact_ids(json_object_get(it, "parent_id"), rep);
    if (r == 0)
        r = redact_ids(json_object_get(it, "evidence"), rep);
    json_t *rv = json_object_get(it, "review");
    if (r == 0 && rv)
        r = json_is_object(rv) ? redact_object(rv, CX_REDACT_REVIEW_KEEP, rep) : redact_tree(rv, rep);
    json_t *versions = json_object_get(it, "versions"), *v;
    size_t i;
    json_array_foreach(versions, i, v) {
        if (r == 0)
            r = json_is_object(v) ? redact_object(v, CX_REDACT_VERSION_KEEP, rep) : redact_tree(v, rep);
    }
    if (r == 0 && versions && !json_is_array(versions))
        r = redact_tree(versions, rep);
    return r;
}

int cx_redact_json(json_t *v, const char *const *keep, cx_redact_report *rep) {
    return json_is_object(v) ? redact_object(v, keep, rep) : redact_tree(v, rep);
}
