/* SPDX-License-Identifier: Apache-2.0 */
/* Validation of what a caller writes: texts (length, UTF-8, control
 * characters), tags, subcortexes, lists of paths or ids, visibility,
 * actors, provenance and ids, each failure naming the field and the limit.
 * The limits are the wire's (proto/wire.h). Redaction comes first, in the
 * write paths (item.c, blob.c): every text, subcortex, tag, path and the
 * provenance is checked as redacted, so a secret becomes a marker
 * ("[REDACTED:<rule>]") that these checks accept like any text (none of
 * them limits the characters of a subcortex or a tag); a value that is too
 * long only once its secret became a marker is refused and says so. */
#include "store/store-internal.h"

#include "redact/redact.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACTOR CX_WIRE_MAX_PRINCIPAL

/* ---- text checks ---- */

int cx_item_check_text(const char *field, const char *v, size_t max, bool required, bool oneline) {
    if (!v || !*v) {
        if (required)
            return cx_error_set(CX_EINVAL, "%s is required and must not be empty", field);
        return 0;
    }
    size_t n = strlen(v);
    if (n > max)
        return cx_error_set(CX_ELIMIT, "%s is %zu bytes%s; the limit is %zu bytes", field, n,
                            strstr(v, CX_REDACT_PREFIX) ? " once the secret in it was redacted" : "",
                            max);
    size_t bad = cx_utf8_valid_prefix(v, n);
    if (bad != n)
        return cx_error_set(CX_EINVAL, "%s is not valid UTF-8 (bad byte at offset %zu)", field,
                            bad);
    size_t i = 0;
    while (i < n && cx_item_is_space((unsigned char)v[i]))
        i++;
    if (i == n && required)
        return cx_error_set(CX_EINVAL, "%s is only whitespace; give some text", field);
    if (oneline) {
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c < 0x20 || c == 0x7f)
                return cx_error_set(CX_EINVAL,
                                    "%s contains a control character (byte 0x%02x at offset "
                                    "%zu); use one line of plain text",
                                    field, c, i);
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cx_item_check_tags(const char *field, cx_strv tags, json_t **out) {
    char name[96];
    if (tags.n > CX_STORE_MAX_TAGS)
        return cx_error_set(CX_ELIMIT, "%s has %zu entries; the limit is %d", field, tags.n,
                            CX_STORE_MAX_TAGS);
    const char *v[CX_STORE_MAX_TAGS];
    for (size_t i = 0; i < tags.n; i++) {
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        int r = cx_item_check_text(name, tags.v[i], CX_STORE_MAX_TAG, true, true);
        if (r)
            return r;
        v[i] = tags.v[i];
    }
    qsort(v, tags.n, sizeof v[0], cmp_str);
    json_t *a = json_array();
    if (!a)
        return CX_ENOMEM;
    for (size_t i = 0; i < tags.n; i++) {
        if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return CX_ENOMEM;
        }
    }
    *out = a;
    return 0;
}

int cx_item_check_subcortex(const char *field, const char *v, const char **out) {
    if (!v || !*v) {
        *out = CX_STORE_DEFAULT_SUBCORTEX;
        return 0;
    }
    int r = cx_item_check_text(field, v, CX_WIRE_MAX_SUBCORTEX, true, true);
    if (r)
        return r;
    *out = v;
    return 0;
}

/* A list of paths or ids as a JSON array, in order, without duplicates. */
int cx_item_check_list(const char *field, cx_strv l, size_t max_n, size_t max_len, json_t **out) {
    char name[96];
    if (l.n > max_n)
        return cx_error_set(CX_ELIMIT, "%s has %zu entries; the limit is %zu", field, l.n, max_n);
    json_t *a = json_array();
    if (!a)
        return CX_ENOMEM;
    for (size_t i = 0; i < l.n; i++) {
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        int r = cx_item_check_text(name, l.v[i], max_len, true, true);
        if (r) {
            json_decref(a);
            return r;
        }
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(l.v[i], l.v[j]) == 0;
        if (!dup && json_array_append_new(a, json_string(l.v[i])) != 0) {
            json_decref(a);
            return CX_ENOMEM;
        }
    }
    *out = a;
    return 0;
}

int cx_item_check_visibility(const char *field, const char *v, const char **out) {
    if (!v || !*v || strcmp(v, "shared") == 0) {
        *out = "shared";
        return 0;
    }
    if (strcmp(v, "private") == 0) {
        *out = "private";
        return 0;
    }
    return cx_error_set(CX_EINVAL, "%s must be \"shared\" or \"private\", not \"%.64s\"", field, v);
}

int cx_item_check_actor(const cx_actor *who) {
    if (!who)
        return 0;
    int r = cx_item_check_text("author", who->author, MAX_ACTOR, false, true);
    if (r == 0)
        r = cx_item_check_text("agent", who->agent, MAX_ACTOR, false, true);
    return r;
}

int cx_item_norm_id(const char *field, const char *id, char buf[CX_STORE_MAX_ID + 1]) {
    return cx_wire_id_norm(field, id, buf);
}

/* The provenance as compact JSON text (NULL when there is none). */
int cx_item_check_provenance(const char *field, const json_t *prov, char **out) {
    *out = NULL;
    if (!prov || json_is_null(prov))
        return 0;
    if (!json_is_object(prov))
        return cx_error_set(CX_EINVAL, "%s must be an object", field);
    size_t n = json_dumpb(prov, NULL, 0, JSON_COMPACT);
    if (n > CX_STORE_MAX_PROVENANCE)
        return cx_error_set(CX_ELIMIT, "%s is %zu bytes as JSON; the limit is %u bytes", field, n,
                            CX_STORE_MAX_PROVENANCE);
    *out = json_dumps(prov, JSON_COMPACT);
    return *out ? 0 : CX_ENOMEM;
}
