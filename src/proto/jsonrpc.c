/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 framing: depth pre-scan, parsing, builders, line reader. */
#include "proto/jsonrpc.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t string_size(const char *s, size_t n) {
    size_t sz = n + 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
            c == '\t')
            sz += 1;
        else if (c < 0x20)
            sz += 5;
    }
    return sz;
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

int cx_rpc_parse(const char *text, size_t len, int max_depth, cx_rpc_msg *m,
                 const char **err_msg) {
    memset(m, 0, sizeof *m);
    if (cx_rpc_depth(text, len, max_depth) > max_depth) {
        *err_msg = "message nested too deeply";
        return -1;
    }
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON; the schema check refuses it in
     * tool arguments, where it could truncate text. */
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                              &jerr);
    if (!root) {
        *err_msg = "parse error: not valid JSON";
        return -1;
    }
    cx_rpc_classify(root, m);
    return 0;
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
