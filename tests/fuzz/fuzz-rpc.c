/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the request reader and answer writer of src/proto/jsonrpc.h
 * against jansson, the reference both must match. Each input is one
 * message; an input made of several lines (the corpus of fuzz-mcp) is
 * also tried a line at a time.
 *
 * Checked, with abort() and the input on any violation:
 * - what cx_rpc_load_fast returns, jansson reads too (json_loadb with
 *   cx_rpc_parse's flags), to an equal value with members in the same
 *   order (their json_dumps texts are the same);
 * - cx_rpc_parse accepts exactly what jansson accepts (within the depth
 *   limit);
 * - cx_rpc_dump writes what json_dumps(JSON_COMPACT | JSON_ENCODE_ANY)
 *   writes, or declines (1) a value holding a real. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "proto/jsonrpc.h"
#include "util/buf.h"

#define DEPTH 64

static bool holds_real(const json_t *v) {
    size_t i;
    const char *k;
    json_t *e;
    switch (json_typeof(v)) {
    case JSON_REAL:
        return true;
    case JSON_ARRAY:
        json_array_foreach((json_t *)v, i, e) if (holds_real(e)) return true;
        return false;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, e) if (holds_real(e)) return true;
        return false;
    default:
        return false;
    }
}

static void one(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    json_t *f = cx_rpc_load_fast(text, size, DEPTH);
    json_t *j = cx_rpc_depth(text, size, DEPTH) > DEPTH
                    ? NULL
                    : json_loadb(text, size,
                                 JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    const int dump_flags = JSON_COMPACT | JSON_ENCODE_ANY;
    if (f) {
        if (!j || !json_equal(f, j))
            fuzz_die("fuzz-rpc", "the fast reader's value is not jansson's", NULL, data, size);
        char *fd = json_dumps(f, dump_flags), *jd = json_dumps(j, dump_flags);
        if (!fd || !jd || strcmp(fd, jd) != 0)
            fuzz_die("fuzz-rpc", "members in another order than jansson's", jd, data, size);
        free(fd);
        free(jd);
    }
    cx_rpc_msg m;
    const char *why = NULL;
    int r = cx_rpc_parse(text, size, DEPTH, &m, &why);
    if ((r == 0) != (j != NULL))
        fuzz_die("fuzz-rpc", "cx_rpc_parse and jansson disagree on whether this is JSON", why,
                 data, size);
    if (r == 0)
        cx_rpc_msg_clear(&m);
    if (j) {
        cx_buf b;
        cx_buf_init(&b, 1u << 24);
        int d = cx_rpc_dump(&b, j);
        char *jd = json_dumps(j, dump_flags);
        if (d == 0 && (!jd || !b.data || strcmp(b.data, jd) != 0))
            fuzz_die("fuzz-rpc", "cx_rpc_dump differs from json_dumps", jd, data, size);
        if (d != 0 && (d != 1 || !holds_real(j)))
            fuzz_die("fuzz-rpc", "cx_rpc_dump declined a value without a real", jd, data, size);
        free(jd);
        cx_buf_free(&b);
    }
    json_decref(f);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size);
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        if (stop - p < (ptrdiff_t)size)
            one(p, (size_t)(stop - p));
        p = nl ? nl + 1 : end;
    }
    return 0;
}
