/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 framing: depth pre-scan, parsing, builders, line reader. */
#include "proto/jsonrpc.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t string_size(const char *s, size_t n) {
    size_t sz = n + 2;
    for (size_t i = cx_json_plain_run(s, n); i < n; i += 1 + cx_json_plain_run(s + i + 1, n - i - 1)) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
            c == '\t')
            sz += 1;
        else if (c < 0x20)
            sz += 5;
    }
    return sz;
}

json_t *cx_rpc_string(const char *s, size_t n) {
    return s && cx_utf8_valid(s, n) ? json_stringn_nocheck(s, n) : NULL;
}

size_t cx_rpc_compact_size(const json_t *j) {
    size_t sz = 0, n = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            sz += string_size(json_object_iter_key(it), json_object_iter_key_len(it)) + 1 +
                  cx_rpc_compact_size(json_object_iter_value(it));
            n++;
        }
        return sz + 2 + (n ? n - 1 : 0);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            sz += cx_rpc_compact_size(v);
            n++;
        }
        return sz + 2 + (n ? n - 1 : 0);
    }
    case JSON_STRING:
        return string_size(json_string_value(j), json_string_length(j));
    case JSON_TRUE:
        return 4;
    case JSON_FALSE:
        return 5;
    case JSON_NULL:
        return 4;
    default: /* numbers: as jansson prints them */
        return json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

int cx_rpc_depth(const char *text, size_t len, int cap) {
    int depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > max && (max = depth) > cap)
                return max;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return max;
}

void cx_rpc_msg_clear(cx_rpc_msg *m) {
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

static void invalid(cx_rpc_msg *m, int code, const char *msg) {
    m->kind = CX_RPC_INVALID;
    m->err_code = code;
    m->err_msg = msg;
}

/* ---- the common case, without jansson's reader ----
 * json_loadb reads through a stream a byte at a time (~190 instructions a
 * byte of a tools/call line, the largest cost of parsing a request).
 * cx_rpc_load_fast builds the same values from the bytes directly, for
 * what requests hold, and declines the rest: see jsonrpc.h. */

typedef struct fastp {
    const unsigned char *p, *end;
    int depth, cap;
} fastp;

static void fast_ws(fastp *f) {
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

/* The end of one UTF-8 sequence starting at p (a byte >= 0x80), or NULL:
 * RFC 3629, as jansson checks it (no overlong forms, no surrogates,
 * nothing past U+10FFFF). */
static const unsigned char *fast_utf8(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t left = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF)
        return left >= 2 && (p[1] & 0xC0) == 0x80 ? p + 2 : NULL;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return NULL;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return NULL;
        return p + 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return NULL;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return NULL;
        return p + 4;
    }
    return NULL;
}

static int fast_hex4(const unsigned char *p, const unsigned char *end, unsigned *out) {
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Decodes the escapes of a string body [s, e) (already checked: valid
 * UTF-8, no control bytes, every backslash starts an escape of the right
 * form except \u values) into out, which has room for e - s bytes. Returns
 * the decoded length, or -1 for a lone surrogate. */
static long fast_unescape(const unsigned char *s, const unsigned char *e, char *out) {
    char *o = out;
    while (s < e) {
        if (*s != '\\') {
            *o++ = (char)*s++;
            continue;
        }
        s++;
        switch (*s++) {
        case '"': *o++ = '"'; continue;
        case '\\': *o++ = '\\'; continue;
        case '/': *o++ = '/'; continue;
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        default: break; /* 'u' */
        }
        unsigned cp, lo;
        if (fast_hex4(s, e, &cp) != 0)
            return -1;
        s += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || fast_hex4(s + 2, e, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        /* "\uXXXX" is 6 bytes and "\uXXXX\uXXXX" 12; their UTF-8 is at most 3 and 4 */
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | cp >> 6);
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | cp >> 12);
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | cp >> 18);
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    return (long)(o - out);
}

/* Bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const bool plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* A string at f->p (its opening quote). *str points into the text when it
 * has no escapes, else at *owned (free it). -1 declines. */
static int fast_string(fastp *f, const char **str, size_t *len, char **owned) {
    const unsigned char *s = ++f->p, *p = s, *end = f->end;
    bool esc = false;
    *owned = NULL;
    for (;;) {
        while (p < end && plain_byte[*p])
            p++;
        if (p >= end || *p < 0x20)
            return -1;
        if (*p == '"')
            break;
        if (*p == '\\') {
            esc = true;
            if (++p >= end)
                return -1;
            if (*p == 'u')
                p++; /* the four digits are checked when decoded */
            else if (*p == '"' || *p == '\\' || *p == '/' || *p == 'b' || *p == 'f' ||
                     *p == 'n' || *p == 'r' || *p == 't')
                p++;
            else
                return -1;
            continue;
        }
        if (!(p = fast_utf8(p, end)))
            return -1;
    }
    f->p = p + 1;
    if (!esc) {
        *str = (const char *)s;
        *len = (size_t)(p - s);
        return 0;
    }
    char *buf = malloc((size_t)(p - s) + 1);
    if (!buf)
        return -1;
    long n = fast_unescape(s, p, buf);
    if (n < 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *owned = buf;
    *str = buf;
    *len = (size_t)n;
    return 0;
}

static json_t *fast_value(fastp *f);

static json_t *fast_object(fastp *f) {
    json_t *o = json_object();
    f->p++;
    fast_ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        return o;
    }
    while (o) {
        const char *key;
        size_t klen;
        char *owned = NULL;
        if (f->p >= f->end || *f->p != '"' || fast_string(f, &key, &klen, &owned) != 0)
            goto fail;
        json_t *v = NULL;
        fast_ws(f);
        if (f->p < f->end && *f->p == ':') {
            f->p++;
            fast_ws(f);
            v = fast_value(f);
        }
        /* jansson refuses duplicates (JSON_REJECT_DUPLICATES); keys with
         * NUL are left to it */
        if (!v || (owned && memchr(key, '\0', klen)) || json_object_getn(o, key, klen) ||
            json_object_setn_new_nocheck(o, key, klen, v) != 0) {
            json_decref(v);
            free(owned);
            goto fail;
        }
        free(owned);
        fast_ws(f);
        if (f->p < f->end && *f->p == '}') {
            f->p++;
            return o;
        }
        if (f->p >= f->end || *f->p != ',')
            goto fail;
        f->p++;
        fast_ws(f);
    }
fail:
    json_decref(o);
    return NULL;
}

static json_t *fast_array(fastp *f) {
    json_t *a = json_array();
    f->p++;
    fast_ws(f);
    if (f->p < f->end && *f->p == ']') {
        f->p++;
        return a;
    }
    while (a) {
        json_t *v = fast_value(f);
        if (!v || json_array_append_new(a, v) != 0)
            goto fail;
        fast_ws(f);
        if (f->p < f->end && *f->p == ']') {
            f->p++;
            return a;
        }
        if (f->p >= f->end || *f->p != ',')
            goto fail;
        f->p++;
        fast_ws(f);
    }
fail:
    json_decref(a);
    return NULL;
}

/* Integers of at most 18 digits (no overflow possible); reals decline. */
static json_t *fast_number(fastp *f) {
    const unsigned char *p = f->p, *end = f->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    long long v = 0;
    if (*p == '0') {
        p++;
    } else {
        const unsigned char *d = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - d == 18)
                return NULL;
            v = v * 10 + (*p++ - '0');
        }
    }
    if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
        return NULL;
    f->p = p;
    return json_integer(neg ? -v : v);
}

static bool fast_word(fastp *f, const char *w, size_t n) {
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0)
        return false;
    f->p += n;
    return true;
}

static json_t *fast_value(fastp *f) {
    if (f->p >= f->end)
        return NULL;
    switch (*f->p) {
    case '{':
    case '[': {
        if (++f->depth > f->cap)
            return NULL;
        json_t *v = *f->p == '{' ? fast_object(f) : fast_array(f);
        f->depth--;
        return v;
    }
    case '"': {
        const char *s;
        size_t n;
        char *owned;
        if (fast_string(f, &s, &n, &owned) != 0)
            return NULL;
        json_t *v = json_stringn_nocheck(s, n);
        free(owned);
        return v;
    }
    case 't':
        return fast_word(f, "true", 4) ? json_true() : NULL;
    case 'f':
        return fast_word(f, "false", 5) ? json_false() : NULL;
    case 'n':
        return fast_word(f, "null", 4) ? json_null() : NULL;
    default:
        return fast_number(f);
    }
}

json_t *cx_rpc_load_fast(const char *text, size_t len, int max_depth) {
    fastp f = {.p = (const unsigned char *)text, .end = (const unsigned char *)text + len,
               .cap = max_depth};
    fast_ws(&f);
    json_t *v = fast_value(&f);
    fast_ws(&f);
    if (v && f.p != f.end) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

int cx_rpc_parse(const char *text, size_t len, int max_depth, cx_rpc_msg *m,
                 const char **err_msg) {
    memset(m, 0, sizeof *m);
    json_t *root = cx_rpc_load_fast(text, len, max_depth);
    if (root) {
        cx_rpc_classify(root, m);
        return 0;
    }
    if (cx_rpc_depth(text, len, max_depth) > max_depth) {
        *err_msg = "message nested too deeply";
        return -1;
    }
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON; the schema check refuses it in
     * tool arguments, where it could truncate text. */
    root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                              &jerr);
    if (!root) {
        *err_msg = "parse error: not valid JSON";
        return -1;
    }
    cx_rpc_classify(root, m);
    return 0;
}

/* ---- writing, without jansson's writer ---- */

int cx_rpc_dump(cx_buf *b, const json_t *v) {
    char num[24];
    int r = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        r = cx_buf_add(b, "{", 1);
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it && r == 0;
             it = json_object_iter_next((json_t *)v, it)) {
            const char *k = json_object_iter_key(it);
            size_t kn = json_object_iter_key_len(it);
            if (!first)
                r = cx_buf_add(b, ",", 1);
            first = false;
            if (r == 0 && !cx_utf8_valid(k, kn))
                return 1;
            if (r == 0)
                r = cx_buf_add_json_str(b, k, kn);
            if (r == 0)
                r = cx_buf_add(b, ":", 1);
            if (r == 0)
                r = cx_rpc_dump(b, json_object_iter_value(it));
        }
        return r ? r : cx_buf_add(b, "}", 1);
    }
    case JSON_ARRAY: {
        r = cx_buf_add(b, "[", 1);
        for (size_t i = 0, n = json_array_size(v); i < n && r == 0; i++) {
            if (i)
                r = cx_buf_add(b, ",", 1);
            if (r == 0)
                r = cx_rpc_dump(b, json_array_get(v, i));
        }
        return r ? r : cx_buf_add(b, "]", 1);
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!cx_utf8_valid(s, n))
            return 1; /* json_dumps refuses it too */
        return cx_buf_add_json_str(b, s, n);
    }
    case JSON_INTEGER: {
        int w = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return cx_buf_add(b, num, (size_t)w);
    }
    case JSON_TRUE:
        return cx_buf_add(b, "true", 4);
    case JSON_FALSE:
        return cx_buf_add(b, "false", 5);
    case JSON_NULL:
        return cx_buf_add(b, "null", 4);
    default:
        return 1; /* reals: jansson's precision rules stay jansson's */
    }
}

void cx_rpc_classify(json_t *root, cx_rpc_msg *m) {
    memset(m, 0, sizeof *m);
    m->root = root;
    if (json_is_array(m->root)) {
        invalid(m, CX_RPC_INVALID_REQUEST,
                "batches (JSON arrays) are not supported in this protocol version; send one "
                "message per line");
        return;
    }
    if (!json_is_object(m->root)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "a message must be a JSON object");
        return;
    }
    json_t *id = json_object_get(m->root, "id");
    json_t *method = json_object_get(m->root, "method");
    json_t *ver = json_object_get(m->root, "jsonrpc");
    bool id_ok = id && (json_is_string(id) || json_is_integer(id));
    if (id_ok)
        m->id = id;
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
        return;
    }
    if (id && !id_ok) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"id\" must be a string or an integer");
        return;
    }
    if (!method) {
        if (id && (json_object_get(m->root, "result") || json_object_get(m->root, "error"))) {
            m->kind = CX_RPC_RESPONSE;
            return;
        }
        invalid(m, CX_RPC_INVALID_REQUEST, "\"method\" is missing");
        return;
    }
    if (!json_is_string(method)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"method\" must be a string");
        return;
    }
    m->method = json_string_value(method);
    m->params = json_object_get(m->root, "params");
    if (m->params && !json_is_object(m->params) && !json_is_array(m->params)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"params\" must be an object");
        return;
    }
    m->kind = id ? CX_RPC_REQUEST : CX_RPC_NOTIFICATION;
    return;
}

static json_t *envelope(json_t *id) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
    return o;
}

json_t *cx_rpc_result(json_t *id, json_t *result) {
    json_t *o = envelope(id);
    if (!o || !result) {
        json_decref(o);
        json_decref(result);
        return NULL;
    }
    json_object_set_new(o, "result", result);
    return o;
}

json_t *cx_rpc_error(json_t *id, int code, const char *message, json_t *data) {
    json_t *o = envelope(id), *e = json_object();
    if (!o || !e) {
        json_decref(o);
        json_decref(e);
        json_decref(data);
        return NULL;
    }
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message));
    if (data)
        json_object_set_new(e, "data", data);
    json_object_set_new(o, "error", e);
    return o;
}

json_t *cx_rpc_notification(const char *method, json_t *params) {
    json_t *o = json_object();
    if (!o) {
        json_decref(params);
        return NULL;
    }
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "method", json_string(method));
    if (params)
        json_object_set_new(o, "params", params);
    return o;
}

void cx_rpc_id_text(json_t *id, char *buf, size_t size) {
    if (size == 0)
        return;
    size_t n = id ? json_dumpb(id, buf, size - 1, JSON_ENCODE_ANY | JSON_COMPACT) : 0;
    buf[n < size ? n : 0] = '\0';
}

/* A line of up to max bytes plus one read more is all the buffer holds. */
#define READ_MIN (16 * 1024)
#define READ_SLACK (128 * 1024)

struct cx_linereader {
    int fd;
    size_t max;
    cx_buf in;      /* unconsumed bytes are in.data[start..in.len) */
    size_t start;
    size_t scanned; /* bytes after start known to hold no '\n' */
    bool skipping;  /* dropping the rest of an oversize line */
    size_t skipped;
    bool eof;
};

int cx_linereader_new(cx_linereader **out, int fd, size_t max_line) {
    cx_linereader *lr = calloc(1, sizeof *lr);
    if (!lr)
        return CX_ENOMEM;
    lr->fd = fd;
    lr->max = max_line < SIZE_MAX / 2 ? max_line : SIZE_MAX / 2;
    cx_buf_init(&lr->in, lr->max + READ_SLACK);
    char *space;
    if (cx_buf_reserve(&lr->in, 64 * 1024 - 1, &space) != 0) { /* data is never NULL */
        free(lr);
        return CX_ENOMEM;
    }
    *out = lr;
    return 0;
}

void cx_linereader_free(cx_linereader *lr) {
    if (!lr)
        return;
    cx_buf_free(&lr->in);
    free(lr);
}

bool cx_linereader_pending(const cx_linereader *lr) {
    return lr->eof || memchr(lr->in.data + lr->start + lr->scanned, '\n',
                             lr->in.len - lr->start - lr->scanned);
}

cx_line_status cx_linereader_next(cx_linereader *lr, const char **line, size_t *len) {
    bool did_read = false;
    for (;;) {
        char *nl = memchr(lr->in.data + lr->start + lr->scanned, '\n',
                          lr->in.len - lr->start - lr->scanned);
        if (nl) {
            size_t n = (size_t)(nl - (lr->in.data + lr->start));
            size_t at = lr->start;
            lr->start += n + 1;
            lr->scanned = 0;
            if (lr->skipping) {
                lr->skipping = false;
                *len = lr->skipped + n;
                lr->skipped = 0;
                return CX_LINE_OVERSIZE;
            }
            if (n > lr->max) {
                *len = n;
                return CX_LINE_OVERSIZE;
            }
            *line = lr->in.data + at;
            *len = n;
            return CX_LINE_OK;
        }
        lr->scanned = lr->in.len - lr->start;
        if (lr->eof) {
            if (lr->in.len > lr->start && !lr->skipping) { /* a last line without '\n' */
                *line = lr->in.data + lr->start;
                *len = lr->in.len - lr->start;
                lr->start = lr->in.len;
                lr->scanned = 0;
                if (*len > lr->max)
                    return CX_LINE_OVERSIZE;
                return CX_LINE_OK;
            }
            if (lr->skipping) {
                lr->skipping = false;
                *len = lr->skipped + (lr->in.len - lr->start);
                lr->start = lr->in.len;
                return CX_LINE_OVERSIZE;
            }
            return CX_LINE_EOF;
        }
        if (did_read)
            return CX_LINE_AGAIN; /* one read() a call, so poll() stays in charge */
        /* Over the cap: keep nothing more of this line. */
        if (lr->in.len - lr->start > lr->max) {
            lr->skipping = true;
            lr->skipped += lr->in.len - lr->start;
            cx_buf_reset(&lr->in);
            lr->start = lr->scanned = 0;
        }
        /* Make room: drop what was consumed, then read into what is free
         * (at least READ_MIN, bounded by the buffer's cap). */
        cx_buf_drop(&lr->in, lr->start);
        lr->start = 0;
        size_t want = lr->in.alloc - lr->in.len - 1;
        if (want < READ_MIN)
            want = READ_MIN;
        if (want > lr->in.max - lr->in.len)
            want = lr->in.max - lr->in.len;
        char *space;
        if (cx_buf_reserve(&lr->in, want, &space) != 0)
            return CX_LINE_ERROR;
        ssize_t k = read(lr->fd, space, want);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return CX_LINE_AGAIN;
            return CX_LINE_ERROR;
        }
        if (k == 0)
            lr->eof = true;
        cx_buf_commit(&lr->in, (size_t)k);
        did_read = true;
    }
}
