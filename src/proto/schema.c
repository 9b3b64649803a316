/* SPDX-License-Identifier: Apache-2.0 */
/* A small validator for flat tool-argument schemas. The path of a value
 * ("arguments.files[2]") is only written out for an error message: a
 * valid call formats nothing. */
#include "proto/schema.h"

#include "util/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static bool type_ok(const char *t, const json_t *v) {
    if (strcmp(t, "string") == 0) return json_is_string(v);
    if (strcmp(t, "integer") == 0) return json_is_integer(v);
    if (strcmp(t, "number") == 0) return json_is_number(v);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
    if (strcmp(t, "array") == 0) return json_is_array(v);
    if (strcmp(t, "object") == 0) return json_is_object(v);
    if (strcmp(t, "null") == 0) return json_is_null(v);
    return true;
}

/* Where a value is: a member `key` of up, or (key NULL) element `index`
 * of up; the arguments themselves are the NULL path. */
typedef struct vpath {
    const struct vpath *up;
    const char *key;
    size_t index;
} vpath;

#define PATH_MAX_TEXT 256

/* The path as text into buf[PATH_MAX_TEXT] ("" for the arguments), cut
 * at 255 bytes. */
static const char *path_text(const vpath *p, char *buf) {
    if (!p) {
        buf[0] = '\0';
        return buf;
    }
    path_text(p->up, buf);
    size_t n = strlen(buf);
    if (p->key) {
        snprintf(buf + n, PATH_MAX_TEXT - n, "%s%s", n ? "." : "", p->key);
    } else {
        if (!n)
            n = (size_t)snprintf(buf, PATH_MAX_TEXT, "arguments");
        snprintf(buf + n, PATH_MAX_TEXT - n, "[%zu]", p->index);
    }
    return buf;
}

/* The path for a message: "arguments" for the arguments themselves. */
static const char *at(const vpath *p, char *buf) {
    path_text(p, buf);
    return buf[0] ? buf : "arguments";
}

static int validate(const json_t *schema, const json_t *v, const vpath *path);

static int check_object(const json_t *schema, const json_t *v, const vpath *path) {
    char pbuf[PATH_MAX_TEXT];
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    size_t i;
    const json_t *name;
    json_array_foreach(req, i, name) {
        if (json_is_string(name) && !json_object_get(v, json_string_value(name))) {
            const char *pt = path_text(path, pbuf);
            return cx_error_set(CX_EINVAL, "%s%s%s: required", pt, pt[0] ? "." : "",
                                json_string_value(name));
        }
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        vpath sub = {.up = path, .key = key};
        const json_t *ps = props ? json_object_get(props, key) : NULL;
        if (!ps) {
            if (strcmp(key, "_meta") == 0)
                continue;
            char known[512] = "";
            size_t off = 0;
            const char *k2;
            const json_t *unused;
            json_object_foreach((json_t *)props, k2, unused) {
                int w = snprintf(known + off, sizeof known - off, "%s%s", off ? ", " : "", k2);
                if (w < 0 || (size_t)w >= sizeof known - off)
                    break;
                off += (size_t)w;
            }
            return cx_error_set(CX_EINVAL, "%s: unknown argument; expected one of: %s",
                                path_text(&sub, pbuf), known[0] ? known : "(none)");
        }
        int r = validate(ps, val, &sub);
        if (r)
            return r;
    }
    return 0;
}

static int validate(const json_t *schema, const json_t *v, const vpath *path) {
    char pbuf[PATH_MAX_TEXT];
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (type && !type_ok(type, v)) {
        if (strcmp(type, "integer") == 0 && json_is_real(v))
            return cx_error_set(CX_EINVAL, "%s: must be a whole number (got %g)",
                                at(path, pbuf), json_real_value(v));
        return cx_error_set(CX_EINVAL, "%s: must be %s%s (got %s)", at(path, pbuf),
                            strcmp(type, "integer") == 0 || strcmp(type, "array") == 0 ||
                                    strcmp(type, "object") == 0
                                ? "an "
                                : "a ",
                            type, type_name(v));
    }
    const json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en)) {
        size_t i;
        const json_t *e;
        bool found = false;
        json_array_foreach(en, i, e) found = found || json_equal((json_t *)e, (json_t *)v);
        if (!found) {
            char list[256] = "";
            size_t off = 0;
            json_array_foreach(en, i, e) {
                if (!json_is_string(e))
                    continue;
                int w = snprintf(list + off, sizeof list - off, "%s%s", off ? ", " : "",
                                 json_string_value(e));
                if (w < 0 || (size_t)w >= sizeof list - off)
                    break;
                off += (size_t)w;
            }
            return cx_error_set(CX_EINVAL, "%s: must be one of: %s", at(path, pbuf), list);
        }
    }
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return cx_error_set(CX_EINVAL, "%s: must not contain NUL (\\u0000) characters",
                                at(path, pbuf));
        const json_t *mn = json_object_get(schema, "minLength");
        const json_t *mx = json_object_get(schema, "maxLength");
        size_t n = (mn || mx) ? utf8_chars(json_string_value(v)) : 0;
        if (json_is_integer(mn) && n < (size_t)json_integer_value(mn))
            return cx_error_set(CX_EINVAL, "%s: must not be empty", at(path, pbuf));
        if (json_is_integer(mx) && n > (size_t)json_integer_value(mx))
            return cx_error_set(CX_EINVAL, "%s: is %zu characters; the limit is %lld",
                                at(path, pbuf), n, (long long)json_integer_value(mx));
    } else if (json_is_number(v)) {
        const json_t *mn = json_object_get(schema, "minimum");
        const json_t *mx = json_object_get(schema, "maximum");
        double x = json_number_value(v);
        if ((json_is_number(mn) && x < json_number_value(mn)) ||
            (json_is_number(mx) && x > json_number_value(mx))) {
            if (json_is_number(mn) && json_is_number(mx))
                return cx_error_set(CX_EINVAL, "%s: must be from %g to %g (got %g)",
                                    at(path, pbuf), json_number_value(mn),
                                    json_number_value(mx), x);
            return cx_error_set(CX_EINVAL, "%s: out of range (got %g)", at(path, pbuf), x);
        }
    } else if (json_is_array(v)) {
        const json_t *mn = json_object_get(schema, "minItems");
        const json_t *mx = json_object_get(schema, "maxItems");
        size_t n = json_array_size(v);
        if (json_is_integer(mn) && n < (size_t)json_integer_value(mn))
            return cx_error_set(CX_EINVAL, "%s: needs at least %lld element(s)", at(path, pbuf),
                                (long long)json_integer_value(mn));
        if (json_is_integer(mx) && n > (size_t)json_integer_value(mx))
            return cx_error_set(CX_EINVAL, "%s: has %zu elements; the limit is %lld",
                                at(path, pbuf), n, (long long)json_integer_value(mx));
        const json_t *items = json_object_get(schema, "items");
        if (json_is_object(items)) {
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e) {
                vpath sub = {.up = path, .index = i};
                int r = validate(items, e, &sub);
                if (r)
                    return r;
            }
        }
    } else if (json_is_object(v)) {
        return check_object(schema, v, path);
    }
    return 0;
}

int cx_schema_validate(const json_t *schema, const json_t *value) {
    return validate(schema, value, NULL);
}
