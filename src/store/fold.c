/* SPDX-License-Identifier: Apache-2.0 */
/* Near-duplicate keys: the fold key under which observations may fold
 * into each other (see cx_item_fold_key), and the SQL function that lets a
 * migration compute it for old rows. The similarity check itself runs in
 * observe (item.c). */
#include "store/store-internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- near-duplicate keys ---- */

/* 1: letter or '_', 2: digit, 4: upper case, 8: lower case */
static const unsigned char mark_class[256] = {
    ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2, ['_'] = 1,
    ['A'] = 5, ['B'] = 5, ['C'] = 5, ['D'] = 5, ['E'] = 5, ['F'] = 5, ['G'] = 5, ['H'] = 5,
    ['I'] = 5, ['J'] = 5, ['K'] = 5, ['L'] = 5, ['M'] = 5, ['N'] = 5, ['O'] = 5, ['P'] = 5,
    ['Q'] = 5, ['R'] = 5, ['S'] = 5, ['T'] = 5, ['U'] = 5, ['V'] = 5, ['W'] = 5, ['X'] = 5,
    ['Y'] = 5, ['Z'] = 5,
    ['a'] = 9, ['b'] = 9, ['c'] = 9, ['d'] = 9, ['e'] = 9, ['f'] = 9, ['g'] = 9, ['h'] = 9,
    ['i'] = 9, ['j'] = 9, ['k'] = 9, ['l'] = 9, ['m'] = 9, ['n'] = 9, ['o'] = 9, ['p'] = 9,
    ['q'] = 9, ['r'] = 9, ['s'] = 9, ['t'] = 9, ['u'] = 9, ['v'] = 9, ['w'] = 9, ['x'] = 9,
    ['y'] = 9, ['z'] = 9,
};

static bool mark_char(unsigned char c) {
    return mark_class[c] != 0;
}

typedef struct mark {
    const char *p;
    size_t n;
} mark;

#define MAX_MARKS 256

/* The marked tokens of a text: runs of ASCII letters, digits and '_' joined
 * by '.', '/', '-' or ':', that hold a digit, a joiner, an underscore or a
 * camelCase step: numbers, versions, identifiers, paths. */
static size_t find_marks(const char *text, mark *m, size_t n, size_t max) {
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t i = 0;
    while (p[i] && n < max) {
        if (!mark_char(p[i])) {
            i++;
            continue;
        }
        size_t start = i;
        bool marked = false;
        for (;;) {
            unsigned char c = p[i], k = mark_class[c];
            if (k) {
                if ((k & 2) || c == '_' || ((k & 4) && i > start && (mark_class[p[i - 1]] & 8)))
                    marked = true;
                i++;
            } else if ((c == '.' || c == '/' || c == '-' || c == ':') && mark_char(p[i + 1])) {
                marked = true;
                i++;
            } else {
                break;
            }
        }
        if (marked)
            m[n++] = (mark){(const char *)p + start, i - start};
    }
    return n;
}

static void hash_str(cx_store_blake2b *h, const char *s, size_t n) {
    cx_store_blake2b_update(h, s, n);
    cx_store_blake2b_update(h, "", 1);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hashes the strings of a JSON array (or its elements as sorted-key JSON)
 * in sorted order, so that the order they were given in does not matter. */
static void hash_set(cx_store_blake2b *h, const json_t *arr) {
    size_t n = json_array_size(arr), k = 0;
    if (n == 0)
        return;
    if (n > CX_STORE_MAX_FILES * 4)
        n = CX_STORE_MAX_FILES * 4;
    char **v = calloc(n, sizeof *v);
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        v[k] = json_is_string(e) ? strdup(json_string_value(e))
                                 : json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (v[k])
            k++;
    }
    qsort(v, k, sizeof *v, cmp_cstr);
    for (size_t i = 0; i < k; i++) {
        hash_str(h, v[i], strlen(v[i]));
        free(v[i]);
    }
    free(v);
}

int64_t cx_item_fold_key(const char *visibility, const char *subcortex, const json_t *files,
                         const json_t *provenance, const char *title, const char *body) {
    cx_store_blake2b h;
    unsigned char d[16];
    cx_store_blake2b_init(&h, sizeof d);
    hash_str(&h, visibility ? visibility : "", visibility ? strlen(visibility) : 0);
    hash_str(&h, subcortex ? subcortex : "", subcortex ? strlen(subcortex) : 0);
    hash_set(&h, files);
    cx_store_blake2b_update(&h, "\x01", 1);
    const json_t *pf = json_object_get(provenance, "files");
    if (json_is_array(pf)) {
        hash_set(&h, pf);
    } else if (pf) {
        char *t = json_dumps(pf, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (t)
            hash_str(&h, t, strlen(t));
        free(t);
    }
    cx_store_blake2b_update(&h, "\x02", 1);
    /* in text order: "process 1 step 2" and "process 2 step 1" differ */
    mark *m = malloc(sizeof *m * MAX_MARKS);
    if (m) {
        size_t n = find_marks(title, m, 0, MAX_MARKS);
        for (size_t i = 0; i < n; i++)
            hash_str(&h, m[i].p, m[i].n);
        cx_store_blake2b_update(&h, "\x03", 1);
        n = find_marks(body, m, 0, MAX_MARKS);
        for (size_t i = 0; i < n; i++)
            hash_str(&h, m[i].p, m[i].n);
        free(m);
    }
    cx_store_blake2b_final(&h, d, sizeof d);
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = k << 8 | d[i];
    return (int64_t)k;
}

static void sql_fold_key(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    const char *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = (const char *)sqlite3_value_text(argv[i]);
    json_t *files = cx_item_parse_array(t[2]);
    json_t *prov = cx_item_parse_provenance(t[3]);
    sqlite3_result_int64(ctx, cx_item_fold_key(t[0], t[1], files, prov, t[4], t[5]));
    json_decref(files);
    json_decref(prov);
}

static void sql_content_hash(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    char hash[65];
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    cx_item_content_hash(text ? text : "", hash);
    sqlite3_result_text(ctx, hash, 64, SQLITE_TRANSIENT);
}

int cx_item_register_sql(sqlite3 *db) {
    int rc = sqlite3_create_function(db, "cx_fold_key", 6, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                     NULL, sql_fold_key, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_create_function(db, "cx_content_hash", 1,
                                     SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_content_hash,
                                     NULL, NULL);
    return rc;
}
